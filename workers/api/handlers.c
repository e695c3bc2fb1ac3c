#include "handlers.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "codec.h"
#include "rest.h"
#include "util.h"

/* A pending answer that needs IPC: /ready asks the master and the store,
 * /metrics asks the master. */
struct handler_reply {
	struct worker *w;
	respond_fn respond;
	void *ctx;
	int cancelled;
	unsigned waiting;
	int is_metrics;
	/* /ready */
	char *workers_text;
	int workers_failed;
	int store_failed;
	unsigned store_up, store_size, schema_ready;
	/* /metrics */
	char *metrics;
	size_t metrics_len;
	/* /api/v1/auth/check */
	struct auth_req *auth;
	/* a REST resource */
	struct rest_call *rest;
	char reqid[17];
};

static void reply_free(struct handler_reply *r)
{
	free(r->workers_text);
	free(r->metrics);
	free(r);
}

void handler_cancel(struct handler_reply *r)
{
	if (!r)
		return;
	if (r->auth) {
		/* its callback will not run: nothing else holds r */
		auth_cancel(r->auth);
		reply_free(r);
		return;
	}
	if (r->rest) {
		/* it will not answer now: nothing else holds r */
		rest_cancel(r->rest);
		reply_free(r);
		return;
	}
	r->cancelled = 1;
}

const char *handler_route(const char *path)
{
	static const char *const known[] = {"/health", "/ready", "/metrics", "/api/v1/auth/info",
					    "/api/v1/auth/check"};

	static char rest_labels[64][96];
	static size_t nlabels;
	char route[96];

	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strcmp(path, known[i]) == 0)
			return known[i];
	if (rest_route(path, route, sizeof route)) {
		/* a bounded set: two routes per resource of the catalogue */
		for (size_t i = 0; i < nlabels; i++)
			if (strcmp(rest_labels[i], route) == 0)
				return rest_labels[i];
		if (nlabels < sizeof rest_labels / sizeof rest_labels[0]) {
			snprintf(rest_labels[nlabels], sizeof rest_labels[0], "%s", route);
			return rest_labels[nlabels++];
		}
	}
	return "other";
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
		respond(ctx, status, "application/problem+json", text, strlen(text));
	else
		respond(ctx, 500, "application/problem+json", "{\"status\":500}", 14);
	free(text);
	json_decref(p);
}

static void json_error_id(respond_fn respond, void *ctx, int status, const char *title,
			  const char *reqid)
{
	respond_problem(respond, ctx, status, title, NULL, NULL, reqid);
}

/* /ready: 200 when every worker runs and the store reaches PostgreSQL,
 * else 503 naming what is not ready. */
static void ready_finish(struct handler_reply *r)
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
	strbuf_init(&out, 16500);
	strbuf_printf(&out, "{\"status\":\"%s\",\"not_ready\":[%s]}\n",
		      items.len ? "not ready" : "ready", items.p ? items.p : "");
	r->respond(r->ctx, items.len ? 503 : 200, "application/json", out.p, out.len);
	strbuf_free(&out);
	strbuf_free(&items);
}

static void finish_one(struct handler_reply *r)
{
	if (--r->waiting > 0)
		return;
	if (!r->cancelled) {
		if (r->is_metrics) {
			if (r->metrics)
				r->respond(r->ctx, 200, "text/plain; version=0.0.4; charset=utf-8",
					   r->metrics, r->metrics_len);
			else
				json_error_id(r->respond, r->ctx, 503, "metrics unavailable", r->reqid);
		} else {
			ready_finish(r);
		}
	}
	reply_free(r);
}

static void on_workers(int status, struct ipc_msg *m, int fd, void *arg)
{
	struct handler_reply *r = arg;

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
	struct handler_reply *r = arg;

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

static void on_metrics(int status, struct ipc_msg *m, int fd, void *arg)
{
	struct handler_reply *r = arg;

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

static void ask(struct handler_reply *r, struct ipc_channel *ch, uint16_t type, ipc_reply_cb cb,
		int *failed)
{
	struct ipc_msg m = {.type = type};

	r->waiting++;
	if (!ch || ipc_request(ch, &m, -1, worker_ipc_timeout_ms(r->w), cb, r) != 0) {
		if (failed)
			*failed = 1;
		r->waiting--;
	}
}

/* What the plain-HTTP listener serves: what clients must reach without TLS
 * (liveness probes, CRL and OCSP fetches, ACME HTTP-01 validation). */
static bool plain_allowed(const char *path)
{
	static const char *const prefixes[] = {"/crl/", "/ocsp/", "/.well-known/acme-challenge/"};

	if (strcmp(path, "/health") == 0 || strcmp(path, "/ocsp") == 0)
		return true;
	for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
		if (strncmp(path, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

static void on_auth(const struct auth_result *res, void *arg)
{
	struct handler_reply *r = arg;

	switch (res->status) {
	case 200: {
		char body[200];
		int n = snprintf(body, sizeof body, "{\"status\":\"authenticated\",\"role\":\"%s\"}\n",
				 res->role);

		r->respond(r->ctx, 200, "application/json", body, (size_t)n);
		break;
	}
	case 429: json_error_id(r->respond, r->ctx, 429, "Too Many Requests", r->reqid); break;
	case 401: json_error_id(r->respond, r->ctx, 401, "Unauthorized", r->reqid); break;
	default: json_error_id(r->respond, r->ctx, 503, "Service Unavailable", r->reqid); break;
	}
	reply_free(r);
}

/* a REST answer passes through here to free its handle */
static void rest_respond(void *arg, int status, const char *content_type, const char *body, size_t len)
{
	struct handler_reply *r = arg;

	r->respond(r->ctx, status, content_type, body, len);
	reply_free(r);
}

/* A handle for an answer that comes later; NULL (answered 503) when out of memory. */
static struct handler_reply *reply_new(struct worker *w, const struct api_request *req,
				       respond_fn respond, void *ctx)
{
	struct handler_reply *r = calloc(1, sizeof *r);

	if (!r) {
		json_error_id(respond, ctx, 503, "out of memory", req->reqid);
		return NULL;
	}
	r->w = w;
	r->respond = respond;
	r->ctx = ctx;
	snprintf(r->reqid, sizeof r->reqid, "%s", req->reqid ? req->reqid : "");
	return r;
}

struct handler_reply *handle_request(struct worker *w, const struct api_request *req,
				     respond_fn respond, void *ctx)
{
	const char *route = handler_route(req->path);
	struct handler_reply *r;
	struct auth_req *a;
	int is_get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;

	if (!req->plain && strncmp(route, "/api/v1/", 8) == 0 && strncmp(route, "/api/v1/auth/", 13) != 0) {
		struct rest_call *c;

		if (!(r = reply_new(w, req, respond, ctx)))
			return NULL;
		/* rest_respond may run (and free r) before rest_request returns */
		c = rest_request(w, req, rest_respond, r);
		if (!c)
			return NULL;
		r->rest = c;
		return r;
	}
	if (strcmp(route, "other") == 0 || (req->plain && !plain_allowed(req->path))) {
		json_error_id(respond, ctx, 404, "Not Found", req->reqid);
		return NULL;
	}
	if (!is_get) {
		json_error_id(respond, ctx, 405, "Method Not Allowed", req->reqid);
		return NULL;
	}
	if (strcmp(route, "/health") == 0) {
		respond(ctx, 200, "application/json", "{\"status\":\"ok\"}\n", 16);
		return NULL;
	}
	if (strcmp(route, "/api/v1/auth/info") == 0) {
		static const char info[] = "{\"auth_type\":\"api-key\",\"required\":true}\n";

		respond(ctx, 200, "application/json", info, sizeof info - 1);
		return NULL;
	}
	if (!(r = reply_new(w, req, respond, ctx)))
		return NULL;
	if (strcmp(route, "/api/v1/auth/check") == 0) {
		/* on_auth may run (and free r) before auth_check returns */
		a = auth_check(w, req->authorization, req->client, req->reqid, on_auth, r);
		if (a)
			r->auth = a;
		return a ? r : NULL;
	}
	r->waiting = 1; /* held until every question is out */
	if (strcmp(route, "/metrics") == 0) {
		r->is_metrics = 1;
		ask(r, worker_control(w), IPC_T_METRICS_ALL_GET, on_metrics, NULL);
	} else {
		ask(r, worker_control(w), IPC_T_WORKERS_GET, on_workers, &r->workers_failed);
		ask(r, worker_peer(w, IPC_ROLE_STORE), IPC_T_STORE_HEALTH_GET, on_store, &r->store_failed);
	}
	/* the caller may cancel from inside respond(); keep the handle valid until
	 * we return it by finishing after the caller has it when answers are out */
	if (r->waiting == 1) {
		r->waiting = 0;
		if (!r->cancelled) {
			if (r->is_metrics)
				json_error_id(respond, ctx, 503, "metrics unavailable", r->reqid);
			else
				ready_finish(r);
		}
		reply_free(r);
		return NULL;
	}
	r->waiting--;
	return r;
}
