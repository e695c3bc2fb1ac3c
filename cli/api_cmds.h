/* The CLI's commands that speak to the REST API over HTTPS. */
#ifndef CERTWARD_CLI_API_CMDS_H
#define CERTWARD_CLI_API_CMDS_H

#include <stdio.h>

#include "https_client.h"

/* Runs COMMAND (argv[0]) if it is an API command: its exit status, or -1
 * when COMMAND is not one of them. */
int api_cmd_run(int argc, char **argv);

/* The options and commands, for `certward --help`. */
void api_cmd_usage(FILE *out);

/* For commands of their own: the REST commands' options after argv[0]
 * (--server, --cacert, --api-key, --timeout, --format; CERTWARD_SERVER_URL
 * and CERTWARD_API_KEY) into *http, no other argument. 0, or the exit
 * status of a usage error after saying why. */
int api_cmd_client_options(int argc, char **argv, struct http_client *http);
/* The one-line reason of an error answer, on stderr. */
void api_cmd_print_http_error(const struct http_response *r);

#endif
