#include "ca.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pki.h"

#define CHAIN_MAX 8

struct ca {
	EVP_PKEY *key;
	X509 *cert;
	char *chain_pem;
	size_t chain_len;
};

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

void ca_free(struct ca *ca)
{
	if (!ca)
		return;
	EVP_PKEY_free(ca->key);
	X509_free(ca->cert);
	free(ca->chain_pem);
	free(ca);
}

/* The first line of the passphrase file, or NULL for none; *bad when it
 * was configured but cannot be had. Wiped and freed with wipe_free. */
static char *read_passphrase(const struct cfg *section, int *bad)
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

static void wipe_free(char *p)
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
 * when issuer is NULL), valid for seconds from now, never past not_after
 * (when given); pathlen 0 for an issuing CA. */
static X509 *make_ca_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, long seconds,
			  int pathlen0)
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
			       pathlen0 ? "critical,CA:TRUE,pathlen:0" : "critical,CA:TRUE") &&
	     pki_add_ext(cert, issuer ? issuer : cert, NID_key_usage,
			 pathlen0 ? "critical,keyCertSign,cRLSign,digitalSignature" : "critical,keyCertSign,cRLSign") &&
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

/* key_dir/ca/<what>.key: loaded, or made of alg and saved (0600). */
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
	/* the root: its certificate is remade only with a new key (a crash
	 * between the two leaves the key alone) */
	if (!exists(rc) || !exists(ic)) {
		root_key = load_or_make_key(rk, alg, pass, "root CA key", &made);
		if (!root_key)
			goto out;
		if (!made && exists(rc)) {
			root = load_cert(rc);
		} else {
			snprintf(cn, sizeof cn, "%s Root CA", name);
			root = make_ca_cert(cn, root_key, NULL, root_key, root_s, 0);
			if (!root || record_and_write(ledger, "root", root, rc) != 0)
				goto out;
			log_info("made the root CA certificate %s", rc);
		}
	} else {
		root = load_cert(rc);
	}
	if (!root) {
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
		ca->cert = make_ca_cert(cn, ca->key, root, root_key, issuing_s, 1);
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

static int subordinate(struct ca *ca, const struct cfg *section, const char *pass, X509 **chain, int *nchain)
{
	const char *cert_file = cfg_str(section, "signer", "ca_cert_file");
	const char *key_file = cfg_str(section, "signer", "ca_key_file");
	X509 *c;

	if (!*cert_file || !*key_file) {
		log_error("signer.ca_mode subordinate needs signer.ca_cert_file and signer.ca_key_file");
		return -1;
	}
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
	ca->key = pki_key_load(key_file, pass, "signer.ca_key_file");
	if (!ca->key)
		return -1;
	if (X509_check_private_key(c, ca->key) != 1) {
		ERR_clear_error();
		log_error("signer.ca_key_file %s does not match the CA certificate in %s", key_file, cert_file);
		return -1;
	}
	for (int i = 0; i + 1 < *nchain; i++) {
		if (!signed_by(chain[i], chain[i + 1])) {
			log_error("signer.ca_cert_file %s: certificate %d is not signed by the one after it; "
				  "list the chain from the issuing CA up", cert_file, i + 1);
			return -1;
		}
	}
	ca->cert = X509_dup(c);
	return ca->cert ? 0 : -1;
}

static int publish(const char *cert_dir, const char *file, const char *pem, size_t len)
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
	char *pass = read_passphrase(section, &bad);
	const char *mode = cfg_str(section, "signer", "ca_mode");
	char fp[200];

	if (!ca || bad)
		goto out;
	if (strcmp(mode, "subordinate") == 0) {
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
	ca->chain_pem = join_pem(chain, n, &ca->chain_len);
	if (!ca->chain_pem) {
		log_error("cannot encode the CA chain");
		goto out;
	}
	{
		size_t len;
		char *issuing = pki_cert_pem(ca->cert, &len);
		int rc = issuing ? publish(cert_dir, "ca-issuing.crt", issuing, len) : -1;

		free(issuing);
		if (rc != 0 || publish(cert_dir, "ca-chain.crt", ca->chain_pem, ca->chain_len) != 0)
			goto out;
	}
	if (self_issued(chain[n - 1])) {
		size_t len;
		char *root = pki_cert_pem(chain[n - 1], &len);
		int rc = root ? publish(cert_dir, "ca-root.crt", root, len) : -1;

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
	wipe_free(pass);
	for (int i = 0; i < n; i++)
		X509_free(chain[i]);
	if (!ok) {
		ca_free(ca);
		return NULL;
	}
	return ca;
}
