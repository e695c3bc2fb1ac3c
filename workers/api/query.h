/*
 * A request's query string (what follows '?') taken apart strictly:
 * name=value pairs separated by '&', each percent-decoded ('+' is a
 * space). Refused: more than QUERY_MAX bytes or QUERY_PAIRS_MAX pairs, a
 * pair without '=', an empty name, a malformed escape or one that decodes
 * to NUL, and a name given twice.
 */
#ifndef CERTWARD_API_QUERY_H
#define CERTWARD_API_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#define QUERY_MAX 4096
#define QUERY_PAIRS_MAX 32

/* the list rules of docs/api.md: page from 1, per_page 1..500, default 50 */
#define QUERY_PAGE_MAX 1000000000L
#define QUERY_PER_PAGE_DEFAULT 50L
#define QUERY_PER_PAGE_MAX 500L

struct query {
	char buf[QUERY_MAX + 1];
	size_t n;
	struct {
		const char *name, *value; /* into buf */
	} pair[QUERY_PAIRS_MAX];
};

/* 0, or -1 with *why (a static sentence) and *bad (the offending name when
 * there is one, else ""; points into q->buf or is a literal). */
int query_parse(struct query *q, const char *text, const char **why, const char **bad);

/* The value of name, or NULL. */
const char *query_get(const struct query *q, const char *name);

/* Percent-decoding in place ('+' is a space); false for a malformed escape
 * or one that decodes to NUL. */
bool query_unescape(char *s);

/* Decimal digits only (at most 18, so none overflows; no sign, no space)
 * within lo..hi. */
bool query_int(const char *s, long lo, long hi, long *out);

/* A list's paging alone: text parsed, page (default 1) and per_page
 * (default 50) within the rules above, no other parameter. 0, or -1 with
 * *why and *field (the parameter to name in a 400). */
int query_paging(struct query *q, const char *text, long *page, long *per_page, const char **why,
		 const char **field);

#endif
