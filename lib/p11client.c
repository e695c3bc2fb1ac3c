#include "p11client.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "p11wire.h"

extern char **environ;

struct frame {
	struct p11w_hdr h;
	uint8_t data[P11W_DATA_MAX];
};

struct p11c {
	pid_t pid;
	int n;                          /* sessions */
	int fd[P11_SESSIONS_MAX + 1];   /* [0] control, [1..n] sessions */
	pthread_mutex_t mu[P11_SESSIONS_MAX + 1];
	unsigned rr;
	pthread_mutex_t err_mu;
	char last[300];
};

static _Thread_local struct p11c *tl_c;
static _Thread_local int tl_i = -1;

static void set_last(struct p11c *c, const char *why)
{
	pthread_mutex_lock(&c->err_mu);
	snprintf(c->last, sizeof c->last, "%s", why);
	pthread_mutex_unlock(&c->err_mu);
}

void p11c_last_error(struct p11c *c, char *why, size_t whylen)
{
	pthread_mutex_lock(&c->err_mu);
	snprintf(why, whylen, "%s", *c->last ? c->last : "no error");
	pthread_mutex_unlock(&c->err_mu);
}

/* one request, one reply on channel i (held for both). 0 with the reply in
 * *r; -1 with why: the helper refused (its text) or is gone. */
static int call_locked(struct p11c *c, int i, uint32_t op, uint32_t arg, const void *data, size_t len,
		       struct frame *r, char *why, size_t whylen)
{
	struct frame *q = r; /* the request is built in the reply's room */
	ssize_t n;

	if (len > P11W_DATA_MAX) {
		snprintf(why, whylen, "request too large");
		return -1;
	}
	if (c->fd[i] < 0) {
		snprintf(why, whylen, "the PKCS#11 helper (certward-p11) has exited");
		return -1;
	}
	q->h = (struct p11w_hdr){.op = op, .arg = arg, .len = (uint32_t)len};
	if (len) /* data may be NULL then */
		memcpy(q->data, data, len);
	do
		n = send(c->fd[i], q, sizeof q->h + len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	OPENSSL_cleanse(q->data, len);
	if (n >= 0) {
		do
			n = recv(c->fd[i], r, sizeof *r, 0);
		while (n < 0 && errno == EINTR);
	}
	if (n <= 0 || (size_t)n < sizeof r->h || r->h.len != (size_t)n - sizeof r->h) {
		/* a helper that died (a crash in the module) stays dead: its
		 * channels are closed, and every later call says so */
		close(c->fd[i]);
		c->fd[i] = -1;
		snprintf(why, whylen, "the PKCS#11 helper (certward-p11) has exited");
		return -1;
	}
	if (r->h.op != 0) {
		snprintf(why, whylen, "%.*s", (int)(r->h.len < 299 ? r->h.len : 299), (const char *)r->data);
		return -1;
	}
	return 0;
}

static int call(struct p11c *c, int i, uint32_t op, uint32_t arg, const void *data, size_t len, struct frame *r,
		char *why, size_t whylen)
{
	int rc;

	pthread_mutex_lock(&c->mu[i]);
	rc = call_locked(c, i, op, arg, data, len, r, why, whylen);
	pthread_mutex_unlock(&c->mu[i]);
	return rc;
}

/* ---- starting the helper ---- */

static int put_field(struct frame *f, const char *s)
{
	size_t l = strlen(s) + 1;

	if (f->h.len + l > P11W_DATA_MAX)
		return -1;
	memcpy(f->data + f->h.len, s, l);
	f->h.len += (uint32_t)l;
	return 0;
}

struct p11c *p11c_open(const struct p11_config *cfg, const char *helper, char *const *env, char *why, size_t whylen)
{
	struct p11c *c;
	int child[P11_SESSIONS_MAX + 1];
	char slot[32], sessions[16], *pin_var = NULL;
	struct frame *f = NULL;
	int nfd;

	if (cfg->sessions < 1 || cfg->sessions > P11_SESSIONS_MAX) {
		snprintf(why, whylen, "pkcs11_sessions: 1 to %d", P11_SESSIONS_MAX);
		return NULL;
	}
	if (access(helper, X_OK) != 0) {
		snprintf(why, whylen, "%s: %s", helper, strerror(errno));
		return NULL;
	}
	if (!(c = calloc(1, sizeof *c)) || !(f = calloc(1, sizeof *f))) {
		free(c);
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	c->n = cfg->sessions;
	c->pid = -1;
	nfd = c->n + 1;
	pthread_mutex_init(&c->err_mu, NULL);
	for (int i = 0; i <= P11_SESSIONS_MAX; i++) {
		c->fd[i] = child[i] = -1;
		pthread_mutex_init(&c->mu[i], NULL);
	}
	for (int i = 0; i < nfd; i++) {
		int sp[2];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
			snprintf(why, whylen, "socketpair: %s", strerror(errno));
			goto fail;
		}
		c->fd[i] = sp[0];
		child[i] = sp[1];
	}
	if (cfg->pin_env && *cfg->pin_env) {
		const char *v = getenv(cfg->pin_env);

		if (v && asprintf(&pin_var, "%s=%s", cfg->pin_env, v) < 0)
			pin_var = NULL;
	}
	c->pid = fork();
	if (c->pid < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		goto fail;
	}
	if (c->pid == 0) {
		char *cenv[40], *argv[] = {(char *)helper, NULL};
		int k = 0;

		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		/* the helper's channels become 3, 4, ...: moved above first so
		 * no dup2 overwrites a descriptor still to be moved */
		for (int i = 0; i < nfd; i++) {
			int hi = fcntl(child[i], F_DUPFD, P11W_FIRST_FD + nfd);

			if (hi < 0)
				_exit(127);
			child[i] = hi;
		}
		for (int i = 0; i < nfd; i++)
			if (dup2(child[i], P11W_FIRST_FD + i) < 0)
				_exit(127);
		close_range(P11W_FIRST_FD + nfd, ~0U, 0);
		cenv[k++] = (char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin";
		for (int i = 0; env && env[i] && k < 38; i++)
			cenv[k++] = env[i];
		if (pin_var)
			cenv[k++] = pin_var;
		cenv[k] = NULL;
		execve(helper, argv, cenv);
		_exit(127);
	}
	if (pin_var) {
		char *v = getenv(cfg->pin_env);

		/* the helper has it now; the signer keeps no copy */
		if (v)
			OPENSSL_cleanse(v, strlen(v));
		unsetenv(cfg->pin_env);
		OPENSSL_cleanse(pin_var, strlen(pin_var));
		free(pin_var);
		pin_var = NULL;
	}
	for (int i = 0; i < nfd; i++) {
		close(child[i]);
		child[i] = -1;
	}
	snprintf(slot, sizeof slot, "%ld", cfg->slot);
	snprintf(sessions, sizeof sessions, "%d", cfg->sessions);
	f->h = (struct p11w_hdr){.op = P11W_CONFIG};
	if (put_field(f, cfg->module ? cfg->module : "") || put_field(f, cfg->token_label ? cfg->token_label : "") ||
	    put_field(f, cfg->slot >= 0 ? slot : "") || put_field(f, cfg->key_label ? cfg->key_label : "") ||
	    put_field(f, cfg->key_id ? cfg->key_id : "") || put_field(f, cfg->pin_file ? cfg->pin_file : "") ||
	    put_field(f, cfg->pin_env ? cfg->pin_env : "") || put_field(f, sessions)) {
		snprintf(why, whylen, "pkcs11: configuration too long");
		goto fail;
	}
	{
		struct frame *r = calloc(1, sizeof *r);
		uint32_t len = f->h.len;

		if (!r) {
			snprintf(why, whylen, "out of memory");
			goto fail;
		}
		memcpy(r, f, sizeof f->h + len);
		if (call(c, 0, P11W_CONFIG, 0, f->data, len, r, why, whylen) != 0) {
			free(r);
			goto fail;
		}
		free(r);
	}
	free(f);
	return c;
fail:
	if (pin_var) {
		OPENSSL_cleanse(pin_var, strlen(pin_var));
		free(pin_var);
	}
	for (int i = 0; i < nfd; i++)
		if (child[i] >= 0)
			close(child[i]);
	free(f);
	p11c_close(c);
	return NULL;
}

static void release(struct p11c *c, int reap)
{
	if (!c)
		return;
	for (int i = 0; i <= P11_SESSIONS_MAX; i++) {
		if (c->fd[i] >= 0)
			close(c->fd[i]);
		pthread_mutex_destroy(&c->mu[i]);
	}
	if (reap && c->pid > 0)
		waitpid(c->pid, NULL, 0);
	pthread_mutex_destroy(&c->err_mu);
	free(c);
}

void p11c_close(struct p11c *c)
{
	release(c, 1);
}

void p11c_abandon(struct p11c *c)
{
	release(c, 0);
}

/* ---- control ---- */

static struct frame *frame_new(char *why, size_t whylen)
{
	struct frame *f = malloc(sizeof *f);

	if (!f)
		snprintf(why, whylen, "out of memory");
	return f;
}

int p11c_connect(struct p11c *c, unsigned flags, EVP_PKEY *expect, char *why, size_t whylen)
{
	struct frame *r = frame_new(why, whylen);
	int rc = -1;

	if (!r)
		return -1;
	if (call(c, 0, P11W_CONNECT, flags, NULL, 0, r, why, whylen) != 0)
		goto out;
	if (expect) {
		/* one signature, checked with the certificate's key */
		uint8_t digest[32], sig[P11_SIG_MAX];
		size_t siglen = sizeof sig;
		int type = EVP_PKEY_id(expect), ok = 0;

		RAND_bytes(digest, sizeof digest);
		if (type == EVP_PKEY_EC) {
			if (p11c_sign(c, P11_ECDSA, 0, digest, sizeof digest, sig, &siglen, why, whylen) != 0)
				goto mismatch;
			ok = ECDSA_verify(0, digest, sizeof digest, sig, siglen, EVP_PKEY_get0_EC_KEY(expect)) == 1;
		} else if (type == EVP_PKEY_RSA) {
			uint8_t *di = NULL;
			size_t dilen;
			int alloced = 0, s;

			if (!RSA_add_pkcs1_prefix(&di, &dilen, &alloced, NID_sha256, digest, sizeof digest)) {
				snprintf(why, whylen, "out of memory");
				goto mismatch;
			}
			s = p11c_sign(c, P11_RSA_PKCS, 0, di, dilen, sig, &siglen, why, whylen);
			if (alloced)
				OPENSSL_free(di);
			if (s != 0)
				goto mismatch;
			ok = RSA_verify(NID_sha256, digest, sizeof digest, sig, siglen, EVP_PKEY_get0_RSA(expect)) == 1;
		}
		ERR_clear_error();
		if (!ok) {
			snprintf(why, whylen, "the private key on the token does not match the CA certificate");
			goto mismatch;
		}
	}
	rc = 0;
	goto out;
mismatch:
	{
		char w[400];

		/* the token is not ready for this CA: said so in the helper too */
		snprintf(w, sizeof w, "%s", why);
		(void)call(c, 0, P11W_DISCONNECT, 0, w, strlen(w), r, why, whylen);
		snprintf(why, whylen, "%s", w);
	}
out:
	free(r);
	return rc;
}

int p11c_ready(struct p11c *c, char *why, size_t whylen)
{
	struct frame *r = frame_new(why, whylen);
	int ready = 0;

	if (r && call(c, 0, P11W_READY, 0, NULL, 0, r, why, whylen) == 0) {
		ready = r->h.arg == 1;
		if (!ready)
			snprintf(why, whylen, "%.*s", (int)(r->h.len < 299 ? r->h.len : 299), (const char *)r->data);
	}
	free(r);
	return ready;
}

int p11c_retry_due(struct p11c *c)
{
	char why[300];
	struct frame *r = frame_new(why, sizeof why);
	int due = r && call(c, 0, P11W_RETRY_DUE, 0, NULL, 0, r, why, sizeof why) == 0 && r->h.arg == 1;

	free(r);
	return due;
}

int p11c_generate(struct p11c *c, const char *alg, char *why, size_t whylen)
{
	struct frame *r = frame_new(why, whylen);
	int rc = r ? call(c, 0, P11W_GENERATE, 0, alg, strlen(alg), r, why, whylen) : -1;

	free(r);
	return rc;
}

int p11c_counters(struct p11c *c, uint64_t v[3])
{
	char why[300];
	struct frame *r = frame_new(why, sizeof why);
	int rc = -1;

	if (r && call(c, 0, P11W_COUNTERS, 0, NULL, 0, r, why, sizeof why) == 0 && r->h.len == 3 * sizeof(uint64_t)) {
		memcpy(v, r->data, 3 * sizeof(uint64_t));
		rc = 0;
	}
	free(r);
	return rc;
}

int p11c_sessions(const struct p11c *c)
{
	return c->n;
}

void p11c_bind_thread(struct p11c *c, int i)
{
	tl_c = i >= 0 ? c : NULL;
	tl_i = i;
}

static EVP_PKEY *ec_public(const uint8_t *params, size_t plen, const uint8_t *point, size_t ptlen)
{
	static const uint8_t p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
	static const uint8_t p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
	int nid = plen == sizeof p256 && !memcmp(params, p256, plen)   ? NID_X9_62_prime256v1
		  : plen == sizeof p384 && !memcmp(params, p384, plen) ? NID_secp384r1
								       : NID_undef;
	EC_KEY *ec = nid != NID_undef ? EC_KEY_new_by_curve_name(nid) : NULL;
	EC_POINT *pt = ec ? EC_POINT_new(EC_KEY_get0_group(ec)) : NULL;
	EVP_PKEY *pk = NULL;
	CBS cbs, inner;

	/* CKA_EC_POINT is a DER OCTET STRING; some modules give the bare point */
	CBS_init(&cbs, point, ptlen);
	if (CBS_get_asn1(&cbs, &inner, CBS_ASN1_OCTETSTRING) && CBS_len(&cbs) == 0) {
		point = CBS_data(&inner);
		ptlen = CBS_len(&inner);
	}
	if (pt && EC_POINT_oct2point(EC_KEY_get0_group(ec), pt, point, ptlen, NULL) &&
	    EC_KEY_set_public_key(ec, pt) && (pk = EVP_PKEY_new()) && !EVP_PKEY_assign_EC_KEY(pk, ec)) {
		EVP_PKEY_free(pk);
		pk = NULL;
	}
	if (pk)
		ec = NULL;
	EC_POINT_free(pt);
	EC_KEY_free(ec);
	return pk;
}

/* rsa with modulus n and exponent e as an EVP_PKEY; all three taken (and
 * freed when it fails) */
static EVP_PKEY *rsa_with(RSA *rsa, BIGNUM *n, BIGNUM *e)
{
	EVP_PKEY *pk = NULL;

	if (rsa && n && e && RSA_set0_key(rsa, n, e, NULL)) {
		n = e = NULL;
		if ((pk = EVP_PKEY_new()) && EVP_PKEY_assign_RSA(pk, rsa))
			rsa = NULL;
		else {
			EVP_PKEY_free(pk);
			pk = NULL;
		}
	}
	BN_free(n);
	BN_free(e);
	RSA_free(rsa);
	return pk;
}

static EVP_PKEY *rsa_public(const uint8_t *n, size_t nlen, const uint8_t *e, size_t elen)
{
	return rsa_with(RSA_new(), BN_bin2bn(n, nlen, NULL), BN_bin2bn(e, elen, NULL));
}

EVP_PKEY *p11c_public_key(struct p11c *c, char *why, size_t whylen)
{
	struct frame *r = frame_new(why, whylen);
	EVP_PKEY *pk = NULL;
	CBS cbs, a1, a2;

	if (!r || call(c, 0, P11W_PUBKEY, 0, NULL, 0, r, why, whylen) != 0) {
		free(r);
		return NULL;
	}
	CBS_init(&cbs, r->data, r->h.len);
	if (CBS_get_u16_length_prefixed(&cbs, &a1) && CBS_get_u16_length_prefixed(&cbs, &a2) && CBS_len(&cbs) == 0)
		pk = r->h.arg == P11_KEY_EC ? ec_public(CBS_data(&a1), CBS_len(&a1), CBS_data(&a2), CBS_len(&a2))
					    : rsa_public(CBS_data(&a1), CBS_len(&a1), CBS_data(&a2), CBS_len(&a2));
	if (!pk)
		snprintf(why, whylen, "the token's public key cannot be read (an EC key on P-256 or P-384, or RSA)");
	ERR_clear_error();
	free(r);
	return pk;
}

/* ---- signing ---- */

int p11c_sign(struct p11c *c, enum p11_mech mech, int md_bits, const uint8_t *in, size_t inlen, uint8_t *out,
	      size_t *outlen, char *why, size_t whylen)
{
	struct frame *r = frame_new(why, whylen);
	int i = -1, rc = -1;

	if (!r)
		return -1;
	if (tl_c == c && tl_i >= 0 && tl_i < c->n) {
		i = tl_i + 1;
		pthread_mutex_lock(&c->mu[i]);
	} else {
		unsigned start = __atomic_fetch_add(&c->rr, 1, __ATOMIC_RELAXED);

		for (int k = 0; k < c->n && i < 0; k++)
			if (pthread_mutex_trylock(&c->mu[1 + (start + k) % c->n]) == 0)
				i = 1 + (int)((start + k) % c->n);
		if (i < 0) {
			/* all busy: wait in this session's queue */
			i = 1 + (int)(start % c->n);
			pthread_mutex_lock(&c->mu[i]);
		}
	}
	rc = call_locked(c, i, P11W_SIGN, (uint32_t)mech | (uint32_t)md_bits << 8, in, inlen, r, why, whylen);
	pthread_mutex_unlock(&c->mu[i]);
	if (rc == 0) {
		if (mech != P11_ECDSA) {
			if (r->h.len > *outlen) {
				snprintf(why, whylen, "the signature is longer than expected");
				rc = -1;
			} else {
				memcpy(out, r->data, r->h.len);
				*outlen = r->h.len;
			}
		} else {
			/* PKCS#11 gives r||s, each as long as the group order; X.509 wants DER */
			ECDSA_SIG *sig = ECDSA_SIG_new();
			size_t half = r->h.len / 2;
			BIGNUM *br = BN_bin2bn(r->data, half, NULL), *bs = BN_bin2bn(r->data + half, half, NULL);
			uint8_t *der = NULL;
			size_t derlen = 0;
			int ok = sig && br && bs && r->h.len % 2 == 0 && half > 0 && ECDSA_SIG_set0(sig, br, bs);

			if (ok)
				br = bs = NULL;
			ok = ok && ECDSA_SIG_to_bytes(&der, &derlen, sig) && derlen <= *outlen;
			if (ok) {
				memcpy(out, der, derlen);
				*outlen = derlen;
			} else {
				snprintf(why, whylen, "the token's ECDSA signature cannot be encoded");
				rc = -1;
			}
			OPENSSL_free(der);
			BN_free(br);
			BN_free(bs);
			ECDSA_SIG_free(sig);
			ERR_clear_error();
		}
	}
	if (rc != 0)
		set_last(c, why);
	free(r);
	return rc;
}

/* ---- EVP_PKEY whose private half is on the token ---- */

static pthread_once_t wrap_once = PTHREAD_ONCE_INIT;
static int ec_index = -1, rsa_index = -1;
static ENGINE *engine;

static size_t ec_order_size(const EC_KEY *key)
{
	return (size_t)BN_num_bytes(EC_GROUP_get0_order(EC_KEY_get0_group(key)));
}

static int ec_sign(const uint8_t *digest, size_t digest_len, uint8_t *sig, unsigned int *sig_len, EC_KEY *key)
{
	struct p11c *c = EC_KEY_get_ex_data(key, ec_index);
	size_t len = ECDSA_size(key);
	char why[300];

	if (!c || p11c_sign(c, P11_ECDSA, 0, digest, digest_len, sig, &len, why, sizeof why) != 0) {
		OPENSSL_PUT_ERROR(ENGINE, ENGINE_R_OPERATION_NOT_SUPPORTED);
		return 0;
	}
	*sig_len = (unsigned)len;
	return 1;
}

static int rsa_sign(int type, const uint8_t *m, unsigned int m_len, uint8_t *sigret, unsigned int *siglen,
		    const RSA *rsa)
{
	struct p11c *c = RSA_get_ex_data(rsa, rsa_index);
	uint8_t *di = NULL;
	size_t dilen, len = RSA_size(rsa);
	int alloced = 0, rc;
	char why[300];

	if (!c || !RSA_add_pkcs1_prefix(&di, &dilen, &alloced, type, m, m_len))
		return 0;
	rc = p11c_sign(c, P11_RSA_PKCS, 0, di, dilen, sigret, &len, why, sizeof why);
	if (alloced)
		OPENSSL_free(di);
	if (rc != 0) {
		OPENSSL_PUT_ERROR(ENGINE, ENGINE_R_OPERATION_NOT_SUPPORTED);
		return 0;
	}
	*siglen = (unsigned)len;
	return 1;
}

/* RSA_NO_PADDING: the block EVP padded (PSS) signed as it is; PKCS#1
 * padding: in is a DigestInfo */
static int rsa_sign_raw(RSA *rsa, size_t *out_len, uint8_t *out, size_t max_out, const uint8_t *in, size_t in_len,
			int padding)
{
	struct p11c *c = RSA_get_ex_data(rsa, rsa_index);
	size_t len = max_out;
	char why[300];

	if (!c || (padding != RSA_NO_PADDING && padding != RSA_PKCS1_PADDING) ||
	    p11c_sign(c, padding == RSA_NO_PADDING ? P11_RSA_RAW : P11_RSA_PKCS, 0, in, in_len, out, &len, why,
		      sizeof why) != 0) {
		OPENSSL_PUT_ERROR(ENGINE, ENGINE_R_OPERATION_NOT_SUPPORTED);
		return 0;
	}
	*out_len = len;
	return 1;
}

static size_t rsa_size(const RSA *rsa)
{
	return (size_t)BN_num_bytes(RSA_get0_n(rsa));
}

static ECDSA_METHOD ec_method = {
	.common = {.is_static = 1},
	.group_order_size = ec_order_size,
	.sign = ec_sign,
	.flags = ECDSA_FLAG_OPAQUE,
};

static RSA_METHOD rsa_method = {
	.common = {.is_static = 1},
	.size = rsa_size,
	.sign = rsa_sign,
	.sign_raw = rsa_sign_raw,
	.flags = RSA_FLAG_OPAQUE,
};

static void wrap_init(void)
{
	ec_index = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	rsa_index = RSA_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	engine = ENGINE_new();
	if (engine && (!ENGINE_set_ECDSA_method(engine, &ec_method, sizeof ec_method) ||
		       !ENGINE_set_RSA_method(engine, &rsa_method, sizeof rsa_method))) {
		ENGINE_free(engine);
		engine = NULL;
	}
}

EVP_PKEY *p11c_wrap(struct p11c *c, EVP_PKEY *pub)
{
	EVP_PKEY *pk = NULL;

	pthread_once(&wrap_once, wrap_init);
	if (!engine || ec_index < 0 || rsa_index < 0)
		return NULL;
	if (EVP_PKEY_id(pub) == EVP_PKEY_EC) {
		const EC_KEY *src = EVP_PKEY_get0_EC_KEY(pub);
		EC_KEY *ec = EC_KEY_new_method(engine);

		if (ec && EC_KEY_set_group(ec, EC_KEY_get0_group(src)) &&
		    EC_KEY_set_public_key(ec, EC_KEY_get0_public_key(src)) && EC_KEY_set_ex_data(ec, ec_index, c) &&
		    (pk = EVP_PKEY_new()) && EVP_PKEY_assign_EC_KEY(pk, ec))
			ec = NULL;
		else {
			EVP_PKEY_free(pk);
			pk = NULL;
		}
		EC_KEY_free(ec);
	} else if (EVP_PKEY_id(pub) == EVP_PKEY_RSA) {
		const RSA *src = EVP_PKEY_get0_RSA(pub);
		RSA *rsa = RSA_new_method(engine);

		if (rsa && !RSA_set_ex_data(rsa, rsa_index, c)) {
			RSA_free(rsa);
			rsa = NULL;
		}
		pk = rsa_with(rsa, BN_dup(RSA_get0_n(src)), BN_dup(RSA_get0_e(src)));
	}
	ERR_clear_error();
	return pk;
}

struct p11c *p11c_key_token(const EVP_PKEY *key)
{
	if (ec_index < 0 || !key)
		return NULL;
	if (EVP_PKEY_id(key) == EVP_PKEY_EC)
		return EC_KEY_get_ex_data(EVP_PKEY_get0_EC_KEY(key), ec_index);
	if (EVP_PKEY_id(key) == EVP_PKEY_RSA)
		return RSA_get_ex_data(EVP_PKEY_get0_RSA(key), rsa_index);
	return NULL;
}
