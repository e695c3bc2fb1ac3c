/* The CLI's table output: the server's values as text a terminal shows as
 * it is (control characters, C1 controls, line separators and
 * bidirectional overrides escaped, so that a hostile server cannot write
 * escape sequences), aligned columns for lists, and "field: value" lines
 * for one record. */
#ifndef CERTWARD_CLI_OUTPUT_H
#define CERTWARD_CLI_OUTPUT_H

#include <jansson.h>
#include <stdio.h>

#include "util.h"

/* Cells of a list but the first are cut to this many characters. */
#define OUT_CELL_MAX 48

/* Appends s[0..len) to b with \xHH for control bytes (\t, \n and \r as
 * such) and bytes that are not UTF-8, \uHHHH for C1 controls, U+2028,
 * U+2029 and the bidirectional marks and overrides. */
void out_escape(struct strbuf *b, const char *s, size_t len);

/* The characters (code points) of UTF-8 text: its width on a terminal for
 * what out_escape leaves. */
size_t out_width(const char *s);

/* The text of a JSON value for a person: a string escaped, numbers and
 * booleans as in JSON, null "-", an array of scalars as "a, b", anything
 * else as compact JSON (escaped). Cut to max characters with "..." when
 * max > 0. Malloc'd; NULL when out of memory. */
char *out_text(const json_t *v, size_t max);

/* A list as aligned columns: one row an object, a column a member. */
struct table {
	const char *const *cols;
	size_t ncols, nrows, cap;
	char **cells;	    /* nrows * ncols texts */
	unsigned char *seen; /* per column: some row has the member */
};

void table_init(struct table *t, const char *const *cols, size_t ncols);
/* Adds a row (its members named by the columns); -1 when out of memory. */
int table_add(struct table *t, const json_t *row);
/* Prints the header (the column names in capitals) and the rows. Columns
 * no row has are left out; nothing is printed without rows. */
void table_print(const struct table *t, FILE *out);
void table_free(struct table *t);

/* "field: value" lines of an object's members, in the server's order, the
 * values aligned. */
void out_fields(const json_t *obj, FILE *out);

#endif
