#include "store_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

struct pending_call {
	store_call_cb cb;
	void *arg;
};

static void on_reply(int status, struct ipc_msg *reply, int fd, void *arg)
{
	struct pending_call *pc = arg;
	struct store_outcome o = {.message = ""};

	if (fd >= 0)
		close(fd);
	if (status != 0) {
		o.error = -status;
		o.message = status == -ETIMEDOUT ? "the store did not answer in time"
			    : status == -ECONNRESET ? "the store went away before answering"
						    : strerror(-status);
	} else if (reply->type == IPC_T_ERROR) {
		o.error = reply->u.error.code ? (int)reply->u.error.code : EPROTO;
		o.message = reply->u.error.message;
	} else if (reply->type == IPC_T_STORE_RESULT) {
		o.status = reply->u.store_result.status;
		o.rows = reply->u.store_result.rows;
		o.json = reply->u.store_result.json.ptr;
		o.json_len = reply->u.store_result.json.len;
	} else {
		o.error = EPROTO;
		o.message = "unexpected reply from the store";
	}
	pc->cb(&o, pc->arg);
	free(pc);
}

int store_call(struct worker *w, const char *op, const char *const *params, size_t n,
	       store_call_cb cb, void *arg)
{
	struct ipc_channel *ch = worker_peer(w, IPC_ROLE_STORE);
	struct ipc_msg m = {.type = IPC_T_STORE_CALL};
	struct pending_call *pc;
	uint8_t *buf;
	size_t len;
	int rc;

	if (!ch)
		return -ENOTCONN;
	if (strlen(op) > STORE_OP_NAME_MAX)
		return -E2BIG;
	rc = store_params_encode(params, n, &buf, &len);
	if (rc != 0)
		return rc;
	pc = malloc(sizeof *pc);
	if (!pc) {
		free(buf);
		return -ENOMEM;
	}
	pc->cb = cb;
	pc->arg = arg;
	m.u.store_call.op = op;
	m.u.store_call.params.ptr = buf;
	m.u.store_call.params.len = (uint32_t)len;
	rc = ipc_request(ch, &m, -1, worker_ipc_timeout_ms(w), on_reply, pc);
	free(buf);
	if (rc != 0) {
		free(pc);
		return rc == -EPIPE ? -ENOTCONN : rc;
	}
	return 0;
}

#if CERTWARD_TEST_HOOKS
#define HOOK_PARAMS 4

struct hook_call {
	char op[40];
	uint64_t t0_ms;
};

static void on_hook_outcome(const struct store_outcome *o, void *arg)
{
	struct hook_call *h = arg;
	char kv[512];
	size_t n;

	n = (size_t)snprintf(kv, sizeof kv, "code=%d ms=%llu", o->error,
			     (unsigned long long)(now_ms() - h->t0_ms));
	if (o->error) {
		log_event(LOG_WARN, NULL, kv, "store-call %s: error: %s", h->op, o->message);
	} else {
		n += (size_t)snprintf(kv + n, sizeof kv - n, " status=%u rows=%llu bytes=%zu result=",
				      o->status, (unsigned long long)o->rows, o->json_len);
		if (n < sizeof kv)
			log_quote(kv + n, sizeof kv - n, (const char *)o->json,
				  o->json_len < 200 ? o->json_len : 200);
		log_event(LOG_INFO, NULL, kv, "store-call %s: ok", h->op);
	}
	free(h);
}

int store_call_test_hook(struct worker *w, const char *arg, char *msg, size_t msglen)
{
	char buf[40], *colon;
	const char *params[HOOK_PARAMS];
	size_t n = 0;
	struct hook_call *h;
	int rc;

	snprintf(buf, sizeof buf, "%s", arg);
	colon = strchr(buf, ':');
	if (colon) {
		/* "OP:a,,b": empty parameters count, so split by hand */
		char *p = colon + 1;

		*colon = '\0';
		for (;;) {
			char *comma = strchr(p, ',');

			if (n == HOOK_PARAMS) {
				snprintf(msg, msglen, "store-call takes at most %d parameters", HOOK_PARAMS);
				return -E2BIG;
			}
			params[n++] = p;
			if (!comma)
				break;
			*comma = '\0';
			p = comma + 1;
		}
	}
	h = calloc(1, sizeof *h);
	if (!h) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	snprintf(h->op, sizeof h->op, "%s", buf);
	h->t0_ms = now_ms();
	rc = store_call(w, buf, params, n, on_hook_outcome, h);
	if (rc != 0) {
		free(h);
		snprintf(msg, msglen, "store-call %s not sent: %s", buf, strerror(-rc));
		log_warn("%s", msg);
		return rc;
	}
	snprintf(msg, msglen, "store-call %s sent with %zu parameter%s; the outcome is logged", buf,
		 n, n == 1 ? "" : "s");
	return 0;
}
#endif
