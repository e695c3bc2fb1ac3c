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

enum field_type {
	FT_ID, FT_STRING, FT_REF, FT_INT, FT_BOOL, FT_TIMESTAMP,
	FT_OBJECT,    /* any JSON object (type-specific settings) */
	FT_STRINGS, FT_INTS,
	FT_ENUM,      /* one of the field's values */
	FT_ENUMS,     /* an array of the field's values */
	FT_MAP,       /* an object of strings (tags) */
	FT_KEY_RULES, /* [{"algorithm": "RSA"|"ECDSA"|"Ed25519", "min_size": n}] */
	FT_INET,      /* an IP address */
	FT_CIDR,      /* an IP network, address/prefix */
	FT_REFS,      /* an array of ids of another resource */
	FT_SEALED,    /* secrets sealed by the signer, hex on the way to the store */
};
enum field_format { FF_NONE, FF_EMAIL, FF_DNS, FF_DNS_WILDCARD, FF_SAN, FF_IP };

#define FIELD_REQUIRED 1u /* on create */
#define FIELD_SERVER 2u   /* set by the server: accepted on input and ignored */
#define FIELD_FILTER 4u   /* a list query parameter */
#define FIELD_SORT 8u     /* a sort key */
#define FIELD_NOT_NULL 16u
#define FIELD_HIDDEN 32u  /* not shown (a filter from the path) */
#define FIELD_INTERNAL 64u /* set by the api only: refused on input, never shown */
#define FIELD_SECRETS 128u /* an object whose secret members go sealed into the
			    * resource's FT_SEALED field (resource_split_secrets) */

/* verbs, bit i = i-th of list, get, create, update, delete */
#define VERB_LIST 1u
#define VERB_GET 2u
#define VERB_CREATE 4u
#define VERB_UPDATE 8u
#define VERB_DELETE 16u

struct field_def {
	const char *name;
	enum field_type type;
	enum field_format format;
	unsigned flags;
	long long min, max; /* string length in characters, or integer range (also of each
			     * element of an FT_INTS array) */
	const char *values; /* FT_ENUM, FT_ENUMS: the allowed values, '|'-separated */
};

struct resource_def {
	const char *name; /* "teams": also the store operations' prefix */
	const char *path; /* "/api/v1/teams" */
	const struct field_def *fields;
	size_t nfields;
	unsigned verbs;       /* VERB_* */
	unsigned read_roles;  /* list, get: bit i = admin, operator, viewer, agent */
	unsigned write_roles; /* create, update, delete */
};

extern const struct resource_def resource_catalogue[];
extern const size_t resource_catalogue_len;

const struct resource_def *resource_by_path(const char *path);
const struct field_def *resource_field(const struct resource_def *r, const char *name);
/* Whether r has a FIELD_SECRETS object (and so an FT_SEALED field). */
bool resource_has_secrets(const struct resource_def *r);
/* Whether s is one of f's enum values. */
bool resource_enum_ok(const struct field_def *f, const char *s);

#define RESOURCE_MAX_DEPTH 32
#define RESOURCE_MAX_ARRAY 1000

struct resource_error {
	char field[64]; /* the offending member, "" for the body as a whole */
	char msg[400];
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

/*
 * Secret members of a FIELD_SECRETS object: those whose name contains
 * secret, password, passphrase, token, hmac, private_key, privatekey,
 * api_key, apikey or credential (any case). They must be top-level members
 * with string values. Moves them from obj into a new object *secrets
 * (NULL when there are none) and leaves REDACTED in their place; returns
 * false with err filled (field = the object's name) for a secret-named
 * member deeper down or one that is not a string.
 */
#define RESOURCE_REDACTED "********"
struct json_t;
bool resource_split_secrets(const struct field_def *f, struct json_t *obj, struct json_t **secrets,
			    bool *keeps, struct resource_error *err);

#endif
