/*
 * A REST resource's fields as command-line options: --team-id VALUE sets
 * "team_id", typed from the resource catalogue the server checks bodies
 * with (schema/resources.json, compiled in as lib/resource.h's
 * resource_catalogue), so the CLI and the server cannot disagree on names
 * or types. For a resource the catalogue does not have (yet), an option
 * sets a string field, a repeated one an array of strings, and the server
 * judges.
 */
#ifndef CERTWARD_CLI_FIELDS_H
#define CERTWARD_CLI_FIELDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "resource.h"
#include "util.h"

/* Bound on a list's query string (the api refuses longer ones). */
#define FIELDS_QUERY_MAX 4096

/* What an option did. */
enum field_opt { FIELD_OPT_SET, FIELD_OPT_UNKNOWN, FIELD_OPT_BAD };

/*
 * Sets in body the field that --opt names (opt without the dashes) to
 * value, for a create or an update of resource r (NULL: not in the
 * catalogue). Strings, ids and timestamps as given; integers and booleans
 * (true, false) parsed; an array field takes one element per option
 * (repeated), an integer array also "30,14,7"; an object field takes
 * key=value per option, or a JSON object. An array or object field may
 * also be named in the singular (--san for sans, --tag for tags).
 * Returns FIELD_OPT_UNKNOWN when r has no such field, FIELD_OPT_BAD with
 * the reason in err for a value of the wrong type, a field set by the
 * server or given twice.
 */
enum field_opt fields_set(const struct resource_def *r, bool create, json_t *body, const char *opt,
			  const char *value, char *err, size_t errlen);

/* Appends "&name=value" (percent-encoded) to query for the list filter
 * --opt of r (any option when r is NULL: the server judges). FIELD_OPT_UNKNOWN
 * when r has no such filter. */
enum field_opt fields_filter(const struct resource_def *r, struct strbuf *query, const char *opt,
			     const char *value);

/* Whether field (without a leading '-') is a sort key of r (any name when
 * r is NULL). */
bool fields_sort_ok(const struct resource_def *r, const char *field);

/* Percent-encodes s into b: everything but letters, digits, '-', '.', '_'
 * and '~'. */
void fields_url_encode(struct strbuf *b, const char *s);

/* The help lines of r's create/update options, filters and sort keys. */
void fields_usage(const struct resource_def *r, FILE *out);

#endif
