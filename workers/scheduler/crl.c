/* See crl.h. */
#include "crl.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/base64.h>
#include <openssl/mem.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loops.h"
#include "store_client.h"
#include "util.h"

#define DUE_MAX 64          /* issuers taken from one crl.due */
#define PAGE_ENTRIES 20000  /* crl.revoked page: ~1 MB of JSON */
#define PART_BYTES 45000    /* crl_parts.data; 60,000 characters of base64 per call */
#define WIRE 32             /* workers/signer/crl.h CRL_ENTRY_WIRE */
#define SIGN_TIMEOUT_MS 120000
#define CRL_MAX_BYTES (256u << 20)

static struct {
	struct worker *w;
	struct loop *loop;
	uint64_t validity_s, refresh_s;
	uint64_t published; /* CRLs published by the run in progress */
	/* the run in progress: issuers left, then the one being signed */
	char due[DUE_MAX][65];
	size_t ndue, next;
	char issuer[65], intermediate[65];
	uint64_t number, revocations;
	int64_t this_update, next_update;
	int memfd;
	size_t entries;
	char after[65];
	uint8_t *der;
	size_t der_len, part, parts;
	char sha256[65];
	uint64_t t0_ms;
	/* after a failure the loop waits, doubling up to a minute */
	uint64_t pause_until_ms, pause_ms;
	/* metrics */
	uint64_t generated, failed, last_ms, last_entries, last_bytes;
} run = {.memfd = -1};

static void next_issuer(void);

static void run_reset(void)
{
	if (run.memfd >= 0)
		close(run.memfd);
	run.memfd = -1;
	if (run.der)
		munmap(run.der, run.der_len);
	run.der = NULL;
	run.der_len = run.entries = run.part = run.parts = 0;
	run.after[0] = '\0';
}

static void on_released(const struct store_outcome *o, void *arg)
{
	(void)o;
}

static void failed(const char *step, const char *why)
{
	const char *p[1] = {run.issuer};

	log_warn("CRL of issuer %s not published (%s): %s", run.issuer, step, why);
	/* the lease back, so the next check (here or on another node) can try
	 * again; when even this fails, the lease ends by itself */
	if (run.number)
		store_call(run.w, "crl.release", p, 1, on_released, NULL);
	run.number = 0;
	run.failed++;
	run.pause_ms = run.pause_ms ? (run.pause_ms * 2 > 60000 ? 60000 : run.pause_ms * 2) : 1000;
	run.pause_until_ms = now_ms() + run.pause_ms;
	run_reset();
	/* the rest of this run waits for the next check */
	loop_done(run.loop, run.published, "CRL(s) published", why);
}

/* ---- 5. publish ---- */

static void on_published(const struct store_outcome *o, void *arg)
{
	json_t *v, *state;

	if (o->error) {
		failed("crl.publish", o->message);
		return;
	}
	v = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	state = json_object_get(v, "state");
	if (!json_is_string(state) || strcmp(json_string_value(state), "superseded") == 0) {
		/* another node published a higher number meanwhile: nothing lost */
		log_info("CRL %llu of issuer %s: a newer one is served already",
			 (unsigned long long)run.number, run.issuer);
	} else if (strcmp(json_string_value(state), "published") != 0) {
		json_decref(v);
		failed("crl.publish", "the stored parts do not add up");
		return;
	} else {
		run.generated++;
		run.published++;
		run.last_ms = now_ms() - run.t0_ms;
		run.last_entries = run.entries;
		run.last_bytes = run.der_len;
		log_info("CRL %llu of issuer %s published: %zu entries, %zu bytes, %llu ms",
			 (unsigned long long)run.number, run.issuer, run.entries, run.der_len,
			 (unsigned long long)run.last_ms);
	}
	json_decref(v);
	run.pause_ms = 0;
	run.number = 0;
	run_reset();
	next_issuer();
}

static void publish(void)
{
	char number[24], revocations[24], entries[24], tu[24], nu[24], size[24], parts[24];
	const char *p[9] = {run.issuer, number, revocations, entries, tu, nu, size, run.sha256, parts};

	snprintf(number, sizeof number, "%llu", (unsigned long long)run.number);
	snprintf(revocations, sizeof revocations, "%llu", (unsigned long long)run.revocations);
	snprintf(entries, sizeof entries, "%zu", run.entries);
	snprintf(tu, sizeof tu, "%lld", (long long)run.this_update);
	snprintf(nu, sizeof nu, "%lld", (long long)run.next_update);
	snprintf(size, sizeof size, "%zu", run.der_len);
	snprintf(parts, sizeof parts, "%zu", run.parts);
	if (store_call(run.w, "crl.publish", p, 9, on_published, NULL) != 0)
		failed("crl.publish", "the store is unavailable");
}

/* ---- 4. the DER into the store, part by part ---- */

static void put_part(void);

static void on_part(const struct store_outcome *o, void *arg)
{
	if (o->error) {
		failed("crl.part_put", o->message);
		return;
	}
	if (++run.part < run.parts)
		put_part();
	else
		publish();
}

static void put_part(void)
{
	size_t off = run.part * PART_BYTES, n = run.der_len - off < PART_BYTES ? run.der_len - off : PART_BYTES;
	char number[24], index[24], b64[(PART_BYTES + 2) / 3 * 4 + 1];
	const char *p[4] = {run.issuer, number, index, b64};

	snprintf(number, sizeof number, "%llu", (unsigned long long)run.number);
	snprintf(index, sizeof index, "%zu", run.part);
	EVP_EncodeBlock((uint8_t *)b64, run.der + off, n);
	if (store_call(run.w, "crl.part_put", p, 4, on_part, NULL) != 0)
		failed("crl.part_put", "the store is unavailable");
}

/* ---- 3. the signer signs ---- */

static void on_signed(int status, struct ipc_msg *m, int fd, void *arg)
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	char hex[65];
	void *map;
	size_t len;
	uint64_t off;

	if (fd >= 0)
		close(fd);
	if (status != 0 || !m || m->type != IPC_T_CRL_SIGNED) {
		failed("CRL_SIGN", status == 0 && m && m->type == IPC_T_ERROR ? m->u.error.message
									   : "the signer is unavailable");
		return;
	}
	off = m->u.crl_signed.der_offset;
	len = (size_t)m->u.crl_signed.der_len;
	if (len == 0 || len > CRL_MAX_BYTES || off % 4096 || off < run.entries * WIRE) {
		failed("CRL_SIGN", "the signer's answer does not fit the request");
		return;
	}
	map = mmap(NULL, len, PROT_READ, MAP_SHARED, run.memfd, (off_t)off);
	if (map == MAP_FAILED) {
		failed("CRL_SIGN", strerror(errno));
		return;
	}
	run.der = map;
	run.der_len = len;
	SHA256(run.der, len, md);
	hex_encode(md, sizeof md, hex);
	if (strcmp(hex, m->u.crl_signed.sha256) != 0) {
		failed("CRL_SIGN", "the CRL in the memfd is not what the signer signed");
		return;
	}
	snprintf(run.sha256, sizeof run.sha256, "%s", hex);
	run.next_update = (int64_t)m->u.crl_signed.next_update;
	run.parts = (len + PART_BYTES - 1) / PART_BYTES;
	run.part = 0;
	put_part();
}

static void sign(void)
{
	struct ipc_msg m = {.type = IPC_T_CRL_SIGN};
	struct ipc_channel *ch = worker_peer(run.w, IPC_ROLE_SIGNER);
	int fd = dup(run.memfd); /* the channel closes what it passes */

	m.u.crl_sign.issuer_id = run.issuer;
	m.u.crl_sign.crl_number = run.number;
	m.u.crl_sign.this_update = (uint64_t)run.this_update;
	m.u.crl_sign.next_update = (uint64_t)run.next_update;
	m.u.crl_sign.entries = (uint32_t)run.entries;
	m.u.crl_sign.intermediate_id = run.intermediate;
	if (fd < 0 || !ch || ipc_request(ch, &m, fd, SIGN_TIMEOUT_MS, on_signed, NULL) != 0) {
		if (fd >= 0 && !ch)
			close(fd);
		failed("CRL_SIGN", "the signer is unavailable");
	}
}

/* ---- 2. the revoked serial numbers, a page at a time ---- */

static int pack(json_t *e, uint8_t out[WIRE])
{
	const char *s = json_string_value(json_array_get(e, 0));
	json_int_t t = json_integer_value(json_array_get(e, 1)), reason = json_integer_value(json_array_get(e, 2));
	size_t n = s ? strlen(s) : 0, len = (n + 1) / 2;
	uint8_t bytes[20];

	if (!json_is_array(e) || json_array_size(e) != 3 || n == 0 || len > 20 || t < 0)
		return -1;
	/* lower-case hex as the store keeps it; an odd length has a leading nibble */
	if (n % 2) {
		char padded[42] = "0";

		snprintf(padded + 1, sizeof padded - 1, "%s", s);
		if (hex_decode(padded, bytes, len) != 0)
			return -1;
	} else if (hex_decode(s, bytes, len) != 0) {
		return -1;
	}
	while (len > 1 && bytes[0] == 0)
		memmove(bytes, bytes + 1, --len);
	memset(out, 0, WIRE);
	out[0] = (uint8_t)len;
	memcpy(out + 1, bytes, len);
	for (int i = 0; i < 8; i++)
		out[21 + i] = (uint8_t)((uint64_t)t >> (56 - 8 * i));
	out[29] = (uint8_t)reason;
	return 0;
}

static void fetch_page(void);

static void on_page(const struct store_outcome *o, void *arg)
{
	json_t *v;
	size_t n;
	uint8_t *buf;

	if (o->error) {
		failed("crl.revoked", o->message);
		return;
	}
	v = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	n = json_array_size(v);
	if (!json_is_array(v) || !(buf = malloc(n ? n * WIRE : 1))) {
		json_decref(v);
		failed("crl.revoked", "unexpected answer");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (pack(json_array_get(v, i), buf + i * WIRE) != 0) {
			free(buf);
			json_decref(v);
			failed("crl.revoked", "an entry the CRL cannot hold");
			return;
		}
	}
	if (n) {
		snprintf(run.after, sizeof run.after, "%s", json_string_value(json_array_get(json_array_get(v, n - 1), 0)));
		if (fd_write_full(run.memfd, buf, n * WIRE) != 0) {
			free(buf);
			json_decref(v);
			failed("crl.revoked", strerror(errno));
			return;
		}
	}
	free(buf);
	json_decref(v);
	run.entries += n;
	if (n == PAGE_ENTRIES)
		fetch_page();
	else
		sign();
}

static void fetch_page(void)
{
	char limit[16];
	const char *p[3] = {run.issuer, run.after, limit};

	snprintf(limit, sizeof limit, "%d", PAGE_ENTRIES);
	if (store_call(run.w, "crl.revoked", p, 3, on_page, NULL) != 0)
		failed("crl.revoked", "the store is unavailable");
}

/* ---- 1. a new CRL number ---- */

static void on_begin(const struct store_outcome *o, void *arg)
{
	json_t *v;

	if (o->error) {
		failed("crl.begin", o->message);
		return;
	}
	if (o->status == STORE_NO_ROW) {
		/* not a Local issuer (any more), or another node is at it */
		next_issuer();
		return;
	}
	v = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	run.number = (uint64_t)json_integer_value(json_object_get(v, "crl_number"));
	run.revocations = (uint64_t)json_integer_value(json_object_get(v, "revocations"));
	snprintf(run.intermediate, sizeof run.intermediate, "%s",
		 json_is_string(json_object_get(v, "intermediate_id")) ? json_string_value(json_object_get(v, "intermediate_id")) : "");
	json_decref(v);
	if (run.number == 0) {
		failed("crl.begin", "unexpected answer");
		return;
	}
	run.this_update = (int64_t)time(NULL);
	run.next_update = run.this_update + (int64_t)run.validity_s;
	run.memfd = memfd_create("certward-crl", MFD_CLOEXEC);
	if (run.memfd < 0) {
		failed("memfd_create", strerror(errno));
		return;
	}
	fetch_page();
}

static void next_issuer(void)
{
	const char *p[1];

	if (run.next == run.ndue) {
		loop_done(run.loop, run.published, "CRL(s) published", NULL);
		return;
	}
	snprintf(run.issuer, sizeof run.issuer, "%s", run.due[run.next++]);
	run.t0_ms = now_ms();
	p[0] = run.issuer;
	if (store_call(run.w, "crl.begin", p, 1, on_begin, NULL) != 0)
		failed("crl.begin", "the store is unavailable");
}

static void on_due(const struct store_outcome *o, void *arg)
{
	json_t *v, *id;
	size_t i;

	if (o->error) {
		/* asked again at the next check */
		loop_done(run.loop, 0, NULL, o->message && *o->message ? o->message : "the store is unavailable");
		return;
	}
	v = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	run.ndue = run.next = 0;
	json_array_foreach(v, i, id) {
		if (json_is_string(id) && strlen(json_string_value(id)) < sizeof run.due[0] && run.ndue < DUE_MAX)
			snprintf(run.due[run.ndue++], sizeof run.due[0], "%s", json_string_value(id));
	}
	json_decref(v);
	next_issuer();
}

static void on_check(struct loop *l, void *arg)
{
	char margin[24];
	const char *p[1] = {margin};

	(void)arg;
	run.published = 0;
	if (now_ms() < run.pause_until_ms) {
		loop_done(l, 0, NULL, NULL);
		return;
	}
	snprintf(margin, sizeof margin, "%llu", (unsigned long long)run.refresh_s);
	if (store_call(run.w, "crl.due", p, 1, on_due, NULL) != 0)
		loop_done(l, 0, NULL, "the store is unavailable");
}

int crl_loop_start(struct worker *w, const struct cfg *section)
{
	/* every node: each CRL number is leased in the database */
	static const struct loop_def def = {
		.name = "crl",
		.interval_key = "crl_check",
		.leader_only = false,
		.run = on_check,
	};

	run.w = w;
	run.validity_s = cfg_duration_ms(section, "scheduler", "crl_validity") / 1000;
	run.refresh_s = cfg_duration_ms(section, "scheduler", "crl_refresh") / 1000;
	if (run.refresh_s >= run.validity_s)
		run.refresh_s = run.validity_s / 2;
	run.loop = loop_register(&def);
	return run.loop ? 0 : -1;
}

void crl_loop_stop(void)
{
	run_reset();
}

void crl_loop_metrics(struct strbuf *out)
{
	strbuf_printf(out, "crls_generated_total %llu\n", (unsigned long long)run.generated);
	strbuf_printf(out, "crl_failures_total %llu\n", (unsigned long long)run.failed);
	strbuf_printf(out, "crl_last_duration_seconds %.3f\n", (double)run.last_ms / 1000.0);
	strbuf_printf(out, "crl_last_entries %llu\n", (unsigned long long)run.last_entries);
	strbuf_printf(out, "crl_last_bytes %llu\n", (unsigned long long)run.last_bytes);
}
