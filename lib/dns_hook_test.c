/* See dns_hook_test.h. */
#include "dns_hook_test.h"

#if CERTWARD_TEST_HOOKS
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "log.h"

/* a hook's run waits for deploy.dns_hook_timeout and for other runs */
#define DNS_HOOK_TEST_DEADLINE_MS (10 * 60 * 1000)

struct dns_hook_call {
	char tag[40];
};

static void on_done(int status, struct ipc_msg *r, int fd, void *arg)
{
	struct dns_hook_call *h = arg;
	char kv[LOG_LINE_MAX / 2 + 64];
	size_t o;

	(void)fd;
	if (status != 0 || !r) {
		snprintf(kv, sizeof kv, "code=%d", -status);
		log_event(LOG_WARN, NULL, kv, "dns-hook %s: error: no answer", h->tag);
	} else if (r->type == IPC_T_ERROR) {
		snprintf(kv, sizeof kv, "code=%u", r->u.error.code);
		log_event(LOG_WARN, NULL, kv, "dns-hook %s: error: %s", h->tag, r->u.error.message);
	} else if (r->type == IPC_T_DNS_HOOK_DONE) {
		o = (size_t)snprintf(kv, sizeof kv, "exit_status=%u output_len=%u output=",
				     r->u.dns_hook_done.exit_status, r->u.dns_hook_done.output.len);
		log_quote(kv + o, sizeof kv - o, (const char *)r->u.dns_hook_done.output.ptr,
			  r->u.dns_hook_done.output.len);
		log_event(LOG_INFO, NULL, kv, "dns-hook %s: done", h->tag);
	}
	free(h);
}

int dns_hook_test_hook(struct worker *w, const char *arg, char *msg, size_t msglen)
{
	struct ipc_channel *ch = worker_peer(w, IPC_ROLE_DEPLOY);
	struct ipc_msg m = {.type = IPC_T_DNS_HOOK_RUN};
	char lines[4][300];
	struct dns_hook_call *h;
	FILE *f = fopen(arg, "re");
	int rc;

	for (int i = 0; i < 4; i++) {
		if (!f || !fgets(lines[i], sizeof lines[i], f)) {
			if (f)
				fclose(f);
			snprintf(msg, msglen, "%s: not four lines (hook, action, record_name, value)", arg);
			return -EINVAL;
		}
		lines[i][strcspn(lines[i], "\n")] = '\0';
	}
	fclose(f);
	m.u.dns_hook_run.hook = lines[0];
	m.u.dns_hook_run.action = lines[1];
	m.u.dns_hook_run.record_name = lines[2];
	m.u.dns_hook_run.value = lines[3];
	if (!(h = calloc(1, sizeof *h)))
		return -ENOMEM;
	snprintf(h->tag, sizeof h->tag, "%s", arg);
	rc = ch ? ipc_request(ch, &m, -1, DNS_HOOK_TEST_DEADLINE_MS, on_done, h) : -ENOTCONN;
	if (rc != 0) {
		free(h);
		snprintf(msg, msglen, "DNS_HOOK_RUN not sent (%d)", rc);
		return rc < 0 ? rc : -EIO;
	}
	snprintf(msg, msglen, "DNS_HOOK_RUN sent to deploy");
	return 0;
}
#endif
