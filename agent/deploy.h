/* Deploying a certificate to a job's targets: the files each type gets,
 * backups, atomic writes, validate, reload, a TLS check of what is served,
 * and the rollback when any of these fails (docs/agent.md, "Deploying"). */
#ifndef CERTWARD_AGENT_DEPLOY_H
#define CERTWARD_AGENT_DEPLOY_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent_config.h"
#include "journal.h"
#include "util.h"

/* A target as it will be deployed: agent.yml's entry, or a server target's
 * paths checked against allowed_paths with the type's default commands. */
struct deploy_target {
	char name[WORK_ID_MAX + 1];
	char id[WORK_ID_MAX + 1];
	enum target_type type;
	char *cert_path, *key_path, *chain_path, *pem_path;
	const char *const *validate, *const *reload; /* NULL: none */
	char *verify_address, *verify_server_name;
	uint64_t verify_timeout_ms, command_timeout_ms;
};

/* agent.yml's entry for a server target: the one bound to its id, else the
 * one of its name; NULL when agent.yml does not describe it. */
const struct agent_target *deploy_local_target(const struct agent_config *c, const char *id, const char *name);

/* The job's targets resolved against agent.yml: 0 with *out (count *n),
 * or -1 with WHY naming the first target that cannot be deployed. */
int deploy_resolve(const struct agent_config *c, const struct work_job *job,
		   struct deploy_target **out, size_t *n, char *why, size_t whylen);
void deploy_targets_free(struct deploy_target *t, size_t n);

/* One file a target gets. */
struct deploy_file {
	const char *path;
	char *content; /* malloc'd; wiped on free when it holds the key */
	size_t len;
	mode_t new_mode; /* for a file that does not exist yet */
	int has_key;
};

#define DEPLOY_MAX_FILES 3

/* The files of T for LEAF/CHAIN/KEY (PEM texts): the count, or -1. */
int deploy_plan(const struct deploy_target *t, const char *leaf, const char *chain, const char *key,
		size_t keylen, struct deploy_file files[DEPLOY_MAX_FILES]);
void deploy_files_free(struct deploy_file *f, size_t n);
/* Whether every file already holds exactly its content (SHA-256). */
int deploy_unchanged(const struct deploy_file *f, size_t n);

/* Backups in the job directory: copies of the files about to be replaced
 * (bytes, mode, owner; or "did not exist"), listed in backups.json. */
int backup_files(const char *job_dir, int target_index, const struct deploy_file *f, size_t n,
		 char *why, size_t whylen);
/* Puts back the backed-up files of TARGET_INDEX (-1: all) atomically, and
 * removes the files that did not exist before. Returns 0, or -1 when one
 * could not be restored (WHY names it; the others are restored anyway). */
int restore_backups(const char *job_dir, int target_index, char *why, size_t whylen);
/* The target indexes listed in backups.json (at most MAX): the count. */
int backup_targets(const char *job_dir, int *idx, size_t max);
/* Forgets every backup (after a report). */
void backups_clear(const char *job_dir);

/* A TLS handshake with ADDRESS (host:port, [v6]:port) sending SERVER_NAME,
 * repeated until the leaf served has DER (a reload is asynchronous) or the
 * timeout passes: 0 when it matched, -1 with WHY. */
int verify_served(const char *address, const char *server_name, const uint8_t *der, size_t derlen,
		  uint64_t timeout_ms, char *why, size_t whylen);

/* Deploys to every target of the journalled job: the certificate and chain
 * from the job's cert.pem/chain.pem and its key.pem. On a target's failure
 * its files are restored and it is reloaded again. OUT gets what to report
 * (at most JOURNAL_ERROR_MAX bytes); returns 1 when every target has the
 * certificate (or already had it), 0 when one failed, -1 when the job's own
 * files cannot be read. */
int deploy_job(const struct agent_config *c, const struct journal *j, struct strbuf *out);

#endif
