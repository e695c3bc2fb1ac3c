/* libFuzzer target: a signing ledger as `certward ledger verify` and the
 * signer at start read it (lib/ledger.h). Whatever the file holds, each
 * line is accepted or refused with a reason and its number, and nothing
 * after a refused line is accepted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void need(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ledger_check c;
	const char *p = (const char *)data, *end = p + size;
	uint64_t lines = 0;

	ledger_check_init(&c);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		uint64_t before = c.entries;
		int rc = ledger_check_line(&c, p, len);

		lines++;
		if (rc == 0) {
			need(c.entries == before + 1 && c.bad_line == 0 && strlen(c.last_hash) == 64);
		} else {
			need(c.entries == before && c.bad_line == before + 1 && c.why[0] != '\0');
			/* once broken, always broken */
			need(ledger_check_line(&c, p, len) == -1 && c.bad_line == before + 1);
			break;
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	need(c.entries <= lines);
	return 0;
}
