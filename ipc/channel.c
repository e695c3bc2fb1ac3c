#include "channel.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* Stop queueing writes to a peer that does not read. */
#define WRITE_QUEUE_MAX (16u << 20)
#define READ_CHUNK 65536
#define INITIAL_BUF (IPC_HEADER_LEN + 65536)

struct pending {
	uint64_t id;
	uv_timer_t timer;
	ipc_reply_cb cb;
	void *arg;
	struct ipc_channel *ch;
	struct pending *prev, *next;
	uint64_t t0_us;
};

static ipc_request_observer observer;
static void *observer_arg;

void ipc_set_request_observer(ipc_request_observer fn, void *arg)
{
	observer = fn;
	observer_arg = arg;
}

struct ipc_channel {
	uv_pipe_t pipe;
	unsigned peer_role;
	char peer[32];
	ipc_msg_cb on_msg;
	ipc_close_cb on_close;
	void *ud;
	uint8_t *buf; /* bytes of the frame being assembled */
	size_t len, cap, max_frame;
	char *chunk;  /* libuv reads land here */
	uint64_t next_id;
	struct pending *pending;
	unsigned npending;
	int closing;
	int reason;
};

struct write_req {
	uv_write_t req;
	uint8_t *frame;
	uv_pipe_t *fd_handle;
};

const char *ipc_channel_peer(const struct ipc_channel *ch)
{
	return ch->peer;
}

unsigned ipc_channel_peer_role(const struct ipc_channel *ch)
{
	return ch->peer_role;
}

void *ipc_channel_userdata(const struct ipc_channel *ch)
{
	return ch->ud;
}

static void free_handle(uv_handle_t *h)
{
	free(h);
}

static void pending_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

static void pending_finish(struct pending *p, int status, struct ipc_msg *reply, int fd)
{
	struct ipc_channel *ch = p->ch;

	if (p->prev)
		p->prev->next = p->next;
	else
		ch->pending = p->next;
	if (p->next)
		p->next->prev = p->prev;
	ch->npending--;
	uv_timer_stop(&p->timer);
	if (observer)
		observer(ch, status == 0 && reply && reply->type == IPC_T_ERROR ? -EPROTO : status,
			 now_us() - p->t0_us, observer_arg);
	p->cb(status, reply, fd, p->arg);
	uv_close((uv_handle_t *)&p->timer, pending_timer_closed);
}

static void channel_closed(uv_handle_t *h)
{
	struct ipc_channel *ch = h->data;

	if (ch->on_close)
		ch->on_close(ch, ch->reason, ch->ud);
	free(ch->buf);
	free(ch->chunk);
	free(ch);
}

static void channel_shutdown(struct ipc_channel *ch, int reason)
{
	if (ch->closing)
		return;
	ch->closing = 1;
	ch->reason = reason;
	uv_read_stop((uv_stream_t *)&ch->pipe);
	while (ch->pending)
		pending_finish(ch->pending, -ECONNRESET, NULL, -1);
	uv_close((uv_handle_t *)&ch->pipe, channel_closed);
}

void ipc_channel_close(struct ipc_channel *ch)
{
	channel_shutdown(ch, 0);
}

static int take_fd(struct ipc_channel *ch)
{
	uv_pipe_t *h;
	uv_os_fd_t raw;
	int fd = -1;

	if (uv_pipe_pending_count(&ch->pipe) <= 0)
		return -1;
	h = malloc(sizeof *h);
	if (!h)
		return -1;
	uv_pipe_init(ch->pipe.loop, h, 0);
	if (uv_accept((uv_stream_t *)&ch->pipe, (uv_stream_t *)h) == 0 &&
	    uv_fileno((uv_handle_t *)h, &raw) == 0)
		fd = fcntl(raw, F_DUPFD_CLOEXEC, 3);
	uv_close((uv_handle_t *)h, free_handle);
	return fd;
}

static void dispatch(struct ipc_channel *ch, struct ipc_msg *m, int fd)
{
	if (m->flags & IPC_F_REPLY) {
		for (struct pending *p = ch->pending; p; p = p->next) {
			if (p->id == m->id) {
				pending_finish(p, 0, m, fd);
				return;
			}
		}
		/* a reply after its deadline: nobody waits for it any more */
		if (fd >= 0)
			close(fd);
		return;
	}
	if (ch->on_msg)
		ch->on_msg(ch, m, fd, ch->ud);
	else if (fd >= 0)
		close(fd);
}

static void protocol_error(struct ipc_channel *ch, int rc, const struct ipc_header *h)
{
	char kv[160];

	snprintf(kv, sizeof kv, "peer=%s type=%u len=%u", ch->peer, h ? h->type : 0,
		 h ? h->len : 0);
	log_event(LOG_ERROR, NULL, kv, "ipc protocol error, dropping channel: %s", ipc_strerror(rc));
	channel_shutdown(ch, rc);
}

/* Consume every complete frame in the buffer. */
static void drain(struct ipc_channel *ch)
{
	size_t off = 0, need = 0;

	while (!ch->closing && ch->len - off >= IPC_HEADER_LEN) {
		struct ipc_header h;
		struct ipc_msg m;
		int rc, fd = -1;
		size_t flen;

		rc = ipc_header_decode(ch->buf + off, &h, ch->peer_role);
		if (rc != IPC_OK) {
			protocol_error(ch, rc, &h);
			return;
		}
		flen = IPC_HEADER_LEN + (size_t)h.len;
		if (ch->len - off < flen) {
			need = flen;
			break;
		}
		rc = ipc_decode(ch->buf + off, flen, ch->peer_role, &m);
		if (rc != IPC_OK) {
			protocol_error(ch, rc, &h);
			return;
		}
		off += flen;
		if (m.flags & IPC_F_FD) {
			fd = take_fd(ch);
			if (fd < 0) {
				ipc_msg_free(&m);
				protocol_error(ch, IPC_E_MISSING_FIELD, &h);
				return;
			}
		}
		dispatch(ch, &m, fd);
		ipc_msg_free(&m);
	}
	if (ch->closing)
		return;
	if (off) {
		memmove(ch->buf, ch->buf + off, ch->len - off);
		ch->len -= off;
	}
	/* the buffer grows to the frame being assembled, never past what its
	 * (already validated) header announced */
	if (need > ch->cap) {
		uint8_t *p = realloc(ch->buf, need);

		if (!p) {
			protocol_error(ch, IPC_E_NOMEM, NULL);
			return;
		}
		ch->buf = p;
		ch->cap = need;
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct ipc_channel *ch = h->data;

	buf->base = ch->chunk;
	buf->len = READ_CHUNK;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct ipc_channel *ch = s->data;
	size_t n, copied = 0;

	if (nread < 0) {
		channel_shutdown(ch, nread == UV_EOF ? -EPIPE : (int)nread);
		return;
	}
	n = (size_t)nread;
	/* Append in steps no larger than one maximal frame so a burst of frames
	 * never needs more than a bounded buffer. */
	while (copied < n && !ch->closing) {
		size_t room = ch->cap - ch->len;
		size_t take = n - copied < room ? n - copied : room;

		if (take == 0) {
			/* buffer holds a full cap of bytes without a complete frame */
			protocol_error(ch, IPC_E_OVERSIZE, NULL);
			return;
		}
		memcpy(ch->buf + ch->len, buf->base + copied, take);
		ch->len += take;
		copied += take;
		drain(ch);
	}
}

struct ipc_channel *ipc_channel_open(uv_loop_t *loop, int fd, unsigned peer_role,
				     const char *peer_name, ipc_msg_cb on_msg,
				     ipc_close_cb on_close, void *ud)
{
	struct ipc_channel *ch = calloc(1, sizeof *ch);

	if (!ch)
		return NULL;
	ch->peer_role = peer_role;
	snprintf(ch->peer, sizeof ch->peer, "%s", peer_name);
	ch->on_msg = on_msg;
	ch->on_close = on_close;
	ch->ud = ud;
	ch->max_frame = IPC_HEADER_LEN + ipc_payload_bound_max();
	/* most frames are small: start there and grow for a large one */
	ch->cap = ch->max_frame < INITIAL_BUF ? ch->max_frame : INITIAL_BUF;
	ch->buf = malloc(ch->cap);
	ch->chunk = malloc(READ_CHUNK);
	ch->next_id = 1;
	if (!ch->buf || !ch->chunk || uv_pipe_init(loop, &ch->pipe, 1) != 0) {
		free(ch->buf);
		free(ch->chunk);
		free(ch);
		return NULL;
	}
	ch->pipe.data = ch;
	if (uv_pipe_open(&ch->pipe, fd) != 0 ||
	    uv_read_start((uv_stream_t *)&ch->pipe, on_alloc, on_read) != 0) {
		ch->closing = 1;
		ch->on_close = NULL;
		uv_close((uv_handle_t *)&ch->pipe, channel_closed);
		return NULL;
	}
	return ch;
}

static void on_written(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;

	if (w->fd_handle)
		uv_close((uv_handle_t *)w->fd_handle, free_handle);
	free(w->frame);
	free(w);
}

static int send_frame(struct ipc_channel *ch, struct ipc_msg *m, int fd_pass)
{
	struct write_req *w;
	uv_buf_t b;
	size_t len;
	int rc;

	if (ch->closing) {
		rc = -EPIPE;
		goto fail;
	}
	if (uv_stream_get_write_queue_size((uv_stream_t *)&ch->pipe) > WRITE_QUEUE_MAX) {
		rc = -ENOBUFS;
		goto fail;
	}
	if (fd_pass >= 0)
		m->flags |= IPC_F_FD;
	w = calloc(1, sizeof *w);
	if (!w) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = ipc_encode(m, &w->frame, &len);
	if (rc != IPC_OK) {
		free(w);
		rc = rc == IPC_E_NOMEM ? -ENOMEM : -EINVAL;
		goto fail;
	}
	if (fd_pass >= 0) {
		w->fd_handle = malloc(sizeof *w->fd_handle);
		if (!w->fd_handle || uv_pipe_init(ch->pipe.loop, w->fd_handle, 0) != 0) {
			free(w->fd_handle);
			free(w->frame);
			free(w);
			rc = -ENOMEM;
			goto fail;
		}
		if (uv_pipe_open(w->fd_handle, fd_pass) != 0) {
			uv_close((uv_handle_t *)w->fd_handle, free_handle);
			free(w->frame);
			free(w);
			rc = -EBADF;
			goto fail;
		}
		fd_pass = -1; /* the handle owns it now */
	}
	b = uv_buf_init((char *)w->frame, (unsigned)len);
	rc = uv_write2(&w->req, (uv_stream_t *)&ch->pipe, &b, 1, (uv_stream_t *)w->fd_handle,
		       on_written);
	if (rc != 0) {
		if (w->fd_handle)
			uv_close((uv_handle_t *)w->fd_handle, free_handle);
		free(w->frame);
		free(w);
		return rc;
	}
	return 0;
fail:
	if (fd_pass >= 0)
		close(fd_pass);
	return rc;
}

int ipc_send(struct ipc_channel *ch, struct ipc_msg *m, int fd_pass)
{
	m->flags &= (uint16_t)~IPC_F_REPLY;
	if (m->id == 0)
		m->id = ch->next_id++;
	return send_frame(ch, m, fd_pass);
}

int ipc_reply(struct ipc_channel *ch, const struct ipc_msg *req, struct ipc_msg *reply)
{
	reply->flags |= IPC_F_REPLY;
	reply->id = req->id;
	return send_frame(ch, reply, -1);
}

int ipc_reply_error(struct ipc_channel *ch, const struct ipc_msg *req, int code, const char *message)
{
	struct ipc_msg r = {.type = IPC_T_ERROR};

	r.u.error.code = (uint32_t)code;
	r.u.error.message = message;
	return ipc_reply(ch, req, &r);
}

static void on_deadline(uv_timer_t *t)
{
	pending_finish(t->data, -ETIMEDOUT, NULL, -1);
}

int ipc_request(struct ipc_channel *ch, struct ipc_msg *m, int fd_pass, uint64_t timeout_ms,
		ipc_reply_cb cb, void *arg)
{
	struct pending *p;
	int rc;

	if (ch->closing || ch->npending >= IPC_MAX_PENDING) {
		if (fd_pass >= 0)
			close(fd_pass);
		return ch->closing ? -EPIPE : -EAGAIN;
	}
	p = calloc(1, sizeof *p);
	if (!p) {
		if (fd_pass >= 0)
			close(fd_pass);
		return -ENOMEM;
	}
	m->flags &= (uint16_t)~IPC_F_REPLY;
	m->id = ch->next_id++;
	rc = send_frame(ch, m, fd_pass);
	if (rc != 0) {
		free(p);
		return rc;
	}
	p->id = m->id;
	p->cb = cb;
	p->t0_us = now_us();
	p->arg = arg;
	p->ch = ch;
	uv_timer_init(ch->pipe.loop, &p->timer);
	p->timer.data = p;
	uv_timer_start(&p->timer, on_deadline, timeout_ms, 0);
	p->next = ch->pending;
	if (ch->pending)
		ch->pending->prev = p;
	ch->pending = p;
	ch->npending++;
	return 0;
}

#if CERTWARD_TEST_HOOKS
int ipc_send_raw(struct ipc_channel *ch, const void *bytes, size_t len)
{
	struct write_req *w;
	uv_buf_t b;

	if (ch->closing)
		return -EPIPE;
	w = calloc(1, sizeof *w);
	if (!w || !(w->frame = malloc(len))) {
		free(w);
		return -ENOMEM;
	}
	memcpy(w->frame, bytes, len);
	b = uv_buf_init((char *)w->frame, (unsigned)len);
	if (uv_write(&w->req, (uv_stream_t *)&ch->pipe, &b, 1, on_written) != 0) {
		free(w->frame);
		free(w);
		return -EIO;
	}
	return 0;
}
#endif
