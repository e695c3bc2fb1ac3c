/* A fixed-size set of non-blocking libpq connections driven by libuv. */
#ifndef CERTWARD_STORE_POOL_H
#define CERTWARD_STORE_POOL_H

#include <stdint.h>
#include <uv.h>

#include "util.h"

struct pg_pool;

/* dsn is copied and never logged. */
struct pg_pool *pg_pool_start(uv_loop_t *loop, const char *dsn, unsigned size,
			      uint64_t connect_timeout_ms);
void pg_pool_stop(struct pg_pool *p);
unsigned pg_pool_connected(const struct pg_pool *p);
unsigned pg_pool_size(const struct pg_pool *p);
void pg_pool_metrics(const struct pg_pool *p, struct strbuf *out);

#endif
