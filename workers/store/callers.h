/*
 * The channels that calls came in on, for answering after asynchronous work.
 *
 * The worker runtime frees a peer's channel when it closes and does not tell
 * the worker, and a restarted peer's new channel may get the same address.
 * Answering through a stale pointer would write to freed memory, or hand a
 * reply to the new process under a request id it is using for something else.
 *
 * So every loop iteration while calls are out, a libuv check handle looks at
 * each held channel's pipe handle (a channel's pipe handle has the channel as
 * its data, see ipc/channel.c). libuv runs check handles after I/O and before
 * it finishes closing handles, so a channel that started closing in this
 * iteration is seen as closing here, before it is freed and before its
 * address can be reused; from then on the caller is gone for good.
 */
#ifndef CERTWARD_STORE_CALLERS_H
#define CERTWARD_STORE_CALLERS_H

#include <stdbool.h>
#include <uv.h>

#include "channel.h"

struct caller;

struct callers {
	uv_loop_t *loop;
	uv_check_t check;
	bool check_started;
	struct caller *list;
};

void callers_init(struct callers *cs, uv_loop_t *loop);
/* Closes the check handle; every caller must have been released. */
void callers_close(struct callers *cs);

/* A reference to the channel `ch`, which is open right now (a message just
 * arrived on it). NULL when out of memory or when `ch` has no open pipe
 * handle (then the assumption above is broken: logged). */
struct caller *caller_hold(struct callers *cs, struct ipc_channel *ch);
/* The channel, or NULL once it has started closing. */
struct ipc_channel *caller_channel(const struct caller *c);
void caller_release(struct callers *cs, struct caller *c);

#endif
