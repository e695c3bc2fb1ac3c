/* A job from accepting it to reporting it, step by step through its
 * journal (journal.h), so each step can be resumed after a crash. */
#ifndef CERTWARD_AGENT_JOBS_H
#define CERTWARD_AGENT_JOBS_H

#include <stdint.h>

#include "agent.h"
#include "backoff.h"
#include "agent_config.h"
#include "journal.h"

struct agent_ctx {
	struct agent_config cfg;
	struct agent_state st;
	struct agent_api api;
	struct backoff backoff;
	uint64_t retry_at; /* monotonic ms before which the api is left alone */
};

enum job_progress {
	JOB_DONE,    /* reported and forgotten */
	JOB_WAITING, /* the api could not be reached, or we are stopping: later */
	JOB_STUCK,   /* a local failure (logged): tried again at the next poll */
};

/* The api could not be reached: no call before the next backoff delay. */
void agent_api_failed(struct agent_ctx *ctx);
void agent_api_succeeded(struct agent_ctx *ctx);
int agent_api_paused(const struct agent_ctx *ctx);

/* Takes a new job from the work list: journals it (before anything else)
 * and advances it. */
enum job_progress job_accept(struct agent_ctx *ctx, const struct work_job *w);
/* Advances a journalled job as far as it goes. LISTED is the job as the
 * current work list shows it (its status), or NULL when not known. */
enum job_progress job_advance(struct agent_ctx *ctx, struct journal *j, const struct work_job *listed);

#endif
