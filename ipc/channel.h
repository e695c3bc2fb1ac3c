/*
 * A framed, typed IPC channel over one end of an AF_UNIX stream socketpair,
 * driven by a libuv pipe in IPC mode (so file descriptors can travel).
 *
 * Requests carry a correlation id and a deadline; when the channel closes
 * (peer died, protocol error) every pending request fails with -ECONNRESET,
 * and a request past its deadline fails with -ETIMEDOUT. Nothing hangs.
 */
#ifndef CERTWARD_IPC_CHANNEL_H
#define CERTWARD_IPC_CHANNEL_H

#include <stdint.h>
#include <uv.h>

#include "build_config.h"
#include "codec.h"

struct ipc_channel;

/* A message that is not a reply to one of our requests. `fd` is -1 or a file
 * descriptor the callee now owns. `m` is released after the callback. */
typedef void (*ipc_msg_cb)(struct ipc_channel *ch, struct ipc_msg *m, int fd, void *ud);
/* The channel is gone (reason: 0 on local close, -EPIPE/EOF, or an IPC_E_*
 * protocol error). Called once; the channel is freed after it returns. */
typedef void (*ipc_close_cb)(struct ipc_channel *ch, int reason, void *ud);
/* status 0: `reply` is the answer (maybe an ERROR message); else a negative
 * errno and reply is NULL. `reply` is released after the callback. */
typedef void (*ipc_reply_cb)(int status, struct ipc_msg *reply, int fd, void *arg);

/* Told of every request's outcome in this process, before its callback:
 * status 0, -EPROTO (an ERROR reply), -ETIMEDOUT or -ECONNRESET (the channel
 * closed), with the time since it was sent. For metrics. */
typedef void (*ipc_request_observer)(const struct ipc_channel *ch, int status, uint64_t duration_us,
				     void *arg);
void ipc_set_request_observer(ipc_request_observer fn, void *arg);

#define IPC_MAX_PENDING 1024

struct ipc_channel *ipc_channel_open(uv_loop_t *loop, int fd, unsigned peer_role,
				     const char *peer_name, ipc_msg_cb on_msg,
				     ipc_close_cb on_close, void *ud);
/* Closes the channel: pending requests fail with -ECONNRESET, on_close runs
 * with reason 0 (from the loop, not from inside this call). */
void ipc_channel_close(struct ipc_channel *ch);

const char *ipc_channel_peer(const struct ipc_channel *ch);
unsigned ipc_channel_peer_role(const struct ipc_channel *ch);
void *ipc_channel_userdata(const struct ipc_channel *ch);

#if CERTWARD_TEST_HOOKS
/* Test builds only: write raw bytes, bypassing the encoder. */
int ipc_send_raw(struct ipc_channel *ch, const void *bytes, size_t len);
#endif

/* One-way message. fd_pass >= 0 is sent along and then closed here. */
int ipc_send(struct ipc_channel *ch, struct ipc_msg *m, int fd_pass);
/* Answer `req` with `reply` (sets the reply flag and id). */
int ipc_reply(struct ipc_channel *ch, const struct ipc_msg *req, struct ipc_msg *reply);
int ipc_reply_error(struct ipc_channel *ch, const struct ipc_msg *req, int code, const char *message);
/* Request with a deadline in milliseconds. */
int ipc_request(struct ipc_channel *ch, struct ipc_msg *m, int fd_pass, uint64_t timeout_ms,
		ipc_reply_cb cb, void *arg);

#endif
