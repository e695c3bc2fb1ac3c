#include "tls_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec.h"
#include "log.h"
#include "util.h"

#define READ_CHUNK 16384
#define OUTPUT_MAX (4u << 20)
#define ACCEPT_BURST 64
#define CERT_RETRY_MS 500

enum conn_state { CONN_HANDSHAKE, CONN_OPEN, CONN_CLOSING };

struct sign_op {
	struct tls_conn *conn; /* NULL once the connection is gone */
	int done, failed;
	size_t len;
	uint8_t sig[1024];
};

struct tls_conn {
	struct tls_server *srv;
	struct tls_conn *prev, *next;
	int fd;
	int plain; /* the plain-HTTP listener's: no TLS, ssl is NULL */
	uv_poll_t poll;
	int poll_events; /* what poll watches for now (0: stopped) */
	uv_timer_t timer;
	int handles_open;
	SSL *ssl;
	enum conn_state state;
	int graceful_close;
	int in_drive; /* drive() is on the stack: it will flush and re-check itself */
	struct sign_op *op;
	char peer[64];
	char client_cert[65]; /* SHA-256 (hex) of the verified client certificate, "" for none */
	uint8_t *out;
	size_t out_len, out_cap;
	void *app_state;
	int app_open;
};

struct tls_server {
	struct worker *w;
	uv_loop_t *loop;
	const struct tls_app *app;
	int plain;
	const char *label; /* "https" or "plain", in metrics */
	int listen_fd;
	uv_poll_t listen_poll;
	int listening;
	uv_timer_t cert_timer;
	SSL_CTX *ctx;
	int min_version;
	unsigned max_conns, nconns;
	uint64_t handshake_timeout_ms, idle_timeout_ms;
	struct tls_conn *conns;
	int stopping;
	uint64_t accepted, refused, handshakes, handshake_failures, sign_requests, sign_failures;
	uint64_t last_fail_log_ms, fail_logs_suppressed;
};

/* Failed handshakes can come by the thousand (a scanner, or a signer
 * restart): one line per second, with the count of those not logged. */
static int fail_log_allowed(struct tls_server *s)
{
	uint64_t now = now_ms();

	if (now - s->last_fail_log_ms < 1000) {
		s->fail_logs_suppressed++;
		return 0;
	}
	s->last_fail_log_ms = now;
	return 1;
}

static void drive(struct tls_conn *c);

/* ---- connection teardown ---- */

static void conn_handle_closed(uv_handle_t *h)
{
	struct tls_conn *c = h->data;

	if (--c->handles_open > 0)
		return;
	close(c->fd);
	free(c->out);
	free(c);
}

static void conn_free(struct tls_conn *c)
{
	struct tls_server *s = c->srv;

	c->state = CONN_CLOSING;
	if (c->app_open && s->app->close)
		s->app->close(c, c->app_state);
	c->app_open = 0;
	if (c->op) {
		c->op->conn = NULL; /* the reply callback frees it */
		c->op = NULL;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	SSL_free(c->ssl);
	c->ssl = NULL;
	uv_poll_stop(&c->poll);
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->poll, conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

void tls_conn_close(struct tls_conn *c, int graceful)
{
	if (c->state == CONN_CLOSING)
		return;
	if (graceful && c->out_len) {
		c->graceful_close = 1; /* drive() closes once the output is out */
		return;
	}
	if (c->state == CONN_OPEN && c->ssl)
		SSL_shutdown(c->ssl); /* best effort close_notify; never waits */
	conn_free(c);
}

const char *tls_conn_peer(const struct tls_conn *c)
{
	return c->peer;
}

const char *tls_conn_client_cert(const struct tls_conn *c)
{
	return c->client_cert[0] ? c->client_cert : NULL;
}

int tls_conn_is_plain(const struct tls_conn *c)
{
	return c->plain;
}

size_t tls_conn_queued(const struct tls_conn *c)
{
	return c->out_len;
}

static void on_timeout(uv_timer_t *t)
{
	struct tls_conn *c = t->data;
	char kv[96];

	snprintf(kv, sizeof kv, "client=%s", c->peer);
	if (c->state == CONN_HANDSHAKE) {
		c->srv->handshake_failures++;
		log_event(LOG_INFO, NULL, kv, "TLS handshake timed out");
	}
	tls_conn_close(c, 0);
}

void tls_conn_touch(struct tls_conn *c)
{
	if (c->state == CONN_OPEN)
		uv_timer_start(&c->timer, on_timeout, c->srv->idle_timeout_ms, 0);
}

/* ---- I/O ---- */

static void on_io(uv_poll_t *p, int status, int events)
{
	struct tls_conn *c = p->data;

	if (status < 0) {
		tls_conn_close(c, 0);
		return;
	}
	drive(c);
}

/* Only when the events change: libuv's uv_poll_start takes the descriptor
 * out of epoll and adds it again, two system calls each time. */
static void watch(struct tls_conn *c, int events)
{
	if (c->state == CONN_CLOSING || events == c->poll_events)
		return;
	if (events)
		uv_poll_start(&c->poll, events, on_io);
	else
		uv_poll_stop(&c->poll);
	c->poll_events = events;
}

/* Write what is queued; returns the poll events still needed, or -1 on error. */
static int flush(struct tls_conn *c)
{
	while (c->out_len) {
		int n;

		if (c->plain) {
			ssize_t w = write(c->fd, c->out, c->out_len);

			if (w < 0)
				return errno == EAGAIN || errno == EINTR ? UV_WRITABLE : -1;
			n = (int)w;
		} else {
			n = SSL_write(c->ssl, c->out, (int)(c->out_len > INT32_MAX ? INT32_MAX : c->out_len));
		}
		if (n > 0) {
			memmove(c->out, c->out + n, c->out_len - (size_t)n);
			c->out_len -= (size_t)n;
			continue;
		}
		switch (SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_WRITE: return UV_WRITABLE;
		case SSL_ERROR_WANT_READ: return UV_READABLE;
		default: ERR_clear_error(); return -1;
		}
	}
	return 0;
}

int tls_conn_send(struct tls_conn *c, const void *p, size_t len)
{
	if (c->state != CONN_OPEN || c->graceful_close)
		return -1;
	if (c->out_len + len > OUTPUT_MAX) {
		log_warn("client %s does not read its responses: closing", c->peer);
		tls_conn_close(c, 0);
		return -1;
	}
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		uint8_t *n;

		while (cap < c->out_len + len)
			cap *= 2;
		n = realloc(c->out, cap);
		if (!n) {
			tls_conn_close(c, 0);
			return -1;
		}
		c->out = n;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, p, len);
	c->out_len += len;
	return 0;
}

/* A client certificate reaches this point only verified against the agent
 * identity CA (make_ctx); whether it is an identity of ours, and still
 * valid, is the router's question (the fingerprint is what it asks with). */
static void client_identity(struct tls_conn *c)
{
	X509 *peer = SSL_get_peer_certificate(c->ssl);
	uint8_t *der = NULL, digest[SHA256_DIGEST_LENGTH];
	int len;

	c->client_cert[0] = '\0';
	if (!peer)
		return;
	if ((len = i2d_X509(peer, &der)) > 0) {
		SHA256(der, (size_t)len, digest);
		hex_encode(digest, sizeof digest, c->client_cert);
	}
	OPENSSL_free(der);
	X509_free(peer);
}

static void handshake_done(struct tls_conn *c)
{
	const uint8_t *alpn = NULL;
	unsigned alpn_len = 0;
	char proto[32] = "";

	c->state = CONN_OPEN;
	c->srv->handshakes++;
	client_identity(c);
	SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
	if (alpn_len && alpn_len < sizeof proto)
		memcpy(proto, alpn, alpn_len);
	c->app_state = c->srv->app->open(c, proto);
	if (!c->app_state) {
		tls_conn_close(c, 0);
		return;
	}
	c->app_open = 1;
	tls_conn_touch(c);
}

static void drive_once(struct tls_conn *c);

static void drive(struct tls_conn *c)
{
	if (c->in_drive)
		return;
	c->in_drive = 1;
	drive_once(c);
	c->in_drive = 0;
}

static void drive_once(struct tls_conn *c)
{
	uint8_t buf[READ_CHUNK];
	int want = 0;

	if (c->state == CONN_HANDSHAKE) {
		int r = SSL_do_handshake(c->ssl);

		if (r != 1) {
			switch (SSL_get_error(c->ssl, r)) {
			case SSL_ERROR_WANT_READ: watch(c, UV_READABLE); return;
			case SSL_ERROR_WANT_WRITE: watch(c, UV_WRITABLE); return;
			case SSL_ERROR_WANT_PRIVATE_KEY_OPERATION: watch(c, 0); return;
			default: {
				char kv[96], err[160];

				ERR_error_string_n(ERR_peek_error(), err, sizeof err);
				ERR_clear_error();
				c->srv->handshake_failures++;
				if (fail_log_allowed(c->srv)) {
					snprintf(kv, sizeof kv, "client=%s suppressed=%llu", c->peer,
						 (unsigned long long)c->srv->fail_logs_suppressed);
					c->srv->fail_logs_suppressed = 0;
					log_event(LOG_INFO, NULL, kv, "TLS handshake failed: %s", err);
				}
				tls_conn_close(c, 0);
				return;
			}
			}
		}
		handshake_done(c);
		if (c->state != CONN_OPEN)
			return;
	}
	if (c->state != CONN_OPEN)
		return;
	for (;;) {
		int n, rc;

		rc = flush(c);
		if (rc < 0) {
			tls_conn_close(c, 0);
			return;
		}
		want = rc;
		if (c->out_len == 0 && c->graceful_close) {
			tls_conn_close(c, 0);
			return;
		}
		if (c->out_len == 0 && c->srv->app->drained)
			c->srv->app->drained(c, c->app_state);
		if (c->state != CONN_OPEN)
			return;
		if (c->out_len && rc == 0)
			continue; /* the drained callback queued more */
		if (c->graceful_close || !c->srv->app->wants_read(c, c->app_state))
			break;
		if (c->plain) {
			ssize_t r = read(c->fd, buf, sizeof buf);

			if (r > 0) {
				tls_conn_touch(c);
				c->srv->app->data(c, c->app_state, buf, (size_t)r);
				if (c->state != CONN_OPEN)
					return;
				continue;
			}
			if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
				want |= UV_READABLE;
				break;
			}
			tls_conn_close(c, 0); /* EOF or error */
			return;
		}
		n = SSL_read(c->ssl, buf, sizeof buf);
		if (n > 0) {
			tls_conn_touch(c);
			c->srv->app->data(c, c->app_state, buf, (size_t)n);
			if (c->state != CONN_OPEN)
				return;
			continue;
		}
		switch (SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_READ: want |= UV_READABLE; break;
		case SSL_ERROR_WANT_WRITE: want |= UV_WRITABLE; break;
		default:
			/* close_notify, EOF, or a TLS error */
			ERR_clear_error();
			tls_conn_close(c, 0);
			return;
		}
		break;
	}
	watch(c, want);
}

void tls_conn_resume(struct tls_conn *c)
{
	if (c->state == CONN_OPEN)
		drive(c);
}

/* ---- private key offload ---- */

static void on_signature(int status, struct ipc_msg *reply, int fd, void *arg)
{
	struct sign_op *op = arg;
	struct tls_conn *c = op->conn;

	if (fd >= 0)
		close(fd);
	if (!c) {
		free(op); /* the connection went away meanwhile */
		return;
	}
	op->done = 1;
	if (status != 0 || reply->type != IPC_T_TLS_SIGNATURE ||
	    reply->u.tls_signature.signature.len > sizeof op->sig) {
		op->failed = 1;
		c->srv->sign_failures++;
	} else {
		op->len = reply->u.tls_signature.signature.len;
		memcpy(op->sig, reply->u.tls_signature.signature.ptr, op->len);
	}
	drive(c);
}

static enum ssl_private_key_result_t key_sign(SSL *ssl, uint8_t *out, size_t *out_len,
					      size_t max_out, uint16_t alg, const uint8_t *in,
					      size_t in_len)
{
	struct tls_conn *c = SSL_get_app_data(ssl);
	struct ipc_channel *ch = worker_peer(c->srv->w, IPC_ROLE_SIGNER);
	struct ipc_msg m = {.type = IPC_T_TLS_SIGN};
	struct sign_op *op;

	c->srv->sign_requests++;
	if (!ch) {
		c->srv->sign_failures++;
		return ssl_private_key_failure; /* the signer is restarting */
	}
	op = calloc(1, sizeof *op);
	if (!op)
		return ssl_private_key_failure;
	op->conn = c;
	m.u.tls_sign.algorithm = alg;
	m.u.tls_sign.input.ptr = in;
	m.u.tls_sign.input.len = (uint32_t)in_len;
	if (ipc_request(ch, &m, -1, worker_ipc_timeout_ms(c->srv->w), on_signature, op) != 0) {
		free(op);
		c->srv->sign_failures++;
		return ssl_private_key_failure;
	}
	c->op = op;
	return ssl_private_key_retry;
}

static enum ssl_private_key_result_t key_complete(SSL *ssl, uint8_t *out, size_t *out_len,
						  size_t max_out)
{
	struct tls_conn *c = SSL_get_app_data(ssl);
	struct sign_op *op = c->op;
	enum ssl_private_key_result_t r;

	if (!op)
		return ssl_private_key_failure;
	if (!op->done)
		return ssl_private_key_retry;
	if (op->failed || op->len > max_out) {
		r = ssl_private_key_failure;
	} else {
		memcpy(out, op->sig, op->len);
		*out_len = op->len;
		r = ssl_private_key_success;
	}
	c->op = NULL;
	free(op);
	return r;
}

static const SSL_PRIVATE_KEY_METHOD key_method = {
	.sign = key_sign,
	.decrypt = NULL,
	.complete = key_complete,
};

/* ---- accepting ---- */

static void accept_one(struct tls_server *s, int fd, const struct sockaddr_storage *sa)
{
	struct tls_conn *c = calloc(1, sizeof *c);
	char host[INET6_ADDRSTRLEN] = "?";
	int one = 1;

	if (!c || (!s->plain && !(c->ssl = SSL_new(s->ctx)))) {
		free(c);
		close(fd);
		return;
	}
	if (sa->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof host);
	else if (sa->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof host);
	snprintf(c->peer, sizeof c->peer, "%s", host);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->srv = s;
	c->fd = fd;
	c->plain = s->plain;
	if (c->ssl) {
		SSL_set_fd(c->ssl, fd);
		SSL_set_accept_state(c->ssl);
		SSL_set_app_data(c->ssl, c);
	}
	uv_poll_init(s->loop, &c->poll, fd);
	uv_timer_init(s->loop, &c->timer);
	c->poll.data = c->timer.data = c;
	c->handles_open = 2;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	s->accepted++;
	if (c->plain) {
		c->state = CONN_OPEN;
		c->app_state = s->app->open(c, "");
		if (!c->app_state) {
			tls_conn_close(c, 0);
			return;
		}
		c->app_open = 1;
		tls_conn_touch(c);
	} else {
		uv_timer_start(&c->timer, on_timeout, s->handshake_timeout_ms, 0);
	}
	drive(c);
}

static void on_listen(uv_poll_t *p, int status, int events)
{
	struct tls_server *s = p->data;

	for (int i = 0; i < ACCEPT_BURST; i++) {
		struct sockaddr_storage sa;
		socklen_t salen = sizeof sa;
		int fd = accept4(s->listen_fd, (struct sockaddr *)&sa, &salen,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("accept: %s", strerror(errno));
			return;
		}
		if (s->nconns >= s->max_conns) {
			/* full: refuse at once rather than let the backlog grow */
			s->refused++;
			close(fd);
			continue;
		}
		accept_one(s, fd, &sa);
	}
}

/* ---- context ---- */

static int select_alpn(SSL *ssl, const uint8_t **out, uint8_t *outlen, const uint8_t *in,
		       unsigned inlen, void *arg)
{
	/* in our order of preference */
	static const uint8_t ours[] = "\x02h2\x08http/1.1";

	if (SSL_select_next_proto((uint8_t **)out, outlen, ours, sizeof ours - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK; /* no ALPN agreement: HTTP/1.1 without ALPN */
	return SSL_TLSEXT_ERR_OK;
}

/* The schemes BoringSSL may ask the signer for, from the certificate's key. */
static int set_signing_prefs(SSL_CTX *ctx, X509 *cert)
{
	static const uint16_t p256[] = {SSL_SIGN_ECDSA_SECP256R1_SHA256};
	static const uint16_t p384[] = {SSL_SIGN_ECDSA_SECP384R1_SHA384};
	static const uint16_t p521[] = {SSL_SIGN_ECDSA_SECP521R1_SHA512};
	static const uint16_t rsa[] = {SSL_SIGN_RSA_PSS_RSAE_SHA256, SSL_SIGN_RSA_PSS_RSAE_SHA384,
				       SSL_SIGN_RSA_PSS_RSAE_SHA512, SSL_SIGN_RSA_PKCS1_SHA256,
				       SSL_SIGN_RSA_PKCS1_SHA384, SSL_SIGN_RSA_PKCS1_SHA512};
	static const uint16_t ed[] = {SSL_SIGN_ED25519};
	EVP_PKEY *pk = X509_get_pubkey(cert);
	int rc = 0;

	if (!pk)
		return 0;
	switch (EVP_PKEY_id(pk)) {
	case EVP_PKEY_EC: {
		int bits = EVP_PKEY_bits(pk);

		rc = bits <= 256 ? SSL_CTX_set_signing_algorithm_prefs(ctx, p256, 1)
		   : bits <= 384 ? SSL_CTX_set_signing_algorithm_prefs(ctx, p384, 1)
				 : SSL_CTX_set_signing_algorithm_prefs(ctx, p521, 1);
		break;
	}
	case EVP_PKEY_RSA: rc = SSL_CTX_set_signing_algorithm_prefs(ctx, rsa, 6); break;
	case EVP_PKEY_ED25519: rc = SSL_CTX_set_signing_algorithm_prefs(ctx, ed, 1); break;
	}
	EVP_PKEY_free(pk);
	return rc;
}

/* Client certificates: asked for, never required (API keys need none), and
 * verified against the agent identity CA alone; a certificate that does
 * not verify fails the handshake. Named in the CertificateRequest so a
 * client offers only an identity of ours. */
static int trust_agent_ca(SSL_CTX *ctx, const uint8_t *pem, size_t len)
{
	BIO *bio = len ? BIO_new_mem_buf(pem, (ssize_t)len) : NULL;
	X509 *ca = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
	X509_NAME *name = ca ? X509_NAME_dup(X509_get_subject_name(ca)) : NULL;
	int ok = ca && names && name && X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca) &&
		 sk_X509_NAME_push(names, name);

	if (ok) {
		name = NULL;
		SSL_CTX_set_client_CA_list(ctx, names);
		names = NULL;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	X509_NAME_free(name);
	sk_X509_NAME_pop_free(names, X509_NAME_free);
	X509_free(ca);
	BIO_free(bio);
	return ok;
}

static SSL_CTX *make_ctx(struct tls_server *s, const uint8_t *pem, size_t len, const uint8_t *agent_ca,
			 size_t agent_ca_len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	BIO *bio = BIO_new_mem_buf(pem, (ssize_t)len);
	X509 *leaf = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	X509 *extra;
	int ok = ctx && leaf && SSL_CTX_set_min_proto_version(ctx, (uint16_t)s->min_version) &&
		 SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) &&
		 SSL_CTX_use_certificate(ctx, leaf) && set_signing_prefs(ctx, leaf) &&
		 trust_agent_ca(ctx, agent_ca, agent_ca_len);

	while (ok && bio && (extra = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		ok = SSL_CTX_add1_chain_cert(ctx, extra);
		X509_free(extra);
	}
	ERR_clear_error(); /* the loop ends on "no start line" */
	X509_free(leaf);
	BIO_free(bio);
	if (!ok) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_private_key_method(ctx, &key_method);
	SSL_CTX_set_alpn_select_cb(ctx, select_alpn, s);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* no resumption: no session cache, and no ticket keys in this
	 * network-facing process; every handshake is signed by the signer */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	return ctx;
}

static void request_cert(struct tls_server *s);

static void on_cert_retry(uv_timer_t *t)
{
	request_cert(t->data);
}

static void on_cert(int status, struct ipc_msg *reply, int fd, void *arg)
{
	struct tls_server *s = arg;

	if (fd >= 0)
		close(fd);
	if (s->stopping)
		return;
	if (status != 0 || reply->type != IPC_T_TLS_CERT ||
	    !(s->ctx = make_ctx(s, reply->u.tls_cert.chain_pem.ptr, reply->u.tls_cert.chain_pem.len,
				reply->u.tls_cert.agent_ca_pem.ptr, reply->u.tls_cert.agent_ca_pem.len))) {
		log_warn("no usable certificate from the signer yet; retrying");
		uv_timer_start(&s->cert_timer, on_cert_retry, CERT_RETRY_MS, 0);
		return;
	}
	uv_poll_start(&s->listen_poll, UV_READABLE, on_listen);
	s->listening = 1;
	log_info("serving TLS (minimum version %s)", s->min_version == TLS1_3_VERSION ? "1.3" : "1.2");
}

static void request_cert(struct tls_server *s)
{
	struct ipc_channel *ch = worker_peer(s->w, IPC_ROLE_SIGNER);
	struct ipc_msg m = {.type = IPC_T_TLS_CERT_GET};

	if (!ch || ipc_request(ch, &m, -1, worker_ipc_timeout_ms(s->w), on_cert, s) != 0)
		uv_timer_start(&s->cert_timer, on_cert_retry, CERT_RETRY_MS, 0);
}

/* ---- setup ---- */

static int open_listener(const char *key, const char *addr)
{
	char host[300], port[8];
	const char *colon;
	struct addrinfo hints = {0}, *res = NULL;
	int fd = -1, one = 1;

	/* the config layer already validated host:port / [v6]:port */
	if (addr[0] == '[') {
		const char *close_br = strchr(addr, ']');

		snprintf(host, sizeof host, "%.*s", (int)(close_br - addr - 1), addr + 1);
		colon = close_br + 1;
	} else {
		colon = strrchr(addr, ':');
		snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
	}
	snprintf(port, sizeof port, "%s", colon + 1);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if (getaddrinfo(host, port, &hints, &res) != 0 || !res) {
		log_error("api.%s %s: cannot resolve", key, addr);
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    /* every api process binds the same port; the kernel spreads connections */
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 511) != 0) {
		log_error("api.%s %s: %s", key, addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

struct tls_server *tls_server_new(struct worker *w, const struct cfg *section,
				  const struct tls_app *app, int plain)
{
	struct tls_server *s = calloc(1, sizeof *s);
	const char *minv = cfg_str(section, "api", "tls_min_version");

	if (!s)
		return NULL;
	if (strcmp(minv, "1.3") == 0) {
		s->min_version = TLS1_3_VERSION;
	} else if (strcmp(minv, "1.2") == 0) {
		s->min_version = TLS1_2_VERSION;
	} else {
		log_error("api.tls_min_version: expected 1.3 or 1.2");
		free(s);
		return NULL;
	}
	s->w = w;
	s->loop = worker_loop(w);
	s->app = app;
	s->plain = plain;
	s->label = plain ? "plain" : "https";
	s->max_conns = (unsigned)cfg_int(section, "api", "max_connections");
	s->handshake_timeout_ms = cfg_duration_ms(section, "api", "handshake_timeout");
	s->idle_timeout_ms = cfg_duration_ms(section, "api", "idle_timeout");
	s->listen_fd = plain ? open_listener("plain_listen", cfg_str(section, "api", "plain_listen"))
			     : open_listener("listen", cfg_str(section, "api", "listen"));
	if (s->listen_fd < 0) {
		free(s);
		return NULL;
	}
	uv_poll_init(s->loop, &s->listen_poll, s->listen_fd);
	s->listen_poll.data = s;
	uv_timer_init(s->loop, &s->cert_timer);
	s->cert_timer.data = s;
	return s;
}

void tls_server_start(struct tls_server *s)
{
	if (!s->plain) {
		request_cert(s); /* listens once the certificate is there */
		return;
	}
	uv_poll_start(&s->listen_poll, UV_READABLE, on_listen);
	s->listening = 1;
	log_info("serving plain HTTP for /health, CRL, OCSP and ACME HTTP-01 paths");
}

static void server_handle_closed(uv_handle_t *h)
{
	struct tls_server *s = h->data;

	if (h == (uv_handle_t *)&s->listen_poll) {
		close(s->listen_fd);
		SSL_CTX_free(s->ctx);
		free(s);
	}
}

void tls_server_stop(struct tls_server *s)
{
	s->stopping = 1;
	while (s->conns)
		tls_conn_close(s->conns, 0);
	uv_timer_stop(&s->cert_timer);
	uv_close((uv_handle_t *)&s->cert_timer, NULL);
	uv_poll_stop(&s->listen_poll);
	uv_close((uv_handle_t *)&s->listen_poll, server_handle_closed);
}

void tls_server_metrics(const struct tls_server *s, struct strbuf *out)
{
	const struct {
		const char *name;
		unsigned long long v;
	} figures[] = {
		{"connections_open", s->nconns},
		{"connections_accepted_total", s->accepted},
		{"connections_refused_total", s->refused},
		{"tls_handshakes_total", s->handshakes},
		{"tls_handshake_failures_total", s->handshake_failures},
		{"tls_sign_requests_total", s->sign_requests},
		{"tls_sign_failures_total", s->sign_failures},
	};

	for (size_t i = 0; i < sizeof figures / sizeof figures[0]; i++)
		if (!s->plain || strncmp(figures[i].name, "tls_", 4) != 0)
			strbuf_printf(out, "%s{listener=\"%s\"} %llu\n", figures[i].name, s->label,
				      figures[i].v);
}
