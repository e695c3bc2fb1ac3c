#include "https_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void http_response_free(struct http_response *r)
{
	free(r->content_type);
	free(r->head);
	free(r->body);
	memset(r, 0, sizeof *r);
}

/* ---- URL ---------------------------------------------------------------- */

struct url {
	char host[256]; /* without brackets */
	char port[8];
	char prefix[1024]; /* path without a trailing '/' */
	int is_ip;
	int is_v6;
};

static int parse_url(const char *s, struct url *u, char *err, size_t errlen)
{
	const char *p, *host_end, *end;
	size_t n;

	memset(u, 0, sizeof *u);
	if (strncasecmp(s, "https://", 8) != 0) {
		seterr(err, errlen, "server URL must start with https:// (got \"%.200s\")", s);
		return -1;
	}
	p = s + 8;
	end = p + strcspn(p, "/?#");
	if (*p == '[') {
		host_end = memchr(p, ']', (size_t)(end - p));
		if (!host_end)
			goto bad;
		n = (size_t)(host_end - p - 1);
		if (n == 0 || n >= sizeof u->host)
			goto bad;
		memcpy(u->host, p + 1, n);
		u->is_v6 = 1;
		p = host_end + 1;
	} else {
		host_end = memchr(p, ':', (size_t)(end - p));
		if (!host_end)
			host_end = end;
		n = (size_t)(host_end - p);
		if (n == 0 || n >= sizeof u->host)
			goto bad;
		memcpy(u->host, p, n);
		p = host_end;
	}
	if (p < end && *p == ':') {
		char *e;
		long port;

		p++;
		n = (size_t)(end - p);
		if (n == 0 || n > 5 || strspn(p, "0123456789") < n)
			goto bad;
		port = strtol(p, &e, 10);
		if (port < 1 || port > 65535)
			goto bad;
		snprintf(u->port, sizeof u->port, "%ld", port);
	} else if (p != end) {
		goto bad;
	} else {
		strcpy(u->port, "443");
	}
	if (strspn(u->host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:%") !=
	    strlen(u->host))
		goto bad;
	if (*end == '?' || *end == '#')
		goto bad;
	n = strlen(end);
	while (n > 0 && end[n - 1] == '/')
		n--;
	if (n >= sizeof u->prefix || strcspn(end, " \t\r\n?#") < n)
		goto bad;
	memcpy(u->prefix, end, n);
	{
		unsigned char buf[16];

		u->is_ip = inet_pton(AF_INET, u->host, buf) == 1 || inet_pton(AF_INET6, u->host, buf) == 1;
	}
	if (u->is_v6 && !u->is_ip)
		goto bad;
	return 0;
bad:
	seterr(err, errlen, "malformed server URL \"%.200s\" (want https://HOST[:PORT])", s);
	return -1;
}

/* ---- timing and sockets ------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until FD is ready for EVENTS or the deadline passes: 0, or -1 on
 * timeout (errno ETIMEDOUT) or error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = events};
		int64_t left = deadline - now_ms();
		int r;

		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

static int connect_one(const struct addrinfo *ai, int64_t deadline)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	int soerr = 0;
	socklen_t sl = sizeof soerr;

	if (fd < 0)
		return -1;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS)
		goto fail;
	if (wait_fd(fd, POLLOUT, deadline) != 0)
		goto fail;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
		goto fail;
	if (soerr != 0) {
		errno = soerr;
		goto fail;
	}
	return fd;
fail: {
	int e = errno;

	close(fd);
	errno = e;
	return -1;
}
}

static enum http_err tcp_connect(const struct url *u, int64_t deadline, int cli_hints, int *fdp, char *err,
				 size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
	int rc, e = 0;

	if (u->is_ip)
		hints.ai_flags = AI_NUMERICHOST;
	rc = getaddrinfo(u->host, u->port, &hints, &res);
	if (rc != 0) {
		seterr(err, errlen, "cannot resolve %s: %s", u->host, gai_strerror(rc));
		return HTTP_E_CONNECT;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		*fdp = connect_one(ai, deadline);
		if (*fdp >= 0)
			break;
		e = errno;
		if (e == ETIMEDOUT && now_ms() >= deadline)
			break;
	}
	freeaddrinfo(res);
	if (*fdp >= 0)
		return HTTP_OK;
	if (e == ETIMEDOUT) {
		seterr(err, errlen, "cannot connect to %s port %s: timed out", u->host, u->port);
		return HTTP_E_TIMEOUT;
	}
	seterr(err, errlen, "cannot connect to %s port %s: %s%s", u->host, u->port, strerror(e),
	       e == ECONNREFUSED && cli_hints ? " (is certwardd running, and is this its api.listen?)" : "");
	return HTTP_E_CONNECT;
}

/* ---- TLS ---------------------------------------------------------------- */

/* Drives one SSL call on a non-blocking socket until it completes: its
 * return value, or -1 with *timed_out set. */
static int ssl_drive(SSL *ssl, int fd, int64_t deadline, int *timed_out,
		     int (*op)(SSL *, void *, int), void *buf, int n)
{
	for (;;) {
		int r = op(ssl, buf, n), e;

		if (r > 0)
			return r;
		e = SSL_get_error(ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			if (wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) != 0) {
				*timed_out = errno == ETIMEDOUT;
				return -1;
			}
			continue;
		}
		return r;
	}
}

static int op_connect(SSL *ssl, void *buf, int n)
{
	(void)buf;
	(void)n;
	return SSL_connect(ssl);
}

static int op_read(SSL *ssl, void *buf, int n)
{
	return SSL_read(ssl, buf, n);
}

static int op_write(SSL *ssl, void *buf, int n)
{
	return SSL_write(ssl, buf, n);
}

static void ssl_reason(char *out, size_t outlen)
{
	unsigned long e = ERR_peek_last_error();

	if (e)
		snprintf(out, outlen, "%s", ERR_reason_error_string(e) ? ERR_reason_error_string(e)
								       : "unknown error");
	else
		snprintf(out, outlen, "connection closed by the server");
	ERR_clear_error();
}

static SSL_CTX *make_ctx(const struct http_client *c, int alpn_http, char *err, size_t errlen)
{
	const char *ca = c->cacert && *c->cacert ? c->cacert : HTTP_SYSTEM_CA_FILE;
	static const unsigned char alpn[] = "\x08http/1.1";
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());

	if (!ctx) {
		seterr(err, errlen, "cannot set up TLS: out of memory");
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    (alpn_http && SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1) != 0)) {
		seterr(err, errlen, "cannot set up TLS");
		goto fail;
	}
	if (c->cacert_pem && *c->cacert_pem) {
		BIO *bio = BIO_new_mem_buf(c->cacert_pem, -1);
		X509 *x;
		int n = 0;

		while (bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
			n += X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), x) == 1;
			X509_free(x);
		}
		BIO_free(bio);
		ERR_clear_error();
		if (n == 0) {
			seterr(err, errlen, "no usable PEM certificate in the trust anchors given");
			goto fail;
		}
		X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
	} else {
		if (access(ca, R_OK) != 0) {
			seterr(err, errlen, "cannot read CA file %s: %s", ca, strerror(errno));
			goto fail;
		}
		if (!SSL_CTX_load_verify_locations(ctx, ca, NULL)) {
			seterr(err, errlen, "no usable PEM certificate in CA file %s", ca);
			goto fail;
		}
		/* A pinned file's certificates are trust anchors as they are: the
		 * server's own self-signed leaf need not be a CA certificate. */
		if (c->cacert && *c->cacert)
			X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if ((c->client_cert && *c->client_cert) || (c->client_key && *c->client_key)) {
		if (!c->client_cert || !*c->client_cert || !c->client_key || !*c->client_key) {
			seterr(err, errlen, "a client certificate needs both its certificate and key file");
			goto fail;
		}
		if (!SSL_CTX_use_certificate_chain_file(ctx, c->client_cert)) {
			seterr(err, errlen, "no usable PEM certificate in client certificate file %s",
			       c->client_cert);
			goto fail;
		}
		/* only the file's name in the message: BoringSSL's reasons say
		 * nothing of the key, but there is no need to find out */
		if (!SSL_CTX_use_PrivateKey_file(ctx, c->client_key, SSL_FILETYPE_PEM)) {
			seterr(err, errlen, "cannot load the client key from %s", c->client_key);
			goto fail;
		}
		if (!SSL_CTX_check_private_key(ctx)) {
			seterr(err, errlen, "the client key in %s does not match the certificate in %s",
			       c->client_key, c->client_cert);
			goto fail;
		}
	}
	return ctx;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

/* The name the server's certificate must carry, also sent as SNI. */
static int set_peer_name(SSL *ssl, const struct url *u, char *err, size_t errlen)
{
	X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
	int ok = u->is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, u->host)
			  : X509_VERIFY_PARAM_set1_host(vp, u->host, strlen(u->host));

	if (!u->is_ip)
		ok = ok && SSL_set_tlsext_host_name(ssl, u->host);
	if (!ok) {
		seterr(err, errlen, "cannot set up TLS name checks for %s", u->host);
		return -1;
	}
	return 0;
}

static enum http_err tls_handshake(SSL *ssl, int fd, const struct url *u, const char *cacert,
				   int64_t deadline, int hints, char *err, size_t errlen)
{
	int timed_out = 0;
	long vr;
	char why[160];

	if (ssl_drive(ssl, fd, deadline, &timed_out, op_connect, NULL, 0) == 1)
		return HTTP_OK;
	if (timed_out) {
		seterr(err, errlen, "TLS handshake with %s port %s timed out", u->host, u->port);
		ERR_clear_error();
		return HTTP_E_TIMEOUT;
	}
	vr = SSL_get_verify_result(ssl);
	if (vr != X509_V_OK) {
		ERR_clear_error();
		if (!hints)
			seterr(err, errlen, "certificate of %s port %s not trusted: %s (checked against %s)",
			       u->host, u->port, X509_verify_cert_error_string(vr),
			       cacert && *cacert ? cacert : HTTP_SYSTEM_CA_FILE);
		else if (cacert && *cacert)
			seterr(err, errlen,
			       "certificate of %s port %s not trusted: %s (checked against --cacert %s; "
			       "pass the server's certificate, e.g. <state_dir>/tls/api.crt)",
			       u->host, u->port, X509_verify_cert_error_string(vr), cacert);
		else
			seterr(err, errlen,
			       "certificate of %s port %s not trusted: %s (checked against %s; pass "
			       "the server's certificate with --cacert FILE, e.g. "
			       "<state_dir>/tls/api.crt)",
			       u->host, u->port, X509_verify_cert_error_string(vr),
			       HTTP_SYSTEM_CA_FILE);
		return HTTP_E_TLS;
	}
	ssl_reason(why, sizeof why);
	seterr(err, errlen, "TLS handshake with %s port %s failed: %s", u->host, u->port, why);
	return HTTP_E_TLS;
}

/* ---- response parsing --------------------------------------------------- */

static int is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

struct head {
	int status;
	size_t head_len;
	int chunked;
	int has_length;
	uint64_t length;
	char *content_type;
};

/* Parses the head ending at BUF[head_len - 1]: 0, or -1 with ERR set. */
static int parse_head(const char *buf, size_t head_len, struct head *h, char *err, size_t errlen)
{
	const char *p = buf, *end = buf + head_len - 2; /* the final CRLF */
	const char *eol;

	if (head_len < 17 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
	    p[8] != ' ' || p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' ||
	    p[11] > '9' || (p[12] != ' ' && p[12] != '\r')) {
		seterr(err, errlen, "malformed response: bad status line");
		return -1;
	}
	h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
	for (const char *q = p + 12; q < eol; q++)
		if ((unsigned char)*q < 0x20 && *q != '\t') {
			seterr(err, errlen, "malformed response: control character in status line");
			return -1;
		}
	p = eol + 2;
	while (p < end) {
		const char *colon, *v, *ve;
		size_t nlen;

		eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
		colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon || colon == p) {
			seterr(err, errlen, "malformed response: bad header line");
			return -1;
		}
		nlen = (size_t)(colon - p);
		for (size_t i = 0; i < nlen; i++)
			if (!is_tchar((unsigned char)p[i])) {
				seterr(err, errlen, "malformed response: bad header name");
				return -1;
			}
		for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = eol; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
			;
		for (const char *q = v; q < ve; q++)
			if (((unsigned char)*q < 0x20 && *q != '\t') || *q == 0x7f) {
				seterr(err, errlen, "malformed response: control character in header");
				return -1;
			}
		if (nlen == 14 && strncasecmp(p, "content-length", 14) == 0) {
			uint64_t n = 0;

			if (ve == v) {
				seterr(err, errlen, "malformed response: empty Content-Length");
				return -1;
			}
			for (const char *q = v; q < ve; q++) {
				if (*q < '0' || *q > '9' || n > HTTP_MAX_BODY) {
					seterr(err, errlen, "malformed response: bad Content-Length");
					return -1;
				}
				n = n * 10 + (uint64_t)(*q - '0');
			}
			if (h->has_length && h->length != n) {
				seterr(err, errlen, "malformed response: conflicting Content-Length");
				return -1;
			}
			h->has_length = 1;
			h->length = n;
		} else if (nlen == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
			if ((size_t)(ve - v) != 7 || strncasecmp(v, "chunked", 7) != 0 || h->chunked) {
				seterr(err, errlen,
				       "malformed response: unsupported Transfer-Encoding");
				return -1;
			}
			h->chunked = 1;
		} else if (nlen == 12 && strncasecmp(p, "content-type", 12) == 0 && !h->content_type) {
			h->content_type = strndup(v, (size_t)(ve - v));
		}
		p = eol + 2;
	}
	if (h->chunked && h->has_length) {
		seterr(err, errlen, "malformed response: both Content-Length and chunked");
		return -1;
	}
	if (h->has_length && h->length > HTTP_MAX_BODY) {
		seterr(err, errlen, "response body larger than %u bytes", HTTP_MAX_BODY);
		return -1;
	}
	return 0;
}

/* Walks a chunked body in P[0..len): 1 when complete (the decoded size in
 * *outlen, copied to OUT when non-NULL), 0 when incomplete, -1 if malformed. */
static int dechunk(const char *p, size_t len, char *out, size_t *outlen, char *err, size_t errlen)
{
	size_t i = 0, total = 0;

	for (;;) {
		uint64_t size = 0;
		size_t digits = 0;
		const char *eol;

		while (i < len && strchr("0123456789abcdefABCDEF", p[i]) && p[i]) {
			int d = p[i] <= '9' ? p[i] - '0' : (p[i] | 0x20) - 'a' + 10;

			size = size * 16 + (uint64_t)d;
			if (++digits > 8 || size > HTTP_MAX_BODY)
				goto toobig;
			i++;
		}
		if (i >= len)
			return 0;
		if (digits == 0 || (p[i] != '\r' && p[i] != ';'))
			goto bad;
		eol = memmem(p + i, len - i, "\r\n", 2);
		if (!eol)
			return len - i > 4096 ? (seterr(err, errlen, "malformed response: chunk line too long"), -1) : 0;
		i = (size_t)(eol - p) + 2;
		if (size == 0)
			break;
		if (total + size > HTTP_MAX_BODY)
			goto toobig;
		if (len - i < size + 2)
			return 0;
		if (p[i + size] != '\r' || p[i + size + 1] != '\n')
			goto bad;
		if (out)
			memcpy(out + total, p + i, size);
		total += size;
		i += size + 2;
	}
	/* trailers, then an empty line */
	for (;;) {
		const char *eol = memmem(p + i, len - i, "\r\n", 2);

		if (!eol)
			return len - i > HTTP_MAX_HEAD ? (seterr(err, errlen, "malformed response: trailers too long"), -1) : 0;
		if (eol == p + i)
			break;
		i = (size_t)(eol - p) + 2;
	}
	*outlen = total;
	return 1;
bad:
	seterr(err, errlen, "malformed response: bad chunked encoding");
	return -1;
toobig:
	seterr(err, errlen, "response body larger than %u bytes", HTTP_MAX_BODY);
	return -1;
}

static int set_body(struct http_response *out, const char *p, size_t n)
{
	out->body = malloc(n + 1);
	if (!out->body)
		return -1;
	memcpy(out->body, p, n);
	out->body[n] = 0;
	out->body_len = n;
	return 0;
}

int http_parse_response(const char *buf, size_t len, int eof, int head_only,
			struct http_response *out, char *err, size_t errlen)
{
	struct head h;
	const char *hend;
	size_t avail;
	int rc;

	memset(out, 0, sizeof *out);
	for (;;) {
		memset(&h, 0, sizeof h);
		hend = memmem(buf, len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD, "\r\n\r\n", 4);
		if (!hend) {
			if (len >= HTTP_MAX_HEAD) {
				seterr(err, errlen, "response head larger than %u bytes", HTTP_MAX_HEAD);
				return -1;
			}
			if (eof) {
				seterr(err, errlen, len ? "malformed response: connection closed in the head"
							: "the server closed the connection without a response");
				return -1;
			}
			return 0;
		}
		h.head_len = (size_t)(hend - buf) + 4;
		if (parse_head(buf, h.head_len, &h, err, errlen) != 0) {
			free(h.content_type);
			return -1;
		}
		if (h.status >= 200 || h.status == 101)
			break;
		/* an interim 1xx answer: the real one follows */
		free(h.content_type);
		buf += h.head_len;
		len -= h.head_len;
	}
	if (h.status == 101) {
		free(h.content_type);
		seterr(err, errlen, "malformed response: unexpected 101 Switching Protocols");
		return -1;
	}
	avail = len - h.head_len;
	if (head_only || h.status == 204 || h.status == 304) {
		rc = set_body(out, "", 0);
	} else if (h.chunked) {
		size_t n = 0;

		rc = dechunk(buf + h.head_len, avail, NULL, &n, err, errlen);
		if (rc == 0 && eof) {
			seterr(err, errlen, "malformed response: connection closed in a chunked body");
			rc = -1;
		}
		if (rc <= 0) {
			free(h.content_type);
			return rc;
		}
		out->body = malloc(n + 1);
		if (!out->body) {
			rc = -1;
		} else {
			dechunk(buf + h.head_len, avail, out->body, &n, err, errlen);
			out->body[n] = 0;
			out->body_len = n;
			rc = 0;
		}
	} else if (h.has_length) {
		if (avail < h.length) {
			free(h.content_type);
			if (!eof)
				return 0;
			seterr(err, errlen, "malformed response: body shorter than its Content-Length");
			return -1;
		}
		rc = set_body(out, buf + h.head_len, (size_t)h.length);
	} else {
		if (avail > HTTP_MAX_BODY) {
			free(h.content_type);
			seterr(err, errlen, "response body larger than %u bytes", HTTP_MAX_BODY);
			return -1;
		}
		if (!eof) {
			free(h.content_type);
			return 0;
		}
		rc = set_body(out, buf + h.head_len, avail);
	}
	if (rc != 0) {
		free(h.content_type);
		http_response_free(out);
		seterr(err, errlen, "out of memory");
		return -1;
	}
	out->status = h.status;
	out->content_type = h.content_type;
	if (!(out->head = strndup(buf, h.head_len - 4))) {
		http_response_free(out);
		seterr(err, errlen, "out of memory");
		return -1;
	}
	return 1;
}

int http_header(const struct http_response *r, const char *name, size_t index, char *out, size_t outlen)
{
	size_t nlen = strlen(name);
	const char *p = r->head ? strstr(r->head, "\r\n") : NULL;

	/* the head was checked when it came: "Name: value" lines, CRLF-separated */
	while (p) {
		const char *line = p + 2, *eol = strstr(line, "\r\n"), *v, *ve;

		if (!eol)
			eol = line + strlen(line);
		if ((size_t)(eol - line) > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0 &&
		    index-- == 0) {
			for (v = line + nlen + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
				;
			for (ve = eol; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
				;
			if ((size_t)(ve - v) >= outlen)
				return -1;
			memcpy(out, v, (size_t)(ve - v));
			out[ve - v] = '\0';
			return 0;
		}
		p = *eol ? eol : NULL;
	}
	return -1;
}

/* ---- the exchange ------------------------------------------------------- */

static char *build_request(const struct http_client *c, const struct url *u, const char *method,
			   const char *path, size_t body_len, int has_body, size_t *outlen)
{
	char *req = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&req, &n);

	if (!f)
		return NULL;
	fprintf(f, "%s %s%s HTTP/1.1\r\n", method, u->prefix, path);
	if (u->is_v6)
		fprintf(f, "Host: [%s]", u->host);
	else
		fprintf(f, "Host: %s", u->host);
	if (strcmp(u->port, "443") != 0)
		fprintf(f, ":%s", u->port);
	fprintf(f, "\r\nUser-Agent: %s\r\nAccept: application/json\r\nConnection: close\r\n",
		c->user_agent && *c->user_agent ? c->user_agent : "certward-cli");
	if (c->api_key && *c->api_key)
		fprintf(f, "Authorization: Bearer %s\r\n", c->api_key);
	for (const char *const *h = c->headers; h && *h; h++)
		fprintf(f, "%s\r\n", *h);
	if (has_body)
		fprintf(f, "Content-Type: %s\r\nContent-Length: %zu\r\n",
			c->content_type && *c->content_type ? c->content_type : "application/json", body_len);
	else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0)
		fprintf(f, "Content-Length: 0\r\n");
	fprintf(f, "\r\n");
	if (fclose(f) != 0) {
		free(req);
		return NULL;
	}
	*outlen = n;
	return req;
}

static enum http_err exchange(SSL *ssl, int fd, const struct url *u, const char *req, size_t reqlen,
			      const char *body, size_t body_len, int head_only, size_t max_body,
			      int64_t deadline, struct http_response *out, char *err, size_t errlen)
{
	const size_t max_raw = (size_t)HTTP_MAX_HEAD + 2 * max_body;
	size_t cap = 16384, len = 0;
	char *buf;
	int timed_out = 0;
	const struct {
		const char *p;
		size_t n;
	} parts[2] = {{req, reqlen}, {body, body ? body_len : 0}};

	for (int k = 0; k < 2; k++) {
		size_t off = 0;

		while (off < parts[k].n) {
			size_t chunk = parts[k].n - off > 65536 ? 65536 : parts[k].n - off;
			int w = ssl_drive(ssl, fd, deadline, &timed_out, op_write,
					  (void *)(parts[k].p + off), (int)chunk);

			if (w <= 0) {
				ERR_clear_error();
				seterr(err, errlen, "sending the request to %s port %s %s", u->host,
				       u->port, timed_out ? "timed out" : "failed: connection closed");
				return timed_out ? HTTP_E_TIMEOUT : HTTP_E_CONNECT;
			}
			off += (size_t)w;
		}
	}
	buf = malloc(cap);
	if (!buf) {
		seterr(err, errlen, "out of memory");
		return HTTP_E_RESOURCE;
	}
	for (;;) {
		int eof = 0, r, pr;

		if (cap - len < 4096) {
			char *nb;

			if (cap >= max_raw) {
				free(buf);
				seterr(err, errlen, "response larger than %zu bytes", max_raw);
				return HTTP_E_PROTOCOL;
			}
			cap = cap * 2 > max_raw ? max_raw : cap * 2;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				seterr(err, errlen, "out of memory");
				return HTTP_E_RESOURCE;
			}
			buf = nb;
		}
		r = ssl_drive(ssl, fd, deadline, &timed_out, op_read, buf + len, (int)(cap - len));
		if (r > 0) {
			len += (size_t)r;
		} else if (timed_out) {
			free(buf);
			ERR_clear_error();
			seterr(err, errlen, "no complete response from %s port %s: timed out", u->host,
			       u->port);
			return HTTP_E_TIMEOUT;
		} else {
			/* close_notify, or a plain EOF: the framing decides if it is complete */
			ERR_clear_error();
			eof = 1;
		}
		pr = http_parse_response(buf, len, eof, head_only, out, err, errlen);
		if (pr > 0 && out->body_len > max_body) {
			http_response_free(out);
			seterr(err, errlen, "response body larger than %zu bytes", max_body);
			pr = -1;
		}
		if (pr != 0) {
			free(buf);
			return pr > 0 ? HTTP_OK : HTTP_E_PROTOCOL;
		}
	}
}

enum http_err http_request(const struct http_client *c, const char *method, const char *path,
			   const char *body, size_t body_len, struct http_response *out, char *err,
			   size_t errlen)
{
	int timeout = c->timeout_s > 0 ? c->timeout_s : HTTP_DEFAULT_TIMEOUT_S;
	int64_t deadline = now_ms() + (int64_t)timeout * 1000;
	enum http_err rc;
	struct url u;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	char *req = NULL;
	size_t reqlen = 0;
	int fd = -1;

	memset(out, 0, sizeof *out);
	if (parse_url(c->url, &u, err, errlen) != 0)
		return HTTP_E_USAGE;
	if (path[0] != '/' || strcspn(path, " \t\r\n") != strlen(path)) {
		seterr(err, errlen, "the path must start with / and contain no spaces");
		return HTTP_E_USAGE;
	}
	if (c->api_key && strcspn(c->api_key, "\r\n") != strlen(c->api_key)) {
		seterr(err, errlen, "the API key contains a line break");
		return HTTP_E_USAGE;
	}
	if (c->user_agent && strcspn(c->user_agent, "\r\n") != strlen(c->user_agent)) {
		seterr(err, errlen, "the User-Agent contains a line break");
		return HTTP_E_USAGE;
	}
	if (c->content_type && strcspn(c->content_type, "\r\n") != strlen(c->content_type)) {
		seterr(err, errlen, "the Content-Type contains a line break");
		return HTTP_E_USAGE;
	}
	for (const char *const *h = c->headers; h && *h; h++)
		if (strcspn(*h, "\r\n") != strlen(*h) || !strchr(*h, ':')) {
			seterr(err, errlen, "a header line is malformed or contains a line break");
			return HTTP_E_USAGE;
		}
	ctx = make_ctx(c, 1, err, errlen);
	if (!ctx)
		return HTTP_E_RESOURCE;
	req = build_request(c, &u, method, path, body_len, body != NULL, &reqlen);
	if (!req) {
		rc = HTTP_E_RESOURCE;
		seterr(err, errlen, "out of memory");
		goto done;
	}
	rc = tcp_connect(&u, deadline, !c->no_hints, &fd, err, errlen);
	if (rc != HTTP_OK)
		goto done;
	ssl = SSL_new(ctx);
	if (!ssl || !SSL_set_fd(ssl, fd)) {
		rc = HTTP_E_RESOURCE;
		seterr(err, errlen, "cannot set up TLS");
		goto done;
	}
	if (set_peer_name(ssl, &u, err, errlen) != 0) {
		rc = HTTP_E_RESOURCE;
		goto done;
	}
	rc = tls_handshake(ssl, fd, &u, c->cacert_pem && *c->cacert_pem ? "the issuer's trust anchors" : c->cacert,
			   deadline, !c->no_hints, err, errlen);
	if (rc != HTTP_OK)
		goto done;
	rc = exchange(ssl, fd, &u, req, reqlen, body, body_len, strcmp(method, "HEAD") == 0,
		      c->max_body && c->max_body < HTTP_MAX_BODY ? c->max_body : HTTP_MAX_BODY, deadline, out,
		      err, errlen);
done:
	if (req) {
		/* the request holds the API key */
		OPENSSL_cleanse(req, reqlen);
		free(req);
	}
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	ERR_clear_error();
	return rc;
}

/* ---- streams ------------------------------------------------------------ */

static void stream_url(const struct http_stream *s, struct url *u)
{
	memset(u, 0, sizeof *u);
	snprintf(u->host, sizeof u->host, "%s", s->host);
	snprintf(u->port, sizeof u->port, "%s", s->port);
	u->is_ip = s->is_ip;
}

enum http_err http_stream_open(struct http_stream *s, const char *host, unsigned port, int timeout_s,
			       char *err, size_t errlen)
{
	unsigned char buf[16];
	struct url u;
	enum http_err rc;

	memset(s, 0, sizeof *s);
	s->fd = -1;
	if (!host || !*host || strlen(host) >= sizeof s->host || port == 0 || port > 65535 ||
	    strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:%") != strlen(host)) {
		seterr(err, errlen, "bad server name or port");
		return HTTP_E_USAGE;
	}
	snprintf(s->host, sizeof s->host, "%s", host);
	snprintf(s->port, sizeof s->port, "%u", port);
	s->is_ip = inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
	s->deadline_ms = now_ms() + (int64_t)(timeout_s > 0 ? timeout_s : HTTP_DEFAULT_TIMEOUT_S) * 1000;
	stream_url(s, &u);
	rc = tcp_connect(&u, s->deadline_ms, 0, &s->fd, err, errlen);
	if (rc != HTTP_OK)
		s->fd = -1;
	return rc;
}

enum http_err http_stream_tls(struct http_stream *s, const char *cacert, char *err, size_t errlen)
{
	struct http_client c = {.cacert = cacert};
	struct url u;
	SSL *ssl;
	enum http_err rc;

	if (s->fd < 0 || s->ssl) {
		seterr(err, errlen, "TLS already on or no connection");
		return HTTP_E_USAGE;
	}
	s->ctx = make_ctx(&c, 0, err, errlen);
	if (!s->ctx)
		return HTTP_E_RESOURCE;
	ssl = SSL_new(s->ctx);
	if (!ssl || !SSL_set_fd(ssl, s->fd)) {
		SSL_free(ssl);
		seterr(err, errlen, "cannot set up TLS");
		return HTTP_E_RESOURCE;
	}
	s->ssl = ssl;
	stream_url(s, &u);
	if (set_peer_name(ssl, &u, err, errlen) != 0)
		return HTTP_E_RESOURCE;
	rc = tls_handshake(ssl, s->fd, &u, cacert, s->deadline_ms, 0, err, errlen);
	ERR_clear_error();
	return rc;
}

long http_stream_read(struct http_stream *s, void *buf, size_t n, char *err, size_t errlen)
{
	int timed_out = 0;

	if (n > INT32_MAX)
		n = INT32_MAX;
	if (s->ssl) {
		int r = ssl_drive(s->ssl, s->fd, s->deadline_ms, &timed_out, op_read, buf, (int)n);

		if (r > 0)
			return r;
		ERR_clear_error();
		if (timed_out) {
			seterr(err, errlen, "no answer from %s port %s: timed out", s->host, s->port);
			return -1;
		}
		return 0;
	}
	for (;;) {
		ssize_t r;

		if (wait_fd(s->fd, POLLIN, s->deadline_ms) != 0) {
			seterr(err, errlen, "no answer from %s port %s: %s", s->host, s->port,
			       errno == ETIMEDOUT ? "timed out" : strerror(errno));
			return -1;
		}
		r = recv(s->fd, buf, n, 0);
		if (r >= 0)
			return (long)r;
		if (errno != EAGAIN && errno != EINTR) {
			seterr(err, errlen, "reading from %s port %s failed: %s", s->host, s->port,
			       strerror(errno));
			return -1;
		}
	}
}

enum http_err http_stream_write(struct http_stream *s, const void *buf, size_t n, char *err, size_t errlen)
{
	const char *p = buf;
	int timed_out = 0;

	while (n > 0) {
		size_t chunk = n > 65536 ? 65536 : n;
		long w;

		if (s->ssl) {
			w = ssl_drive(s->ssl, s->fd, s->deadline_ms, &timed_out, op_write, (void *)p, (int)chunk);
			if (w <= 0)
				ERR_clear_error();
		} else if (wait_fd(s->fd, POLLOUT, s->deadline_ms) != 0) {
			timed_out = errno == ETIMEDOUT;
			w = -1;
		} else {
			w = send(s->fd, p, chunk, MSG_NOSIGNAL);
			if (w < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
		}
		if (w <= 0) {
			seterr(err, errlen, "sending to %s port %s %s", s->host, s->port,
			       timed_out ? "timed out" : "failed: connection closed");
			return timed_out ? HTTP_E_TIMEOUT : HTTP_E_CONNECT;
		}
		p += w;
		n -= (size_t)w;
	}
	return HTTP_OK;
}

void http_stream_close(struct http_stream *s)
{
	SSL_free(s->ssl);
	SSL_CTX_free(s->ctx);
	if (s->fd >= 0)
		close(s->fd);
	ERR_clear_error();
	s->ssl = s->ctx = NULL;
	s->fd = -1;
}
