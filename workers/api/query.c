/* See query.h. */
#include "query.h"

#include <string.h>

#include "util.h"

bool query_unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == '%') {
			int hi = hex_digit(s[1]), lo = hi < 0 ? -1 : hex_digit(s[2]);

			if (lo < 0 || (hi == 0 && lo == 0))
				return false;
			*o++ = (char)(hi << 4 | lo);
			s += 2;
		} else {
			*o++ = *s == '+' ? ' ' : *s;
		}
	}
	*o = '\0';
	return true;
}

bool query_int(const char *s, long lo, long hi, long *out)
{
	long v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 18)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

const char *query_get(const struct query *q, const char *name)
{
	for (size_t i = 0; i < q->n; i++)
		if (strcmp(q->pair[i].name, name) == 0)
			return q->pair[i].value;
	return NULL;
}

int query_parse(struct query *q, const char *text, const char **why, const char **bad)
{
	char *p, *end;

	q->n = 0;
	*bad = "";
	if (strlen(text) > QUERY_MAX) {
		*why = "the query is too long";
		return -1;
	}
	memcpy(q->buf, text, strlen(text) + 1);
	for (p = q->buf; *p; p = end) {
		char *eq;

		end = p + strcspn(p, "&");
		if (*end)
			*end++ = '\0';
		if (!*p)
			continue; /* "a=1&&b=2", a trailing '&' */
		if (q->n == QUERY_PAIRS_MAX) {
			*why = "too many query parameters";
			return -1;
		}
		if (!(eq = strchr(p, '=')) || eq == p) {
			*why = "a query parameter without a name or a value";
			return -1;
		}
		*eq = '\0';
		if (!query_unescape(p) || !query_unescape(eq + 1)) {
			*why = "a malformed percent-escape in the query";
			return -1;
		}
		if (query_get(q, p)) {
			*why = "a query parameter given twice";
			*bad = p;
			return -1;
		}
		q->pair[q->n].name = p;
		q->pair[q->n].value = eq + 1;
		q->n++;
	}
	return 0;
}

int query_paging(struct query *q, const char *text, long *page, long *per_page, const char **why,
		 const char **field)
{
	const char *v;

	*page = 1;
	*per_page = QUERY_PER_PAGE_DEFAULT;
	if (query_parse(q, text, why, field) != 0)
		return -1;
	for (size_t i = 0; i < q->n; i++) {
		if (strcmp(q->pair[i].name, "page") != 0 && strcmp(q->pair[i].name, "per_page") != 0) {
			*why = "unknown query parameter";
			*field = q->pair[i].name;
			return -1;
		}
	}
	if ((v = query_get(q, "page")) && !query_int(v, 1, QUERY_PAGE_MAX, page)) {
		*why = "page: must be an integer from 1";
		*field = "page";
		return -1;
	}
	if ((v = query_get(q, "per_page")) && !query_int(v, 1, QUERY_PER_PAGE_MAX, per_page)) {
		*why = "per_page: must be an integer from 1 to 500";
		*field = "per_page";
		return -1;
	}
	return 0;
}
