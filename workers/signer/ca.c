#include "ca.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "p11client.h"
#include "pki.h"
#include "validate.h"

#define CHAIN_MAX 8

struct ca {
	EVP_PKEY *key;
	X509 *cert;
	char *chain_pem;
	size_t chain_len;
	X509 *up[CHAIN_MAX]; /* cert, then the certificates above it */
	int nup;
	struct ca *root;     /* self_signed: the root, which signs intermediates */
	char id[65];         /* "" for the issuing CA, else the intermediate's id */
	struct p11c *p11;    /* the key is on a token (ca_backend pkcs11) */
	int p11_ready;       /* as last seen: for the log lines of changes */
};

/* intermediates loaded so far (ca_intermediate), owned here */
#define INTERMEDIATES_MAX 256
static struct ca *loaded[INTERMEDIATES_MAX];
static size_t nloaded;

X509 *ca_cert(const struct ca *ca)
{
	return ca->cert;
}

EVP_PKEY *ca_key(const struct ca *ca)
{
	return ca->key;
}

const char *ca_chain_pem(const struct ca *ca, size_t *len)
{
	*len = ca->chain_len;
	return ca->chain_pem;
}

static void ca_free_one(struct ca *ca)
{
	if (!ca)
		return;
	EVP_PKEY_free(ca->key);
	/* the helper ends when its channels close; the signer may not wait(2) */
	p11c_abandon(ca->p11);
	X509_free(ca->cert);
	free(ca->chain_pem);
	for (int i = 0; i < ca->nup; i++)
		X509_free(ca->up[i]);
	ca_free_one(ca->root);
	free(ca);
}

void ca_free(struct ca *ca)
{
	ca_free_one(ca);
	for (size_t i = 0; i < nloaded; i++)
		ca_free_one(loaded[i]);
	nloaded = 0;
}

char *ca_passphrase(const struct cfg *section, int *bad)
{
	const char *path = cfg_str(section, "signer", "ca_key_passphrase_file");
	size_t len;
	char *p;

	*bad = 0;
	if (!*path)
		return NULL;
	p = pki_read_file(path, &len);
	if (!p) {
		log_error("signer.ca_key_passphrase_file %s: cannot read it: %s", path, strerror(errno));
		*bad = 1;
		return NULL;
	}
	p[strcspn(p, "\r\n")] = '\0';
	if (strlen(p) < 8) {
		log_error("signer.ca_key_passphrase_file %s: the passphrase on its first line is shorter "
			  "than 8 characters", path);
		OPENSSL_cleanse(p, len);
		free(p);
		*bad = 1;
		return NULL;
	}
	return p;
}

void ca_passphrase_free(char *p)
{
	if (p) {
		OPENSSL_cleanse(p, strlen(p));
		free(p);
	}
}

/* Records cert's signature in the ledger, then writes it to path: a
 * certificate never exists outside the signer without its ledger line. */
static int record_and_write(struct ledger *ledger, const char *signer_name, X509 *cert, const char *path)
{
	uint8_t *der = NULL;
	int len = i2d_X509(cert, &der);
	char serial[80], why[300];
	size_t plen;
	char *pem;
	int rc = -1;

	if (len <= 0)
		return -1;
	pki_serial_hex(cert, serial, sizeof serial);
	if (ledger_append(ledger, "certificate", signer_name, serial, der, (size_t)len, why, sizeof why) != 0) {
		log_error("not keeping the certificate for %s: %s", path, why);
		OPENSSL_free(der);
		return -1;
	}
	OPENSSL_free(der);
	pem = pki_cert_pem(cert, &plen);
	if (pem && pki_write_file(path, pem, plen, 0644) == 0)
		rc = 0;
	else
		log_error("cannot write %s: %s", path, strerror(errno));
	free(pem);
	return rc;
}

static X509 *load_cert(const char *path)
{
	size_t len;
	char *pem = pki_read_file(path, &len);
	X509 *c = pem ? pki_cert_parse(pem, len) : NULL;

	free(pem);
	return c;
}

/* A CA certificate: subject "CN=<cn>", signed by issuer_key (self-signed
 * when issuer is NULL), valid for seconds from now, never past the issuer's
 * notAfter; flags: CA_PATHLEN0, CA_DIGITAL_SIGNATURE. */
static X509 *make_ca_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, long seconds,
			  unsigned flags)
{
	X509 *cert = X509_new();
	X509_NAME *name = X509_NAME_new();
	int ok = cert && name && X509_set_version(cert, X509_VERSION_3) && pki_set_random_serial(cert) == 0 &&
		 X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) &&
		 X509_set_subject_name(cert, name) &&
		 X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name) &&
		 X509_gmtime_adj(X509_getm_notBefore(cert), -300) &&
		 X509_gmtime_adj(X509_getm_notAfter(cert), seconds) && X509_set_pubkey(cert, key);

	if (ok && issuer) {
		int days, secs;

		/* never valid past the certificate above it */
		if (ASN1_TIME_diff(&days, &secs, X509_get0_notAfter(issuer), X509_get0_notAfter(cert)) &&
		    (days > 0 || secs > 0))
			ok = X509_set1_notAfter(cert, X509_get0_notAfter(issuer));
	}
	ok = ok && pki_add_ext(cert, issuer ? issuer : cert, NID_basic_constraints,
			       flags & CA_PATHLEN0 ? "critical,CA:TRUE,pathlen:0" : "critical,CA:TRUE") &&
	     pki_add_ext(cert, issuer ? issuer : cert, NID_key_usage,
			 flags & CA_DIGITAL_SIGNATURE ? "critical,keyCertSign,cRLSign,digitalSignature"
						      : "critical,keyCertSign,cRLSign") &&
	     pki_add_ext(cert, issuer ? issuer : cert, NID_subject_key_identifier, "hash") &&
	     (!issuer || pki_add_ext(cert, issuer, NID_authority_key_identifier, "keyid:always")) &&
	     X509_sign(cert, issuer_key, pki_sign_digest(issuer_key));
	X509_NAME_free(name);
	if (!ok) {
		pki_log_error("cannot make a CA certificate");
		X509_free(cert);
		return NULL;
	}
	return cert;
}

static int signed_by(X509 *cert, X509 *issuer)
{
	EVP_PKEY *pub = X509_get_pubkey(issuer);
	int ok = pub && X509_verify(cert, pub) == 1;

	EVP_PKEY_free(pub);
	ERR_clear_error();
	return ok;
}

static int exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* The key in path: loaded, or made of alg and saved (0600). */
static EVP_PKEY *load_or_make_key(const char *path, int alg, const char *pass, const char *what, int *made)
{
	EVP_PKEY *k;

	*made = 0;
	if (exists(path))
		return pki_key_load(path, pass, what);
	k = pki_key_generate((enum pki_alg)alg);
	if (k && pki_key_save(k, path, pass) != 0) {
		EVP_PKEY_free(k);
		return NULL;
	}
	if (k) {
		*made = 1;
		log_info("made the %s (%s%s) in %s", what, pki_alg_name((enum pki_alg)alg),
			 pass ? ", encrypted with the passphrase" : "", path);
	}
	return k;
}

int ca_self_signed(const char *what, const char *key_path, const char *cert_path, const char *cn, int alg,
		   const char *pass, long seconds, unsigned flags, struct ledger *ledger, const char *ledger_name,
		   EVP_PKEY **key_out, X509 **cert_out)
{
	char key_what[200];
	EVP_PKEY *key;
	X509 *cert;
	int made;

	*key_out = NULL;
	*cert_out = NULL;
	snprintf(key_what, sizeof key_what, "%s key", what);
	if (!(key = load_or_make_key(key_path, alg, pass, key_what, &made)))
		return -1;
	/* the certificate is remade only with a new key (a crash between the
	 * two leaves the key alone) */
	if (!made && exists(cert_path)) {
		if (!(cert = load_cert(cert_path))) {
			log_error("cannot read the %s certificate %s", what, cert_path);
			EVP_PKEY_free(key);
			return -1;
		}
	} else {
		if (!(cert = make_ca_cert(cn, key, NULL, key, seconds, flags)) ||
		    record_and_write(ledger, ledger_name, cert, cert_path) != 0) {
			X509_free(cert);
			EVP_PKEY_free(key);
			return -1;
		}
		log_info("made the %s certificate %s", what, cert_path);
	}
	if (X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		log_error("%s does not match %s", cert_path, key_path);
		X509_free(cert);
		EVP_PKEY_free(key);
		return -1;
	}
	*key_out = key;
	*cert_out = cert;
	return 0;
}

static char *join_pem(X509 **certs, int n, size_t *len)
{
	char *out = NULL;

	*len = 0;
	for (int i = 0; i < n; i++) {
		size_t l;
		char *p = pki_cert_pem(certs[i], &l), *grown;

		if (!p || !(grown = realloc(out, *len + l + 1))) {
			free(p);
			free(out);
			return NULL;
		}
		out = grown;
		memcpy(out + *len, p, l + 1);
		*len += l;
		free(p);
	}
	return out;
}

static int self_signed(struct ca *ca, const struct cfg *section, const char *key_dir, struct ledger *ledger,
		       const char *pass, X509 **root_out)
{
	const char *name = cfg_str(section, "signer", "ca_name");
	int alg = pki_alg_parse(cfg_str(section, "signer", "ca_key_algorithm"));
	char dir[1100], rk[1200], rc[1200], ik[1200], ic[1200], cn[160];
	long root_s = (long)(cfg_duration_ms(section, "signer", "ca_root_validity") / 1000);
	long issuing_s = (long)(cfg_duration_ms(section, "signer", "ca_issuing_validity") / 1000);
	EVP_PKEY *root_key = NULL;
	X509 *root = NULL;
	int made, rc_ = -1;

	snprintf(dir, sizeof dir, "%s/ca", key_dir);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		log_error("cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	snprintf(rk, sizeof rk, "%s/root.key", dir);
	snprintf(rc, sizeof rc, "%s/root.crt", dir);
	snprintf(ik, sizeof ik, "%s/issuing.key", dir);
	snprintf(ic, sizeof ic, "%s/issuing.crt", dir);
	if (alg < 0) {
		log_error("signer.ca_key_algorithm: unknown algorithm");
		return -1;
	}
	/* the root: read or made only when the issuing CA must be made */
	if (!exists(rc) || !exists(ic)) {
		snprintf(cn, sizeof cn, "%s Root CA", name);
		if (ca_self_signed("root CA", rk, rc, cn, alg, pass, root_s, 0, ledger, "root", &root_key, &root) != 0)
			goto out;
	} else if (!(root = load_cert(rc))) {
		log_error("cannot read the root CA certificate %s", rc);
		goto out;
	}
	ca->key = load_or_make_key(ik, alg, pass, "issuing CA key", &made);
	if (!ca->key)
		goto out;
	if (!made && exists(ic)) {
		ca->cert = load_cert(ic);
		if (!ca->cert) {
			log_error("cannot read the issuing CA certificate %s", ic);
			goto out;
		}
	} else {
		if (!root_key && !(root_key = pki_key_load(rk, pass, "root CA key")))
			goto out;
		snprintf(cn, sizeof cn, "%s Issuing CA", name);
		ca->cert = make_ca_cert(cn, ca->key, root, root_key, issuing_s, CA_PATHLEN0 | CA_DIGITAL_SIGNATURE);
		if (!ca->cert || record_and_write(ledger, "root", ca->cert, ic) != 0)
			goto out;
		log_info("made the issuing CA certificate %s", ic);
	}
	if (X509_check_private_key(ca->cert, ca->key) != 1) {
		log_error("%s does not match %s", ic, ik);
		goto out;
	}
	if (!signed_by(ca->cert, root)) {
		log_error("%s is not signed by the root CA %s", ic, rc);
		goto out;
	}
	/* kept: the root signs the intermediates made through the API */
	if (!root_key && !(root_key = pki_key_load(rk, pass, "root CA key")))
		goto out;
	if (!(ca->root = calloc(1, sizeof *ca->root)) || !(ca->root->cert = X509_dup(root)) ||
	    !(ca->root->up[0] = X509_dup(root))) {
		log_error("out of memory");
		goto out;
	}
	ca->root->nup = 1;
	ca->root->key = root_key;
	root_key = NULL;
	ca->root->chain_pem = join_pem(&ca->root->cert, 1, &ca->root->chain_len);
	if (!ca->root->chain_pem)
		goto out;
	*root_out = root;
	root = NULL;
	rc_ = 0;
out:
	ERR_clear_error();
	EVP_PKEY_free(root_key);
	X509_free(root);
	return rc_;
}

/* Every certificate of a PEM file: the count, -1 when it cannot be read,
 * -2 when it holds more than CHAIN_MAX. */
static int load_chain(const char *path, X509 **certs)
{
	size_t len;
	char *pem = pki_read_file(path, &len);
	BIO *bio = pem ? BIO_new_mem_buf(pem, (ssize_t)len) : NULL;
	int n = 0;
	X509 *c;

	if (!bio) {
		free(pem);
		return -1;
	}
	while ((c = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		if (n == CHAIN_MAX) {
			/* never a chain cut short without a word */
			X509_free(c);
			while (n > 0)
				X509_free(certs[--n]);
			n = -2;
			break;
		}
		certs[n++] = c;
	}
	ERR_clear_error();
	BIO_free(bio);
	free(pem);
	return n;
}

/* signer.ca_cert_file: the issuing CA, then the certificates above it,
 * each signed by the next; a CA with keyCertSign, valid now. */
static int load_ca_chain(const struct cfg *section, X509 **chain, int *nchain)
{
	const char *cert_file = cfg_str(section, "signer", "ca_cert_file");
	X509 *c;

	*nchain = load_chain(cert_file, chain);
	if (*nchain == -2) {
		*nchain = 0;
		log_error("signer.ca_cert_file %s: more than %d certificates; list the issuing CA and the "
			  "certificates above it only", cert_file, CHAIN_MAX);
		return -1;
	}
	if (*nchain <= 0) {
		*nchain = 0;
		log_error("signer.ca_cert_file %s: no PEM certificate in it", cert_file);
		return -1;
	}
	c = chain[0];
	if (*nchain > 1 && signed_by(chain[1], chain[0]) && !signed_by(chain[0], chain[1])) {
		log_error("signer.ca_cert_file %s: the chain is listed from the top down; list the issuing "
			  "CA first, then the certificates above it", cert_file);
		return -1;
	}
	/* X509_check_ca would also say no for a CA without keyCertSign:
	 * the flags tell the two apart */
	if (!(X509_get_extension_flags(c) & EXFLAG_CA)) {
		log_error("signer.ca_cert_file %s: its first certificate is not a CA certificate "
			  "(basicConstraints CA:TRUE is missing)", cert_file);
		return -1;
	}
	if (!(X509_get_extension_flags(c) & EXFLAG_KUSAGE) || !(X509_get_key_usage(c) & KU_KEY_CERT_SIGN)) {
		log_error("signer.ca_cert_file %s: the CA certificate lacks keyCertSign in its keyUsage", cert_file);
		return -1;
	}
	if (X509_cmp_time(X509_get0_notAfter(c), NULL) <= 0 || X509_cmp_time(X509_get0_notBefore(c), NULL) > 0) {
		log_error("signer.ca_cert_file %s: the CA certificate is not valid now (expired or not yet valid)",
			  cert_file);
		return -1;
	}
	for (int i = 0; i + 1 < *nchain; i++) {
		if (!signed_by(chain[i], chain[i + 1])) {
			log_error("signer.ca_cert_file %s: certificate %d is not signed by the one after it; "
				  "list the chain from the issuing CA up", cert_file, i + 1);
			return -1;
		}
	}
	return 0;
}

static int subordinate(struct ca *ca, const struct cfg *section, const char *pass, X509 **chain, int *nchain)
{
	const char *cert_file = cfg_str(section, "signer", "ca_cert_file");
	const char *key_file = cfg_str(section, "signer", "ca_key_file");

	if (!*cert_file || !*key_file) {
		log_error("signer.ca_mode subordinate needs signer.ca_cert_file and signer.ca_key_file");
		return -1;
	}
	if (load_ca_chain(section, chain, nchain) != 0)
		return -1;
	ca->key = pki_key_load(key_file, pass, "signer.ca_key_file");
	if (!ca->key)
		return -1;
	if (X509_check_private_key(chain[0], ca->key) != 1) {
		ERR_clear_error();
		log_error("signer.ca_key_file %s does not match the CA certificate in %s", key_file, cert_file);
		return -1;
	}
	ca->cert = X509_dup(chain[0]);
	return ca->cert ? 0 : -1;
}

/* ---- the issuing CA's key on a PKCS#11 token ---- */

/* certward-p11, installed beside the signer */
static int p11_helper_path(char *out, size_t len)
{
	char self[1024];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	char *slash;

	if (n <= 0)
		return -1;
	self[n] = '\0';
	if (!(slash = strrchr(self, '/')))
		return -1;
	*slash = '\0';
	return snprintf(out, len, "%s/certward-p11", self) < (int)len ? 0 : -1;
}

int ca_p11_config(const struct cfg *section, struct p11_config *c, char *envbuf, size_t envlen, char **env,
		  size_t envmax)
{
	const char *e = cfg_str(section, "signer", "pkcs11_env");
	size_t n = 0;
	char *save = NULL, *item;

	*c = (struct p11_config){
		.module = cfg_str(section, "signer", "pkcs11_module"),
		.token_label = cfg_str(section, "signer", "pkcs11_token_label"),
		.slot = (long)cfg_int(section, "signer", "pkcs11_slot"),
		.key_label = cfg_str(section, "signer", "pkcs11_key_label"),
		.key_id = cfg_str(section, "signer", "pkcs11_key_id"),
		.pin_file = cfg_str(section, "signer", "pkcs11_pin_file"),
		.pin_env = cfg_str(section, "signer", "pkcs11_pin_env"),
		.sessions = (int)cfg_int(section, "signer", "pkcs11_sessions"),
	};
	if (strlen(e) >= envlen)
		return -1;
	snprintf(envbuf, envlen, "%s", e);
	for (item = strtok_r(envbuf, " \t", &save); item; item = strtok_r(NULL, " \t", &save)) {
		const char *eq = strchr(item, '=');

		if (!eq || eq == item || n + 1 >= envmax)
			return -1;
		for (const char *p = item; p < eq; p++)
			if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
				return -1;
		env[n++] = item;
	}
	env[n] = NULL;
	return 0;
}

static int token_ca(struct ca *ca, const struct cfg *section, X509 **chain, int *nchain)
{
	struct p11_config c;
	char helper[1100], envbuf[4100], *env[33], why[400];
	EVP_PKEY *pub;

	if (!*cfg_str(section, "signer", "ca_cert_file")) {
		log_error("signer.ca_backend pkcs11 needs signer.ca_cert_file (the CA certificate "
			  "`certward ca init --backend pkcs11` made, or the one `certward ca import-cert` installed)");
		return -1;
	}
	if (ca_p11_config(section, &c, envbuf, sizeof envbuf, env, 33) != 0) {
		log_error("signer.pkcs11_env: NAME=VALUE pairs separated by spaces, at most 32");
		return -1;
	}
	if (load_ca_chain(section, chain, nchain) != 0)
		return -1;
	if (p11_helper_path(helper, sizeof helper) != 0) {
		log_error("cannot find certward-p11 beside the signer");
		return -1;
	}
	ca->p11 = p11c_open(&c, helper, env, why, sizeof why);
	if (!ca->p11) {
		log_error("signer.ca_backend pkcs11: %s", why);
		return -1;
	}
	pub = X509_get_pubkey(chain[0]);
	ca->key = pub ? p11c_wrap(ca->p11, pub) : NULL;
	if (!ca->key || !(ca->cert = X509_dup(chain[0]))) {
		EVP_PKEY_free(pub);
		log_error("signer.ca_cert_file: the CA's key is neither EC nor RSA");
		return -1;
	}
	/* a token that cannot be used yet leaves the CA not ready, not the signer down */
	if (p11c_connect(ca->p11, 0, pub, why, sizeof why) != 0)
		log_event(LOG_ERROR, NULL, NULL, "issuing CA not ready: %s", why);
	else {
		ca->p11_ready = 1;
		log_info("issuing CA ready: its key is on the PKCS#11 token (%d sessions)", c.sessions);
	}
	EVP_PKEY_free(pub);
	return 0;
}

int ca_usable(struct ca *ca, char *why, size_t whylen)
{
	char w[300];

	if (!ca->p11)
		return 1;
	if (p11c_ready(ca->p11, w, sizeof w)) {
		ca->p11_ready = 1;
		return 1;
	}
	if (ca->p11_ready) {
		ca->p11_ready = 0;
		log_event(LOG_ERROR, NULL, NULL, "issuing CA not ready: %s", w);
	}
	snprintf(why, whylen, "the issuing CA is not ready: %.240s", w);
	return 0;
}

void ca_retry(struct ca *ca)
{
	char why[400];
	EVP_PKEY *pub;

	if (!ca || !ca->p11 || !p11c_retry_due(ca->p11))
		return;
	pub = X509_get_pubkey(ca->cert);
	if (pub && p11c_connect(ca->p11, 0, pub, why, sizeof why) == 0) {
		ca->p11_ready = 1;
		log_event(LOG_INFO, NULL, NULL, "issuing CA ready: the PKCS#11 token is back");
	} else if (ca->p11_ready) {
		ca->p11_ready = 0;
		log_event(LOG_ERROR, NULL, NULL, "issuing CA not ready: %s", pub ? why : "out of memory");
	}
	EVP_PKEY_free(pub);
}

size_t ca_status(struct ca *ca, char *out, size_t len)
{
	char why[300];

	if (!ca || !ca->p11 || len == 0)
		return 0;
	if (ca_usable(ca, why, sizeof why))
		snprintf(out, len, "issuing ready\n");
	else
		snprintf(out, len, "issuing not-ready %s\n", why + strlen("the issuing CA is not ready: "));
	return strlen(out);
}

int ca_on_token(const struct ca *ca)
{
	return ca && ca->p11;
}

void ca_last_error(const struct ca *ca, char *why, size_t whylen)
{
	if (ca && ca->p11)
		p11c_last_error(ca->p11, why, whylen);
	else
		snprintf(why, whylen, "see the signer's log");
}

int ca_p11_counters(const struct ca *ca, uint64_t v[3])
{
	return ca && ca->p11 ? p11c_counters(ca->p11, v) : -1;
}

int ca_publish(const char *cert_dir, const char *file, const char *pem, size_t len)
{
	char path[1200];

	snprintf(path, sizeof path, "%s/%s", cert_dir, file);
	if (pki_write_file(path, pem, len, 0644) != 0) {
		log_error("cannot publish %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int self_issued(X509 *c)
{
	return X509_NAME_cmp(X509_get_subject_name(c), X509_get_issuer_name(c)) == 0;
}

struct ca *ca_open(const struct cfg *section, const char *key_dir, const char *cert_dir, struct ledger *ledger)
{
	struct ca *ca = calloc(1, sizeof *ca);
	X509 *chain[CHAIN_MAX] = {0};
	int n = 0, bad, ok = 0;
	char *pass = ca_passphrase(section, &bad);
	const char *mode = cfg_str(section, "signer", "ca_mode");
	char fp[200];

	if (!ca || bad)
		goto out;
	if (strcmp(cfg_str(section, "signer", "ca_backend"), "pkcs11") == 0) {
		mode = "pkcs11";
		if (token_ca(ca, section, chain, &n) != 0)
			goto out;
	} else if (strcmp(mode, "subordinate") == 0) {
		if (subordinate(ca, section, pass, chain, &n) != 0)
			goto out;
	} else {
		X509 *root = NULL;

		if (self_signed(ca, section, key_dir, ledger, pass, &root) != 0)
			goto out;
		chain[0] = X509_dup(ca->cert);
		chain[1] = root;
		n = 2;
	}
	for (int i = 0; i < n; i++)
		if (!(ca->up[ca->nup++] = X509_dup(chain[i])))
			goto out;
	ca->chain_pem = join_pem(chain, n, &ca->chain_len);
	if (!ca->chain_pem) {
		log_error("cannot encode the CA chain");
		goto out;
	}
	{
		size_t len;
		char *issuing = pki_cert_pem(ca->cert, &len);
		int rc = issuing ? ca_publish(cert_dir, "ca-issuing.crt", issuing, len) : -1;

		free(issuing);
		if (rc != 0 || ca_publish(cert_dir, "ca-chain.crt", ca->chain_pem, ca->chain_len) != 0)
			goto out;
	}
	if (self_issued(chain[n - 1])) {
		size_t len;
		char *root = pki_cert_pem(chain[n - 1], &len);
		int rc = root ? ca_publish(cert_dir, "ca-root.crt", root, len) : -1;

		free(root);
		if (rc != 0)
			goto out;
	} else {
		log_warn("signer.ca_cert_file ends below its root (the last certificate is not self-issued): "
			 "clients need the root from elsewhere");
	}
	pki_fingerprint(ca->cert, fp, sizeof fp);
	log_event(LOG_INFO, NULL, NULL, "issuing CA (%s) %s/ca-issuing.crt sha256=%s", mode, cert_dir, fp);
	ok = 1;
out:
	ca_passphrase_free(pass);
	for (int i = 0; i < n; i++)
		X509_free(chain[i]);
	if (!ok) {
		ca_free(ca);
		return NULL;
	}
	return ca;
}

/* ---- intermediates made through the API ---- */

int ca_check_names(const struct ca *ca, const uint8_t *der, size_t len, char *why, size_t whylen)
{
	X509 *leaf = NULL;
	int rc = 0;

	/* NAME_CONSTRAINTS_check reads the names BoringSSL caches for a parsed
	 * certificate: the signed DER, parsed again */
	for (int i = 0; i < ca->nup && rc == 0; i++) {
		NAME_CONSTRAINTS *nc = X509_get_ext_d2i(ca->up[i], NID_name_constraints, NULL, NULL);
		const uint8_t *p = der;
		int r;

		if (!nc)
			continue;
		if (!leaf && (!(leaf = d2i_X509(NULL, &p, (long)len)) || !X509_get_extension_flags(leaf))) {
			/* X509_get_extension_flags fills the cache NAME_CONSTRAINTS_check reads */
			NAME_CONSTRAINTS_free(nc);
			snprintf(why, whylen, "cannot read the certificate back");
			rc = -1;
			break;
		}
		r = NAME_CONSTRAINTS_check(leaf, nc);
		NAME_CONSTRAINTS_free(nc);
		if (r != X509_V_OK) {
			char cn[128] = "";

			X509_NAME_get_text_by_NID(X509_get_subject_name(ca->up[i]), NID_commonName, cn, sizeof cn);
			snprintf(why, whylen, "a name is outside the name constraints of %s", cn);
			rc = -1;
		}
	}
	X509_free(leaf);
	ERR_clear_error();
	return rc;
}

/* Whether dns (a permitted name of a new CA) lies within the permitted
 * DNS subtrees of every CA above it that has some. */
static int within_parents(const struct ca *parent, const char *dns)
{
	size_t dl = strlen(dns);

	for (int i = 0; i < parent->nup; i++) {
		NAME_CONSTRAINTS *nc = X509_get_ext_d2i(parent->up[i], NID_name_constraints, NULL, NULL);
		int has = 0, inside = 0;

		for (size_t k = 0; nc && k < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees); k++) {
			GENERAL_NAME *g = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, k)->base;
			const char *b;
			size_t bl;

			if (g->type != GEN_DNS)
				continue;
			has = 1;
			b = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
			bl = (size_t)ASN1_STRING_length(g->d.dNSName);
			if (*b == '.')
				b++, bl--;
			if ((dl == bl && strncasecmp(dns, b, bl) == 0) ||
			    (dl > bl && dns[dl - bl - 1] == '.' && strncasecmp(dns + dl - bl, b, bl) == 0))
				inside = 1;
		}
		NAME_CONSTRAINTS_free(nc);
		if (has && !inside)
			return 0;
	}
	return 1;
}

/* key_dir/intermediates/<id>.chain: the intermediate, then the
 * certificates above it; <id>.key its key. */
static struct ca *load_intermediate(const char *dir, const char *id)
{
	char kp[1200], cp[1200];
	struct ca *ca = calloc(1, sizeof *ca);
	X509 *chain[CHAIN_MAX] = {0};
	int n;

	snprintf(kp, sizeof kp, "%s/%s.key", dir, id);
	snprintf(cp, sizeof cp, "%s/%s.chain", dir, id);
	if (!ca || (n = load_chain(cp, chain)) <= 0) {
		free(ca);
		return NULL;
	}
	for (int i = 0; i < n; i++)
		ca->up[ca->nup++] = chain[i];
	snprintf(ca->id, sizeof ca->id, "%s", id);
	if (!(ca->cert = X509_dup(chain[0])) || !(ca->key = pki_key_load(kp, NULL, "intermediate CA key")) ||
	    X509_check_private_key(ca->cert, ca->key) != 1 || !(ca->chain_pem = join_pem(chain, n, &ca->chain_len))) {
		ERR_clear_error();
		ca_free_one(ca);
		return NULL;
	}
	return ca;
}

struct ca *ca_intermediate(struct ca *issuing, const char *key_dir, const char *id, char *why, size_t whylen)
{
	char dir[1100];
	struct ca *ca;

	if (!id || !*id)
		return issuing;
	if (!valid_resource_id(id, 64)) {
		pki_refuse(why, whylen, "intermediate_id: not a valid id");
		return NULL;
	}
	for (size_t i = 0; i < nloaded; i++)
		if (strcmp(loaded[i]->id, id) == 0)
			return loaded[i];
	if (nloaded == INTERMEDIATES_MAX) {
		pki_refuse(why, whylen, "too many intermediate CAs in use");
		return NULL;
	}
	snprintf(dir, sizeof dir, "%s/intermediates", key_dir);
	if (!(ca = load_intermediate(dir, id))) {
		snprintf(why, whylen, "no intermediate CA %s in the signer", id);
		return NULL;
	}
	loaded[nloaded++] = ca;
	return ca;
}

/* "permitted;DNS:a.example,excluded;DNS:b.a.example": each name checked,
 * the permitted ones against the parent's; the extension's value into out */
static int constraints_conf(const struct ca *parent, const char *in, char *out, size_t outlen, char *why,
			    size_t whylen)
{
	char buf[4097], *save = NULL, *item;
	size_t o = 0;

	snprintf(buf, sizeof buf, "%s", in);
	snprintf(out, outlen, "critical");
	o = strlen(out);
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		int permitted = strncmp(item, "permitted;DNS:", 14) == 0;
		const char *name = item + (permitted ? 14 : 13);

		if (!permitted && strncmp(item, "excluded;DNS:", 13) != 0)
			return pki_refuse(why, whylen, "name_constraints: each is permitted or excluded, of a DNS name");
		if (!valid_dns_name(*name == '.' ? name + 1 : name, false))
			return pki_refuse(why, whylen, "name_constraints: not a DNS name");
		if (permitted && !within_parents(parent, *name == '.' ? name + 1 : name)) {
			snprintf(why, whylen, "name_constraints: %s is outside what the CAs above it permit", name);
			return -1;
		}
		if (o + strlen(item) + 2 >= outlen)
			return pki_refuse(why, whylen, "name_constraints: too many");
		o += (size_t)snprintf(out + o, outlen - o, ",%s", item);
	}
	return o > strlen("critical") ? 1 : 0;
}

int ca_make_intermediate(struct ca *issuing, struct ledger *ledger, const char *key_dir,
			 const struct intermediate_request *rq, struct intermediate_result *out, char *why,
			 size_t whylen)
{
	struct ca *parent;
	char dir[1100], kp[1200], cp[1200], conf[4200], bc[64], serial[sizeof out->serial];
	long plen, child = rq->path_len;
	X509 *cert = NULL, *chain[CHAIN_MAX];
	X509_NAME *name = NULL;
	EVP_PKEY *key = NULL;
	uint8_t *der = NULL;
	int alg = pki_alg_parse(rq->algorithm), has_nc, len, n, rc = -1;

	memset(out, 0, sizeof *out);
	if (!valid_resource_id(rq->id, 64))
		return pki_refuse(why, whylen, "id: not a valid id");
	if (alg < 0)
		return pki_refuse(why, whylen, "algorithm: one of ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, "
					      "rsa-4096, ed25519");
	if (!*rq->common_name || strlen(rq->common_name) > 64)
		return pki_refuse(why, whylen, "subject.common_name: 1 to 64 characters");
	/* under the root (self_signed) or the configured issuing CA (subordinate) */
	if (!*rq->parent_id)
		parent = issuing->root ? issuing->root : issuing;
	else if (!(parent = ca_intermediate(issuing, key_dir, rq->parent_id, why, whylen)))
		return -1;
	if (parent->nup + 1 > CHAIN_MAX)
		return pki_refuse(why, whylen, "the chain would be too long");
	/* RFC 5280 4.2.1.9: below a CA with pathlen p, at most p - 1 */
	plen = X509_get_pathlen(parent->cert);
	if (plen == 0)
		return pki_refuse(why, whylen, "path_len_constraint: the parent CA's path length (0) allows no CA below it");
	if (plen > 0 && child > plen - 1) {
		snprintf(why, whylen, "path_len_constraint: at most %ld below this parent", plen - 1);
		return -1;
	}
	if (plen > 0 && child < 0)
		child = plen - 1;
	if ((has_nc = constraints_conf(parent, rq->name_constraints, conf, sizeof conf, why, whylen)) < 0)
		return -1;
	snprintf(dir, sizeof dir, "%s/intermediates", key_dir);
	/* mkdirat: the seccomp filter allows it, not mkdir */
	if (mkdirat(AT_FDCWD, dir, 0700) != 0 && errno != EEXIST)
		return pki_refuse(why, whylen, "cannot create the intermediates directory");
	snprintf(kp, sizeof kp, "%s/%s.key", dir, rq->id);
	snprintf(cp, sizeof cp, "%s/%s.chain", dir, rq->id);
	if (exists(kp) || exists(cp))
		return pki_refuse(why, whylen, "id: an intermediate CA with this id exists");
	if (child >= 0)
		snprintf(bc, sizeof bc, "critical,CA:TRUE,pathlen:%ld", child);
	else
		snprintf(bc, sizeof bc, "critical,CA:TRUE");
	key = pki_key_generate((enum pki_alg)alg);
	cert = X509_new();
	name = X509_NAME_new();
	if (!key || !cert || !name || !X509_set_version(cert, X509_VERSION_3) || pki_set_random_serial(cert) != 0 ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)rq->common_name, -1, -1, 0) ||
	    (*rq->organization &&
	     !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)rq->organization, -1, -1, 0)) ||
	    !X509_set_subject_name(cert, name) || !X509_set_issuer_name(cert, X509_get_subject_name(parent->cert)) ||
	    !X509_gmtime_adj(X509_getm_notBefore(cert), -300) ||
	    !X509_gmtime_adj(X509_getm_notAfter(cert), (long)rq->validity_seconds) || !X509_set_pubkey(cert, key))
		goto crypto;
	if (pki_asn1_unix(X509_get0_notAfter(cert)) > pki_asn1_unix(X509_get0_notAfter(parent->cert)) &&
	    !X509_set1_notAfter(cert, X509_get0_notAfter(parent->cert)))
		goto crypto;
	if (!pki_add_ext(cert, parent->cert, NID_basic_constraints, bc) ||
	    !pki_add_ext(cert, parent->cert, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature") ||
	    !pki_add_ext(cert, parent->cert, NID_subject_key_identifier, "hash") ||
	    !pki_add_ext(cert, parent->cert, NID_authority_key_identifier, "keyid:always") ||
	    (has_nc && !pki_add_ext(cert, parent->cert, NID_name_constraints, conf)) ||
	    !X509_sign(cert, parent->key, pki_sign_digest(parent->key)) || (len = i2d_X509(cert, &der)) <= 0)
		goto crypto;
	pki_serial_hex(cert, serial, sizeof serial);
	/* the key, then the ledger line, then the certificate: never a
	 * certificate without both */
	if (pki_key_save(key, kp, NULL) != 0) {
		pki_refuse(why, whylen, "cannot save the intermediate CA key (see the signer's log)");
		goto out;
	}
	if (ledger_append(ledger, "certificate", *parent->id ? parent->id : parent == issuing ? "issuing" : "root",
			  serial, der, (size_t)len, why, whylen) != 0) {
		unlink(kp);
		rc = -2;
		goto out;
	}
	chain[0] = cert;
	for (n = 0; n < parent->nup; n++)
		chain[n + 1] = parent->up[n];
	out->chain_pem = join_pem(chain, parent->nup + 1, &out->chain_len);
	if (!out->chain_pem || pki_write_file(cp, out->chain_pem, out->chain_len, 0600) != 0) {
		pki_refuse(why, whylen, "cannot write the intermediate CA certificate");
		goto out;
	}
	snprintf(out->serial, sizeof out->serial, "%s", serial);
	out->not_before = pki_asn1_unix(X509_get0_notBefore(cert));
	out->not_after = pki_asn1_unix(X509_get0_notAfter(cert));
	out->path_len = child;
	log_info("made intermediate CA %s (%s) below %s", rq->id, rq->common_name,
		 *parent->id ? parent->id : parent == issuing ? "the issuing CA" : "the root");
	rc = 0;
	goto out;
crypto:
	pki_log_error("cannot make an intermediate CA certificate");
	pki_refuse(why, whylen, "cannot make the intermediate CA certificate (see the signer's log)");
out:
	if (rc != 0) {
		free(out->chain_pem);
		out->chain_pem = NULL;
	}
	OPENSSL_free(der);
	X509_NAME_free(name);
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}
