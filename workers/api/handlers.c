#include "handlers.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apikeys.h"
#include "audit.h"
#include "build_config.h"
#include "codec.h"
#include "routes.h"
#include "util.h"

/* A pending answer that needs IPC: /ready asks the master and the store,
 * /metrics asks the master. */
struct pending {
	struct route_call *c;
	unsigned waiting;
	int is_metrics;
	/* /ready */
	char *workers_text;
	int workers_failed;
	int store_failed;
	unsigned store_up, store_size, schema_ready;
	char *ca_text; /* the signer's CA_STATUS: CAs on tokens */
	/* /metrics */
	char *metrics;
	size_t metrics_len;
};

static void pending_free(struct pending *r)
{
	free(r->workers_text);
	free(r->ca_text);
	free(r->metrics);
	free(r);
}

void respond_problem(respond_fn respond, void *ctx, int status, const char *title,
		     const char *detail, const char *field, const char *reqid)
{
	json_t *p = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "type", "about:blank", "title", title,
			      "status", status, "detail", detail ? detail : title, "error",
			      detail ? detail : title, "request_id", reqid ? reqid : "");
	char *text;

	if (p && field && *field)
		json_object_set_new(p, "field", json_string(field));
	text = p ? json_dumps(p, JSON_COMPACT) : NULL;
	if (text)
		respond(ctx, status, "application/problem+json", NULL, 0, text, strlen(text));
	else
		respond(ctx, 500, "application/problem+json", NULL, 0, "{\"status\":500}", 14);
	free(text);
	json_decref(p);
}

/* /ready: 200 when every worker runs, the store reaches PostgreSQL and
 * every CA can sign, else 503 naming what is not ready. */
static void ready_finish(struct pending *r)
{
	struct strbuf items, out;

	strbuf_init(&items, 16384);
	if (r->workers_text) {
		char *save = NULL, *line;

		for (line = strtok_r(r->workers_text, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			char name[33], state[17];

			if (sscanf(line, "%32s %16s", name, state) == 2 && strcmp(state, "running") != 0)
				strbuf_printf(&items, "%s{\"component\":\"%s\",\"state\":\"%s\"}",
					      items.len ? "," : "", name, state);
		}
	}
	if (r->workers_failed)
		strbuf_printf(&items, "%s{\"component\":\"master\",\"state\":\"unreachable\"}",
			      items.len ? "," : "");
	if (r->store_failed || r->store_up == 0)
		strbuf_printf(&items, "%s{\"component\":\"postgresql\",\"state\":\"%s\"}",
			      items.len ? "," : "",
			      r->store_failed ? "store unreachable" : "not connected");
	else if (!r->schema_ready)
		strbuf_printf(&items, "%s{\"component\":\"database schema\",\"state\":\"migrations pending\"}",
			      items.len ? "," : "");
	if (r->ca_text) {
		char *save = NULL, *line;

		/* "<ca> not-ready <why>": a CA whose key is on a token it cannot use now */
		for (line = strtok_r(r->ca_text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			char *sp = strchr(line, ' '), state[400];
			json_t *item;
			char *text;

			if (!sp || strncmp(sp + 1, "not-ready ", 10) != 0)
				continue;
			*sp = '\0';
			snprintf(state, sizeof state, "not ready: %s", sp + 11);
			item = json_pack("{s:s+,s:s}", "component", "ca ", line, "state", state);
			text = item ? json_dumps(item, JSON_COMPACT) : NULL;
			if (text)
				strbuf_printf(&items, "%s%s", items.len ? "," : "", text);
			free(text);
			json_decref(item);
		}
	}
	strbuf_init(&out, 16500);
	strbuf_printf(&out, "{\"status\":\"%s\",\"not_ready\":[%s]}\n",
		      items.len ? "not ready" : "ready", items.p ? items.p : "");
	route_respond(r->c, items.len ? 503 : 200, "application/json", out.p, out.len);
	strbuf_free(&out);
	strbuf_free(&items);
}

static void finish_one(struct pending *r)
{
	if (--r->waiting > 0)
		return;
	if (r->is_metrics) {
		if (r->metrics)
			route_respond(r->c, 200, "text/plain; version=0.0.4; charset=utf-8", r->metrics,
				      r->metrics_len);
		else
			route_problem(r->c, 503, "Service Unavailable", "metrics unavailable", NULL);
	} else {
		ready_finish(r);
	}
	pending_free(r);
}

static void on_workers(int status, struct ipc_msg *m, int fd, void *arg)
{
	struct pending *r = arg;

	if (fd >= 0)
		close(fd);
	if (status == 0 && m->type == IPC_T_WORKERS)
		r->workers_text = strndup((const char *)m->u.workers.text.ptr, m->u.workers.text.len);
	else
		r->workers_failed = 1;
	finish_one(r);
}

static void on_store(int status, struct ipc_msg *m, int fd, void *arg)
{
	struct pending *r = arg;

	if (fd >= 0)
		close(fd);
	if (status == 0 && m->type == IPC_T_STORE_HEALTH) {
		r->store_up = m->u.store_health.connections_up;
		r->store_size = m->u.store_health.pool_size;
		r->schema_ready = m->u.store_health.schema_ready;
	} else {
		r->store_failed = 1;
	}
	finish_one(r);
}

static void on_ca(int status, struct ipc_msg *m, int fd, void *arg)
{
	struct pending *r = arg;

	if (fd >= 0)
		close(fd);
	/* a signer that does not answer is already named by the master's list */
	if (status == 0 && m->type == IPC_T_CA_STATUS)
		r->ca_text = strndup((const char *)m->u.ca_status.text.ptr, m->u.ca_status.text.len);
	finish_one(r);
}

static void on_metrics(int status, struct ipc_msg *m, int fd, void *arg)
{
	struct pending *r = arg;

	if (fd >= 0)
		close(fd);
	if (status == 0 && m->type == IPC_T_METRICS_ALL) {
		r->metrics = malloc(m->u.metrics_all.text.len + 1);
		if (r->metrics) {
			memcpy(r->metrics, m->u.metrics_all.text.ptr, m->u.metrics_all.text.len);
			r->metrics_len = m->u.metrics_all.text.len;
		}
	}
	finish_one(r);
}

static void ask(struct pending *r, struct ipc_channel *ch, uint16_t type, ipc_reply_cb cb, int *failed)
{
	struct ipc_msg m = {.type = type};

	r->waiting++;
	if (!ch || ipc_request(ch, &m, -1, worker_ipc_timeout_ms(r->c->w), cb, r) != 0) {
		if (failed)
			*failed = 1;
		r->waiting--;
	}
}

/* /ready and /metrics: the answer comes when every question is answered */
static void gather(struct route_call *c, int is_metrics)
{
	struct pending *r = calloc(1, sizeof *r);

	if (!r) {
		route_problem(c, 503, "Service Unavailable", "out of memory", NULL);
		return;
	}
	r->c = c;
	r->is_metrics = is_metrics;
	r->waiting = 1; /* held until every question is out */
	if (is_metrics) {
		ask(r, worker_control(c->w), IPC_T_METRICS_ALL_GET, on_metrics, NULL);
	} else {
		ask(r, worker_control(c->w), IPC_T_WORKERS_GET, on_workers, &r->workers_failed);
		ask(r, worker_peer(c->w, IPC_ROLE_STORE), IPC_T_STORE_HEALTH_GET, on_store, &r->store_failed);
		ask(r, worker_peer(c->w, IPC_ROLE_SIGNER), IPC_T_CA_STATUS_GET, on_ca, NULL);
	}
	finish_one(r);
}

static void get_ready(struct route_call *c)
{
	gather(c, 0);
}

static void get_metrics(struct route_call *c)
{
	gather(c, 1);
}

static void get_health(struct route_call *c)
{
	route_respond(c, 200, "application/json", "{\"status\":\"ok\"}\n", 16);
}

static void get_auth_info(struct route_call *c)
{
	static const char info[] = "{\"auth_type\":\"api-key\",\"required\":true}\n";

	route_respond(c, 200, "application/json", info, sizeof info - 1);
}

/* the router has authenticated the key: say whose role it has */
static void get_auth_check(struct route_call *c)
{
	char body[200];
	int n = snprintf(body, sizeof body, "{\"status\":\"authenticated\",\"role\":\"%s\"}\n",
			 c->who.role);

	route_respond(c, 200, "application/json", body, (size_t)n);
}

/* The reference's build identity, with our own fields: version, build
 * type. No commit is known to a build from a tarball: "" then. */
static void get_version(struct route_call *c)
{
	static const char body[] = "{\"version\":\"" CERTWARD_VERSION "\",\"commit\":\"\","
				   "\"modified\":false,\"build_time\":\"\",\"go_version\":\"\","
				   "\"api\":\"v1\"}\n";

	route_respond(c, 200, "application/json", body, sizeof body - 1);
}

static const struct route fixed_routes[] = {
	{"GET", "/health", ROLES_PUBLIC, ROUTE_PLAIN, get_health, NULL},
	{"GET", "/ready", ROLES_PUBLIC, 0, get_ready, NULL},
	{"GET", "/metrics", ROLES_PUBLIC, 0, get_metrics, NULL},
	{"GET", "/api/v1/auth/info", ROLES_PUBLIC, 0, get_auth_info, NULL},
	{"GET", "/api/v1/auth/check", ROLES_READ | ROLE_AGENT, 0, get_auth_check, NULL},
	{"GET", "/api/v1/version", ROLES_PUBLIC, 0, get_version, NULL},
	{"GET", "/api/v1/apikeys", ROLE_ADMIN, 0, apikeys_list, NULL},
	{"POST", "/api/v1/apikeys", ROLE_ADMIN, 0, apikeys_create, NULL},
	{"GET", "/api/v1/apikeys/{id}", ROLE_ADMIN, 0, apikeys_get, NULL},
	{"DELETE", "/api/v1/apikeys/{id}", ROLE_ADMIN, 0, apikeys_revoke, NULL},
	/* the audit trail (audit.c) */
	{"GET", "/api/v1/audit", ROLES_READ, 0, audit_list_route, NULL},
	{"GET", "/api/v1/audit/chain", ROLE_ADMIN, 0, audit_chain_route, NULL},
	{"GET", "/api/v1/audit/{id}", ROLES_READ, 0, audit_get_route, NULL},
};

void handlers_routes_init(void)
{
	routes_add(fixed_routes, sizeof fixed_routes / sizeof fixed_routes[0]);
}
