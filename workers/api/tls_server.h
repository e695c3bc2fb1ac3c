/*
 * TLS listener of the api. The certificate comes from the signer, and so
 * does every handshake signature: BoringSSL's asynchronous private-key hooks
 * turn each signing step into a TLS_SIGN request over IPC, and the handshake
 * resumes when the signer answers. The api process never holds the key.
 *
 * Above TLS, an application (HTTP) sees plaintext through struct tls_app.
 */
#ifndef CERTWARD_API_TLS_SERVER_H
#define CERTWARD_API_TLS_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "util.h"
#include "worker.h"

struct tls_server;
struct tls_conn;

struct tls_app {
	/* handshake done; return per-connection state, or NULL to refuse */
	void *(*open)(struct tls_conn *c, const char *alpn);
	/* plaintext received; the app may send, close, or stop reading */
	void (*data)(struct tls_conn *c, void *state, const uint8_t *p, size_t len);
	/* whether the app takes more input now (backpressure) */
	int (*wants_read)(struct tls_conn *c, void *state);
	/* all queued output was written */
	void (*drained)(struct tls_conn *c, void *state);
	/* the connection is gone: free the state */
	void (*close)(struct tls_conn *c, void *state);
};

/* Opens the listening socket (before hardening): api.listen with TLS, or
 * with plain set api.plain_listen without (a plain connection has no
 * handshake; the app sees its bytes as they come). */
struct tls_server *tls_server_new(struct worker *w, const struct cfg *section,
				  const struct tls_app *app, int plain);
/* Fetches the certificate from the signer and starts accepting. */
void tls_server_start(struct tls_server *s);
void tls_server_stop(struct tls_server *s);
void tls_server_metrics(const struct tls_server *s, struct strbuf *out);

/* Queue plaintext for the peer; -1 when the connection is closing or the
 * output bound is exceeded (the connection is then closed). */
int tls_conn_send(struct tls_conn *c, const void *p, size_t len);
/* Close once queued output is written (graceful), or at once. */
void tls_conn_close(struct tls_conn *c, int graceful);
/* Re-evaluate reading after the app's backpressure changed. */
void tls_conn_resume(struct tls_conn *c);
const char *tls_conn_peer(const struct tls_conn *c);
int tls_conn_is_plain(const struct tls_conn *c);
/* SHA-256 (lower-case hex) of the client certificate, verified against
 * the agent identity CA during the handshake; NULL when none was sent. */
const char *tls_conn_client_cert(const struct tls_conn *c);
/* Bytes queued for the peer and not yet written. */
size_t tls_conn_queued(const struct tls_conn *c);
/* Restart the idle timer (activity seen by the app). */
void tls_conn_touch(struct tls_conn *c);

#endif
