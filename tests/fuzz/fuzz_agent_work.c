/* libFuzzer target: the agent's parser of the api's work answer (the JSON
 * of GET /agents/{id}/work into job structures). Besides what the
 * sanitizers see, an accepted answer keeps the bounds later code relies on,
 * and a job survives the journal's round trip through JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "work.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void need(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct work_list l;
	char why[256];

	if (work_parse((const char *)data, size, &l, why, sizeof why) != 0)
		return 0;
	need(l.njobs <= WORK_MAX_JOBS);
	for (size_t i = 0; i < l.njobs; i++) {
		const struct work_job *j = &l.jobs[i];
		struct work_job back;
		json_t *o;

		need(work_id_ok(j->id) && work_id_ok(j->certificate_id));
		need(j->ntargets <= WORK_MAX_TARGETS && j->nsans <= WORK_MAX_SANS);
		need(key_params_ok(j->key_alg, j->key_bits));
		for (size_t k = 0; k < j->nsans; k++)
			need(strlen(j->sans[k]) <= WORK_NAME_MAX);
		for (size_t k = 0; k < j->ntargets; k++) {
			need(work_id_ok(j->targets[k].id));
			need(!j->targets[k].cert_path || strlen(j->targets[k].cert_path) <= WORK_PATH_MAX);
		}
		o = work_job_to_json(j);
		if (!o)
			continue;
		need(work_job_from_json(o, &back, why, sizeof why) == 0);
		need(strcmp(back.id, j->id) == 0 && back.ntargets == j->ntargets &&
		     back.nsans == j->nsans && back.key_bits == j->key_bits);
		work_job_free(&back);
		json_decref(o);
	}
	work_list_free(&l);
	return 0;
}
