/* libFuzzer target: lib/dns.c's response parser on arbitrary datagrams.
 * The id and the name asked come from the input's first bytes, the rest is
 * the response, so the fuzzer can match both. An accepted answer keeps the
 * parser's promises: at most DNS_TXT_RECORDS_MAX records, each
 * NUL-terminated within DNS_TXT_MAX bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {"_acme-challenge.example.com", "a.example", "x", "_validation-persist.b.c."};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_txt_result r;
	char err[256];
	uint8_t q[DNS_QUERY_MAX];
	const char *name;

	if (size < 1)
		return 0;
	name = names[data[0] % (sizeof names / sizeof names[0])];
	data++;
	size--;
	if (dns_build_txt_query(q, sizeof q, 0x4242, name) < 0)
		abort();
	/* the id of the response itself, so its header's checks pass as often as not */
	if (dns_parse_txt_response(data, size, size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 0, name, &r, err,
				   sizeof err) == 0) {
		if (r.count > DNS_TXT_RECORDS_MAX)
			abort();
		for (size_t i = 0; i < r.count; i++)
			if (r.lengths[i] > DNS_TXT_MAX || r.records[i][r.lengths[i]] != '\0')
				abort();
		dns_txt_result_free(&r);
	} else if (!memchr(err, '\0', sizeof err) || !err[0]) {
		abort();
	}
	return 0;
}
