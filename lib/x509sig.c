/* See x509sig.h. */
#include "x509sig.h"

#include <openssl/mem.h>

const EVP_MD *x509sig_digest(const EVP_PKEY *key)
{
	if (EVP_PKEY_id(key) == EVP_PKEY_ED25519)
		return NULL;
	if (EVP_PKEY_id(key) == EVP_PKEY_EC && EVP_PKEY_bits(key) > 256)
		return EVP_sha384();
	return EVP_sha256();
}

int x509sig_algorithm(CBB *out, const EVP_PKEY *key)
{
	/* ecdsa-with-SHA256/384 (RFC 5758), sha256WithRSAEncryption (RFC 4055,
	 * with its NULL parameters), id-Ed25519 (RFC 8410) */
	static const uint8_t ecdsa256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
	static const uint8_t ecdsa384[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
	static const uint8_t rsa256[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b};
	static const uint8_t ed25519[] = {0x2b, 0x65, 0x70};
	const uint8_t *oid;
	size_t oid_len;
	CBB alg, o, null;
	int rsa = 0;

	switch (EVP_PKEY_id(key)) {
	case EVP_PKEY_EC:
		oid = EVP_PKEY_bits(key) > 256 ? ecdsa384 : ecdsa256;
		oid_len = sizeof ecdsa256;
		break;
	case EVP_PKEY_RSA:
		oid = rsa256, oid_len = sizeof rsa256, rsa = 1;
		break;
	case EVP_PKEY_ED25519:
		oid = ed25519, oid_len = sizeof ed25519;
		break;
	default:
		return 0;
	}
	if (!CBB_add_asn1(out, &alg, CBS_ASN1_SEQUENCE) || !CBB_add_asn1(&alg, &o, CBS_ASN1_OBJECT) ||
	    !CBB_add_bytes(&o, oid, oid_len))
		return 0;
	if (rsa && !CBB_add_asn1(&alg, &null, CBS_ASN1_NULL))
		return 0;
	return CBB_flush(out);
}

int x509sig_append(CBB *seq, EVP_PKEY *key, const uint8_t *tbs, size_t tbs_len)
{
	EVP_MD_CTX ctx;
	size_t sig_len = (size_t)EVP_PKEY_size(key);
	uint8_t *sig = OPENSSL_malloc(sig_len ? sig_len : 1);
	CBB bits;
	int ok = 0;

	if (!sig)
		return 0;
	EVP_MD_CTX_init(&ctx);
	if (EVP_DigestSignInit(&ctx, NULL, x509sig_digest(key), NULL, key) &&
	    EVP_DigestSign(&ctx, sig, &sig_len, tbs, tbs_len) && x509sig_algorithm(seq, key) &&
	    CBB_add_asn1(seq, &bits, CBS_ASN1_BITSTRING) && CBB_add_u8(&bits, 0) &&
	    CBB_add_bytes(&bits, sig, sig_len) && CBB_flush(seq))
		ok = 1;
	EVP_MD_CTX_cleanup(&ctx);
	OPENSSL_free(sig);
	return ok;
}
