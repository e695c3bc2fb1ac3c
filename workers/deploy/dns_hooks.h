/*
 * DNS-01 hooks run for the scheduler (DNS_HOOK_RUN -> DNS_HOOK_DONE):
 * <deploy.dns_hook_dir>/<hook> present|cleanup <record_name> <value>,
 * executed without a shell, with PATH and deploy.dns_hook_env as its whole
 * environment, stdin /dev/null, stdout and stderr into one pipe (4 KiB
 * kept), in a process group of its own that is killed after
 * deploy.dns_hook_timeout. At most deploy.dns_hook_max_parallel at once;
 * the others wait in order.
 */
#ifndef CERTWARD_DEPLOY_DNS_HOOKS_H
#define CERTWARD_DEPLOY_DNS_HOOKS_H

#include <stdbool.h>
#include <stddef.h>

#include "worker.h"

#define DNS_HOOK_OUTPUT_MAX 4096

/* The arguments of DNS_HOOK_RUN: 0, or -1 with the rule broken in err. */
int dns_hook_args_check(const char *hook, const char *action, const char *record_name, const char *value,
			char *err, size_t errlen);

/* Reads the deploy.dns_hook_* settings; 0, or -1 after logging. */
int dns_hooks_init(struct worker *w, const struct cfg *section);
void dns_hooks_on_run(struct worker *w, struct ipc_channel *from, struct ipc_msg *m);
/* The scheduler's channel went away: the answers of its runs are dropped. */
void dns_hooks_peer_closed(struct ipc_channel *ch);
/* Kills what still runs and frees the queue. */
void dns_hooks_stop(void);
void dns_hooks_metrics(struct strbuf *out);

#endif
