/* certward ledger verify FILE: recomputes the hash chain of a signing
 * ledger (lib/ledger.h) and names the first line that does not verify. */
#include "ledger_verify.h"

#include <inttypes.h>
#include <string.h>

#include "cli.h"
#include "ledger.h"

void ledger_verify_usage(FILE *out)
{
	fprintf(out,
		"  ledger verify FILE          recompute the signer's signing ledger (e.g.\n"
		"                              <state_dir>/signer/ledger): exit 0 intact, 1 broken\n"
		"                              (the first broken line is named), 2 could not check\n");
}

int ledger_verify_main(int argc, char **argv)
{
	struct ledger_check c;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: certward ledger verify FILE\n\n");
		ledger_verify_usage(stdout);
		return 0;
	}
	if (argc != 2)
		return cli_usage_error("certward ledger verify --help", "ledger verify: expected one FILE");
	if (ledger_verify_file(argv[1], &c) != 0) {
		if (!c.bad_line) {
			fprintf(stderr, "certward: ledger %s: %s\n", argv[1], c.why);
			return 2;
		}
		printf("ledger %s: BROKEN at line %" PRIu64 ": %s (%" PRIu64 " lines before it verify)\n",
		       argv[1], c.bad_line, c.why, c.entries);
		return 1;
	}
	printf("ledger %s: %" PRIu64 " signatures, chain intact, last hash %s%s\n", argv[1], c.entries,
	       c.last_hash, c.partial_tail ? " (an unfinished last line follows: a crash while writing it; "
					     "the signer removes it when it starts)" : "");
	return 0;
}
