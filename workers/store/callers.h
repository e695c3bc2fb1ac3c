/*
 * The channels that calls came in on, for answering after asynchronous work.
 *
 * A peer's channel is freed when it closes, and a restarted peer's new
 * channel may get the same address: answering through a stale pointer would
 * write to freed memory, or hand a reply to the new process under a request
 * id it uses for something else. So each call holds a caller, and the
 * worker runtime's peer_closed hook (callers_forget) clears the caller's
 * channel before the channel is freed; from then on the caller is gone.
 */
#ifndef CERTWARD_STORE_CALLERS_H
#define CERTWARD_STORE_CALLERS_H

#include "channel.h"

struct caller;

struct callers {
	struct caller *list;
};

void callers_init(struct callers *cs);
/* Every caller must have been released. */
void callers_close(struct callers *cs);

/* A reference to the open channel `ch` (a message just arrived on it);
 * NULL when out of memory. */
struct caller *caller_hold(struct callers *cs, struct ipc_channel *ch);
/* The channel, or NULL once it has closed. */
struct ipc_channel *caller_channel(const struct caller *c);
void caller_release(struct callers *cs, struct caller *c);
/* `ch` is about to be freed. */
void callers_forget(struct callers *cs, const struct ipc_channel *ch);

#endif
