#include "pki.h"
#include "x509sig.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/cipher.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

void pki_log_error(const char *what)
{
	char buf[256];
	unsigned long e = ERR_get_error();

	ERR_error_string_n(e, buf, sizeof buf);
	log_error("%s: %s", what, e ? buf : "unknown error");
	ERR_clear_error();
}

char *pki_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	char *buf;
	ssize_t n;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > PKI_FILE_MAX) {
		log_error("%s: not a regular file of at most %d bytes", path, PKI_FILE_MAX);
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return NULL;
	}
	n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

int pki_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[1200];
	int fd, e;

	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -1;
	if (write(fd, data, len) != (ssize_t)len || fchmod(fd, mode) != 0 || fsync(fd) != 0) {
		e = errno;
		close(fd);
		unlink(tmp);
		errno = e;
		return -1;
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		e = errno;
		unlink(tmp);
		errno = e;
		return -1;
	}
	return 0;
}

static const char *const alg_names[] = {
	[PKI_ECDSA_P256] = "ecdsa-p256", [PKI_ECDSA_P384] = "ecdsa-p384", [PKI_RSA_2048] = "rsa-2048",
	[PKI_RSA_3072] = "rsa-3072",     [PKI_RSA_4096] = "rsa-4096",     [PKI_ED25519] = "ed25519",
};

int pki_alg_parse(const char *name)
{
	for (size_t i = 0; i < sizeof alg_names / sizeof alg_names[0]; i++)
		if (strcmp(alg_names[i], name) == 0)
			return (int)i;
	return -1;
}

const char *pki_alg_name(enum pki_alg alg)
{
	return alg_names[alg];
}

EVP_PKEY *pki_key_generate(enum pki_alg alg)
{
	EVP_PKEY *k = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EC_KEY *ec = NULL;
	RSA *rsa = NULL;
	BIGNUM *e = NULL;
	int bits = alg == PKI_RSA_2048 ? 2048 : alg == PKI_RSA_3072 ? 3072 : 4096;

	switch (alg) {
	case PKI_ECDSA_P256:
	case PKI_ECDSA_P384:
		ec = EC_KEY_new_by_curve_name(alg == PKI_ECDSA_P256 ? NID_X9_62_prime256v1 : NID_secp384r1);
		k = EVP_PKEY_new();
		if (!ec || !k || !EC_KEY_generate_key(ec) || !EVP_PKEY_assign_EC_KEY(k, ec))
			goto fail;
		return k; /* ec is k's now */
	case PKI_RSA_2048:
	case PKI_RSA_3072:
	case PKI_RSA_4096:
		rsa = RSA_new();
		e = BN_new();
		k = EVP_PKEY_new();
		if (!rsa || !e || !k || !BN_set_word(e, RSA_F4) || !RSA_generate_key_ex(rsa, bits, e, NULL) ||
		    !EVP_PKEY_assign_RSA(k, rsa))
			goto fail;
		BN_free(e);
		return k; /* rsa is k's now */
	case PKI_ED25519:
		ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
		if (!ctx || !EVP_PKEY_keygen_init(ctx) || !EVP_PKEY_keygen(ctx, &k))
			goto fail;
		EVP_PKEY_CTX_free(ctx);
		return k;
	}
fail:
	/* every failure is before the key took ec or rsa over */
	pki_log_error("cannot generate a key");
	EC_KEY_free(ec);
	RSA_free(rsa);
	EVP_PKEY_free(k);
	EVP_PKEY_CTX_free(ctx);
	BN_free(e);
	return NULL;
}

int pki_key_save(EVP_PKEY *key, const char *path, const char *passphrase)
{
	BIO *bio = BIO_new(BIO_s_mem());
	const uint8_t *pem;
	size_t len = 0;
	int rc = -1;

	if (bio &&
	    PEM_write_bio_PKCS8PrivateKey(bio, key, passphrase ? EVP_aes_256_cbc() : NULL,
					  (char *)passphrase, passphrase ? (int)strlen(passphrase) : 0,
					  NULL, NULL) &&
	    BIO_mem_contents(bio, &pem, &len)) {
		rc = pki_write_file(path, pem, len, 0600);
		if (rc != 0)
			log_error("cannot write %s: %s", path, strerror(errno));
		OPENSSL_cleanse((void *)pem, len);
	} else {
		pki_log_error("cannot encode a private key");
	}
	BIO_free(bio);
	return rc;
}

EVP_PKEY *pki_key_load(const char *path, const char *passphrase, const char *what)
{
	size_t len;
	char *pem = pki_read_file(path, &len);
	BIO *bio;
	EVP_PKEY *k = NULL;

	if (!pem) {
		log_error("cannot read %s (%s): %s", what, path, strerror(errno));
		return NULL;
	}
	bio = BIO_new_mem_buf(pem, (ssize_t)len);
	if (bio)
		k = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)passphrase);
	BIO_free(bio);
	OPENSSL_cleanse(pem, len);
	free(pem);
	if (!k) {
		char why[200];

		snprintf(why, sizeof why, "cannot load %s from %s (%s)", what, path,
			 passphrase ? "wrong passphrase, or not a PEM private key" : "not an unencrypted PEM private key");
		pki_log_error(why);
	}
	return k;
}

const EVP_MD *pki_sign_digest(const EVP_PKEY *key)
{
	return x509sig_digest(key);
}

char *pki_cert_pem(X509 *cert, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	const uint8_t *p;
	char *out = NULL;

	if (bio && PEM_write_bio_X509(bio, cert) && BIO_mem_contents(bio, &p, len)) {
		out = malloc(*len + 1);
		if (out) {
			memcpy(out, p, *len);
			out[*len] = '\0';
		}
	}
	BIO_free(bio);
	return out;
}

X509 *pki_cert_parse(const char *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (ssize_t)len);
	X509 *c = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	if (!c)
		ERR_clear_error();
	return c;
}

void pki_fingerprint(X509 *cert, char *out, size_t outlen)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	size_t o = 0;

	out[0] = '\0';
	if (!X509_digest(cert, EVP_sha256(), md, &n))
		return;
	for (unsigned i = 0; i < n && o + 4 < outlen; i++)
		o += (size_t)snprintf(out + o, outlen - o, "%s%02X", i ? ":" : "", md[i]);
}

void pki_serial_hex(X509 *cert, char *out, size_t outlen)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;

	snprintf(out, outlen, "%s", hex ? hex : "");
	for (char *c = out; *c; c++)
		*c = (char)(*c >= 'A' && *c <= 'F' ? *c - 'A' + 'a' : *c);
	OPENSSL_free(hex);
	BN_free(bn);
}

int pki_set_random_serial(X509 *cert)
{
	uint8_t serial[16];
	BIGNUM *bn;
	ASN1_INTEGER *sn = NULL;
	int ok;

	/* 128 random bits, read as an unsigned number: positive (DER adds a
	 * zero byte when the top bit is set) */
	RAND_bytes(serial, sizeof serial);
	bn = BN_bin2bn(serial, sizeof serial, NULL);
	sn = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	ok = sn && X509_set_serialNumber(cert, sn);
	BN_free(bn);
	ASN1_INTEGER_free(sn);
	return ok ? 0 : -1;
}

int pki_add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
	ok = ext && X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

int64_t pki_asn1_unix(const ASN1_TIME *t)
{
	int days, secs;
	ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
	int64_t v = 0;

	if (epoch && ASN1_TIME_diff(&days, &secs, epoch, t))
		v = (int64_t)days * 86400 + secs;
	ASN1_TIME_free(epoch);
	return v;
}

int pki_refuse(char *why, size_t whylen, const char *msg)
{
	snprintf(why, whylen, "%s", msg);
	ERR_clear_error();
	return -1;
}
