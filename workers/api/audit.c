/* See audit.h. */
#include "audit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "store_client.h"

static struct {
	struct worker *w;
	bool fail_open;
} audit;

void audit_configure(struct worker *w, const struct cfg *section)
{
	const char *mode = cfg_str(section, "audit", "failure_mode");

	audit.w = w;
	/* the configuration accepts only fail_closed or fail_open */
	audit.fail_open = mode && strcmp(mode, "fail_open") == 0;
	if (audit.fail_open)
		log_warn("audit.failure_mode is fail_open: a change whose audit event cannot be "
			 "written is still made (logged and counted)");
}

bool audit_fail_open(void)
{
	return audit.fail_open;
}

void audit_count_write_failure(const char *action)
{
	char labels[METRICS_LABELS_MAX];

	if (!audit.w)
		return;
	metrics_add(worker_metrics(audit.w), "audit_write_failures_total",
		    metrics_labels(labels, sizeof labels, "action", action ? action : "", NULL), 1);
}

void audit_report_write_failure(const char *reqid, const char *action, const char *resource_type,
				const char *resource_id, int error, const char *message)
{
	char kv[LOG_LINE_MAX / 2], reason[64];
	size_t o = 0;
	const struct {
		const char *key, *value;
	} parts[] = {{"action", action}, {"resource_type", resource_type}, {"resource_id", resource_id}};

	/* A failed statement's message may quote a parameter: only its SQLSTATE
	 * is kept. Anything else is described by its errno. */
	if (message && strncmp(message, "SQLSTATE ", 9) == 0 && strlen(message) >= 14)
		snprintf(reason, sizeof reason, "SQLSTATE %.5s", message + 9);
	else
		snprintf(reason, sizeof reason, "%s", strerror(error ? error : EIO));
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		if (!parts[i].value || o + 8 + strlen(parts[i].key) >= sizeof kv)
			continue;
		o += (size_t)snprintf(kv + o, sizeof kv - o, "%s%s=", o ? " " : "", parts[i].key);
		o += log_quote(kv + o, sizeof kv - o, parts[i].value, strlen(parts[i].value));
	}
	if (o + 10 < sizeof kv) {
		o += (size_t)snprintf(kv + o, sizeof kv - o, "%sreason=", o ? " " : "");
		log_quote(kv + o, sizeof kv - o, reason, strlen(reason));
	}
	log_event(LOG_ERROR, reqid, kv, "AUDIT EVENT NOT RECORDED: the audit trail misses this event");
	audit_count_write_failure(action);
}

/* what the answer's callback needs to report a failure */
struct audit_pending {
	char reqid[129];
	char action[129];
	char resource_type[65];
	char resource_id[256];
	int has_resource_id;
};

static void on_recorded(const struct store_outcome *o, void *arg)
{
	struct audit_pending *p = arg;

	if (o->error)
		audit_report_write_failure(p->reqid[0] ? p->reqid : NULL, p->action, p->resource_type,
					   p->has_resource_id ? p->resource_id : NULL, o->error,
					   o->message);
	free(p);
}

void audit_record(struct worker *w, const struct audit_entry *e)
{
	const char *params[] = {e->actor, e->actor_type, e->actor_role, e->action,
				e->resource_type, e->resource_id, e->request_id,
				e->source_address, e->outcome, e->body_sha256, e->details};
	struct audit_pending *p = calloc(1, sizeof *p);
	int rc;

	if (!p) {
		audit_report_write_failure(e->request_id, e->action, e->resource_type, e->resource_id,
					   ENOMEM, NULL);
		return;
	}
	snprintf(p->reqid, sizeof p->reqid, "%s", e->request_id ? e->request_id : "");
	snprintf(p->action, sizeof p->action, "%s", e->action ? e->action : "");
	snprintf(p->resource_type, sizeof p->resource_type, "%s",
		 e->resource_type ? e->resource_type : "");
	snprintf(p->resource_id, sizeof p->resource_id, "%s", e->resource_id ? e->resource_id : "");
	p->has_resource_id = e->resource_id != NULL;
	rc = store_call(w, "audit.record", params, sizeof params / sizeof params[0], on_recorded, p);
	if (rc != 0)
		on_recorded(&(struct store_outcome){.error = -rc, .message = ""}, p);
}
