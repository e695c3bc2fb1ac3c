/*
 * Per-worker log files. Each worker's stderr (and stdout) is a pipe read
 * here; every line lands in <log_dir>/<worker>.log (api instances share
 * api.log: the pid tells them apart), and in foreground mode on our stderr
 * too, prefixed with the worker's name. Lines the worker did not format
 * itself (a sanitizer report, a crash message) are wrapped into the same
 * key=value shape. SIGUSR1 reopens the files for logrotate.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "master.h"

struct log_file {
	char name[32];
	int fd;
};

struct log_stream {
	uv_pipe_t pipe;
	char name[32];     /* worker instance, for the echo prefix */
	char file[32];     /* which log file */
	long pid;
	size_t len;
	char buf[LOG_LINE_MAX];
	char chunk[16384];
	/* complete lines of one read, written to the file together */
	size_t outlen;
	char out[16384 + LOG_LINE_MAX + 512];
};

static char log_dir[1024];
static struct log_file files[IPC_ROLE_COUNT];

static int open_log(const char *name)
{
	char path[1100];
	int fd;

	snprintf(path, sizeof path, "%s/%s.log", log_dir, name);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		fprintf(stderr, "certwardd: cannot open log file %s: %s\n", path, strerror(errno));
	return fd;
}

static struct log_file *file_for(const char *name)
{
	for (size_t i = 0; i < IPC_ROLE_COUNT; i++) {
		if (files[i].name[0] && strcmp(files[i].name, name) == 0)
			return &files[i];
		if (!files[i].name[0]) {
			snprintf(files[i].name, sizeof files[i].name, "%s", name);
			files[i].fd = open_log(name);
			return &files[i];
		}
	}
	return NULL;
}

int logs_open(const char *dir)
{
	if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
		fprintf(stderr, "certwardd: cannot create log directory %s: %s\n", dir,
			strerror(errno));
		return -1;
	}
	snprintf(log_dir, sizeof log_dir, "%s", dir);
	return file_for("master") && file_for("master")->fd >= 0 ? 0 : -1;
}

void logs_reopen(void)
{
	for (size_t i = 0; i < IPC_ROLE_COUNT; i++) {
		if (!files[i].name[0])
			continue;
		if (files[i].fd >= 0)
			close(files[i].fd);
		files[i].fd = open_log(files[i].name);
	}
	log_info("log files reopened");
}

void logs_close(void)
{
	for (size_t i = 0; i < IPC_ROLE_COUNT; i++) {
		if (files[i].name[0] && files[i].fd >= 0)
			close(files[i].fd);
		files[i].name[0] = '\0';
		files[i].fd = -1;
	}
}

static void echo(const char *echo_name, const char *line, size_t len)
{
	char out[LOG_LINE_MAX + 40];
	int n = snprintf(out, sizeof out, "%s: %.*s", echo_name, (int)len, line);

	if (n > 0)
		(void)!write(STDERR_FILENO, out, (size_t)n < sizeof out ? (size_t)n : sizeof out - 1);
}

static void emit(const char *file, const char *echo_name, const char *line, size_t len)
{
	struct log_file *f = log_dir[0] ? file_for(file) : NULL;

	if (f && f->fd >= 0)
		(void)!write(f->fd, line, len);
	if (M.foreground || !f || f->fd < 0)
		echo(echo_name, line, len);
}

static void stream_flush(struct log_stream *ls)
{
	struct log_file *f = log_dir[0] ? file_for(ls->file) : NULL;

	if (ls->outlen && f && f->fd >= 0)
		(void)!write(f->fd, ls->out, ls->outlen);
	ls->outlen = 0;
}

/* A worker's line: echoed at once when asked to, filed with the others of
 * the same read (one write per read, not per line: the api logs a line per
 * request). */
static void stream_emit(struct log_stream *ls, const char *line, size_t len)
{
	struct log_file *f = log_dir[0] ? file_for(ls->file) : NULL;

	if (M.foreground || !f || f->fd < 0)
		echo(ls->name, line, len);
	if (!f || f->fd < 0)
		return;
	if (ls->outlen + len > sizeof ls->out)
		stream_flush(ls);
	memcpy(ls->out + ls->outlen, line, len);
	ls->outlen += len;
}

void logs_master_sink(const char *line, size_t len)
{
	emit("master", "master", line, len);
}

static void stream_line(struct log_stream *ls, const char *line, size_t len)
{
	char wrapped[LOG_LINE_MAX + 512];
	char raw[LOG_LINE_MAX];
	size_t n;

	if (len == 0)
		return;
	if (len > 5 && memcmp(line, "time=", 5) == 0) {
		memcpy(wrapped, line, len);
		wrapped[len] = '\n';
		stream_emit(ls, wrapped, len + 1);
		return;
	}
	memcpy(raw, line, len < sizeof raw ? len : sizeof raw - 1);
	raw[len < sizeof raw ? len : sizeof raw - 1] = '\0';
	n = log_format_line(wrapped, sizeof wrapped, LOG_ERROR, ls->name, ls->pid, NULL,
			    "source=stderr", raw);
	stream_emit(ls, wrapped, n);
}

static void stream_closed(uv_handle_t *h)
{
	free(h->data);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct log_stream *ls = h->data;

	buf->base = ls->chunk;
	buf->len = sizeof ls->chunk;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct log_stream *ls = st->data;

	if (nread < 0) {
		if (ls->len)
			stream_line(ls, ls->buf, ls->len);
		stream_flush(ls);
		uv_close((uv_handle_t *)st, stream_closed);
		return;
	}
	for (ssize_t i = 0; i < nread; i++) {
		char c = b->base[i];

		if (c == '\n') {
			stream_line(ls, ls->buf, ls->len);
			ls->len = 0;
			continue;
		}
		/* an overlong line is cut into bounded pieces */
		if (ls->len == sizeof ls->buf - 1) {
			stream_line(ls, ls->buf, ls->len);
			ls->len = 0;
		}
		ls->buf[ls->len++] = c;
	}
	stream_flush(ls);
}

void logs_attach(const struct slot *s, int fd)
{
	struct log_stream *ls = calloc(1, sizeof *ls);

	if (!ls) {
		close(fd);
		return;
	}
	snprintf(ls->name, sizeof ls->name, "%s", s->name);
	snprintf(ls->file, sizeof ls->file, "%s", ipc_role_name(s->role));
	ls->pid = (long)s->pid;
	uv_pipe_init(M.loop, &ls->pipe, 0);
	ls->pipe.data = ls;
	if (uv_pipe_open(&ls->pipe, fd) != 0 ||
	    uv_read_start((uv_stream_t *)&ls->pipe, on_alloc, on_read) != 0) {
		uv_close((uv_handle_t *)&ls->pipe, stream_closed);
		return;
	}
}
