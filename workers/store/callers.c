#include "callers.h"

#include <stdlib.h>

#include "log.h"

struct caller {
	struct ipc_channel *ch; /* NULL once its channel started closing */
	unsigned refs;
	bool seen;              /* scratch for one check */
	struct caller *next;
};

struct walk {
	struct callers *cs;
	struct ipc_channel *only; /* look for this one channel, or every held one */
	bool found;
};

static bool open_pipe_of(uv_handle_t *h, const struct ipc_channel *ch)
{
	return ch && h->type == UV_NAMED_PIPE && h->data == ch && !uv_is_closing(h);
}

static void visit(uv_handle_t *h, void *arg)
{
	struct walk *wk = arg;

	if (wk->only) {
		wk->found = wk->found || open_pipe_of(h, wk->only);
		return;
	}
	for (struct caller *c = wk->cs->list; c; c = c->next)
		if (open_pipe_of(h, c->ch))
			c->seen = true;
}

static void on_check(uv_check_t *h)
{
	struct callers *cs = h->data;
	struct walk wk = {.cs = cs};

	for (struct caller *c = cs->list; c; c = c->next)
		c->seen = false;
	uv_walk(cs->loop, visit, &wk);
	for (struct caller *c = cs->list; c; c = c->next) {
		if (c->ch && !c->seen) {
			log_debug("channel to %s closed with calls in flight: their results are dropped",
				  ipc_channel_peer(c->ch));
			c->ch = NULL;
		}
	}
}

void callers_init(struct callers *cs, uv_loop_t *loop)
{
	cs->loop = loop;
	cs->list = NULL;
	uv_check_init(loop, &cs->check);
	cs->check.data = cs;
	/* watching must not keep the loop alive on its own */
	uv_unref((uv_handle_t *)&cs->check);
	cs->check_started = false;
}

void callers_close(struct callers *cs)
{
	uv_check_stop(&cs->check);
	uv_close((uv_handle_t *)&cs->check, NULL);
}

struct caller *caller_hold(struct callers *cs, struct ipc_channel *ch)
{
	struct walk wk = {.cs = cs, .only = ch};
	struct caller *c;

	for (c = cs->list; c; c = c->next) {
		if (c->ch == ch) {
			c->refs++;
			return c;
		}
	}
	uv_walk(cs->loop, visit, &wk);
	if (!wk.found) {
		log_error("no open pipe handle for the channel to %s: cannot answer it later",
			  ipc_channel_peer(ch));
		return NULL;
	}
	c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->ch = ch;
	c->refs = 1;
	c->next = cs->list;
	cs->list = c;
	if (!cs->check_started) {
		uv_check_start(&cs->check, on_check);
		cs->check_started = true;
	}
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
	if (!cs->list && cs->check_started) {
		uv_check_stop(&cs->check);
		cs->check_started = false;
	}
}
