/*
 * Tables of ACME work that a scheduler loop claims and runs through
 * acme_issuer.c: revocations at the CA (acme_revoke.c) and account key
 * rollovers and deactivations (acme_account.c). On every node, one batch at
 * a time: up to 8 due rows claimed with SKIP LOCKED, each run, its outcome
 * recorded; a failure the CA or the network may get over is tried again
 * later (1 min, doubling, at most 1 h; 10 tries in all), anything else
 * fails with why.
 */
#ifndef CERTWARD_SCHEDULER_ACME_QUEUE_H
#define CERTWARD_SCHEDULER_ACME_QUEUE_H

#include <jansson.h>
#include <stddef.h>

#include "acme_issuer.h"
#include "util.h"
#include "worker.h"

struct acme_queue_def {
	const char *loop;         /* the loop's name, "acme_revocations" */
	const char *interval_key; /* its interval, a scheduler key */
	const char *claim_op;     /* $1 how many -> {list: [{"id", "attempts", ...}]} */
	const char *list;
	const char *finish_op; /* $1 id, $2 done|pending|failed, $3 why or NULL, $4 seconds to the next try */
	const char *metric;    /* the counters' prefix: <metric>_done_total, _failed_total, _retried_total */
	const char *did;       /* what a run did, for its log line: "revocations sent to ACME CAs" */
	/* row in a few words, for log lines ("revoking serial 0A at the ACME CA") */
	void (*describe)(json_t *row, char *out, size_t cap);
	/* starts row's run: done(arg, ...) later, as acme_start's; or -1 with
	 * *refused the reason it fails for good, or NULL (tried again in 1 min) */
	int (*start)(json_t *row, acme_done_cb done, void *arg, const char **refused);
};

struct acme_queue;

/* row's member key as a string, otherwise when it is none */
const char *acme_row_str(json_t *row, const char *key, const char *otherwise);
/* row's member "id" (an integer) as text in out */
const char *acme_row_id(json_t *row, char *out, size_t cap);

/* Registers def's loop (def is kept); NULL when out of memory (logged). */
struct acme_queue *acme_queue_start(struct worker *w, const struct acme_queue_def *def);
void acme_queue_metrics(const struct acme_queue *q, struct strbuf *out);

#endif
