/* lib/acme: known answers from the RFCs (RFC 7638 3.1's thumbprint, RFC
 * 7515 A.3's ES256 signing input and signature, checked with the key),
 * responses written as pebble and Let's Encrypt send them, and hostile ones.
 *
 * The certificates below were made with the openssl CLI: Test Root X1 (its
 * subject key identifier set to RFC 9773's example, 69:88:5B:...:C8:D4), a
 * leaf it issued with serial 0x87654321 (DER content 00 87 65 43 21, the
 * example's), Test Root X2 (no authority key identifier), and Test Root X1
 * cross-signed by X2 (an alternate chain whose top issuer is X2). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/hmac.h>
#include <openssl/nid.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme.h"

#define LEAF \
	"-----BEGIN CERTIFICATE-----\n" \
	"MIIB0DCCAXWgAwIBAgIFAIdlQyEwCgYIKoZIzj0EAwIwLzEWMBQGA1UECgwNQ2Vy\n" \
	"dHdhcmQgVGVzdDEVMBMGA1UEAwwMVGVzdCBSb290IFgxMB4XDTI2MTIwNTExMzQ0\n" \
	"MFoXDTI3MDMwNTExMzQ0MFowGjEYMBYGA1UEAwwPd3d3LmV4YW1wbGUuY29tMFkw\n" \
	"EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEoJpAQyAexAtzUhJ8XvxaklYSZ3+/jymi\n" \
	"sVnb7xTsvjZOu2rOphZgNSK7AdwUoR2kXQhnsSsua4i5nOT6LMHsx6OBkjCBjzAM\n" \
	"BgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcD\n" \
	"ATAaBgNVHREEEzARgg93d3cuZXhhbXBsZS5jb20wHwYDVR0jBBgwFoAUaYhba4dG\n" \
	"QEHhs3uEe6CuLN4ByNQwHQYDVR0OBBYEFN5j1RhkLIjWM4aXr/DXTHU3ATdcMAoG\n" \
	"CCqGSM49BAMCA0kAMEYCIQCnauUXbNjw7wSd8nEV8aaij4TDZcVzkxCICy/GuOC3\n" \
	"gQIhAKp0DzvWiy9xcSlgw1GGB2+xT/6sSkEW3q6nEe1/HH6A\n" \
	"-----END CERTIFICATE-----\n"

#define ROOT_X1 \
	"-----BEGIN CERTIFICATE-----\n" \
	"MIIBjzCCATWgAwIBAgIBATAKBggqhkjOPQQDAjAvMRYwFAYDVQQKDA1DZXJ0d2Fy\n" \
	"ZCBUZXN0MRUwEwYDVQQDDAxUZXN0IFJvb3QgWDEwHhcNMjYxMjA1MTEzNDQwWhcN\n" \
	"MzYxMjAyMTEzNDQwWjAvMRYwFAYDVQQKDA1DZXJ0d2FyZCBUZXN0MRUwEwYDVQQD\n" \
	"DAxUZXN0IFJvb3QgWDEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAS9YfJSCqwq\n" \
	"WDVNDrd/OfH+13SACwRz7bjdBmbBO4Fb0WpmBDRFG+PjsbyggkNQ/oo8mfVpMkuF\n" \
	"oacMWA9Qs08Ho0IwQDAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAd\n" \
	"BgNVHQ4EFgQUaYhba4dGQEHhs3uEe6CuLN4ByNQwCgYIKoZIzj0EAwIDSAAwRQIg\n" \
	"f06gCMXaepWuGZF25N2V77OgBMKwleo1XypKri3Y02ECIQCuQp3LS6Bidgaz5gWc\n" \
	"ScT4OQzXBZu3G6Nx9XHzWcgS2g==\n" \
	"-----END CERTIFICATE-----\n"

#define ROOT_X2 \
	"-----BEGIN CERTIFICATE-----\n" \
	"MIIBkDCCATWgAwIBAgIBAjAKBggqhkjOPQQDAjAvMRYwFAYDVQQKDA1DZXJ0d2Fy\n" \
	"ZCBUZXN0MRUwEwYDVQQDDAxUZXN0IFJvb3QgWDIwHhcNMjYxMjA1MTEzNDQwWhcN\n" \
	"MzYxMjAyMTEzNDQwWjAvMRYwFAYDVQQKDA1DZXJ0d2FyZCBUZXN0MRUwEwYDVQQD\n" \
	"DAxUZXN0IFJvb3QgWDIwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAT5KIIvhmPG\n" \
	"ykBhrgB/Hsjye/SGzc8vO/VkvVEmYec+WLYv+BrnkPj5m7Ij0CTZuA/tHK0fmlSf\n" \
	"oC6FBrNpmEj6o0IwQDAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAd\n" \
	"BgNVHQ4EFgQU7o/GNoD/Y53riJvR4ZpfsbD15t8wCgYIKoZIzj0EAwIDSQAwRgIh\n" \
	"AIEJDgzkHijdxMOKs+rgLY08Vfqm7vgOsHxics9L4wC3AiEApHl3QjKePrsnDxzw\n" \
	"RJdFeAsgCD3C5hcmbM38xL6wrvc=\n" \
	"-----END CERTIFICATE-----\n"

#define CROSS_X1_BY_X2 \
	"-----BEGIN CERTIFICATE-----\n" \
	"MIIBsDCCAVagAwIBAgIBAzAKBggqhkjOPQQDAjAvMRYwFAYDVQQKDA1DZXJ0d2Fy\n" \
	"ZCBUZXN0MRUwEwYDVQQDDAxUZXN0IFJvb3QgWDIwHhcNMjYxMjA1MTEzNDQwWhcN\n" \
	"MzYxMjAyMTEzNDQwWjAvMRYwFAYDVQQKDA1DZXJ0d2FyZCBUZXN0MRUwEwYDVQQD\n" \
	"DAxUZXN0IFJvb3QgWDEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAS9YfJSCqwq\n" \
	"WDVNDrd/OfH+13SACwRz7bjdBmbBO4Fb0WpmBDRFG+PjsbyggkNQ/oo8mfVpMkuF\n" \
	"oacMWA9Qs08Ho2MwYTAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAd\n" \
	"BgNVHQ4EFgQUaYhba4dGQEHhs3uEe6CuLN4ByNQwHwYDVR0jBBgwFoAU7o/GNoD/\n" \
	"Y53riJvR4ZpfsbD15t8wCgYIKoZIzj0EAwIDSAAwRQIhAOL4QAxB/6QLKZQimLAD\n" \
	"FMTwgpQ49L2xNcZLHAXLBnKVAiA7MNhJQUr7AkcFw/wr2COtULopCDYzr+7kpi7V\n" \
	"oZgBDA==\n" \
	"-----END CERTIFICATE-----\n"

static char err[256];

struct refusal {
	const char *body, *err;
};

/* each body of the table refused by parse with an error naming what is
 * wrong, and the object left zeroed (nothing to free) */
#define EXPECT_REFUSED(parse, type, table)                                                                     \
	for (size_t i_ = 0; i_ < sizeof(table) / sizeof(table)[0]; i_++) {                                     \
		type obj_, zero_;                                                                              \
		memset(&zero_, 0, sizeof zero_);                                                               \
		err[0] = '\0';                                                                                 \
		cr_assert_eq(parse((table)[i_].body, strlen((table)[i_].body), &obj_, err, sizeof err), -1, "%zu", \
			     i_);                                                                              \
		cr_assert(strstr(err, (table)[i_].err), "%zu: %s", i_, err);                                   \
		cr_assert(memcmp(&obj_, &zero_, sizeof obj_) == 0, "%zu", i_);                                 \
	}

/* the decoded JSON of a base64url member */
static json_t *b64json(const char *b64)
{
	uint8_t buf[8192];
	size_t n;

	cr_assert_eq(acme_b64url_decode(b64, strlen(b64), buf, sizeof buf, &n), 0);
	return json_loadb((const char *)buf, n, 0, NULL);
}

/* ---- base64url ---- */

Test(acme, b64url_rfc4648_vectors)
{
	static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const out[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
	char buf[16];
	uint8_t back[16];
	size_t n;

	for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
		cr_assert_eq(acme_b64url_len(strlen(in[i])), strlen(out[i]));
		acme_b64url_encode((const uint8_t *)in[i], strlen(in[i]), buf);
		cr_assert_str_eq(buf, out[i]);
		cr_assert_eq(acme_b64url_decode(out[i], strlen(out[i]), back, sizeof back, &n), 0);
		cr_assert_eq(n, strlen(in[i]));
		cr_assert(memcmp(back, in[i], n) == 0);
	}
	/* the two characters that differ from base64 */
	acme_b64url_encode((const uint8_t *)"\xfb\xff", 2, buf);
	cr_assert_str_eq(buf, "-_8");
}

Test(acme, b64url_strict_decoding)
{
	static const char *const bad[] = {
		"Zg==",	 /* padding */
		"Zm9v+A", /* base64's alphabet */
		"Zm9v/A",
		"Z",	  /* 4k+1 characters */
		"Zh",	  /* bits set past the last byte: "Zg" is the one text of "f" */
		"Zm9",	  /* likewise for "fo" ("Zm8") */
		"Zm 9v", /* whitespace */
		"Zm9v\n",
	};
	uint8_t out[16];
	size_t n;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_eq(acme_b64url_decode(bad[i], strlen(bad[i]), out, sizeof out, &n), -1, "%s", bad[i]);
	/* an embedded NUL is not a character of the alphabet */
	cr_assert_eq(acme_b64url_decode("Zm\0v", 4, out, sizeof out, &n), -1);
	/* too small an output buffer */
	cr_assert_eq(acme_b64url_decode("Zm9vYmFy", 8, out, 5, &n), -1);
	cr_assert_eq(acme_b64url_decode("Zm9vYmFy", 8, out, 6, &n), 0);
	cr_assert(acme_nonce_ok("oFvnlFP1wIhRlYS2jTaXbA"));
	cr_assert(!acme_nonce_ok("oFvnlFP1wIhRlYS2jTaXbA=="));
	cr_assert(!acme_nonce_ok(""));
}

/* ---- JWK ---- */

#define RFC7638_N                                                                                              \
	"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3" \
	"oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdA" \
	"ZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-" \
	"kEgU8awapJzKnqDKgw"

/* RFC 7515 A.3's P-256 key (public part) */
#define A3_X "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
#define A3_Y "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
#define A3_JWK "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}"
/* another P-256 key (a key change's new key) */
#define EC2_JWK                                                                                                 \
	"{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"jJ6Flys3zK9jUhnOHf6G49Dyp5hah6CNP84-gY-n9eo\",\"y\":"       \
	"\"nhI6iD5eFXgBTLt_1p3aip-5VbZeMhxeFSpjfEAf7Ww\"}"

Test(acme, thumbprint_rfc7638_example)
{
	/* section 3.1: members in another order, and ones the thumbprint ignores */
	const char *jwk = "{\"kty\": \"RSA\", \"n\": \"" RFC7638_N "\", \"e\": \"AQAB\", \"alg\": \"RS256\","
			  " \"kid\": \"2011-04-29\"}";
	char tp[ACME_THUMBPRINT_LEN + 1];

	cr_assert_eq(acme_jwk_thumbprint(jwk, strlen(jwk), tp, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

Test(acme, thumbprint_ec_and_key_authorization)
{
	/* the canonical text {"crv","kty","x","y"} hashed by Python's hashlib */
	const char *jwk = "{\"y\":\"nhI6iD5eFXgBTLt_1p3aip-5VbZeMhxeFSpjfEAf7Ww\",\"x\":"
			  "\"jJ6Flys3zK9jUhnOHf6G49Dyp5hah6CNP84-gY-n9eo\",\"kty\":\"EC\",\"crv\":\"P-256\"}";
	char tp[ACME_THUMBPRINT_LEN + 1], ka[ACME_KEYAUTH_MAX], txt[ACME_THUMBPRINT_LEN + 1];

	cr_assert_eq(acme_jwk_thumbprint(jwk, strlen(jwk), tp, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(tp, "w9eYdC6_s_tLQ8lH6PUpc0mddazaqtPgeC2IgWDiqY8");

	cr_assert_eq(acme_key_authorization("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA",
					    "nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ", ka), 0);
	cr_assert_str_eq(ka, "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ");
	acme_dns01_txt(ka, txt);
	cr_assert_str_eq(txt, "NGwKoXBgCT8JhEa0bK7AwfSqHyu_ZWeugV07fLGIVq0");

	/* a token a CA could use to walk the file system, or too long */
	cr_assert_eq(acme_key_authorization("../../etc/passwd", tp, ka), -1);
	cr_assert_eq(acme_key_authorization("", tp, ka), -1);
	char longtok[ACME_TOKEN_MAX + 2];
	memset(longtok, 'A', sizeof longtok - 1);
	longtok[sizeof longtok - 1] = '\0';
	cr_assert_eq(acme_key_authorization(longtok, tp, ka), -1);
	cr_assert_eq(acme_key_authorization("abc", "short", ka), -1);
}

Test(acme, thumbprint_refuses_what_is_not_an_account_key)
{
	static const char *const bad[] = {
		"", "[]", "{\"kty\":\"EC\"}",
		/* a private key */
		"{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y
		"\",\"d\":\"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI\"}",
		/* another curve, coordinates of the wrong size, padding */
		"{\"crv\":\"P-521\",\"kty\":\"EC\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}",
		"{\"crv\":\"P-384\",\"kty\":\"EC\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}",
		"{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" A3_X "=\",\"y\":\"" A3_Y "\"}",
		"{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" A3_X "\",\"y\":7}",
		/* duplicate members: which one would be hashed? */
		"{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\",\"x\":\"" A3_Y "\"}",
		/* RSA below 2048 bits, a leading zero */
		"{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFF\"}",
		"{\"kty\":\"RSA\",\"e\":\"AAEAAQ\",\"n\":\"" RFC7638_N "\"}",
		"{\"kty\":\"oct\",\"k\":\"AQAB\"}",
		"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" A3_X "\"}",
	};
	char tp[ACME_THUMBPRINT_LEN + 1];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		cr_assert_eq(acme_jwk_thumbprint(bad[i], strlen(bad[i]), tp, err, sizeof err), -1, "%zu", i);
		cr_assert(strncmp(err, "jwk", 3) == 0, "%s", err);
	}
}

/* ---- JWS ---- */

static const uint8_t a3_sig_expected[] = {
	14,  209, 33,  83,  121, 99,  108, 72,	60,  47,  127, 21,  88,	 7,   212, 2,	163, 178, 40,  3,   58,	249,
	124, 126, 23,  129, 154, 195, 22,  158, 166, 101, 197, 10,  7,	 211, 140, 60,	112, 229, 216, 241, 45,	175,
	8,   74,  84,  128, 166, 101, 144, 197, 242, 147, 80,  154, 143, 63,  127, 138, 131, 163, 84,  213};

/* whether sig (r||s) is key (x, y)'s ES256 signature of msg */
static bool es256_ok(const char *x, const char *y, const char *msg, const uint8_t *sig, size_t sig_len)
{
	uint8_t xb[32], yb[32], md[32];
	size_t n;
	EC_KEY *k = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
	BIGNUM *bx, *by;
	ECDSA_SIG *s = ECDSA_SIG_new();
	bool ok;

	cr_assert_eq(acme_b64url_decode(x, strlen(x), xb, 32, &n), 0);
	cr_assert_eq(acme_b64url_decode(y, strlen(y), yb, 32, &n), 0);
	bx = BN_bin2bn(xb, 32, NULL);
	by = BN_bin2bn(yb, 32, NULL);
	cr_assert_eq(EC_KEY_set_public_key_affine_coordinates(k, bx, by), 1);
	cr_assert_eq(sig_len, 64);
	ECDSA_SIG_set0(s, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
	SHA256((const uint8_t *)msg, strlen(msg), md);
	ok = ECDSA_do_verify(md, sizeof md, s, k) == 1;
	ECDSA_SIG_free(s);
	BN_free(bx);
	BN_free(by);
	EC_KEY_free(k);
	return ok;
}

Test(acme, jws_rfc7515_a3)
{
	static const char payload[] = "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";
	static const char sig_b64[] = "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
	struct acme_jws j;
	uint8_t sig[64];
	size_t n;
	char *body;
	json_t *o;

	cr_assert_eq(acme_jws_from_parts(&j, "ES256", "{\"alg\":\"ES256\"}", (const uint8_t *)payload, strlen(payload),
					 err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(j.signing_input, "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6"
					  "Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ");
	/* the appendix's signature (R and S as listed in A.3.1) is the key's over that input */
	cr_assert_eq(acme_b64url_decode(sig_b64, strlen(sig_b64), sig, sizeof sig, &n), 0);
	cr_assert_eq(n, 64);
	cr_assert(memcmp(sig, a3_sig_expected, 64) == 0);
	cr_assert(es256_ok(A3_X, A3_Y, j.signing_input, sig, n));

	body = acme_jws_finish(&j, sig, n, err, sizeof err);
	cr_assert(body, "%s", err);
	o = json_loads(body, JSON_REJECT_DUPLICATES, NULL);
	cr_assert(o);
	cr_assert_eq(json_object_size(o), 3);
	cr_assert_str_eq(json_string_value(json_object_get(o, "protected")), "eyJhbGciOiJFUzI1NiJ9");
	cr_assert_str_eq(json_string_value(json_object_get(o, "signature")), sig_b64);
	json_decref(o);
	free(body);

	/* r||s of the wrong size, a DER signature of ES256 */
	cr_assert_null(acme_jws_finish(&j, sig, 63, err, sizeof err));
	cr_assert_null(acme_jws_finish(&j, sig, 72, err, sizeof err));
	cr_assert(strstr(err, "ES256"), "%s", err);
	acme_jws_free(&j);

	/* a header that names another alg than the one signing */
	cr_assert_eq(acme_jws_from_parts(&j, "ES384", "{\"alg\":\"ES256\"}", (const uint8_t *)"", 0, err, sizeof err), -1);
	cr_assert_null(j.signing_input);
}

Test(acme, jws_new_account_with_jwk_and_post_as_get_with_kid)
{
	struct acme_jws j;
	json_t *h;
	char *payload = acme_payload_new_account((const char *[]){"admin@example.com"}, 1, true, false, NULL, err,
						 sizeof err);

	cr_assert(payload, "%s", err);
	cr_assert_eq(acme_jws_request(&j, "ES256", A3_JWK, NULL, "oFvnlFP1wIhRlYS2jTaXbA",
				      "https://localhost:14000/sign-me-up", payload, err, sizeof err), 0, "%s", err);
	h = b64json(j.protected_b64);
	cr_assert(h);
	cr_assert_eq(json_object_size(h), 4);
	cr_assert_str_eq(json_string_value(json_object_get(h, "alg")), "ES256");
	cr_assert_str_eq(json_string_value(json_object_get(h, "nonce")), "oFvnlFP1wIhRlYS2jTaXbA");
	cr_assert_str_eq(json_string_value(json_object_get(h, "url")), "https://localhost:14000/sign-me-up");
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(h, "jwk"), "x")), A3_X);
	cr_assert_null(json_object_get(h, "kid"));
	json_decref(h);
	h = b64json(j.payload_b64);
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(h, "contact"), 0)), "mailto:admin@example.com");
	cr_assert(json_is_true(json_object_get(h, "termsOfServiceAgreed")));
	json_decref(h);
	acme_jws_free(&j);
	free(payload);

	/* POST-as-GET: the empty payload, signing input ending in "." */
	cr_assert_eq(acme_jws_request(&j, "ES384", NULL, "https://localhost:14000/my-account/1", "bm9uY2U",
				      "https://localhost:14000/authZ/abc", NULL, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(j.payload_b64, "");
	cr_assert_eq(j.signing_input[strlen(j.signing_input) - 1], '.');
	h = b64json(j.protected_b64);
	cr_assert_str_eq(json_string_value(json_object_get(h, "kid")), "https://localhost:14000/my-account/1");
	cr_assert_null(json_object_get(h, "jwk"));
	json_decref(h);
	uint8_t sig96[96] = {1};
	char *body = acme_jws_finish(&j, sig96, 96, err, sizeof err);
	cr_assert(body);
	cr_assert(strstr(body, "\"payload\":\"\""), "%s", body);
	free(body);
	acme_jws_free(&j);
}

Test(acme, jws_request_refuses_bad_parts)
{
	struct acme_jws j;
	const char *url = "https://localhost:14000/new-order", *kid = "https://localhost:14000/my-account/1";

	/* both jwk and kid, neither */
	cr_assert_eq(acme_jws_request(&j, "ES256", A3_JWK, kid, "bm9uY2U", url, NULL, err, sizeof err), -1);
	cr_assert_eq(acme_jws_request(&j, "ES256", NULL, NULL, "bm9uY2U", url, NULL, err, sizeof err), -1);
	/* a nonce that is not base64url (the CA's Replay-Nonce goes into the header) */
	cr_assert_eq(acme_jws_request(&j, "ES256", NULL, kid, "bm9u\"Y2U", url, NULL, err, sizeof err), -1);
	cr_assert_eq(acme_jws_request(&j, "ES256", NULL, kid, "", url, NULL, err, sizeof err), -1);
	/* plain http, an alg the account keys do not have, a payload that is not an object */
	cr_assert_eq(acme_jws_request(&j, "ES256", NULL, kid, "bm9uY2U", "http://localhost/x", NULL, err, sizeof err), -1);
	cr_assert_eq(acme_jws_request(&j, "HS256", NULL, kid, "bm9uY2U", url, NULL, err, sizeof err), -1);
	cr_assert_eq(acme_jws_request(&j, "none", NULL, kid, "bm9uY2U", url, NULL, err, sizeof err), -1);
	cr_assert_eq(acme_jws_request(&j, "ES256", NULL, kid, "bm9uY2U", url, "[1]", err, sizeof err), -1);
	/* a private JWK would be sent to the CA */
	cr_assert_eq(acme_jws_request(&j, "ES256",
				      "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y
				      "\",\"d\":\"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI\"}",
				      NULL, "bm9uY2U", url, NULL, err, sizeof err), -1);
	cr_assert(strstr(err, "private"), "%s", err);
	cr_assert_null(j.signing_input);
	/* RS256 signatures are the modulus' size: 2048 to 8192 bits */
	cr_assert_eq(acme_jws_request(&j, "RS256", NULL, kid, "bm9uY2U", url, NULL, err, sizeof err), 0);
	uint8_t big[1025] = {0};
	cr_assert_null(acme_jws_finish(&j, big, 255, err, sizeof err));
	cr_assert_null(acme_jws_finish(&j, big, 1025, err, sizeof err));
	char *b = acme_jws_finish(&j, big, 256, err, sizeof err);
	cr_assert(b);
	free(b);
	acme_jws_free(&j);
}

Test(acme, eab_binding_signed_by_hmac)
{
	static const uint8_t hmac_key[32] = "0123456789abcdef0123456789abcdef";
	struct acme_jws j;
	uint8_t mac[32];
	unsigned mac_len;
	char *eab, *payload;
	json_t *h, *p, *e;

	cr_assert_eq(acme_jws_eab(&j, "kid-1", "https://localhost:14000/sign-me-up", A3_JWK, err, sizeof err), 0, "%s",
		     err);
	h = b64json(j.protected_b64);
	cr_assert_eq(json_object_size(h), 3);
	cr_assert_str_eq(json_string_value(json_object_get(h, "alg")), "HS256");
	cr_assert_str_eq(json_string_value(json_object_get(h, "kid")), "kid-1");
	cr_assert_str_eq(json_string_value(json_object_get(h, "url")), "https://localhost:14000/sign-me-up");
	cr_assert_null(json_object_get(h, "nonce"));
	json_decref(h);
	/* the payload is the account key, as the outer JWS carries it */
	p = b64json(j.payload_b64);
	cr_assert_str_eq(json_string_value(json_object_get(p, "x")), A3_X);
	json_decref(p);

	HMAC(EVP_sha256(), hmac_key, sizeof hmac_key, (const uint8_t *)j.signing_input, strlen(j.signing_input), mac,
	     &mac_len);
	cr_assert_null(acme_jws_finish(&j, mac, 64, err, sizeof err));
	eab = acme_jws_finish(&j, mac, mac_len, err, sizeof err);
	cr_assert(eab, "%s", err);
	acme_jws_free(&j);

	payload = acme_payload_new_account((const char *[]){"a@example.com", "b@example.org"}, 2, true, false, eab, err,
					   sizeof err);
	cr_assert(payload, "%s", err);
	p = json_loads(payload, 0, NULL);
	e = json_object_get(p, "externalAccountBinding");
	cr_assert(json_is_object(e));
	cr_assert_eq(json_array_size(json_object_get(p, "contact")), 2);
	cr_assert_null(json_object_get(p, "onlyReturnExisting"));
	json_decref(p);
	free(payload);
	free(eab);

	/* a binding that is not a JWS, a kid with a control character */
	cr_assert_null(acme_payload_new_account(NULL, 0, true, false, "{\"protected\":1}", err, sizeof err));
	cr_assert_eq(acme_jws_eab(&j, "kid\n1", "https://localhost:14000/sign-me-up", A3_JWK, err, sizeof err), -1);
}

Test(acme, key_change_inner_jws)
{
	struct acme_jws j;
	json_t *h, *p;

	cr_assert_eq(acme_jws_key_change(&j, "ES256", EC2_JWK, "https://localhost:14000/rollover-account-key",
					 "https://localhost:14000/my-account/1", A3_JWK, err, sizeof err), 0, "%s", err);
	h = b64json(j.protected_b64);
	cr_assert_eq(json_object_size(h), 3);
	cr_assert_str_eq(json_string_value(json_object_get(h, "alg")), "ES256");
	cr_assert_str_eq(json_string_value(json_object_get(h, "url")), "https://localhost:14000/rollover-account-key");
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(h, "jwk"), "x")),
			 "jJ6Flys3zK9jUhnOHf6G49Dyp5hah6CNP84-gY-n9eo");
	cr_assert_null(json_object_get(h, "nonce"));
	json_decref(h);
	p = b64json(j.payload_b64);
	cr_assert_str_eq(json_string_value(json_object_get(p, "account")), "https://localhost:14000/my-account/1");
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(p, "oldKey"), "x")), A3_X);
	json_decref(p);

	/* the finished inner JWS is the outer request's payload */
	uint8_t sig[64] = {7};
	char *inner = acme_jws_finish(&j, sig, sizeof sig, err, sizeof err);
	struct acme_jws outer;
	cr_assert(inner);
	cr_assert_eq(acme_jws_request(&outer, "ES256", NULL, "https://localhost:14000/my-account/1", "bm9uY2U",
				      "https://localhost:14000/rollover-account-key", inner, err, sizeof err), 0, "%s", err);
	acme_jws_free(&outer);
	free(inner);
	acme_jws_free(&j);
	cr_assert_eq(acme_jws_key_change(&j, "ES256", EC2_JWK, "https://localhost:14000/rollover-account-key",
					 "not a url", A3_JWK, err, sizeof err), -1);
}

/* ---- directory and account ---- */

#define PEBBLE_DIRECTORY                                                                                     \
	"{\n   \"keyChange\": \"https://localhost:14000/rollover-account-key\",\n   \"meta\": {\n"                \
	"      \"externalAccountRequired\": false,\n"                                                          \
	"      \"termsOfService\": \"data:text/plain,Do%20what%20thou%20wilt\"\n   },\n"                         \
	"   \"newAccount\": \"https://localhost:14000/sign-me-up\",\n"                                           \
	"   \"newNonce\": \"https://localhost:14000/nonce-plz\",\n"                                              \
	"   \"newOrder\": \"https://localhost:14000/order-plz\",\n"                                              \
	"   \"revokeCert\": \"https://localhost:14000/revoke-cert\"\n}"

#define LE_DIRECTORY                                                                                         \
	"{\"AIEKnwz0Nrk\":\"https://community.letsencrypt.org/t/adding-random-entries-to-the-directory/33417\","  \
	"\"keyChange\":\"https://acme-v02.api.letsencrypt.org/acme/key-change\",\"meta\":{\"caaIdentities\":"  \
	"[\"letsencrypt.org\"],\"profiles\":{\"classic\":\"https://letsencrypt.org/docs/profiles#classic\","     \
	"\"shortlived\":\"https://letsencrypt.org/docs/profiles#shortlived\",\"tlsserver\":"                   \
	"\"https://letsencrypt.org/docs/profiles#tlsserver\"},\"termsOfService\":"                             \
	"\"https://letsencrypt.org/documents/LE-SA-v1.5-February-24-2025.pdf\",\"website\":"                    \
	"\"https://letsencrypt.org\"},\"newAccount\":\"https://acme-v02.api.letsencrypt.org/acme/new-acct\","   \
	"\"newNonce\":\"https://acme-v02.api.letsencrypt.org/acme/new-nonce\",\"newOrder\":"                   \
	"\"https://acme-v02.api.letsencrypt.org/acme/new-order\",\"renewalInfo\":"                             \
	"\"https://acme-v02.api.letsencrypt.org/acme/renewal-info\",\"revokeCert\":"                            \
	"\"https://acme-v02.api.letsencrypt.org/acme/revoke-cert\"}"

#define DIR_URLS_PEBBLE                                                                                     \
	"\"newNonce\":\"https://localhost:14000/nonce-plz\",\"newAccount\":\"https://localhost:14000/sign-me-up\","  \
	"\"newOrder\":\"https://localhost:14000/order-plz\",\"revokeCert\":\"https://localhost:14000/revoke-cert\","   \
	"\"keyChange\":\"https://localhost:14000/rollover-account-key\""

Test(acme, directory_pebble_and_letsencrypt)
{
	struct acme_directory d;

	cr_assert_eq(acme_parse_directory(PEBBLE_DIRECTORY, strlen(PEBBLE_DIRECTORY), &d, err, sizeof err), 0, "%s",
		     err);
	cr_assert_str_eq(d.new_nonce, "https://localhost:14000/nonce-plz");
	cr_assert_str_eq(d.new_account, "https://localhost:14000/sign-me-up");
	cr_assert_str_eq(d.new_order, "https://localhost:14000/order-plz");
	cr_assert_str_eq(d.revoke_cert, "https://localhost:14000/revoke-cert");
	cr_assert_str_eq(d.key_change, "https://localhost:14000/rollover-account-key");
	cr_assert_null(d.renewal_info);
	cr_assert_str_eq(d.terms_of_service, "data:text/plain,Do%20what%20thou%20wilt");
	cr_assert(!d.external_account_required);
	cr_assert_eq(d.nprofiles, 0);
	acme_directory_free(&d);

	cr_assert_eq(acme_parse_directory(LE_DIRECTORY, strlen(LE_DIRECTORY), &d, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(d.renewal_info, "https://acme-v02.api.letsencrypt.org/acme/renewal-info");
	cr_assert_str_eq(d.website, "https://letsencrypt.org");
	cr_assert_eq(d.nprofiles, 3);
	cr_assert_not_null(acme_directory_profile(&d, "shortlived"));
	cr_assert_str_eq(acme_directory_profile(&d, "classic")->description,
			 "https://letsencrypt.org/docs/profiles#classic");
	cr_assert_null(acme_directory_profile(&d, "nope"));
	acme_directory_free(&d);

	const char *eab = "{\"newNonce\":\"https://ca.test/n\",\"newAccount\":\"https://ca.test/a\",\"newOrder\":"
			  "\"https://ca.test/o\",\"revokeCert\":\"https://ca.test/r\",\"keyChange\":\"https://ca.test/k\","
			  "\"meta\":{\"externalAccountRequired\":true}}";
	cr_assert_eq(acme_parse_directory(eab, strlen(eab), &d, err, sizeof err), 0, "%s", err);
	cr_assert(d.external_account_required);
	acme_directory_free(&d);

	/* a description is text for people: control characters replaced */
	const char *desc = "{" DIR_URLS_PEBBLE ",\"meta\":{\"profiles\":{\"classic\":\"The usual\\r\\nlevel=error\"}}}";
	cr_assert_eq(acme_parse_directory(desc, strlen(desc), &d, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(acme_directory_profile(&d, "classic")->description, "The usual??level=error");
	acme_directory_free(&d);
}

#define DIR_URLS                                                                                              \
	"\"newNonce\":\"https://ca.test/n\",\"newAccount\":\"https://ca.test/a\",\"newOrder\":\"https://ca.test/o\"," \
	"\"revokeCert\":\"https://ca.test/r\""

Test(acme, directory_hostile)
{
	static const struct refusal bad[] = {
		{"", "not JSON"},
		{"[]", "not a JSON object"},
		{"{" DIR_URLS "}", "keyChange missing"},
		{"{" DIR_URLS ",\"keyChange\":\"http://ca.test/k\"}", "keyChange not an https URL"},
		{"{" DIR_URLS ",\"keyChange\":\"https://user:pw@ca.test/k\"}", "keyChange not an https URL"},
		{"{" DIR_URLS ",\"keyChange\":[\"https://ca.test/k\"]}", "keyChange not a string"},
		{"{" DIR_URLS ",\"keyChange\":\"https://ca.test/k\",\"keyChange\":\"https://evil.test/k\"}", "not JSON"},
		{"{" DIR_URLS ",\"keyChange\":\"https://ca.test/k\",\"renewalInfo\":\"javascript:alert(1)\"}",
		 "renewalInfo not an https URL"},
		{"{" DIR_URLS ",\"keyChange\":\"https://ca.test/k\",\"meta\":[]}", "meta not an object"},
		{"{" DIR_URLS ",\"keyChange\":\"https://ca.test/k\",\"meta\":{\"externalAccountRequired\":\"yes\"}}",
		 "externalAccountRequired not a boolean"},
		{"{" DIR_URLS ",\"keyChange\":\"https://ca.test/k\",\"meta\":{\"termsOfService\":\"a b\"}}",
		 "termsOfService not a URI"},
		{"{" DIR_URLS ",\"keyChange\":\"https://ca.test/k\",\"meta\":{\"profiles\":{\"a/b\":\"x\"}}}", "profiles"},
		{"{" DIR_URLS ",\"keyChange\":\"https://ca.test/k\",\"meta\":{\"profiles\":{\"a\":1}}}", "profiles"},
		{"{" DIR_URLS ",\"keyChange\":\"https://ca.test/k\",\"meta\":{\"profiles\":[]}}", "profiles not an object"},
	};
	struct acme_directory d;

	EXPECT_REFUSED(acme_parse_directory, struct acme_directory, bad);
	/* 33 profiles, nesting beyond the bound, a body beyond the bound */
	char *s = malloc(ACME_JSON_MAX + 16), *p = s;
	p += sprintf(p, "{" DIR_URLS ",\"keyChange\":\"https://ca.test/k\",\"meta\":{\"profiles\":{");
	for (int i = 0; i < ACME_PROFILES_MAX + 1; i++)
		p += sprintf(p, "%s\"p%d\":\"d\"", i ? "," : "", i);
	strcpy(p, "}}}");
	cr_assert_eq(acme_parse_directory(s, strlen(s), &d, err, sizeof err), -1);
	cr_assert(strstr(err, "more than 32 profiles"), "%s", err);
	p = s + sprintf(s, "{\"x\":");
	for (int i = 0; i < 100; i++)
		*p++ = '[';
	*p = '\0';
	cr_assert_eq(acme_parse_directory(s, strlen(s), &d, err, sizeof err), -1);
	cr_assert(strstr(err, "nested deeper"), "%s", err);
	memset(s, ' ', ACME_JSON_MAX + 1);
	s[0] = '{';
	s[ACME_JSON_MAX] = '}';
	cr_assert_eq(acme_parse_directory(s, ACME_JSON_MAX + 1, &d, err, sizeof err), -1);
	cr_assert(strstr(err, "larger than"), "%s", err);
	free(s);
}

Test(acme, account)
{
	const char *pebble = "{\n   \"status\": \"valid\",\n   \"contact\": [\n      \"mailto:admin@example.com\"\n   ],\n"
			     "   \"orders\": \"https://localhost:14000/list-orderz/1\",\n   \"key\": {\"kty\": \"EC\"}\n}";
	const char *le = "{\"key\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y
			 "\"},\"contact\":[],\"initialIp\":\"192.0.2.1\",\"createdAt\":\"2025-03-01T10:00:00Z\","
			 "\"status\":\"deactivated\"}";
	struct acme_account a;

	cr_assert_eq(acme_parse_account(pebble, strlen(pebble), &a, err, sizeof err), 0, "%s", err);
	cr_assert_eq(a.status, ACME_STATUS_VALID);
	cr_assert_str_eq(a.orders, "https://localhost:14000/list-orderz/1");
	acme_account_free(&a);
	cr_assert_eq(acme_parse_account(le, strlen(le), &a, err, sizeof err), 0, "%s", err);
	cr_assert_eq(a.status, ACME_STATUS_DEACTIVATED);
	cr_assert_null(a.orders);
	acme_account_free(&a);

	cr_assert_eq(acme_parse_account("{\"status\":\"pending\"}", 20, &a, err, sizeof err), -1);
	cr_assert(strstr(err, "account: status"), "%s", err);
	cr_assert_eq(acme_parse_account("{\"status\":1}", 12, &a, err, sizeof err), -1);
	cr_assert_eq(acme_parse_account("{}", 2, &a, err, sizeof err), -1);
	cr_assert(strstr(err, "status missing"), "%s", err);
}

/* ---- order ---- */

#define PEBBLE_ORDER                                                                                           \
	"{\n   \"status\": \"pending\",\n   \"expires\": \"2026-12-06T11:00:00Z\",\n   \"identifiers\": [\n"       \
	"      {\n         \"type\": \"dns\",\n         \"value\": \"www.example.com\"\n      },\n"                \
	"      {\n         \"type\": \"dns\",\n         \"value\": \"*.example.com\"\n      },\n"                  \
	"      {\n         \"type\": \"ip\",\n         \"value\": \"192.0.2.10\"\n      }\n   ],\n"                \
	"   \"finalize\": \"https://localhost:14000/finalize-order/sZlP6NFWh3Y\",\n   \"authorizations\": [\n"      \
	"      \"https://localhost:14000/authZ/q8G7B9\",\n      \"https://localhost:14000/authZ/b8DA3z\",\n"        \
	"      \"https://localhost:14000/authZ/Zq1Lk2\"\n   ]\n}"

Test(acme, order_pending_valid_invalid)
{
	struct acme_order o;
	const char *valid = "{\"status\":\"valid\",\"expires\":\"2026-12-13T10:59:59.570360537Z\",\"identifiers\":"
			    "[{\"type\":\"dns\",\"value\":\"www.example.com\"}],\"authorizations\":"
			    "[\"https://acme-v02.api.letsencrypt.org/acme/authz/1234/5678\"],\"finalize\":"
			    "\"https://acme-v02.api.letsencrypt.org/acme/finalize/1234/9999\",\"certificate\":"
			    "\"https://acme-v02.api.letsencrypt.org/acme/cert/03abcdef\",\"profile\":\"classic\"}";
	const char *invalid =
		"{\"status\":\"invalid\",\"identifiers\":[{\"type\":\"dns\",\"value\":\"example.com\"}],"
		"\"authorizations\":[\"https://ca.test/authz/1\"],\"finalize\":\"https://ca.test/finalize/1\","
		"\"error\":{\"type\":\"urn:ietf:params:acme:error:unauthorized\",\"detail\":\"Error finalizing order :: "
		"CSR does not specify same identifiers as Order\",\"status\":403}}";

	cr_assert_eq(acme_parse_order(PEBBLE_ORDER, strlen(PEBBLE_ORDER), &o, err, sizeof err), 0, "%s", err);
	cr_assert_eq(o.status, ACME_STATUS_PENDING);
	cr_assert_eq(o.expires, 1796554800); /* date -d 2026-12-06T11:00:00Z +%s */
	cr_assert_eq(o.nidentifiers, 3);
	cr_assert_str_eq(o.identifiers[1].value, "*.example.com");
	cr_assert_str_eq(o.identifiers[2].type, "ip");
	cr_assert_eq(o.nauthorizations, 3);
	cr_assert_str_eq(o.authorizations[2], "https://localhost:14000/authZ/Zq1Lk2");
	cr_assert_str_eq(o.finalize, "https://localhost:14000/finalize-order/sZlP6NFWh3Y");
	cr_assert_null(o.certificate);
	cr_assert(!o.has_error);
	acme_order_free(&o);

	cr_assert_eq(acme_parse_order(valid, strlen(valid), &o, err, sizeof err), 0, "%s", err);
	cr_assert_eq(o.status, ACME_STATUS_VALID);
	cr_assert_eq(o.expires, 1797159599);
	cr_assert_str_eq(o.certificate, "https://acme-v02.api.letsencrypt.org/acme/cert/03abcdef");
	acme_order_free(&o);

	cr_assert_eq(acme_parse_order(invalid, strlen(invalid), &o, err, sizeof err), 0, "%s", err);
	cr_assert_eq(o.status, ACME_STATUS_INVALID);
	cr_assert(o.has_error);
	cr_assert_eq(o.error.kind, ACME_ERR_UNAUTHORIZED);
	cr_assert_eq(o.error.status, 403);
	cr_assert(strstr(o.error.detail, "CSR does not specify"));
	acme_order_free(&o);
}

#define ORDER_TAIL ",\"finalize\":\"https://ca.test/f\"}"
#define ONE_ID "\"identifiers\":[{\"type\":\"dns\",\"value\":\"a.example\"}]"
#define ONE_AUTHZ "\"authorizations\":[\"https://ca.test/z/1\"]"

Test(acme, order_hostile)
{
	static const struct refusal bad[] = {
		{"{\"status\":\"ready!\"," ONE_ID "," ONE_AUTHZ ORDER_TAIL, "order: status"},
		{"{\"status\":\"deactivated\"," ONE_ID "," ONE_AUTHZ ORDER_TAIL, "order: status"},
		{"{\"status\":\"pending\"," ONE_AUTHZ ORDER_TAIL, "identifiers missing"},
		{"{\"status\":\"pending\",\"identifiers\":[]," ONE_AUTHZ ORDER_TAIL, "identifiers empty"},
		{"{\"status\":\"pending\",\"identifiers\":{}," ONE_AUTHZ ORDER_TAIL, "identifiers not an array"},
		{"{\"status\":\"pending\",\"identifiers\":[\"a.example\"]," ONE_AUTHZ ORDER_TAIL,
		 "identifiers[0] not an object"},
		{"{\"status\":\"pending\",\"identifiers\":[{\"type\":\"email\",\"value\":\"a@b.c\"}]," ONE_AUTHZ ORDER_TAIL,
		 "identifiers[0]: type not dns or ip"},
		{"{\"status\":\"pending\",\"identifiers\":[{\"type\":\"dns\",\"value\":\"a..example\"}]," ONE_AUTHZ
		 ORDER_TAIL, "identifiers[0]: value not a DNS name"},
		{"{\"status\":\"pending\",\"identifiers\":[{\"type\":\"ip\",\"value\":\"300.1.1.1\"}]," ONE_AUTHZ
		 ORDER_TAIL, "value not an IP address"},
		{"{\"status\":\"pending\"," ONE_ID ",\"authorizations\":[]" ORDER_TAIL, "pending without authorizations"},
		{"{\"status\":\"pending\"," ONE_ID ",\"authorizations\":[\"https://ca.test/z/1\",\"file:///etc/passwd\"]"
		 ORDER_TAIL, "authorizations[1]: not an https URL"},
		{"{\"status\":\"pending\"," ONE_ID ",\"authorizations\":[7]" ORDER_TAIL, "authorizations[0]"},
		{"{\"status\":\"pending\"," ONE_ID "," ONE_AUTHZ "}", "finalize missing"},
		{"{\"status\":\"pending\",\"expires\":\"2026-02-30T00:00:00Z\"," ONE_ID "," ONE_AUTHZ ORDER_TAIL,
		 "expires not an RFC 3339"},
		{"{\"status\":\"pending\",\"expires\":1796554800," ONE_ID "," ONE_AUTHZ ORDER_TAIL, "expires not a string"},
		{"{\"status\":\"pending\",\"expires\":\"tomorrow\"," ONE_ID "," ONE_AUTHZ ORDER_TAIL, "expires"},
		{"{\"status\":\"valid\"," ONE_ID "," ONE_AUTHZ ORDER_TAIL, "valid without a certificate"},
		{"{\"status\":\"invalid\"," ONE_ID "," ONE_AUTHZ ",\"error\":\"bad\"" ORDER_TAIL, "order: error not an object"},
	};
	struct acme_order o;

	EXPECT_REFUSED(acme_parse_order, struct acme_order, bad);
	/* a thousand authorizations */
	char *s = malloc(64 * 1024), *p = s;
	p += sprintf(p, "{\"status\":\"pending\"," ONE_ID ",\"authorizations\":[");
	for (int i = 0; i < 1000; i++)
		p += sprintf(p, "%s\"https://ca.test/z/%d\"", i ? "," : "", i);
	strcpy(p, "]" ORDER_TAIL);
	cr_assert_eq(acme_parse_order(s, strlen(s), &o, err, sizeof err), -1);
	cr_assert(strstr(err, "more than 100"), "%s", err);
	free(s);
}

/* ---- authorization and challenges ---- */

#define PEBBLE_AUTHZ                                                                                            \
	"{\n   \"status\": \"pending\",\n   \"identifier\": {\n      \"type\": \"dns\",\n"                          \
	"      \"value\": \"www.example.com\"\n   },\n   \"challenges\": [\n      {\n"                            \
	"         \"type\": \"tls-alpn-01\",\n         \"url\": \"https://localhost:14000/chalZ/VSAPh1\",\n"       \
	"         \"token\": \"pPNwWJrWXMMcd7tRHmmgp6xkAs80AxyhHkgcL4IyFTM\",\n         \"status\": \"pending\"\n" \
	"      },\n      {\n         \"type\": \"http-01\",\n"                                                    \
	"         \"url\": \"https://localhost:14000/chalZ/Xj9a2Q\",\n"                                          \
	"         \"token\": \"evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA\",\n         \"status\": \"pending\"\n" \
	"      },\n      {\n         \"type\": \"dns-01\",\n"                                                     \
	"         \"url\": \"https://localhost:14000/chalZ/pLm0r4\",\n"                                          \
	"         \"token\": \"3OfKEXC0Fl2y4WSxYbjQiv8hpzyfd-7i9tQn5FQ1BXs\",\n         \"status\": \"pending\"\n" \
	"      }\n   ],\n   \"expires\": \"2026-12-06T12:00:00Z\"\n}"

Test(acme, authz_pebble)
{
	struct acme_authz a;
	const struct acme_challenge *c;

	cr_assert_eq(acme_parse_authz(PEBBLE_AUTHZ, strlen(PEBBLE_AUTHZ), &a, err, sizeof err), 0, "%s", err);
	cr_assert_eq(a.status, ACME_STATUS_PENDING);
	cr_assert_str_eq(a.identifier.type, "dns");
	cr_assert_str_eq(a.identifier.value, "www.example.com");
	cr_assert(!a.wildcard);
	cr_assert_eq(a.expires, 1796558400);
	cr_assert_eq(a.nchallenges, 3);
	c = acme_authz_challenge(&a, "http-01");
	cr_assert_not_null(c);
	cr_assert_str_eq(c->url, "https://localhost:14000/chalZ/Xj9a2Q");
	cr_assert_str_eq(c->token, "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA");
	cr_assert_eq(c->status, ACME_STATUS_PENDING);
	cr_assert_not_null(acme_authz_challenge(&a, "dns-01"));
	cr_assert_null(acme_authz_challenge(&a, "dns-persist-01"));
	acme_authz_free(&a);
}

Test(acme, authz_wildcard_invalid_and_dns_persist)
{
	const char *wild =
		"{\"identifier\":{\"type\":\"dns\",\"value\":\"example.com\"},\"status\":\"invalid\",\"expires\":"
		"\"2026-12-13T10:59:59Z\",\"challenges\":[{\"type\":\"dns-01\",\"status\":\"invalid\",\"error\":{\"type\":"
		"\"urn:ietf:params:acme:error:unauthorized\",\"detail\":\"Incorrect TXT record \\\"abc\\\" found at "
		"_acme-challenge.example.com\",\"status\":403},\"url\":\"https://acme-v02.api.letsencrypt.org/acme/chall/1/2/"
		"XyZ\",\"token\":\"DGyRejmCefe7v4NfDGDKfA\",\"validated\":\"2026-12-06T11:00:05Z\"}],\"wildcard\":true}";
	const char *persist =
		"{\"identifier\":{\"type\":\"dns\",\"value\":\"example.com\"},\"status\":\"pending\",\"challenges\":["
		"{\"type\":\"dns-persist-01\",\"url\":\"https://ca.test/chall/1\",\"status\":\"pending\","
		"\"issuer-domain-names\":[\"ca.test\",\"ca.example\"]},"
		"{\"type\":\"dns-account-01\",\"url\":\"https://ca.test/chall/2\",\"status\":\"pending\"},"
		"{\"type\":\"dns-01\",\"url\":\"https://ca.test/chall/3\",\"status\":\"pending\",\"token\":\"abc\"}]}";
	const char *persist_bad =
		"{\"identifier\":{\"type\":\"dns\",\"value\":\"example.com\"},\"status\":\"pending\",\"challenges\":["
		"{\"type\":\"dns-persist-01\",\"url\":\"https://ca.test/chall/1\",\"status\":\"pending\","
		"\"issuer-domain-names\":[\"ca.test\",\"not a name\"]},"
		"{\"type\":\"dns-01\",\"url\":\"https://ca.test/chall/3\",\"status\":\"pending\",\"token\":\"abc\"}]}";
	struct acme_authz a;
	const struct acme_challenge *c;

	cr_assert_eq(acme_parse_authz(wild, strlen(wild), &a, err, sizeof err), 0, "%s", err);
	cr_assert(a.wildcard);
	cr_assert_eq(a.status, ACME_STATUS_INVALID);
	c = acme_authz_challenge(&a, "dns-01");
	cr_assert(c->has_error);
	cr_assert_eq(c->error.kind, ACME_ERR_UNAUTHORIZED);
	cr_assert_str_eq(c->error.detail, "Incorrect TXT record \"abc\" found at _acme-challenge.example.com");
	acme_authz_free(&a);

	cr_assert_eq(acme_parse_authz(persist, strlen(persist), &a, err, sizeof err), 0, "%s", err);
	c = acme_authz_challenge(&a, "dns-persist-01");
	cr_assert_not_null(c);
	cr_assert_null(c->token);
	cr_assert_eq(c->nissuer_domain_names, 2);
	cr_assert_str_eq(c->issuer_domain_names[1], "ca.example");
	cr_assert_not_null(c->raw);
	cr_assert_not_null(acme_authz_challenge(&a, "dns-account-01"));
	acme_authz_free(&a);

	/* a malformed dns-persist-01 leaves dns-01 usable */
	cr_assert_eq(acme_parse_authz(persist_bad, strlen(persist_bad), &a, err, sizeof err), 0, "%s", err);
	cr_assert_eq(acme_authz_challenge(&a, "dns-persist-01")->nissuer_domain_names, 0);
	cr_assert_not_null(acme_authz_challenge(&a, "dns-01"));
	acme_authz_free(&a);
}

#define AZ_HEAD "{\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},\"status\":\"pending\",\"challenges\":["
#define CH(extra) "{\"type\":\"http-01\",\"url\":\"https://ca.test/c/1\",\"status\":\"pending\"" extra "}"

Test(acme, authz_hostile)
{
	static const struct refusal bad[] = {
		{AZ_HEAD CH(",\"token\":\"../../x\"") "]}", "challenges[0]: token not base64url"},
		{AZ_HEAD CH(",\"token\":\"a/b\"") "]}", "token not base64url"},
		{AZ_HEAD CH("") "]}", "challenges[0]: token missing"},
		{AZ_HEAD CH(",\"token\":\"abc\",\"status\":\"ready\"") "]}", "not JSON"}, /* duplicate status */
		{AZ_HEAD "{\"type\":\"http-01\",\"url\":\"https://ca.test/c/1\",\"status\":\"ready\",\"token\":\"a\"}]}",
		 "challenges[0]: status"},
		{AZ_HEAD "{\"type\":\"HTTP 01\",\"url\":\"https://ca.test/c/1\",\"status\":\"pending\"}]}", "type not"},
		{AZ_HEAD "{\"type\":\"http-01\",\"url\":\"http://ca.test/c/1\",\"status\":\"pending\",\"token\":\"a\"}]}",
		 "url not an https URL"},
		{AZ_HEAD "]}", "pending without challenges"},
		{AZ_HEAD "7]}", "challenges[0] not an object"},
		{"{\"identifier\":{\"type\":\"dns\",\"value\":\"*.a.example\"},\"status\":\"pending\",\"challenges\":[" CH(
			 ",\"token\":\"a\"") "]}",
		 "identifier: value not a DNS name"},
		{"{\"status\":\"pending\",\"challenges\":[" CH(",\"token\":\"a\"") "]}", "identifier missing"},
		{"{\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},\"wildcard\":\"true\",\"status\":\"pending\","
		 "\"challenges\":[" CH(",\"token\":\"a\"") "]}",
		 "wildcard not a boolean"},
		{AZ_HEAD CH(",\"token\":\"abc\",\"error\":{\"type\":7}") "]}", "challenges[0]: error: type not a string"},
	};
	struct acme_authz a;

	EXPECT_REFUSED(acme_parse_authz, struct acme_authz, bad);
	/* seventeen challenges */
	char *s = malloc(8192), *p = s;
	p += sprintf(p, AZ_HEAD);
	for (int i = 0; i < ACME_CHALLENGES_MAX + 1; i++)
		p += sprintf(p, "%s" CH(",\"token\":\"a\""), i ? "," : "");
	strcpy(p, "]}");
	cr_assert_eq(acme_parse_authz(s, strlen(s), &a, err, sizeof err), -1);
	cr_assert(strstr(err, "more than 16"), "%s", err);
	free(s);
}

Test(acme, challenge_alone)
{
	const char *body = "{\"type\":\"http-01\",\"url\":\"https://localhost:14000/chalZ/Xj9a2Q\",\"token\":"
			   "\"evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA\",\"status\":\"processing\"}";
	struct acme_challenge c;

	cr_assert_eq(acme_parse_challenge(body, strlen(body), &c, err, sizeof err), 0, "%s", err);
	cr_assert_eq(c.status, ACME_STATUS_PROCESSING);
	cr_assert_str_eq(acme_status_name(c.status), "processing");
	acme_challenge_free(&c);
	cr_assert_eq(acme_parse_challenge("{\"type\":\"http-01\"}", 18, &c, err, sizeof err), -1);
	cr_assert(strstr(err, "challenge: url missing"), "%s", err);
}

/* ---- problems ---- */

Test(acme, problem_documents)
{
	const char *nonce = "{\n  \"type\": \"urn:ietf:params:acme:error:badNonce\",\n  \"detail\": \"JWS has an invalid "
			    "anti-replay nonce: \\\"zlQx2VQ\\\"\",\n  \"status\": 400\n}";
	const char *rate = "{\"type\":\"urn:ietf:params:acme:error:rateLimited\",\"detail\":\"too many certificates (5) "
			   "already issued for this exact set of identifiers in the last 168h0m0s, retry after "
			   "2026-12-07 11:00:00 UTC\",\"status\":429}";
	const char *compound =
		"{\"type\":\"urn:ietf:params:acme:error:malformed\",\"detail\":\"Some of the identifiers requested were "
		"rejected\",\"subproblems\":[{\"type\":\"urn:ietf:params:acme:error:malformed\",\"detail\":\"Invalid "
		"underscore in DNS name\",\"identifier\":{\"type\":\"dns\",\"value\":\"example.org\"}},{\"type\":"
		"\"urn:ietf:params:acme:error:rejectedIdentifier\",\"detail\":\"This CA will not issue for "
		"\\\"example.net\\\"\",\"identifier\":{\"type\":\"dns\",\"value\":\"example.net\"}}]}";
	struct acme_problem p;

	cr_assert_eq(acme_parse_problem(nonce, strlen(nonce), &p, err, sizeof err), 0, "%s", err);
	cr_assert_eq(p.kind, ACME_ERR_BAD_NONCE);
	cr_assert(acme_error_transient(p.kind));
	cr_assert_eq(p.status, 400);
	acme_problem_free(&p);

	cr_assert_eq(acme_parse_problem(rate, strlen(rate), &p, err, sizeof err), 0, "%s", err);
	cr_assert_eq(p.kind, ACME_ERR_RATE_LIMITED);
	cr_assert_eq(p.status, 429);
	acme_problem_free(&p);

	cr_assert_eq(acme_parse_problem(compound, strlen(compound), &p, err, sizeof err), 0, "%s", err);
	cr_assert_eq(p.kind, ACME_ERR_MALFORMED);
	cr_assert(!acme_error_transient(p.kind));
	cr_assert_eq(p.nsub, 2);
	cr_assert_eq(p.sub[1].kind, ACME_ERR_REJECTED_IDENTIFIER);
	cr_assert(p.sub[1].has_identifier);
	cr_assert_str_eq(p.sub[1].identifier.value, "example.net");
	cr_assert_str_eq(p.sub[1].detail, "This CA will not issue for \"example.net\"");
	acme_problem_free(&p);

	/* not ACME's, no type at all */
	cr_assert_eq(acme_parse_problem("{\"detail\":\"Bad Gateway\"}", 24, &p, err, sizeof err), 0);
	cr_assert_str_eq(p.type, "about:blank");
	cr_assert_eq(p.kind, ACME_ERR_OTHER);
	acme_problem_free(&p);
	cr_assert_eq(acme_error_of("urn:ietf:params:acme:error:"), ACME_ERR_OTHER);
	cr_assert_eq(acme_error_of("urn:ietf:params:acme:error:badNonceX"), ACME_ERR_OTHER);
	cr_assert_eq(acme_error_of("urn:ietf:params:acme:error:alreadyReplaced"), ACME_ERR_ALREADY_REPLACED);
	cr_assert_eq(acme_error_of("urn:ietf:params:acme:error:externalAccountRequired"),
		     ACME_ERR_EXTERNAL_ACCOUNT_REQUIRED);
}

Test(acme, problem_hostile)
{
	struct acme_problem p;
	char *s = malloc(8192);

	/* a detail that would forge log lines, and one too long to keep */
	const char *forge = "{\"type\":\"urn:ietf:params:acme:error:malformed\",\"detail\":\"bad\\n2026-01-01 level=info "
			    "msg=\\\"admin logged in\\\"\\u001b[0m\"}";
	cr_assert_eq(acme_parse_problem(forge, strlen(forge), &p, err, sizeof err), 0, "%s", err);
	cr_assert(!strchr(p.detail, '\n') && !strchr(p.detail, '\x1b'));
	cr_assert(strncmp(p.detail, "bad?2026", 8) == 0, "%s", p.detail);
	acme_problem_free(&p);

	strcpy(s, "{\"detail\":\"");
	for (int i = 0; i < 3000; i++)
		strcat(s, "\xc3\xa9"); /* é: cut on a character boundary */
	strcat(s, "\"}");
	cr_assert_eq(acme_parse_problem(s, strlen(s), &p, err, sizeof err), 0, "%s", err);
	cr_assert_eq(strlen(p.detail), ACME_DETAIL_MAX);
	acme_problem_free(&p);
	free(s);

	static const struct refusal bad[] = {
		{"{\"status\":\"400\"}", "status not an HTTP status"},
		{"{\"status\":4000}", "status not an HTTP status"},
		{"{\"subproblems\":{}}", "subproblems not an array"},
		{"{\"subproblems\":[1]}", "subproblems[0] not an object"},
		{"{\"subproblems\":[{\"detail\":\"x\"}]}", "subproblems[0]: type missing"},
		{"{\"subproblems\":[{\"type\":\"x\",\"identifier\":{\"type\":\"dns\",\"value\":\"-a-\"}}]}",
		 "subproblems[0]: identifier: value not a DNS name"},
		{"{\"type\":\"urn:x y\"}", "type not a URI"},
		{"\"problem\"", "problem: not JSON"},
		{"[]", "problem: not a JSON object"},
	};
	EXPECT_REFUSED(acme_parse_problem, struct acme_problem, bad);
}

/* ---- Retry-After ---- */

Test(acme, retry_after)
{
	const int64_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
	uint32_t s;

	static const struct {
		const char *value;
		uint32_t seconds;
	} good[] = {
		{"120", 120},
		{" 3 ", 3},
		{"0", ACME_RETRY_AFTER_MIN},
		{"99999999999999999999999999", ACME_RETRY_AFTER_MAX},
		{"Sun, 06 Nov 1994 08:51:37 GMT", 120},
		{"Sun, 06 Nov 1994 08:49:37 GMT", ACME_RETRY_AFTER_MIN}, /* now */
		{"Thu, 01 Jan 1970 00:00:00 GMT", ACME_RETRY_AFTER_MIN}, /* past */
		{"Fri, 31 Dec 9999 23:59:59 GMT", ACME_RETRY_AFTER_MAX},
		{"Mon, 07 Nov 1994 08:49:37 GMT", 86400},
		{"Thu, 01 Dec 1994 00:00:00 GMT", ACME_RETRY_AFTER_MAX},
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		s = 0;
		cr_assert_eq(acme_retry_after(good[i].value, now, &s), 0, "%s", good[i].value);
		cr_assert_eq(s, good[i].seconds, "%s: %u", good[i].value, s);
	}
	cr_assert_eq(acme_retry_after("Tue, 29 Feb 2028 00:00:00 GMT", now, &s), 0);

	static const char *const bad[] = {
		"", " ", "-5", "1.5", "12s", "+3", "0x10",
		"Mon, 06 Nov 1994 08:49:37 GMT", /* not a Monday */
		"Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
		"Sun Nov  6 08:49:37 1994", "Sun, 31 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:49:37 GMT",
		"Tue, 29 Feb 2100 00:00:00 GMT", "Sun, 06 Nox 1994 08:49:37 GMT",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_eq(acme_retry_after(bad[i], now, &s), -1, "%s", bad[i]);
	cr_assert_eq(acme_retry_after(NULL, now, &s), -1);
}

/* ---- Link ---- */

Test(acme, links_from_letsencrypt_and_pebble)
{
	struct acme_links l = {0};

	/* two Link fields of a certificate download */
	cr_assert_eq(acme_links_add(&l, "<https://acme-v02.api.letsencrypt.org/directory>;rel=\"index\"", NULL, err,
				    sizeof err), 0, "%s", err);
	cr_assert_eq(acme_links_add(&l,
				    "<https://acme-v02.api.letsencrypt.org/acme/cert/03ab/1>;rel=\"alternate\", "
				    "<https://acme-v02.api.letsencrypt.org/acme/cert/03ab/2> ; rel=alternate",
				    NULL, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(l.index, "https://acme-v02.api.letsencrypt.org/directory");
	cr_assert_eq(l.nalternate, 2);
	cr_assert_str_eq(l.alternate[1], "https://acme-v02.api.letsencrypt.org/acme/cert/03ab/2");
	cr_assert_null(l.up);
	acme_links_free(&l);

	/* an authorization's "up", relative to the request URL; a rel list;
	 * unknown relations and parameters skipped */
	cr_assert_eq(acme_links_add(&l,
				    "</my-order/7>;rel=\"up\";title=\"the order\", <https://localhost:14000/dir>;"
				    "rel=\"index terms-of-service\", <https://localhost:14000/x>;rel=\"next\"",
				    "https://localhost:14000/authZ/abc", err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(l.up, "https://localhost:14000/my-order/7");
	cr_assert_str_eq(l.index, "https://localhost:14000/dir");
	cr_assert_eq(l.nalternate, 0);
	acme_links_free(&l);

	/* at most ACME_ALTERNATES_MAX alternates kept */
	for (int i = 0; i < 20; i++)
		cr_assert_eq(acme_links_add(&l, "<https://ca.test/alt>;rel=\"alternate\"", NULL, err, sizeof err), 0);
	cr_assert_eq(l.nalternate, ACME_ALTERNATES_MAX);
	acme_links_free(&l);
}

Test(acme, links_hostile)
{
	static const char *const bad[] = {
		"https://ca.test/x;rel=up",	       /* no angle brackets */
		"<https://ca.test/x;rel=up",	       /* unterminated */
		"<http://ca.test/x>;rel=\"up\"",       /* plain http */
		"<//evil.test/x>;rel=\"up\"",	       /* scheme-relative */
		"</x>;rel=\"up\"",		       /* relative without a base */
		"<https://ca.test/a b>;rel=\"up\"",    /* a space in the target */
		"<https://ca.test/x>;rel=\"up",	       /* unterminated quoted string */
		"<https://ca.test/x> rel=up",	       /* no ';' */
		"<https://ca.test/x>;=up",	       /* no parameter name */
		"<https://ca.test/x>;rel=",	       /* no value */
		"<javascript:alert(1)>;rel=alternate",
	};
	struct acme_links l = {0};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		cr_assert_eq(acme_links_add(&l, bad[i], NULL, err, sizeof err), -1, "%s", bad[i]);
		cr_assert(strncmp(err, "Link:", 5) == 0, "%s", err);
		acme_links_free(&l);
	}
	/* only the first rel counts (RFC 8288 3.3) */
	cr_assert_eq(acme_links_add(&l, "<https://ca.test/x>;rel=next;rel=up", NULL, err, sizeof err), 0);
	cr_assert_null(l.up);
	acme_links_free(&l);
}

/* ---- PEM chains ---- */

Test(acme, pem_chain_and_preferred_chain)
{
	static const char def[] = LEAF ROOT_X1, alt[] = LEAF "\n" CROSS_X1_BY_X2 "\n";
	struct acme_chain c[2];
	char *crlf;

	cr_assert_eq(acme_parse_pem_chain(def, strlen(def), &c[0], err, sizeof err), 0, "%s", err);
	cr_assert_eq(c[0].n, 2);
	cr_assert_str_eq(c[0].top_issuer_cn, "Test Root X1");
	cr_assert_eq(c[0].der[0][0], 0x30);
	cr_assert_eq(acme_parse_pem_chain(alt, strlen(alt), &c[1], err, sizeof err), 0, "%s", err);
	cr_assert_eq(c[1].n, 2);
	cr_assert_str_eq(c[1].top_issuer_cn, "Test Root X2");
	/* same leaf in both */
	cr_assert_eq(c[0].der_len[0], c[1].der_len[0]);
	cr_assert(memcmp(c[0].der[0], c[1].der[0], c[0].der_len[0]) == 0);

	cr_assert_eq(acme_chain_choose(c, 2, "Test Root X2"), 1);
	cr_assert_eq(acme_chain_choose(c, 2, "Test Root X1"), 0);
	cr_assert_eq(acme_chain_choose(c, 2, "test root x2"), 0);
	cr_assert_eq(acme_chain_choose(c, 2, "ISRG Root X2"), 0);
	cr_assert_eq(acme_chain_choose(c, 2, NULL), 0);
	acme_chain_free(&c[0]);
	acme_chain_free(&c[1]);

	/* CRLF line ends, a leaf alone */
	crlf = malloc(2 * sizeof def);
	char *q = crlf;
	for (const char *p = LEAF; *p; p++) {
		if (*p == '\n')
			*q++ = '\r';
		*q++ = *p;
	}
	*q = '\0';
	cr_assert_eq(acme_parse_pem_chain(crlf, strlen(crlf), &c[0], err, sizeof err), 0, "%s", err);
	cr_assert_eq(c[0].n, 1);
	cr_assert_str_eq(c[0].top_issuer_cn, "Test Root X1");
	acme_chain_free(&c[0]);
	free(crlf);
}

Test(acme, pem_chain_hostile)
{
	static const struct refusal bad[] = {
		{"", "no certificate"},
		{"\n\n", "no certificate"},
		{ROOT_X1 LEAF, "not issued by the next"},
		{LEAF ROOT_X2, "not issued by the next"},
		{"Certificate:\n" LEAF, "text where a BEGIN"},
		{LEAF "junk\n" ROOT_X1, "text where a BEGIN"},
		{"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n", "text where a BEGIN"},
		{"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", "not base64"},
		{"-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n", "not a certificate"},
		{"-----BEGIN CERTIFICATE-----\n", "no END"},
		{"-----BEGIN CERTIFICATE-----", "BEGIN line not ended"},
		{"-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----x", "END line not ended"},
	};
	struct acme_chain c;

	EXPECT_REFUSED(acme_parse_pem_chain, struct acme_chain, bad);
	/* a NUL inside; more certificates than a chain has */
	char nul[] = LEAF;
	nul[40] = '\0';
	cr_assert_eq(acme_parse_pem_chain(nul, sizeof nul - 1, &c, err, sizeof err), -1);
	cr_assert(strstr(err, "NUL"), "%s", err);
	char *many = malloc(10 * sizeof ROOT_X1);
	many[0] = '\0';
	for (int i = 0; i < ACME_CHAIN_MAX + 1; i++)
		strcat(many, ROOT_X1);
	cr_assert_eq(acme_parse_pem_chain(many, strlen(many), &c, err, sizeof err), -1);
	cr_assert(strstr(err, "more than 8"), "%s", err);
	free(many);
}

/* ---- ARI ---- */

Test(acme, ari_cert_id_rfc9773_example)
{
	static const char pem[] = LEAF, root2[] = ROOT_X2;
	struct acme_chain c;
	char id[ACME_CERT_ID_MAX];

	cr_assert_eq(acme_parse_pem_chain(pem, strlen(pem), &c, err, sizeof err), 0, "%s", err);
	cr_assert_eq(acme_ari_cert_id(c.der[0], c.der_len[0], id, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
	cr_assert(acme_ari_cert_id_ok(id));
	/* a certificate cut short */
	cr_assert_eq(acme_ari_cert_id(c.der[0], c.der_len[0] - 1, id, err, sizeof err), -1);
	acme_chain_free(&c);
	/* no authority key identifier */
	cr_assert_eq(acme_parse_pem_chain(root2, strlen(root2), &c, err, sizeof err), 0, "%s", err);
	cr_assert_eq(acme_ari_cert_id(c.der[0], c.der_len[0], id, err, sizeof err), -1);
	cr_assert(strstr(err, "authority key identifier"), "%s", err);
	acme_chain_free(&c);

	cr_assert(!acme_ari_cert_id_ok("aYhba4dGQEHhs3uEe6CuLN4ByNQ"));
	cr_assert(!acme_ari_cert_id_ok("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdl=QyE"));
	cr_assert(!acme_ari_cert_id_ok(".AIdlQyE"));
}

Test(acme, renewal_info)
{
	const char *le = "{\n  \"suggestedWindow\": {\n    \"start\": \"2026-12-01T00:00:00Z\",\n"
			 "    \"end\": \"2026-12-03T00:00:00Z\"\n  },\n"
			 "  \"explanationURL\": \"https://community.letsencrypt.org/t/123\"\n}";
	struct acme_renewal_info ri;
	int64_t t;

	cr_assert_eq(acme_parse_renewal_info(le, strlen(le), &ri, err, sizeof err), 0, "%s", err);
	cr_assert_eq(ri.start, 1796083200);
	cr_assert_eq(ri.end, 1796083200 + 2 * 86400);
	cr_assert_str_eq(ri.explanation_url, "https://community.letsencrypt.org/t/123");
	cr_assert_eq(acme_renewal_pick(&ri, 0), ri.start);
	cr_assert_eq(acme_renewal_pick(&ri, UINT64_MAX), ri.start + (int64_t)(UINT64_MAX % (2 * 86400)));
	for (uint64_t r = 1; r < 1000000; r = r * 7 + 3) {
		t = acme_renewal_pick(&ri, r * 0x9e3779b97f4a7c15ull);
		cr_assert(t >= ri.start && t < ri.end);
	}
	acme_renewal_info_free(&ri);

	/* an offset and fractions */
	const char *off = "{\"suggestedWindow\":{\"start\":\"2026-12-01T01:00:00.123+01:00\",\"end\":"
			  "\"2026-11-30T20:00:01-04:00\"}}";
	cr_assert_eq(acme_parse_renewal_info(off, strlen(off), &ri, err, sizeof err), 0, "%s", err);
	cr_assert_eq(ri.start, 1796083200);
	cr_assert_eq(ri.end, 1796083201);
	cr_assert_null(ri.explanation_url);
	acme_renewal_info_free(&ri);

	static const struct refusal bad[] = {
		{"{}", "suggestedWindow missing"},
		{"{\"suggestedWindow\":[]}", "suggestedWindow missing or not an object"},
		{"{\"suggestedWindow\":{\"start\":\"2026-12-01T00:00:00Z\"}}", "end missing"},
		{"{\"suggestedWindow\":{\"start\":\"2026-12-03T00:00:00Z\",\"end\":\"2026-12-01T00:00:00Z\"}}",
		 "end not after start"},
		{"{\"suggestedWindow\":{\"start\":\"2026-12-01T00:00:00Z\",\"end\":\"2026-12-01T00:00:00Z\"}}",
		 "end not after start"},
		{"{\"suggestedWindow\":{\"start\":\"2026-12-01\",\"end\":\"2026-12-03T00:00:00Z\"}}",
		 "start not an RFC 3339"},
		{"{\"suggestedWindow\":{\"start\":\"2026-13-01T00:00:00Z\",\"end\":\"2027-12-03T00:00:00Z\"}}",
		 "start not an RFC 3339"},
		{"{\"suggestedWindow\":{\"start\":1796083200,\"end\":\"2026-12-03T00:00:00Z\"}}", "start not a string"},
		{"{\"suggestedWindow\":{\"start\":\"2026-12-01T00:00:00Z\",\"end\":\"2026-12-03T00:00:00Z\"},"
		 "\"explanationURL\":7}",
		 "explanationURL not a string"},
	};
	EXPECT_REFUSED(acme_parse_renewal_info, struct acme_renewal_info, bad);
	cr_assert_eq(acme_rfc3339_time("1970-01-01T00:00:00Z", &t), 0);
	cr_assert_eq(t, 0);
	cr_assert_eq(acme_rfc3339_time("1969-12-31T23:59:59Z", &t), 0);
	cr_assert_eq(t, -1);
	cr_assert_eq(acme_rfc3339_time("2000-02-29T12:00:00Z", &t), 0);
	cr_assert_eq(t, 951825600);
}

Test(acme, renewal_info_hostile)
{
	static const struct refusal bad[] = {
		{"", "not JSON"},
		{"[]", "not a JSON object"},
		{"{\"suggestedWindow\":{\"end\":\"2026-12-03T00:00:00Z\"}}", "start missing"},
		{"{\"suggestedWindow\":null}", "suggestedWindow missing or not an object"},
		{"{\"suggestedWindow\":{\"start\":\"2026-12-01T00:00:00Z\",\"end\":\"2026-12-03T00:00:00Z\","
		 "\"start\":\"2020-01-01T00:00:00Z\"}}",
		 "not JSON"},
		/* RFC 3339 in form only */
		{"{\"suggestedWindow\":{\"start\":\"2026-12-01 00:00:00Z\",\"end\":\"2026-12-03T00:00:00Z\"}}",
		 "start not an RFC 3339"},
		{"{\"suggestedWindow\":{\"start\":\"2026-12-01T00:00:00\",\"end\":\"2026-12-03T00:00:00Z\"}}",
		 "start not an RFC 3339"},
		{"{\"suggestedWindow\":{\"start\":\"2026-12-01T00:00:00Z\",\"end\":\"2026-02-30T00:00:00Z\"}}",
		 "end not an RFC 3339"},
		{"{\"suggestedWindow\":{\"start\":\"2026-12-01T24:00:00Z\",\"end\":\"2026-12-03T00:00:00Z\"}}",
		 "start not an RFC 3339"},
		{"{\"suggestedWindow\":{\"start\":\"Tue, 01 Dec 2026 00:00:00 GMT\",\"end\":\"2026-12-03T00:00:00Z\"}}",
		 "start not an RFC 3339"},
		{"{\"suggestedWindow\":{\"start\":\"2026-12-01T00:00:00Z\",\"end\":\"2026-12-03T00:00:00+25:00\"}}",
		 "end not an RFC 3339"},
		/* start after end once the offsets are applied */
		{"{\"suggestedWindow\":{\"start\":\"2026-12-01T00:00:00-02:00\",\"end\":\"2026-12-01T01:00:00Z\"}}",
		 "end not after start"},
		{"{\"suggestedWindow\":{\"start\":\"2026-12-01T00:00:00Z\",\"end\":\"2026-12-03T00:00:00Z\"},"
		 "\"explanationURL\":\"https://ca.test/\\u0007\"}",
		 "explanationURL not a URI"},
	};
	struct acme_renewal_info ri;
	char *s = malloc(ACME_JSON_MAX + 64), *p;

	EXPECT_REFUSED(acme_parse_renewal_info, struct acme_renewal_info, bad);
	/* members ARI does not define are ignored */
	const char *extra = "{\"suggestedWindow\":{\"start\":\"2026-12-01T00:00:00Z\",\"end\":\"2026-12-03T00:00:00Z\","
			    "\"x\":[1]},\"y\":{}}";
	cr_assert_eq(acme_parse_renewal_info(extra, strlen(extra), &ri, err, sizeof err), 0, "%s", err);
	acme_renewal_info_free(&ri);
	/* a body beyond the bound, nesting beyond the bound, an explanationURL
	 * longer than a URL may be */
	cr_assert(s);
	memset(s, ' ', ACME_JSON_MAX + 1);
	s[0] = '{';
	s[ACME_JSON_MAX] = '}';
	cr_assert_eq(acme_parse_renewal_info(s, ACME_JSON_MAX + 1, &ri, err, sizeof err), -1);
	cr_assert(strstr(err, "larger than"), "%s", err);
	p = s + sprintf(s, "{\"suggestedWindow\":");
	for (int i = 0; i < 100; i++)
		*p++ = '[';
	*p = '\0';
	cr_assert_eq(acme_parse_renewal_info(s, strlen(s), &ri, err, sizeof err), -1);
	cr_assert(strstr(err, "nested deeper"), "%s", err);
	p = s + sprintf(s, "{\"suggestedWindow\":{\"start\":\"2026-12-01T00:00:00Z\",\"end\":\"2026-12-03T00:00:00Z\"},"
			   "\"explanationURL\":\"https://ca.test/");
	memset(p, 'a', ACME_URL_MAX);
	strcpy(p + ACME_URL_MAX, "\"}");
	cr_assert_eq(acme_parse_renewal_info(s, strlen(s), &ri, err, sizeof err), -1);
	cr_assert(strstr(err, "explanationURL"), "%s", err);
	free(s);
}

Test(acme, problem_about_replaces)
{
	static const struct {
		const char *body;
		bool yes;
	} cases[] = {
		{"{\"type\":\"urn:ietf:params:acme:error:alreadyReplaced\",\"detail\":\"cannot indicate an order "
		 "replaces certificate with serial \\\"03\\\", which already has a replacement order\"}",
		 true},
		{"{\"type\":\"urn:ietf:params:acme:error:alreadyReplaced\"}", true},
		{"{\"type\":\"urn:ietf:params:acme:error:malformed\",\"detail\":\"Could not validate ARI 'replaces' "
		 "field :: request included `replaces` field, but no current certificate with serial \\\"03\\\" "
		 "exists\"}",
		 true},
		{"{\"type\":\"urn:ietf:params:acme:error:unauthorized\",\"detail\":\"Could not validate ARI 'replaces' "
		 "field :: requester account did not request the certificate being replaced by this order\"}",
		 true},
		{"{\"type\":\"urn:ietf:params:acme:error:malformed\",\"detail\":\"NewOrder request did not specify any "
		 "identifiers\"}",
		 false},
		{"{\"type\":\"urn:ietf:params:acme:error:malformed\"}", false},
		{"{\"type\":\"urn:ietf:params:acme:error:rateLimited\",\"detail\":\"too many certificates; a "
		 "replacement is exempt\"}",
		 false},
		{"{\"type\":\"urn:ietf:params:acme:error:unauthorized\",\"detail\":\"account is deactivated\"}", false},
		{"{\"type\":\"about:blank\",\"detail\":\"replaces\"}", false},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct acme_problem p;

		cr_assert_eq(acme_parse_problem(cases[i].body, strlen(cases[i].body), &p, err, sizeof err), 0, "%zu: %s",
			     i, err);
		cr_assert_eq(acme_problem_about_replaces(&p), cases[i].yes, "%zu", i);
		acme_problem_free(&p);
	}
}

Test(acme, ari_renew_at_and_retry)
{
	struct acme_renewal_info ri = {.start = 1796083200, .end = 1796083200 + 2 * 86400};

	/* a window ahead: a time inside it, whatever now is */
	for (uint64_t r = 1; r < 1000000; r = r * 7 + 3) {
		int64_t t = acme_ari_renew_at(&ri, ri.start - 86400, r * 0x9e3779b97f4a7c15ull);

		cr_assert(t >= ri.start && t < ri.end);
		cr_assert_eq(t, acme_renewal_pick(&ri, r * 0x9e3779b97f4a7c15ull));
	}
	/* inside it: still the pick (one already past means renewing now) */
	cr_assert_eq(acme_ari_renew_at(&ri, ri.start + 60, 0), ri.start);
	/* its end passed (or reached): now */
	cr_assert_eq(acme_ari_renew_at(&ri, ri.end, 12345), ri.end);
	cr_assert_eq(acme_ari_renew_at(&ri, ri.end + 86400 * 400, 12345), ri.end + 86400 * 400);

	/* Retry-After clamped to [1 h, 1 d], 6 h without one */
	cr_assert_eq(acme_ari_retry(0, 0), ACME_ARI_RETRY_DEFAULT);
	cr_assert_eq(acme_ari_retry(1, 0), 3600);
	cr_assert_eq(acme_ari_retry(3599, 0), 3600);
	cr_assert_eq(acme_ari_retry(7200, 0), 7200);
	cr_assert_eq(acme_ari_retry(86400, 0), 86400);
	cr_assert_eq(acme_ari_retry(ACME_RETRY_AFTER_MAX + 1, 0), 86400);
	cr_assert_eq(acme_ari_retry(UINT32_MAX, 0), 86400);
	/* failures in a row: 1 h doubling to 1 d, or a longer Retry-After */
	cr_assert_eq(acme_ari_retry(0, 1), 3600);
	cr_assert_eq(acme_ari_retry(0, 2), 7200);
	cr_assert_eq(acme_ari_retry(0, 3), 14400);
	cr_assert_eq(acme_ari_retry(0, 5), 57600);
	cr_assert_eq(acme_ari_retry(0, 6), 86400);
	cr_assert_eq(acme_ari_retry(0, 1000), 86400);
	cr_assert_eq(acme_ari_retry(0, UINT32_MAX), 86400);
	cr_assert_eq(acme_ari_retry(7200, 1), 7200);
	cr_assert_eq(acme_ari_retry(60, 3), 14400);
	cr_assert_eq(acme_ari_retry(40000, 3), 40000);
}

/* ---- payloads ---- */

Test(acme, payloads)
{
	char *s;
	json_t *o;

	s = acme_payload_new_order((const char *[]){"www.example.com", "*.example.com", "192.0.2.10", "2001:db8::1"}, 4,
				   "shortlived", "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", err, sizeof err);
	cr_assert(s, "%s", err);
	o = json_loads(s, 0, NULL);
	cr_assert_eq(json_array_size(json_object_get(o, "identifiers")), 4);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(o, "identifiers"), 1), "value")),
			 "*.example.com");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(o, "identifiers"), 2), "type")),
			 "ip");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(o, "identifiers"), 3), "type")),
			 "ip");
	cr_assert_str_eq(json_string_value(json_object_get(o, "profile")), "shortlived");
	cr_assert_str_eq(json_string_value(json_object_get(o, "replaces")), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
	json_decref(o);
	free(s);
	s = acme_payload_new_order((const char *[]){"a.example"}, 1, NULL, NULL, err, sizeof err);
	cr_assert_str_eq(s, "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"a.example\"}]}");
	free(s);
	cr_assert_null(acme_payload_new_order((const char *[]){"a.example", "bad name"}, 2, NULL, NULL, err, sizeof err));
	cr_assert(strstr(err, "name 1"), "%s", err);
	cr_assert_null(acme_payload_new_order(NULL, 0, NULL, NULL, err, sizeof err));
	cr_assert_null(acme_payload_new_order((const char *[]){"a.example"}, 1, "x\"y", NULL, err, sizeof err));
	cr_assert_null(acme_payload_new_order((const char *[]){"a.example"}, 1, NULL, "nodot", err, sizeof err));

	s = acme_payload_new_account(NULL, 0, false, true, NULL, err, sizeof err);
	cr_assert_str_eq(s, "{\"contact\":[],\"termsOfServiceAgreed\":false,\"onlyReturnExisting\":true}");
	free(s);
	cr_assert_null(acme_payload_new_account((const char *[]){"not-an-email"}, 1, true, false, NULL, err, sizeof err));
	cr_assert_null(acme_payload_new_account((const char *[]){"a@example.com\r\nX: y"}, 1, true, false, NULL, err,
						sizeof err));

	s = acme_payload_finalize((const uint8_t *)"\x30\x03\x02\x01\xff", 5, err, sizeof err);
	cr_assert_str_eq(s, "{\"csr\":\"MAMCAf8\"}");
	free(s);
	s = acme_payload_revoke((const uint8_t *)"\x30\x03\x02\x01\xff", 5, 4, err, sizeof err);
	cr_assert_str_eq(s, "{\"certificate\":\"MAMCAf8\",\"reason\":4}");
	free(s);
	s = acme_payload_revoke((const uint8_t *)"\x30\x03\x02\x01\xff", 5, -1, err, sizeof err);
	cr_assert_str_eq(s, "{\"certificate\":\"MAMCAf8\"}");
	free(s);
	cr_assert_null(acme_payload_revoke((const uint8_t *)"\x30", 1, 7, err, sizeof err));
	cr_assert_null(acme_payload_revoke((const uint8_t *)"\x30", 1, 11, err, sizeof err));
	cr_assert_null(acme_payload_finalize(NULL, 0, err, sizeof err));
	s = acme_payload_deactivate();
	cr_assert_str_eq(s, "{\"status\":\"deactivated\"}");
	free(s);
}

Test(acme_dns_persist, record_value)
{
	char out[600];

	cr_assert_eq(acme_dns_persist_value("ca.example", "https://ca.example/acct/123", false, out, sizeof out), 0);
	cr_expect_str_eq(out, "ca.example; accounturi=https://ca.example/acct/123");
	cr_assert_eq(acme_dns_persist_value("letsencrypt.org", "https://ca.example/acct/1", true, out, sizeof out), 0);
	cr_expect_str_eq(out, "letsencrypt.org; accounturi=https://ca.example/acct/1; policy=wildcard");
	/* what would break the record or is no issuer domain: refused */
	cr_expect_neq(acme_dns_persist_value("", "https://ca.example/a", false, out, sizeof out), 0);
	cr_expect_neq(acme_dns_persist_value("ca..example", "https://ca.example/a", false, out, sizeof out), 0);
	cr_expect_neq(acme_dns_persist_value("ca.example;x=y", "https://ca.example/a", false, out, sizeof out), 0);
	cr_expect_neq(acme_dns_persist_value("ca.example", "https://ca.example/a;policy=wildcard", false, out,
					     sizeof out), 0);
	cr_expect_neq(acme_dns_persist_value("ca.example", "http://ca.example/a", false, out, sizeof out), 0);
	cr_expect_neq(acme_dns_persist_value("ca.example", NULL, false, out, sizeof out), 0);
	/* too small a buffer */
	cr_expect_neq(acme_dns_persist_value("ca.example", "https://ca.example/acct/123", false, out, 20), 0);
}
