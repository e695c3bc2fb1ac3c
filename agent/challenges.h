/* HTTP-01 challenges answered on this host: the work list's challenges are
 * written into their target's ACME webroot for the web server there to
 * serve, reported ready (or failed, with why), and removed once the api no
 * longer lists them (docs/acme-client.md, "HTTP-01 on an agent's host"). */
#ifndef CERTWARD_AGENT_CHALLENGES_H
#define CERTWARD_AGENT_CHALLENGES_H

#include "jobs.h"
#include "work.h"

/* The challenges of L in place and reported; the files of challenges no
 * longer listed removed. Every failure is logged; nothing is fatal. */
void challenges_sync(struct agent_ctx *ctx, const struct work_list *l);

#endif
