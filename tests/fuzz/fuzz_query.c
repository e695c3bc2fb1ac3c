/* libFuzzer target: the api's query-string parsing (workers/api/query.c).
 * Besides what the sanitizers see, what is accepted must keep query.h's
 * promises: at most QUERY_PAIRS_MAX pairs, non-empty names given once, no
 * value longer than the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void need(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct query q;
	char *s = malloc(size + 1);
	const char *why, *bad;
	long v;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (query_parse(&q, s, &why, &bad) == 0) {
		need(q.n <= QUERY_PAIRS_MAX);
		for (size_t i = 0; i < q.n; i++) {
			need(q.pair[i].name[0] != '\0' && strlen(q.pair[i].value) <= size);
			need(query_get(&q, q.pair[i].name) == q.pair[i].value);
		}
	} else {
		need(why != NULL && bad != NULL);
	}
	if (query_int(s, 1, 500, &v))
		need(v >= 1 && v <= 500);
	free(s);
	return 0;
}
