/* The job journal: what the agent has done for a job it accepted, kept in
 * state_dir/jobs/<job_id>/ so a restart resumes the job where it stopped:
 *   journal.json  phase, the work item, the result once deployed
 *   key.pem       the job's new key (0600)
 *   cert.pem, chain.pem   the certificate and chain received
 *   backups.json and backup-N   the files a deploy replaced
 * Each file is written atomically; the phase is written before the step it
 * names is done (accepted before anything, csr_sent before the CSR goes out,
 * deploying before the first target file is replaced). */
#ifndef CERTWARD_AGENT_JOURNAL_H
#define CERTWARD_AGENT_JOURNAL_H

#include <limits.h>
#include <stddef.h>

#include <jansson.h>

#include "work.h"

enum job_phase {
	PHASE_ACCEPTED,
	PHASE_CSR_SENT,
	PHASE_RECEIVED,
	PHASE_DEPLOYING,
	PHASE_DEPLOYED,
	PHASE_REPORTED,
};

const char *job_phase_name(enum job_phase p);
int job_phase_from_name(const char *s, enum job_phase *p);

#define JOURNAL_ERROR_MAX 4096

struct journal {
	char dir[PATH_MAX];
	enum job_phase phase;
	struct work_job job;
	/* set once deployed: what to report */
	int result_ok;
	char result_error[JOURNAL_ERROR_MAX + 1];
	char serial[130];
};

/* state_dir/jobs/<job_id> into OUT. */
int journal_dir(const char *state_dir, const char *job_id, char *out, size_t outlen);

/* Creates the job's directory (0700) and journals it as accepted. */
int journal_create(const char *state_dir, const struct work_job *job, struct journal *j, char *why,
		   size_t whylen);
/* Writes J's phase (and result) atomically. */
int journal_save(struct journal *j, char *why, size_t whylen);
/* Sets the phase and saves. */
int journal_set_phase(struct journal *j, enum job_phase p, char *why, size_t whylen);
/* Reads DIR's journal.json: 0, or -1 with WHY. */
int journal_load(const char *dir, struct journal *j, char *why, size_t whylen);
void journal_free(struct journal *j);

/* The path of one of the job's files ("key.pem", "cert.pem", ...). */
void journal_file(const struct journal *j, const char *name, char *out, size_t outlen);

/* What a restart does with a journalled job. */
enum resume_action {
	RESUME_START,		/* make the key (if absent) and send the CSR */
	RESUME_RECOVER_CERT,	/* CSR sent, answer lost: fetch the certificate */
	RESUME_DEPLOY,		/* certificate at hand: deploy it */
	RESUME_RESTORE_DEPLOY,	/* crashed mid-deploy: restore the backups, deploy again */
	RESUME_REPORT,		/* deployed (or failed): report the result */
	RESUME_FORGET,		/* reported: remove the job's directory */
};

enum resume_action journal_resume_action(enum job_phase phase, int has_key, int has_cert);
const char *resume_action_name(enum resume_action a);

/* The job ids with a journal under state_dir/jobs (at most MAX, sorted);
 * returns the count, or -1. Each id is malloc'd. */
int journal_list(const char *state_dir, char **ids, size_t max);

#endif
