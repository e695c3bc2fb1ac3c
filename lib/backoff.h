/* Restart backoff of a supervised worker: doubles from `initial` up to `max`,
 * and starts over once the worker has stayed up for `stable_after`. */
#ifndef CERTWARD_BACKOFF_H
#define CERTWARD_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

struct backoff {
	uint64_t initial_ms, max_ms, stable_after_ms;
	uint64_t next_ms;      /* delay to use for the next restart */
	unsigned consecutive;  /* restarts since the last stable period */
};

void backoff_init(struct backoff *b, uint64_t initial_ms, uint64_t max_ms, uint64_t stable_after_ms);
/* A worker exited after running for `uptime_ms`: returns the delay before restarting it. */
uint64_t backoff_on_exit(struct backoff *b, uint64_t uptime_ms);
/* Whether the restart count since the last stable period reached `limit`. */
bool backoff_crashlooping(const struct backoff *b, unsigned limit);

#endif
