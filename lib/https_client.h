/* A small blocking HTTPS/1.1 client for the certward CLI, the agent and
 * certward-notifier: one request per connection (Connection: close), TLS
 * 1.2+ over BoringSSL, the server's certificate verified against a pinned
 * PEM file or the system store, an optional client certificate (mTLS), and
 * strict, bounded parsing of the response. Also a TLS stream (plain first
 * when asked, then upgraded: SMTP's STARTTLS) on the same connect and
 * verification code. */
#ifndef CERTWARD_HTTPS_CLIENT_H
#define CERTWARD_HTTPS_CLIENT_H

#include <stddef.h>

#define HTTP_MAX_HEAD (64u * 1024u)
#define HTTP_MAX_BODY (16u * 1024u * 1024u)
#define HTTP_DEFAULT_TIMEOUT_S 30
#define HTTP_SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

/* What went wrong, for the exit status. */
enum http_err {
	HTTP_OK = 0,
	HTTP_E_USAGE,	  /* bad URL or option */
	HTTP_E_CONNECT,	  /* name resolution, connect, refused */
	HTTP_E_TLS,	  /* handshake failed, certificate not trusted */
	HTTP_E_TIMEOUT,	  /* connect+exchange took longer than the timeout */
	HTTP_E_PROTOCOL,  /* malformed or oversized response */
	HTTP_E_RESOURCE,  /* out of memory, unreadable file */
};

struct http_client {
	const char *url;     /* https://host[:port][/prefix] */
	const char *api_key; /* sent as a bearer token when non-NULL and non-empty */
	const char *cacert;  /* PEM file; NULL for HTTP_SYSTEM_CA_FILE */
	int timeout_s;	     /* whole exchange; <= 0 for HTTP_DEFAULT_TIMEOUT_S */
	/* mTLS: PEM files of the client certificate (leaf first, then any
	 * intermediates) and its private key; both or neither. The key's
	 * content never reaches an error message. */
	const char *client_cert;
	const char *client_key;
	const char *user_agent; /* NULL for "certward-cli" */
	/* The body's Content-Type; NULL for application/json. */
	const char *content_type;
	/* Extra header lines ("Name: value"), NULL-terminated, or NULL. They
	 * may hold credentials: they never reach an error message. */
	const char *const *headers;
	/* Largest response body accepted; 0 for HTTP_MAX_BODY. */
	size_t max_body;
	/* Error messages without the CLI's advice (--cacert, is certwardd running). */
	int no_hints;
	/* Trust anchors as PEM text (an issuer's configured CA bundle) instead
	 * of a file; taken as they are, like a pinned cacert file. */
	const char *cacert_pem;
};

struct http_response {
	int status;
	char *content_type; /* NULL when absent */
	char *head;         /* the status line and header lines as received (checked), NUL-terminated */
	char *body;	    /* NUL-terminated; body_len excludes the NUL */
	size_t body_len;
};

/* Performs METHOD on the URL's prefix + PATH, sending BODY (a JSON document)
 * when non-NULL. On failure returns an http_err and writes one readable line
 * (no trailing newline, never the API key nor the client key) to ERR. */
enum http_err http_request(const struct http_client *c, const char *method, const char *path,
			   const char *body, size_t body_len, struct http_response *out, char *err,
			   size_t errlen);

void http_response_free(struct http_response *r);

/* The index-th (0, 1, ...) header line named name (case-insensitive) of
 * r: its value without surrounding blanks into out. 0; -1 when there is no
 * such line or out is too small. */
int http_header(const struct http_response *r, const char *name, size_t index, char *out, size_t outlen);

/* A byte stream to HOST:PORT, plain until http_stream_tls() (or from the
 * start), each call bounded by the deadline set at open. */
struct http_stream {
	int fd;
	void *ctx, *ssl; /* SSL_CTX, SSL once TLS is on */
	long long deadline_ms; /* CLOCK_MONOTONIC */
	char host[256], port[8];
	int is_ip;
};

/* Connects; the whole conversation must end within timeout_s. */
enum http_err http_stream_open(struct http_stream *s, const char *host, unsigned port, int timeout_s,
			       char *err, size_t errlen);
/* TLS handshake on the stream, the server's certificate verified for its
 * host against CACERT (NULL or "": HTTP_SYSTEM_CA_FILE). */
enum http_err http_stream_tls(struct http_stream *s, const char *cacert, char *err, size_t errlen);
/* Up to n bytes: their count, 0 at the end of the stream, -1 on error or
 * timeout (ERR set). */
long http_stream_read(struct http_stream *s, void *buf, size_t n, char *err, size_t errlen);
/* All n bytes, or an error (ERR set; never the bytes). */
enum http_err http_stream_write(struct http_stream *s, const void *buf, size_t n, char *err, size_t errlen);
void http_stream_close(struct http_stream *s);

/* Parses a complete response held in BUF (exposed for tests): returns
 * 1 when complete, 0 when more bytes are needed (EOF says none will come),
 * -1 on a malformed or oversized response, with a reason in ERR. */
int http_parse_response(const char *buf, size_t len, int eof, int head_only,
			struct http_response *out, char *err, size_t errlen);

#endif
