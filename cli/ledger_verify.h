/* certward ledger verify FILE: the signer's signing ledger checked where it
 * lies (docs/pki.md, "The signing ledger"). */
#ifndef CERTWARD_CLI_LEDGER_VERIFY_H
#define CERTWARD_CLI_LEDGER_VERIFY_H

#include <stdio.h>

/* argv[0] is "verify"; exit status 0 intact, 1 broken, 2 could not check. */
int ledger_verify_main(int argc, char **argv);
void ledger_verify_usage(FILE *out);

#endif
