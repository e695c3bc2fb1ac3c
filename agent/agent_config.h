/* agent.yml: the agent's configuration (docs/agent.md, "Configuration").
 * Strict: an unknown key, a wrong type or a value out of its bounds is an
 * error naming the file and line. */
#ifndef CERTWARD_AGENT_AGENT_CONFIG_H
#define CERTWARD_AGENT_AGENT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define AGENT_CONFIG_MAX_BYTES (256u * 1024u)
#define AGENT_MAX_TARGETS 64
#define AGENT_MAX_LIST 64	  /* allowed_paths */
#define AGENT_MAX_DISCOVERY_DIRS 32 /* the api takes at most 32 per report */
#define AGENT_MAX_ARGV 32	  /* words of a validate/reload command */
#define AGENT_MAX_STRING 4096	  /* any one string (paths included) */
#define AGENT_MAX_NAME 128	  /* target names and ids */
#define AGENT_DEFAULT_CMD_TIMEOUT_MS 60000u
#define AGENT_DEFAULT_VERIFY_TIMEOUT_MS 10000u

enum target_type {
	TARGET_NONE = 0,
	TARGET_NGINX,
	TARGET_APACHE,
	TARGET_HAPROXY,
	TARGET_POSTFIX,
	TARGET_DOVECOT,
	TARGET_FILE,
};

/* "nginx"..."file" (agent.yml), case-insensitive so the server's
 * "NGINX"/"HAProxy" spellings match too: TARGET_NONE when unknown. */
enum target_type target_type_from_name(const char *s);
const char *target_type_name(enum target_type t);
/* The type's default validate/reload commands (NULL-terminated; NULL when
 * the type has none). */
const char *const *target_default_validate(enum target_type t);
const char *const *target_default_reload(enum target_type t);

struct agent_target {
	char *name;
	char *target_id; /* NULL unless bound to a server deployment target */
	enum target_type type;
	char *cert_path, *key_path, *chain_path, *pem_path;
	/* where the web server of the target's names serves
	 * /.well-known/acme-challenge/ from (HTTP-01 on this host), or NULL */
	char *acme_webroot;
	/* NULL-terminated argv, or NULL for the type's default; has_* set when
	 * agent.yml gave the key (an empty list then means "none") */
	char **validate, **reload;
	int has_validate, has_reload;
	char *verify_address, *verify_server_name; /* NULL: no verification */
	uint64_t verify_timeout_ms;
	uint64_t command_timeout_ms;
	unsigned line; /* where it was defined, for messages */
};

struct agent_discovery {
	char **directories;
	size_t ndirectories;
	uint64_t interval_ms;
	size_t max_files, max_file_size, max_certs;
	unsigned max_depth;
};

enum agent_log_level { AGENT_LOG_DEBUG, AGENT_LOG_INFO, AGENT_LOG_WARN, AGENT_LOG_ERROR };

struct agent_config {
	char *server;
	char *cacert; /* NULL: the system store */
	char *state_dir;
	uint64_t heartbeat_interval_ms, poll_interval_ms;
	enum agent_log_level log_level;
	char **allowed_paths;
	size_t nallowed_paths;
	struct agent_discovery discovery;
	struct agent_target *targets;
	size_t ntargets;
};

#define AGENT_DEFAULT_SERVER "https://127.0.0.1:8443"
#define AGENT_DEFAULT_STATE_DIR "/var/lib/certward-agent"

/* The defaults (no file). */
int agent_config_defaults(struct agent_config *c);
/* Parses TEXT (NAME for messages): 0, or -1 with "NAME:LINE: why" in WHY.
 * Paths must be absolute. */
int agent_config_parse(const char *text, size_t len, const char *name, struct agent_config *c,
		       char *why, size_t whylen);
/* Reads and parses PATH; a relative path in it is taken relative to the
 * directory PATH is in. */
int agent_config_load(const char *path, struct agent_config *c, char *why, size_t whylen);
void agent_config_free(struct agent_config *c);

/* "30s", "5m", "6h", "1d", "250ms": 0 with *ms, or -1. */
int parse_duration_ms(const char *s, uint64_t *ms);
/* "1048576", "512KiB", "1MiB", "1GiB" (also K/M/G, KB/MB/GB as powers of
 * 1024): 0 with *out, or -1. */
int parse_size(const char *s, uint64_t *out);

/* Whether PATH may be written for a target the server described: absolute,
 * no "." or ".." component, and, with the symlinks of its directory
 * resolved, under one of the allowed prefixes (themselves resolved). The
 * resolved path in RESOLVED (PATH_MAX bytes). 1 allowed, 0 refused (WHY). */
int agent_path_allowed(const struct agent_config *c, const char *path, char *resolved, char *why,
		       size_t whylen);

#endif
