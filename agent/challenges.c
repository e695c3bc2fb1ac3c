/* See challenges.h. */
#include "challenges.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deploy.h"
#include "fsutil.h"
#include "log.h"

#define WELL_KNOWN "/.well-known"
#define CHALLENGE_DIR "/.well-known/acme-challenge"

/* A directory that is one (not a symbolic link to one), made 0755 when
 * missing: 0, or -1 with why. */
static int real_dir(const char *path, char *why, size_t whylen)
{
	struct stat st;

	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		snprintf(why, whylen, "%.300s: %s", path, strerror(errno));
		return -1;
	}
	if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "%.300s: not a directory (a symbolic link is not followed)", path);
		return -1;
	}
	return 0;
}

/*
 * The file the key authorization goes to: under agent.yml's acme_webroot of
 * the target when agent.yml describes it (a target described there without
 * one gets nothing), else under the server target's, which must lie under
 * allowed_paths like any path the server gives.
 */
static int challenge_path(const struct agent_config *cfg, const struct work_challenge *c, char *out, size_t cap,
			  char *why, size_t whylen)
{
	const struct agent_target *at = deploy_local_target(cfg, c->target_id, c->target_name);
	char probe[PATH_MAX], resolved[PATH_MAX], dir[PATH_MAX];
	size_t n;

	*why = '\0';
	if (at && !at->acme_webroot) {
		snprintf(why, whylen, "target %s in agent.yml has no acme_webroot", at->name);
		return -1;
	}
	if (!at && !c->webroot) {
		snprintf(why, whylen, "target %s has no acme_webroot", c->target_id);
		return -1;
	}
	if (at) {
		snprintf(resolved, sizeof resolved, "%s%s", at->acme_webroot, WELL_KNOWN);
	} else {
		if (snprintf(probe, sizeof probe, "%s%s", c->webroot, WELL_KNOWN) >= (int)sizeof probe) {
			snprintf(why, whylen, "acme_webroot: too long");
			return -1;
		}
		if (!agent_path_allowed(cfg, probe, resolved, why, whylen))
			return -1;
	}
	n = strlen(resolved);
	if (n + strlen("/acme-challenge/") + strlen(c->token) + 1 > cap || n + 16 > sizeof dir) {
		snprintf(why, whylen, "acme_webroot: too long");
		return -1;
	}
	if (real_dir(resolved, why, whylen) != 0)
		return -1;
	if (snprintf(dir, sizeof dir, "%s/acme-challenge", resolved) >= (int)sizeof dir || real_dir(dir, why, whylen) != 0 ||
	    snprintf(out, cap, "%s/%s", dir, c->token) >= (int)cap) {
		if (!*why)
			snprintf(why, whylen, "acme_webroot: too long");
		return -1;
	}
	return 0;
}

static void report(struct agent_ctx *ctx, const struct work_challenge *c, const char *error)
{
	char path[512], why[512];
	json_t *body = json_pack("{s:s}", "status", error ? "failed" : "ready");
	char *text;
	struct http_response r = {0};

	if (body && error)
		json_object_set_new(body, "error", json_string(error));
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!text)
		return;
	snprintf(path, sizeof path, "/api/v1/agents/%s/challenges/%s", ctx->st.agent_id, c->token);
	if (api_call(&ctx->api, "POST", path, text, strlen(text), &r, why, sizeof why) != API_ANSWERED)
		log_event(LOG_WARN, NULL, NULL, "challenge %s: the report did not reach the api: %s", c->token, why);
	else if (r.status != 200) {
		api_problem(&r, why, sizeof why);
		log_event(LOG_WARN, NULL, NULL, "challenge %s: report refused: %s", c->token, why);
	}
	http_response_free(&r);
	free(text);
}

/* state_dir/challenges/<token> keeps the path written, for the cleanup */
static void record_path(const struct agent_ctx *ctx, const char *token, char *out, size_t cap)
{
	snprintf(out, cap, "%s/challenges/%s", ctx->cfg.state_dir, token);
}

static void put(struct agent_ctx *ctx, const struct work_challenge *c)
{
	char file[PATH_MAX], rec[PATH_MAX + 160], why[512];

	if (challenge_path(&ctx->cfg, c, file, sizeof file, why, sizeof why) == 0) {
		snprintf(rec, sizeof rec, "%s/challenges", ctx->cfg.state_dir);
		if (mkdir_p(rec, 0700) != 0) {
			snprintf(why, sizeof why, "%.300s: %s", rec, strerror(errno));
		} else {
			record_path(ctx, c->token, rec, sizeof rec);
			/* recorded first: a file written is always one the cleanup finds */
			if (atomic_write(rec, file, strlen(file), 0600, NULL, why, sizeof why) == 0 &&
			    atomic_write(file, c->key_authorization, strlen(c->key_authorization), 0644, NULL, why,
					 sizeof why) == 0) {
				log_event(LOG_INFO, NULL, NULL, "challenge %s: written to %s", c->token, file);
				report(ctx, c, NULL);
				return;
			}
		}
	}
	log_event(LOG_WARN, NULL, NULL, "challenge %s (target %s): %s", c->token, c->target_id, why);
	report(ctx, c, why);
}

static int listed(const struct work_list *l, const char *token)
{
	for (size_t i = 0; i < l->nchallenges; i++)
		if (strcmp(l->challenges[i].token, token) == 0)
			return 1;
	return 0;
}

/* The files of challenges the api no longer lists (decided, expired) */
static void sweep(struct agent_ctx *ctx, const struct work_list *l)
{
	char dir[PATH_MAX];
	DIR *d;
	struct dirent *e;

	snprintf(dir, sizeof dir, "%s/challenges", ctx->cfg.state_dir);
	if (!(d = opendir(dir)))
		return;
	while ((e = readdir(d))) {
		char rec[PATH_MAX + 160], *file;
		size_t len = 0;

		if (e->d_name[0] == '.' || listed(l, e->d_name))
			continue;
		record_path(ctx, e->d_name, rec, sizeof rec);
		file = read_file_max(rec, PATH_MAX, &len);
		/* only a file of the token's own name in an acme-challenge directory */
		if (file && len > strlen(e->d_name) + 1 && memchr(file, 0, len) == NULL &&
		    strcmp(file + len - strlen(e->d_name), e->d_name) == 0 &&
		    strstr(file, CHALLENGE_DIR "/") != NULL) {
			if (unlink(file) != 0 && errno != ENOENT)
				log_event(LOG_WARN, NULL, NULL, "challenge %s: cannot remove %s: %s", e->d_name, file,
					  strerror(errno));
			else
				log_event(LOG_INFO, NULL, NULL, "challenge %s: removed", e->d_name);
		}
		free(file);
		(void)unlink(rec);
	}
	closedir(d);
}

void challenges_sync(struct agent_ctx *ctx, const struct work_list *l)
{
	for (size_t i = 0; i < l->nchallenges && !agent_stop; i++) {
		const struct work_challenge *c = &l->challenges[i];

		/* ready or failed: reported already */
		if (strcmp(c->state, "waiting") == 0)
			put(ctx, c);
	}
	sweep(ctx, l);
}
