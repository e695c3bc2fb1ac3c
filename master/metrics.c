/*
 * /metrics and /ready data, assembled by the master for the api: the master
 * is the one process that knows every worker, so it asks each for its
 * snapshot and adds what only it can see (up, restarts, memory, open fds).
 * Output is the Prometheus text format, one family per metric name with a
 * `worker` label, families sorted by name.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "master.h"
#include "util.h"

#define SAMPLES_MAX 4096
#define NAME_MAX_LEN 96

struct sample {
	char name[NAME_MAX_LEN];
	char worker[32];
	double value;
};

struct gather {
	/* the asking api may die while we gather: answer only if the same
	 * process is still there */
	struct slot *asker;
	unsigned asker_generation;
	uint64_t req_id;
	unsigned waiting;
	struct sample *samples;
	size_t n;
};

static void add(struct gather *g, const char *name, const char *worker, double v)
{
	if (g->n >= SAMPLES_MAX)
		return;
	snprintf(g->samples[g->n].name, NAME_MAX_LEN, "%s", name);
	snprintf(g->samples[g->n].worker, sizeof g->samples[0].worker, "%s", worker);
	g->samples[g->n].value = v;
	g->n++;
}

static int valid_name(const char *s)
{
	if (!*s || (*s >= '0' && *s <= '9'))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

/* "name value" lines from a worker; anything else is skipped, not trusted */
static void parse_snapshot(struct gather *g, const char *worker, const uint8_t *p, size_t len)
{
	char line[256];
	size_t i = 0;

	while (i < len) {
		size_t j = i;
		char name[NAME_MAX_LEN], *end;
		double v;

		while (j < len && p[j] != '\n')
			j++;
		if (j - i < sizeof line) {
			memcpy(line, p + i, j - i);
			line[j - i] = '\0';
			if (sscanf(line, "%95s", name) == 1 && valid_name(name)) {
				const char *val = line + strlen(name);

				v = strtod(val, &end);
				if (end != val && (*end == '\0' || *end == ' '))
					add(g, name, worker, v);
			}
		}
		i = j + 1;
	}
}

static void process_figures(struct gather *g, const struct slot *s)
{
	char path[64], line[256];
	FILE *f;
	DIR *d;
	long fds = 0;
	struct dirent *e;

	add(g, "worker_up", s->name, s->state == SLOT_RUNNING);
	add(g, "worker_restarts_total", s->name, s->restarts);
	if (!s->pid)
		return;
	snprintf(path, sizeof path, "/proc/%d/status", (int)s->pid);
	if ((f = fopen(path, "re"))) {
		while (fgets(line, sizeof line, f)) {
			long kb;

			if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
				add(g, "process_resident_memory_bytes", s->name, (double)kb * 1024);
		}
		fclose(f);
	}
	snprintf(path, sizeof path, "/proc/%d/fd", (int)s->pid);
	if ((d = opendir(path))) {
		while ((e = readdir(d)))
			if (e->d_name[0] != '.')
				fds++;
		closedir(d);
		add(g, "process_open_fds", s->name, (double)fds);
	}
}

static int by_name(const void *a, const void *b)
{
	const struct sample *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->worker, y->worker);
}

static int is_counter(const char *name)
{
	size_t n = strlen(name);

	return n > 6 && strcmp(name + n - 6, "_total") == 0;
}

static void finish(struct gather *g)
{
	struct strbuf b;
	struct ipc_msg req = {.id = g->req_id}, r = {.type = IPC_T_METRICS_ALL};

	qsort(g->samples, g->n, sizeof g->samples[0], by_name);
	strbuf_init(&b, 1048576);
	for (size_t i = 0; i < g->n; i++) {
		const struct sample *s = &g->samples[i];

		if (i == 0 || strcmp(s->name, g->samples[i - 1].name) != 0) {
			/* counters are named *_total; Prometheus wants the family without it */
			if (is_counter(s->name)) {
				strbuf_printf(&b, "# HELP certward_%.*s certward %s counter.\n",
					      (int)(strlen(s->name) - 6), s->name, s->name);
				strbuf_printf(&b, "# TYPE certward_%.*s counter\n", (int)(strlen(s->name) - 6),
					      s->name);
			} else {
				strbuf_printf(&b, "# HELP certward_%s certward %s gauge.\n", s->name, s->name);
				strbuf_printf(&b, "# TYPE certward_%s gauge\n", s->name);
			}
		}
		strbuf_printf(&b, "certward_%s{worker=\"%s\"} %.17g\n", s->name, s->worker, s->value);
	}
	if (g->asker->control && g->asker->generation == g->asker_generation) {
		r.u.metrics_all.text.ptr = (const uint8_t *)(b.p ? b.p : "");
		r.u.metrics_all.text.len = (uint32_t)b.len;
		ipc_reply(g->asker->control, &req, &r);
	}
	strbuf_free(&b);
	free(g->samples);
	free(g);
}

struct ask {
	struct gather *g;
	char worker[32];
};

static void on_snapshot(int status, struct ipc_msg *reply, int fd, void *arg)
{
	struct ask *a = arg;
	struct gather *g = a->g;

	if (fd >= 0)
		close(fd);
	if (status == 0 && reply->type == IPC_T_METRICS)
		parse_snapshot(g, a->worker, reply->u.metrics.text.ptr, reply->u.metrics.text.len);
	free(a);
	if (--g->waiting == 0)
		finish(g);
}

void metrics_gather(struct slot *asker, const struct ipc_msg *req)
{
	struct gather *g = calloc(1, sizeof *g);
	uint64_t timeout = cfg_duration_ms(M.cfg, "master", "ipc_timeout");

	if (!g || !(g->samples = calloc(SAMPLES_MAX, sizeof g->samples[0]))) {
		free(g);
		ipc_reply_error(asker->control, req, ENOMEM, "out of memory");
		return;
	}
	g->asker = asker;
	g->asker_generation = asker->generation;
	g->req_id = req->id;
	g->waiting = 1; /* ourselves, until every question is out */
	for (size_t i = 0; i < M.nslots; i++) {
		struct slot *s = &M.slots[i];
		struct ipc_msg m = {.type = IPC_T_METRICS_GET};
		struct ask *a;

		if (s->retired)
			continue;
		process_figures(g, s);
		if (s->state != SLOT_RUNNING || !s->control || !(a = calloc(1, sizeof *a)))
			continue;
		a->g = g;
		snprintf(a->worker, sizeof a->worker, "%s", s->name);
		g->waiting++;
		if (ipc_request(s->control, &m, -1, timeout, on_snapshot, a) != 0) {
			g->waiting--;
			free(a);
		}
	}
	if (--g->waiting == 0)
		finish(g);
}

void workers_report(struct ipc_channel *reply_to, const struct ipc_msg *req)
{
	struct strbuf b;
	struct ipc_msg r = {.type = IPC_T_WORKERS};

	strbuf_init(&b, 16384);
	for (size_t i = 0; i < M.nslots; i++)
		if (!M.slots[i].retired)
			strbuf_printf(&b, "%s %s\n", M.slots[i].name, slot_state_name(&M.slots[i]));
	r.u.workers.text.ptr = (const uint8_t *)(b.p ? b.p : "");
	r.u.workers.text.len = (uint32_t)b.len;
	ipc_reply(reply_to, req, &r);
	strbuf_free(&b);
}
