#include "cache.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "siphash.h"

struct entry {
	struct entry *hnext;       /* bucket chain */
	struct entry *prev, *next; /* use order: head most recent */
	uint64_t hash;
	uint64_t tables;
	uint64_t stamp;
	int64_t aux;
	uint32_t op;
	size_t klen, vlen;
	unsigned char data[]; /* key, then value */
};

struct store_cache {
	size_t max_bytes, bytes;
	bool enabled;
	uint64_t sipkey[2];
	struct entry **buckets;
	size_t nbuckets, entries;
	struct entry *head, *tail;
	uint64_t gen;     /* the change counter */
	uint64_t all_gen; /* its value at the last change of everything */
	uint64_t table_gen[CACHE_TABLES_MAX];
	char tables[CACHE_TABLES_MAX][64];
	unsigned ntables;
	uint64_t hits, misses, stores, evictions, changes;
};

static size_t entry_bytes(const struct entry *e)
{
	return sizeof *e + e->klen + e->vlen;
}

struct store_cache *cache_new(size_t max_bytes)
{
	struct store_cache *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->max_bytes = max_bytes;
	c->nbuckets = 256;
	c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
	if (!c->buckets) {
		free(c);
		return NULL;
	}
	if (getrandom(c->sipkey, sizeof c->sipkey, 0) != (ssize_t)sizeof c->sipkey) {
		free(c->buckets);
		free(c);
		return NULL;
	}
	c->gen = 1;
	return c;
}

static void unlink_use(struct store_cache *c, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void push_use(struct store_cache *c, struct entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

static void drop(struct store_cache *c, struct entry *e)
{
	struct entry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	unlink_use(c, e);
	c->bytes -= entry_bytes(e);
	c->entries--;
	free(e);
}

static void clear(struct store_cache *c)
{
	while (c->head)
		drop(c, c->head);
}

void cache_free(struct store_cache *c)
{
	if (!c)
		return;
	clear(c);
	free(c->buckets);
	free(c);
}

static int table_index(const struct store_cache *c, const char *name, size_t len)
{
	for (unsigned i = 0; i < c->ntables; i++)
		if (strlen(c->tables[i]) == len && memcmp(c->tables[i], name, len) == 0)
			return (int)i;
	return -1;
}

uint64_t cache_tables(struct store_cache *c, const char *names)
{
	uint64_t mask = 0;

	while (names && *names) {
		size_t len = strcspn(names, " ");
		int i = table_index(c, names, len);

		if (len > 0) {
			if (i < 0) {
				if (c->ntables == CACHE_TABLES_MAX || len >= sizeof c->tables[0])
					return 0;
				i = (int)c->ntables++;
				memcpy(c->tables[i], names, len);
				c->tables[i][len] = '\0';
			}
			mask |= 1ull << i;
		}
		names += len;
		names += strspn(names, " ");
	}
	return mask;
}

void cache_set_enabled(struct store_cache *c, bool on)
{
	c->all_gen = ++c->gen;
	if (!on)
		clear(c);
	c->enabled = on && c->max_bytes > 0;
}

bool cache_enabled(const struct store_cache *c)
{
	return c->enabled;
}

uint64_t cache_stamp(const struct store_cache *c)
{
	return c->gen;
}

void cache_changed(struct store_cache *c, const char *table)
{
	int i;

	c->changes++;
	if (!table) {
		c->all_gen = ++c->gen;
		return;
	}
	i = table_index(c, table, strlen(table));
	if (i >= 0)
		c->table_gen[i] = ++c->gen;
}

void cache_changed_all(struct store_cache *c)
{
	cache_changed(c, NULL);
}

void cache_changed_tables(struct store_cache *c, uint64_t tables)
{
	c->changes++;
	++c->gen;
	for (uint64_t m = tables; m; m &= m - 1)
		c->table_gen[__builtin_ctzll(m)] = c->gen;
}

/* no table the result reads has changed since stamp */
static bool still_true(const struct store_cache *c, uint64_t tables, uint64_t stamp)
{
	if (c->all_gen > stamp)
		return false;
	for (uint64_t m = tables; m; m &= m - 1)
		if (c->table_gen[__builtin_ctzll(m)] > stamp)
			return false;
	return true;
}

static uint64_t key_hash(const struct store_cache *c, uint32_t op, const void *key, size_t klen)
{
	return siphash24(c->sipkey, key, klen) ^ ((uint64_t)op * 0x9e3779b97f4a7c15ull);
}

static struct entry *find(const struct store_cache *c, uint64_t h, uint32_t op, const void *key, size_t klen)
{
	for (struct entry *e = c->buckets[h & (c->nbuckets - 1)]; e; e = e->hnext)
		if (e->hash == h && e->op == op && e->klen == klen && memcmp(e->data, key, klen) == 0)
			return e;
	return NULL;
}

bool cache_get(struct store_cache *c, uint32_t op, const void *key, size_t klen, const void **val,
	       size_t *vlen, int64_t *aux)
{
	struct entry *e;
	uint64_t h;

	if (!c->enabled)
		return false;
	h = key_hash(c, op, key, klen);
	e = find(c, h, op, key, klen);
	if (e && !still_true(c, e->tables, e->stamp)) {
		drop(c, e);
		e = NULL;
	}
	if (!e) {
		c->misses++;
		return false;
	}
	c->hits++;
	unlink_use(c, e);
	push_use(c, e);
	*val = e->data + e->klen;
	*vlen = e->vlen;
	*aux = e->aux;
	return true;
}

static void grow(struct store_cache *c)
{
	size_t n = c->nbuckets * 2;
	struct entry **b = calloc(n, sizeof *b);

	if (!b)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct entry *e = c->buckets[i], *next;

		for (; e; e = next) {
			next = e->hnext;
			e->hnext = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
}

void cache_put(struct store_cache *c, uint32_t op, const void *key, size_t klen, uint64_t tables,
	       uint64_t stamp, const void *val, size_t vlen, int64_t aux)
{
	struct entry *e;
	uint64_t h;

	if (!c->enabled || !tables || vlen > CACHE_ENTRY_MAX || klen > CACHE_ENTRY_MAX ||
	    !still_true(c, tables, stamp))
		return;
	h = key_hash(c, op, key, klen);
	e = find(c, h, op, key, klen);
	if (e)
		drop(c, e);
	e = malloc(sizeof *e + klen + vlen);
	if (!e)
		return;
	e->hash = h;
	e->op = op;
	e->tables = tables;
	e->stamp = stamp;
	e->aux = aux;
	e->klen = klen;
	e->vlen = vlen;
	memcpy(e->data, key, klen);
	memcpy(e->data + klen, val, vlen);
	if (entry_bytes(e) > c->max_bytes) {
		free(e);
		return;
	}
	while (c->tail && c->bytes + entry_bytes(e) > c->max_bytes) {
		drop(c, c->tail);
		c->evictions++;
	}
	if (c->entries >= c->nbuckets)
		grow(c);
	e->hnext = c->buckets[h & (c->nbuckets - 1)];
	c->buckets[h & (c->nbuckets - 1)] = e;
	e->prev = e->next = NULL;
	push_use(c, e);
	c->bytes += entry_bytes(e);
	c->entries++;
	c->stores++;
}

void cache_metrics(const struct store_cache *c, struct strbuf *out)
{
	strbuf_printf(out, "store_cache_enabled %d\n", c->enabled);
	strbuf_printf(out, "store_cache_entries %zu\n", c->entries);
	strbuf_printf(out, "store_cache_bytes %zu\n", c->bytes);
	strbuf_printf(out, "store_cache_max_bytes %zu\n", c->max_bytes);
	strbuf_printf(out, "store_cache_hits_total %llu\n", (unsigned long long)c->hits);
	strbuf_printf(out, "store_cache_misses_total %llu\n", (unsigned long long)c->misses);
	strbuf_printf(out, "store_cache_stores_total %llu\n", (unsigned long long)c->stores);
	strbuf_printf(out, "store_cache_evictions_total %llu\n", (unsigned long long)c->evictions);
	strbuf_printf(out, "store_cache_changes_total %llu\n", (unsigned long long)c->changes);
}
