#include "log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char proc_name[32] = "certward";
static enum log_level min_level = LOG_INFO;
static void (*line_sink)(const char *line, size_t len);
/* buffered mode (workers): lines wait here until log_flush() */
static int buffered;
static size_t pending_len;
static char pending[4 * LOG_LINE_MAX];

void log_set_buffered(int on)
{
	log_flush();
	buffered = on;
}

void log_flush(void)
{
	size_t off = 0;

	while (off < pending_len) {
		ssize_t n = write(STDERR_FILENO, pending + off, pending_len - off);

		if (n <= 0)
			break; /* the master is gone: nobody to tell */
		off += (size_t)n;
	}
	pending_len = 0;
}

void log_set_sink(void (*sink)(const char *line, size_t len))
{
	line_sink = sink;
}

void log_init(const char *process_name)
{
	snprintf(proc_name, sizeof proc_name, "%s", process_name);
}

void log_set_level(enum log_level min)
{
	min_level = min;
}

const char *log_process_name(void)
{
	return proc_name;
}

const char *log_level_name(enum log_level lvl)
{
	switch (lvl) {
	case LOG_DEBUG: return "debug";
	case LOG_INFO: return "info";
	case LOG_WARN: return "warn";
	case LOG_ERROR: return "error";
	}
	return "info";
}

void log_timestamp(char *buf, size_t len)
{
	struct timeval tv;
	struct tm tm;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000));
}

size_t log_quote(char *out, size_t outlen, const char *s, size_t slen)
{
	size_t o = 0;

	if (outlen < 3)
		return 0;
	out[o++] = '"';
	for (size_t i = 0; i < slen; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[5];
		size_t n;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			n = 2;
		} else if (c == '\n') {
			memcpy(esc, "\\n", 2);
			n = 2;
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof esc, "\\x%02x", c);
			n = 4;
		} else {
			esc[0] = (char)c;
			n = 1;
		}
		/* keep room for the closing quote and NUL */
		if (o + n + 2 > outlen)
			break;
		memcpy(out + o, esc, n);
		o += n;
	}
	out[o++] = '"';
	out[o] = '\0';
	return o;
}

size_t log_format_line(char *buf, size_t len, enum log_level lvl, const char *process,
		       long pid, const char *reqid, const char *kv, const char *msg)
{
	char ts[40];
	int n;
	size_t o;

	log_timestamp(ts, sizeof ts);
	n = snprintf(buf, len, "time=%s level=%s worker=%s pid=%ld", ts, log_level_name(lvl),
		     process, pid);
	if (n < 0)
		return 0;
	o = (size_t)n < len ? (size_t)n : len - 1;
	if (reqid && *reqid && o < len) {
		n = snprintf(buf + o, len - o, " reqid=%s", reqid);
		if (n > 0)
			o = o + (size_t)n < len ? o + (size_t)n : len - 1;
	}
	if (o + 6 < len) {
		memcpy(buf + o, " msg=", 5);
		o += 5;
		o += log_quote(buf + o, len - o - 1, msg, strlen(msg));
	}
	if (kv && *kv && o + 2 < len) {
		n = snprintf(buf + o, len - o, " %s", kv);
		if (n > 0)
			o = o + (size_t)n < len ? o + (size_t)n : len - 1;
	}
	if (o + 1 >= len)
		o = len - 2;
	buf[o++] = '\n';
	buf[o] = '\0';
	return o;
}

void log_eventv(enum log_level lvl, const char *reqid, const char *kv, const char *fmt, va_list ap)
{
	char msg[LOG_LINE_MAX / 2];
	char line[LOG_LINE_MAX];
	size_t n;

	if (lvl < min_level)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	n = log_format_line(line, sizeof line, lvl, proc_name, (long)getpid(), reqid, kv, msg);
	if (line_sink) {
		line_sink(line, n);
		return;
	}
	if (buffered) {
		if (pending_len + n > sizeof pending)
			log_flush();
		memcpy(pending + pending_len, line, n);
		pending_len += n;
		/* what an operator must see is not held back */
		if (lvl >= LOG_WARN)
			log_flush();
		return;
	}
	/* one write per line so lines from one process never interleave */
	(void)!write(STDERR_FILENO, line, n);
}

void log_event(enum log_level lvl, const char *reqid, const char *kv, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_eventv(lvl, reqid, kv, fmt, ap);
	va_end(ap);
}
