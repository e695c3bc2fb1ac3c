/*
 * The REST resources as data (schema/resources.json, turned into
 * resource_catalogue.c by schema/gen_resources.py), and the check of a
 * request body against them. What passes is re-serialized with only the
 * fields a client may set: that canonical JSON is what the store's
 * generated operations take.
 */
#ifndef CERTWARD_RESOURCE_H
#define CERTWARD_RESOURCE_H

#include <stdbool.h>
#include <stddef.h>

enum field_type { FT_ID, FT_STRING, FT_REF, FT_INT, FT_BOOL, FT_TIMESTAMP, FT_OBJECT, FT_STRINGS, FT_INTS };
enum field_format { FF_NONE, FF_EMAIL, FF_DNS, FF_DNS_WILDCARD };

#define FIELD_REQUIRED 1u /* on create */
#define FIELD_SERVER 2u   /* set by the server: accepted on input and ignored */
#define FIELD_FILTER 4u   /* a list query parameter */
#define FIELD_SORT 8u     /* a sort key */
#define FIELD_NOT_NULL 16u

struct field_def {
	const char *name;
	enum field_type type;
	enum field_format format;
	unsigned flags;
	long long min, max; /* string length in characters, or integer range (also of each
			     * element of an FT_INTS array) */
};

struct resource_def {
	const char *name; /* "teams": also the store operations' prefix */
	const char *path; /* "/api/v1/teams" */
	const struct field_def *fields;
	size_t nfields;
};

extern const struct resource_def resource_catalogue[];
extern const size_t resource_catalogue_len;

const struct resource_def *resource_by_path(const char *path);
const struct field_def *resource_field(const struct resource_def *r, const char *name);

#define RESOURCE_MAX_DEPTH 32
#define RESOURCE_MAX_ARRAY 1000

struct resource_error {
	char field[64]; /* the offending member, "" for the body as a whole */
	char msg[160];
};

/*
 * Checks a request body (JSON text of len bytes) for create or update and
 * returns the canonical JSON (malloc'd, NUL-terminated) of the fields the
 * client may set, or NULL with *err filled: malformed or too deeply nested
 * JSON, not an object, duplicate or unknown members, wrong types, lengths,
 * ranges or formats, a required field missing (create) or null.
 */
char *resource_check_body(const struct resource_def *r, const char *body, size_t len, bool create,
			  struct resource_error *err);

#endif
