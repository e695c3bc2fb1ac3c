/*
 * In-process metrics of a worker: counters, gauges and latency histograms,
 * each series a metric name plus a fixed label set. A worker records into its
 * registry (worker_metrics()) and the runtime writes the registry into the
 * METRICS snapshot the master gathers for /metrics.
 *
 * Snapshot format (one line each, Prometheus text without HELP):
 *   # TYPE name histogram          only for histograms
 *   name{k="v",...} value          labels optional
 * Names are [a-z_][a-z0-9_]*; counters end in _total. The master prefixes
 * certward_, adds the worker label and writes HELP/TYPE lines.
 *
 * Label sets must come from bounded sets (route templates, not raw paths):
 * the registry holds at most METRICS_SERIES_MAX series and drops the rest,
 * counting them in metrics_series_dropped_total.
 */
#ifndef CERTWARD_METRICS_H
#define CERTWARD_METRICS_H

#include <stddef.h>

#include "util.h"

#define METRICS_SERIES_MAX 1024
#define METRICS_LABELS_MAX 160

struct metrics;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* labels: NULL, or `k="v",...` made with metrics_labels() */
void metrics_add(struct metrics *m, const char *name, const char *labels, double v);
void metrics_set(struct metrics *m, const char *name, const char *labels, double v);
/* One observation in seconds into a histogram with latency buckets from
 * 0.5 ms to 10 s; name is the family (writes name_bucket/_sum/_count). */
void metrics_observe(struct metrics *m, const char *name, const char *labels, double seconds);

/* Formats up to 4 label pairs (NULL-terminated key, value list) into out,
 * escaping values; returns out (empty string if it would not fit). */
const char *metrics_labels(char *out, size_t size, ...) __attribute__((sentinel));

void metrics_write(const struct metrics *m, struct strbuf *out);

#endif
