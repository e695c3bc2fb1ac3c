/* See output.h. */
#include "output.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Texts are bounded: a value of the largest answer fits. */
#define TEXT_LIMIT (64u * 1024u * 1024u)

/* Code points a terminal may act on rather than show. */
static int unsafe(uint32_t c)
{
	return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x200e || c == 0x200f ||
	       (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

void out_escape(struct strbuf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0;

	while (i < len) {
		uint32_t c = 0;
		size_t n = utf8_decode(p + i, len - i, &c);

		if (n > 0 && !unsafe(c)) {
			i += n;
			continue;
		}
		if (i > run)
			strbuf_printf(b, "%.*s", (int)(i - run), s + run);
		if (n == 0)
			strbuf_printf(b, "\\x%02x", p[i]), n = 1;
		else if (c == '\t' || c == '\n' || c == '\r')
			strbuf_printf(b, "\\%c", c == '\t' ? 't' : c == '\n' ? 'n' : 'r');
		else if (c < 0x80)
			strbuf_printf(b, "\\x%02x", (unsigned)c);
		else
			strbuf_printf(b, "\\u%04x", (unsigned)c);
		i += n;
		run = i;
	}
	if (i > run)
		strbuf_printf(b, "%.*s", (int)(i - run), s + run);
}

size_t out_width(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* Cuts text to max characters, the last three of them "...". */
static void cut(char *text, size_t max)
{
	size_t chars = 0;
	char *p;

	if (max < 4 || out_width(text) <= max)
		return;
	for (p = text; *p; p++) {
		if (((unsigned char)*p & 0xc0) != 0x80 && chars++ == max - 3)
			break;
	}
	strcpy(p, "...");
}

static int scalar(const json_t *v)
{
	return !json_is_object(v) && !json_is_array(v);
}

static void append_scalar(struct strbuf *b, const json_t *v)
{
	if (!v) {
		strbuf_printf(b, "-");
		return;
	}
	switch (json_typeof(v)) {
	case JSON_STRING: out_escape(b, json_string_value(v), json_string_length(v)); break;
	case JSON_INTEGER: strbuf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
	case JSON_REAL: strbuf_printf(b, "%.17g", json_real_value(v)); break;
	case JSON_TRUE: strbuf_printf(b, "true"); break;
	case JSON_FALSE: strbuf_printf(b, "false"); break;
	default: strbuf_printf(b, "-"); break;
	}
}

char *out_text(const json_t *v, size_t max)
{
	struct strbuf b;
	size_t i;
	json_t *m;
	int flat = json_is_array(v);

	strbuf_init(&b, TEXT_LIMIT);
	json_array_foreach(v, i, m) flat = flat && scalar(m);
	if (!v || scalar(v)) {
		append_scalar(&b, v);
	} else if (flat) {
		json_array_foreach(v, i, m) {
			if (i)
				strbuf_printf(&b, ", ");
			append_scalar(&b, m);
		}
	} else {
		char *dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

		if (dump)
			out_escape(&b, dump, strlen(dump));
		else
			b.truncated = 1;
		free(dump);
	}
	if (!b.p && !b.truncated)
		strbuf_printf(&b, "%s", "");
	if (b.truncated) {
		strbuf_free(&b);
		return NULL;
	}
	if (max > 0)
		cut(b.p, max);
	return b.p;
}

void table_init(struct table *t, const char *const *cols, size_t ncols)
{
	memset(t, 0, sizeof *t);
	t->cols = cols;
	t->ncols = ncols;
	t->seen = calloc(ncols ? ncols : 1, 1);
}

int table_add(struct table *t, const json_t *row)
{
	char **cells;

	if (!t->seen)
		return -1;
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;

		cells = realloc(t->cells, cap * t->ncols * sizeof *cells);
		if (!cells)
			return -1;
		t->cells = cells;
		t->cap = cap;
	}
	cells = t->cells + t->nrows * t->ncols;
	for (size_t c = 0; c < t->ncols; c++) {
		json_t *v = json_is_object(row) ? json_object_get(row, t->cols[c]) : NULL;

		if (v)
			t->seen[c] = 1;
		cells[c] = out_text(v, c == 0 ? 0 : OUT_CELL_MAX);
		if (!cells[c]) {
			while (c-- > 0)
				free(cells[c]);
			return -1;
		}
	}
	t->nrows++;
	return 0;
}

void table_print(const struct table *t, FILE *out)
{
	size_t *width, last = 0;

	if (t->nrows == 0 || !(width = calloc(t->ncols, sizeof *width)))
		return;
	for (size_t c = 0; c < t->ncols; c++) {
		if (!t->seen[c])
			continue;
		width[c] = strlen(t->cols[c]);
		for (size_t r = 0; r < t->nrows; r++) {
			size_t w = out_width(t->cells[r * t->ncols + c]);

			if (w > width[c])
				width[c] = w;
		}
		last = c;
	}
	for (size_t r = 0; r <= t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *text = r == 0 ? t->cols[c] : t->cells[(r - 1) * t->ncols + c];

			if (!t->seen[c])
				continue;
			for (const char *p = text; *p; p++)
				fputc(r == 0 && *p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p, out);
			if (c == last)
				break;
			/* pad by characters, not bytes */
			for (size_t w = out_width(text); w < width[c] + 2; w++)
				fputc(' ', out);
		}
		fputc('\n', out);
	}
	free(width);
}

void table_free(struct table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->seen);
	memset(t, 0, sizeof *t);
}

void out_fields(const json_t *obj, FILE *out)
{
	size_t n = json_object_size(obj), i = 0, width = 0;
	char **keys = calloc(n ? n : 1, sizeof *keys), **vals = calloc(n ? n : 1, sizeof *vals);
	const char *k;
	json_t *v;

	if (!keys || !vals)
		goto done;
	json_object_foreach((json_t *)obj, k, v) {
		struct strbuf b;

		strbuf_init(&b, TEXT_LIMIT);
		out_escape(&b, k, strlen(k));
		keys[i] = b.p ? b.p : strdup("");
		vals[i] = out_text(v, 0);
		if (!keys[i] || !vals[i])
			goto done;
		if (out_width(keys[i]) > width)
			width = out_width(keys[i]);
		i++;
	}
	for (size_t j = 0; j < i; j++) {
		fprintf(out, "%s:", keys[j]);
		for (size_t w = out_width(keys[j]); w < width + 1; w++)
			fputc(' ', out);
		fprintf(out, "%s\n", vals[j]);
	}
done:
	for (size_t j = 0; keys && vals && j < n; j++) {
		free(keys[j]);
		free(vals[j]);
	}
	free(keys);
	free(vals);
}
