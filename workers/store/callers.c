#include "callers.h"

#include <stdlib.h>

#include "log.h"

struct caller {
	struct ipc_channel *ch; /* NULL once its channel closed */
	unsigned refs;
	struct caller *next;
};

void callers_init(struct callers *cs)
{
	cs->list = NULL;
}

void callers_close(struct callers *cs)
{
	if (cs->list)
		log_warn("store stopping with calls in flight");
}

struct caller *caller_hold(struct callers *cs, struct ipc_channel *ch)
{
	struct caller *c;

	for (c = cs->list; c; c = c->next) {
		if (c->ch == ch) {
			c->refs++;
			return c;
		}
	}
	c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->ch = ch;
	c->refs = 1;
	c->next = cs->list;
	cs->list = c;
	return c;
}

struct ipc_channel *caller_channel(const struct caller *c)
{
	return c->ch;
}

void caller_release(struct callers *cs, struct caller *c)
{
	if (--c->refs > 0)
		return;
	for (struct caller **pp = &cs->list; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	free(c);
}

void callers_forget(struct callers *cs, const struct ipc_channel *ch)
{
	for (struct caller *c = cs->list; c; c = c->next) {
		if (c->ch == ch) {
			log_debug("channel to %s closed with calls in flight: their results are dropped",
				  ipc_channel_peer(ch));
			c->ch = NULL;
		}
	}
}
