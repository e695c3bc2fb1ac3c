#include "tlskey.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bytestring.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pki.h"

/* regenerate a self-made certificate this long before it expires */
#define RENEW_BEFORE_S (30L * 86400)

struct tls_key {
	EVP_PKEY *pkey;
	char *chain_pem;
	size_t chain_len;
	uint64_t signatures;
};

/* A new P-256 key, saved in path (0600). */
static EVP_PKEY *generate_key(const char *path)
{
	EVP_PKEY *k = pki_key_generate(PKI_ECDSA_P256);

	if (k && pki_key_save(k, path, NULL) != 0) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	if (k)
		log_info("generated a new P-256 key for the api's TLS certificate in %s", path);
	return k;
}

/* "localhost,127.0.0.1,::1" -> "DNS:localhost,IP:127.0.0.1,IP:::1" */
static int san_value(const char *names, char *out, size_t outlen)
{
	char buf[4096];
	char *save = NULL, *tok;
	size_t o = 0;

	if (strlen(names) >= sizeof buf)
		return -1;
	strcpy(buf, names);
	out[0] = '\0';
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned char addr[16];
		int n;

		while (*tok == ' ')
			tok++;
		if (!*tok)
			continue;
		for (const char *p = tok; *p; p++)
			if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == ':' || *p == '*'))
				return -1;
		n = snprintf(out + o, outlen - o, "%s%s:%s", o ? "," : "",
			     inet_pton(AF_INET, tok, addr) == 1 || inet_pton(AF_INET6, tok, addr) == 1 ?
			     "IP" : "DNS", tok);
		if (n < 0 || (size_t)n >= outlen - o)
			return -1;
		o += (size_t)n;
	}
	return o ? 0 : -1;
}

static X509 *make_certificate(EVP_PKEY *key, const char *names, uint64_t validity_ms)
{
	X509 *cert = X509_new();
	X509_NAME *name = X509_NAME_new();
	char san[8192];
	int ok = 0;

	if (san_value(names, san, sizeof san) != 0) {
		log_error("signer.api_cert_names: expected DNS names and IP addresses separated by commas");
		goto out;
	}
	if (!cert || !name || !X509_set_version(cert, X509_VERSION_3) || pki_set_random_serial(cert) != 0 ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)"certward api", -1, -1, 0) ||
	    !X509_set_subject_name(cert, name) || !X509_set_issuer_name(cert, name) ||
	    !X509_gmtime_adj(X509_getm_notBefore(cert), -300) ||
	    !X509_gmtime_adj(X509_getm_notAfter(cert), (long)(validity_ms / 1000)) ||
	    !X509_set_pubkey(cert, key))
		goto out;
	if (!pki_add_ext(cert, cert, NID_basic_constraints, "critical,CA:FALSE") ||
	    !pki_add_ext(cert, cert, NID_key_usage, "critical,digitalSignature") ||
	    !pki_add_ext(cert, cert, NID_ext_key_usage, "serverAuth") ||
	    !pki_add_ext(cert, cert, NID_subject_key_identifier, "hash") ||
	    !pki_add_ext(cert, cert, NID_subject_alt_name, san) || !X509_sign(cert, key, EVP_sha256()))
		goto out;
	ok = 1;
out:
	if (!ok && cert)
		pki_log_error("cannot make the api certificate");
	X509_NAME_free(name);
	if (!ok) {
		X509_free(cert);
		return NULL;
	}
	return cert;
}

/* A certificate we made earlier is reused while it matches the key, was made
 * for the same names (recorded next to it), and is not close to expiry. */
static int cert_still_good(X509 *cert, EVP_PKEY *key, const char *names, const char *names_file)
{
	size_t len;
	char *made_for = pki_read_file(names_file, &len);
	time_t soon = time(NULL) + RENEW_BEFORE_S;
	int good = made_for && strcmp(made_for, names) == 0 && X509_check_private_key(cert, key) == 1 &&
		   X509_cmp_time(X509_get0_notAfter(cert), &soon) > 0;

	free(made_for);
	return good;
}

struct tls_key *tls_key_open(const struct cfg *section, const char *key_dir, const char *cert_dir)
{
	const char *key_file = cfg_str(section, "signer", "api_key_file");
	const char *cert_file = cfg_str(section, "signer", "api_cert_file");
	const char *names = cfg_str(section, "signer", "api_cert_names");
	char path[1200], cpath[1200], npath[1200], published[1200], fp[200];
	struct tls_key *k = calloc(1, sizeof *k);
	X509 *cert = NULL;

	if (!k)
		return NULL;
	if (*key_file) {
		/* an operator's key and chain: use both as they are */
		k->pkey = pki_key_load(key_file, NULL, "signer.api_key_file");
		if (!k->pkey || !*cert_file ||
		    !(k->chain_pem = pki_read_file(cert_file, &k->chain_len)) ||
		    !(cert = pki_cert_parse(k->chain_pem, k->chain_len)) ||
		    X509_check_private_key(cert, k->pkey) != 1) {
			log_error("signer.api_key_file / api_cert_file: need a readable PEM key and a "
				  "PEM certificate chain whose first certificate matches the key");
			goto fail;
		}
	} else {
		snprintf(path, sizeof path, "%s/api-tls.key", key_dir);
		snprintf(cpath, sizeof cpath, "%s/api-tls.crt", key_dir);
		snprintf(npath, sizeof npath, "%s/api-tls.names", key_dir);
		k->pkey = access(path, F_OK) == 0 ? pki_key_load(path, NULL, "the api TLS key") : generate_key(path);
		if (!k->pkey)
			goto fail;
		k->chain_pem = pki_read_file(cpath, &k->chain_len);
		cert = k->chain_pem ? pki_cert_parse(k->chain_pem, k->chain_len) : NULL;
		if (!cert || !cert_still_good(cert, k->pkey, names, npath)) {
			X509_free(cert);
			free(k->chain_pem);
			cert = make_certificate(k->pkey, names,
						cfg_duration_ms(section, "signer", "api_cert_validity"));
			k->chain_pem = cert ? pki_cert_pem(cert, &k->chain_len) : NULL;
			if (!k->chain_pem || pki_write_file(cpath, k->chain_pem, k->chain_len, 0644) != 0 ||
			    pki_write_file(npath, names, strlen(names), 0644) != 0) {
				log_error("cannot write %s: %s", cpath, strerror(errno));
				goto fail;
			}
			log_info("made a self-signed api certificate for %s", names);
		}
	}
	/* clients pin what they find here */
	snprintf(published, sizeof published, "%s/api.crt", cert_dir);
	if (pki_write_file(published, k->chain_pem, k->chain_len, 0644) != 0) {
		log_error("cannot publish the api certificate as %s: %s", published, strerror(errno));
		goto fail;
	}
	pki_fingerprint(cert, fp, sizeof fp);
	log_event(LOG_INFO, NULL, NULL, "api certificate %s sha256=%s", published, fp);
	X509_free(cert);
	return k;
fail:
	X509_free(cert);
	tls_key_free(k);
	return NULL;
}

void tls_key_free(struct tls_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k->chain_pem);
	free(k);
}

const char *tls_key_chain_pem(const struct tls_key *k, size_t *len)
{
	*len = k->chain_len;
	return k->chain_pem;
}

uint64_t tls_key_signatures(const struct tls_key *k)
{
	return k->signatures;
}

long tls_key_sign(struct tls_key *k, uint16_t alg, const uint8_t *in, size_t inlen,
		  uint8_t *out, size_t outmax)
{
	const EVP_MD *md;
	int type = EVP_PKEY_id(k->pkey), pss = 0;
	EVP_MD_CTX ctx;
	EVP_PKEY_CTX *pctx = NULL;
	size_t siglen = outmax;
	long rc = -1;

	/* only the schemes the key can make: a request for anything else is refused */
	switch (alg) {
	case 0x0403: md = EVP_sha256(); if (type != EVP_PKEY_EC) return -1; break;
	case 0x0503: md = EVP_sha384(); if (type != EVP_PKEY_EC) return -1; break;
	case 0x0603: md = EVP_sha512(); if (type != EVP_PKEY_EC) return -1; break;
	case 0x0401: md = EVP_sha256(); if (type != EVP_PKEY_RSA) return -1; break;
	case 0x0501: md = EVP_sha384(); if (type != EVP_PKEY_RSA) return -1; break;
	case 0x0601: md = EVP_sha512(); if (type != EVP_PKEY_RSA) return -1; break;
	case 0x0804: md = EVP_sha256(); pss = 1; if (type != EVP_PKEY_RSA) return -1; break;
	case 0x0805: md = EVP_sha384(); pss = 1; if (type != EVP_PKEY_RSA) return -1; break;
	case 0x0806: md = EVP_sha512(); pss = 1; if (type != EVP_PKEY_RSA) return -1; break;
	case 0x0807: md = NULL; if (type != EVP_PKEY_ED25519) return -1; break;
	default: return -1;
	}
	EVP_MD_CTX_init(&ctx);
	if (!EVP_DigestSignInit(&ctx, &pctx, md, NULL, k->pkey))
		goto out;
	if (pss && (!EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) ||
		    !EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, -1)))
		goto out;
	if (!EVP_DigestSign(&ctx, out, &siglen, in, inlen))
		goto out;
	k->signatures++;
	rc = (long)siglen;
out:
	if (rc < 0)
		ERR_clear_error();
	EVP_MD_CTX_cleanup(&ctx);
	return rc;
}
