/* Benchmark helper for bench/crl.sh: CRLs of many entries built by the
 * signer's CRL code (workers/signer/crl.c).
 *
 *   crl_gen gen N ENTRIES INDEX
 *       N revoked certificates with random positive 128-bit serials,
 *       revoked at random times over the past year, reason keyCompromise:
 *       ENTRIES in the signer's wire form (CRL_ENTRY_WIRE bytes each) and
 *       INDEX, the same ones as an `openssl ca` database (index.txt, 'R'
 *       lines), for the peer.
 *
 *   crl_gen sign CA_KEY CA_CERT ENTRIES OUT
 *       Loads the CA's key and certificate (PEM) and the entries file, then
 *       times crl_entries_parse and crl_build (the signature included) and
 *       writes the DER CRL to OUT. stdout: "timed N PARSE_MS BUILD_MS
 *       TOTAL_MS DER_BYTES".
 *
 * Exit status 0; 1 with a message on stderr; 2 for a usage error. */
#include <openssl/bio.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "crl.h"

#define YEAR_S (365 * 86400)

static void die(const char *msg, const char *arg)
{
	fprintf(stderr, "crl_gen: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
	exit(1);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* index.txt's UTCTime, YYMMDDHHMMSSZ */
static void utc(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	snprintf(out, 32, "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec);
}

static int gen(const char *count, const char *entries_path, const char *index_path)
{
	char *end, expiry[32], revoked[32], serial[40];
	unsigned long long n = strtoull(count, &end, 10);
	int64_t now = (int64_t)time(NULL);
	FILE *entries, *index;

	if (*count == 0 || *end || n == 0 || n > 100000000)
		die("N must be 1..100000000", count);
	entries = fopen(entries_path, "wb");
	index = fopen(index_path, "w");
	if (!entries || !index)
		die("cannot create the output files", NULL);
	utc(now + YEAR_S, expiry);
	for (unsigned long long i = 0; i < n; i++) {
		struct crl_entry e = {.serial_len = 16, .reason = 1};
		uint8_t wire[CRL_ENTRY_WIRE];
		uint32_t r;

		RAND_bytes(e.serial, 16);
		RAND_bytes((uint8_t *)&r, sizeof r);
		if (e.serial[0] == 0)
			e.serial[0] = 1; /* no leading zero byte: 16 bytes of magnitude */
		e.revoked_at = now - 1 - (int64_t)(r % YEAR_S);
		crl_entry_pack(&e, wire);
		for (int k = 0; k < 16; k++)
			sprintf(serial + 2 * k, "%02X", e.serial[k]);
		utc(e.revoked_at, revoked);
		if (fwrite(wire, 1, sizeof wire, entries) != sizeof wire ||
		    fprintf(index, "R\t%s\t%s,keyCompromise\t%s\tunknown\t/CN=x\n", expiry, revoked, serial) < 0)
			die("cannot write", NULL);
	}
	if (fclose(entries) != 0 || fclose(index) != 0)
		die("cannot write", NULL);
	return 0;
}

static void *load_pem(const char *path, int key)
{
	BIO *b = BIO_new_file(path, "r");
	void *v = NULL;

	if (b)
		v = key ? (void *)PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : (void *)PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	if (!v)
		die(key ? "cannot load the CA key" : "cannot load the CA certificate", path);
	return v;
}

static int sign(const char *key_path, const char *cert_path, const char *entries_path, const char *out_path)
{
	EVP_PKEY *key = load_pem(key_path, 1);
	X509 *cert = load_pem(cert_path, 0);
	FILE *f = fopen(entries_path, "rb");
	struct crl_entry *e;
	uint8_t *buf, *der;
	size_t len, n, der_len;
	struct stat st;
	char why[256];
	int64_t t = (int64_t)time(NULL);
	double t0, t1, t2;

	if (!f || fstat(fileno(f), &st) != 0)
		die("cannot read", entries_path);
	len = (size_t)st.st_size;
	n = len / CRL_ENTRY_WIRE;
	buf = malloc(len ? len : 1);
	e = malloc(n ? n * sizeof *e : 1);
	if (!buf || !e)
		die("out of memory", NULL);
	if (fread(buf, 1, len, f) != len)
		die("cannot read", entries_path);
	fclose(f);

	t0 = now_ms();
	if (crl_entries_parse(buf, len, e, why, sizeof why) != 0)
		die("entries refused", why);
	t1 = now_ms();
	if (crl_build(key, cert, e, n, 1, t, t + 7 * 86400, &der, &der_len, why, sizeof why) != 0)
		die("crl_build", why);
	t2 = now_ms();

	f = fopen(out_path, "wb");
	if (!f || fwrite(der, 1, der_len, f) != der_len || fclose(f) != 0)
		die("cannot write", out_path);
	printf("timed %zu %.1f %.1f %.1f %zu\n", n, t1 - t0, t2 - t1, t2 - t0, der_len);
	OPENSSL_free(der);
	free(e);
	free(buf);
	X509_free(cert);
	EVP_PKEY_free(key);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "gen") == 0)
		return gen(argv[2], argv[3], argv[4]);
	if (argc == 6 && strcmp(argv[1], "sign") == 0)
		return sign(argv[2], argv[3], argv[4], argv[5]);
	fprintf(stderr, "usage: crl_gen gen N ENTRIES INDEX\n       crl_gen sign CA_KEY CA_CERT ENTRIES OUT\n");
	return 2;
}
