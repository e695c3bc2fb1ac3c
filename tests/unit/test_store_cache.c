/* The store's read cache (workers/store/cache.h): what it keeps, what a
 * change takes away, the byte budget; and lib/siphash against BoringSSL. */
#include <criterion/criterion.h>
#include <openssl/rand.h>
#include <openssl/siphash.h>
#include <stdio.h>
#include <string.h>

#include "cache.h"
#include "siphash.h"

Test(siphash, matches_boringssl)
{
	uint8_t buf[200];
	uint64_t key[2];

	for (int round = 0; round < 50; round++) {
		RAND_bytes((uint8_t *)key, sizeof key);
		RAND_bytes(buf, sizeof buf);
		for (size_t len = 0; len <= sizeof buf; len += 1 + round % 7)
			cr_assert_eq(siphash24(key, buf, len), SIPHASH_24(key, buf, len), "length %zu", len);
	}
}

/* the paper's test vector: key 00..0f, message 00..0e */
Test(siphash, paper_vector)
{
	uint8_t k[16], msg[15];
	uint64_t key[2];

	for (int i = 0; i < 16; i++)
		k[i] = (uint8_t)i;
	for (int i = 0; i < 15; i++)
		msg[i] = (uint8_t)i;
	memcpy(key, k, sizeof key); /* little-endian words, as the paper reads them */
	cr_assert_eq(siphash24(key, msg, sizeof msg), 0xa129ca6149be45e5ull);
}

static bool get(struct store_cache *c, uint32_t op, const char *key, const char **val, int64_t *aux)
{
	const void *v;
	size_t vlen;
	int64_t a = 0;
	bool hit = cache_get(c, op, key, strlen(key), &v, &vlen, &a);

	if (hit && val) {
		static char copy[256];

		snprintf(copy, sizeof copy, "%.*s", (int)vlen, (const char *)v);
		*val = copy;
	}
	if (aux)
		*aux = a;
	return hit;
}

static void put(struct store_cache *c, uint32_t op, const char *key, uint64_t tables, uint64_t stamp,
		const char *val, int64_t aux)
{
	cache_put(c, op, key, strlen(key), tables, stamp, val, strlen(val), aux);
}

Test(store_cache, keeps_until_a_table_read_changes)
{
	struct store_cache *c = cache_new(1 << 20);
	uint64_t certs = cache_tables(c, "managed_certificates certificate_targets");
	uint64_t teams = cache_tables(c, "teams");
	const char *v;
	int64_t aux;

	cr_assert(certs && teams && !(certs & teams));
	cr_assert_eq(cache_tables(c, "certificate_targets"), certs & ~cache_tables(c, "managed_certificates"));
	/* off until changes can be heard */
	put(c, 1, "mc-1", certs, cache_stamp(c), "{\"id\":\"mc-1\"}", 0);
	cr_assert_not(get(c, 1, "mc-1", NULL, NULL));
	cache_set_enabled(c, true);
	put(c, 1, "mc-1", certs, cache_stamp(c), "{\"id\":\"mc-1\"}", 0);
	put(c, 2, "t-1", teams, cache_stamp(c), "{\"id\":\"t-1\"}", 7);
	cr_assert(get(c, 1, "mc-1", &v, &aux));
	cr_assert_str_eq(v, "{\"id\":\"mc-1\"}");
	cr_assert(get(c, 2, "t-1", &v, &aux) && aux == 7);
	/* same key bytes, another operation: another entry */
	cr_assert_not(get(c, 2, "mc-1", NULL, NULL));
	/* a change of a table the entry reads takes it away; others stay */
	cache_changed(c, "certificate_targets");
	cr_assert_not(get(c, 1, "mc-1", NULL, NULL));
	cr_assert(get(c, 2, "t-1", NULL, NULL));
	/* a table no entry reads changes nothing */
	cache_changed(c, "jobs");
	cr_assert(get(c, 2, "t-1", NULL, NULL));
	/* a write naming its tables: only the entries reading them go */
	put(c, 1, "mc-1", certs, cache_stamp(c), "{}", 0);
	cache_changed_tables(c, cache_tables(c, "managed_certificates audit_events"));
	cr_assert_not(get(c, 1, "mc-1", NULL, NULL));
	cr_assert(get(c, 2, "t-1", NULL, NULL));
	cache_changed_all(c);
	cr_assert_not(get(c, 2, "t-1", NULL, NULL));
	cache_free(c);
}

/* a read that was under way when its table changed is not kept: its
 * snapshot may predate the change */
Test(store_cache, racing_change_discards_the_result)
{
	struct store_cache *c = cache_new(1 << 20);
	uint64_t certs = cache_tables(c, "managed_certificates");
	uint64_t stamp;

	cache_set_enabled(c, true);
	stamp = cache_stamp(c);
	cache_changed(c, "managed_certificates");
	put(c, 1, "mc-1", certs, stamp, "old", 0);
	cr_assert_not(get(c, 1, "mc-1", NULL, NULL));
	/* stamped after the change: kept */
	stamp = cache_stamp(c);
	put(c, 1, "mc-1", certs, stamp, "new", 0);
	cr_assert(get(c, 1, "mc-1", NULL, NULL));
	/* everything changed (a write through the store) while a read ran */
	stamp = cache_stamp(c);
	cache_changed_all(c);
	put(c, 1, "mc-2", certs, stamp, "old", 0);
	cr_assert_not(get(c, 1, "mc-2", NULL, NULL));
	cache_free(c);
}

Test(store_cache, off_forgets_everything)
{
	struct store_cache *c = cache_new(1 << 20);
	uint64_t t = cache_tables(c, "teams");
	char metrics[2048];
	struct strbuf b;

	cache_set_enabled(c, true);
	put(c, 1, "a", t, cache_stamp(c), "x", 0);
	cache_set_enabled(c, false);
	cache_set_enabled(c, true);
	cr_assert_not(get(c, 1, "a", NULL, NULL));
	strbuf_init(&b, sizeof metrics);
	cache_metrics(c, &b);
	snprintf(metrics, sizeof metrics, "%.*s", (int)b.len, b.p);
	cr_assert(strstr(metrics, "store_cache_entries 0\n"), "%s", metrics);
	cr_assert(strstr(metrics, "store_cache_enabled 1\n"), "%s", metrics);
	strbuf_free(&b);
	cache_free(c);
}

/* the budget holds: least recently used entries go first */
Test(store_cache, byte_budget_evicts_least_recently_used)
{
	struct store_cache *c = cache_new(64 * 1024);
	uint64_t t = cache_tables(c, "managed_certificates");
	char key[32], val[1000];
	int kept = 0;

	memset(val, 'v', sizeof val - 1);
	val[sizeof val - 1] = '\0';
	cache_set_enabled(c, true);
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof key, "mc-%d", i);
		put(c, 1, key, t, cache_stamp(c), val, 0);
		/* mc-0 is read all along: it stays */
		cr_assert(get(c, 1, "mc-0", NULL, NULL), "mc-0 evicted at %d", i);
	}
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof key, "mc-%d", i);
		kept += get(c, 1, key, NULL, NULL);
	}
	cr_assert(kept > 30 && kept < 64, "%d entries of 1 KB kept in 64 KB", kept);
	snprintf(key, sizeof key, "mc-%d", 999);
	cr_assert(get(c, 1, key, NULL, NULL), "the newest entry was evicted");
	snprintf(key, sizeof key, "mc-%d", 1);
	cr_assert_not(get(c, 1, key, NULL, NULL), "an old entry was kept");
	cache_free(c);
}

Test(store_cache, refuses_what_it_must_not_keep)
{
	struct store_cache *c = cache_new(1 << 20);
	static char big[CACHE_ENTRY_MAX + 2];

	cache_set_enabled(c, true);
	memset(big, 'x', sizeof big - 1);
	put(c, 1, "big", cache_tables(c, "teams"), cache_stamp(c), big, 0);
	cr_assert_not(get(c, 1, "big", NULL, NULL), "an oversize result was kept");
	put(c, 1, "none", 0, cache_stamp(c), "x", 0);
	cr_assert_not(get(c, 1, "none", NULL, NULL), "a result reading no known table was kept");
	cache_free(c);
	/* a budget of 0 keeps nothing, even enabled */
	c = cache_new(0);
	cache_set_enabled(c, true);
	cr_assert_not(cache_enabled(c));
	put(c, 1, "a", cache_tables(c, "teams"), cache_stamp(c), "x", 0);
	cr_assert_not(get(c, 1, "a", NULL, NULL));
	cache_free(c);
	/* more tables than a mask holds: not cacheable */
	c = cache_new(1 << 20);
	for (int i = 0; i < CACHE_TABLES_MAX; i++) {
		char name[16];

		snprintf(name, sizeof name, "t%d", i);
		cr_assert(cache_tables(c, name));
	}
	cr_assert_eq(cache_tables(c, "one_too_many"), 0);
	cache_free(c);
}
