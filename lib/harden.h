/*
 * Process hardening applied by every worker once it is configured and before
 * it handles outside input: PR_SET_NO_NEW_PRIVS and a seccomp allow-list
 * fitted to the worker. A syscall outside the list kills the process with
 * SIGSYS (after one log line naming the syscall).
 */
#ifndef CERTWARD_HARDEN_H
#define CERTWARD_HARDEN_H

#include <stddef.h>

enum {
	HARDEN_NET_CLIENT = 1 << 0, /* may create sockets and connect (store, scheduler, deploy, notifier) */
	HARDEN_NET_ACCEPT = 1 << 1, /* may accept on listeners opened before hardening (api) */
	HARDEN_EXEC = 1 << 2,       /* may fork and exec (deploy hooks) */
	HARDEN_SECRETS = 1 << 3,    /* holds keys: no core dumps, not dumpable (signer) */
};

/* Returns 0, or -1 with a message in err. */
int harden_apply(const char *worker, unsigned flags, char *err, size_t errlen);

#endif
