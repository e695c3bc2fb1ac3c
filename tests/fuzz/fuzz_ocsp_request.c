/* libFuzzer target: an OCSP request (DER) as the responder parses it
 * (lib/ocsp.h). Whatever arrives is accepted with one CertID whose fields
 * are in range and point into the input, or refused with a reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/nid.h>

#include "ocsp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void need(int cond)
{
	if (!cond)
		abort();
}

static int inside(const uint8_t *p, size_t n, const uint8_t *data, size_t size)
{
	return p >= data && n <= size && (size_t)(p - data) <= size - n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ocsp_request r;
	char why[200] = "";
	static const uint8_t zero[sizeof r] = {0};

	if (ocsp_request_parse(data, size, &r, why, sizeof why) != 0) {
		need(why[0] != '\0' && memcmp(&r, zero, sizeof r) == 0);
		return 0;
	}
	need(size <= OCSP_REQUEST_MAX);
	need(r.id.hash_nid == NID_sha1 || r.id.hash_nid == NID_sha256 || r.id.hash_nid == NID_sha384 ||
	     r.id.hash_nid == NID_sha512);
	need(r.id.hash_len >= 20 && r.id.hash_len <= OCSP_HASH_MAX);
	need(r.id.serial_len >= 1 && r.id.serial_len <= OCSP_SERIAL_MAX && !(r.id.serial[0] & 0x80));
	need(r.id.der_len > 0 && inside(r.id.der, r.id.der_len, data, size) && r.id.der[0] == 0x30);
	if (r.has_nonce)
		need(r.nonce_len >= 1 && r.nonce_len <= OCSP_NONCE_MAX && inside(r.nonce, r.nonce_len, data, size));
	else
		need(!r.nonce && r.nonce_len == 0);
	return 0;
}
