/* certward ca init --backend pkcs11 and certward ca import-cert: the
 * issuing CA's key made on a PKCS#11 token (through certward-p11, the
 * settings of certward.yml's signer section) and its certificate, either
 * self-signed on the token or signed by an outside CA from a CSR made on
 * the token (docs/operations.md, "certward ca"). */
#ifndef CERTWARD_CLI_CA_CMDS_H
#define CERTWARD_CLI_CA_CMDS_H

#include <stdio.h>

/* argv[0] is "init" / "import-cert"; exit status 0 done, 1 failed, 2 a bad
 * command line. */
int ca_init_main(int argc, char **argv);
void ca_init_usage(FILE *out);
int ca_import_cert_main(int argc, char **argv);
void ca_import_cert_usage(FILE *out);

#endif
