/*
 * Calling the store's named operations (schema/store_ops.def) from a worker:
 *
 *   static void on_setting(const struct store_outcome *o, void *arg)
 *   {
 *       if (o->error) ... o->message says why (EPERM refused, ENOTCONN
 *                         database unavailable, ETIMEDOUT no answer in time)
 *       else           ... o->json / o->json_len: the JSON PostgreSQL built
 *   }
 *   const char *params[] = {"acme.directory"};
 *   store_call(w, "settings.get", params, 1, on_setting, ctx);
 *
 * The request goes to the store peer with the worker's IPC deadline
 * (master.ipc_timeout); the callback runs exactly once.
 */
#ifndef CERTWARD_STORE_CLIENT_H
#define CERTWARD_STORE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "build_config.h"
#include "store_wire.h"
#include "worker.h"

struct store_outcome {
	int error;            /* 0, or a positive errno value (see store_wire.h) */
	const char *message;  /* why it failed; "" on success */
	uint32_t status;      /* enum store_status, when error is 0 */
	uint64_t rows;        /* rows returned, or affected by a command */
	const uint8_t *json;  /* the result (not NUL-terminated); valid during the callback */
	size_t json_len;
};

typedef void (*store_call_cb)(const struct store_outcome *o, void *arg);

/*
 * Sends STORE_CALL {op, params[0..n)} (NULL entries are SQL NULL). Returns 0
 * when sent (cb runs later, exactly once), or a negative errno when it could
 * not be: -ENOTCONN (no channel to the store right now), -E2BIG (too many or
 * too long parameters, or a too long name), -EAGAIN (too many requests out),
 * -ENOMEM; then cb does not run.
 */
int store_call(struct worker *w, const char *op, const char *const *params, size_t n,
	       store_call_cb cb, void *arg);

#if CERTWARD_TEST_HOOKS
/*
 * Test hook "store-call" (lib/worker.c): arg "OP" or "OP:P1,P2,..." calls OP
 * with those parameters and logs the outcome when it comes. Fills msg with
 * what was done; returns 0 or a negative errno.
 */
int store_call_test_hook(struct worker *w, const char *arg, char *msg, size_t msglen);
#endif

#endif
