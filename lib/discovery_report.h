/* The bounds of an agent's discovery report (docs/agent.md, "Discovery"):
 * the agent leaves out what would break one, with an error entry, rather
 * than send it (agent/discovery.c); the api refuses a report that breaks
 * one (workers/api/discovery.c). One table, so the two cannot drift. */
#ifndef CERTWARD_DISCOVERY_REPORT_H
#define CERTWARD_DISCOVERY_REPORT_H

#define DISCOVERY_DIRS_MAX 32
#define DISCOVERY_DIR_MAX 1024
#define DISCOVERY_PATH_MAX 2048
#define DISCOVERY_CN_MAX 1024
#define DISCOVERY_SANS_MAX 1000
#define DISCOVERY_SAN_MAX 1024
#define DISCOVERY_DN_MAX 4096
#define DISCOVERY_SERIAL_HEX_MAX 128
#define DISCOVERY_PEM_MAX 32768
#define DISCOVERY_CERT_JSON_MAX 49152 /* one certificate's JSON: it must fit one store call */
#define DISCOVERY_ERRORS_MAX 1000
#define DISCOVERY_ERROR_MAX 1024
#define DISCOVERY_CERTS_MAX 5000

#endif
