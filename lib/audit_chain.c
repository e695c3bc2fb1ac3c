/* See audit_chain.h. */
#include "audit_chain.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <openssl/mem.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* F(v) for v of len bytes; F(NULL) when p is NULL */
static void field(SHA256_CTX *ctx, const void *p, size_t len)
{
	static const uint8_t null_field = 0x00;
	uint8_t head[5] = {0x01, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
			   (uint8_t)len};

	if (!p) {
		SHA256_Update(ctx, &null_field, 1);
		return;
	}
	SHA256_Update(ctx, head, sizeof head);
	SHA256_Update(ctx, p, len);
}

static void field_text(SHA256_CTX *ctx, const char *s)
{
	field(ctx, s, s ? strlen(s) : 0);
}

static void field_int64(SHA256_CTX *ctx, int64_t v)
{
	uint64_t u = (uint64_t)v;
	uint8_t b[8];

	for (int i = 7; i >= 0; i--, u >>= 8)
		b[i] = (uint8_t)u;
	field(ctx, b, sizeof b);
}

int audit_chain_hash(const struct audit_chain_event *e, uint8_t out[AUDIT_HASH_LEN])
{
	uint8_t addr[16];
	size_t addr_len = 0;
	SHA256_CTX ctx;

	if (e->source_address) {
		/* the text PostgreSQL gives for a host address; an IPv6 text
		 * (even "::ffff:1.2.3.4") is 16 bytes, as inet stores it */
		if (strchr(e->source_address, ':'))
			addr_len = inet_pton(AF_INET6, e->source_address, addr) == 1 ? 16 : 0;
		else
			addr_len = inet_pton(AF_INET, e->source_address, addr) == 1 ? 4 : 0;
		if (!addr_len)
			return -1;
	}
	SHA256_Init(&ctx);
	SHA256_Update(&ctx, e->prev_hash, AUDIT_HASH_LEN);
	field_int64(&ctx, e->id);
	field_int64(&ctx, e->occurred_at_us);
	field_text(&ctx, e->actor);
	field_text(&ctx, e->actor_type);
	field_text(&ctx, e->actor_role);
	field_text(&ctx, e->action);
	field_text(&ctx, e->resource_type);
	field_text(&ctx, e->resource_id);
	field_text(&ctx, e->request_id);
	field(&ctx, e->source_address ? addr : NULL, addr_len);
	field_text(&ctx, e->outcome);
	field(&ctx, e->has_body_sha256 ? e->body_sha256 : NULL, AUDIT_HASH_LEN);
	field_text(&ctx, e->details);
	SHA256_Final(out, &ctx);
	return 0;
}

/* ---- verification ---- */

void audit_verifier_init(struct audit_verifier *v, int64_t first_id,
			 const uint8_t anchor[AUDIT_HASH_LEN])
{
	memset(v, 0, sizeof *v);
	v->next_id = first_id;
	memcpy(v->prev, anchor, AUDIT_HASH_LEN);
}

static int broken(struct audit_verifier *v, int64_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int broken(struct audit_verifier *v, int64_t at, const char *fmt, ...)
{
	va_list ap;

	v->broken_at = at;
	va_start(ap, fmt);
	vsnprintf(v->why, sizeof v->why, fmt, ap);
	va_end(ap);
	return -1;
}

int audit_verifier_next(struct audit_verifier *v, const struct audit_chain_event *e)
{
	uint8_t want[AUDIT_HASH_LEN];

	if (e->id != v->next_id) {
		if (e->id > v->next_id)
			return broken(v, v->next_id, "missing (the next stored event is %lld)",
				      (long long)e->id);
		return broken(v, e->id, "out of order (expected event %lld)", (long long)v->next_id);
	}
	if (CRYPTO_memcmp(e->prev_hash, v->prev, AUDIT_HASH_LEN) != 0) {
		if (v->count == 0 && e->id == 1)
			return broken(v, e->id, "prev_hash is not 32 zero bytes");
		return broken(v, e->id, "prev_hash is not the hash of event %lld", (long long)(e->id - 1));
	}
	if (audit_chain_hash(e, want) != 0)
		return broken(v, e->id, "source_address is not an IP address");
	if (CRYPTO_memcmp(want, e->hash, AUDIT_HASH_LEN) != 0)
		return broken(v, e->id, "its hash does not match its contents");
	if (v->count == 0)
		v->first_id = e->id;
	v->count++;
	v->last_id = e->id;
	v->next_id = e->id + 1;
	memcpy(v->prev, e->hash, AUDIT_HASH_LEN);
	return 0;
}

int audit_verifier_finish(struct audit_verifier *v, int64_t head_last_id,
			  const uint8_t head_last_hash[AUDIT_HASH_LEN])
{
	int64_t last = v->next_id - 1; /* the last event checked, or the anchor */

	if (head_last_id > last)
		return broken(v, last + 1, "missing (the chain head records events up to %lld)",
			      (long long)head_last_id);
	if (head_last_id < last)
		return broken(v, head_last_id + 1, "beyond the chain head (it records events up to %lld)",
			      (long long)head_last_id);
	if (v->count > 0 && CRYPTO_memcmp(head_last_hash, v->prev, AUDIT_HASH_LEN) != 0)
		return broken(v, last, "the chain head's hash is not this event's hash");
	return 0;
}

/* ---- one page of the feed ---- */

static int refuse(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int refuse(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	/* one line, whatever the parser quoted of the input */
	for (char *c = err; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
	return -1;
}

/* a string without NUL bytes, or null when nullable */
static bool text_of(json_t *v, bool nullable, const char **out)
{
	if (nullable && json_is_null(v)) {
		*out = NULL;
		return true;
	}
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return false;
	*out = json_string_value(v);
	return true;
}

static bool hash_of(json_t *v, uint8_t out[AUDIT_HASH_LEN])
{
	return json_is_string(v) && json_string_length(v) == 2 * AUDIT_HASH_LEN &&
	       hex_decode(json_string_value(v), out, AUDIT_HASH_LEN) == 0;
}

static int event_of(json_t *o, struct audit_chain_event *e, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		size_t offset;
		bool nullable;
	} texts[] = {
#define T(m, n) {#m, offsetof(struct audit_chain_event, m), n}
		T(actor, false), T(actor_type, false), T(actor_role, true), T(action, false),
		T(resource_type, false), T(resource_id, true), T(request_id, true),
		T(source_address, true), T(outcome, false), T(details, false),
#undef T
	};
	/* the text members, and id, occurred_at, body_sha256, prev_hash, hash */
	const size_t members = sizeof texts / sizeof texts[0] + 5;
	json_t *body;

	if (!json_is_object(o) || json_object_size(o) != members)
		return refuse(err, errlen, "an event is not an object of exactly %zu members", members);
	if (!json_is_integer(json_object_get(o, "id")) || json_integer_value(json_object_get(o, "id")) < 1)
		return refuse(err, errlen, "an event's id is not a positive integer");
	e->id = json_integer_value(json_object_get(o, "id"));
	if (!json_is_integer(json_object_get(o, "occurred_at")))
		return refuse(err, errlen, "event %lld: occurred_at is not an integer", (long long)e->id);
	e->occurred_at_us = json_integer_value(json_object_get(o, "occurred_at"));
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
		if (!text_of(json_object_get(o, texts[i].name), texts[i].nullable,
			     (const char **)((char *)e + texts[i].offset)))
			return refuse(err, errlen, "event %lld: %s is missing or not a string%s",
				      (long long)e->id, texts[i].name, texts[i].nullable ? " or null" : "");
	body = json_object_get(o, "body_sha256");
	e->has_body_sha256 = !json_is_null(body);
	if (!body || (e->has_body_sha256 && !hash_of(body, e->body_sha256)))
		return refuse(err, errlen, "event %lld: body_sha256 is not 64 hex digits or null",
			      (long long)e->id);
	if (!hash_of(json_object_get(o, "prev_hash"), e->prev_hash) ||
	    !hash_of(json_object_get(o, "hash"), e->hash))
		return refuse(err, errlen, "event %lld: prev_hash or hash is not 64 hex digits",
			      (long long)e->id);
	return 0;
}

int audit_chain_page_parse(const char *text, size_t len, struct audit_chain_page *p, char *err,
			   size_t errlen)
{
	json_error_t je;
	json_t *doc, *data, *head;
	size_t i;

	memset(p, 0, sizeof *p);
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!doc)
		return refuse(err, errlen, "not JSON: %s", je.text);
	p->doc = doc;
	data = json_object_get(doc, "data");
	head = json_object_get(doc, "head");
	if (!json_is_object(doc) || json_object_size(doc) != 2 || !json_is_array(data) ||
	    !json_is_object(head) || json_object_size(head) != 2 ||
	    !json_is_integer(json_object_get(head, "last_id")) ||
	    json_integer_value(json_object_get(head, "last_id")) < 0 ||
	    !hash_of(json_object_get(head, "last_hash"), p->head_last_hash)) {
		audit_chain_page_free(p);
		return refuse(err, errlen, "not a page of the audit chain ({data, head})");
	}
	p->head_last_id = json_integer_value(json_object_get(head, "last_id"));
	if (json_array_size(data) > AUDIT_CHAIN_PAGE_MAX) {
		audit_chain_page_free(p);
		return refuse(err, errlen, "more than %d events in one page", AUDIT_CHAIN_PAGE_MAX);
	}
	p->events = calloc(json_array_size(data) + 1, sizeof *p->events);
	if (!p->events) {
		audit_chain_page_free(p);
		return refuse(err, errlen, "out of memory");
	}
	for (i = 0; i < json_array_size(data); i++) {
		if (event_of(json_array_get(data, i), &p->events[i], err, errlen) != 0) {
			audit_chain_page_free(p);
			return -1;
		}
	}
	p->n = i;
	return 0;
}

void audit_chain_page_free(struct audit_chain_page *p)
{
	free(p->events);
	json_decref(p->doc);
	memset(p, 0, sizeof *p);
}
