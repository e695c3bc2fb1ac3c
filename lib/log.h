/*
 * One line per event on stderr, key=value:
 *   time=2026-11-24T18:00:00.123Z level=info worker=store pid=42 reqid=... msg="..." k=v
 * The master reads each worker's stderr and files the lines per worker.
 * Never pass a secret to these functions.
 */
#ifndef CERTWARD_LOG_H
#define CERTWARD_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

#define LOG_LINE_MAX 4096

/* Buffered mode: lines are collected and written by log_flush() (the worker
 * runtime flushes once per event-loop iteration, and at exit); warnings and
 * errors are written at once. Off by default: one write per line. */
void log_set_buffered(int on);
void log_flush(void);

void log_init(const char *process_name);
/* Send formatted lines to `sink` instead of stderr (the master files its own lines). */
void log_set_sink(void (*sink)(const char *line, size_t len));
void log_set_level(enum log_level min);
const char *log_process_name(void);
const char *log_level_name(enum log_level lvl);

/* kv: extra preformatted "k=v k2=v2" fields or NULL; reqid may be NULL. */
void log_event(enum log_level lvl, const char *reqid, const char *kv, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void log_eventv(enum log_level lvl, const char *reqid, const char *kv, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

/* Formats a complete line (with '\n') into buf; returns its length. */
size_t log_format_line(char *buf, size_t len, enum log_level lvl, const char *process,
		       long pid, const char *reqid, const char *kv, const char *msg);

/* Appends s to out as a double-quoted, escaped value; returns bytes written (bounded). */
size_t log_quote(char *out, size_t outlen, const char *s, size_t slen);

/* "2026-11-24T18:00:00.123Z" */
void log_timestamp(char *buf, size_t len);

#define log_debug(...) log_event(LOG_DEBUG, NULL, NULL, __VA_ARGS__)
#define log_info(...) log_event(LOG_INFO, NULL, NULL, __VA_ARGS__)
#define log_warn(...) log_event(LOG_WARN, NULL, NULL, __VA_ARGS__)
#define log_error(...) log_event(LOG_ERROR, NULL, NULL, __VA_ARGS__)

#endif
