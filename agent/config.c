#include "agent_config.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "config.h"
#include "fsutil.h"

/* ---- target types -------------------------------------------------------- */

static const char *const nginx_validate[] = {"nginx", "-t", NULL};
static const char *const nginx_reload[] = {"nginx", "-s", "reload", NULL};
static const char *const apache_validate[] = {"apachectl", "configtest", NULL};
static const char *const apache_reload[] = {"apachectl", "graceful", NULL};
static const char *const haproxy_validate[] = {"haproxy", "-c", "-f", "/etc/haproxy/haproxy.cfg", NULL};
static const char *const haproxy_reload[] = {"systemctl", "reload", "haproxy", NULL};
static const char *const postfix_validate[] = {"postfix", "check", NULL};
static const char *const postfix_reload[] = {"postfix", "reload", NULL};
static const char *const dovecot_validate[] = {"doveconf", "-n", NULL};
static const char *const dovecot_reload[] = {"doveadm", "reload", NULL};

static const struct {
	enum target_type type;
	const char *name;
	const char *const *validate, *const *reload;
} target_types[] = {
	{TARGET_NGINX, "nginx", nginx_validate, nginx_reload},
	{TARGET_APACHE, "apache", apache_validate, apache_reload},
	{TARGET_HAPROXY, "haproxy", haproxy_validate, haproxy_reload},
	{TARGET_POSTFIX, "postfix", postfix_validate, postfix_reload},
	{TARGET_DOVECOT, "dovecot", dovecot_validate, dovecot_reload},
	{TARGET_FILE, "file", NULL, NULL},
};

#define NTYPES (sizeof target_types / sizeof target_types[0])

enum target_type target_type_from_name(const char *s)
{
	for (size_t i = 0; s && i < NTYPES; i++)
		if (strcasecmp(s, target_types[i].name) == 0)
			return target_types[i].type;
	return TARGET_NONE;
}

const char *target_type_name(enum target_type t)
{
	for (size_t i = 0; i < NTYPES; i++)
		if (target_types[i].type == t)
			return target_types[i].name;
	return "none";
}

const char *const *target_default_validate(enum target_type t)
{
	for (size_t i = 0; i < NTYPES; i++)
		if (target_types[i].type == t)
			return target_types[i].validate;
	return NULL;
}

const char *const *target_default_reload(enum target_type t)
{
	for (size_t i = 0; i < NTYPES; i++)
		if (target_types[i].type == t)
			return target_types[i].reload;
	return NULL;
}

/* ---- values -------------------------------------------------------------- */

/* the parsers of certwardd's configuration, with the agent's own ceilings */
int parse_duration_ms(const char *s, uint64_t *ms)
{
	int64_t v;

	/* a year is more than anything here needs */
	if (cfg_parse_duration(s, &v) != 0 || v < 0 || v > 366ll * 86400000ll)
		return -1;
	*ms = (uint64_t)v;
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	int64_t v;

	if (cfg_parse_size(s, &v) != 0 || v < 0 || v > (1ll << 40))
		return -1;
	*out = (uint64_t)v;
	return 0;
}

/* ---- the YAML walk ------------------------------------------------------- */

struct walk {
	yaml_document_t *doc;
	const char *name;
	const char *base; /* the file's directory (absolute), for relative paths; NULL: none allowed */
	char *why;
	size_t whylen;
};

static int fail(struct walk *w, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct walk *w, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(w->why, w->whylen, "%s:%lu: %s", w->name,
		 n ? (unsigned long)n->start_mark.line + 1 : 1ul, msg);
	return -1;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int is_null(const yaml_node_t *n)
{
	const char *s = scalar(n);

	return s && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (!*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0);
}

/* A string value of at most MAX bytes without control characters. */
static int get_string(struct walk *w, const yaml_node_t *n, const char *key, size_t max,
		      char **out)
{
	const char *s = scalar(n);
	size_t len;

	if (!s)
		return fail(w, n, "%s: expected a string", key);
	len = n->data.scalar.length;
	if (len == 0)
		return fail(w, n, "%s: empty", key);
	if (len > max)
		return fail(w, n, "%s: longer than %zu bytes", key, max);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return fail(w, n, "%s: control character", key);
	free(*out);
	*out = strdup(s);
	return *out ? 0 : fail(w, n, "out of memory");
}

static int get_path(struct walk *w, const yaml_node_t *n, const char *key, char **out)
{
	char *joined;
	size_t len;

	if (get_string(w, n, key, AGENT_MAX_STRING, out) != 0)
		return -1;
	if ((*out)[0] == '/')
		return 0;
	if (!w->base)
		return fail(w, n, "%s: must be an absolute path", key);
	/* relative to the file's directory, as a service reads it from anywhere */
	len = strlen(w->base) + 1 + strlen(*out);
	if (len > AGENT_MAX_STRING)
		return fail(w, n, "%s: longer than %d bytes once made absolute", key, AGENT_MAX_STRING);
	if (!(joined = malloc(len + 1)))
		return fail(w, n, "out of memory");
	{
		size_t b = strlen(w->base);

		memcpy(joined, w->base, b);
		joined[b] = '/';
		memcpy(joined + b + 1, *out, len - b); /* with its NUL */
	}
	free(*out);
	*out = joined;
	return 0;
}

static int get_duration(struct walk *w, const yaml_node_t *n, const char *key, uint64_t min,
			uint64_t *ms)
{
	const char *s = scalar(n);

	if (!s || parse_duration_ms(s, ms) != 0)
		return fail(w, n, "%s: expected a duration like 30s, 5m, 6h (got \"%.40s\")", key,
			    s ? s : "");
	if (*ms < min)
		return fail(w, n, "%s: at least %llums", key, (unsigned long long)min);
	return 0;
}

static int get_count(struct walk *w, const yaml_node_t *n, const char *key, uint64_t min,
		     uint64_t max, uint64_t *out, int size)
{
	const char *s = scalar(n);
	uint64_t v;
	int bad = !s || parse_size(s, &v) != 0 || (!size && strspn(s, "0123456789") != strlen(s));

	if (bad)
		return fail(w, n, "%s: expected %s (got \"%.40s\")", key,
			    size ? "a size like 1MiB" : "a whole number", s ? s : "");
	if (v < min || v > max)
		return fail(w, n, "%s: must be between %llu and %llu", key, (unsigned long long)min,
			    (unsigned long long)max);
	*out = v;
	return 0;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* A list of strings into a NULL-terminated vector of at most MAX. */
static int get_list(struct walk *w, const yaml_node_t *n, const char *key, size_t max,
		    size_t maxlen, int paths, char ***out, size_t *count)
{
	size_t k = 0, len;
	char **v;

	if (!n || n->type != YAML_SEQUENCE_NODE)
		return fail(w, n, "%s: expected a list", key);
	len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (len > max)
		return fail(w, n, "%s: more than %zu entries", key, max);
	v = calloc(len + 1, sizeof *v);
	if (!v)
		return fail(w, n, "out of memory");
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *item = yaml_document_get_node(w->doc, *it);
		int rc = paths ? get_path(w, item, key, &v[k]) : get_string(w, item, key, maxlen, &v[k]);

		if (rc != 0) {
			free_strv(v);
			return -1;
		}
		k++;
	}
	free_strv(*out);
	*out = v;
	if (count)
		*count = k;
	return 0;
}

/* Walks a mapping, checking for duplicate keys; calls FN for each pair. */
typedef int (*pair_fn)(struct walk *w, const char *key, yaml_node_t *kn, yaml_node_t *vn,
		       void *arg);

static int each_pair(struct walk *w, yaml_node_t *map, const char *what, pair_fn fn, void *arg)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return fail(w, map, "%s: expected a mapping", what);
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(w->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(w->doc, p->value);
		const char *key = scalar(kn);

		if (!key)
			return fail(w, kn, "%s: keys must be strings", what);
		for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
			const char *other = scalar(yaml_document_get_node(w->doc, q->key));

			if (other && strcmp(other, key) == 0)
				return fail(w, kn, "%s: duplicate key \"%.64s\"", what, key);
		}
		if (fn(w, key, kn, vn, arg) != 0)
			return -1;
	}
	return 0;
}

static int verify_pair(struct walk *w, const char *key, yaml_node_t *kn, yaml_node_t *vn, void *arg)
{
	struct agent_target *t = arg;

	if (strcmp(key, "address") == 0)
		return get_string(w, vn, "verify.address", 300, &t->verify_address);
	if (strcmp(key, "server_name") == 0)
		return get_string(w, vn, "verify.server_name", 253, &t->verify_server_name);
	if (strcmp(key, "timeout") == 0)
		return get_duration(w, vn, "verify.timeout", 100, &t->verify_timeout_ms);
	return fail(w, kn, "verify: unknown key \"%.64s\"", key);
}

static int get_argv(struct walk *w, yaml_node_t *vn, const char *key, char ***out, int *has)
{
	if (get_list(w, vn, key, AGENT_MAX_ARGV, AGENT_MAX_STRING, 0, out, NULL) != 0)
		return -1;
	*has = 1;
	return 0;
}

static int target_pair(struct walk *w, const char *key, yaml_node_t *kn, yaml_node_t *vn, void *arg)
{
	struct agent_target *t = arg;

	if (is_null(vn) && strcmp(key, "name") != 0 && strcmp(key, "type") != 0)
		return 0;
	if (strcmp(key, "name") == 0)
		return get_string(w, vn, "name", AGENT_MAX_NAME, &t->name);
	if (strcmp(key, "type") == 0) {
		const char *s = scalar(vn);

		t->type = target_type_from_name(s);
		if (t->type == TARGET_NONE)
			return fail(w, vn, "type: one of nginx, apache, haproxy, postfix, dovecot, file "
					   "(got \"%.40s\")", s ? s : "");
		return 0;
	}
	if (strcmp(key, "target_id") == 0)
		return get_string(w, vn, "target_id", AGENT_MAX_NAME, &t->target_id);
	if (strcmp(key, "cert_path") == 0)
		return get_path(w, vn, key, &t->cert_path);
	if (strcmp(key, "key_path") == 0)
		return get_path(w, vn, key, &t->key_path);
	if (strcmp(key, "chain_path") == 0)
		return get_path(w, vn, key, &t->chain_path);
	if (strcmp(key, "pem_path") == 0)
		return get_path(w, vn, key, &t->pem_path);
	if (strcmp(key, "acme_webroot") == 0)
		return get_path(w, vn, key, &t->acme_webroot);
	if (strcmp(key, "validate") == 0)
		return get_argv(w, vn, key, &t->validate, &t->has_validate);
	if (strcmp(key, "reload") == 0)
		return get_argv(w, vn, key, &t->reload, &t->has_reload);
	if (strcmp(key, "verify") == 0)
		return each_pair(w, vn, "verify", verify_pair, t);
	if (strcmp(key, "command_timeout") == 0)
		return get_duration(w, vn, key, 100, &t->command_timeout_ms);
	return fail(w, kn, "targets: unknown key \"%.64s\"", key);
}

/* What each type needs: files, and no paths it would not write. */
static int check_target(struct walk *w, yaml_node_t *n, struct agent_target *t)
{
	if (!t->name)
		return fail(w, n, "targets: every target needs a name");
	if (t->type == TARGET_NONE)
		return fail(w, n, "target %s: needs a type", t->name);
	if (t->type == TARGET_HAPROXY) {
		if (!t->pem_path)
			return fail(w, n, "target %s: haproxy needs pem_path", t->name);
		if (t->cert_path || t->key_path || t->chain_path)
			return fail(w, n, "target %s: haproxy takes pem_path only", t->name);
	} else {
		if (!t->cert_path || !t->key_path)
			return fail(w, n, "target %s: needs cert_path and key_path", t->name);
		if (t->pem_path)
			return fail(w, n, "target %s: pem_path is for haproxy", t->name);
	}
	if (t->verify_server_name && !t->verify_address)
		return fail(w, n, "target %s: verify needs an address", t->name);
	return 0;
}

static int targets_list(struct walk *w, yaml_node_t *vn, struct agent_config *c)
{
	size_t len;

	if (!vn || vn->type != YAML_SEQUENCE_NODE)
		return fail(w, vn, "targets: expected a list");
	len = (size_t)(vn->data.sequence.items.top - vn->data.sequence.items.start);
	if (len > AGENT_MAX_TARGETS)
		return fail(w, vn, "targets: more than %d targets", AGENT_MAX_TARGETS);
	for (yaml_node_item_t *it = vn->data.sequence.items.start; it < vn->data.sequence.items.top; it++) {
		yaml_node_t *item = yaml_document_get_node(w->doc, *it);
		struct agent_target *t, *nt;

		nt = realloc(c->targets, (c->ntargets + 1) * sizeof *c->targets);
		if (!nt)
			return fail(w, item, "out of memory");
		c->targets = nt;
		t = &c->targets[c->ntargets++];
		memset(t, 0, sizeof *t);
		t->verify_timeout_ms = AGENT_DEFAULT_VERIFY_TIMEOUT_MS;
		t->command_timeout_ms = AGENT_DEFAULT_CMD_TIMEOUT_MS;
		t->line = item ? (unsigned)item->start_mark.line + 1 : 0;
		if (each_pair(w, item, "targets", target_pair, t) != 0 || check_target(w, item, t) != 0)
			return -1;
		for (size_t k = 0; k + 1 < c->ntargets; k++) {
			if (strcmp(c->targets[k].name, t->name) == 0)
				return fail(w, item, "targets: two targets named \"%s\"", t->name);
			if (t->target_id && c->targets[k].target_id &&
			    strcmp(c->targets[k].target_id, t->target_id) == 0)
				return fail(w, item, "targets: two targets bound to target_id \"%s\"",
					    t->target_id);
		}
	}
	return 0;
}

static int discovery_pair(struct walk *w, const char *key, yaml_node_t *kn, yaml_node_t *vn,
			  void *arg)
{
	struct agent_discovery *d = arg;
	uint64_t v;

	if (strcmp(key, "directories") == 0)
		return get_list(w, vn, "discovery.directories", AGENT_MAX_DISCOVERY_DIRS, AGENT_MAX_STRING, 1,
				&d->directories, &d->ndirectories);
	if (strcmp(key, "interval") == 0)
		return get_duration(w, vn, "discovery.interval", 1000, &d->interval_ms);
	if (strcmp(key, "max_files") == 0) {
		if (get_count(w, vn, "discovery.max_files", 1, 1000000, &v, 0) != 0)
			return -1;
		d->max_files = (size_t)v;
		return 0;
	}
	if (strcmp(key, "max_file_size") == 0) {
		if (get_count(w, vn, "discovery.max_file_size", 1024, 64u << 20, &v, 1) != 0)
			return -1;
		d->max_file_size = (size_t)v;
		return 0;
	}
	if (strcmp(key, "max_certs") == 0) {
		/* the api takes at most 5000 certificates per report */
		if (get_count(w, vn, "discovery.max_certs", 1, 5000, &v, 0) != 0)
			return -1;
		d->max_certs = (size_t)v;
		return 0;
	}
	if (strcmp(key, "max_depth") == 0) {
		if (get_count(w, vn, "discovery.max_depth", 0, 64, &v, 0) != 0)
			return -1;
		d->max_depth = (unsigned)v;
		return 0;
	}
	return fail(w, kn, "discovery: unknown key \"%.64s\"", key);
}

static int top_pair(struct walk *w, const char *key, yaml_node_t *kn, yaml_node_t *vn, void *arg)
{
	struct agent_config *c = arg;

	if (strcmp(key, "server") == 0) {
		if (get_string(w, vn, key, 1024, &c->server) != 0)
			return -1;
		if (strncasecmp(c->server, "https://", 8) != 0)
			return fail(w, vn, "server: must start with https://");
		return 0;
	}
	if (strcmp(key, "cacert") == 0)
		return is_null(vn) ? 0 : get_path(w, vn, key, &c->cacert);
	if (strcmp(key, "state_dir") == 0)
		return get_path(w, vn, key, &c->state_dir);
	if (strcmp(key, "heartbeat_interval") == 0)
		return get_duration(w, vn, key, 1000, &c->heartbeat_interval_ms);
	if (strcmp(key, "poll_interval") == 0)
		return get_duration(w, vn, key, 1000, &c->poll_interval_ms);
	if (strcmp(key, "log_level") == 0) {
		static const char *const levels[] = {"debug", "info", "warn", "error"};
		const char *s = scalar(vn);

		for (int i = 0; s && i < 4; i++)
			if (strcmp(s, levels[i]) == 0) {
				c->log_level = (enum agent_log_level)i;
				return 0;
			}
		return fail(w, vn, "log_level: one of debug, info, warn, error");
	}
	if (strcmp(key, "allowed_paths") == 0)
		return get_list(w, vn, key, AGENT_MAX_LIST, AGENT_MAX_STRING, 1, &c->allowed_paths,
				&c->nallowed_paths);
	if (strcmp(key, "discovery") == 0)
		return each_pair(w, vn, "discovery", discovery_pair, &c->discovery);
	if (strcmp(key, "targets") == 0)
		return is_null(vn) ? 0 : targets_list(w, vn, c);
	return fail(w, kn, "unknown key \"%.64s\"", key);
}

int agent_config_defaults(struct agent_config *c)
{
	memset(c, 0, sizeof *c);
	c->server = strdup(AGENT_DEFAULT_SERVER);
	c->state_dir = strdup(AGENT_DEFAULT_STATE_DIR);
	c->heartbeat_interval_ms = 60000;
	c->poll_interval_ms = 30000;
	c->log_level = AGENT_LOG_INFO;
	c->discovery.interval_ms = 6ull * 3600000ull;
	c->discovery.max_files = 10000;
	c->discovery.max_file_size = 1u << 20;
	c->discovery.max_certs = 5000;
	c->discovery.max_depth = 8;
	if (!c->server || !c->state_dir) {
		agent_config_free(c);
		return -1;
	}
	return 0;
}

static int parse(const char *text, size_t len, const char *name, const char *base, struct agent_config *c,
		 char *why, size_t whylen)
{
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	struct walk w = {.doc = &doc, .name = name, .base = base, .why = why, .whylen = whylen};
	yaml_node_t *root;
	int rc = -1;

	if (agent_config_defaults(c) != 0) {
		snprintf(why, whylen, "%s: out of memory", name);
		return -1;
	}
	if (len > AGENT_CONFIG_MAX_BYTES) {
		snprintf(why, whylen, "%s: larger than %u bytes", name, AGENT_CONFIG_MAX_BYTES);
		goto out_nodoc;
	}
	if (memchr(text, 0, len)) {
		snprintf(why, whylen, "%s: contains a NUL byte", name);
		goto out_nodoc;
	}
	if (!yaml_parser_initialize(&parser)) {
		snprintf(why, whylen, "%s: out of memory", name);
		goto out_nodoc;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(why, whylen, "%s:%lu: %s", name, (unsigned long)parser.problem_mark.line + 1,
			 parser.problem ? parser.problem : "malformed YAML");
		yaml_parser_delete(&parser);
		goto out_nodoc;
	}
	root = yaml_document_get_root_node(&doc);
	if (root) {
		if (!yaml_parser_load(&parser, &extra)) {
			snprintf(why, whylen, "%s:%lu: %s", name,
				 (unsigned long)parser.problem_mark.line + 1,
				 parser.problem ? parser.problem : "malformed YAML");
			goto out;
		}
		if (yaml_document_get_root_node(&extra)) {
			yaml_document_delete(&extra);
			snprintf(why, whylen, "%s: more than one YAML document", name);
			goto out;
		}
		yaml_document_delete(&extra);
		if (each_pair(&w, root, "agent.yml", top_pair, c) != 0)
			goto out;
	}
	rc = 0;
out:
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
out_nodoc:
	if (rc != 0)
		agent_config_free(c);
	return rc;
}

int agent_config_parse(const char *text, size_t len, const char *name, struct agent_config *c,
		       char *why, size_t whylen)
{
	return parse(text, len, name, NULL, c, why, whylen);
}

int agent_config_load(const char *path, struct agent_config *c, char *why, size_t whylen)
{
	size_t len = 0;
	char *text = read_file_max(path, AGENT_CONFIG_MAX_BYTES, &len);
	char *copy, *base;
	int rc;

	if (!text) {
		snprintf(why, whylen, "%s: %s", path,
			 errno == EFBIG ? "larger than 256 KiB" : strerror(errno));
		memset(c, 0, sizeof *c);
		return -1;
	}
	/* the directory the file is in, absolute, for its relative paths */
	base = (copy = strdup(path)) ? realpath(dirname(copy), NULL) : NULL;
	free(copy);
	if (!base) {
		snprintf(why, whylen, "%s: cannot resolve its directory: %s", path, strerror(errno));
		free(text);
		memset(c, 0, sizeof *c);
		return -1;
	}
	rc = parse(text, len, path, base, c, why, whylen);
	free(base);
	free(text);
	return rc;
}

void agent_config_free(struct agent_config *c)
{
	free(c->server);
	free(c->cacert);
	free(c->state_dir);
	free_strv(c->allowed_paths);
	free_strv(c->discovery.directories);
	for (size_t i = 0; i < c->ntargets; i++) {
		struct agent_target *t = &c->targets[i];

		free(t->name);
		free(t->target_id);
		free(t->cert_path);
		free(t->key_path);
		free(t->chain_path);
		free(t->pem_path);
		free(t->acme_webroot);
		free_strv(t->validate);
		free_strv(t->reload);
		free(t->verify_address);
		free(t->verify_server_name);
	}
	free(c->targets);
	memset(c, 0, sizeof *c);
}

/* ---- allowed paths ------------------------------------------------------- */

static int clean_components(const char *path)
{
	const char *p = path;

	while (*p) {
		const char *e;
		size_t n;

		while (*p == '/')
			p++;
		e = p + strcspn(p, "/");
		n = (size_t)(e - p);
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p = e;
	}
	return 1;
}

/* Whether PATH is PREFIX or below it, on a component boundary. */
static int under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	while (n > 1 && prefix[n - 1] == '/')
		n--;
	if (n == 1 && prefix[0] == '/')
		return 1;
	return strncmp(path, prefix, n) == 0 && (path[n] == '/' || path[n] == 0);
}

int agent_path_allowed(const struct agent_config *c, const char *path, char *resolved, char *why,
		       size_t whylen)
{
	char dir[PATH_MAX], real[PATH_MAX];
	const char *slash, *base;
	size_t n = strlen(path);

	if (path[0] != '/' || n >= PATH_MAX - 1 || n > AGENT_MAX_STRING) {
		snprintf(why, whylen, "%.200s: not an absolute path", path);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f) {
			snprintf(why, whylen, "path with a control character");
			return 0;
		}
	if (!clean_components(path)) {
		snprintf(why, whylen, "%.200s: \".\" and \"..\" are not allowed in a path", path);
		return 0;
	}
	slash = strrchr(path, '/');
	base = slash + 1;
	if (!*base) {
		snprintf(why, whylen, "%.200s: names a directory", path);
		return 0;
	}
	snprintf(dir, sizeof dir, "%.*s", (int)(slash - path) ? (int)(slash - path) : 1, path);
	if (!realpath(dir, real)) {
		snprintf(why, whylen, "%.200s: directory %.200s: %s", path, dir, strerror(errno));
		return 0;
	}
	if (strlen(real) + 1 + strlen(base) >= PATH_MAX) {
		snprintf(why, whylen, "%.200s: path too long", path);
		return 0;
	}
	{
		size_t rl = strlen(real), bl = strlen(base);

		/* lengths checked above */
		memcpy(resolved, real, rl);
		if (strcmp(real, "/") != 0)
			resolved[rl++] = '/';
		memcpy(resolved + rl, base, bl + 1);
	}
	for (size_t i = 0; i < c->nallowed_paths; i++) {
		char pre[PATH_MAX];
		const char *p = realpath(c->allowed_paths[i], pre) ? pre : c->allowed_paths[i];

		if (under(resolved, p))
			return 1;
	}
	snprintf(why, whylen, "%.200s is not under any of allowed_paths", resolved);
	return 0;
}
