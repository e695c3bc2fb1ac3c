/* certward ca init --backend pkcs11 [...] and certward ca import-cert [...]
 *
 * Both read certward.yml's signer.pkcs11_* settings and start certward-p11
 * from master.libexec_dir, as the signer does. init makes the key pair on
 * the token (never a second one under the same label or id) and signs on
 * the token either a self-signed CA certificate or a CSR for an outside
 * CA; import-cert takes that CA's answer back after checking it belongs to
 * the token's key. The PIN is read by certward-p11 alone: nothing here
 * sees it. */
#include "ca_cmds.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bytestring.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "output.h"
#include "p11client.h"
#include "pki.h"
#include "util.h"
#include "x509sig.h"

extern char **environ;

#define DEFAULT_CONFIG "/etc/certward/certward.yml"
#define DEFAULT_SUBJECT "CN=certward HSM CA"
#define DEFAULT_DAYS 3650
#define MAX_DAYS 36500
#define ENV_MAX 32    /* pkcs11_env pairs (certward-p11 takes PATH, these and the PIN variable) */
#define CHAIN_MAX 16  /* certificates in --cert and --chain together */
#define PEM_FILE_MAX (256 * 1024)
#define KEY_ID_LEN 16 /* bytes of a key id made here when pkcs11_key_id is empty */
#define BACKDATE_S 300

void ca_init_usage(FILE *out)
{
	fprintf(out,
		"  ca init --backend pkcs11 [-c CONFIG] [--algorithm ecdsa-p256|ecdsa-p384|rsa-2048|rsa-3072|rsa-4096]\n"
		"          [--subject \"CN=...,O=...\"] [--days N] [--csr FILE | --out FILE]\n"
		"                              make the issuing CA's key on the PKCS#11 token of\n"
		"                              CONFIG's signer.pkcs11_* (default " DEFAULT_CONFIG ")\n"
		"                              and a self-signed CA certificate signed on the token\n"
		"                              (into --out, else signer.ca_cert_file; never replaced),\n"
		"                              or with --csr a CSR for an outside CA\n");
}

void ca_import_cert_usage(FILE *out)
{
	fprintf(out,
		"  ca import-cert [-c CONFIG] --cert FILE [--chain FILE] [--out FILE]\n"
		"                              the outside CA's certificate for the token's key, checked\n"
		"                              (a CA, keyCertSign, valid now, the token's key, each --chain\n"
		"                              certificate the signer of the one before), with its chain\n"
		"                              into --out, else signer.ca_cert_file\n");
}

/* "certward: ca init: <why>" on stderr, escaped to one line; returns 1. */
static int failf(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int failf(const char *cmd, const char *fmt, ...)
{
	char msg[1024];
	struct strbuf b;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	strbuf_init(&b, 2048);
	out_escape(&b, msg, strlen(msg));
	fprintf(stderr, "certward: ca %s: %s\n", cmd, b.p ? b.p : "");
	strbuf_free(&b);
	ERR_clear_error();
	return 1;
}

/* ---- the configuration and the token ---- */

struct token_conf {
	struct cfg *cfg;
	struct p11_config p11;
	char helper[1100];
	char *env_text;        /* pkcs11_env split in place */
	char *env[ENV_MAX + 1];
	char key_id[2 * KEY_ID_LEN + 1];
};

static void token_conf_free(struct token_conf *t)
{
	free(t->env_text);
	cfg_free(t->cfg);
}

/* certward.yml with the CERTWARD_SIGNER_* and CERTWARD_MASTER_* overrides
 * certwardd would apply (the CLI's own variables, CERTWARD_API_KEY and
 * the like, are none of the file's business). 0; 1 after saying why. */
static int token_conf_load(const char *cmd, const char *path, struct token_conf *t)
{
	char *envp[128], line[1400];
	struct cfg_error err;
	size_t n = 0;
	char *save = NULL, *tok;

	memset(t, 0, sizeof *t);
	for (char **e = environ; e && *e && n + 1 < sizeof envp / sizeof envp[0]; e++)
		if (strncmp(*e, "CERTWARD_SIGNER_", 16) == 0 || strncmp(*e, "CERTWARD_MASTER_", 16) == 0)
			envp[n++] = *e;
	envp[n] = NULL;
	if (cfg_load(path, envp, &t->cfg, &err) != 0) {
		cfg_error_format(&err, line, sizeof line);
		return failf(cmd, "%s", line);
	}
	t->p11 = (struct p11_config){
		.module = cfg_str(t->cfg, "signer", "pkcs11_module"),
		.token_label = cfg_str(t->cfg, "signer", "pkcs11_token_label"),
		.slot = (long)cfg_int(t->cfg, "signer", "pkcs11_slot"),
		.key_label = cfg_str(t->cfg, "signer", "pkcs11_key_label"),
		.key_id = cfg_str(t->cfg, "signer", "pkcs11_key_id"),
		.pin_file = cfg_str(t->cfg, "signer", "pkcs11_pin_file"),
		.pin_env = cfg_str(t->cfg, "signer", "pkcs11_pin_env"),
		.sessions = 1,
	};
	if (!*t->p11.module)
		return failf(cmd, "%s: signer.pkcs11_module is not set (the PKCS#11 module, e.g. "
				  "/usr/lib/softhsm/libsofthsm2.so)", path);
	if (!*t->p11.key_label && !*t->p11.key_id)
		return failf(cmd, "%s: signer.pkcs11_key_label or signer.pkcs11_key_id must name the key", path);
	if (snprintf(t->helper, sizeof t->helper, "%s/certward-p11", cfg_str(t->cfg, "master", "libexec_dir")) >=
	    (int)sizeof t->helper)
		return failf(cmd, "master.libexec_dir is too long");
	t->env_text = strdup(cfg_str(t->cfg, "signer", "pkcs11_env"));
	if (!t->env_text)
		return failf(cmd, "out of memory");
	n = 0;
	for (tok = strtok_r(t->env_text, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		if (tok[0] == '=' || !strchr(tok, '='))
			return failf(cmd, "signer.pkcs11_env: '%.80s' is not NAME=VALUE", tok);
		if (n == ENV_MAX)
			return failf(cmd, "signer.pkcs11_env: more than %d variables", ENV_MAX);
		t->env[n++] = tok;
	}
	t->env[n] = NULL;
	return 0;
}

/* certward-p11 started and connected; NULL after saying why. */
static struct p11c *token_open(const char *cmd, struct token_conf *t, unsigned flags)
{
	char why[400];
	struct p11c *c = p11c_open(&t->p11, t->helper, t->env, why, sizeof why);

	if (!c) {
		failf(cmd, "cannot start the PKCS#11 helper: %s", why);
		return NULL;
	}
	if (p11c_connect(c, flags, NULL, why, sizeof why) != 0) {
		failf(cmd, "the token is not usable: %s", why);
		p11c_close(c);
		return NULL;
	}
	return c;
}

/* 'labelled "x"', 'with id 0a1b...' or both: the key in messages */
static void key_name(const struct p11_config *p, char *out, size_t len)
{
	if (*p->key_label && *p->key_id)
		snprintf(out, len, "labelled \"%s\" (id %s)", p->key_label, p->key_id);
	else if (*p->key_label)
		snprintf(out, len, "labelled \"%s\"", p->key_label);
	else
		snprintf(out, len, "with id %s", p->key_id);
}

/* ---- files ---- */

/* A file that must not exist yet, reserved before the token is touched:
 * written to a temporary file beside it, then linked to its name (which
 * fails if the name was taken meanwhile), so it appears whole or not at
 * all and never replaces anything. */
struct new_file {
	const char *path;
	char tmp[1200];
	int fd;
};

static int new_file_reserve(const char *cmd, struct new_file *f, const char *path)
{
	struct stat st;

	f->path = path;
	f->fd = -1;
	if (lstat(path, &st) == 0)
		return failf(cmd, "%s exists already: not replaced (move it away, or name another file)", path);
	if (errno != ENOENT)
		return failf(cmd, "%s: %s", path, strerror(errno));
	if (snprintf(f->tmp, sizeof f->tmp, "%s.XXXXXX", path) >= (int)sizeof f->tmp)
		return failf(cmd, "%s: path too long", path);
	f->fd = mkostemp(f->tmp, O_CLOEXEC);
	if (f->fd < 0)
		return failf(cmd, "cannot write beside %s: %s", path, strerror(errno));
	return 0;
}

static void new_file_abandon(struct new_file *f)
{
	if (f->fd >= 0) {
		close(f->fd);
		unlink(f->tmp);
		f->fd = -1;
	}
}

static int new_file_commit(const char *cmd, struct new_file *f, const void *data, size_t len, mode_t mode)
{
	int ok = write(f->fd, data, len) == (ssize_t)len && fchmod(f->fd, mode) == 0 && fsync(f->fd) == 0;
	int e = errno;

	ok = close(f->fd) == 0 && ok;
	f->fd = -1;
	if (ok && link(f->tmp, f->path) != 0) {
		e = errno;
		ok = 0;
	}
	unlink(f->tmp);
	if (!ok)
		return failf(cmd, "cannot write %s: %s", f->path, e == EEXIST ? "it was made meanwhile" : strerror(e));
	return 0;
}

/* The certificates of a PEM file (at most CHAIN_MAX - *n more) appended to
 * certs. 0; 1 after saying why. */
static int read_certs(const char *cmd, const char *path, X509 **certs, size_t *n)
{
	FILE *fp = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, before = *n;
	BIO *bio = NULL;
	int rc = 1;
	X509 *x;

	if (!fp)
		return failf(cmd, "cannot read %s: %s", path, strerror(errno));
	buf = malloc(PEM_FILE_MAX + 1);
	if (!buf) {
		fclose(fp);
		return failf(cmd, "out of memory");
	}
	len = fread(buf, 1, PEM_FILE_MAX + 1, fp);
	if (ferror(fp))
		failf(cmd, "cannot read %s: %s", path, strerror(errno));
	else if (len > PEM_FILE_MAX)
		failf(cmd, "%s: larger than %d bytes", path, PEM_FILE_MAX);
	else if (!(bio = BIO_new_mem_buf(buf, (ssize_t)len)))
		failf(cmd, "out of memory");
	else
		rc = 0;
	fclose(fp);
	while (rc == 0 && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		if (*n == CHAIN_MAX) {
			X509_free(x);
			rc = failf(cmd, "%s: more than %d certificates in all", path, CHAIN_MAX);
			break;
		}
		certs[(*n)++] = x;
	}
	if (rc == 0 && *n == before)
		rc = failf(cmd, "%s: no PEM certificate in it", path);
	ERR_clear_error();
	BIO_free(bio);
	free(buf);
	return rc;
}

/* ---- names and certificates ---- */

/* "CN=Example HSM CA,O=Example" (a comma inside a value written "\,")
 * into a name; NULL after saying why (a usage error). */
static X509_NAME *parse_subject(const char *text)
{
	X509_NAME *name = X509_NAME_new();
	char part[512];
	size_t p = 0;

	if (!name)
		return NULL;
	for (const char *s = text;; s++) {
		if (*s == '\\' && s[1] == ',') {
			s++;
		} else if (*s == ',' || *s == '\0') {
			char *eq, *k = part, *v;

			part[p] = '\0';
			while (*k == ' ')
				k++;
			eq = strchr(k, '=');
			v = eq ? eq + 1 : NULL;
			if (eq) {
				for (char *e = eq; e > k && e[-1] == ' '; e--)
					e[-1] = '\0';
				*eq = '\0';
				while (*v == ' ')
					v++;
			}
			if (!eq || !*k || !*v || OBJ_txt2nid(k) == NID_undef ||
			    !X509_NAME_add_entry_by_txt(name, k, MBSTRING_UTF8, (const unsigned char *)v, -1, -1, 0)) {
				cli_usage_error("certward ca init --help",
						"--subject: '%.100s' is not ATTRIBUTE=VALUE (CN, O, OU, C, ST, L, ...)",
						eq ? k : part);
				X509_NAME_free(name);
				ERR_clear_error();
				return NULL;
			}
			p = 0;
			if (!*s)
				break;
			continue;
		}
		if (p + 1 >= sizeof part) {
			cli_usage_error("certward ca init --help", "--subject: a part longer than %zu characters",
					sizeof part - 1);
			X509_NAME_free(name);
			return NULL;
		}
		part[p++] = *s;
	}
	return name;
}

static void name_text(const X509_NAME *name, char *out, size_t len)
{
	if (!X509_NAME_oneline(name, out, (int)len))
		snprintf(out, len, "?");
}

/* A self-signed CA certificate for pub, signed with key (on the token). */
static X509 *self_signed(X509_NAME *subject, EVP_PKEY *pub, EVP_PKEY *key, long days)
{
	X509 *x = X509_new();
	int ok = x && X509_set_version(x, X509_VERSION_3) && pki_set_random_serial(x) == 0 &&
		 X509_set_subject_name(x, subject) && X509_set_issuer_name(x, subject) &&
		 X509_gmtime_adj(X509_getm_notBefore(x), -BACKDATE_S) &&
		 X509_gmtime_adj(X509_getm_notAfter(x), days * 86400L) && X509_set_pubkey(x, pub) &&
		 pki_add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") &&
		 pki_add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature") &&
		 pki_add_ext(x, x, NID_subject_key_identifier, "hash") && X509_sign(x, key, x509sig_digest(pub)) &&
		 X509_verify(x, pub) == 1;

	if (!ok) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

/* A CSR for subject with pub, asking for a CA certificate (basicConstraints
 * and keyUsage as extensionRequest), signed with key (on the token). */
static X509_REQ *ca_request(X509_NAME *subject, EVP_PKEY *pub, EVP_PKEY *key)
{
	X509_REQ *req = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *bc = X509V3_EXT_nconf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
	X509_EXTENSION *ku =
		X509V3_EXT_nconf_nid(NULL, NULL, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
	int ok = req && exts && bc && ku && sk_X509_EXTENSION_push(exts, bc) &&
		 ((bc = NULL), sk_X509_EXTENSION_push(exts, ku)) && ((ku = NULL), X509_REQ_set_version(req, 0)) &&
		 X509_REQ_set_subject_name(req, subject) && X509_REQ_set_pubkey(req, pub) &&
		 X509_REQ_add_extensions(req, exts) && X509_REQ_sign(req, key, x509sig_digest(pub)) &&
		 X509_REQ_verify(req, pub) == 1;

	X509_EXTENSION_free(bc);
	X509_EXTENSION_free(ku);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	if (!ok) {
		X509_REQ_free(req);
		req = NULL;
	}
	return req;
}

static char *req_pem(X509_REQ *req, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	const uint8_t *p;
	char *out = NULL;

	if (bio && PEM_write_bio_X509_REQ(bio, req) && BIO_mem_contents(bio, &p, len) && (out = malloc(*len + 1))) {
		memcpy(out, p, *len);
		out[*len] = '\0';
	}
	BIO_free(bio);
	return out;
}

/* ---- ca init ---- */

struct init_args {
	const char *config, *backend, *algorithm, *subject, *csr, *out;
	long days;
	int days_set;
};

static int init_args_parse(int argc, char **argv, struct init_args *a)
{
	static const char *const hint = "certward ca init --help";
	static const char *const algs[] = {"ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096"};
	int known = 0;

	*a = (struct init_args){.config = DEFAULT_CONFIG, .algorithm = "ecdsa-p256", .subject = DEFAULT_SUBJECT,
				.days = DEFAULT_DAYS};
	for (int i = 1; i < argc; i++) {
		char name[64];
		const char *v;
		int rc;

		if (strcmp(argv[i], "-c") == 0) {
			if (i + 1 >= argc)
				return cli_usage_error(hint, "-c needs the configuration file");
			a->config = argv[++i];
			continue;
		}
		if ((rc = cli_option_name(argv[i], name)) != 0)
			return rc;
		if ((rc = cli_option_value(argc, argv, &i, &v)) != 0)
			return rc;
		if (strcmp(name, "config") == 0) {
			a->config = v;
		} else if (strcmp(name, "backend") == 0) {
			a->backend = v;
		} else if (strcmp(name, "algorithm") == 0) {
			a->algorithm = v;
		} else if (strcmp(name, "subject") == 0) {
			a->subject = v;
		} else if (strcmp(name, "csr") == 0) {
			a->csr = v;
		} else if (strcmp(name, "out") == 0) {
			a->out = v;
		} else if (strcmp(name, "days") == 0) {
			char *end;

			errno = 0;
			a->days = strtol(v, &end, 10);
			if (errno || end == v || *end || a->days < 1 || a->days > MAX_DAYS)
				return cli_usage_error(hint, "--days: a whole number of days from 1 to %d", MAX_DAYS);
			a->days_set = 1;
		} else {
			return cli_usage_error(hint, "ca init: unknown option '--%s'", name);
		}
	}
	if (!a->backend)
		return cli_usage_error(hint, "ca init needs --backend pkcs11");
	if (strcmp(a->backend, "file") == 0)
		return cli_usage_error(hint, "ca init --backend file: nothing to do here; with signer.ca_backend: file, "
					     "the signer makes its CA at its first start (docs/pki.md)");
	if (strcmp(a->backend, "pkcs11") != 0)
		return cli_usage_error(hint, "--backend: '%.40s' is not pkcs11", a->backend);
	for (size_t k = 0; k < sizeof algs / sizeof algs[0]; k++)
		known |= strcmp(a->algorithm, algs[k]) == 0;
	if (!known)
		return cli_usage_error(hint, "--algorithm: '%.40s' is not one of ecdsa-p256, ecdsa-p384, rsa-2048, "
					     "rsa-3072, rsa-4096", a->algorithm);
	if (a->csr && a->out)
		return cli_usage_error(hint, "--csr and --out: the CSR goes to the --csr FILE");
	if (a->csr && a->days_set)
		return cli_usage_error(hint, "--days and --csr: the outside CA sets the validity of its certificate");
	return 0;
}

int ca_init_main(int argc, char **argv)
{
	static const char *const cmd = "init";
	struct init_args a;
	struct token_conf t = {0};
	struct new_file f = {.fd = -1};
	X509_NAME *subject = NULL;
	struct p11c *c = NULL;
	EVP_PKEY *pub = NULL, *key = NULL;
	X509 *cert = NULL;
	X509_REQ *req = NULL;
	char why[400], keyname[300], fp[100], *pem = NULL;
	const char *out_path;
	size_t pem_len = 0;
	int rc;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage:\n");
		ca_init_usage(stdout);
		return 0;
	}
	if ((rc = init_args_parse(argc, argv, &a)) != 0)
		return rc;
	if (!(subject = parse_subject(a.subject)))
		return EXIT_USAGE;
	if ((rc = token_conf_load(cmd, a.config, &t)) != 0)
		goto out;
	out_path = a.csr ? a.csr : a.out ? a.out : cfg_str(t.cfg, "signer", "ca_cert_file");
	if (!*out_path) {
		rc = failf(cmd, "%s: signer.ca_cert_file is not set: set it (where the signer reads the CA "
				"certificate), or name the file with --out",
			   a.config);
		goto out;
	}
	key_name(&t.p11, keyname, sizeof keyname);
	if (!*t.p11.key_id) {
		/* the id is made here so it can be told: a second key under
		 * another label is then told apart by id too */
		uint8_t id[KEY_ID_LEN];

		RAND_bytes(id, sizeof id);
		hex_encode(id, sizeof id, t.key_id);
		t.p11.key_id = t.key_id;
	}
	/* nothing is made on the token before the file is known to be new */
	if ((rc = new_file_reserve(cmd, &f, out_path)) != 0)
		goto out;
	rc = 1;
	if (!(c = token_open(cmd, &t, P11_RW | P11_NO_KEY)))
		goto out;
	if (p11c_generate(c, a.algorithm, why, sizeof why) != 0) {
		failf(cmd, "cannot make the key %s: %s; nothing was changed", keyname, why);
		goto out;
	}
	if (!(pub = p11c_public_key(c, why, sizeof why))) {
		failf(cmd, "the key %s was made on the token, but its public key cannot be read: %s", keyname, why);
		goto out;
	}
	if (!(key = p11c_wrap(c, pub))) {
		failf(cmd, "the key %s was made on the token, but cannot be used: out of memory", keyname);
		goto out;
	}
	if (a.csr) {
		req = ca_request(subject, pub, key);
		pem = req ? req_pem(req, &pem_len) : NULL;
	} else {
		cert = self_signed(subject, pub, key, a.days);
		pem = cert ? pki_cert_pem(cert, &pem_len) : NULL;
	}
	if (!pem) {
		p11c_last_error(c, why, sizeof why);
		failf(cmd, "the key %s was made on the token, but the %s could not be signed with it: %s", keyname,
		      a.csr ? "CSR" : "certificate", why);
		goto out;
	}
	if (new_file_commit(cmd, &f, pem, pem_len, 0644) != 0) {
		failf(cmd, "the key %s is on the token: run ca init again with another pkcs11_key_label, or "
			   "delete that key with the token's tools",
		      keyname);
		goto out;
	}
	printf("key: label \"%s\", id %s, %s, made on the token, not extractable\n", t.p11.key_label, t.p11.key_id,
	       a.algorithm);
	if (cert) {
		pki_fingerprint(cert, fp, sizeof fp);
		printf("certificate: %s (self-signed CA, %s, valid %ld days)\n", out_path, a.subject, a.days);
		printf("SHA-256 fingerprint: %s\n", fp);
		printf("next: in %s set signer.ca_backend: pkcs11%s%s, then start certwardd\n", a.config,
		       a.out ? " and signer.ca_cert_file: " : "", a.out ? a.out : "");
	} else {
		printf("CSR: %s (%s)\n", out_path, a.subject);
		printf("next: have the outside CA sign it as a CA certificate (basicConstraints CA:TRUE, keyUsage "
		       "keyCertSign, cRLSign), then\n"
		       "      certward ca import-cert -c %s --cert signed.pem [--chain chain.pem]\n",
		       a.config);
	}
	rc = 0;
out:
	new_file_abandon(&f);
	free(pem);
	X509_free(cert);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	EVP_PKEY_free(pub);
	p11c_close(c);
	X509_NAME_free(subject);
	if (t.cfg || t.env_text)
		token_conf_free(&t);
	ERR_clear_error();
	return rc;
}

/* ---- ca import-cert ---- */

/* The issuing CA's certificate for the token's key: a CA that may sign
 * certificates, valid now, and each certificate after it the signer of
 * the one before. 0; 1 after saying why. */
static int check_chain(const char *cmd, X509 **certs, size_t n, size_t from_cert, EVP_PKEY *token_key,
		       const char *keyname)
{
	X509 *ca = certs[0];
	char subj[256], issuer_subj[256];
	uint32_t flags = X509_get_extension_flags(ca);
	EVP_PKEY *k;
	int same;

	name_text(X509_get_subject_name(ca), subj, sizeof subj);
	if (!(flags & EXFLAG_CA))
		return failf(cmd, "%s is not a CA certificate (no basicConstraints CA:TRUE)", subj);
	if (!(flags & EXFLAG_KUSAGE) || !(X509_get_key_usage(ca) & KU_KEY_CERT_SIGN))
		return failf(cmd, "%s may not sign certificates (its keyUsage lacks keyCertSign)", subj);
	if (X509_cmp_current_time(X509_get0_notBefore(ca)) >= 0)
		return failf(cmd, "%s is not valid yet", subj);
	if (X509_cmp_current_time(X509_get0_notAfter(ca)) <= 0)
		return failf(cmd, "%s has expired", subj);
	k = X509_get_pubkey(ca);
	same = k && EVP_PKEY_cmp(k, token_key) == 1;
	EVP_PKEY_free(k);
	if (!same)
		return failf(cmd, "the certificate is not for the key %s on the token (%s)", keyname, subj);
	for (size_t i = 1; i < n; i++) {
		int signs;

		k = X509_get_pubkey(certs[i]);
		signs = k && X509_check_issued(certs[i], certs[i - 1]) == X509_V_OK && X509_verify(certs[i - 1], k) == 1;
		EVP_PKEY_free(k);
		name_text(X509_get_subject_name(certs[i - 1]), subj, sizeof subj);
		name_text(X509_get_subject_name(certs[i]), issuer_subj, sizeof issuer_subj);
		if (!signs)
			return failf(cmd, "%s certificate %zu (%s) did not sign the one before it (%s): the chain "
					  "goes from the issuing CA's parent up to the root",
				     i >= from_cert ? "--chain" : "--cert", i >= from_cert ? i - from_cert + 1 : i + 1,
				     issuer_subj, subj);
	}
	ERR_clear_error();
	return 0;
}

int ca_import_cert_main(int argc, char **argv)
{
	static const char *const cmd = "import-cert";
	static const char *const hint = "certward ca import-cert --help";
	const char *config = DEFAULT_CONFIG, *cert_path = NULL, *chain_path = NULL, *out = NULL;
	X509 *certs[CHAIN_MAX];
	size_t n = 0, from_chain;
	struct token_conf t = {0};
	struct p11c *c = NULL;
	EVP_PKEY *pub = NULL;
	struct strbuf pem;
	char why[400], keyname[300], fp[100], subj[256];
	int rc;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage:\n");
		ca_import_cert_usage(stdout);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		char name[64];
		const char *v;

		if (strcmp(argv[i], "-c") == 0) {
			if (i + 1 >= argc)
				return cli_usage_error(hint, "-c needs the configuration file");
			config = argv[++i];
			continue;
		}
		if ((rc = cli_option_name(argv[i], name)) != 0 || (rc = cli_option_value(argc, argv, &i, &v)) != 0)
			return rc;
		if (strcmp(name, "config") == 0)
			config = v;
		else if (strcmp(name, "cert") == 0)
			cert_path = v;
		else if (strcmp(name, "chain") == 0)
			chain_path = v;
		else if (strcmp(name, "out") == 0)
			out = v;
		else
			return cli_usage_error(hint, "ca import-cert: unknown option '--%s'", name);
	}
	if (!cert_path)
		return cli_usage_error(hint, "ca import-cert needs --cert FILE (the CA certificate for the token's key)");
	strbuf_init(&pem, (size_t)CHAIN_MAX * 16384);
	if ((rc = token_conf_load(cmd, config, &t)) != 0)
		goto out;
	rc = 1;
	if (!out)
		out = cfg_str(t.cfg, "signer", "ca_cert_file");
	if (!*out) {
		failf(cmd, "%s: signer.ca_cert_file is not set: set it, or name the file with --out", config);
		goto out;
	}
	/* the certificates first: a bad file is said before the token is asked */
	if (read_certs(cmd, cert_path, certs, &n) != 0)
		goto out;
	from_chain = n;
	if (chain_path && read_certs(cmd, chain_path, certs, &n) != 0)
		goto out;
	key_name(&t.p11, keyname, sizeof keyname);
	if (!(c = token_open(cmd, &t, 0)))
		goto out;
	if (!(pub = p11c_public_key(c, why, sizeof why))) {
		failf(cmd, "the key %s on the token: %s", keyname, why);
		goto out;
	}
	if (check_chain(cmd, certs, n, from_chain, pub, keyname) != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		size_t len;
		char *p = pki_cert_pem(certs[i], &len);

		if (p)
			strbuf_printf(&pem, "%s", p);
		free(p);
		if (!p || pem.truncated) {
			failf(cmd, "out of memory");
			goto out;
		}
	}
	if (pki_write_file(out, pem.p, pem.len, 0644) != 0) {
		failf(cmd, "cannot write %s: %s", out, strerror(errno));
		goto out;
	}
	pki_fingerprint(certs[0], fp, sizeof fp);
	name_text(X509_get_subject_name(certs[0]), subj, sizeof subj);
	printf("certificate: %s (%s, for the key %s on the token), with %zu chain certificate%s\n", out, subj,
	       keyname, n - 1, n == 2 ? "" : "s");
	printf("SHA-256 fingerprint: %s\n", fp);
	printf("next: with signer.ca_backend: pkcs11, start certwardd (or restart the signer: certward ctl restart "
	       "signer)\n");
	rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		X509_free(certs[i]);
	strbuf_free(&pem);
	EVP_PKEY_free(pub);
	p11c_close(c);
	if (t.cfg || t.env_text)
		token_conf_free(&t);
	ERR_clear_error();
	return rc;
}
