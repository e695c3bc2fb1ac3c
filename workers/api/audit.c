/* See audit.h. */
#include "audit.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "query.h"
#include "rest.h"
#include "routes.h"
#include "store_client.h"
#include "validate.h"

static struct {
	struct worker *w;
	bool fail_open;
} audit;

void audit_configure(struct worker *w, const struct cfg *section)
{
	const char *mode = cfg_str(section, "audit", "failure_mode");

	audit.w = w;
	/* the configuration accepts only fail_closed or fail_open */
	audit.fail_open = mode && strcmp(mode, "fail_open") == 0;
	if (audit.fail_open)
		log_warn("audit.failure_mode is fail_open: a change whose audit event cannot be "
			 "written is still made (logged and counted)");
}

bool audit_fail_open(void)
{
	return audit.fail_open;
}

void audit_count_write_failure(const char *action)
{
	char labels[METRICS_LABELS_MAX];

	if (!audit.w)
		return;
	metrics_add(worker_metrics(audit.w), "audit_write_failures_total",
		    metrics_labels(labels, sizeof labels, "action", action ? action : "", NULL), 1);
}

void audit_report_write_failure(const char *reqid, const char *action, const char *resource_type,
				const char *resource_id, int error, const char *message)
{
	char kv[LOG_LINE_MAX / 2], reason[64];
	size_t o = 0;
	const struct {
		const char *key, *value;
	} parts[] = {{"action", action}, {"resource_type", resource_type}, {"resource_id", resource_id}};

	/* A failed statement's message may quote a parameter: only its SQLSTATE
	 * is kept. Anything else is described by its errno. */
	if (message && strncmp(message, "SQLSTATE ", 9) == 0 && strlen(message) >= 14)
		snprintf(reason, sizeof reason, "SQLSTATE %.5s", message + 9);
	else
		snprintf(reason, sizeof reason, "%s", strerror(error ? error : EIO));
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		if (!parts[i].value || o + 8 + strlen(parts[i].key) >= sizeof kv)
			continue;
		o += (size_t)snprintf(kv + o, sizeof kv - o, "%s%s=", o ? " " : "", parts[i].key);
		o += log_quote(kv + o, sizeof kv - o, parts[i].value, strlen(parts[i].value));
	}
	if (o + 10 < sizeof kv) {
		o += (size_t)snprintf(kv + o, sizeof kv - o, "%sreason=", o ? " " : "");
		log_quote(kv + o, sizeof kv - o, reason, strlen(reason));
	}
	log_event(LOG_ERROR, reqid, kv, "AUDIT EVENT NOT RECORDED: the audit trail misses this event");
	audit_count_write_failure(action);
}

/* what the answer's callback needs to report a failure */
struct audit_pending {
	char reqid[129];
	char action[129];
	char resource_type[65];
	char resource_id[256];
	int has_resource_id;
};

static void on_recorded(const struct store_outcome *o, void *arg)
{
	struct audit_pending *p = arg;

	if (o->error)
		audit_report_write_failure(p->reqid[0] ? p->reqid : NULL, p->action, p->resource_type,
					   p->has_resource_id ? p->resource_id : NULL, o->error,
					   o->message);
	free(p);
}

void audit_record(struct worker *w, const struct audit_entry *e)
{
	const char *params[] = {e->actor, e->actor_type, e->actor_role, e->action,
				e->resource_type, e->resource_id, e->request_id,
				e->source_address, e->outcome, e->body_sha256, e->details};
	struct audit_pending *p = calloc(1, sizeof *p);
	int rc;

	if (!p) {
		audit_report_write_failure(e->request_id, e->action, e->resource_type, e->resource_id,
					   ENOMEM, NULL);
		return;
	}
	snprintf(p->reqid, sizeof p->reqid, "%s", e->request_id ? e->request_id : "");
	snprintf(p->action, sizeof p->action, "%s", e->action ? e->action : "");
	snprintf(p->resource_type, sizeof p->resource_type, "%s",
		 e->resource_type ? e->resource_type : "");
	snprintf(p->resource_id, sizeof p->resource_id, "%s", e->resource_id ? e->resource_id : "");
	p->has_resource_id = e->resource_id != NULL;
	rc = store_call(w, "audit.record", params, sizeof params / sizeof params[0], on_recorded, p);
	if (rc != 0)
		on_recorded(&(struct store_outcome){.error = -rc, .message = ""}, p);
}

/* ---- the routes ---- */

#define CHAIN_LIMIT_MAX 1000

/* The list's filters: the columns an operator looks for, and a time range. */
static const struct {
	const char *name;
	size_t max_chars;           /* 0: an RFC 3339 date-time */
	const char *const *allowed; /* the column's values, or NULL */
} filters[] = {
	{"actor", 255, NULL},
	{"actor_type", 0, (const char *const[]){"User", "System", "Agent", NULL}},
	{"action", 128, NULL},
	{"resource_type", 64, NULL},
	{"resource_id", 255, NULL},
	{"outcome", 0, (const char *const[]){"success", "failure", "denied", NULL}},
	{"request_id", 128, NULL},
	{"from", 0, NULL},
	{"to", 0, NULL},
};

/* characters of UTF-8 text (PostgreSQL refuses invalid UTF-8 itself) */
static size_t utf8_length(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* NULL when value suits filter i, else what is wrong with it */
static const char *filter_refusal(size_t i, const char *value)
{
	if (filters[i].allowed) {
		for (const char *const *a = filters[i].allowed; *a; a++)
			if (strcmp(*a, value) == 0)
				return NULL;
		return strcmp(filters[i].name, "outcome") == 0 ? "must be success, failure or denied"
							       : "must be User, System or Agent";
	}
	if (filters[i].max_chars == 0)
		return valid_rfc3339(value) ? NULL : "must be an RFC 3339 date-time (2026-11-25T14:00:00Z)";
	if (*value == '\0' || utf8_length(value) > filters[i].max_chars)
		return "must not be empty, nor longer than the column";
	return NULL;
}

/* What the store's answer needs: the parameter that bounds the page. */
static void on_answer(const struct store_outcome *o, void *arg)
{
	struct route_call *c = arg;
	const char *bound = c->data;

	if (!o->error) {
		if (o->status == STORE_NO_ROW)
			route_problem(c, 404, "Not Found", "no audit event with this id", NULL);
		else
			route_respond(c, 200, "application/json", (const char *)o->json, o->json_len);
	} else if (o->error == EMSGSIZE && bound) {
		route_problem(c, 422, "Unprocessable Content",
			      "these events are larger than one answer may be: ask for fewer", bound);
	} else {
		/* a value out of range 400, no database 503, else 500 */
		rest_store_failed(c, o, false, c->route->pattern);
	}
}

static void call(struct route_call *c, const char *op, const char *const *p, size_t n,
		 const char *bound)
{
	c->data = (void *)bound;
	if (store_call(c->w, op, p, n, on_answer, c) != 0)
		route_problem(c, 503, "Service Unavailable", "the database is unavailable", NULL);
}

/* 400 "<parameter>: <what is wrong>", naming the parameter */
static void bad(struct route_call *c, const char *field, const char *what)
{
	char name[65], detail[300];

	snprintf(name, sizeof name, "%s", field);
	snprintf(detail, sizeof detail, "%s: %s", name, what);
	route_problem(c, 400, "Bad Request", detail, name);
}

/*
 * The query's parameters (query.h: each at most once), each one of
 * known[]: calls take(c, which, value, arg) per parameter, which answers
 * 400 itself and returns false for a bad value. Returns false once an
 * answer was given.
 */
static bool each_param(struct route_call *c, const char *const *known, size_t nknown,
		       bool (*take)(struct route_call *c, size_t which, const char *value, void *arg),
		       void *arg)
{
	struct query *q = malloc(sizeof *q);
	const char *why, *twice;
	bool ok = true;

	if (!q) {
		route_problem(c, 503, "Service Unavailable", "out of memory", NULL);
		return false;
	}
	if (query_parse(q, c->req.query, &why, &twice) != 0) {
		if (*twice)
			bad(c, twice, "given twice");
		else
			route_problem(c, 400, "Bad Request", why, NULL);
		ok = false;
	}
	for (size_t i = 0; ok && i < q->n; i++) {
		size_t k;

		for (k = 0; k < nknown && strcmp(known[k], q->pair[i].name) != 0; k++)
			;
		if (k == nknown) {
			bad(c, q->pair[i].name, "unknown query parameter");
			ok = false;
		} else {
			ok = take(c, k, q->pair[i].value, arg);
		}
	}
	free(q);
	return ok;
}

/* the list's parameters: the filters, then these */
enum { P_PAGE = sizeof filters / sizeof filters[0], P_PER_PAGE, P_SORT, P_COUNT };

struct list_query {
	long page, per_page;
	bool newest_first;
	json_t *filters;
};

static bool take_list_param(struct route_call *c, size_t which, const char *value, void *arg)
{
	struct list_query *q = arg;
	const char *refusal = NULL;

	if (which < P_PAGE) {
		if (!(refusal = filter_refusal(which, value)))
			json_object_set_new(q->filters, filters[which].name, json_string(value));
	} else if (which == P_PAGE) {
		if (!query_int(value, 1, QUERY_PAGE_MAX, &q->page))
			refusal = "must be an integer from 1";
	} else if (which == P_PER_PAGE) {
		if (!query_int(value, 1, QUERY_PER_PAGE_MAX, &q->per_page))
			refusal = "must be an integer from 1 to 500";
	} else if (strcmp(value, "id") == 0 || strcmp(value, "-id") == 0) {
		q->newest_first = value[0] == '-';
	} else {
		refusal = "the events sort by id (oldest first) or -id (newest first)";
	}
	if (refusal) {
		bad(c, which < P_PAGE ? filters[which].name : which == P_PAGE ? "page"
		       : which == P_PER_PAGE ? "per_page" : "sort", refusal);
		return false;
	}
	return true;
}

void audit_list_route(struct route_call *c)
{
	const char *known[P_COUNT];
	struct list_query q = {1, QUERY_PER_PAGE_DEFAULT, true, json_object()};
	char page[24], per_page[24], *fjson = NULL;

	for (size_t i = 0; i < P_PAGE; i++)
		known[i] = filters[i].name;
	known[P_PAGE] = "page";
	known[P_PER_PAGE] = "per_page";
	known[P_SORT] = "sort";
	if (!q.filters) {
		route_problem(c, 503, "Service Unavailable", "out of memory", NULL);
		return;
	}
	if (each_param(c, known, P_COUNT, take_list_param, &q)) {
		snprintf(page, sizeof page, "%ld", q.page);
		snprintf(per_page, sizeof per_page, "%ld", q.per_page);
		if (json_object_size(q.filters) && !(fjson = json_dumps(q.filters, JSON_COMPACT))) {
			route_problem(c, 503, "Service Unavailable", "out of memory", NULL);
		} else {
			const char *p[] = {page, per_page, q.newest_first ? "true" : "false", fjson};

			call(c, "audit.list", p, 4, "per_page");
		}
	}
	free(fjson);
	json_decref(q.filters);
}

void audit_get_route(struct route_call *c)
{
	const char *id = route_param(c, "id");
	long n;

	/* only the canonical spelling of an event's number names one */
	if (!id || id[0] == '0' || !query_int(id, 1, LONG_MAX, &n)) {
		route_problem(c, 404, "Not Found", "no audit event with this id", NULL);
		return;
	}
	call(c, "audit.get", &id, 1, NULL);
}

static bool take_chain_param(struct route_call *c, size_t which, const char *value, void *arg)
{
	long *v = arg;

	if (which == 0 ? !query_int(value, 0, LONG_MAX, &v[0])
		       : !query_int(value, 1, CHAIN_LIMIT_MAX, &v[1])) {
		bad(c, which == 0 ? "after" : "limit",
		    which == 0 ? "must be an event id (an integer from 0)" : "must be an integer from 1 to 1000");
		return false;
	}
	return true;
}

void audit_chain_route(struct route_call *c)
{
	static const char *const known[] = {"after", "limit"};
	long v[2] = {0, CHAIN_LIMIT_MAX}; /* after, limit */
	char after[24], limit[24];

	if (!each_param(c, known, 2, take_chain_param, v))
		return;
	snprintf(after, sizeof after, "%ld", v[0]);
	snprintf(limit, sizeof limit, "%ld", v[1]);
	{
		const char *p[] = {after, limit};

		call(c, "audit.chain", p, 2, "limit");
	}
}

#if CERTWARD_TEST_HOOKS
int audit_test_hook(struct worker *w, const char *hook, const char *arg, char *msg, size_t msglen)
{
	struct audit_entry e = {.actor = "system", .actor_type = "System", .action = arg,
				.resource_type = "test", .outcome = "success",
				.details = "{\"test_hook\": true}"};

	if (strcmp(hook, "audit-record") != 0)
		return -ENOENT;
	audit_record(w, &e);
	snprintf(msg, msglen, "audit event %s sent to the store", arg);
	return 0;
}
#endif
