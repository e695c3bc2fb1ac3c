/*
 * The audit trail's hash chain, recomputed outside the database
 * (docs/architecture.md, "The audit trail"; migrations/0003_auth_audit.sql
 * holds the same encoding in SQL, audit_event_hash):
 *
 *   hash = SHA-256(prev_hash || F(id) || F(occurred_at) || F(actor) ||
 *                  F(actor_type) || F(actor_role) || F(action) ||
 *                  F(resource_type) || F(resource_id) || F(request_id) ||
 *                  F(source_address) || F(outcome) || F(body_sha256) ||
 *                  F(details))
 *   F(NULL) = 0x00,  F(v) = 0x01 || uint32 big-endian length of B(v) || B(v)
 *
 * B(id) and B(occurred_at) are int64 big-endian (occurred_at in
 * microseconds since 1970, negative before); text is its UTF-8 bytes;
 * source_address the 4 or 16 bytes of the address; body_sha256 its 32
 * bytes; details PostgreSQL's text of the jsonb value.
 *
 * Also here: the checks of `certward audit verify`, event by event, and
 * the strict reading of one page of GET /api/v1/audit/chain.
 */
#ifndef CERTWARD_AUDIT_CHAIN_H
#define CERTWARD_AUDIT_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIT_HASH_LEN 32
/* events in one page of the chain feed, at most */
#define AUDIT_CHAIN_PAGE_MAX 1000

/* One stored event as its hash sees it; NULL for an SQL NULL. */
struct audit_chain_event {
	int64_t id;
	int64_t occurred_at_us;
	const char *actor, *actor_type, *actor_role, *action, *resource_type, *resource_id,
		*request_id;
	const char *source_address; /* "192.0.2.7", "2001:db8::1" */
	const char *outcome;
	bool has_body_sha256;
	uint8_t body_sha256[AUDIT_HASH_LEN];
	const char *details; /* details::text */
	uint8_t prev_hash[AUDIT_HASH_LEN];
	uint8_t hash[AUDIT_HASH_LEN]; /* as stored */
};

/* The hash the event should have, from its prev_hash and fields. 0, or -1
 * when source_address is not an IP address (nothing then to compare). */
int audit_chain_hash(const struct audit_chain_event *e, uint8_t out[AUDIT_HASH_LEN]);

/* Walks the chain in id order. */
struct audit_verifier {
	int64_t next_id;                /* the id the next event must have */
	uint8_t prev[AUDIT_HASH_LEN];   /* the hash the next prev_hash must equal */
	uint64_t count;                 /* events checked */
	int64_t first_id, last_id;      /* of those */
	int64_t broken_at;              /* after a failed check: the event it names */
	char why[160];                  /* and which check failed */
};

/* From event first_id on, whose prev_hash must be anchor: 32 zero bytes
 * for event 1, else the stored hash of event first_id - 1. */
void audit_verifier_init(struct audit_verifier *v, int64_t first_id,
			 const uint8_t anchor[AUDIT_HASH_LEN]);

/* Checks the next event: its id is the expected one (no gap), its
 * prev_hash is the previous event's hash, its hash recomputes. 0 when
 * intact; -1 with broken_at and why set at the first failed check. */
int audit_verifier_next(struct audit_verifier *v, const struct audit_chain_event *e);

/* After the last event: the chain head (audit_chain_head, read in the
 * same snapshot as the last page) must name the last event and its hash,
 * so a removed tail shows. 0 or -1 as above. */
int audit_verifier_finish(struct audit_verifier *v, int64_t head_last_id,
			  const uint8_t head_last_hash[AUDIT_HASH_LEN]);

/* One page of the chain feed:
 *   {"data": [event, ...], "head": {"last_id": N, "last_hash": "<hex>"}}
 * with each event an object of exactly the members of
 * struct audit_chain_event (id and occurred_at as integers, hashes as 64
 * hex digits, nullable columns as null). Anything else is refused. */
struct audit_chain_page {
	struct audit_chain_event *events; /* strings point into the parsed document */
	size_t n;
	int64_t head_last_id;
	uint8_t head_last_hash[AUDIT_HASH_LEN];
	void *doc; /* the parsed document */
};

/* 0, or -1 with a one-line reason in err. */
int audit_chain_page_parse(const char *text, size_t len, struct audit_chain_page *p, char *err,
			   size_t errlen);
void audit_chain_page_free(struct audit_chain_page *p);

#endif
