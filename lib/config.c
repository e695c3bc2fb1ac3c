#include "config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"

#define SECTION_TEXT_MAX (64u * 1024u)

const struct cfg_key cfg_keys[] = {
#define CFG_KEY(section, name, type, def, flags, min, max, help) \
	{#section, #name, type, def, flags, min, max, help},
#include "config_keys.def"
#undef CFG_KEY
	{NULL, NULL, CFG_STRING, NULL, 0, 0, 0, NULL},
};

const char *const cfg_sections[] = {
	"master", "api", "store", "signer", "scheduler", "deploy", "notifier", "audit", NULL,
};

/* Sections a worker reads besides its own, handed to it inside its section
 * text as "section.key=value" lines. */
static const struct {
	const char *section, *reader;
} shared_sections[] = {
	{"audit", "api"},
};

static bool section_shared_with(const char *section, size_t len, const char *reader)
{
	for (size_t i = 0; i < sizeof shared_sections / sizeof shared_sections[0]; i++)
		if (strcmp(shared_sections[i].reader, reader) == 0 &&
		    strlen(shared_sections[i].section) == len &&
		    memcmp(shared_sections[i].section, section, len) == 0)
			return true;
	return false;
}

size_t cfg_key_count(void)
{
	return sizeof cfg_keys / sizeof cfg_keys[0] - 1;
}

int cfg_key_index(const char *section, const char *name, size_t namelen)
{
	for (size_t i = 0; i < cfg_key_count(); i++)
		if (strcmp(cfg_keys[i].section, section) == 0 && strlen(cfg_keys[i].name) == namelen &&
		    memcmp(cfg_keys[i].name, name, namelen) == 0)
			return (int)i;
	return -1;
}

/* The table's spelling of a section name, or "" when there is none. */
static const char *cfg_sections_find(const char *name, size_t len)
{
	for (const char *const *s = cfg_sections; *s; s++)
		if (strlen(*s) == len && memcmp(*s, name, len) == 0)
			return *s;
	return "";
}

bool cfg_section_known(const char *section, size_t len)
{
	return *cfg_sections_find(section, len) != '\0';
}

void cfg_error_set(struct cfg_error *err, const char *file, unsigned line, const char *key,
		   const char *fmt, ...)
{
	va_list ap;

	snprintf(err->file, sizeof err->file, "%s", file ? file : "");
	err->line = line;
	snprintf(err->key, sizeof err->key, "%s", key ? key : "");
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
}

void cfg_error_format(const struct cfg_error *err, char *buf, size_t len)
{
	size_t o = 0;
	int n;

	buf[0] = '\0';
	if (err->file[0]) {
		n = err->line ? snprintf(buf, len, "%s:%u: ", err->file, err->line)
			      : snprintf(buf, len, "%s: ", err->file);
		o = n > 0 && (size_t)n < len ? (size_t)n : 0;
	}
	if (err->key[0]) {
		n = snprintf(buf + o, len - o, "%s: ", err->key);
		if (n > 0 && o + (size_t)n < len)
			o += (size_t)n;
	}
	snprintf(buf + o, len - o, "%s", err->msg);
}

/* ---- values ---- */

/* Unsigned decimal digits at s[0..len) with at least one digit; *end is the
 * first non-digit. Fails on overflow. */
static int parse_digits(const char *s, size_t len, uint64_t *out, size_t *end)
{
	uint64_t v = 0;
	size_t i = 0;

	for (; i < len && isdigit((unsigned char)s[i]); i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (i == 0)
		return -1;
	*out = v;
	*end = i;
	return 0;
}

static bool eq_nocase(const char *a, size_t alen, const char *b)
{
	return strlen(b) == alen && strncasecmp(a, b, alen) == 0;
}

static int parse_bool(const char *s, size_t len, int64_t *out)
{
	static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};

	for (size_t i = 0; i < 3; i++) {
		if (eq_nocase(s, len, yes[i])) {
			*out = 1;
			return 0;
		}
		if (eq_nocase(s, len, no[i])) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

static int parse_int(const char *s, size_t len, int64_t *out)
{
	bool neg = len > 0 && s[0] == '-';
	uint64_t v;
	size_t end;

	if (neg) {
		s++;
		len--;
	}
	if (parse_digits(s, len, &v, &end) != 0 || end != len || v > (uint64_t)INT64_MAX)
		return -1;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

static int parse_scaled(const char *s, size_t len, const char *const *units,
			const uint64_t *scale, size_t nunits, bool unit_required, int64_t *out)
{
	uint64_t v;
	size_t end;

	if (parse_digits(s, len, &v, &end) != 0)
		return -1;
	if (end == len) {
		if (unit_required)
			return -1;
		*out = v > (uint64_t)INT64_MAX ? -1 : (int64_t)v;
		return v > (uint64_t)INT64_MAX ? -1 : 0;
	}
	for (size_t i = 0; i < nunits; i++) {
		if (eq_nocase(s + end, len - end, units[i])) {
			if (v > (uint64_t)INT64_MAX / scale[i])
				return -1;
			*out = (int64_t)(v * scale[i]);
			return 0;
		}
	}
	return -1;
}

static int parse_duration(const char *s, size_t len, int64_t *out)
{
	static const char *const units[] = {"ms", "s", "m", "h", "d"};
	static const uint64_t scale[] = {1, 1000, 60000, 3600000, 86400000};

	return parse_scaled(s, len, units, scale, 5, true, out);
}

int cfg_parse_duration(const char *s, int64_t *ms)
{
	return parse_duration(s, strlen(s), ms);
}

static int parse_size(const char *s, size_t len, int64_t *out)
{
	static const char *const units[] = {"b", "k", "m", "g", "kb", "mb", "gb", "kib", "mib", "gib"};
	static const uint64_t scale[] = {1,	  1u << 10, 1u << 20, 1u << 30, 1u << 10,
					 1u << 20, 1u << 30, 1u << 10, 1u << 20, 1u << 30};

	return parse_scaled(s, len, units, scale, 10, false, out);
}

int cfg_parse_size(const char *s, int64_t *bytes)
{
	return parse_size(s, strlen(s), bytes);
}

static bool host_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

static int parse_address(const char *s, size_t len)
{
	const char *colon;
	size_t hostlen, i;
	uint64_t port;
	size_t end;

	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (!close || close == s + 1 || (size_t)(close - s) + 1 >= len || close[1] != ':')
			return -1;
		for (const char *p = s + 1; p < close; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
				return -1;
		colon = close + 1;
	} else {
		colon = memrchr(s, ':', len);
		if (!colon || colon == s)
			return -1;
		hostlen = (size_t)(colon - s);
		for (i = 0; i < hostlen; i++)
			if (!host_char(s[i]))
				return -1;
	}
	if (parse_digits(colon + 1, len - (size_t)(colon + 1 - s), &port, &end) != 0 ||
	    end != len - (size_t)(colon + 1 - s) || port < 1 || port > 65535)
		return -1;
	return 0;
}

static const char *type_name(enum cfg_type t)
{
	switch (t) {
	case CFG_STRING: return "a string";
	case CFG_INT: return "an integer";
	case CFG_BOOL: return "a boolean (true/false)";
	case CFG_DURATION: return "a duration with a unit (ms, s, m, h, d)";
	case CFG_SIZE: return "a size (bytes, or with k, m, g; kb/kib, mb/mib, gb/gib alike)";
	case CFG_ADDRESS: return "an address host:port or [v6]:port";
	case CFG_ENUM: return "one of the listed words";
	}
	return "a value";
}

/* The choices of an enumerated key are the words of its default, "a|b|c".
 * When text is none of them, msg lists them. */
static bool enum_allows(const struct cfg_key *k, const char *text, size_t len, char *msg,
			size_t msglen)
{
	size_t o;

	for (const char *w = k->defval; w;) {
		const char *bar = strchr(w, '|');
		size_t wl = bar ? (size_t)(bar - w) : strlen(w);

		if (wl == len && memcmp(w, text, len) == 0)
			return true;
		w = bar ? bar + 1 : NULL;
	}
	o = (size_t)snprintf(msg, msglen, "expected one of: ");
	for (const char *p = k->defval; *p && o + 3 < msglen; p++) {
		if (*p == '|') {
			msg[o++] = ',';
			msg[o++] = ' ';
		} else {
			msg[o++] = *p;
		}
	}
	msg[o < msglen ? o : msglen - 1] = '\0';
	return false;
}

int cfg_value_set(const struct cfg_key *k, const char *text, size_t len, struct cfg_value *out,
		  char *msg, size_t msglen)
{
	int64_t num = 0;
	int rc = 0;

	switch (k->type) {
	case CFG_STRING:
	case CFG_ADDRESS:
	case CFG_ENUM:
		if (memchr(text, '\0', len) || memchr(text, '\n', len) || memchr(text, '\r', len)) {
			snprintf(msg, msglen, "expected %s without control line breaks or NUL",
				 type_name(k->type));
			return -1;
		}
		if (k->type == CFG_STRING && (int64_t)len > k->max) {
			snprintf(msg, msglen, "longer than %lld bytes", (long long)k->max);
			return -1;
		}
		if (k->type == CFG_ENUM && !enum_allows(k, text, len, msg, msglen))
			return -1;
		/* an optional address may be empty: "not set" */
		if (k->type == CFG_ADDRESS && (len > 0 || (k->flags & CFG_REQUIRED)) &&
		    (len > 300 || parse_address(text, len) != 0)) {
			snprintf(msg, msglen, "expected %s", type_name(k->type));
			return -1;
		}
		{
			char *copy = strndup(text, len);

			if (!copy) {
				snprintf(msg, msglen, "out of memory");
				return -1;
			}
			free(out->str);
			out->str = copy;
		}
		return 0;
	case CFG_INT: rc = parse_int(text, len, &num); break;
	case CFG_BOOL: rc = parse_bool(text, len, &num); break;
	case CFG_DURATION: rc = parse_duration(text, len, &num); break;
	case CFG_SIZE: rc = parse_size(text, len, &num); break;
	}
	if (rc != 0) {
		snprintf(msg, msglen, "expected %s", type_name(k->type));
		return -1;
	}
	if (k->type != CFG_BOOL && (num < k->min || num > k->max)) {
		if (k->type == CFG_DURATION)
			snprintf(msg, msglen, "expected a duration between %lldms and %lldms",
				 (long long)k->min, (long long)k->max);
		else
			snprintf(msg, msglen, "expected %s in [%lld, %lld]", type_name(k->type),
				 (long long)k->min, (long long)k->max);
		return -1;
	}
	out->num = num;
	return 0;
}

static void value_free(struct cfg_value *v)
{
	free(v->str);
	v->str = NULL;
}

void cfg_free(struct cfg *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg_key_count(); i++) {
		/* secrets do not linger in freed memory */
		if ((cfg_keys[i].flags & CFG_SECRET) && cfg->v[i].str)
			explicit_bzero(cfg->v[i].str, strlen(cfg->v[i].str));
		value_free(&cfg->v[i]);
	}
	free(cfg->v);
	free(cfg);
}

struct cfg *cfg_new(void)
{
	struct cfg *cfg = calloc(1, sizeof *cfg);
	char msg[128];

	if (!cfg)
		return NULL;
	cfg->v = calloc(cfg_key_count(), sizeof cfg->v[0]);
	if (!cfg->v) {
		free(cfg);
		return NULL;
	}
	for (size_t i = 0; i < cfg_key_count(); i++) {
		const struct cfg_key *k = &cfg_keys[i];
		const char *def = k->defval;

		if (!def) {
			if (k->type == CFG_STRING || k->type == CFG_ADDRESS)
				cfg->v[i].str = strdup("");
			continue;
		}
		if (strcmp(def, "@libexecdir") == 0)
			def = CERTWARD_LIBEXECDIR;
		if (cfg_value_set(k, def,
				  k->type == CFG_ENUM ? strcspn(def, "|") : strlen(def),
				  &cfg->v[i], msg, sizeof msg) != 0) {
			/* the key table itself is wrong: a build defect */
			fprintf(stderr, "config: default of %s.%s invalid: %s\n", k->section, k->name, msg);
			cfg_free(cfg);
			return NULL;
		}
	}
	return cfg;
}

int cfg_check_required(const struct cfg *cfg, const char *only_section, const char *file,
		       struct cfg_error *err)
{
	for (size_t i = 0; i < cfg_key_count(); i++) {
		const struct cfg_key *k = &cfg_keys[i];
		char key[96];

		if (!(k->flags & CFG_REQUIRED) ||
		    (only_section && strcmp(only_section, k->section) != 0))
			continue;
		if (cfg->v[i].set && !(cfg->v[i].str && cfg->v[i].str[0] == '\0'))
			continue;
		snprintf(key, sizeof key, "%s.%s", k->section, k->name);
		cfg_error_set(err, file, 0, key, "missing required value");
		return -1;
	}
	return 0;
}

static const struct cfg_value *lookup(const struct cfg *cfg, const char *section, const char *key,
				      enum cfg_type want)
{
	int i = cfg_key_index(section, key, strlen(key));

	if (i < 0 || cfg_keys[i].type != want) {
		fprintf(stderr, "config: %s.%s is not a key of that type\n", section, key);
		return NULL;
	}
	return &cfg->v[i];
}

const char *cfg_str(const struct cfg *cfg, const char *section, const char *key)
{
	int i = cfg_key_index(section, key, strlen(key));

	if (i < 0 || (cfg_keys[i].type != CFG_STRING && cfg_keys[i].type != CFG_ADDRESS &&
		      cfg_keys[i].type != CFG_ENUM))
		return NULL;
	return cfg->v[i].str;
}

int64_t cfg_int(const struct cfg *cfg, const char *section, const char *key)
{
	const struct cfg_value *v = lookup(cfg, section, key, CFG_INT);
	return v ? v->num : 0;
}

bool cfg_bool(const struct cfg *cfg, const char *section, const char *key)
{
	const struct cfg_value *v = lookup(cfg, section, key, CFG_BOOL);
	return v ? v->num != 0 : false;
}

uint64_t cfg_duration_ms(const struct cfg *cfg, const char *section, const char *key)
{
	const struct cfg_value *v = lookup(cfg, section, key, CFG_DURATION);
	return v ? (uint64_t)v->num : 0;
}

uint64_t cfg_size(const struct cfg *cfg, const char *section, const char *key)
{
	const struct cfg_value *v = lookup(cfg, section, key, CFG_SIZE);
	return v ? (uint64_t)v->num : 0;
}

bool cfg_is_set(const struct cfg *cfg, const char *section, const char *key)
{
	int i = cfg_key_index(section, key, strlen(key));
	return i >= 0 && cfg->v[i].set;
}

/* ---- section text: what the master hands a worker ---- */

int cfg_section_serialize(const struct cfg *cfg, const char *section, char **out, size_t *outlen)
{
	size_t cap = 256, len = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -1;
	buf[0] = '\0';
	for (size_t i = 0; i < cfg_key_count(); i++) {
		const struct cfg_key *k = &cfg_keys[i];
		char num[32];
		const char *val;
		size_t need;

		bool own = strcmp(k->section, section) == 0;

		if (!own && !section_shared_with(k->section, strlen(k->section), section))
			continue;
		switch (k->type) {
		case CFG_STRING:
		case CFG_ADDRESS:
		case CFG_ENUM: val = cfg->v[i].str ? cfg->v[i].str : ""; break;
		case CFG_BOOL: val = cfg->v[i].num ? "true" : "false"; break;
		case CFG_DURATION:
			snprintf(num, sizeof num, "%lldms", (long long)cfg->v[i].num);
			val = num;
			break;
		default:
			snprintf(num, sizeof num, "%lld", (long long)cfg->v[i].num);
			val = num;
		}
		need = (own ? 0 : strlen(k->section) + 1) + strlen(k->name) + 1 + strlen(val) + 2;
		if (len + need > cap) {
			char *p;

			while (len + need > cap)
				cap *= 2;
			p = realloc(buf, cap);
			if (!p) {
				free(buf);
				return -1;
			}
			buf = p;
		}
		len += (size_t)snprintf(buf + len, cap - len, "%s%s%s=%s\n", own ? "" : k->section,
					own ? "" : ".", k->name, val);
	}
	*out = buf;
	*outlen = len;
	return 0;
}

int cfg_section_parse(const char *section, const char *text, size_t len, struct cfg **out,
		      struct cfg_error *err)
{
	struct cfg *cfg;
	size_t off = 0;
	unsigned line = 0;
	char msg[200], key[96];

	if (!cfg_section_known(section, strlen(section))) {
		cfg_error_set(err, "ipc", 0, section, "unknown section");
		return -1;
	}
	if (len > SECTION_TEXT_MAX) {
		cfg_error_set(err, "ipc", 0, section, "section text larger than %u bytes",
			      SECTION_TEXT_MAX);
		return -1;
	}
	cfg = cfg_new();
	if (!cfg) {
		cfg_error_set(err, "ipc", 0, section, "out of memory");
		return -1;
	}
	while (off < len) {
		const char *l = text + off, *nl = memchr(l, '\n', len - off), *eq;
		size_t llen;
		int idx;

		line++;
		if (!nl) {
			cfg_error_set(err, "ipc", line, section, "line without a newline");
			goto fail;
		}
		llen = (size_t)(nl - l);
		off += llen + 1;
		eq = memchr(l, '=', llen);
		if (!eq || eq == l) {
			cfg_error_set(err, "ipc", line, section, "malformed line");
			goto fail;
		}
		idx = cfg_key_index(section, l, (size_t)(eq - l));
		if (idx < 0) {
			/* "audit.key": a key of a section this worker also reads */
			const char *dot = memchr(l, '.', (size_t)(eq - l));

			if (dot && section_shared_with(l, (size_t)(dot - l), section))
				idx = cfg_key_index(cfg_sections_find(l, (size_t)(dot - l)), dot + 1,
						    (size_t)(eq - dot - 1));
		}
		if (idx < 0) {
			snprintf(key, sizeof key, "%s.%.*s", section, (int)((eq - l) > 40 ? 40 : eq - l), l);
			cfg_error_set(err, "ipc", line, key, "unknown key");
			goto fail;
		}
		snprintf(key, sizeof key, "%s.%s", cfg_keys[idx].section, cfg_keys[idx].name);
		if (cfg->v[idx].set) {
			cfg_error_set(err, "ipc", line, key, "duplicate key");
			goto fail;
		}
		if (cfg_value_set(&cfg_keys[idx], eq + 1, (size_t)(l + llen - eq - 1), &cfg->v[idx],
				  msg, sizeof msg) != 0) {
			cfg_error_set(err, "ipc", line, key, "%s", msg);
			goto fail;
		}
		cfg->v[idx].set = true;
	}
	if (cfg_check_required(cfg, section, "ipc", err) != 0)
		goto fail;
	*out = cfg;
	return 0;
fail:
	cfg_free(cfg);
	return -1;
}
