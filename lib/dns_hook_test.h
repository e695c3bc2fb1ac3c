/*
 * Test hook "dns-hook" (lib/worker.c; builds with -Dtest_hooks=true only):
 * the worker sends certward-deploy a DNS_HOOK_RUN as the scheduler does for
 * a DNS-01 challenge. arg is the path of a file of four lines: hook,
 * action, record_name, value. The answer is logged when it comes:
 * "dns-hook <arg>: done" with exit_status= and output= (quoted), or
 * "dns-hook <arg>: error" with code= and the message.
 */
#ifndef CERTWARD_DNS_HOOK_TEST_H
#define CERTWARD_DNS_HOOK_TEST_H

#include <stddef.h>

#include "build_config.h"
#include "worker.h"

#if CERTWARD_TEST_HOOKS
int dns_hook_test_hook(struct worker *w, const char *arg, char *msg, size_t msglen);
#endif

#endif
