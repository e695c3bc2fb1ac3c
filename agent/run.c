/* certward-agent run: heartbeats, identity renewal, the work loop and
 * discovery, talking to the api over mTLS only. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "build_config.h"
#include "discovery.h"
#include "identity.h"
#include "challenges.h"
#include "jobs.h"
#include "log.h"
#include "util.h"
#include "work.h"

#define DEFAULT_CONFIG "/etc/certward-agent/agent.yml"
#define MAX_IPS 32

static void on_signal(int sig)
{
	(void)sig;
	agent_stop = 1;
}

static void run_usage(FILE *out)
{
	fprintf(out, "usage: certward-agent run [--config agent.yml] [--once]\n");
}

/* ---- heartbeat ----------------------------------------------------------- */

static int usable_address(const struct sockaddr *sa, char *out, size_t outlen)
{
	if (sa->sa_family == AF_INET) {
		const struct in_addr *a = &((const struct sockaddr_in *)sa)->sin_addr;
		uint32_t h = ntohl(a->s_addr);

		if ((h >> 24) == 127 || (h >> 16) == 0xa9fe) /* loopback, link-local */
			return 0;
		return inet_ntop(AF_INET, a, out, (socklen_t)outlen) != NULL;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_UNSPECIFIED(a))
			return 0;
		return inet_ntop(AF_INET6, a, out, (socklen_t)outlen) != NULL;
	}
	return 0;
}

static json_t *heartbeat_body(void)
{
	json_t *o = json_object(), *ips = json_array();
	struct utsname u;
	struct ifaddrs *ifa = NULL;
	char host[256] = "", first4[INET6_ADDRSTRLEN] = "", first[INET6_ADDRSTRLEN] = "";

	if (!o || !ips) {
		json_decref(o);
		json_decref(ips);
		return NULL;
	}
	if (gethostname(host, sizeof host - 1) == 0 && host[0])
		json_object_set_new(o, "hostname", json_string(host));
	if (uname(&u) == 0) {
		char os[65];

		snprintf(os, sizeof os, "%s", u.sysname);
		for (char *p = os; *p; p++)
			*p = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
		json_object_set_new(o, "os", json_string(os));
		json_object_set_new(o, "architecture", json_stringn(u.machine, strnlen(u.machine, 64)));
	}
	if (getifaddrs(&ifa) == 0) {
		for (struct ifaddrs *i = ifa; i && json_array_size(ips) < MAX_IPS; i = i->ifa_next) {
			char addr[INET6_ADDRSTRLEN];
			int dup = 0;
			size_t k;
			json_t *v;

			if (!i->ifa_addr || (i->ifa_flags & IFF_LOOPBACK) ||
			    !usable_address(i->ifa_addr, addr, sizeof addr))
				continue;
			json_array_foreach (ips, k, v)
				dup |= strcmp(json_string_value(v), addr) == 0;
			if (dup)
				continue;
			json_array_append_new(ips, json_string(addr));
			if (!first[0])
				snprintf(first, sizeof first, "%s", addr);
			if (!first4[0] && i->ifa_addr->sa_family == AF_INET)
				snprintf(first4, sizeof first4, "%s", addr);
		}
		freeifaddrs(ifa);
	}
	if (first4[0] || first[0])
		json_object_set_new(o, "ip_address", json_string(first4[0] ? first4 : first));
	json_object_set_new(o, "ip_addresses", ips);
	json_object_set_new(o, "version", json_string(CERTWARD_VERSION));
	return o;
}

enum hb { HB_OK, HB_RETIRED, HB_FAILED };

static enum hb heartbeat(struct agent_ctx *ctx)
{
	json_t *body = heartbeat_body();
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	char path[256], why[512];
	struct http_response r = {0};
	enum api_outcome o;
	enum hb rc = HB_FAILED;

	json_decref(body);
	if (!text)
		return HB_FAILED;
	snprintf(path, sizeof path, "/api/v1/agents/%s/heartbeat", ctx->st.agent_id);
	o = api_call(&ctx->api, "POST", path, text, strlen(text), &r, why, sizeof why);
	free(text);
	if (o != API_ANSWERED) {
		log_event(LOG_WARN, NULL, NULL, "heartbeat: %s", why);
		if (o == API_UNREACHABLE)
			agent_api_failed(ctx);
		return HB_FAILED;
	}
	if (r.status == 410) {
		rc = HB_RETIRED;
	} else if (r.status >= 200 && r.status < 300) {
		agent_api_succeeded(ctx);
		log_event(LOG_DEBUG, NULL, NULL, "heartbeat ok");
		rc = HB_OK;
	} else {
		api_problem(&r, why, sizeof why);
		log_event(r.status == 401 || r.status == 403 ? LOG_ERROR : LOG_WARN, NULL, NULL,
			  "heartbeat refused: %s%s", why,
			  r.status == 401 ? " (the identity is not valid: revoked or unknown)" : "");
		if (r.status >= 500)
			agent_api_failed(ctx);
	}
	http_response_free(&r);
	return rc;
}

static void maybe_renew_identity(struct agent_ctx *ctx)
{
	char why[768];
	int need = identity_needs_renewal(ctx->api.cert_path, time(NULL)), rc;

	if (need == 0)
		return;
	if (need < 0) {
		log_event(LOG_ERROR, NULL, NULL, "identity certificate %s unreadable", ctx->api.cert_path);
		return;
	}
	rc = identity_renew(&ctx->api, ctx->cfg.state_dir, &ctx->st, why, sizeof why);
	if (rc == 0) {
		log_event(LOG_INFO, NULL, NULL, "identity renewed (now %s)", ctx->api.cert_path);
	} else {
		log_event(LOG_WARN, NULL, NULL, "identity renewal: %s", why);
		if (rc == 1)
			agent_api_failed(ctx);
	}
}

/* ---- work ---------------------------------------------------------------- */

static void resume_local(struct agent_ctx *ctx, const struct work_list *listed)
{
	char *ids[256];
	int n = journal_list(ctx->cfg.state_dir, ids, 256);

	for (int i = 0; i < n; i++) {
		char dir[PATH_MAX], why[512];
		struct journal j;
		const struct work_job *w = NULL;

		for (size_t k = 0; listed && k < listed->njobs; k++)
			if (strcmp(listed->jobs[k].id, ids[i]) == 0)
				w = &listed->jobs[k];
		if (!agent_stop && journal_dir(ctx->cfg.state_dir, ids[i], dir, sizeof dir) == 0) {
			if (journal_load(dir, &j, why, sizeof why) == 0) {
				enum job_phase before = j.phase;
				char marker[PATH_MAX + 32];

				/* a CSR an ACME CA is being asked to sign: only the
				 * work list says whether the order is still under way */
				journal_file(&j, "ordered", marker, sizeof marker);
				if (!listed && access(marker, F_OK) == 0) {
					journal_free(&j);
					free(ids[i]);
					continue;
				}
				if (!listed)
					log_event(LOG_INFO, NULL, NULL, "job %s: resuming from %s", j.job.id,
						  job_phase_name(before));
				job_advance(ctx, &j, w);
				journal_free(&j);
			} else {
				log_event(LOG_ERROR, NULL, NULL, "job %s: unreadable journal: %s", ids[i], why);
			}
		}
		free(ids[i]);
	}
}

static int has_journal(struct agent_ctx *ctx, const char *id)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];

	if (journal_dir(ctx->cfg.state_dir, id, dir, sizeof dir) != 0)
		return 1; /* not a usable id: never take it */
	snprintf(path, sizeof path, "%s/journal.json", dir);
	return access(path, F_OK) == 0;
}

/* A Running Issuance/Renewal this agent has no journal of: its key is
 * gone (state_dir lost); say so rather than leave it running forever. */
static void report_orphan(struct agent_ctx *ctx, const struct work_job *w)
{
	struct journal j;
	char why[512];

	if (journal_create(ctx->cfg.state_dir, w, &j, why, sizeof why) != 0)
		return;
	snprintf(j.result_error, sizeof j.result_error,
		 "the agent has no record of this job (its state directory was lost): the key is gone");
	j.result_ok = 0;
	if (journal_set_phase(&j, PHASE_DEPLOYED, why, sizeof why) == 0)
		job_advance(ctx, &j, w);
	journal_free(&j);
}

static void poll_work(struct agent_ctx *ctx)
{
	char path[256], why[512];
	struct http_response r = {0};
	struct work_list l;
	enum api_outcome o;

	snprintf(path, sizeof path, "/api/v1/agents/%s/work", ctx->st.agent_id);
	o = api_call(&ctx->api, "GET", path, NULL, 0, &r, why, sizeof why);
	if (o != API_ANSWERED || r.status >= 500) {
		if (o == API_ANSWERED)
			api_problem(&r, why, sizeof why);
		log_event(LOG_WARN, NULL, NULL, "work: %s", why);
		if (o != API_BROKEN)
			agent_api_failed(ctx);
		http_response_free(&r);
		return;
	}
	if (r.status != 200) {
		api_problem(&r, why, sizeof why);
		log_event(LOG_WARN, NULL, NULL, "work refused: %s", why);
		http_response_free(&r);
		return;
	}
	agent_api_succeeded(ctx);
	if (work_parse(r.body, r.body_len, &l, why, sizeof why) != 0) {
		log_event(LOG_WARN, NULL, NULL, "work: %s", why);
		http_response_free(&r);
		return;
	}
	http_response_free(&r);
	if (l.skipped)
		log_event(LOG_WARN, NULL, NULL, "work: %zu malformed jobs left out: %s", l.skipped,
			  l.skipped_why);
	/* HTTP-01 challenges first: a CA is waiting for them */
	challenges_sync(ctx, &l);
	/* journalled jobs first (a retry after a lost answer), then new ones */
	resume_local(ctx, &l);
	for (size_t i = 0; i < l.njobs && !agent_stop && !agent_api_paused(ctx); i++) {
		const struct work_job *w = &l.jobs[i];

		if (has_journal(ctx, w->id))
			continue;
		if (strcmp(w->status, "AwaitingCSR") == 0 || strcmp(w->type, "Deployment") == 0)
			job_accept(ctx, w);
		else if (strcmp(w->status, "Running") == 0)
			report_orphan(ctx, w);
	}
	work_list_free(&l);
}

/* ---- discovery ----------------------------------------------------------- */

static void discover(struct agent_ctx *ctx)
{
	const struct agent_discovery *d = &ctx->cfg.discovery;
	struct discovery_limits lim = {.max_files = d->max_files, .max_file_size = d->max_file_size,
				       .max_certs = d->max_certs, .max_depth = d->max_depth};
	char why[512], path[256];
	json_t *report = discovery_scan((const char *const *)d->directories, d->ndirectories, &lim, why,
					sizeof why);
	char *text;
	struct http_response r = {0};
	enum api_outcome o;

	if (!report) {
		log_event(LOG_WARN, NULL, NULL, "discovery: %s", why);
		return;
	}
	json_object_set_new(report, "agent_id", json_string(ctx->st.agent_id));
	text = json_dumps(report, JSON_COMPACT);
	log_event(LOG_INFO, NULL, NULL, "discovery: %zu certificates, %zu errors",
		  json_array_size(json_object_get(report, "certificates")),
		  json_array_size(json_object_get(report, "errors")));
	json_decref(report);
	if (!text)
		return;
	snprintf(path, sizeof path, "/api/v1/agents/%s/discoveries", ctx->st.agent_id);
	o = api_call(&ctx->api, "POST", path, text, strlen(text), &r, why, sizeof why);
	free(text);
	if (o != API_ANSWERED) {
		log_event(LOG_WARN, NULL, NULL, "discovery report: %s", why);
		if (o == API_UNREACHABLE)
			agent_api_failed(ctx);
	} else if (r.status >= 300) {
		api_problem(&r, why, sizeof why);
		log_event(LOG_WARN, NULL, NULL, "discovery report refused: %s", why);
	} else {
		agent_api_succeeded(ctx);
	}
	http_response_free(&r);
}

/* ---- the loop ------------------------------------------------------------ */

static void sleep_until(uint64_t when)
{
	while (!agent_stop) {
		uint64_t now = now_ms();
		struct timespec ts;
		uint64_t left;

		if (now >= when)
			return;
		left = when - now > 1000 ? 1000 : when - now;
		ts.tv_sec = (time_t)(left / 1000);
		ts.tv_nsec = (long)(left % 1000) * 1000000L;
		nanosleep(&ts, NULL);
	}
}

static enum log_level level_of(enum agent_log_level l)
{
	switch (l) {
	case AGENT_LOG_DEBUG: return LOG_DEBUG;
	case AGENT_LOG_WARN: return LOG_WARN;
	case AGENT_LOG_ERROR: return LOG_ERROR;
	default: return LOG_INFO;
	}
}

int agent_run(int argc, char **argv)
{
	const char *config = DEFAULT_CONFIG;
	struct agent_ctx ctx;
	struct sigaction sa;
	char why[1024];
	int once = 0;
	uint64_t next_hb, next_poll, next_disc;

	for (int i = 1; i < argc; i++) {
		const char *v;

		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			run_usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--once") == 0) {
			once = 1;
			continue;
		}
		v = agent_option(argc, argv, &i, "--config");
		if (!v || !*v) {
			if (!v)
				fprintf(stderr, "certward-agent: run: unknown argument %s\n", argv[i]);
			run_usage(stderr);
			return AGENT_EXIT_USAGE;
		}
		config = v;
	}
	memset(&ctx, 0, sizeof ctx);
	if (agent_config_load(config, &ctx.cfg, why, sizeof why) != 0) {
		fprintf(stderr, "certward-agent: %s\n", why);
		return AGENT_EXIT_CONFIG;
	}
	log_init("agent");
	log_set_level(level_of(ctx.cfg.log_level));
	if (state_load(ctx.cfg.state_dir, &ctx.st, why, sizeof why) != 0) {
		log_event(LOG_ERROR, NULL, NULL, "%s", why);
		agent_config_free(&ctx.cfg);
		return AGENT_EXIT_IOERR;
	}
	ctx.api.http.url = ctx.cfg.server;
	ctx.api.http.cacert = ctx.cfg.cacert;
	ctx.api.http.user_agent = AGENT_USER_AGENT;
	identity_use(&ctx.api, ctx.cfg.state_dir, &ctx.st);
	/* the first retry after 1s, at most the poll interval (and 5 minutes) */
	backoff_init(&ctx.backoff, 1000,
		     ctx.cfg.poll_interval_ms < 300000 ? (ctx.cfg.poll_interval_ms > 1000 ? ctx.cfg.poll_interval_ms : 1000)
						       : 300000,
		     UINT64_MAX);

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	log_event(LOG_INFO, NULL, NULL, "agent %s starting (server %s, state %s, %zu targets)",
		  ctx.st.agent_id, ctx.cfg.server, ctx.cfg.state_dir, ctx.cfg.ntargets);
	/* jobs a previous run left unfinished, before anything new */
	resume_local(&ctx, NULL);
	next_hb = next_poll = next_disc = now_ms();
	while (!agent_stop) {
		uint64_t now = now_ms(), wake;

		if (!agent_api_paused(&ctx) && now >= next_hb) {
			enum hb h = heartbeat(&ctx);

			if (h == HB_RETIRED) {
				log_event(LOG_INFO, NULL, NULL,
					  "the agent is retired (410 Gone from the api): exiting");
				break;
			}
			if (h == HB_OK)
				maybe_renew_identity(&ctx);
			next_hb = now + ctx.cfg.heartbeat_interval_ms;
		}
		if (!agent_stop && !agent_api_paused(&ctx) && now >= next_poll) {
			poll_work(&ctx);
			next_poll = now_ms() + ctx.cfg.poll_interval_ms;
		} else if (!agent_stop && !agent_api_paused(&ctx)) {
			/* jobs waiting for the api since the last poll */
			resume_local(&ctx, NULL);
		}
		if (!agent_stop && ctx.cfg.discovery.ndirectories > 0 && !agent_api_paused(&ctx) &&
		    now >= next_disc) {
			discover(&ctx);
			next_disc = now_ms() + ctx.cfg.discovery.interval_ms;
		}
		if (once)
			break;
		wake = next_hb < next_poll ? next_hb : next_poll;
		if (ctx.cfg.discovery.ndirectories > 0 && next_disc < wake)
			wake = next_disc;
		if (agent_api_paused(&ctx))
			wake = ctx.retry_at;
		sleep_until(wake);
	}
	if (agent_stop)
		log_event(LOG_INFO, NULL, NULL, "stopping on a signal");
	agent_config_free(&ctx.cfg);
	return 0;
}
