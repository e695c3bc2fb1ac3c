/*
 * /metrics and /ready data, assembled by the master for the api: the master
 * is the one process that knows every worker, so it asks each for its
 * snapshot and adds what only it can see (up, restarts, memory, open fds).
 * Output is the Prometheus text format, one family per metric name with a
 * `worker` label, families sorted by name.
 */
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "master.h"
#include "util.h"

#define SAMPLES_MAX 65536
#define NAME_MAX_LEN 96
#define FAMILIES_MAX 256

struct sample {
	char name[NAME_MAX_LEN];   /* the sample's name: family or family_bucket/_sum/_count */
	char family[NAME_MAX_LEN]; /* what HELP/TYPE and sorting use */
	char worker[32];
	char labels[METRICS_LABELS_MAX];
	bool histogram;
	size_t seq; /* arrival order, kept within a family and worker (bucket order) */
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
	size_t n, cap;
};

static struct sample *add_labeled(struct gather *g, const char *name, const char *worker,
				  const char *labels, double v)
{
	struct sample *s;

	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 1024;

		if (cap > SAMPLES_MAX || !(s = realloc(g->samples, cap * sizeof *s)))
			return NULL;
		g->samples = s;
		g->cap = cap;
	}
	s = &g->samples[g->n];
	snprintf(s->name, NAME_MAX_LEN, "%s", name);
	snprintf(s->family, NAME_MAX_LEN, "%s", name);
	snprintf(s->worker, sizeof s->worker, "%s", worker);
	snprintf(s->labels, sizeof s->labels, "%s", labels);
	s->histogram = false;
	s->seq = g->n;
	s->value = v;
	g->n++;
	return s;
}

static void add(struct gather *g, const char *name, const char *worker, double v)
{
	add_labeled(g, name, worker, "", v);
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

/* k="v",... with lowercase label names, escaped values, no `worker` label */
static int valid_labels(const char *s)
{
	while (*s) {
		const char *k = s;

		while ((*s >= 'a' && *s <= 'z') || *s == '_')
			s++;
		if (s == k || (s - k == 6 && strncmp(k, "worker", 6) == 0) || *s++ != '=' || *s++ != '"')
			return 0;
		while (*s && *s != '"') {
			if ((unsigned char)*s < 0x20)
				return 0;
			if (*s == '\\') {
				s++;
				if (*s != '\\' && *s != '"' && *s != 'n')
					return 0;
			}
			s++;
		}
		if (*s++ != '"')
			return 0;
		if (*s == ',')
			s++;
		else if (*s)
			return 0;
	}
	return 1;
}

static bool is_histogram_family(char hist[][NAME_MAX_LEN], size_t nhist, const char *name,
				char *family)
{
	static const char *const suffixes[] = {"_bucket", "_sum", "_count"};

	for (size_t i = 0; i < nhist; i++) {
		size_t fl = strlen(hist[i]);

		if (strncmp(name, hist[i], fl) != 0)
			continue;
		for (size_t k = 0; k < 3; k++)
			if (strcmp(name + fl, suffixes[k]) == 0) {
				memcpy(family, hist[i], fl + 1);
				return true;
			}
	}
	return false;
}

/* Snapshot lines from a worker (lib/metrics.h); anything else is skipped, not trusted. */
static void parse_snapshot(struct gather *g, const char *worker, const uint8_t *p, size_t len)
{
	static char hist[FAMILIES_MAX][NAME_MAX_LEN];
	size_t nhist = 0;
	char line[512];
	size_t i = 0;

	while (i < len) {
		size_t j = i;

		while (j < len && p[j] != '\n')
			j++;
		if (j - i < sizeof line) {
			char name[NAME_MAX_LEN], labels[METRICS_LABELS_MAX + 32] = "", family[NAME_MAX_LEN];
			const char *rest;
			char *end;
			size_t nl;
			double v;

			memcpy(line, p + i, j - i);
			line[j - i] = '\0';
			if (strncmp(line, "# TYPE ", 7) == 0) {
				if (sscanf(line + 7, "%95s histogram", name) == 1 && valid_name(name) &&
				    nhist < FAMILIES_MAX && strstr(line + 7, " histogram"))
					memcpy(hist[nhist++], name, strlen(name) + 1);
				goto next;
			}
			nl = strspn(line, "abcdefghijklmnopqrstuvwxyz0123456789_");
			if (nl == 0 || nl >= NAME_MAX_LEN)
				goto next;
			memcpy(name, line, nl);
			name[nl] = '\0';
			rest = line + nl;
			if (*rest == '{') {
				const char *close = strrchr(rest, '}');
				size_t ll;

				if (!close || (ll = (size_t)(close - rest - 1)) >= METRICS_LABELS_MAX)
					goto next;
				memcpy(labels, rest + 1, ll);
				labels[ll] = '\0';
				rest = close + 1;
				if (!valid_labels(labels))
					goto next;
			}
			if (*rest != ' ' || !valid_name(name))
				goto next;
			v = strtod(rest, &end);
			if (end == rest || *end != '\0') {
				goto next;
			}
			struct sample *s = add_labeled(g, name, worker, labels, v);

			if (s && is_histogram_family(hist, nhist, name, family)) {
				memcpy(s->family, family, strlen(family) + 1);
				s->histogram = true;
			}
		}
	next:
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

static int by_family(const void *a, const void *b)
{
	const struct sample *x = a, *y = b;
	int c = strcmp(x->family, y->family);

	if (!c)
		c = strcmp(x->worker, y->worker);
	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static int is_counter(const char *name)
{
	size_t n = strlen(name);

	return n > 6 && strcmp(name + n - 6, "_total") == 0;
}

/* Text format 0.0.4: a counter's family is named like its samples (*_total). */
static void family_header(struct strbuf *b, const struct sample *s)
{
	const char *type = s->histogram ? "histogram" : is_counter(s->family) ? "counter" : "gauge";

	strbuf_printf(b, "# HELP certward_%s certward %s %s.\n", s->family, s->family, type);
	strbuf_printf(b, "# TYPE certward_%s %s\n", s->family, type);
}

static void finish(struct gather *g)
{
	struct strbuf b;
	struct ipc_msg req = {.id = g->req_id}, r = {.type = IPC_T_METRICS_ALL};

	qsort(g->samples, g->n, sizeof g->samples[0], by_family);
	strbuf_init(&b, 1048576);
	for (size_t i = 0; i < g->n; i++) {
		const struct sample *s = &g->samples[i];

		if (i == 0 || strcmp(s->family, g->samples[i - 1].family) != 0)
			family_header(&b, s);
		strbuf_printf(&b, "certward_%s{worker=\"%s\"%s%s} %.15g\n", s->name, s->worker,
			      *s->labels ? "," : "", s->labels, s->value);
	}
	if (b.truncated)
		log_warn("metrics: the exposition exceeds %zu bytes and was cut", b.limit);
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

	if (!g) {
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
