/* The agent identity CA (workers/signer/agent_ca.c) in a directory of its
 * own: made once and loaded after, and the identities it signs: only the
 * CSR's key is used, the extensions are those of a client certificate and
 * nothing more, each rule is refused by name, and the CSR bound holds at
 * exactly AGENT_CSR_MAX bytes. */
#include <criterion/criterion.h>
#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "agent_ca.h"
#include "config.h"
#include "log.h"
#include "pki.h"
#include "util.h"

static char dir[64], key_dir[96], cert_dir[96];
static struct cfg *section;
static struct ledger *ledger;
static struct agent_ca *ca;

static struct agent_ca *open_ca(void)
{
	return agent_ca_open(section, key_dir, cert_dir, ledger);
}

static void setup(void)
{
	struct cfg_error err;
	char path[128], why[200];

	log_set_level(LOG_WARN);
	snprintf(dir, sizeof dir, "/tmp/cw-agent-ca-XXXXXX");
	cr_assert(mkdtemp(dir));
	snprintf(key_dir, sizeof key_dir, "%s/keys", dir);
	snprintf(cert_dir, sizeof cert_dir, "%s/certs", dir);
	cr_assert(mkdir(key_dir, 0700) == 0 && mkdir(cert_dir, 0755) == 0);
	cr_assert(cfg_section_parse("signer", "", 0, &section, &err) == 0);
	snprintf(path, sizeof path, "%s/ledger", key_dir);
	ledger = ledger_open(path, why, sizeof why);
	cr_assert(ledger, "%s", why);
	ca = open_ca();
	cr_assert(ca);
}

static void teardown(void)
{
	char cmd[128];

	agent_ca_free(ca);
	ledger_close(ledger);
	cfg_free(section);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

TestSuite(agent_ca, .init = setup, .fini = teardown);

static X509 *ca_cert(void)
{
	size_t len;
	const char *pem = agent_ca_pem(ca, &len);

	return pki_cert_parse(pem, len);
}

/* A CSR for key asking for more than it gets (CN=evil, O=x, a SAN, serverAuth),
 * with an extension of pad bytes; DER, OPENSSL_free. */
static uint8_t *make_csr(EVP_PKEY *key, size_t pad, size_t *len)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *san = X509V3_EXT_nconf_nid(NULL, NULL, NID_subject_alt_name, "DNS:evil.example.com");
	X509_EXTENSION *eku = X509V3_EXT_nconf_nid(NULL, NULL, NID_ext_key_usage, "serverAuth");
	uint8_t *der = NULL;
	int n;

	cr_assert(req && name && exts && san && eku);
	cr_assert(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"evil", -1, -1, 0));
	cr_assert(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"x", -1, -1, 0));
	cr_assert(X509_REQ_set_version(req, 0) && X509_REQ_set_subject_name(req, name) && X509_REQ_set_pubkey(req, key));
	cr_assert(sk_X509_EXTENSION_push(exts, san) && sk_X509_EXTENSION_push(exts, eku));
	if (pad) {
		ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.4.1.55555.1", 1);
		ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
		uint8_t *fill = calloc(1, pad);
		X509_EXTENSION *e;

		cr_assert(oid && v && fill && ASN1_OCTET_STRING_set(v, fill, (int)pad));
		e = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, v);
		cr_assert(e && sk_X509_EXTENSION_push(exts, e));
		ASN1_OBJECT_free(oid);
		ASN1_OCTET_STRING_free(v);
		free(fill);
	}
	cr_assert(X509_REQ_add_extensions(req, exts));
	cr_assert(X509_REQ_sign(req, key, pki_sign_digest(key)));
	n = i2d_X509_REQ(req, &der);
	cr_assert(n > 0);
	*len = (size_t)n;
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return der;
}

static EVP_PKEY *ec_key(int nid)
{
	EC_KEY *ec = EC_KEY_new_by_curve_name(nid);
	EVP_PKEY *k = EVP_PKEY_new();

	cr_assert(ec && k && EC_KEY_generate_key(ec) && EVP_PKEY_assign_EC_KEY(k, ec));
	return k;
}

/* agent_ca_sign on the CSR of key; its return, the certificate in *out */
static int sign(EVP_PKEY *key, const char *id, uint64_t validity, struct agent_id_result *out, char *why,
		size_t whylen)
{
	size_t len;
	uint8_t *csr = make_csr(key, 0, &len);
	int rc = agent_ca_sign(ca, ledger, csr, len, id, validity, 86400, out, why, whylen);

	OPENSSL_free(csr);
	return rc;
}

static X509 *parse(const struct agent_id_result *r)
{
	const uint8_t *p = r->der;
	X509 *x = d2i_X509(NULL, &p, (long)r->der_len);

	cr_assert(x && p == r->der + r->der_len);
	return x;
}

Test(agent_ca, made_once_then_loaded)
{
	char path[160];
	struct stat st;
	size_t a_len, b_len;
	char *first;

	cr_assert_eq(ledger_entries(ledger), 1, "the CA's own certificate has its ledger line");
	snprintf(path, sizeof path, "%s/agent-ca/ca.key", key_dir);
	cr_assert(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	snprintf(path, sizeof path, "%s/agent-ca.crt", cert_dir);
	cr_assert(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644);
	first = strdup(agent_ca_pem(ca, &a_len));
	agent_ca_free(ca);
	ca = open_ca();
	cr_assert(ca && first);
	cr_assert(memcmp(first, agent_ca_pem(ca, &b_len), a_len) == 0 && a_len == b_len, "a restart made a new agent CA");
	cr_assert_eq(ledger_entries(ledger), 1);
	free(first);
	{
		X509 *c = ca_cert();
		char cn[128];

		cr_assert(c);
		X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, cn, sizeof cn);
		cr_assert_str_eq(cn, "certward Agent Identity CA");
		cr_assert(X509_NAME_cmp(X509_get_subject_name(c), X509_get_issuer_name(c)) == 0);
		cr_assert(X509_check_ca(c) && X509_get_pathlen(c) == 0);
		cr_assert_eq(X509_get_key_usage(c), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
		X509_free(c);
	}
}

Test(agent_ca, identity_holds_the_key_and_nothing_else)
{
	EVP_PKEY *key = ec_key(NID_X9_62_prime256v1), *pub;
	struct agent_id_result r;
	char why[300], serial[64], hex[65];
	uint8_t md[SHA256_DIGEST_LENGTH];
	X509 *x, *c = ca_cert();
	X509_NAME *subject;
	int64_t now = (int64_t)time(NULL);
	int crit = -1;
	BASIC_CONSTRAINTS *bc;

	cr_assert_eq(sign(key, "agent-01.host_a", 0, &r, why, sizeof why), 0, "%s", why);
	x = parse(&r);
	subject = X509_get_subject_name(x);
	cr_assert_eq(X509_NAME_entry_count(subject), 1);
	{
		char cn[200];

		X509_NAME_get_text_by_NID(subject, NID_commonName, cn, sizeof cn);
		cr_assert_str_eq(cn, "agent-01.host_a");
	}
	cr_assert(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(c)) == 0);
	pub = X509_get_pubkey(c);
	cr_assert(X509_verify(x, pub) == 1);
	EVP_PKEY_free(pub);
	pub = X509_get_pubkey(x);
	cr_assert(EVP_PKEY_cmp(pub, key) == 1, "not the CSR's key");
	EVP_PKEY_free(pub);
	cr_assert_eq(X509_get_version(x), X509_VERSION_3);
	cr_assert_eq(X509_get_ext_by_NID(x, NID_subject_alt_name, -1), -1, "a SAN was copied");
	cr_assert_eq(X509_get_ext_count(x), 5);
	cr_assert_eq(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
	cr_assert_eq(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	cr_assert(X509_EXTENSION_get_critical(X509_get_ext(x, X509_get_ext_by_NID(x, NID_key_usage, -1))));
	bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	cr_assert(bc && !bc->ca && crit == 1);
	BASIC_CONSTRAINTS_free(bc);
	cr_assert(X509_get0_subject_key_id(x) && X509_get0_authority_key_id(x));
	pki_serial_hex(x, serial, sizeof serial);
	cr_assert_str_eq(serial, r.serial);
	cr_assert(strlen(serial) >= 24);
	SHA256(r.der, r.der_len, md);
	hex_encode(md, sizeof md, hex);
	cr_assert_str_eq(r.sha256, hex);
	cr_assert(r.not_before >= now - 61 && r.not_before <= now - 59);
	cr_assert_eq(r.not_after - r.not_before, 86400 + 60);
	cr_assert_eq(ledger_staged(ledger), 1, "its ledger line is staged");
	{
		char lwhy[200];

		cr_assert_eq(ledger_commit(ledger, lwhy, sizeof lwhy), 0, "%s", lwhy);
	}
	OPENSSL_free(r.der);
	X509_free(x);
	X509_free(c);
	EVP_PKEY_free(key);
}

Test(agent_ca, key_kinds)
{
	struct {
		EVP_PKEY *key;
		const char *refusal; /* NULL: signed */
	} cases[] = {
		{ec_key(NID_secp384r1), NULL},
		{pki_key_generate(PKI_ED25519), NULL},
		{pki_key_generate(PKI_RSA_2048), NULL},
		{ec_key(NID_secp521r1), "key: ECDSA on curve secp521r1 is not allowed"},
		{ec_key(NID_secp224r1), "key: ECDSA on curve secp224r1 is not allowed"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct agent_id_result r;
		char why[300] = "";
		int rc = sign(cases[i].key, "agent-1", 3600, &r, why, sizeof why);

		if (!cases[i].refusal) {
			X509 *x;

			cr_assert_eq(rc, 0, "case %zu: %s", i, why);
			x = parse(&r);
			cr_assert_eq(X509_get_key_usage(x),
				     EVP_PKEY_id(cases[i].key) == EVP_PKEY_RSA ? KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT
									      : KU_DIGITAL_SIGNATURE);
			X509_free(x);
			OPENSSL_free(r.der);
		} else {
			cr_assert_eq(rc, -1, "case %zu signed", i);
			cr_assert(strstr(why, cases[i].refusal), "case %zu: %s", i, why);
			cr_assert_null(r.der);
		}
		EVP_PKEY_free(cases[i].key);
	}
}

Test(agent_ca, weak_rsa_refused)
{
	RSA *rsa = RSA_new();
	BIGNUM *e = BN_new();
	EVP_PKEY *k = EVP_PKEY_new();
	struct agent_id_result r;
	char why[300];

	cr_assert(rsa && e && k && BN_set_word(e, RSA_F4) && RSA_generate_key_ex(rsa, 1024, e, NULL) &&
		  EVP_PKEY_assign_RSA(k, rsa));
	cr_assert_eq(sign(k, "agent-1", 0, &r, why, sizeof why), -1);
	cr_assert_str_eq(why, "key: RSA 1024 is not allowed (ECDSA P-256 or P-384, RSA of 2048 to 8192 bits, or Ed25519)");
	BN_free(e);
	EVP_PKEY_free(k);
}

Test(agent_ca, agent_ids)
{
	EVP_PKEY *key = ec_key(NID_X9_62_prime256v1);
	char longest[130], over[131];
	const char *refused[] = {"", "-agent", ".agent", "_agent", "agents/1", "agent 1", "agent\xc3\xa9", over};
	struct agent_id_result r;
	char why[300];

	memset(longest, 'a', 128);
	longest[128] = '\0';
	memset(over, 'a', 129);
	over[129] = '\0';
	cr_assert_eq(sign(key, longest, 0, &r, why, sizeof why), 0, "%s", why);
	{
		X509 *x = parse(&r);
		char cn[200];

		X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
		cr_assert_str_eq(cn, longest, "the id is cut short");
		X509_free(x);
	}
	OPENSSL_free(r.der);
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		cr_assert_eq(sign(key, refused[i], 0, &r, why, sizeof why), -1, "%s signed", refused[i]);
		cr_assert(strncmp(why, "agent_id: 1 to 128 characters", 29) == 0, "%s: %s", refused[i], why);
	}
	EVP_PKEY_free(key);
}

Test(agent_ca, csr_rules)
{
	EVP_PKEY *key = ec_key(NID_X9_62_prime256v1);
	size_t len;
	uint8_t *csr = make_csr(key, 0, &len), *more = malloc(len + 1);
	struct agent_id_result r;
	char why[300];

	cr_assert(more);
	memcpy(more, csr, len);
	more[len] = 0;
	cr_assert_eq(agent_ca_sign(ca, ledger, more, len + 1, "a", 0, 3600, &r, why, sizeof why), -1);
	cr_assert_str_eq(why, "csr: not one DER certificate signing request");
	cr_assert_eq(agent_ca_sign(ca, ledger, csr, len - 1, "a", 0, 3600, &r, why, sizeof why), -1);
	cr_assert_str_eq(why, "csr: not one DER certificate signing request");
	cr_assert_eq(agent_ca_sign(ca, ledger, csr, 0, "a", 0, 3600, &r, why, sizeof why), -1);
	cr_assert_str_eq(why, "csr: empty");
	csr[len - 3] ^= 0x40; /* inside the signature */
	cr_assert_eq(agent_ca_sign(ca, ledger, csr, len, "a", 0, 3600, &r, why, sizeof why), -1);
	cr_assert_str_eq(why, "csr: its signature does not verify with its own key");
	cr_assert_eq(ledger_staged(ledger), 0, "a refused request staged a line");
	free(more);
	OPENSSL_free(csr);
	EVP_PKEY_free(key);
}

/* An Ed25519 CSR (a signature of fixed length) padded to exactly n bytes */
static uint8_t *csr_of_size(EVP_PKEY *key, size_t n)
{
	size_t pad = 1, len;
	uint8_t *csr = NULL;

	for (int tries = 0; tries < 8; tries++) {
		OPENSSL_free(csr);
		csr = make_csr(key, pad, &len);
		if (len == n)
			return csr;
		pad += n - len; /* the lengths' own encoding stays at 2 bytes here */
	}
	cr_assert_fail("cannot make a CSR of %zu bytes (last %zu)", n, len);
	return NULL;
}

Test(agent_ca, csr_bound)
{
	EVP_PKEY *key = pki_key_generate(PKI_ED25519);
	uint8_t *at = csr_of_size(key, AGENT_CSR_MAX), *over = csr_of_size(key, AGENT_CSR_MAX + 1);
	struct agent_id_result r;
	char why[300];

	cr_assert_eq(agent_ca_sign(ca, ledger, at, AGENT_CSR_MAX, "a", 0, 3600, &r, why, sizeof why), 0, "%s", why);
	OPENSSL_free(r.der);
	cr_assert_eq(agent_ca_sign(ca, ledger, over, AGENT_CSR_MAX + 1, "a", 0, 3600, &r, why, sizeof why), -1);
	cr_assert_str_eq(why, "csr: 8193 bytes is over the bound of 8192 bytes (DER)");
	OPENSSL_free(at);
	OPENSSL_free(over);
	EVP_PKEY_free(key);
}

Test(agent_ca, validity_within_the_ca)
{
	EVP_PKEY *key = ec_key(NID_X9_62_prime256v1);
	struct agent_id_result r;
	char why[300];
	X509 *c = ca_cert();

	cr_assert_eq(sign(key, "a", UINT64_MAX, &r, why, sizeof why), 0, "%s", why);
	cr_assert_eq(r.not_after, pki_asn1_unix(X509_get0_notAfter(c)));
	OPENSSL_free(r.der);
	cr_assert_eq(sign(key, "a", 7200, &r, why, sizeof why), 0, "%s", why);
	cr_assert_eq(r.not_after - r.not_before, 7260);
	OPENSSL_free(r.der);
	X509_free(c);
	EVP_PKEY_free(key);
}
