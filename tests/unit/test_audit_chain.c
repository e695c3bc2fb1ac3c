/* lib/audit_chain against the database's own hashes.
 *
 * The vectors below were computed once by PostgreSQL: a database migrated
 * with migrations/0001..0003, these four events INSERTed into audit_events
 * (the chain trigger computed prev_hash and hash with audit_event_hash),
 * then read back with the chain feed's expressions (occurred_at as
 * microseconds, host(source_address), details::text, hex of the hashes),
 * with audit_event_hash(prev_hash, row) = hash checked true for each row.
 * They cover an IPv4, an IPv6 and an IPv4-mapped IPv6 address, NULL
 * columns, a time before 1970, non-ASCII text in request_id and details,
 * and a body digest. tests/integration/test_audit.py checks the same
 * encoding against a live database on every run. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "audit_chain.h"
#include "util.h"

struct vector {
	struct audit_chain_event e;
	const char *body_hex, *prev_hex, *hash_hex;
};

static struct vector vectors[] = {
	{
		.e.id = 1,
		.e.occurred_at_us = 1795615200123456LL,
		.e.actor = "key-0123",
		.e.actor_type = "User",
		.e.actor_role = "admin",
		.e.action = "teams.create",
		.e.resource_type = "teams",
		.e.resource_id = "t-platform",
		.e.request_id = "4f1c2a9b0d3e5f67",
		.e.source_address = "192.0.2.7",
		.e.outcome = "success",
		.e.has_body_sha256 = true,
		.body_hex = "beeb6663673830289d61bf209bf4ca177448b936005236244f06a0e07015fd24",
		.e.details = "{\"name\": \"Platform\", \"status\": 201}",
		.prev_hex = "0000000000000000000000000000000000000000000000000000000000000000",
		.hash_hex = "5a416524d8658b7f6baf5bf73ca63a6258e7e5b163b60edb50a526f9c1ae8a65",
	},
	{
		.e.id = 2,
		.e.occurred_at_us = -1LL,
		.e.actor = "system",
		.e.actor_type = "System",
		.e.actor_role = NULL,
		.e.action = "certificate.renew",
		.e.resource_type = "certificates",
		.e.resource_id = NULL,
		.e.request_id = NULL,
		.e.source_address = NULL,
		.e.outcome = "failure",
		.e.has_body_sha256 = false,
		.e.details = "{}",
		.prev_hex = "5a416524d8658b7f6baf5bf73ca63a6258e7e5b163b60edb50a526f9c1ae8a65",
		.hash_hex = "abee3d4e504bf6d199e29c8d87f299371641cfa3aa20d345137c328826452fba",
	},
	{
		.e.id = 3,
		.e.occurred_at_us = 951807896000000LL,
		.e.actor = "anonymous",
		.e.actor_type = "User",
		.e.actor_role = NULL,
		.e.action = "auth.failed",
		.e.resource_type = "apikeys",
		.e.resource_id = NULL,
		.e.request_id = "req-\xc3""\xa9""|3",
		.e.source_address = "2001:db8::1",
		.e.outcome = "denied",
		.e.has_body_sha256 = false,
		.e.details = "{\"n\": [1, 2.50, {\"z\": null}], \"\xc3""\xbc""\": \"\xc3""\xa9""\\n\", \"reason\": \"unknown key\"}",
		.prev_hex = "abee3d4e504bf6d199e29c8d87f299371641cfa3aa20d345137c328826452fba",
		.hash_hex = "6730b4315a7f25eb459d4dfd84dde51f3de1acfe3df5bea60857d87e808c357c",
	},
	{
		.e.id = 4,
		.e.occurred_at_us = 1795615201000000LL,
		.e.actor = "agent-web1",
		.e.actor_type = "Agent",
		.e.actor_role = "agent",
		.e.action = "agents.heartbeat",
		.e.resource_type = "agents",
		.e.resource_id = "agent-web1",
		.e.request_id = "ffffffffffffffff",
		.e.source_address = "::ffff:198.51.100.9",
		.e.outcome = "success",
		.e.has_body_sha256 = true,
		.body_hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		.e.details = "{\"a\": {\"b\": {\"c\": []}}}",
		.prev_hex = "6730b4315a7f25eb459d4dfd84dde51f3de1acfe3df5bea60857d87e808c357c",
		.hash_hex = "cf45bf1ba081c9f8675c5f888cdc599027e70be1174674436cff4cac352d8bb7",
	},
};

#define NV (sizeof vectors / sizeof vectors[0])

static const char head_hash_hex[] = "cf45bf1ba081c9f8675c5f888cdc599027e70be1174674436cff4cac352d8bb7";

static void decode(const char *hex, uint8_t out[AUDIT_HASH_LEN])
{
	cr_assert_eq(hex_decode(hex, out, AUDIT_HASH_LEN), 0, "%s", hex);
}

static void setup(void)
{
	for (size_t i = 0; i < NV; i++) {
		if (vectors[i].body_hex)
			decode(vectors[i].body_hex, vectors[i].e.body_sha256);
		decode(vectors[i].prev_hex, vectors[i].e.prev_hash);
		decode(vectors[i].hash_hex, vectors[i].e.hash);
	}
}

TestSuite(audit_chain, .init = setup);

Test(audit_chain, hashes_match_postgresql)
{
	uint8_t h[AUDIT_HASH_LEN];

	for (size_t i = 0; i < NV; i++) {
		cr_assert_eq(audit_chain_hash(&vectors[i].e, h), 0);
		cr_assert_arr_eq(h, vectors[i].e.hash, AUDIT_HASH_LEN, "event %lld", (long long)vectors[i].e.id);
	}
}

/* whether the hash of e differs from its stored hash */
static bool hash_changed(const struct audit_chain_event *e)
{
	uint8_t h[AUDIT_HASH_LEN];

	cr_assert_eq(audit_chain_hash(e, h), 0);
	return memcmp(h, e->hash, AUDIT_HASH_LEN) != 0;
}

/* every field counts: changing any one changes the hash; NULL and ""
 * differ */
Test(audit_chain, every_field_is_covered)
{
	uint8_t h[AUDIT_HASH_LEN], h2[AUDIT_HASH_LEN];
	struct audit_chain_event e;
	const char **texts[] = {&e.actor, &e.actor_type, &e.actor_role, &e.action, &e.resource_type,
				&e.resource_id, &e.request_id, &e.outcome, &e.details};

	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		e = vectors[0].e;
		*texts[i] = "x";
		cr_assert(hash_changed(&e), "text field %zu not covered", i);
		*texts[i] = NULL;
		audit_chain_hash(&e, h);
		*texts[i] = "";
		audit_chain_hash(&e, h2);
		cr_assert(memcmp(h, h2, AUDIT_HASH_LEN) != 0, "NULL and empty alike in field %zu", i);
	}
	e = vectors[0].e;
	e.id++;
	cr_assert(hash_changed(&e));
	e = vectors[0].e;
	e.occurred_at_us++;
	cr_assert(hash_changed(&e));
	e = vectors[0].e;
	e.source_address = "192.0.2.8";
	cr_assert(hash_changed(&e));
	e.source_address = NULL;
	cr_assert(hash_changed(&e));
	e = vectors[0].e;
	e.has_body_sha256 = false;
	cr_assert(hash_changed(&e));
	e = vectors[0].e;
	e.prev_hash[31] ^= 1;
	cr_assert(hash_changed(&e));
	e = vectors[0].e;
	e.source_address = "not an address";
	cr_assert_eq(audit_chain_hash(&e, h), -1);
	e.source_address = "192.0.2.7/32";
	cr_assert_eq(audit_chain_hash(&e, h), -1);
}

static int walk(struct vector *v, size_t n, struct audit_verifier *ver)
{
	static const uint8_t zero[AUDIT_HASH_LEN];
	uint8_t head[AUDIT_HASH_LEN];

	decode(head_hash_hex, head);
	audit_verifier_init(ver, 1, zero);
	for (size_t i = 0; i < n; i++)
		if (audit_verifier_next(ver, &v[i].e) != 0)
			return -1;
	return audit_verifier_finish(ver, 4, head);
}

Test(audit_chain, intact_chain)
{
	struct audit_verifier v;

	cr_assert_eq(walk(vectors, NV, &v), 0, "%s", v.why);
	cr_assert_eq(v.count, 4);
	cr_assert_eq(v.first_id, 1);
	cr_assert_eq(v.last_id, 4);
}

Test(audit_chain, a_changed_field_is_found)
{
	struct vector copy[NV];
	struct audit_verifier v;

	memcpy(copy, vectors, sizeof copy);
	copy[2].e.actor = "someone else";
	cr_assert_eq(walk(copy, NV, &v), -1);
	cr_assert_eq(v.broken_at, 3);
	cr_assert(strstr(v.why, "hash does not match"), "%s", v.why);
}

/* a forger who also rewrites the hash is caught at the next event */
Test(audit_chain, a_rehashed_event_breaks_the_next_link)
{
	struct vector copy[NV];
	struct audit_verifier v;

	memcpy(copy, vectors, sizeof copy);
	copy[1].e.outcome = "success";
	audit_chain_hash(&copy[1].e, copy[1].e.hash);
	cr_assert_eq(walk(copy, NV, &v), -1);
	cr_assert_eq(v.broken_at, 3);
	cr_assert(strstr(v.why, "prev_hash is not the hash of event 2"), "%s", v.why);
}

Test(audit_chain, a_removed_event_is_a_gap)
{
	struct vector copy[NV - 1];
	struct audit_verifier v;

	copy[0] = vectors[0];
	copy[1] = vectors[2];
	copy[2] = vectors[3];
	cr_assert_eq(walk(copy, NV - 1, &v), -1);
	cr_assert_eq(v.broken_at, 2);
	cr_assert(strstr(v.why, "missing (the next stored event is 3)"), "%s", v.why);
}

Test(audit_chain, a_removed_tail_shows_at_the_head)
{
	struct audit_verifier v;

	cr_assert_eq(walk(vectors, NV - 1, &v), -1);
	cr_assert_eq(v.broken_at, 4);
	cr_assert(strstr(v.why, "chain head records events up to 4"), "%s", v.why);
}

Test(audit_chain, first_event_starts_from_zero)
{
	struct vector copy[NV];
	struct audit_verifier v;

	memcpy(copy, vectors, sizeof copy);
	copy[0].e.prev_hash[0] = 1;
	cr_assert_eq(walk(copy, NV, &v), -1);
	cr_assert_eq(v.broken_at, 1);
	cr_assert(strstr(v.why, "32 zero bytes"), "%s", v.why);
}

/* --from 3: event 3 checked against the stored hash of event 2 */
Test(audit_chain, from_an_anchor)
{
	struct audit_verifier v;
	uint8_t head[AUDIT_HASH_LEN];

	decode(head_hash_hex, head);
	audit_verifier_init(&v, 3, vectors[1].e.hash);
	cr_assert_eq(audit_verifier_next(&v, &vectors[2].e), 0, "%s", v.why);
	cr_assert_eq(audit_verifier_next(&v, &vectors[3].e), 0, "%s", v.why);
	cr_assert_eq(audit_verifier_finish(&v, 4, head), 0, "%s", v.why);
	cr_assert_eq(v.count, 2);
	cr_assert_eq(v.first_id, 3);
	audit_verifier_init(&v, 3, vectors[0].e.hash);
	cr_assert_eq(audit_verifier_next(&v, &vectors[2].e), -1);
	cr_assert_eq(v.broken_at, 3);
}

/* ---- the feed's pages ---- */

static json_t *event_json(const struct vector *v)
{
	return json_pack("{s:I, s:I, s:s, s:s, s:s?, s:s, s:s, s:s?, s:s?, s:s?, s:s, s:s?, s:s, s:s, s:s}",
			 "id", (json_int_t)v->e.id, "occurred_at", (json_int_t)v->e.occurred_at_us,
			 "actor", v->e.actor, "actor_type", v->e.actor_type, "actor_role", v->e.actor_role,
			 "action", v->e.action, "resource_type", v->e.resource_type, "resource_id",
			 v->e.resource_id, "request_id", v->e.request_id, "source_address",
			 v->e.source_address, "outcome", v->e.outcome, "body_sha256", v->body_hex,
			 "details", v->e.details, "prev_hash", v->prev_hex, "hash", v->hash_hex);
}

static json_t *page_json(void)
{
	json_t *data = json_array();

	for (size_t i = 0; i < NV; i++)
		json_array_append_new(data, event_json(&vectors[i]));
	return json_pack("{s:o, s:{s:i, s:s}}", "data", data, "head", "last_id", 4, "last_hash",
			 head_hash_hex);
}

static int parse_json(json_t *j, struct audit_chain_page *p, char *err, size_t errlen)
{
	char *text = json_dumps(j, JSON_COMPACT);
	int rc;

	cr_assert_not_null(text);
	rc = audit_chain_page_parse(text, strlen(text), p, err, errlen);
	free(text);
	return rc;
}

Test(audit_chain, page_parses_and_verifies)
{
	static const uint8_t zero[AUDIT_HASH_LEN];
	struct audit_chain_page p;
	struct audit_verifier v;
	char err[200];
	json_t *j = page_json();

	cr_assert_eq(parse_json(j, &p, err, sizeof err), 0, "%s", err);
	cr_assert_eq(p.n, NV);
	cr_assert_eq(p.head_last_id, 4);
	audit_verifier_init(&v, 1, zero);
	for (size_t i = 0; i < p.n; i++)
		cr_assert_eq(audit_verifier_next(&v, &p.events[i]), 0, "%s", v.why);
	cr_assert_eq(audit_verifier_finish(&v, p.head_last_id, p.head_last_hash), 0, "%s", v.why);
	cr_assert_str_eq(p.events[2].request_id, "req-\xc3\xa9|3");
	cr_assert_null(p.events[1].actor_role);
	cr_assert(!p.events[1].has_body_sha256);
	audit_chain_page_free(&p);
	json_decref(j);
}

Test(audit_chain, page_refusals)
{
	static const char *const bad_texts[] = {
		"", "[]", "{}", "null", "{\"data\": [\"a\nb\"]}", "{\"data\n\": 1\n\n", "{\"data\": [], \"head\": {\"last_id\": 0}}",
		"{\"data\": [], \"head\": {\"last_id\": -1, \"last_hash\": \"00\"}}",
		"{\"data\": {}, \"head\": {\"last_id\": 0, \"last_hash\": "
		"\"0000000000000000000000000000000000000000000000000000000000000000\"}}",
		"{\"data\": [], \"data\": [], \"head\": {\"last_id\": 0, \"last_hash\": "
		"\"0000000000000000000000000000000000000000000000000000000000000000\"}}",
	};
	/* member, replacement (NULL: removed) */
	static const struct {
		const char *member, *json;
	} bad_members[] = {
		{"id", "\"1\""}, {"id", "0"}, {"id", "1.0"}, {"occurred_at", "\"2026\""},
		{"actor", "null"}, {"actor", "7"}, {"details", "{}"}, {"details", NULL},
		{"hash", "\"5A41\""}, {"hash", "\"zz416524d8658b7f6baf5bf73ca63a6258e7e5b163b60edb50a526f9c1ae8a65\""},
		{"prev_hash", "null"}, {"body_sha256", "\"\""}, {"surplus", "1"},
		{"actor", "\"nul\\u0000inside\""},
	};
	struct audit_chain_page p;
	char err[200];

	for (size_t i = 0; i < sizeof bad_texts / sizeof bad_texts[0]; i++) {
		cr_assert_eq(audit_chain_page_parse(bad_texts[i], strlen(bad_texts[i]), &p, err, sizeof err), -1,
			     "accepted %s", bad_texts[i]);
		cr_assert(err[0] && !strchr(err, '\n'), "one line: %s", err);
	}
	for (size_t i = 0; i < sizeof bad_members / sizeof bad_members[0]; i++) {
		json_t *j = page_json(), *ev = json_array_get(json_object_get(j, "data"), 1);

		if (bad_members[i].json)
			json_object_set_new(ev, bad_members[i].member,
					    json_loads(bad_members[i].json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL));
		else
			json_object_del(ev, bad_members[i].member);
		cr_assert_eq(parse_json(j, &p, err, sizeof err), -1, "accepted %s = %s", bad_members[i].member,
			     bad_members[i].json ? bad_members[i].json : "(removed)");
		json_decref(j);
	}
}

Test(audit_chain, page_bound)
{
	json_t *j = page_json(), *data = json_object_get(j, "data");
	struct audit_chain_page p;
	char err[200];

	while (json_array_size(data) <= AUDIT_CHAIN_PAGE_MAX)
		json_array_append_new(data, event_json(&vectors[0]));
	cr_assert_eq(parse_json(j, &p, err, sizeof err), -1);
	cr_assert(strstr(err, "more than 1000 events"), "%s", err);
	json_decref(j);
}
