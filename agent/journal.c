#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fsutil.h"

static const char *const phase_names[] = {"accepted", "csr_sent", "received",
					  "deploying", "deployed", "reported"};

const char *job_phase_name(enum job_phase p)
{
	return (unsigned)p < sizeof phase_names / sizeof phase_names[0] ? phase_names[p] : "?";
}

int job_phase_from_name(const char *s, enum job_phase *p)
{
	for (size_t i = 0; s && i < sizeof phase_names / sizeof phase_names[0]; i++)
		if (strcmp(s, phase_names[i]) == 0) {
			*p = (enum job_phase)i;
			return 0;
		}
	return -1;
}

int journal_dir(const char *state_dir, const char *job_id, char *out, size_t outlen)
{
	int n;

	if (!work_id_ok(job_id))
		return -1;
	n = snprintf(out, outlen, "%s/jobs/%s", state_dir, job_id);
	return n > 0 && (size_t)n < outlen ? 0 : -1;
}

void journal_file(const struct journal *j, const char *name, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%s", j->dir, name);
}

int journal_save(struct journal *j, char *why, size_t whylen)
{
	json_t *o = json_object(), *job = work_job_to_json(&j->job);
	char path[PATH_MAX + 32];
	int rc = -1;

	if (!o || !job ||
	    json_object_set_new(o, "phase", json_string(job_phase_name(j->phase))) != 0 ||
	    json_object_set(o, "job", job) != 0)
		goto oom;
	if (j->serial[0] && json_object_set_new(o, "serial", json_string(j->serial)) != 0)
		goto oom;
	if (j->phase >= PHASE_DEPLOYED &&
	    (json_object_set_new(o, "result", json_string(j->result_ok ? "Completed" : "Failed")) != 0 ||
	     json_object_set_new(o, "error", json_string(j->result_error)) != 0))
		goto oom;
	journal_file(j, "journal.json", path, sizeof path);
	rc = atomic_write_json(path, o, why, whylen);
	goto done;
oom:
	snprintf(why, whylen, "out of memory");
done:
	json_decref(job);
	json_decref(o);
	return rc;
}

int journal_set_phase(struct journal *j, enum job_phase p, char *why, size_t whylen)
{
	enum job_phase old = j->phase;

	j->phase = p;
	if (journal_save(j, why, whylen) != 0) {
		j->phase = old;
		return -1;
	}
	return 0;
}

int journal_create(const char *state_dir, const struct work_job *job, struct journal *j, char *why,
		   size_t whylen)
{
	json_t *copy;
	char jobs[PATH_MAX];

	memset(j, 0, sizeof *j);
	if (journal_dir(state_dir, job->id, j->dir, sizeof j->dir) != 0) {
		snprintf(why, whylen, "job id unusable as a directory name");
		return -1;
	}
	snprintf(jobs, sizeof jobs, "%s/jobs", state_dir);
	if (mkdir_p(jobs, 0700) != 0 || (mkdir(j->dir, 0700) != 0 && errno != EEXIST)) {
		snprintf(why, whylen, "cannot create %s: %s", j->dir, strerror(errno));
		return -1;
	}
	(void)fsync_dir(jobs);
	/* a deep copy through JSON: the journal owns its job */
	copy = work_job_to_json(job);
	if (!copy || work_job_from_json(copy, &j->job, why, whylen) != 0) {
		json_decref(copy);
		if (!copy)
			snprintf(why, whylen, "out of memory");
		return -1;
	}
	json_decref(copy);
	j->phase = PHASE_ACCEPTED;
	if (journal_save(j, why, whylen) != 0) {
		work_job_free(&j->job);
		return -1;
	}
	return 0;
}

int journal_load(const char *dir, struct journal *j, char *why, size_t whylen)
{
	char path[PATH_MAX + 32];
	json_error_t jerr;
	json_t *o;
	const char *s;

	memset(j, 0, sizeof *j);
	if (snprintf(j->dir, sizeof j->dir, "%s", dir) >= (int)sizeof j->dir) {
		snprintf(why, whylen, "path too long");
		return -1;
	}
	journal_file(j, "journal.json", path, sizeof path);
	o = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!o) {
		snprintf(why, whylen, "%s: %s", path, jerr.text);
		return -1;
	}
	if (job_phase_from_name(json_string_value(json_object_get(o, "phase")), &j->phase) != 0) {
		snprintf(why, whylen, "%s: unknown phase", path);
		goto fail;
	}
	if (work_job_from_json(json_object_get(o, "job"), &j->job, why, whylen) != 0)
		goto fail;
	s = json_string_value(json_object_get(o, "result"));
	j->result_ok = s && strcmp(s, "Completed") == 0;
	s = json_string_value(json_object_get(o, "error"));
	snprintf(j->result_error, sizeof j->result_error, "%s", s ? s : "");
	s = json_string_value(json_object_get(o, "serial"));
	snprintf(j->serial, sizeof j->serial, "%s", s ? s : "");
	json_decref(o);
	return 0;
fail:
	json_decref(o);
	return -1;
}

void journal_free(struct journal *j)
{
	work_job_free(&j->job);
}

enum resume_action journal_resume_action(enum job_phase phase, int has_key, int has_cert)
{
	switch (phase) {
	case PHASE_ACCEPTED:
		return RESUME_START;
	case PHASE_CSR_SENT:
		/* the certificate may have been saved just before the crash */
		if (has_cert)
			return RESUME_DEPLOY;
		return has_key ? RESUME_RECOVER_CERT : RESUME_START;
	case PHASE_RECEIVED:
		return RESUME_DEPLOY;
	case PHASE_DEPLOYING:
		return RESUME_RESTORE_DEPLOY;
	case PHASE_DEPLOYED:
		return RESUME_REPORT;
	case PHASE_REPORTED:
		return RESUME_FORGET;
	}
	return RESUME_START;
}

const char *resume_action_name(enum resume_action a)
{
	static const char *const names[] = {"start", "recover_certificate", "deploy",
					    "restore_and_deploy", "report", "forget"};

	return (unsigned)a < sizeof names / sizeof names[0] ? names[a] : "?";
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int journal_list(const char *state_dir, char **ids, size_t max)
{
	char jobs[PATH_MAX];
	DIR *d;
	struct dirent *de;
	size_t n = 0;

	snprintf(jobs, sizeof jobs, "%s/jobs", state_dir);
	d = opendir(jobs);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) && n < max) {
		if (!work_id_ok(de->d_name))
			continue;
		ids[n] = strdup(de->d_name);
		if (ids[n])
			n++;
	}
	closedir(d);
	qsort(ids, n, sizeof *ids, cmp_str);
	return (int)n;
}
