/* lib/p11client and certward-p11 against a real SoftHSM2 token made in a temporary directory:
 * keys made on the token, signatures of every mechanism checked with
 * BoringSSL, a wrong PIN, a token that goes away and comes back. */
#include <criterion/criterion.h>
#include <openssl/bytestring.h>
#include <openssl/digest.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p11client.h"

static char dir[256], pin_path[300], tokens[300], conf_env[400];
static char *helper_env[2];
static const char *module;

static const char *find_module(void)
{
	static const char *const paths[] = {"/usr/lib/softhsm/libsofthsm2.so",
					    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
					    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"};

	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
		if (access(paths[i], R_OK) == 0)
			return paths[i];
	return NULL;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	cr_assert(f, "cannot write %s", path);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static void setup(void)
{
	char conf[300], text[700], cmd[900];

	module = find_module();
	cr_assert(module, "SoftHSM2 is not installed (contrib/install-deps.sh installs softhsm2)");
	snprintf(dir, sizeof dir, "/tmp/cw-p11-XXXXXX");
	cr_assert(mkdtemp(dir));
	snprintf(tokens, sizeof tokens, "%s/tokens", dir);
	cr_assert(mkdir(tokens, 0700) == 0);
	snprintf(conf, sizeof conf, "%s/softhsm2.conf", dir);
	snprintf(text, sizeof text, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", tokens);
	write_file(conf, text, 0600);
	setenv("SOFTHSM2_CONF", conf, 1);
	/* what the helper gets: its environment is made from this list alone */
	snprintf(conf_env, sizeof conf_env, "SOFTHSM2_CONF=%s", conf);
	helper_env[0] = conf_env;
	helper_env[1] = NULL;
	snprintf(cmd, sizeof cmd,
		 "softhsm2-util --init-token --free --label cw-test --so-pin 87654321 --pin 12345678 >/dev/null");
	cr_assert(system(cmd) == 0, "softhsm2-util --init-token failed");
	snprintf(pin_path, sizeof pin_path, "%s/pin", dir);
	write_file(pin_path, "12345678\n", 0600);
}

static void teardown(void)
{
	char cmd[1000];

	snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.away'", dir, tokens);
	(void)!system(cmd);
}

TestSuite(p11, .init = setup, .fini = teardown);

static const char *helper(void)
{
	const char *h = getenv("CERTWARD_P11_HELPER");

	cr_assert(h, "CERTWARD_P11_HELPER (the certward-p11 executable) is not set");
	return h;
}

static struct p11c *open_token(const struct p11_config *c, char *why, size_t whylen)
{
	return p11c_open(c, helper(), helper_env, why, whylen);
}

static struct p11_config conf(const char *label)
{
	return (struct p11_config){
		.module = module,
		.token_label = "cw-test",
		.slot = -1,
		.key_label = label,
		.key_id = "",
		.pin_file = pin_path,
		.pin_env = "",
		.sessions = 2,
	};
}

/* a key of alg made on the token; the token connected to it */
static struct p11c *made(const char *alg, const char *label)
{
	struct p11_config c = conf(label);
	char why[300];
	struct p11c *t = open_token(&c, why, sizeof why);

	cr_assert(t, "%s", why);
	cr_assert_eq(p11c_connect(t, P11_RW | P11_NO_KEY, NULL, why, sizeof why), 0, "%s", why);
	cr_assert_eq(p11c_generate(t, alg, why, sizeof why), 0, "%s", why);
	return t;
}

/* a self-signed certificate signed through the wrapped key, verified with
 * the public key read from the token */
static void check_x509(struct p11c *t, EVP_PKEY *pub, const EVP_MD *md)
{
	EVP_PKEY *key = p11c_wrap(t, pub);
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	cr_assert(key && x && n);
	cr_assert_eq(p11c_key_token(key), t);
	cr_assert(X509_set_version(x, X509_VERSION_3) &&
		  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"token CA", -1, -1, 0) &&
		  X509_set_subject_name(x, n) && X509_set_issuer_name(x, n) &&
		  X509_gmtime_adj(X509_getm_notBefore(x), 0) && X509_gmtime_adj(X509_getm_notAfter(x), 3600) &&
		  X509_set_pubkey(x, pub));
	cr_assert(X509_sign(x, key, md), "X509_sign through the token failed");
	cr_assert_eq(X509_verify(x, pub), 1, "the token's certificate signature does not verify");
	cr_assert_eq(X509_check_private_key(x, key), 1);
	X509_NAME_free(n);
	X509_free(x);
	EVP_PKEY_free(key);
}

Test(p11, ecdsa_p256_and_p384)
{
	static const struct {
		const char *alg;
		int nid;
	} algs[] = {{"ecdsa-p256", NID_X9_62_prime256v1}, {"ecdsa-p384", NID_secp384r1}};

	for (size_t i = 0; i < 2; i++) {
		char label[32], why[300];
		struct p11c *t;
		EVP_PKEY *pub;
		uint8_t digest[48], sig[200];
		size_t siglen = sizeof sig;

		snprintf(label, sizeof label, "ec-%zu", i);
		t = made(algs[i].alg, label);
		pub = p11c_public_key(t, why, sizeof why);
		cr_assert(pub, "%s", why);
		cr_assert_eq(EVP_PKEY_id(pub), EVP_PKEY_EC);
		cr_assert_eq(EC_GROUP_get_curve_name(EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(pub))), algs[i].nid);
		/* raw r||s from the token comes back as DER */
		RAND_bytes(digest, sizeof digest);
		cr_assert_eq(p11c_sign(t, P11_ECDSA, 0, digest, 32, sig, &siglen, why, sizeof why), 0, "%s", why);
		cr_assert_eq(sig[0], 0x30, "not a DER SEQUENCE");
		cr_assert_eq(ECDSA_verify(0, digest, 32, sig, siglen, EVP_PKEY_get0_EC_KEY(pub)), 1);
		check_x509(t, pub, i ? EVP_sha384() : EVP_sha256());
		EVP_PKEY_free(pub);
		p11c_close(t);
	}
}

Test(p11, rsa_pkcs1_and_pss)
{
	struct p11c *t = made("rsa-2048", "rsa");
	char why[300];
	EVP_PKEY *pub = p11c_public_key(t, why, sizeof why), *key;
	uint8_t digest[32], sig[512];
	size_t siglen = sizeof sig;
	EVP_MD_CTX ctx;
	EVP_PKEY_CTX *pctx;
	static const uint8_t msg[] = "a to-be-signed structure";

	cr_assert(pub, "%s", why);
	cr_assert_eq(EVP_PKEY_id(pub), EVP_PKEY_RSA);
	cr_assert_eq(EVP_PKEY_bits(pub), 2048);
	check_x509(t, pub, EVP_sha256());

	/* CKM_RSA_PKCS_PSS on a digest, verified as RSASSA-PSS with salt = hash length */
	SHA256(msg, sizeof msg, digest);
	cr_assert_eq(p11c_sign(t, P11_RSA_PSS, 256, digest, sizeof digest, sig, &siglen, why, sizeof why), 0,
		     "%s", why);
	cr_assert_eq(siglen, 256);
	cr_assert_eq(RSA_verify_pss_mgf1(EVP_PKEY_get0_RSA(pub), digest, sizeof digest, EVP_sha256(), NULL, -1, sig,
					 siglen),
		     1, "the token's PSS signature does not verify");
	/* a digest of the wrong length is refused before the token sees it */
	siglen = sizeof sig;
	cr_assert_neq(p11c_sign(t, P11_RSA_PSS, 384, digest, sizeof digest, sig, &siglen, why, sizeof why), 0);

	/* EVP with PSS padding through the wrapped key */
	key = p11c_wrap(t, pub);
	cr_assert(key);
	EVP_MD_CTX_init(&ctx);
	siglen = sizeof sig;
	cr_assert(EVP_DigestSignInit(&ctx, &pctx, EVP_sha256(), NULL, key) &&
		  EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) &&
		  EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, -1) && EVP_DigestSign(&ctx, sig, &siglen, msg, sizeof msg));
	EVP_MD_CTX_cleanup(&ctx);
	cr_assert_eq(RSA_verify_pss_mgf1(EVP_PKEY_get0_RSA(pub), digest, sizeof digest, EVP_sha256(), NULL, -1, sig,
					 siglen),
		     1);
	EVP_PKEY_free(key);
	EVP_PKEY_free(pub);
	p11c_close(t);
}

Test(p11, connect_checks_the_certificate_key)
{
	struct p11c *t = made("ecdsa-p256", "ca");
	struct p11_config c = conf("ca");
	char why[300];
	EVP_PKEY *pub = p11c_public_key(t, why, sizeof why), *other;
	EVP_PKEY_CTX *g = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
	struct p11c *t2;

	cr_assert(pub);
	p11c_close(t);
	t2 = open_token(&c, why, sizeof why);
	cr_assert(t2, "%s", why);
	cr_assert_eq(p11c_connect(t2, 0, pub, why, sizeof why), 0, "%s", why);
	cr_assert_eq(p11c_ready(t2, why, sizeof why), 1);
	/* another key than the certificate's: refused, and not ready */
	other = NULL;
	cr_assert(g && EVP_PKEY_keygen_init(g) && EVP_PKEY_CTX_set_ec_paramgen_curve_nid(g, NID_X9_62_prime256v1) &&
		  EVP_PKEY_keygen(g, &other));
	cr_assert_neq(p11c_connect(t2, 0, other, why, sizeof why), 0);
	cr_assert(strstr(why, "does not match the CA certificate"), "%s", why);
	cr_assert_eq(p11c_ready(t2, why, sizeof why), 0);
	cr_assert(strstr(why, "does not match"), "%s", why);
	/* a second key under the same label is never made */
	cr_assert_eq(p11c_connect(t2, P11_RW | P11_NO_KEY, NULL, why, sizeof why), 0, "%s", why);
	cr_assert_neq(p11c_generate(t2, "ecdsa-p256", why, sizeof why), 0);
	cr_assert(strstr(why, "already holds"), "%s", why);
	EVP_PKEY_CTX_free(g);
	EVP_PKEY_free(other);
	EVP_PKEY_free(pub);
	p11c_close(t2);
}

Test(p11, wrong_pin_is_not_tried_again_until_the_file_changes)
{
	struct p11c *t = made("ecdsa-p256", "ca");
	struct p11_config c = conf("ca");
	char why[300];

	p11c_close(t);
	write_file(pin_path, "00000000\n", 0600);
	t = open_token(&c, why, sizeof why);
	cr_assert(t, "%s", why);
	cr_assert_neq(p11c_connect(t, 0, NULL, why, sizeof why), 0);
	cr_assert(strstr(why, "CKR_PIN_INCORRECT"), "%s", why);
	cr_assert_null(strstr(why, "00000000"), "the PIN is in the message: %s", why);
	cr_assert_eq(p11c_ready(t, why, sizeof why), 0);
	cr_assert(strstr(why, "CKR_PIN_INCORRECT"), "%s", why);
	cr_assert_eq(p11c_retry_due(t), 0, "a refused PIN would be tried again");
	sleep(1);
	write_file(pin_path, "12345678\n", 0600);
	cr_assert_eq(p11c_retry_due(t), 1, "a new PIN file is not tried");
	cr_assert_eq(p11c_connect(t, 0, NULL, why, sizeof why), 0, "%s", why);
	p11c_close(t);
}

Test(p11, pin_from_the_environment_is_wiped)
{
	struct p11c *t = made("ecdsa-p256", "ca");
	struct p11_config c = conf("ca");
	char why[300];

	p11c_close(t);
	c.pin_file = "";
	c.pin_env = "CW_TEST_PIN";
	setenv("CW_TEST_PIN", "12345678", 1);
	t = open_token(&c, why, sizeof why);
	cr_assert(t, "%s", why);
	cr_assert_null(getenv("CW_TEST_PIN"), "the PIN is still in the environment");
	cr_assert_eq(p11c_connect(t, 0, NULL, why, sizeof why), 0, "%s", why);
	/* and again, as after a token reset */
	cr_assert_eq(p11c_connect(t, 0, NULL, why, sizeof why), 0, "%s", why);
	p11c_close(t);
}

Test(p11, token_gone_and_back)
{
	struct p11c *t = made("ecdsa-p256", "ca");
	char why[300], away[320];
	uint8_t digest[32] = {1}, sig[200];
	size_t siglen = sizeof sig;
	EVP_PKEY *pub = p11c_public_key(t, why, sizeof why);

	cr_assert(pub, "%s", why);
	cr_assert_eq(p11c_connect(t, 0, pub, why, sizeof why), 0, "%s", why);
	cr_assert_eq(p11c_sign(t, P11_ECDSA, 0, digest, 32, sig, &siglen, why, sizeof why), 0, "%s", why);
	snprintf(away, sizeof away, "%s.away", tokens);
	cr_assert_eq(rename(tokens, away), 0);
	mkdir(tokens, 0700);
	siglen = sizeof sig;
	cr_assert_neq(p11c_sign(t, P11_ECDSA, 0, digest, 32, sig, &siglen, why, sizeof why), 0,
		      "signed with the token gone");
	cr_assert_eq(p11c_ready(t, why, sizeof why), 0, "ready with the token gone");
	cr_assert_neq(p11c_connect(t, 0, pub, why, sizeof why), 0, "connected with the token gone");
	cr_assert_eq(p11c_retry_due(t), 1);
	rmdir(tokens);
	cr_assert_eq(rename(away, tokens), 0);
	cr_assert_eq(p11c_connect(t, 0, pub, why, sizeof why), 0, "did not come back: %s", why);
	siglen = sizeof sig;
	cr_assert_eq(p11c_sign(t, P11_ECDSA, 0, digest, 32, sig, &siglen, why, sizeof why), 0, "%s", why);
	cr_assert_eq(ECDSA_verify(0, digest, 32, sig, siglen, EVP_PKEY_get0_EC_KEY(pub)), 1);
	EVP_PKEY_free(pub);
	p11c_close(t);
}

Test(p11, bad_configuration)
{
	struct p11_config c = conf("ca");
	char why[300];

	c.module = "libsofthsm2.so";
	cr_assert_null(open_token(&c, why, sizeof why));
	cr_assert(strstr(why, "absolute path"), "%s", why);
	c = conf("ca");
	c.module = "/nonexistent/module.so";
	cr_assert_null(open_token(&c, why, sizeof why));
	c = conf("ca");
	c.module = "/etc/hostname";
	cr_assert_null(open_token(&c, why, sizeof why));
	cr_assert(strstr(why, "cannot load"), "%s", why);
	c = conf("ca");
	c.token_label = "";
	cr_assert_null(open_token(&c, why, sizeof why));
	c = conf("");
	cr_assert_null(open_token(&c, why, sizeof why));
	c = conf("ca");
	c.pin_env = "X";
	cr_assert_null(open_token(&c, why, sizeof why));
	c = conf("ca");
	c.sessions = 0;
	cr_assert_null(open_token(&c, why, sizeof why));
	c = conf("ca");
	c.key_id = "zz";
	cr_assert_null(open_token(&c, why, sizeof why));
	c = conf("ca");
	c.token_label = "no such token";
	{
		struct p11c *t = open_token(&c, why, sizeof why);

		cr_assert(t, "%s", why);
		cr_assert_neq(p11c_connect(t, 0, NULL, why, sizeof why), 0);
		cr_assert(strstr(why, "no token labelled"), "%s", why);
		p11c_close(t);
	}
	/* a PIN file others can read is refused */
	chmod(pin_path, 0644);
	c = conf("ca");
	{
		struct p11c *t = open_token(&c, why, sizeof why);

		cr_assert(t, "%s", why);
		cr_assert_neq(p11c_connect(t, 0, NULL, why, sizeof why), 0);
		cr_assert(strstr(why, "readable by others"), "%s", why);
		p11c_close(t);
	}
}
