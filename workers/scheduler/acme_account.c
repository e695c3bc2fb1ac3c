#include "acme_account.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme_issuer.h"
#include "acme_queue.h"

static struct acme_queue *queue;

static bool deactivating(json_t *row)
{
	return strcmp(acme_row_str(row, "action", ""), "deactivate") == 0;
}

static void describe(json_t *row, char *out, size_t cap)
{
	char id[32];

	snprintf(out, cap, "ACME account %s of issuer %s (action %s)",
		 deactivating(row) ? "deactivation" : "key rollover", acme_row_str(row, "issuer_id", ""),
		 acme_row_id(row, id, sizeof id));
}

static int start(json_t *row, acme_done_cb done, void *arg, const char **refused)
{
	char *config = json_dumps(json_object_get(row, "issuer_config"), JSON_COMPACT);
	char id[32];
	struct acme_account_action a = {
		.id = acme_row_id(row, id, sizeof id),
		.issuer_id = acme_row_str(row, "issuer_id", ""),
		.issuer_config = config,
		.issuer_secret = acme_row_str(row, "issuer_secret", NULL),
		.deactivate = deactivating(row),
		.new_alg = acme_row_str(row, "new_algorithm", NULL),
		.old_thumbprint = acme_row_str(row, "old_thumbprint", NULL),
	};
	int rc = config ? acme_account_start(&a, done, arg) : -1;

	(void)refused;
	free(config);
	return rc;
}

int acme_account_loop_start(struct worker *w, const struct cfg *section)
{
	static const struct acme_queue_def def = {
		.loop = "acme_account_actions",
		.interval_key = "acme_account_interval",
		.claim_op = "acme_account_actions.claim",
		.list = "actions",
		.finish_op = "acme_account_actions.finish",
		.metric = "scheduler_acme_account_actions",
		.did = "ACME account actions sent to CAs",
		.describe = describe,
		.start = start,
	};

	(void)section;
	queue = acme_queue_start(w, &def);
	return queue ? 0 : -1;
}

void acme_account_metrics(struct strbuf *out)
{
	acme_queue_metrics(queue, out);
}
