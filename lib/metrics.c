/* Worker-side metrics registry; see metrics.h. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#define NAME_LEN 80
#define HASH_SIZE 2048 /* power of two, > 2 * METRICS_SERIES_MAX */

/* upper bounds in seconds; +Inf is implicit */
static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
				0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NBOUNDS (sizeof bounds / sizeof bounds[0])

enum kind { K_COUNTER, K_GAUGE, K_HIST };

struct series {
	char name[NAME_LEN];
	char labels[METRICS_LABELS_MAX];
	enum kind kind;
	double value; /* counter, gauge; histogram sum */
	uint64_t buckets[NBOUNDS + 1];
	uint64_t count;
};

struct metrics {
	struct series *s;
	size_t n;
	uint64_t dropped;
	int32_t slot[HASH_SIZE]; /* index + 1 into s, 0 = empty */
};

struct metrics *metrics_new(void)
{
	struct metrics *m = calloc(1, sizeof *m);

	if (m && !(m->s = calloc(METRICS_SERIES_MAX, sizeof *m->s))) {
		free(m);
		return NULL;
	}
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	free(m->s);
	free(m);
}

static uint32_t hash(const char *a, const char *b)
{
	uint32_t h = 2166136261u;

	for (; *a; a++)
		h = (h ^ (uint8_t)*a) * 16777619u;
	h = (h ^ '{') * 16777619u;
	for (; b && *b; b++)
		h = (h ^ (uint8_t)*b) * 16777619u;
	return h;
}

static struct series *find(struct metrics *m, const char *name, const char *labels, enum kind k)
{
	uint32_t i;

	if (!m)
		return NULL;
	if (!labels)
		labels = "";
	if (strlen(name) >= NAME_LEN || strlen(labels) >= METRICS_LABELS_MAX) {
		m->dropped++;
		return NULL;
	}
	for (i = hash(name, labels) & (HASH_SIZE - 1); m->slot[i]; i = (i + 1) & (HASH_SIZE - 1)) {
		struct series *s = &m->s[m->slot[i] - 1];

		if (strcmp(s->name, name) == 0 && strcmp(s->labels, labels) == 0)
			return s->kind == k ? s : NULL;
	}
	if (m->n >= METRICS_SERIES_MAX) {
		m->dropped++;
		return NULL;
	}
	struct series *s = &m->s[m->n];

	memcpy(s->name, name, strlen(name) + 1);
	memcpy(s->labels, labels, strlen(labels) + 1);
	s->kind = k;
	m->slot[i] = (int32_t)++m->n;
	return s;
}

void metrics_add(struct metrics *m, const char *name, const char *labels, double v)
{
	struct series *s = find(m, name, labels, K_COUNTER);

	if (s)
		s->value += v;
}

void metrics_set(struct metrics *m, const char *name, const char *labels, double v)
{
	struct series *s = find(m, name, labels, K_GAUGE);

	if (s)
		s->value = v;
}

void metrics_observe(struct metrics *m, const char *name, const char *labels, double seconds)
{
	struct series *s = find(m, name, labels, K_HIST);
	size_t i = 0;

	if (!s)
		return;
	while (i < NBOUNDS && seconds > bounds[i])
		i++;
	s->buckets[i]++;
	s->count++;
	s->value += seconds;
}

const char *metrics_labels(char *out, size_t size, ...)
{
	va_list ap;
	size_t len = 0;
	const char *k;
	int ok = 1;

	if (!size)
		return out;
	va_start(ap, size);
	while (ok && (k = va_arg(ap, const char *))) {
		const char *v = va_arg(ap, const char *);
		int n = snprintf(out + len, size - len, "%s%s=\"", len ? "," : "", k);

		if (n < 0 || (size_t)n >= size - len) {
			ok = 0;
			break;
		}
		len += (size_t)n;
		for (; v && *v && ok; v++) {
			const char *esc = *v == '"' ? "\\\"" : *v == '\\' ? "\\\\" : *v == '\n' ? "\\n" : NULL;
			size_t need = esc ? 2 : 1;

			if (len + need + 2 > size) {
				ok = 0;
				break;
			}
			if (esc)
				memcpy(out + len, esc, 2);
			else
				out[len] = *v;
			len += need;
		}
		if (!ok || len + 2 > size) {
			ok = 0;
			break;
		}
		out[len++] = '"';
		out[len] = '\0';
	}
	va_end(ap);
	if (!ok)
		len = 0;
	out[len] = '\0';
	return out;
}

static void sample(struct strbuf *out, const char *name, const char *suffix, const char *labels,
		   const char *extra, double v)
{
	const char *sep = *labels && extra ? "," : "";

	if (*labels || extra)
		strbuf_printf(out, "%s%s{%s%s%s} %.15g\n", name, suffix, labels, sep, extra ? extra : "",
			      v);
	else
		strbuf_printf(out, "%s%s %.15g\n", name, suffix, v);
}

void metrics_write(const struct metrics *m, struct strbuf *out)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		const struct series *s = &m->s[i];
		char le[32];
		uint64_t cum = 0;

		if (s->kind != K_HIST) {
			sample(out, s->name, "", s->labels, NULL, s->value);
			continue;
		}
		strbuf_printf(out, "# TYPE %s histogram\n", s->name);
		for (size_t b = 0; b <= NBOUNDS; b++) {
			cum += s->buckets[b];
			if (b < NBOUNDS)
				snprintf(le, sizeof le, "le=\"%g\"", bounds[b]);
			else
				snprintf(le, sizeof le, "le=\"+Inf\"");
			sample(out, s->name, "_bucket", s->labels, le, (double)cum);
		}
		sample(out, s->name, "_sum", s->labels, NULL, s->value);
		sample(out, s->name, "_count", s->labels, NULL, (double)s->count);
	}
	strbuf_printf(out, "metrics_series_dropped_total %llu\n", (unsigned long long)m->dropped);
}
