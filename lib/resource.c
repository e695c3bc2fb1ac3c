/* See resource.h. */
#include "resource.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate.h"

const struct resource_def *resource_by_path(const char *path)
{
	for (size_t i = 0; i < resource_catalogue_len; i++)
		if (strcmp(resource_catalogue[i].path, path) == 0)
			return &resource_catalogue[i];
	return NULL;
}

const struct field_def *resource_field(const struct resource_def *r, const char *name)
{
	for (size_t i = 0; i < r->nfields; i++)
		if (strcmp(r->fields[i].name, name) == 0)
			return &r->fields[i];
	return NULL;
}

bool resource_has_secrets(const struct resource_def *r)
{
	for (size_t i = 0; i < r->nfields; i++)
		if (r->fields[i].flags & FIELD_SECRETS)
			return true;
	return false;
}

bool resource_enum_ok(const struct field_def *f, const char *s)
{
	size_t n = strlen(s);

	for (const char *v = f->values; v && *v;) {
		const char *bar = strchr(v, '|');
		size_t len = bar ? (size_t)(bar - v) : strlen(v);

		if (len == n && memcmp(v, s, n) == 0)
			return true;
		v += len + (bar != NULL);
	}
	return false;
}

static char *refuse(struct resource_error *err, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static char *refuse(struct resource_error *err, const char *field, const char *fmt, ...)
{
	va_list ap;

	snprintf(err->field, sizeof err->field, "%s", field);
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return NULL;
}

/* characters of valid UTF-8 (jansson has checked it) */
static long long utf8_chars(const char *s)
{
	long long n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static bool string_ok(const struct field_def *f, const char *s, struct resource_error *err,
		      const char *label)
{
	long long n = utf8_chars(s);

	if (n < (f->min > 0 ? f->min : 0) || (f->max > 0 && n > f->max)) {
		refuse(err, f->name, "%s: must be %lld to %lld characters", label, f->min > 0 ? f->min : 0,
		       f->max);
		return false;
	}
	switch (f->format) {
	case FF_EMAIL:
		if (!valid_email(s)) {
			refuse(err, f->name, "%s: not an e-mail address", label);
			return false;
		}
		break;
	case FF_DNS:
	case FF_DNS_WILDCARD:
		if (!valid_dns_name(s, f->format == FF_DNS_WILDCARD)) {
			refuse(err, f->name, "%s: not a DNS name (internationalized names as A-labels, xn--...)",
			       label);
			return false;
		}
		break;
	case FF_SAN:
		if (!valid_dns_name(s, true) && !valid_ip_address(s) && !valid_email(s)) {
			refuse(err, f->name, "%s: not a DNS name, IP address or e-mail address", label);
			return false;
		}
		break;
	case FF_IP:
		if (!valid_ip_address(s)) {
			refuse(err, f->name, "%s: not an IP address", label);
			return false;
		}
		break;
	case FF_NONE: break;
	}
	return true;
}

static bool enum_ok(const struct field_def *f, json_t *v, struct resource_error *err, const char *label)
{
	if (!json_is_string(v) || !resource_enum_ok(f, json_string_value(v))) {
		/* the values, for the client to pick from (bounded: err->msg) */
		refuse(err, f->name, "%s: must be one of %s", label, f->values);
		return false;
	}
	return true;
}

/* [{"algorithm": "RSA"|"ECDSA"|"Ed25519", "min_size": 0..16384}] */
static bool key_rules_ok(const struct field_def *f, json_t *v, struct resource_error *err)
{
	static const struct field_def algorithm = {"algorithm", FT_ENUM, FF_NONE, 0, 0, 0, "RSA|ECDSA|Ed25519"};
	size_t i;
	json_t *rule;

	if (!json_is_array(v) || json_array_size(v) > 16) {
		refuse(err, f->name, "%s: must be an array of at most 16 rules", f->name);
		return false;
	}
	json_array_foreach(v, i, rule) {
		char label[96];
		const char *k;
		json_t *m;

		snprintf(label, sizeof label, "%s[%zu]", f->name, i);
		if (!json_is_object(rule)) {
			refuse(err, f->name, "%s: must be an object {algorithm, min_size}", label);
			return false;
		}
		json_object_foreach(rule, k, m) {
			if (strcmp(k, "algorithm") == 0) {
				snprintf(label, sizeof label, "%s[%zu].algorithm", f->name, i);
				if (!enum_ok(&algorithm, m, err, label)) {
					snprintf(err->field, sizeof err->field, "%s", f->name);
					return false;
				}
			} else if (strcmp(k, "min_size") == 0) {
				if (!json_is_integer(m) || json_integer_value(m) < 0 || json_integer_value(m) > 16384) {
					refuse(err, f->name, "%s.min_size: must be an integer from 0 to 16384", label);
					return false;
				}
			} else {
				refuse(err, f->name, "%s: unknown member %.40s", label, k);
				return false;
			}
		}
		if (!json_object_get(rule, "algorithm")) {
			refuse(err, f->name, "%s.algorithm: required", label);
			return false;
		}
	}
	return true;
}

static bool value_ok(const struct field_def *f, json_t *v, struct resource_error *err)
{
	switch (f->type) {
	case FT_ID:
	case FT_REF:
		if (!json_is_string(v) || !valid_resource_id(json_string_value(v), (size_t)f->max)) {
			refuse(err, f->name, "%s: must be an id (letters, digits, '.', '_', '-'; at most %lld)",
			       f->name, f->max);
			return false;
		}
		return true;
	case FT_STRING:
		if (!json_is_string(v)) {
			refuse(err, f->name, "%s: must be a string", f->name);
			return false;
		}
		return string_ok(f, json_string_value(v), err, f->name);
	case FT_INT:
		if (!json_is_integer(v) || json_integer_value(v) < f->min || json_integer_value(v) > f->max) {
			refuse(err, f->name, "%s: must be an integer from %lld to %lld", f->name, f->min, f->max);
			return false;
		}
		return true;
	case FT_BOOL:
		if (!json_is_boolean(v)) {
			refuse(err, f->name, "%s: must be true or false", f->name);
			return false;
		}
		return true;
	case FT_TIMESTAMP:
		if (!json_is_string(v) || !valid_rfc3339(json_string_value(v))) {
			refuse(err, f->name, "%s: must be an RFC 3339 date-time", f->name);
			return false;
		}
		return true;
	case FT_OBJECT:
		/* settings of a type: any members, bounded by the body's size
		 * and nesting; what they mean is checked where they are used */
		if (!json_is_object(v) || json_object_size(v) > RESOURCE_MAX_ARRAY) {
			refuse(err, f->name, "%s: must be an object of at most %d members", f->name,
			       RESOURCE_MAX_ARRAY);
			return false;
		}
		return true;
	case FT_MAP: {
		const char *k;
		json_t *m;

		if (!json_is_object(v) || json_object_size(v) > RESOURCE_MAX_ARRAY) {
			refuse(err, f->name, "%s: must be an object of at most %d strings", f->name,
			       RESOURCE_MAX_ARRAY);
			return false;
		}
		json_object_foreach(v, k, m) {
			if (!json_is_string(m) || strlen(k) > 255 || strlen(json_string_value(m)) > 4096) {
				refuse(err, f->name, "%s: values must be strings (keys up to 255, values up to 4096 bytes)",
				       f->name);
				return false;
			}
		}
		return true;
	}
	case FT_INTS: {
		size_t i;
		json_t *m;

		if (!json_is_array(v) || json_array_size(v) > 32) {
			refuse(err, f->name, "%s: must be an array of at most 32 integers", f->name);
			return false;
		}
		json_array_foreach(v, i, m) {
			if (!json_is_integer(m) || json_integer_value(m) < f->min || json_integer_value(m) > f->max) {
				refuse(err, f->name, "%s[%zu]: must be an integer from %lld to %lld", f->name, i, f->min,
				       f->max);
				return false;
			}
		}
		return true;
	}
	case FT_ENUM:
		return enum_ok(f, v, err, f->name);
	case FT_KEY_RULES:
		return key_rules_ok(f, v, err);
	case FT_SEALED:
		return false; /* never from a client (FIELD_INTERNAL) */
	case FT_INET:
	case FT_CIDR:
		if (!json_is_string(v) || (f->type == FT_INET ? !valid_ip_address(json_string_value(v))
							     : !valid_cidr(json_string_value(v)))) {
			refuse(err, f->name, "%s: must be %s", f->name,
			       f->type == FT_INET ? "an IP address" : "an IP network, address/prefix");
			return false;
		}
		return true;
	case FT_STRINGS:
	case FT_ENUMS:
	case FT_REFS: {
		size_t i;
		json_t *m;

		if (!json_is_array(v) || json_array_size(v) > RESOURCE_MAX_ARRAY) {
			refuse(err, f->name, "%s: must be an array of at most %d strings", f->name,
			       RESOURCE_MAX_ARRAY);
			return false;
		}
		json_array_foreach(v, i, m) {
			char label[96];

			snprintf(label, sizeof label, "%s[%zu]", f->name, i);
			if (f->type == FT_ENUMS) {
				if (!enum_ok(f, m, err, label))
					return false;
			} else if (f->type == FT_REFS) {
				if (!json_is_string(m) || !valid_resource_id(json_string_value(m), 128)) {
					refuse(err, f->name, "%s: must be an id", label);
					return false;
				}
			} else if (!json_is_string(m)) {
				refuse(err, f->name, "%s: must be a string", label);
				return false;
			} else if (!string_ok(f, json_string_value(m), err, label)) {
				return false;
			}
		}
		return true;
	}
	}
	return false;
}

char *resource_check_body(const struct resource_def *r, const char *body, size_t len, bool create,
			  struct resource_error *err)
{
	json_t *in, *out, *v;
	json_error_t jerr;
	const char *k;
	char *text = NULL;

	memset(err, 0, sizeof *err);
	if (!json_depth_ok(body, len, RESOURCE_MAX_DEPTH))
		return refuse(err, "", "the body nests deeper than %d levels", RESOURCE_MAX_DEPTH);
	in = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!in)
		return refuse(err, "", "malformed JSON at byte %d: %.100s", jerr.position, jerr.text);
	if (!json_is_object(in)) {
		json_decref(in);
		return refuse(err, "", "the body must be a JSON object");
	}
	out = json_object();
	json_object_foreach(in, k, v) {
		const struct field_def *f = resource_field(r, k);

		if (!f || (f->flags & FIELD_INTERNAL)) {
			char name[64];

			snprintf(name, sizeof name, "%s", k);
			refuse(err, name, "%.63s: unknown field", k);
			goto fail;
		}
		if (f->flags & FIELD_SERVER)
			continue; /* read-only: a body from GET may be sent back */
		if (!create && strcmp(f->name, "id") == 0)
			continue;
		if (json_is_null(v)) {
			if (f->flags & (FIELD_REQUIRED | FIELD_NOT_NULL)) {
				refuse(err, f->name, "%s: may not be null", f->name);
				goto fail;
			}
		} else if (!value_ok(f, v, err)) {
			goto fail;
		}
		json_object_set(out, f->name, v);
	}
	if (create) {
		for (size_t i = 0; i < r->nfields; i++) {
			if ((r->fields[i].flags & FIELD_REQUIRED) && !json_object_get(out, r->fields[i].name)) {
				refuse(err, r->fields[i].name, "%s: required", r->fields[i].name);
				goto fail;
			}
		}
	}
	text = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		refuse(err, "", "out of memory");
fail:
	json_decref(out);
	json_decref(in);
	return text;
}

static bool secret_name(const char *name)
{
	static const char *const marks[] = {"secret", "password", "passphrase", "token", "hmac", "private_key",
					    "privatekey", "api_key", "apikey", "credential"};
	char low[256];
	size_t i;

	for (i = 0; name[i] && i + 1 < sizeof low; i++)
		low[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] | 0x20 : name[i]);
	low[i] = '\0';
	for (i = 0; i < sizeof marks / sizeof marks[0]; i++)
		if (strstr(low, marks[i]))
			return true;
	return false;
}

/* a secret-named member below the top level, or NULL */
static const char *nested_secret(json_t *v, int depth)
{
	const char *k, *found;
	json_t *m;
	size_t i;

	if (depth > RESOURCE_MAX_DEPTH)
		return NULL;
	if (json_is_object(v)) {
		json_object_foreach(v, k, m) {
			if (secret_name(k))
				return k;
			if ((found = nested_secret(m, depth + 1)))
				return found;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, m)
			if ((found = nested_secret(m, depth + 1)))
				return found;
	}
	return NULL;
}

bool resource_split_secrets(const struct field_def *f, json_t *obj, json_t **secrets, bool *keeps,
			    struct resource_error *err)
{
	const char *k, *deep;
	json_t *v;

	*secrets = NULL;
	*keeps = false;
	json_object_foreach(obj, k, v) {
		if (!secret_name(k)) {
			if ((deep = nested_secret(v, 1))) {
				refuse(err, f->name, "%s.%.40s: secrets (%.40s) go at the top level of %s", f->name, k,
				       deep, f->name);
				goto fail;
			}
			continue;
		}
		if (!json_is_string(v)) {
			refuse(err, f->name, "%s.%.60s: a secret must be a string", f->name, k);
			goto fail;
		}
		if (!*secrets)
			*secrets = json_object();
		if (strcmp(json_string_value(v), RESOURCE_REDACTED) == 0)
			*keeps = true;
		json_object_set(*secrets, k, v);
	}
	if (*secrets) {
		json_object_foreach(*secrets, k, v)
			json_object_set_new(obj, k, json_string(RESOURCE_REDACTED));
	}
	return true;
fail:
	json_decref(*secrets);
	*secrets = NULL;
	return false;
}
