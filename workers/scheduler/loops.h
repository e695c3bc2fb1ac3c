/*
 * The scheduler's periodic loops. Each loop has a name, an interval read
 * from the configuration, and says whether it runs only on the node that
 * holds the scheduler lock (a PostgreSQL advisory lock taken through the
 * store) or on every node (job dispatch: claims are SKIP LOCKED). A loop
 * runs at most once at a time; a run reports what it did, and the loop
 * framework keeps the metrics (runs, errors, duration) and writes the log
 * line of a run that did something or failed.
 */
#ifndef CERTWARD_SCHEDULER_LOOPS_H
#define CERTWARD_SCHEDULER_LOOPS_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "metrics.h"
#include "worker.h"

struct loop;

struct loop_def {
	const char *name;	  /* metrics label and log field: "renewal_scan" */
	const char *interval_key; /* a CFG_DURATION key of the scheduler section */
	bool leader_only;	  /* only on the node holding the scheduler lock */
	/* starts one run; the run ends with exactly one loop_done(), possibly
	 * later from a callback */
	void (*run)(struct loop *l, void *arg);
	void *arg;
};

/* Registers a loop (before or after loops_start); NULL when out of memory. */
struct loop *loop_register(const struct loop_def *def);

/* Ends the run in progress: did counts what it changed (0: nothing, no log
 * line), what says what in a few words ("certificates due"); error, when
 * not NULL, counts an error and is logged. */
void loop_done(struct loop *l, uint64_t did, const char *what, const char *error);

/* Runs the loop as soon as it is free (e.g. after an event). */
void loop_kick(struct loop *l);

/* Starts the timers and the leader election. */
int loops_start(struct worker *w, const struct cfg *section);

/* Whether this node holds the scheduler lock now. */
bool loops_leader(void);

void loops_metrics(struct strbuf *out);
void loops_stop(void);

#endif
