/* libFuzzer target: a page of the audit chain feed as `certward audit
 * verify` reads it from a server (lib/audit_chain.h). Whatever arrives,
 * parsing either refuses it with a reason or yields events whose hashing
 * and checking stay in bounds; an accepted page keeps its promises. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit_chain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void need(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t zero[AUDIT_HASH_LEN];
	struct audit_chain_page p;
	struct audit_verifier v;
	char err[200];

	if (audit_chain_page_parse((const char *)data, size, &p, err, sizeof err) != 0) {
		need(err[0] != '\0' && strchr(err, '\n') == NULL);
		return 0;
	}
	need(p.n <= AUDIT_CHAIN_PAGE_MAX && p.head_last_id >= 0);
	audit_verifier_init(&v, p.n ? p.events[0].id : 1, zero);
	for (size_t i = 0; i < p.n; i++) {
		uint8_t h[AUDIT_HASH_LEN];

		need(p.events[i].id >= 1 && p.events[i].actor && p.events[i].actor_type &&
		     p.events[i].action && p.events[i].resource_type && p.events[i].outcome &&
		     p.events[i].details);
		(void)audit_chain_hash(&p.events[i], h);
		if (audit_verifier_next(&v, &p.events[i]) != 0) {
			need(v.why[0] != '\0');
			break;
		}
	}
	(void)audit_verifier_finish(&v, p.head_last_id, p.head_last_hash);
	audit_chain_page_free(&p);
	return 0;
}
