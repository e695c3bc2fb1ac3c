/* See revoke.h. */
#include "revoke.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bytestring.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crl.h"
#include "log.h"
#include "ocsp.h"
#include "pki.h"
#include "util.h"
#include "validate.h"

#define RESPONDERS_MAX 256

/* ---- CRLs ---- */

/* all of [off, off + len) of fd, or -1 */
static int pread_all(int fd, uint8_t *buf, size_t len, off_t off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n, len -= (size_t)n, off += n;
	}
	return 0;
}

int revoke_crl_sign(struct ca *ca, struct ledger *ledger, const struct ipc_crl_sign *m, int fd,
		    struct revoke_crl *out, char *why, size_t whylen)
{
	struct stat st;
	struct crl_entry *entries = NULL;
	uint8_t *wire = NULL, md[SHA256_DIGEST_LENGTH];
	size_t wire_len = (size_t)m->entries * CRL_ENTRY_WIRE;
	int64_t now = (int64_t)time(NULL), ca_end = pki_asn1_unix(X509_get0_notAfter(ca_cert(ca)));
	int64_t next_update;
	char number[24], lwhy[300];
	int rc = -1;

	memset(out, 0, sizeof *out);
	out->memfd = -1;
	if (fd < 0)
		return pki_refuse(why, whylen, "no memfd came with the request");
	if (!valid_resource_id(m->issuer_id, 64)) {
		pki_refuse(why, whylen, "issuer_id: not a valid id");
		goto out;
	}
	/* a memfd, not a file or socket someone could make the signer write to */
	if (fcntl(fd, F_GET_SEALS) < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		pki_refuse(why, whylen, "the entries must come in a memfd");
		goto out;
	}
	if (m->entries > REVOKE_CRL_ENTRIES_MAX) {
		snprintf(why, whylen, "%u entries: a CRL holds at most %u", m->entries, REVOKE_CRL_ENTRIES_MAX);
		goto out;
	}
	if ((uint64_t)st.st_size < wire_len) {
		pki_refuse(why, whylen, "the memfd holds fewer entries than announced");
		goto out;
	}
	if (m->crl_number == 0 || m->crl_number > INT64_MAX) {
		pki_refuse(why, whylen, "crl_number: must be between 1 and 2^63-1");
		goto out;
	}
	/* thisUpdate is now (give or take clock steps between processes), and
	 * a CRL says nothing past the CA's own end */
	if ((int64_t)m->this_update < now - 3600 || (int64_t)m->this_update > now + 300 ||
	    m->next_update <= m->this_update || m->next_update - m->this_update > 366ull * 86400) {
		pki_refuse(why, whylen, "this_update must be now and next_update within 366 days after it");
		goto out;
	}
	next_update = (int64_t)m->next_update < ca_end ? (int64_t)m->next_update : ca_end;
	if (next_update <= (int64_t)m->this_update) {
		pki_refuse(why, whylen, "the issuing CA has expired");
		goto out;
	}
	if (wire_len && (!(wire = malloc(wire_len)) ||
			 !(entries = malloc((size_t)m->entries * sizeof *entries)))) {
		pki_refuse(why, whylen, "out of memory");
		goto out;
	}
	if (wire_len && pread_all(fd, wire, wire_len, 0) != 0) {
		pki_refuse(why, whylen, "cannot read the entries from the memfd");
		goto out;
	}
	if (crl_entries_parse(wire, wire_len, entries, why, whylen) != 0)
		goto out;
	if (crl_build(ca_key(ca), ca_cert(ca), entries, m->entries, m->crl_number, (int64_t)m->this_update,
		      next_update, &out->der, &out->der_len, why, whylen) != 0)
		goto out;
	SHA256(out->der, out->der_len, md);
	hex_encode(md, sizeof md, out->sha256);
	snprintf(number, sizeof number, "%llx", (unsigned long long)m->crl_number);
	if (ledger_stage(ledger, "crl", m->issuer_id, number, out->der, out->der_len, lwhy, sizeof lwhy) != 0) {
		pki_refuse(why, whylen, lwhy);
		OPENSSL_free(out->der);
		out->der = NULL;
		rc = -2;
		goto out;
	}
	snprintf(out->issuer_id, sizeof out->issuer_id, "%s", m->issuer_id);
	out->crl_number = m->crl_number;
	out->next_update = next_update;
	out->der_offset = ((uint64_t)wire_len + 4095) & ~(uint64_t)4095;
	out->memfd = fd;
	fd = -1;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(wire);
	free(entries);
	return rc;
}

int revoke_crl_deliver(struct revoke_crl *c, char *why, size_t whylen)
{
	const uint8_t *p = c->der;
	size_t left = c->der_len;
	off_t off = (off_t)c->der_offset;

	while (left) {
		ssize_t n = pwrite(c->memfd, p, left, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(why, whylen, "cannot write the CRL into the memfd: %s",
				 n < 0 ? strerror(errno) : "no progress");
			return -1;
		}
		p += n, left -= (size_t)n, off += n;
	}
	return 0;
}

void revoke_crl_free(struct revoke_crl *c)
{
	if (c->der) {
		close(c->memfd);
		OPENSSL_free(c->der);
	}
	c->der = NULL;
	c->memfd = -1;
}

/* ---- OCSP responders ---- */

struct responder {
	char issuer_id[65];
	struct ca *ca; /* the CA its certificate is from */
	EVP_PKEY *key;
	X509 *cert;
	uint8_t *cert_der; /* OPENSSL_malloc'd */
	size_t cert_der_len;
	int64_t renew_at; /* a new one is made from then on */
};

struct responders {
	struct ledger *ledger;
	char dir[1100];
	int64_t response_validity, cert_validity; /* seconds */
	struct responder r[RESPONDERS_MAX];
	size_t n;
	uint64_t rotations;
};

static void responder_clear(struct responder *x)
{
	EVP_PKEY_free(x->key);
	X509_free(x->cert);
	OPENSSL_free(x->cert_der);
	x->key = NULL;
	x->cert = NULL;
	x->cert_der = NULL;
	x->cert_der_len = 0;
}

struct responders *responders_open(const struct cfg *section, const char *key_dir, struct ledger *ledger)
{
	struct responders *r = calloc(1, sizeof *r);

	if (!r) {
		log_error("out of memory");
		return NULL;
	}
	r->ledger = ledger;
	r->response_validity = (int64_t)(cfg_duration_ms(section, "signer", "ocsp_validity") / 1000);
	r->cert_validity = (int64_t)(cfg_duration_ms(section, "signer", "ocsp_responder_validity") / 1000);
	snprintf(r->dir, sizeof r->dir, "%s/ocsp", key_dir);
	if (mkdir(r->dir, 0700) != 0 && errno != EEXIST) {
		log_error("cannot create %s: %s", r->dir, strerror(errno));
		free(r);
		return NULL;
	}
	return r;
}

void responders_free(struct responders *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		responder_clear(&r->r[i]);
	free(r);
}

uint64_t responders_rotations(const struct responders *r)
{
	return r->rotations;
}

/* id-pkix-ocsp-nocheck, its value a DER NULL (RFC 6960 4.2.2.2.1) */
static int add_nocheck(X509 *cert, ASN1_OCTET_STRING *null)
{
	X509_EXTENSION *ext = X509_EXTENSION_create_by_NID(NULL, NID_id_pkix_OCSP_noCheck, 0, null);
	int ok = ext && X509_add_ext(cert, ext, -1);

	X509_EXTENSION_free(ext);
	return ok;
}

/* The responder's certificate as RFC 6960 4.2.2.2 wants it: issued by the
 * CA, OCSPSigning, id-pkix-ocsp-nocheck (clients do not ask about the
 * responder itself). Ledger line written (and committed) before it is
 * used. */
static X509 *responder_make_cert(struct responders *rs, struct ca *signing, const char *issuer_id, EVP_PKEY *key)
{
	X509 *ca = ca_cert(signing), *cert = X509_new();
	X509_NAME *name = X509_NAME_new();
	ASN1_OCTET_STRING *null = ASN1_OCTET_STRING_new();
	static const uint8_t der_null[] = {0x05, 0x00};
	int64_t left = pki_asn1_unix(X509_get0_notAfter(ca)) - (int64_t)time(NULL);
	int64_t validity = rs->cert_validity < left ? rs->cert_validity : left;
	char cn[128], serial[64], why[300];
	uint8_t *der = NULL;
	int len;

	snprintf(cn, sizeof cn, "OCSP responder for %s", issuer_id);
	if (!cert || !name || !null || validity <= 0 || !X509_set_version(cert, X509_VERSION_3) ||
	    pki_set_random_serial(cert) != 0 || !X509_set_issuer_name(cert, X509_get_subject_name(ca)) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_subject_name(cert, name) || !X509_gmtime_adj(X509_getm_notBefore(cert), -60) ||
	    !X509_gmtime_adj(X509_getm_notAfter(cert), (long)validity) || !X509_set_pubkey(cert, key) ||
	    !pki_add_ext(cert, ca, NID_basic_constraints, "critical,CA:FALSE") ||
	    !pki_add_ext(cert, ca, NID_key_usage, "critical,digitalSignature") ||
	    !pki_add_ext(cert, ca, NID_ext_key_usage, "OCSPSigning") ||
	    !pki_add_ext(cert, ca, NID_subject_key_identifier, "hash") ||
	    !pki_add_ext(cert, ca, NID_authority_key_identifier, "keyid:always") ||
	    !ASN1_OCTET_STRING_set(null, der_null, sizeof der_null) ||
	    !add_nocheck(cert, null) ||
	    !X509_sign(cert, ca_key(signing), pki_sign_digest(ca_key(signing))) ||
	    (len = i2d_X509(cert, &der)) <= 0) {
		pki_log_error("cannot make an OCSP responder certificate");
		goto fail;
	}
	pki_serial_hex(cert, serial, sizeof serial);
	if (ledger_append(rs->ledger, "certificate", issuer_id, serial, der, (size_t)len, why, sizeof why) != 0) {
		log_error("OCSP responder certificate for %s not used: %s", issuer_id, why);
		goto fail;
	}
	OPENSSL_free(der);
	X509_NAME_free(name);
	ASN1_OCTET_STRING_free(null);
	return cert;
fail:
	OPENSSL_free(der);
	X509_NAME_free(name);
	ASN1_OCTET_STRING_free(null);
	X509_free(cert);
	return NULL;
}

/* The saved responder of issuer_id, when it is still good: issued by the
 * current CA, matching its key, not due for renewal. */
static int responder_load(struct ca *signing, struct responder *x, const char *kpath, const char *cpath)
{
	size_t len;
	char *pem = pki_read_file(cpath, &len);
	EVP_PKEY *ca_pub = X509_get_pubkey(ca_cert(signing));
	int ok = 0;

	if (pem && (x->cert = pki_cert_parse(pem, len)) && ca_pub && X509_verify(x->cert, ca_pub) == 1 &&
	    (x->key = pki_key_load(kpath, NULL, "the OCSP responder key")) &&
	    X509_check_private_key(x->cert, x->key) == 1)
		ok = 1;
	free(pem);
	EVP_PKEY_free(ca_pub);
	ERR_clear_error();
	return ok;
}

static void responder_set_times(struct responders *rs, struct responder *x)
{
	int64_t nb = pki_asn1_unix(X509_get0_notBefore(x->cert)), na = pki_asn1_unix(X509_get0_notAfter(x->cert));

	/* renewed when less than a third is left, and never used so close to
	 * its end that a response would outlive it */
	x->renew_at = na - (na - nb) / 3;
	if (x->renew_at > na - rs->response_validity)
		x->renew_at = na - rs->response_validity;
}

static struct responder *responder_get(struct responders *rs, struct ca *signing, const char *issuer_id, char *why,
				       size_t whylen)
{
	struct responder *x = NULL;
	char kpath[1200], cpath[1200];
	int64_t now = (int64_t)time(NULL);
	size_t pem_len;
	char *pem;
	int len;

	for (size_t i = 0; i < rs->n; i++)
		if (strcmp(rs->r[i].issuer_id, issuer_id) == 0)
			x = &rs->r[i];
	if (x && x->ca == signing && now < x->renew_at)
		return x;
	if (x && x->ca != signing)
		responder_clear(x); /* the issuer has another CA now: its file is checked again */
	if (!x) {
		if (rs->n == RESPONDERS_MAX) {
			pki_refuse(why, whylen, "too many issuers with OCSP responders");
			return NULL;
		}
		x = &rs->r[rs->n];
		memset(x, 0, sizeof *x);
		snprintf(x->issuer_id, sizeof x->issuer_id, "%s", issuer_id);
	}
	snprintf(kpath, sizeof kpath, "%s/%s.key", rs->dir, issuer_id);
	snprintf(cpath, sizeof cpath, "%s/%s.crt", rs->dir, issuer_id);
	if (!x->cert) {
		if (responder_load(signing, x, kpath, cpath))
			responder_set_times(rs, x);
		else
			responder_clear(x);
	}
	if (!x->cert || now >= x->renew_at) {
		/* first use, or due: a new key and certificate */
		EVP_PKEY *key = pki_key_generate(PKI_ECDSA_P256);
		X509 *cert = key ? responder_make_cert(rs, signing, issuer_id, key) : NULL;

		pem = cert ? pki_cert_pem(cert, &pem_len) : NULL;
		if (!pem || pki_key_save(key, kpath, NULL) != 0 || pki_write_file(cpath, pem, pem_len, 0600) != 0) {
			free(pem);
			EVP_PKEY_free(key);
			X509_free(cert);
			pki_refuse(why, whylen, "cannot make the OCSP responder certificate (see the signer's log)");
			return NULL;
		}
		free(pem);
		if (x->cert) {
			rs->rotations++;
			log_info("OCSP responder of %s renewed", issuer_id);
		} else {
			log_info("OCSP responder of %s made", issuer_id);
		}
		responder_clear(x);
		x->key = key;
		x->cert = cert;
		responder_set_times(rs, x);
	}
	x->ca = signing;
	OPENSSL_free(x->cert_der);
	x->cert_der = NULL;
	if ((len = i2d_X509(x->cert, &x->cert_der)) <= 0) {
		responder_clear(x);
		pki_refuse(why, whylen, "cannot encode the OCSP responder certificate");
		return NULL;
	}
	x->cert_der_len = (size_t)len;
	if (x == &rs->r[rs->n])
		rs->n++;
	return x;
}

int responders_renew_due(struct responders *rs, uint32_t *renewed, uint32_t *held, char *why, size_t whylen)
{
	int64_t now = (int64_t)time(NULL);
	int rc = 0;

	*renewed = 0;
	*held = (uint32_t)rs->n;
	for (size_t i = 0; i < rs->n; i++) {
		struct responder *x = &rs->r[i];

		if (!x->cert || !x->ca || now < x->renew_at)
			continue;
		if (responder_get(rs, x->ca, x->issuer_id, why, whylen))
			(*renewed)++;
		else
			rc = -1;
	}
	return rc;
}

int revoke_ocsp_sign(struct responders *rs, struct ca *signing, const struct ipc_ocsp_sign *m, struct revoke_ocsp *out,
		     char *why, size_t whylen)
{
	struct ocsp_certid id;
	struct responder *x;
	struct ocsp_single single;
	char serial[2 * OCSP_SERIAL_MAX + 1], lwhy[300];
	const uint8_t *sp;
	size_t sl;
	int64_t now = (int64_t)time(NULL);

	memset(out, 0, sizeof *out);
	if (!valid_resource_id(m->issuer_id, 64))
		return pki_refuse(why, whylen, "issuer_id: not a valid id");
	if (ocsp_certid_parse(m->certid.ptr, m->certid.len, &id, why, whylen) != 0)
		return -1;
	if (!ocsp_certid_matches(&id, ca_cert(signing))) {
		pki_refuse(why, whylen, "the CertID names another CA");
		return -3;
	}
	if (m->status > OCSP_STATUS_UNKNOWN ||
	    (m->reason != 0xffffffffu && (m->reason > 10 || m->reason == 7)) ||
	    (m->status == OCSP_STATUS_REVOKED && (m->revoked_at == 0 || (int64_t)m->revoked_at > now + 300)))
		return pki_refuse(why, whylen, "status, revoked_at or reason out of range");
	if (!(x = responder_get(rs, signing, m->issuer_id, why, whylen)))
		return -1;
	single = (struct ocsp_single){
		.certid_der = m->certid.ptr,
		.certid_len = m->certid.len,
		.status = (enum ocsp_status)m->status,
		.revoked_at = (int64_t)m->revoked_at,
		.reason = m->reason == 0xffffffffu ? -1 : (int)m->reason,
		.this_update = now,
		.next_update = now + rs->response_validity,
	};
	if (!ocsp_response_build(&single, m->nonce.len ? m->nonce.ptr : NULL, m->nonce.len, now, x->key,
				 x->cert_der, x->cert_der_len, &out->der, &out->der_len)) {
		pki_log_error("cannot make an OCSP response");
		return pki_refuse(why, whylen, "cannot make the OCSP response (see the signer's log)");
	}
	/* the serial as the store spells it: no leading zero bytes */
	for (sp = id.serial, sl = id.serial_len; sl > 1 && *sp == 0; sp++, sl--)
		;
	hex_encode(sp, sl, serial);
	if (ledger_stage(rs->ledger, "ocsp", m->issuer_id, serial, out->der, out->der_len, lwhy, sizeof lwhy) != 0) {
		OPENSSL_free(out->der);
		out->der = NULL;
		pki_refuse(why, whylen, lwhy);
		return -2;
	}
	out->this_update = single.this_update;
	out->next_update = single.next_update;
	return 0;
}
