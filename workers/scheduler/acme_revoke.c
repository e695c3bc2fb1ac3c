#include "acme_revoke.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "acme_issuer.h"
#include "acme_queue.h"
#include "x509pem.h"

static struct acme_queue *queue;

static void describe(json_t *row, char *out, size_t cap)
{
	snprintf(out, cap, "revoking serial %s at the ACME CA", acme_row_str(row, "serial", ""));
}

static int start(json_t *row, acme_done_cb done, void *arg, const char **refused)
{
	char *config = json_dumps(json_object_get(row, "issuer_config"), JSON_COMPACT);
	const char *pem = json_string_value(json_object_get(row, "pem_chain"));
	uint8_t *der = NULL;
	size_t der_len = 0;
	struct acme_revocation rq;
	char id[32];
	int rc = -1;

	if (!pem || x509pem_first_der(pem, &der, &der_len) != 0) {
		*refused = "the certificate of this serial is not in the inventory";
	} else if (config) {
		rq = (struct acme_revocation){
			.id = acme_row_id(row, id, sizeof id),
			.issuer_id = acme_row_str(row, "issuer_id", ""),
			.issuer_config = config,
			.issuer_secret = acme_row_str(row, "issuer_secret", NULL),
			.reason = acme_row_str(row, "reason", "unspecified"),
			.der = der,
			.der_len = der_len,
		};
		rc = acme_revoke_start(&rq, done, arg);
	}
	free(der);
	free(config);
	return rc;
}

int acme_revoke_loop_start(struct worker *w, const struct cfg *section)
{
	static const struct acme_queue_def def = {
		.loop = "acme_revocations",
		.interval_key = "acme_revocation_interval",
		.claim_op = "acme_revocations.claim",
		.list = "revocations",
		.finish_op = "acme_revocations.finish",
		.metric = "scheduler_acme_revocations",
		.did = "revocations sent to ACME CAs",
		.describe = describe,
		.start = start,
	};

	(void)section;
	queue = acme_queue_start(w, &def);
	return queue ? 0 : -1;
}

void acme_revoke_metrics(struct strbuf *out)
{
	acme_queue_metrics(queue, out);
}
