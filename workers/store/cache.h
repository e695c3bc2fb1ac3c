/*
 * The store's cache of read results: what a STORE_READ operation that names
 * its tables answered (a REST record, or a list's total), kept until one of
 * those tables changes, within a byte budget (store.cache_bytes), least
 * recently used first out.
 *
 * Validity works with a change counter instead of walking entries. Every
 * change bumps the counter; the cache remembers, per table, the counter's
 * value at its last change, and at the last change of everything. A caller
 * takes a stamp (cache_stamp) before it sends the statement and hands it to
 * cache_put with the result: the result is kept only if no table it reads
 * changed since the stamp, and an entry is served only while that is still
 * true. A change racing with a read therefore never leaves a stale entry:
 * either the read's snapshot saw the change, or the entry's stamp predates it.
 *
 * Changes are announced by the store's own writes (cache_changed_all when
 * a STORE_OP ends) and by PostgreSQL's notifications (cache_changed with a
 * table name). While notifications cannot be received the cache is off
 * (cache_set_enabled).
 *
 * Keys are hashed with SipHash (lib/siphash.h) under a key drawn at start, so that clients
 * choosing ids cannot pile entries into one bucket.
 */
#ifndef CERTWARD_STORE_CACHE_H
#define CERTWARD_STORE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define CACHE_TABLES_MAX 64
#define CACHE_ENTRY_MAX (64 * 1024) /* larger results are not kept */

struct store_cache;

/* max_bytes 0: a cache that keeps nothing. NULL when out of memory. */
struct store_cache *cache_new(size_t max_bytes);
void cache_free(struct store_cache *c);

/* The mask of the space-separated table names (registered on first sight);
 * 0 when more than CACHE_TABLES_MAX tables would be known: not cacheable. */
uint64_t cache_tables(struct store_cache *c, const char *names);

void cache_set_enabled(struct store_cache *c, bool on);
bool cache_enabled(const struct store_cache *c);
uint64_t cache_stamp(const struct store_cache *c);
/* table NULL: everything. A table no entry reads is ignored. */
void cache_changed(struct store_cache *c, const char *table);
void cache_changed_all(struct store_cache *c);
/* the tables of a mask (cache_tables) changed */
void cache_changed_tables(struct store_cache *c, uint64_t tables);

/*
 * Key: a number (the operation's, with any flavour bits the caller likes)
 * and the key bytes. A hit copies nothing: *val stays valid until the next
 * call into the cache. aux is a number kept with the value (a list's total,
 * or a result status).
 */
bool cache_get(struct store_cache *c, uint32_t op, const void *key, size_t klen, const void **val,
	       size_t *vlen, int64_t *aux);
void cache_put(struct store_cache *c, uint32_t op, const void *key, size_t klen, uint64_t tables,
	       uint64_t stamp, const void *val, size_t vlen, int64_t aux);

/* store_cache_* lines in the Prometheus text format */
void cache_metrics(const struct store_cache *c, struct strbuf *out);

#endif
