/* See discovery.h. */
#include "discovery.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/base64.h>
#include <openssl/bio.h>
#include <openssl/bytestring.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "discovery_report.h" /* the report's bounds, shared with the api */
#include "util.h"

/* what a scan may be asked for */
#define FILE_SIZE_LIMIT (64u << 20)
#define DEPTH_LIMIT 64
/* a path being walked; deeper ones are not followed */
#define WALK_PATH_MAX 4096

/* ---- text ---- */

/* The length of the UTF-8 sequence at s[0..len), or 0 when there is none */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
	uint32_t cp;

	return utf8_decode(s, len, &cp);
}

/* UTF-8 without control characters: what the api takes as a path or a name */
static bool printable_utf8(const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t n;

	for (size_t i = 0; i < len; i += n)
		if (s[i] < 0x20 || s[i] == 0x7f || !(n = utf8_seq(s + i, len - i)))
			return false;
	return true;
}

/*
 * Appends "<path>: <why>" to errors: the path's unprintable bytes as \xNN,
 * the whole cut to DISCOVERY_ERROR_MAX bytes on a character boundary (why is our own
 * ASCII text). Once there are DISCOVERY_ERRORS_MAX entries the last one counts what
 * did not fit. -1: out of memory.
 */
static int add_error(json_t *errors, const char *path, const char *why)
{
	char out[DISCOVERY_ERROR_MAX + 1];
	const unsigned char *s = (const unsigned char *)path;
	size_t o = 0, len = strlen(path), n, wl = strlen(why);

	if (json_array_size(errors) >= DISCOVERY_ERRORS_MAX) {
		long long more = 2; /* the entry replaced and this one */
		const char *last = json_string_value(json_array_get(errors, DISCOVERY_ERRORS_MAX - 1));

		if (last && sscanf(last, "... and %lld more errors", &more) == 1)
			more++;
		snprintf(out, sizeof out, "... and %lld more errors", more);
		return json_array_set_new(errors, DISCOVERY_ERRORS_MAX - 1, json_string(out));
	}
	if (wl > DISCOVERY_ERROR_MAX / 2)
		wl = DISCOVERY_ERROR_MAX / 2;
	for (size_t i = 0; i < len; i += n) {
		n = s[i] < 0x20 || s[i] == 0x7f ? 0 : utf8_seq(s + i, len - i);
		if (o + (n ? n : 4) + 2 + wl > DISCOVERY_ERROR_MAX)
			break;
		if (n) {
			memcpy(out + o, s + i, n);
			o += n;
		} else {
			snprintf(out + o, sizeof out - o, "\\x%02x", s[i]);
			o += 4;
			n = 1;
		}
	}
	memcpy(out + o, ": ", 2);
	memcpy(out + o + 2, why, wl);
	out[o + 2 + wl] = '\0';
	return json_array_append_new(errors, json_string(out));
}

static void lower_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

/* ---- one certificate ---- */

static bool two_digits(const unsigned char *s, int *out)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return false;
	*out = (s[0] - '0') * 10 + (s[1] - '0');
	return true;
}

/* An X.509 Time as RFC 5280 has it (UTCTime YYMMDDHHMMSSZ,
 * GeneralizedTime YYYYMMDDHHMMSSZ) in RFC 3339, UTC; false otherwise. */
static bool rfc3339_of(const ASN1_TIME *t, char out[21])
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	const unsigned char *s = ASN1_STRING_get0_data(t);
	int len = ASN1_STRING_length(t), year, cc, mon, day, h, m, sec;

	if (ASN1_STRING_type(t) == V_ASN1_UTCTIME && len == 13) {
		if (!two_digits(s, &year))
			return false;
		year += year < 50 ? 2000 : 1900;
		s += 2;
	} else if (ASN1_STRING_type(t) == V_ASN1_GENERALIZEDTIME && len == 15) {
		if (!two_digits(s, &cc) || !two_digits(s + 2, &year))
			return false;
		year += cc * 100;
		s += 4;
	} else {
		return false;
	}
	if (!two_digits(s, &mon) || !two_digits(s + 2, &day) || !two_digits(s + 4, &h) || !two_digits(s + 6, &m) ||
	    !two_digits(s + 8, &sec) || s[10] != 'Z')
		return false;
	if (year < 1 || mon < 1 || mon > 12 || day < 1 || h > 23 || m > 59 || sec > 59 ||
	    day > mdays[mon - 1] + (mon == 2 && year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)))
		return false;
	snprintf(out, 21, "%04d-%02d-%02dT%02d:%02d:%02dZ", year, mon, day, h, m, sec);
	return true;
}

/* The subject's last CN as UTF-8, control characters as '?' ("" without
 * one); NULL when it is not text or too long (why says which). */
static json_t *common_name_of(X509 *x, const char **why)
{
	const X509_NAME *name = X509_get_subject_name(x);
	unsigned char *utf8 = NULL;
	int i = -1, last = -1, n;
	json_t *out;

	while ((i = X509_NAME_get_index_by_NID(name, NID_commonName, i)) >= 0)
		last = i;
	if (last < 0)
		return json_string("");
	n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, last)));
	if (n < 0 || n > DISCOVERY_CN_MAX) {
		OPENSSL_free(utf8);
		*why = n < 0 ? "the common name is not text" : "the common name is longer than 1024 bytes";
		return NULL;
	}
	for (int k = 0; k < n; k++)
		if (utf8[k] < 0x20 || utf8[k] == 0x7f)
			utf8[k] = '?';
	out = printable_utf8((const char *)utf8, (size_t)n) ? json_stringn((const char *)utf8, (size_t)n) : NULL;
	OPENSSL_free(utf8);
	if (!out)
		*why = "the common name is not text";
	return out;
}

/* A name in RFC 2253 form: escaping control characters and bytes above
 * 0x7f keeps it one line of ASCII. */
static json_t *dn_of(const X509_NAME *name, const char **why)
{
	BIO *b = BIO_new(BIO_s_mem());
	const uint8_t *text;
	size_t len;
	json_t *out = NULL;

	if (b && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0 && BIO_mem_contents(b, &text, &len)) {
		if (len > DISCOVERY_DN_MAX)
			*why = "a distinguished name is longer than 4096 bytes";
		else if (!printable_utf8((const char *)text, len) || !(out = json_stringn((const char *)text, len)))
			*why = "a distinguished name is not text";
	} else {
		*why = "a distinguished name cannot be printed";
	}
	BIO_free(b);
	return out;
}

/* An IA5String name (DNS, e-mail, URI) as it is, when it is text */
static json_t *ia5_name(const ASN1_STRING *s)
{
	const char *p = (const char *)ASN1_STRING_get0_data(s);
	int n = ASN1_STRING_length(s);

	if (n < 1 || n > DISCOVERY_SAN_MAX || !printable_utf8(p, (size_t)n))
		return NULL;
	return json_stringn(p, (size_t)n);
}

/* The subject alternative names as text: DNS names, IP addresses, e-mail
 * addresses and URIs; other kinds, and names that are not text, are left
 * out. NULL (why) past DISCOVERY_SANS_MAX names. */
static json_t *sans_of(X509 *x, const char **why)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	json_t *out = json_array(), *v;
	char ip[INET6_ADDRSTRLEN];

	for (size_t i = 0; out && gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		v = NULL;
		if (g->type == GEN_DNS || g->type == GEN_EMAIL || g->type == GEN_URI) {
			v = ia5_name(g->d.ia5);
		} else if (g->type == GEN_IPADD) {
			int n = ASN1_STRING_length(g->d.ip);
			const unsigned char *a = ASN1_STRING_get0_data(g->d.ip);

			if ((n == 4 && inet_ntop(AF_INET, a, ip, sizeof ip)) ||
			    (n == 16 && inet_ntop(AF_INET6, a, ip, sizeof ip)))
				v = json_string(ip);
		}
		if (!v)
			continue;
		if (json_array_size(out) == DISCOVERY_SANS_MAX) {
			json_decref(v);
			json_decref(out);
			out = NULL;
			*why = "more than 1000 subject alternative names";
			break;
		}
		json_array_append_new(out, v);
	}
	GENERAL_NAMES_free(gens);
	return out;
}

/* The serial's magnitude in lower-case hex, without leading zeros ("0") */
static json_t *serial_of(X509 *x, const char **why)
{
	const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
	const uint8_t *p = ASN1_STRING_get0_data(sn);
	size_t n = (size_t)ASN1_STRING_length(sn);
	char hex[DISCOVERY_SERIAL_HEX_MAX + 3];
	json_t *out;

	while (n > 0 && *p == 0) {
		p++;
		n--;
	}
	if (n * 2 > DISCOVERY_SERIAL_HEX_MAX + 1) {
		*why = "the serial number is longer than 64 bytes";
		return NULL;
	}
	lower_hex(p, n, hex);
	out = json_string(n == 0 ? "0" : hex[0] == '0' ? hex + 1 : hex);
	return out;
}

/* RSA, ECDSA, Ed25519 or Other, and the key's size in bits (Ed25519: 256,
 * as the profiles count it) */
static void key_of(X509 *x, const char **alg, int *bits)
{
	EVP_PKEY *k = X509_get_pubkey(x);

	*alg = "Other";
	*bits = 0;
	if (!k)
		return;
	switch (EVP_PKEY_id(k)) {
	case EVP_PKEY_RSA: *alg = "RSA"; break;
	case EVP_PKEY_EC: *alg = "ECDSA"; break;
	case EVP_PKEY_ED25519: *alg = "Ed25519"; break;
	}
	*bits = EVP_PKEY_id(k) == EVP_PKEY_ED25519 ? 256 : EVP_PKEY_bits(k);
	EVP_PKEY_free(k);
}

/* That certificate alone as PEM, 64 base64 characters a line */
static json_t *pem_of(const uint8_t *der, size_t len, const char **why)
{
	static const char head[] = "-----BEGIN CERTIFICATE-----\n", foot[] = "-----END CERTIFICATE-----\n";
	size_t b64len, o;
	uint8_t *b64 = NULL;
	char *pem = NULL;
	json_t *out = NULL;

	if (!EVP_EncodedLength(&b64len, len) || !(b64 = malloc(b64len)) ||
	    !(pem = malloc(sizeof head + b64len + b64len / 64 + 1 + sizeof foot))) {
		*why = "out of memory";
		goto done;
	}
	b64len = EVP_EncodeBlock(b64, der, len);
	memcpy(pem, head, sizeof head - 1);
	o = sizeof head - 1;
	for (size_t i = 0; i < b64len; i += 64) {
		size_t n = b64len - i < 64 ? b64len - i : 64;

		memcpy(pem + o, b64 + i, n);
		o += n;
		pem[o++] = '\n';
	}
	memcpy(pem + o, foot, sizeof foot);
	o += sizeof foot - 1;
	if (o > DISCOVERY_PEM_MAX)
		*why = "the certificate is larger than a report takes (32 KiB of PEM)";
	else if (!(out = json_stringn(pem, o)))
		*why = "out of memory";
done:
	free(b64);
	free(pem);
	return out;
}

enum outcome { TAKEN, SKIPPED, NO_MEMORY };

/*
 * The report's object of one DER certificate, appended to certs unless
 * the same fingerprint came from this path already (the entries of this
 * path are the last ones). SKIPPED: it is not one certificate, or it is
 * too large to report (*why).
 */
static enum outcome take_certificate(const uint8_t *der, size_t len, const char *path, const char *format,
				     json_t *certs, const char **why)
{
	const uint8_t *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	uint8_t digest[SHA256_DIGEST_LENGTH];
	char fp[2 * SHA256_DIGEST_LENGTH + 1], nb[21], na[21];
	const char *alg;
	json_t *o = NULL, *cn, *sans, *serial, *issuer, *subject, *pem;
	enum outcome r = SKIPPED;
	char *text;
	int bits;

	*why = "not a certificate";
	if (!x || p != der + len) {
		X509_free(x);
		return SKIPPED;
	}
	SHA256(der, len, digest);
	lower_hex(digest, sizeof digest, fp);
	for (size_t i = json_array_size(certs); i-- > 0;) {
		json_t *e = json_array_get(certs, i);

		if (strcmp(json_string_value(json_object_get(e, "source_path")), path) != 0)
			break;
		if (strcmp(json_string_value(json_object_get(e, "fingerprint_sha256")), fp) == 0) {
			X509_free(x);
			return TAKEN; /* the same certificate twice in one file */
		}
	}
	if (!rfc3339_of(X509_get0_notBefore(x), nb) || !rfc3339_of(X509_get0_notAfter(x), na)) {
		*why = "the validity dates are malformed";
		X509_free(x);
		return SKIPPED;
	}
	key_of(x, &alg, &bits);
	/* each of these says why when it fails for another reason than memory */
	*why = "out of memory";
	cn = common_name_of(x, why);
	sans = cn ? sans_of(x, why) : NULL;
	serial = sans ? serial_of(x, why) : NULL;
	issuer = serial ? dn_of(X509_get_issuer_name(x), why) : NULL;
	subject = issuer ? dn_of(X509_get_subject_name(x), why) : NULL;
	pem = subject ? pem_of(der, len, why) : NULL;
	if (pem)
		o = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:s, s:s, s:s, s:i, s:b, s:o, s:s, s:s}",
			      "fingerprint_sha256", fp, "common_name", cn, "sans", sans, "serial_number", serial,
			      "issuer_dn", issuer, "subject_dn", subject, "not_before", nb, "not_after", na,
			      "key_algorithm", alg, "key_size", bits, "is_ca",
			      (X509_get_extension_flags(x) & EXFLAG_CA) != 0, "pem_data", pem, "source_path", path,
			      "source_format", format);
	else {
		json_decref(cn);
		json_decref(sans);
		json_decref(serial);
		json_decref(issuer);
		json_decref(subject);
	}
	X509_free(x);
	if (!o)
		return pem || strcmp(*why, "out of memory") == 0 ? NO_MEMORY : SKIPPED;
	text = json_dumps(o, JSON_COMPACT);
	if (!text) {
		r = NO_MEMORY;
	} else if (strlen(text) > DISCOVERY_CERT_JSON_MAX) {
		*why = "the certificate's fields are larger than a report takes (48 KiB)";
	} else {
		r = json_array_append(certs, o) == 0 ? TAKEN : NO_MEMORY;
	}
	free(text);
	json_decref(o);
	return r;
}

/* ---- one file ---- */

static const uint8_t *find(const uint8_t *s, const uint8_t *end, const char *what)
{
	size_t n = strlen(what);

	for (; (size_t)(end - s) >= n; s++) {
		s = memchr(s, what[0], (size_t)(end - s) - n + 1);
		if (!s)
			return NULL;
		if (memcmp(s, what, n) == 0)
			return s;
	}
	return NULL;
}

/* The next "-----BEGIN LABEL-----" at the start of a line in [s, end):
 * its start, the label (*label, *label_len) and the end of its line. */
static const uint8_t *next_begin(const uint8_t *s, const uint8_t *start, const uint8_t *end, const uint8_t **label,
				 size_t *label_len, const uint8_t **body)
{
	while ((s = find(s, end, "-----BEGIN "))) {
		const uint8_t *l = s + 11, *e = l;

		while (e < end && *e != '\n' && *e != '-' && e - l <= 64)
			e++;
		if ((s == start || s[-1] == '\n') && e - l > 0 && e - l <= 64 && (size_t)(end - e) >= 5 &&
		    memcmp(e, "-----", 5) == 0) {
			*label = l;
			*label_len = (size_t)(e - l);
			e += 5;
			while (e < end && (*e == '\r' || *e == ' ' || *e == '\t'))
				e++;
			if (e == end || *e == '\n') {
				*body = e < end ? e + 1 : e;
				return s;
			}
		}
		s += 11;
	}
	return NULL;
}

/* "-----END LABEL-----" at the start of a line in [s, end) */
static const uint8_t *find_end(const uint8_t *s, const uint8_t *end, const uint8_t *label, size_t label_len,
			       const uint8_t **after)
{
	const uint8_t *start = s;

	while ((s = find(s, end, "-----END "))) {
		const uint8_t *l = s + 9;

		if ((s == start || s[-1] == '\n') && (size_t)(end - l) >= label_len + 5 &&
		    memcmp(l, label, label_len) == 0 && memcmp(l + label_len, "-----", 5) == 0) {
			*after = l + label_len + 5;
			return s;
		}
		s += 9;
	}
	return NULL;
}

/* A PEM block's base64 text (whitespace ignored) decoded; NULL when it is
 * not base64 (headers, stray characters). */
static uint8_t *decode_block(const uint8_t *s, const uint8_t *end, size_t *len)
{
	size_t n = 0, cap;
	uint8_t *text = malloc((size_t)(end - s) + 1), *out = NULL;

	if (!text)
		return NULL;
	for (; s < end; s++)
		if (*s != '\n' && *s != '\r' && *s != ' ' && *s != '\t')
			text[n++] = *s;
	if (n > 0 && EVP_DecodedLength(&cap, n) && (out = malloc(cap ? cap : 1)) &&
	    !EVP_DecodeBase64(out, len, cap, text, n)) {
		free(out);
		out = NULL;
	}
	free(text);
	return out;
}

static bool certificate_label(const uint8_t *l, size_t n)
{
	return (n == 11 && memcmp(l, "CERTIFICATE", 11) == 0) || (n == 16 && memcmp(l, "X509 CERTIFICATE", 16) == 0);
}

int discovery_parse_file(const uint8_t *buf, size_t len, const char *path, json_t *certificates, json_t *errors,
			 size_t max_certs)
{
	const uint8_t *end, *s = buf, *label, *body, *stop, *after;
	size_t label_len, before = json_array_size(certificates), der_len;
	unsigned block = 0;
	bool pem = false;
	const char *why;
	char msg[96];
	uint8_t *der;

	if (!buf || len == 0)
		return 0;
	end = buf + len;

	while (json_array_size(certificates) < max_certs && (s = next_begin(s, buf, end, &label, &label_len, &body))) {
		pem = true;
		stop = find_end(body, end, label, label_len, &after);
		if (!certificate_label(label, label_len)) {
			/* keys and anything else: never decoded */
			if (!stop)
				break;
			s = after;
			continue;
		}
		block++;
		if (!stop) {
			snprintf(msg, sizeof msg, "certificate block %u has no END line", block);
			return add_error(errors, path, msg) == 0 ? (int)(json_array_size(certificates) - before) : -1;
		}
		s = after;
		if (!(der = decode_block(body, stop, &der_len))) {
			snprintf(msg, sizeof msg, "certificate block %u is not base64", block);
			if (add_error(errors, path, msg) != 0)
				return -1;
			continue;
		}
		switch (take_certificate(der, der_len, path, "PEM", certificates, &why)) {
		case TAKEN: break;
		case NO_MEMORY: free(der); return -1;
		case SKIPPED:
			snprintf(msg, sizeof msg, "certificate block %u: %s", block, why);
			if (add_error(errors, path, msg) != 0) {
				free(der);
				return -1;
			}
			break;
		}
		free(der);
	}
	/* no PEM at all: perhaps one DER certificate (a SEQUENCE), else nothing */
	if (!pem && len > 0 && buf[0] == 0x30 && max_certs > json_array_size(certificates)) {
		CBS in, cert;

		CBS_init(&in, buf, len);
		if (CBS_get_asn1(&in, &cert, CBS_ASN1_SEQUENCE) && CBS_len(&in) == 0) {
			switch (take_certificate(buf, len, path, "DER", certificates, &why)) {
			case TAKEN: break;
			case NO_MEMORY: return -1;
			case SKIPPED:
				/* a DER SEQUENCE that is no certificate is not our business;
				 * one that is and cannot be reported is */
				if (strcmp(why, "not a certificate") != 0 && add_error(errors, path, why) != 0)
					return -1;
				break;
			}
		}
	}
	return (int)(json_array_size(certificates) - before);
}

/* ---- the walk ---- */

struct dir_id {
	dev_t dev;
	ino_t ino;
};

struct scan {
	const struct discovery_limits *lim;
	json_t *certs, *errors;
	size_t files_read;
	bool stopped, oom;
	struct dir_id *seen; /* directories walked: each once, whatever path leads there */
	size_t nseen, capseen;
	uint8_t *buf; /* max_file_size + 1 */
	char path[WALK_PATH_MAX + 1];
};

static void note(struct scan *s, const char *path, const char *why)
{
	if (add_error(s->errors, path, why) != 0)
		s->oom = true;
}

static void stop_scan(struct scan *s, const char *why)
{
	if (!s->stopped)
		note(s, s->path, why);
	s->stopped = true;
}

/* false when fd's directory was walked already (or memory ran out) */
static bool first_visit(struct scan *s, int fd)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return false;
	for (size_t i = 0; i < s->nseen; i++)
		if (s->seen[i].dev == st.st_dev && s->seen[i].ino == st.st_ino)
			return false;
	if (s->nseen == s->capseen) {
		size_t cap = s->capseen ? s->capseen * 2 : 64;
		struct dir_id *n = realloc(s->seen, cap * sizeof *n);

		if (!n) {
			s->oom = true;
			return false;
		}
		s->seen = n;
		s->capseen = cap;
	}
	s->seen[s->nseen++] = (struct dir_id){st.st_dev, st.st_ino};
	return true;
}

static void read_file(struct scan *s, int dfd, const char *name, bool follow)
{
	const struct discovery_limits *lim = s->lim;
	size_t got = 0, plen = strlen(s->path);
	struct stat st;
	char msg[96];
	ssize_t n;
	int fd;

	if (s->files_read >= lim->max_files) {
		snprintf(msg, sizeof msg, "scan stopped here: max_files (%zu) files read", lim->max_files);
		stop_scan(s, msg);
		return;
	}
	/* O_NONBLOCK: a FIFO put in place of the file must not hang the scan */
	fd = openat(dfd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
	if (fd < 0) {
		note(s, s->path, strerror(errno));
		return;
	}
	s->files_read++;
	if (fstat(fd, &st) != 0) {
		note(s, s->path, strerror(errno));
		close(fd);
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return;
	}
	while (got <= lim->max_file_size && (n = read(fd, s->buf + got, lim->max_file_size + 1 - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			note(s, s->path, strerror(errno));
			close(fd);
			return;
		}
		got += (size_t)n;
	}
	close(fd);
	if (got > lim->max_file_size) {
		snprintf(msg, sizeof msg, "larger than max_file_size (%zu bytes): not read", lim->max_file_size);
		note(s, s->path, msg);
		return;
	}
	if (plen <= DISCOVERY_PATH_MAX && printable_utf8(s->path, plen)) {
		if (discovery_parse_file(s->buf, got, s->path, s->certs, s->errors, lim->max_certs) < 0)
			s->oom = true;
	} else {
		/* certificates at a path the report cannot carry: counted, not sent */
		json_t *certs = json_array(), *errors = json_array();
		int found = certs && errors ? discovery_parse_file(s->buf, got, "/", certs, errors, SIZE_MAX) : -1;

		if (found > 0) {
			snprintf(msg, sizeof msg,
				 "%d certificates not reported: the path is not UTF-8 text or is longer than %d bytes",
				 found, DISCOVERY_PATH_MAX);
			note(s, s->path, msg);
		}
		s->oom |= found < 0;
		json_decref(certs);
		json_decref(errors);
	}
	if (json_array_size(s->certs) >= lim->max_certs) {
		snprintf(msg, sizeof msg, "scan stopped after this file: max_certs (%zu) certificates found",
			 lim->max_certs);
		stop_scan(s, msg);
	}
}

/* Walks the directory open as fd (taken over) whose path is s->path */
static void walk(struct scan *s, int fd, unsigned depth)
{
	size_t plen = strlen(s->path);
	DIR *d = fdopendir(fd);
	struct dirent *e;
	struct stat st;

	if (!d) {
		note(s, s->path, strerror(errno));
		close(fd);
		return;
	}
	while (!s->stopped && !s->oom) {
		errno = 0;
		if (!(e = readdir(d))) {
			if (errno)
				note(s, s->path, strerror(errno));
			break;
		}
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (plen + 1 + strlen(e->d_name) > WALK_PATH_MAX) {
			note(s, s->path, "a name below is too long to follow");
			continue;
		}
		snprintf(s->path + plen, sizeof s->path - plen, "%s%s", plen == 1 ? "" : "/", e->d_name);
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno != ENOENT) /* gone since readdir: nothing to say */
				note(s, s->path, strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			int sub;

			if (depth < s->lim->max_depth) {
				sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (sub < 0)
					note(s, s->path, strerror(errno));
				else if (first_visit(s, sub))
					walk(s, sub, depth + 1);
				else
					close(sub);
			}
		} else if (S_ISLNK(st.st_mode)) {
			/* a link to a file is read; to a directory never followed;
			 * dangling links are common and not worth an entry */
			if (fstatat(dirfd(d), e->d_name, &st, 0) == 0 && S_ISREG(st.st_mode))
				read_file(s, dirfd(d), e->d_name, true);
		} else if (S_ISREG(st.st_mode)) {
			read_file(s, dirfd(d), e->d_name, false);
		}
		s->path[plen] = '\0';
	}
	s->path[plen] = '\0';
	closedir(d);
}

__attribute__((format(printf, 3, 4))) static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* dirs[i] as an absolute path without trailing slashes, into out */
static bool absolute(const char *dir, char *out, size_t cap, char *why, size_t whylen)
{
	char cwd[WALK_PATH_MAX + 1];
	size_t n;

	if (!dir || !*dir) {
		set_why(why, whylen, "discovery: an empty directory name");
		return false;
	}
	if (dir[0] != '/' && !getcwd(cwd, sizeof cwd)) {
		set_why(why, whylen, "discovery: the current directory: %s", strerror(errno));
		return false;
	}
	if ((size_t)snprintf(out, cap, "%s%s%s", dir[0] == '/' ? "" : cwd,
			     dir[0] == '/' || strcmp(cwd, "/") == 0 ? "" : "/", dir) >= cap) {
		set_why(why, whylen, "discovery: a directory path is longer than 1024 bytes: %.200s", dir);
		return false;
	}
	n = strlen(out);
	while (n > 1 && out[n - 1] == '/')
		out[--n] = '\0';
	if (!printable_utf8(out, n)) {
		set_why(why, whylen, "discovery: a directory path is not UTF-8 text");
		return false;
	}
	return true;
}

json_t *discovery_scan(const char *const *dirs, size_t ndirs, const struct discovery_limits *lim, char *why,
		       size_t whylen)
{
	struct scan s = {.lim = lim};
	struct timespec t0, t1;
	json_t *directories = json_array(), *out = NULL;
	char dir[DISCOVERY_DIR_MAX + 1];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!lim || (ndirs && !dirs)) {
		set_why(why, whylen, "discovery: no directories or limits given");
		goto done;
	}
	if (ndirs > DISCOVERY_DIRS_MAX) {
		set_why(why, whylen, "discovery: at most 32 directories");
		goto done;
	}
	if (lim->max_file_size < 1 || lim->max_file_size > FILE_SIZE_LIMIT || lim->max_certs > DISCOVERY_CERTS_MAX ||
	    lim->max_depth > DEPTH_LIMIT) {
		set_why(why, whylen,
			"discovery: limits out of range (max_file_size 1 byte to 64 MiB, max_certs at most 5000, "
			"max_depth at most 64)");
		goto done;
	}
	s.certs = json_array();
	s.errors = json_array();
	s.buf = malloc(lim->max_file_size + 1);
	if (!directories || !s.certs || !s.errors || !s.buf) {
		set_why(why, whylen, "discovery: out of memory");
		goto done;
	}
	for (size_t i = 0; i < ndirs; i++) {
		if (!absolute(dirs[i], dir, sizeof dir, why, whylen))
			goto done;
		json_array_append_new(directories, json_string(dir));
	}
	for (size_t i = 0; i < ndirs && !s.stopped && !s.oom; i++) {
		int fd;

		snprintf(s.path, sizeof s.path, "%s", json_string_value(json_array_get(directories, i)));
		/* the directory named may itself be a link (the operator chose it) */
		fd = open(s.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			note(&s, s.path, strerror(errno));
		else if (first_visit(&s, fd))
			walk(&s, fd, 0);
		else
			close(fd);
	}
	if (s.oom) {
		set_why(why, whylen, "discovery: out of memory");
		goto done;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	out = json_pack("{s:O, s:O, s:O, s:I}", "directories", directories, "certificates", s.certs, "errors",
			s.errors, "scan_duration_ms",
			(json_int_t)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
	if (!out)
		set_why(why, whylen, "discovery: out of memory");
done:
	json_decref(directories);
	json_decref(s.certs);
	json_decref(s.errors);
	free(s.seen);
	free(s.buf);
	return out;
}
