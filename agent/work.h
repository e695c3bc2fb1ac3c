/* The api's answer to GET /agents/{id}/work, parsed into bounded job
 * structures (docs/agent.md; the contract's WorkItem). Commands a server
 * target's config may carry are never read: they come from agent.yml. */
#ifndef CERTWARD_AGENT_WORK_H
#define CERTWARD_AGENT_WORK_H

#include <stddef.h>

#include <jansson.h>

#include "keys.h"

#define WORK_MAX_JOBS 50
#define WORK_MAX_TARGETS 16
#define WORK_MAX_SANS 100
#define WORK_ID_MAX 128	    /* job, certificate and target ids */
#define WORK_NAME_MAX 253   /* common name, SANs */
#define WORK_PATH_MAX 4096
#define WORK_ADDR_MAX 300

struct work_target {
	char id[WORK_ID_MAX + 1];
	char name[WORK_ID_MAX + 1];
	char type[32];
	/* from the server target's config, used only for a target agent.yml
	 * does not describe and only under allowed_paths */
	char *cert_path, *key_path, *chain_path, *pem_path;
	char *verify_address, *verify_server_name;
};

struct work_job {
	char id[WORK_ID_MAX + 1];
	char type[32];	 /* Issuance, Renewal, Deployment */
	char status[32]; /* AwaitingCSR, Running */
	char certificate_id[WORK_ID_MAX + 1];
	char common_name[WORK_NAME_MAX + 1];
	char **sans;
	size_t nsans;
	enum key_alg key_alg;
	int key_bits;
	struct work_target targets[WORK_MAX_TARGETS];
	size_t ntargets;
};

/* An HTTP-01 challenge this agent answers: the key authorization goes to
 * <webroot>/.well-known/acme-challenge/<token> (docs/acme-client.md). */
#define WORK_MAX_CHALLENGES 100
#define WORK_TOKEN_MAX 128
#define WORK_KEYAUTH_MAX (WORK_TOKEN_MAX + 1 + 43)

struct work_challenge {
	char token[WORK_TOKEN_MAX + 1];
	char key_authorization[WORK_KEYAUTH_MAX + 1];
	char target_id[WORK_ID_MAX + 1];
	char target_name[WORK_ID_MAX + 1];
	char state[16];	 /* waiting, ready, failed */
	char *webroot;	 /* the server target's config.acme_webroot, or NULL */
};

struct work_list {
	struct work_job *jobs;
	size_t njobs;
	struct work_challenge *challenges;
	size_t nchallenges;
	/* items left out as malformed, with the first one's reason */
	size_t skipped;
	char skipped_why[256];
};

/* One WorkItem object into J (zeroed first): 0, or -1 with WHY. */
int work_job_from_json(const json_t *item, struct work_job *j, char *why, size_t whylen);
/* J as the same JSON shape (for the job journal); NULL on out of memory. */
json_t *work_job_to_json(const struct work_job *j);
void work_job_free(struct work_job *j);

/* The whole answer {"jobs": [...], "count": N, "challenges": [...]}: 0, or
 * -1 with WHY when it is not such an object or has more than WORK_MAX_JOBS
 * jobs or WORK_MAX_CHALLENGES challenges. A malformed item is skipped
 * (counted in skipped) rather than failing the others. */
int work_parse(const char *body, size_t len, struct work_list *out, char *why, size_t whylen);
void work_list_free(struct work_list *l);

/* Whether S is a safe id for a URL path segment and a directory name:
 * 1..WORK_ID_MAX of [A-Za-z0-9._-], not starting with a dot. */
int work_id_ok(const char *s);

#endif
