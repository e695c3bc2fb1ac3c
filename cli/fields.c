/* See fields.h. */
#include "fields.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The field name of an option: '-' for '_'; false for names that are not
 * lowercase letters, digits and inner dashes. */
static bool field_name(const char *opt, char *name, size_t len)
{
	size_t n = strlen(opt);

	if (n == 0 || n >= len || opt[0] < 'a' || opt[0] > 'z' || opt[n - 1] == '-')
		return false;
	for (size_t i = 0; i <= n; i++) {
		char c = opt[i];

		if (c && !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
		name[i] = c == '-' ? '_' : c;
	}
	return true;
}

/* Fields an option may be repeated for: arrays and objects. */
static bool plural(const struct field_def *f)
{
	switch (f->type) {
	case FT_STRINGS:
	case FT_INTS:
	case FT_ENUMS:
	case FT_REFS:
	case FT_KEY_RULES:
	case FT_OBJECT:
	case FT_MAP: return true;
	default: return false;
	}
}

/* The field --opt names: its own name, or the singular of an array or
 * object field. */
static const struct field_def *lookup(const struct resource_def *r, const char *opt)
{
	char name[72];
	const struct field_def *f;
	size_t n;

	if (!field_name(opt, name, sizeof name - 1))
		return NULL;
	if ((f = resource_field(r, name)))
		return f;
	n = strlen(name);
	name[n] = 's';
	name[n + 1] = '\0';
	f = resource_field(r, name);
	return f && plural(f) ? f : NULL;
}

static bool parse_int(const char *s, json_int_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || (s[0] != '-' && (s[0] < '0' || s[0] > '9')))
		return false;
	*out = (json_int_t)v;
	return true;
}

static enum field_opt bad(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum field_opt bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return FIELD_OPT_BAD;
}

/* An option of a resource the catalogue does not have: a string, an
 * array of strings when repeated. */
static enum field_opt set_untyped(json_t *body, const char *opt, const char *value, char *err,
				  size_t errlen)
{
	char name[72];
	json_t *old, *v;

	if (!field_name(opt, name, sizeof name))
		return FIELD_OPT_UNKNOWN;
	if (!(v = json_string(value)))
		return bad(err, errlen, "--%s: '%.80s' is not UTF-8", opt, value);
	old = json_object_get(body, name);
	if (json_is_string(old)) {
		json_t *a = json_array();

		json_array_append(a, old);
		json_object_set_new(body, name, a);
		old = a;
	}
	if (json_is_array(old))
		json_array_append_new(old, v);
	else
		json_object_set_new(body, name, v);
	return FIELD_OPT_SET;
}

/* One element of an array field from text: an integer, a key rule
 * ("RSA:2048", "Ed25519"), else a string. NULL when it is not one. */
static json_t *element(const struct field_def *f, const char *text, size_t len)
{
	char item[256];
	json_int_t n;

	if (len == 0 || len >= sizeof item)
		return NULL;
	memcpy(item, text, len);
	item[len] = '\0';
	if (f->type == FT_INTS)
		return parse_int(item, &n) ? json_integer(n) : NULL;
	if (f->type == FT_KEY_RULES) {
		char *colon = strchr(item, ':');

		if (!colon)
			return json_pack("{s:s}", "algorithm", item);
		*colon = '\0';
		return parse_int(colon + 1, &n) && colon > item
			       ? json_pack("{s:s, s:I}", "algorithm", item, "min_size", n)
			       : NULL;
	}
	return json_stringn(item, len);
}

/* Appends value's elements to the array a: one for a list of strings,
 * else comma-separated ("30,14,7"). */
static bool append(const struct field_def *f, json_t *a, const char *value)
{
	if (f->type == FT_STRINGS)
		return json_array_append_new(a, json_string(value)) == 0;
	for (const char *p = value;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (json_array_append_new(a, element(f, p, len)) != 0)
			return false;
		if (!comma)
			return true;
		p = comma + 1;
	}
}

/* KEY=VALUE into the object field o (created in body when absent). */
static enum field_opt set_member(const struct field_def *f, json_t *body, json_t *o, const char *opt,
				 const char *value, char *err, size_t errlen)
{
	const char *eq = strchr(value, '=');
	char key[256];
	size_t klen = eq ? (size_t)(eq - value) : 0;

	if (!eq || klen == 0)
		return bad(err, errlen, "--%s takes KEY=VALUE or a JSON object, not '%.80s'", opt, value);
	if (klen >= sizeof key)
		return bad(err, errlen, "--%s: the key of '%.80s' is too long", opt, value);
	memcpy(key, value, klen);
	key[klen] = '\0';
	if (!o) {
		o = json_object();
		json_object_set_new(body, f->name, o);
	}
	if (json_object_get(o, key))
		return bad(err, errlen, "--%s: key '%.80s' given twice", opt, key);
	if (json_object_set_new(o, key, json_string(eq + 1)) != 0)
		return bad(err, errlen, "--%s: '%.80s' is not UTF-8", opt, value);
	return FIELD_OPT_SET;
}

enum field_opt fields_set(const struct resource_def *r, bool create, json_t *body, const char *opt,
			  const char *value, char *err, size_t errlen)
{
	const struct field_def *f;
	json_t *old, *v = NULL;
	json_int_t n;

	if (!r)
		return set_untyped(body, opt, value, err, errlen);
	if (!(f = lookup(r, opt)) || (f->flags & FIELD_HIDDEN))
		return FIELD_OPT_UNKNOWN;
	if (f->flags & FIELD_SERVER)
		return bad(err, errlen, "--%s: %s is set by the server", opt, f->name);
	if (!create && f->type == FT_ID)
		return bad(err, errlen, "--%s: the id is given as the argument", opt);
	old = json_object_get(body, f->name);
	switch (f->type) {
	case FT_INT:
		if (!parse_int(value, &n))
			return bad(err, errlen, "--%s takes an integer, not '%.80s'", opt, value);
		v = json_integer(n);
		break;
	case FT_BOOL:
		if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
			return bad(err, errlen, "--%s takes true or false, not '%.80s'", opt, value);
		v = json_boolean(value[0] == 't');
		break;
	case FT_OBJECT:
	case FT_MAP:
	case FT_KEY_RULES:
	case FT_STRINGS:
	case FT_INTS:
	case FT_ENUMS:
	case FT_REFS:
		if (value[0] == (f->type == FT_OBJECT || f->type == FT_MAP ? '{' : '[')) {
			/* the whole value as JSON */
			v = json_loads(value, JSON_REJECT_DUPLICATES, NULL);
			if (!v)
				return bad(err, errlen, "--%s: '%.80s' is not JSON", opt, value);
			break;
		}
		if (f->type == FT_OBJECT || f->type == FT_MAP)
			return set_member(f, body, json_is_object(old) ? old : NULL, opt, value, err, errlen);
		{
			json_t *a = json_is_array(old) ? json_deep_copy(old) : json_array();
			bool ok = a && append(f, a, value);

			if (ok)
				json_object_set(body, f->name, a);
			json_decref(a);
			if (!ok)
				return bad(err, errlen, f->type == FT_INTS ? "--%s takes integers (30,14,7), not '%.80s'"
							: f->type == FT_KEY_RULES ? "--%s takes ALGORITHM[:MIN_SIZE] (RSA:2048), not '%.80s'"
										  : "--%s: '%.80s' is empty or not UTF-8",
					   opt, value);
			return FIELD_OPT_SET;
		}
	default:
		v = json_string(value);
		break;
	}
	if (old) {
		json_decref(v);
		return bad(err, errlen, "--%s given twice", opt);
	}
	if (!v)
		return bad(err, errlen, "--%s: '%.80s' is not UTF-8", opt, value);
	json_object_set_new(body, f->name, v);
	return FIELD_OPT_SET;
}

void fields_url_encode(struct strbuf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '.' || *p == '_' || *p == '~')
			strbuf_printf(b, "%c", *p);
		else
			strbuf_printf(b, "%%%02X", *p);
	}
}

enum field_opt fields_filter(const struct resource_def *r, struct strbuf *query, const char *opt,
			     const char *value)
{
	char name[72];
	const struct field_def *f = NULL;

	if (!field_name(opt, name, sizeof name))
		return FIELD_OPT_UNKNOWN;
	if (r && (!(f = resource_field(r, name)) || !(f->flags & FIELD_FILTER) || (f->flags & FIELD_HIDDEN)))
		return FIELD_OPT_UNKNOWN;
	strbuf_printf(query, "&%s=", name);
	fields_url_encode(query, value);
	return FIELD_OPT_SET;
}

bool fields_sort_ok(const struct resource_def *r, const char *field)
{
	const struct field_def *f;

	if (!r)
		return *field != '\0';
	f = resource_field(r, field);
	return f && (f->flags & FIELD_SORT);
}

static void option_of(const struct field_def *f, char *out, size_t len)
{
	size_t i;

	for (i = 0; f->name[i] && i + 1 < len; i++)
		out[i] = f->name[i] == '_' ? '-' : f->name[i];
	out[i] = '\0';
}

/* The names of r's fields with flag (and not hidden) as options, on one
 * line after label. */
static void option_list(const struct resource_def *r, unsigned flag, bool dashes, const char *label,
			FILE *out)
{
	char opt[72];
	int any = 0;

	fprintf(out, "%s", label);
	for (size_t i = 0; i < r->nfields; i++) {
		if ((r->fields[i].flags & flag) && !(r->fields[i].flags & FIELD_HIDDEN)) {
			option_of(&r->fields[i], opt, sizeof opt);
			fprintf(out, " %s%s", dashes ? "--" : "", dashes ? opt : r->fields[i].name);
			any = 1;
		}
	}
	fprintf(out, "%s\n", any ? "" : " none");
}

void fields_usage(const struct resource_def *r, FILE *out)
{
	static const char *const value_of[] = {
		[FT_ID] = "ID", [FT_STRING] = "TEXT", [FT_REF] = "ID", [FT_INT] = "N",
		[FT_BOOL] = "true|false", [FT_TIMESTAMP] = "RFC3339", [FT_OBJECT] = "KEY=VALUE|JSON",
		[FT_STRINGS] = "TEXT", [FT_INTS] = "N[,N...]", [FT_ENUM] = "VALUE",
		[FT_ENUMS] = "VALUE[,VALUE...]", [FT_MAP] = "KEY=VALUE", [FT_KEY_RULES] = "ALG[:MIN_SIZE]",
		[FT_INET] = "ADDRESS", [FT_CIDR] = "ADDRESS/PREFIX", [FT_REFS] = "ID[,ID...]",
	};
	char opt[72], line[160];
	int writable = 0;

	if (!r) {
		fprintf(out, "fields (create, update): --FIELD VALUE for each JSON field, FIELD with '-'\n"
			     "  for '_'; a repeated option makes an array; --data for other types\n"
			     "filters (list): --FILTER VALUE, the server's query parameters\n");
		return;
	}
	for (size_t i = 0; i < r->nfields; i++) {
		const struct field_def *f = &r->fields[i];
		const char *value = (size_t)f->type < sizeof value_of / sizeof value_of[0] && value_of[f->type]
					    ? value_of[f->type] : "VALUE";
		char range[64] = "";

		if ((f->flags & (FIELD_SERVER | FIELD_HIDDEN)) || !(r->verbs & (VERB_CREATE | VERB_UPDATE)))
			continue;
		if (!writable++)
			fprintf(out, "fields (create, update):\n");
		option_of(f, opt, sizeof opt);
		if (f->type == FT_INT || f->type == FT_INTS)
			snprintf(range, sizeof range, ", %lld to %lld", f->min, f->max);
		else if (f->max > 0 && (f->type == FT_STRING || f->type == FT_STRINGS))
			snprintf(range, sizeof range, ", up to %lld characters", f->max);
		snprintf(line, sizeof line, "--%s %s", opt, value);
		fprintf(out, "  %-36s %s%s%s%s\n", line,
			f->type == FT_ID ? "create only" : (f->flags & FIELD_REQUIRED) ? "required" : "optional",
			range, plural(f) ? ", repeatable" : "",
			f->format == FF_EMAIL ? ", an e-mail address"
			: f->format == FF_DNS || f->format == FF_DNS_WILDCARD ? ", a DNS name"
			: f->format == FF_SAN ? ", a DNS name, IP or e-mail address" : "");
		if (f->values)
			fprintf(out, "  %-36s one of %s\n", "", f->values);
	}
	if (!writable && (r->verbs & (VERB_CREATE | VERB_UPDATE)))
		fprintf(out, "fields: none (read-only)\n");
	option_list(r, FIELD_FILTER, true, "filters (list):", out);
	option_list(r, FIELD_SORT, false, "sort keys (list --sort KEY or -KEY):", out);
}
