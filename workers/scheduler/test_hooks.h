/* The scheduler's test hooks (builds with -Dtest_hooks=true only). */
#ifndef CERTWARD_SCHEDULER_TEST_HOOKS_H
#define CERTWARD_SCHEDULER_TEST_HOOKS_H

#include <stddef.h>

#include "build_config.h"
#include "worker.h"

#if CERTWARD_TEST_HOOKS
/*
 * hook "acme-signer", arg the path of a JSON file naming a message the
 * scheduler sends the signer and its fields:
 *   {"message": "ACME_ACCOUNT_GET", "issuer_id": "...", "alg": "ES256"}
 *   {"message": "ACME_JWS_SIGN", "issuer_id": "...", "signing_input": "..."}
 *   {"message": "ACME_EAB_SIGN", "sealed": "<hex>", "signing_input": "..."}
 * The answer is logged when it comes, as "acme-signer <arg>: ok" with
 * jwk=<hex> thumbprint=... or signature=<hex>, or "acme-signer <arg>:
 * error" with code= and the message.
 */
int scheduler_test_hook(struct worker *w, const char *hook, const char *arg, char *msg, size_t msglen);
#endif

#endif
