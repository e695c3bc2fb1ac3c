/* certward audit verify: the audit trail's hash chain checked from the
 * client's side (docs/operations.md, "Audit trail"). */
#ifndef CERTWARD_CLI_AUDIT_VERIFY_H
#define CERTWARD_CLI_AUDIT_VERIFY_H

#include <stdio.h>

/* argv[0] is "verify"; returns the exit status: 0 intact, 1 broken, 2
 * could not check. */
int audit_verify_main(int argc, char **argv);

/* Its line in `certward --help`. */
void audit_verify_usage(FILE *out);

#endif
