/*
 * The api's side of the audit trail (docs/architecture.md, "The audit
 * trail").
 *
 * A change made through the REST resources writes its event in the same
 * statement as the change (schema/gen_resources.py). Everything else the
 * api wants on record (a refusal, a login failure, a key revoked) goes
 * through audit_record(): one `audit.record` store call, not waited for.
 * A write that fails is never silent: an error log line and
 * certward_audit_write_failures_total{action}.
 *
 * audit.failure_mode (configuration section `audit`, read by the api):
 * fail_closed (the default) fails a change whose audit event cannot be
 * written; fail_open lets it through, counted and logged.
 */
#ifndef CERTWARD_API_AUDIT_H
#define CERTWARD_API_AUDIT_H

#include <stdbool.h>

#include "build_config.h"
#include "config.h"
#include "worker.h"

/* The parts of one event; NULL where a column may be NULL. Every string is
 * copied before audit_record() returns. */
struct audit_entry {
	const char *actor;          /* the API key's id, or "system" */
	const char *actor_type;     /* User, System, Agent */
	const char *actor_role;     /* admin, operator, viewer, agent; NULL for System */
	const char *action;         /* e.g. "apikeys.revoke"; a fixed word of the
				     * code, never client input: it is a metric label */
	const char *resource_type;  /* e.g. "apikeys" */
	const char *resource_id;    /* or NULL */
	const char *request_id;     /* or NULL */
	const char *source_address; /* the client's address (no port), or NULL */
	const char *outcome;        /* success, failure, denied */
	const char *body_sha256;    /* 64 lowercase hex digits, or NULL */
	const char *details;        /* a JSON object (no secrets in it), or NULL */
};

/* Reads audit.failure_mode; the api calls it once from init. */
void audit_configure(struct worker *w, const struct cfg *section);

/* Whether audit.failure_mode is fail_open. */
bool audit_fail_open(void);

/* Writes e through the store without waiting for the answer. A failure
 * (no store, the statement refused) is reported with
 * audit_report_write_failure(). */
void audit_record(struct worker *w, const struct audit_entry *e);

/* certward_audit_write_failures_total{action} += 1 */
void audit_count_write_failure(const char *action);

/* The error log line ("audit event not recorded", with the action, the
 * resource and why: an errno name or a SQLSTATE, never a parameter
 * value) plus audit_count_write_failure(action). */
void audit_report_write_failure(const char *reqid, const char *action, const char *resource_type,
				const char *resource_id, int error, const char *message);

/*
 * The routes (rows of the route table, handlers.c); the router has
 * authenticated the caller and checked the role:
 *
 *   GET /api/v1/audit          a page of events, newest first; filters
 *   GET /api/v1/audit/{id}     one event (404 when there is none)
 *   GET /api/v1/audit/chain    the raw chain for `certward audit verify`
 *                              (admin): ?after=ID&limit=N (N <= 1000)
 */
struct route_call;
void audit_list_route(struct route_call *c);
void audit_get_route(struct route_call *c);
void audit_chain_route(struct route_call *c);

#if CERTWARD_TEST_HOOKS
/* Test hook "audit-record ACTION": one audit_record() of a System event
 * with that action (worker_ops.test_hook). */
int audit_test_hook(struct worker *w, const char *hook, const char *arg, char *msg, size_t msglen);
#endif

#endif
