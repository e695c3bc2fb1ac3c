/* certward audit verify [--from ID]: reads the audit trail's hash chain
 * from GET /api/v1/audit/chain (admin key) page by page and recomputes it
 * (lib/audit_chain.h). Exit status: 0 intact, 1 broken (the first broken
 * link is named), 2 could not check (usage, server unreachable, refused
 * key, malformed answer). */
#include "audit_verify.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_cmds.h"
#include "audit_chain.h"
#include "https_client.h"
#include "util.h"

#define EXIT_INTACT 0
#define EXIT_BROKEN 1
#define EXIT_ERROR 2
#define PROGRESS_EVERY 10000

void audit_verify_usage(FILE *out)
{
	fprintf(out,
		"  audit verify [--from ID]    recompute the audit trail's hash chain (admin key):\n"
		"                              exit 0 intact, 1 broken (the first broken link is\n"
		"                              named), 2 could not check\n");
}

/* One page of events after id `after`; 0 with *p filled, or EXIT_ERROR
 * after saying why. A page too large for one answer is asked for again
 * in smaller pieces (*limit halves). */
static int fetch(const struct http_client *http, int64_t after, int *limit,
		 struct audit_chain_page *p)
{
	for (;;) {
		char path[96], err[512];
		struct http_response r;
		enum http_err e;
		int rc;

		snprintf(path, sizeof path, "/api/v1/audit/chain?after=%" PRId64 "&limit=%d", after,
			 *limit);
		e = http_request(http, "GET", path, NULL, 0, &r, err, sizeof err);
		if (e != HTTP_OK) {
			fprintf(stderr, "certward: %s\n", err);
			return EXIT_ERROR;
		}
		if (r.status == 422 && *limit > 1 && strstr(r.body, "\"field\":\"limit\"")) {
			http_response_free(&r);
			*limit /= 2;
			continue;
		}
		if (r.status != 200) {
			api_cmd_print_http_error(&r);
			http_response_free(&r);
			return EXIT_ERROR;
		}
		rc = audit_chain_page_parse(r.body, r.body_len, p, err, sizeof err);
		http_response_free(&r);
		if (rc != 0) {
			fprintf(stderr, "certward: the chain feed's answer is malformed: %s\n", err);
			return EXIT_ERROR;
		}
		return 0;
	}
}

static int report_broken(const struct audit_verifier *v)
{
	printf("audit chain broken at event %" PRId64 ": %s\n", v->broken_at, v->why);
	return EXIT_BROKEN;
}

/* the stored hash of event from - 1, which event `from` must follow */
static int anchor_of(const struct http_client *http, int64_t from, uint8_t anchor[AUDIT_HASH_LEN],
		     struct audit_verifier *v)
{
	struct audit_chain_page p;
	int limit = 1, rc;

	memset(anchor, 0, AUDIT_HASH_LEN);
	if (from == 1)
		return 0;
	if ((rc = fetch(http, from - 2, &limit, &p)) != 0)
		return rc;
	if (p.n == 0 && p.head_last_id < from - 1) {
		fprintf(stderr, "certward: --from %" PRId64 ": the chain ends at event %" PRId64 "\n",
			from, p.head_last_id);
		rc = EXIT_ERROR;
	} else if (p.n == 0 || p.events[0].id != from - 1) {
		v->broken_at = from - 1;
		snprintf(v->why, sizeof v->why, "missing (the event --from %" PRId64 " follows)", from);
		rc = report_broken(v);
	} else {
		memcpy(anchor, p.events[0].hash, AUDIT_HASH_LEN);
	}
	audit_chain_page_free(&p);
	return rc;
}

static int verify(const struct http_client *http, int64_t from)
{
	struct audit_verifier v = {0};
	uint8_t anchor[AUDIT_HASH_LEN];
	int limit = AUDIT_CHAIN_PAGE_MAX, rc;
	uint64_t next_progress = PROGRESS_EVERY;
	char head[2 * AUDIT_HASH_LEN + 1];

	if ((rc = anchor_of(http, from, anchor, &v)) != 0)
		return rc;
	audit_verifier_init(&v, from, anchor);
	for (;;) {
		struct audit_chain_page p;
		int asked;
		bool last;

		if ((rc = fetch(http, v.next_id - 1, &limit, &p)) != 0)
			return rc;
		asked = limit;
		for (size_t i = 0; i < p.n; i++) {
			if (audit_verifier_next(&v, &p.events[i]) != 0) {
				audit_chain_page_free(&p);
				return report_broken(&v);
			}
		}
		if (v.count >= next_progress) {
			fprintf(stderr, "certward: audit verify: %" PRIu64 " events checked, up to id %" PRId64 "\n",
				v.count, v.last_id);
			next_progress = (v.count / PROGRESS_EVERY + 1) * PROGRESS_EVERY;
		}
		/* a short page ends the chain; its head was read with it */
		last = p.n < (size_t)asked;
		if (last && audit_verifier_finish(&v, p.head_last_id, p.head_last_hash) != 0) {
			audit_chain_page_free(&p);
			return report_broken(&v);
		}
		audit_chain_page_free(&p);
		if (last)
			break;
	}
	hex_encode(v.prev, AUDIT_HASH_LEN, head);
	if (v.count)
		printf("audit chain intact: %" PRIu64 " events, ids %" PRId64 "..%" PRId64 ", head %s\n",
		       v.count, v.first_id, v.last_id, head);
	else
		printf("audit chain intact: 0 events, head %s\n", head);
	return EXIT_INTACT;
}

/* --from: an event id, digits only */
static bool event_id(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!isdigit((unsigned char)s[0]))
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < 1 || v == LLONG_MAX)
		return false;
	*out = v;
	return true;
}

int audit_verify_main(int argc, char **argv)
{
	struct http_client http;
	int64_t from = 1;
	char **rest = calloc((size_t)argc + 1, sizeof *rest);
	int nrest = 0, rc;

	if (!rest)
		return EXIT_ERROR;
	/* --from is ours; the rest are the REST commands' options */
	rest[nrest++] = argv[0];
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("usage: certward audit verify [--from ID] [options]\n\n");
			audit_verify_usage(stdout);
			printf("\noptions: --server URL, --cacert FILE, --api-key KEY, --timeout SECONDS\n"
			       "(see certward --help); the key must be an admin's\n");
			free(rest);
			return EXIT_INTACT;
		}
		if (strcmp(argv[i], "--from") != 0) {
			rest[nrest++] = argv[i];
			continue;
		}
		if (i + 1 >= argc || !event_id(argv[i + 1], &from)) {
			fprintf(stderr, "certward: --from takes an event id (an integer from 1)\n");
			free(rest);
			return EXIT_ERROR;
		}
		i++;
	}
	rc = api_cmd_client_options(nrest, rest, &http);
	free(rest);
	if (rc != 0)
		return EXIT_ERROR;
	return verify(&http, from);
}
