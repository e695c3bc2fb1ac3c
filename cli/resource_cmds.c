/* See resource_cmds.h. A command is a row of groups[] (its collection
 * under /api/v1, the generic actions it has, the columns of its lists); an
 * action is a row of actions[], generic or one command's own. Fields and
 * filters come from the resource catalogue (fields.h), so they are not
 * written down here. */
#include "resource_cmds.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "config.h"
#include "fields.h"
#include "output.h"

/* --all: pages of this size unless --per-page, and at most this many
 * records (a server cannot make the CLI read forever) */
#define ALL_PER_PAGE 500
#define ALL_MAX_RECORDS 200000

/* --expires-in: at most a hundred years */
#define EXPIRES_IN_MAX_S (100LL * 366 * 86400)

/* the generic actions: the catalogue's verbs */
#define A_LIST VERB_LIST
#define A_GET VERB_GET
#define A_CREATE VERB_CREATE
#define A_UPDATE VERB_UPDATE
#define A_DELETE VERB_DELETE
#define A_CRUD (A_LIST | A_GET | A_CREATE | A_UPDATE | A_DELETE)

/* the options an action takes besides the common ones */
#define O_PAGES 1u   /* --page, --per-page, --all */
#define O_LIST 2u    /* --sort and the filters */
#define O_FIELDS 4u  /* --data and the fields */
#define O_REASON 8u  /* --reason */
#define O_FORCE 16u  /* --force */
#define O_RETIRED 32u /* --retired */
#define O_KEY 64u    /* --name, --role, --agent, --expires-in, --expires-at */

struct group {
	const char *name, *path;
	const char *one; /* a record, for help: "team" */
	unsigned actions; /* the generic ones when the catalogue does not have the resource */
	const char *deleted; /* what delete did, said after it: "deleted" */
	const char *const *cols;
	size_t ncols;
};

#define COLS(...) \
	(const char *const[]){__VA_ARGS__}, sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)

static const struct group groups[] = {
	{"teams", "/api/v1/teams", "team", A_CRUD, "deleted", COLS("id", "name", "description")},
	{"owners", "/api/v1/owners", "owner", A_CRUD, "deleted", COLS("id", "name", "email", "team_id")},
	{"issuers", "/api/v1/issuers", "issuer", A_CRUD, "deleted",
	 COLS("id", "name", "type", "enabled")},
	{"profiles", "/api/v1/profiles", "certificate profile", A_CRUD, "deleted",
	 COLS("id", "name", "max_ttl_seconds", "requires_approval", "enabled")},
	{"renewal-policies", "/api/v1/renewal-policies", "renewal policy", A_CRUD, "deleted",
	 COLS("id", "name", "renewal_window_days", "auto_renew", "max_retries")},
	{"targets", "/api/v1/targets", "deployment target", A_CRUD, "deleted",
	 COLS("id", "name", "type", "agent_id", "enabled")},
	{"agent-groups", "/api/v1/agent-groups", "agent group", A_CRUD, "deleted",
	 COLS("id", "name", "description", "enabled")},
	{"policies", "/api/v1/policies", "policy", A_CRUD, "deleted",
	 COLS("id", "name", "type", "severity", "enabled")},
	{"certs", "/api/v1/certificates", "certificate", A_CRUD, "archived",
	 COLS("id", "name", "common_name", "status", "expires_at", "environment")},
	{"agents", "/api/v1/agents", "agent", A_GET, "retired",
	 COLS("id", "name", "hostname", "status", "last_heartbeat_at", "retired_at")},
	{"jobs", "/api/v1/jobs", "job", A_LIST | A_GET, "cancelled",
	 COLS("id", "type", "status", "certificate_id", "target_id", "attempts", "created_at")},
	{"notifications", "/api/v1/notifications", "notification", A_LIST | A_GET, "",
	 COLS("id", "type", "channel", "recipient", "status", "created_at")},
	{"audit", "/api/v1/audit", "audit event", A_LIST | A_GET, "",
	 COLS("id", "timestamp", "actor", "action", "resource_type", "resource_id", "outcome")},
	{"apikey", "/api/v1/apikeys", "API key", A_LIST | A_GET, "revoked",
	 COLS("id", "name", "role", "key_prefix", "agent_id", "expires_at", "revoked_at", "last_used_at")},
};

/* One invocation: the command line, parsed. */
struct inv {
	struct cli_common c;
	const struct group *g;
	const struct action *a;
	const struct resource_def *res; /* NULL: not in the catalogue */
	char hint[64];			/* "certward teams --help" */
	const char *id;
	long page, per_page; /* 0: the server's default */
	const char *sort;
	int all, force, retired;
	struct strbuf filters; /* "&name=value..." */
	json_t *body;	       /* create, update: the fields */
	const char *data, *reason;
	const char *key_name, *key_role, *key_agent, *expires_in, *expires_at;
};

struct action {
	const char *group; /* NULL: every group with the bit */
	const char *name;
	unsigned bit, opts;
	int takes_id;
	const char *args, *help;
	int (*run)(struct inv *v);
	/* a list under a record: its path in the catalogue, the record's id
	 * as the {...} segment, and its columns */
	const char *sub;
	const char *const *cols;
	size_t ncols;
};

static int do_list(struct inv *v);
static int do_get(struct inv *v);
static int do_create(struct inv *v);
static int do_update(struct inv *v);
static int do_delete(struct inv *v);
static int do_renew(struct inv *v);
static int do_revoke(struct inv *v);
static int do_sublist(struct inv *v);
static int do_retire(struct inv *v);
static int do_cancel(struct inv *v);
static int do_read(struct inv *v);
static int do_key_create(struct inv *v);

/* an action that is not a list under a record */
#define NO_SUB NULL, NULL, 0

#define LIST_ARGS "[--page N] [--per-page N] [--sort F|-F] [--FILTER VALUE ...] [--all]"

/* The generic actions, then the commands' own ones (a command's own one
 * stands in for a generic one of the same name). */
static const struct action actions[] = {
	{NULL, "list", A_LIST, O_PAGES | O_LIST, 0, LIST_ARGS,
	 "a page (the footer on stderr tells which), or every page with --all", do_list, NO_SUB},
	{NULL, "get", A_GET, 0, 1, "ID", "one record, a field a line", do_get, NO_SUB},
	{NULL, "create", A_CREATE, O_FIELDS, 0, "--FIELD VALUE ... [--data JSON|@FILE|@-]",
	 "create; prints the new record", do_create, NO_SUB},
	{NULL, "update", A_UPDATE, O_FIELDS, 1, "ID --FIELD VALUE ... [--data JSON|@FILE|@-]",
	 "change the fields given, keep the others", do_update, NO_SUB},
	{NULL, "delete", A_DELETE, 0, 1, "ID", "delete (certificates: archive)", do_delete, NO_SUB},
	{"agents", "list", 0, O_PAGES | O_LIST | O_RETIRED, 0, LIST_ARGS " [--retired]",
	 "agents in service, or the retired ones", do_list, NO_SUB},
	{"certs", "archive", 0, 0, 1, "ID", "archive a certificate (the same as delete)", do_delete, NO_SUB},
	{"certs", "renew", 0, 0, 1, "ID", "ask for a renewal now", do_renew, NO_SUB},
	{"certs", "revoke", 0, O_REASON, 1, "ID [--reason REASON]",
	 "revoke; REASON as in RFC 5280: unspecified, keyCompromise, caCompromise,\n"
	 "affiliationChanged, superseded, cessationOfOperation, certificateHold,\n"
	 "privilegeWithdrawn",
	 do_revoke, NO_SUB},
	{"certs", "versions", 0, O_PAGES | O_LIST, 1, "ID " LIST_ARGS,
	 "the issued versions of a certificate", do_sublist,
	 "/api/v1/certificates/{certificate_id}/versions",
	 COLS("id", "serial_number", "not_before", "not_after", "key_algorithm", "key_size")},
	{"agent-groups", "members", 0, O_PAGES | O_LIST, 1, "ID " LIST_ARGS,
	 "the agents an agent group matches", do_sublist, "/api/v1/agent-groups/{agent_group_id}/members",
	 COLS("id", "name", "hostname", "status", "last_heartbeat_at")},
	{"policies", "violations", 0, O_PAGES | O_LIST, 1, "ID " LIST_ARGS,
	 "the certificates that break a policy", do_sublist, "/api/v1/policies/{rule_id}/violations",
	 COLS("id", "certificate_id", "severity", "message", "created_at")},
	{"agents", "retire", 0, O_REASON | O_FORCE, 1, "ID [--force --reason TEXT]",
	 "retire an agent; refused (409) while it has active targets, certificates or\n"
	 "jobs unless --force, which retires those too and needs a --reason",
	 do_retire, NO_SUB},
	{"jobs", "cancel", 0, 0, 1, "ID", "cancel a job", do_cancel, NO_SUB},
	{"notifications", "read", 0, 0, 1, "ID", "mark a notification read", do_read, NO_SUB},
	{"apikey", "create", 0, O_KEY, 0,
	 "--name NAME --role admin|operator|viewer|agent [--agent ID]\n"
	 "[--expires-in DURATION | --expires-at RFC3339]",
	 "make a key; it is printed once, alone on its line (DURATION like 90d, 12h)", do_key_create, NO_SUB},
	{"apikey", "revoke", 0, 0, 1, "ID", "revoke a key: it stops working at once", do_delete, NO_SUB},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const struct group *group_named(const char *name)
{
	for (size_t i = 0; i < NELEM(groups); i++)
		if (strcmp(groups[i].name, name) == 0)
			return &groups[i];
	return NULL;
}

/* Whether action a is one of g's. */
static int has(const struct group *g, const struct action *a)
{
	if (a->group)
		return strcmp(a->group, g->name) == 0;
	for (size_t i = 0; i < NELEM(actions); i++)
		if (actions[i].group && strcmp(actions[i].group, g->name) == 0 &&
		    strcmp(actions[i].name, a->name) == 0)
			return 0; /* the command's own one stands in */
	{
		const struct resource_def *res = resource_by_path(g->path);

		return ((res ? res->verbs : g->actions) & a->bit) != 0;
	}
}

static const struct action *action_named(const struct group *g, const char *name)
{
	for (size_t i = 0; i < NELEM(actions); i++)
		if (has(g, &actions[i]) && strcmp(actions[i].name, name) == 0)
			return &actions[i];
	return NULL;
}

/* The names of g's actions: "list|get|delete" with bar, else "list, get
 * or delete". */
static void action_names(const struct group *g, int bar, char *out, size_t len)
{
	size_t n = 0, k = 0, used = 0;

	for (size_t i = 0; i < NELEM(actions); i++)
		n += has(g, &actions[i]);
	out[0] = '\0';
	for (size_t i = 0; i < NELEM(actions) && used < len; i++) {
		if (!has(g, &actions[i]))
			continue;
		k++;
		used += (size_t)snprintf(out + used, len - used, "%s%s",
					 k == 1 ? "" : bar ? "|" : k == n ? " or " : ", ", actions[i].name);
	}
}

static void group_usage(const struct group *g, FILE *out)
{
	const struct resource_def *res = resource_by_path(g->path);

	fprintf(out, "usage: certward %s ACTION [ID] [OPTIONS]\n\nThe %s under %s.\n\nactions:\n", g->name,
		g->name, g->path);
	for (size_t i = 0; i < NELEM(actions); i++) {
		const struct action *a = &actions[i];
		const char *p;

		if (!has(g, a))
			continue;
		fprintf(out, "  %s ", a->name);
		for (p = a->args; *p; p++)
			fprintf(out, *p == '\n' ? "\n      " : "%c", *p);
		fprintf(out, "\n      ");
		for (p = a->help; *p; p++)
			fprintf(out, *p == '\n' ? "\n      " : "%c", *p);
		fputc('\n', out);
	}
	fputc('\n', out);
	if (res)
		fields_usage(res, out);
	else if (g->actions & (A_CREATE | A_UPDATE))
		fields_usage(NULL, out);
	else
		fprintf(out, "filters (list): --FILTER VALUE, the server's query parameters\n");
	fprintf(out, "\noptions of every action:\n");
	cli_common_usage(out);
}

void resource_cmd_usage(FILE *out)
{
	for (size_t i = 0; i < NELEM(groups); i++) {
		char names[160];

		action_names(&groups[i], 1, names, sizeof names);
		fprintf(out, "  %-17s %s\n", groups[i].name, names);
	}
}

/* ---- the command line ---- */

/* An option that takes one value: set once. */
static int once(struct inv *v, const char *opt, const char **slot, const char *val)
{
	if (*slot)
		return cli_usage_error(v->hint, "--%s given twice", opt);
	*slot = val;
	return 0;
}

static int parse_count(struct inv *v, const char *opt, const char *val, long *out)
{
	char *end;
	long n = strtol(val, &end, 10);

	if (*out)
		return cli_usage_error(v->hint, "--%s given twice", opt);
	if (end == val || *end || n < 1 || n > 1000000000 || val[0] == '+')
		return cli_usage_error(v->hint, "--%s takes a number from 1, not '%s'", opt, val);
	*out = n;
	return 0;
}

/* An option with a value that is not a common one; 0, or the exit status. */
static int action_option(struct inv *v, const char *name, const char *val)
{
	unsigned opts = v->a->opts;
	char err[256];

	if ((opts & O_PAGES) && strcmp(name, "page") == 0)
		return parse_count(v, name, val, &v->page);
	if ((opts & O_PAGES) && strcmp(name, "per-page") == 0)
		return parse_count(v, name, val, &v->per_page);
	if ((opts & O_LIST) && strcmp(name, "sort") == 0) {
		if (!fields_sort_ok(v->res, val[0] == '-' ? val + 1 : val))
			return cli_usage_error(v->hint, "%s: not a sort key of %s", val, v->g->name);
		return once(v, name, &v->sort, val);
	}
	if (opts & O_LIST) {
		if (fields_filter(v->res, &v->filters, name, val) != FIELD_OPT_SET)
			return cli_usage_error(v->hint, "--%s is not a filter of %s", name, v->g->name);
		return 0;
	}
	if ((opts & O_FIELDS) && strcmp(name, "data") == 0)
		return once(v, name, &v->data, val);
	if (opts & O_FIELDS) {
		switch (fields_set(v->res, v->a->bit == A_CREATE, v->body, name, val, err, sizeof err)) {
		case FIELD_OPT_SET: return 0;
		case FIELD_OPT_BAD: return cli_usage_error(v->hint, "%s", err);
		case FIELD_OPT_UNKNOWN: break;
		}
		return cli_usage_error(v->hint, "a %s has no field --%s", v->g->one, name);
	}
	if ((opts & O_REASON) && strcmp(name, "reason") == 0)
		return once(v, name, &v->reason, val);
	if (opts & O_KEY) {
		const char **slot = strcmp(name, "name") == 0	     ? &v->key_name
				    : strcmp(name, "role") == 0	     ? &v->key_role
				    : strcmp(name, "agent") == 0      ? &v->key_agent
				    : strcmp(name, "expires-in") == 0 ? &v->expires_in
				    : strcmp(name, "expires-at") == 0 ? &v->expires_at
								       : NULL;

		if (slot)
			return once(v, name, slot, val);
	}
	return cli_usage_error(v->hint, "%s %s has no option --%s", v->g->name, v->a->name, name);
}

/* A flag the action takes: 1 after setting it, 0 when name is not one. */
static int action_flag(struct inv *v, const char *name)
{
	int *flag = (v->a->opts & O_PAGES) && strcmp(name, "all") == 0	 ? &v->all
		    : (v->a->opts & O_FORCE) && strcmp(name, "force") == 0	 ? &v->force
		    : (v->a->opts & O_RETIRED) && strcmp(name, "retired") == 0 ? &v->retired
									   : NULL;

	if (!flag)
		return 0;
	*flag = 1;
	return 1;
}

static int parse(struct inv *v, int argc, char **argv)
{
	int only_args = 0, rc;

	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *val;
		char name[64];

		if (!only_args && strcmp(a, "--") == 0) {
			only_args = 1;
			continue;
		}
		if (only_args || a[0] != '-' || a[1] == '\0') {
			if (!v->a->takes_id || v->id)
				return cli_usage_error(v->hint, "unexpected argument '%s'", a);
			v->id = a;
			continue;
		}
		if ((rc = cli_option_name(a, name)) != 0)
			return rc;
		if (action_flag(v, name)) {
			if (strchr(a, '='))
				return cli_usage_error(v->hint, "--%s takes no value", name);
			continue;
		}
		if ((rc = cli_option_value(argc, argv, &i, &val)) != 0)
			return rc;
		if (cli_common_option(&v->c, name, val, &rc)) {
			if (rc != 0)
				return rc;
			continue;
		}
		if ((rc = action_option(v, name, val)) != 0)
			return rc;
	}
	if (v->filters.truncated)
		return cli_usage_error(v->hint, "the filters are longer than %d bytes", FIELDS_QUERY_MAX);
	if (v->a->takes_id && !v->id)
		return cli_usage_error(v->hint, "%s %s needs an ID", v->g->name, v->a->name);
	if (v->all && v->page)
		return cli_usage_error(v->hint, "--all reads every page: leave out --page");
	if (v->force && !(v->reason && *v->reason))
		return cli_usage_error(v->hint, "--force needs a --reason TEXT (kept in the audit trail)");
	if (v->data) {
		json_t *base;
		size_t len;
		char *text = cli_load_data(v->data, 1, &len, &base, &rc);

		if (!text)
			return rc;
		free(text);
		/* the options win over --data */
		json_object_update(base, v->body);
		json_decref(v->body);
		v->body = base;
	}
	if ((v->a->opts & O_FIELDS) && json_object_size(v->body) == 0)
		return cli_usage_error(v->hint, "nothing to %s: give --FIELD VALUE or --data", v->a->name);
	return 0;
}

/* ---- requests and their answers ---- */

/* base/ID[/suffix], the id percent-encoded */
static char *item_path(const char *base, const char *id, const char *suffix)
{
	struct strbuf b;

	strbuf_init(&b, 4096);
	strbuf_printf(&b, "%s/", base);
	fields_url_encode(&b, id);
	strbuf_printf(&b, "%s", suffix);
	if (b.truncated)
		strbuf_free(&b);
	return b.p;
}

/* A request whose answer must be a success: 0 with *r filled, else the
 * exit status after saying why. */
static int call(struct inv *v, const char *method, const char *path, json_t *body,
		struct http_response *r)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int rc;

	if (!path || (body && !text)) {
		free(text);
		fprintf(stderr, "certward: out of memory\n");
		return EXIT_OSERR;
	}
	rc = cli_request(&v->c, method, path, text, text ? strlen(text) : 0, r);
	free(text);
	if (rc != 0)
		return rc;
	if (r->status < 200) {
		fprintf(stderr, "certward: an unexpected answer (HTTP %d)\n", r->status);
		http_response_free(r);
		return EXIT_PROTOCOL;
	}
	if (r->status > 299) {
		rc = cli_answer_error(r);
		http_response_free(r);
		return rc;
	}
	return 0;
}

/* A record the server answered with: as it came (json), or a field a
 * line; when the answer has no body, "<done> ID". */
static int show(struct inv *v, struct http_response *r, const char *done)
{
	json_t *j;

	if (r->body_len == 0) {
		if (v->c.format == FMT_TABLE && done) {
			struct strbuf b;

			strbuf_init(&b, 1024);
			out_escape(&b, v->id, strlen(v->id));
			printf("%s %s\n", done, b.p ? b.p : "");
			strbuf_free(&b);
		}
		http_response_free(r);
		return 0;
	}
	if (!(j = cli_answer_json(r))) {
		http_response_free(r);
		return EXIT_PROTOCOL;
	}
	if (v->c.format == FMT_JSON) {
		cli_print_body(r);
	} else if (json_is_object(j)) {
		out_fields(j, stdout);
	} else {
		char *text = out_text(j, 0);

		printf("%s\n", text ? text : "");
		free(text);
	}
	json_decref(j);
	http_response_free(r);
	return 0;
}

/* One page of the list at path: the answer and its envelope. */
static int get_page(struct inv *v, const char *path, long page, long per_page,
		    struct http_response *r, json_t **env)
{
	struct strbuf q, url;
	int rc;

	strbuf_init(&q, FIELDS_QUERY_MAX + 256);
	if (page)
		strbuf_printf(&q, "&page=%ld", page);
	if (per_page)
		strbuf_printf(&q, "&per_page=%ld", per_page);
	if (v->sort) {
		strbuf_printf(&q, "&sort=");
		fields_url_encode(&q, v->sort);
	}
	if (v->filters.p)
		strbuf_printf(&q, "%s", v->filters.p);
	strbuf_init(&url, 2 * FIELDS_QUERY_MAX);
	strbuf_printf(&url, "%s%s%s", path, q.p ? "?" : "", q.p ? q.p + 1 : "");
	strbuf_free(&q);
	rc = call(v, "GET", url.truncated ? NULL : url.p, NULL, r);
	strbuf_free(&url);
	if (rc != 0)
		return rc;
	*env = cli_answer_json(r);
	if (*env && !json_is_array(json_object_get(*env, "data"))) {
		fprintf(stderr, "certward: the server's answer is not a list\n");
		json_decref(*env);
		*env = NULL;
	}
	if (!*env) {
		http_response_free(r);
		return EXIT_PROTOCOL;
	}
	return 0;
}

static json_int_t env_int(const json_t *env, const char *key)
{
	return json_integer_value(json_object_get(env, key));
}

static int list_at(struct inv *v, const char *path, const char *const *cols, size_t ncols)
{
	struct http_response r;
	struct table t;
	json_t *env, *item;
	json_int_t total = 0;
	long page = v->all ? 1 : v->page, per_page = v->per_page;
	size_t count = 0, i;
	int rc = 0;

	if (v->all && !per_page)
		per_page = ALL_PER_PAGE;
	table_init(&t, cols, ncols);
	for (;;) {
		json_t *data;
		size_t n;

		if ((rc = get_page(v, path, page, per_page, &r, &env)) != 0)
			break;
		data = json_object_get(env, "data");
		n = json_array_size(data);
		total = env_int(env, "total");
		if (!v->all && v->c.format == FMT_JSON) {
			cli_print_body(&r);
		} else if (count + n > ALL_MAX_RECORDS) {
			fprintf(stderr, "certward: more than %d records: narrow the list with filters\n",
				ALL_MAX_RECORDS);
			rc = EXIT_ANSWER;
		} else if (v->c.format == FMT_JSON) {
			/* --all: one array, written as the pages come */
			json_array_foreach(data, i, item) {
				fputs(count + i == 0 ? "[\n" : ",\n", stdout);
				json_dumpf(item, stdout, JSON_COMPACT | JSON_ENCODE_ANY);
			}
		} else {
			json_array_foreach(data, i, item) {
				if (table_add(&t, item) != 0) {
					fprintf(stderr, "certward: out of memory\n");
					rc = EXIT_OSERR;
					break;
				}
			}
		}
		count += n;
		if (!v->all && v->c.format == FMT_TABLE) {
			json_int_t pp = env_int(env, "per_page"), pages = pp > 0 ? (total + pp - 1) / pp : 1;

			table_print(&t, stdout);
			fprintf(stderr, "page %" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT
					", %" JSON_INTEGER_FORMAT " total\n",
				env_int(env, "page"), pages > 0 ? pages : 1, total);
		}
		json_decref(env);
		http_response_free(&r);
		if (rc != 0 || !v->all || n < (size_t)per_page || (json_int_t)count >= total)
			break;
		page++;
	}
	if (rc == 0 && v->all && v->c.format == FMT_JSON)
		fputs(count ? "\n]\n" : "[]\n", stdout);
	if (rc == 0 && v->all && v->c.format == FMT_TABLE) {
		table_print(&t, stdout);
		fprintf(stderr, "all %ld pages, %zu records, %" JSON_INTEGER_FORMAT " total\n", page,
			count, total);
	}
	table_free(&t);
	return rc;
}

static int do_list(struct inv *v)
{
	char path[128];

	snprintf(path, sizeof path, "%s%s", v->g->path, v->retired ? "/retired" : "");
	return list_at(v, path, v->g->cols, v->g->ncols);
}

/* A list under a record: the {...} segment of the action's path is the
 * record's id. */
static int do_sublist(struct inv *v)
{
	const char *open = strchr(v->a->sub, '{'), *close = strchr(v->a->sub, '}');
	struct strbuf b;
	int rc;

	strbuf_init(&b, 4096);
	strbuf_printf(&b, "%.*s", (int)(open - v->a->sub), v->a->sub);
	fields_url_encode(&b, v->id);
	strbuf_printf(&b, "%s", close + 1);
	rc = b.truncated ? cli_usage_error(v->hint, "the ID is too long")
			 : list_at(v, b.p, v->a->cols, v->a->ncols);
	strbuf_free(&b);
	return rc;
}

/* METHOD on the record (or on one of its actions: suffix "/renew"), then
 * the answer shown */
static int on_item(struct inv *v, const char *method, const char *suffix, json_t *body,
		   const char *done)
{
	struct http_response r;
	char *path = item_path(v->g->path, v->id, suffix);
	int rc = call(v, method, path, body, &r);

	free(path);
	return rc != 0 ? rc : show(v, &r, done);
}

static int do_get(struct inv *v)
{
	return on_item(v, "GET", "", NULL, NULL);
}

static int do_update(struct inv *v)
{
	return on_item(v, "PUT", "", v->body, NULL);
}

static int do_create(struct inv *v)
{
	struct http_response r;
	int rc = call(v, "POST", v->g->path, v->body, &r);

	return rc != 0 ? rc : show(v, &r, NULL);
}

static int do_delete(struct inv *v)
{
	struct http_response r;
	char *path = item_path(v->g->path, v->id, "");
	int rc = call(v, "DELETE", path, NULL, &r);

	free(path);
	if (rc != 0)
		return rc;
	if (v->c.format == FMT_TABLE)
		r.body_len = 0; /* whatever came back, the record is gone */
	return show(v, &r, v->g->deleted);
}

static int do_renew(struct inv *v)
{
	return on_item(v, "POST", "/renew", NULL, "renewal requested for");
}

static int do_cancel(struct inv *v)
{
	return on_item(v, "POST", "/cancel", NULL, "cancelled");
}

static int do_read(struct inv *v)
{
	return on_item(v, "POST", "/read", NULL, "read");
}

static int do_revoke(struct inv *v)
{
	json_t *body = v->reason ? json_pack("{s:s}", "reason", v->reason) : json_object();
	int rc = on_item(v, "POST", "/revoke", body, "revoked");

	json_decref(body);
	return rc;
}

static int do_retire(struct inv *v)
{
	struct strbuf q;
	struct http_response r;
	char *path;
	int rc;

	strbuf_init(&q, FIELDS_QUERY_MAX);
	strbuf_printf(&q, "%s", v->force ? "?force=true" : "");
	if (v->reason) {
		strbuf_printf(&q, "%s", v->force ? "&reason=" : "?reason=");
		fields_url_encode(&q, v->reason);
	}
	if (q.truncated) {
		strbuf_free(&q);
		return cli_usage_error(v->hint, "--reason is too long");
	}
	path = item_path(v->g->path, v->id, q.p ? q.p : "");
	strbuf_free(&q);
	rc = call(v, "DELETE", path, NULL, &r);
	free(path);
	if (rc != 0)
		return rc;
	/* 204: it was retired before */
	return show(v, &r, r.status == 204 ? "already retired:" : "retired");
}

static int do_key_create(struct inv *v)
{
	struct http_response r;
	json_t *body, *answer, *key;
	int rc;

	if (!v->key_name || !v->key_role)
		return cli_usage_error(v->hint, "apikey create needs --name NAME and --role ROLE");
	if (v->expires_in && v->expires_at)
		return cli_usage_error(v->hint, "give --expires-in or --expires-at, not both");
	body = json_pack("{s:s, s:s}", "name", v->key_name, "role", v->key_role);
	if (!body)
		return cli_usage_error(v->hint, "--name and --role must be UTF-8");
	if (v->key_agent)
		json_object_set_new(body, "agent_id", json_string(v->key_agent));
	if (v->expires_at)
		json_object_set_new(body, "expires_at", json_string(v->expires_at));
	if (v->expires_in) {
		int64_t ms;
		time_t at;
		struct tm tm;
		char when[32];

		if (cfg_parse_duration(v->expires_in, &ms) != 0 || ms < 1000 ||
		    ms / 1000 > EXPIRES_IN_MAX_S) {
			json_decref(body);
			return cli_usage_error(v->hint, "--expires-in takes a duration like 90d, 12h or 30m, not '%s'",
					       v->expires_in);
		}
		at = time(NULL) + (time_t)(ms / 1000);
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&at, &tm));
		json_object_set_new(body, "expires_at", json_string(when));
	}
	rc = call(v, "POST", v->g->path, body, &r);
	json_decref(body);
	if (rc != 0)
		return rc;
	answer = cli_answer_json(&r);
	key = json_object_get(answer, "key");
	if (!json_is_string(key)) {
		if (answer)
			fprintf(stderr, "certward: the server's answer carries no key\n");
		json_decref(answer);
		http_response_free(&r);
		return EXIT_PROTOCOL;
	}
	if (v->c.format == FMT_JSON) {
		cli_print_body(&r);
	} else {
		char *text = out_text(key, 0);

		printf("%s\n", text ? text : "");
		free(text);
	}
	{
		char *id = out_text(json_object_get(answer, "id"), 0);

		fprintf(stderr, "certward: API key %s created; the key is shown this once: store it now\n",
			id ? id : "-");
		free(id);
	}
	json_decref(answer);
	http_response_free(&r);
	return 0;
}

int resource_cmd_run(int argc, char **argv)
{
	const struct group *g = group_named(argv[0]);
	struct inv v;
	char names[160];
	int rc;

	if (!g)
		return -1;
	memset(&v, 0, sizeof v);
	v.g = g;
	snprintf(v.hint, sizeof v.hint, "certward %s --help", g->name);
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
		    (i == 1 && strcmp(argv[i], "help") == 0)) {
			group_usage(g, stdout);
			return 0;
		}
	}
	action_names(g, 0, names, sizeof names);
	if (argc < 2)
		return cli_usage_error(v.hint, "certward %s needs an action: %s", g->name, names);
	if (!(v.a = action_named(g, argv[1])))
		return cli_usage_error(v.hint, "certward %s has no action '%s' (%s)", g->name, argv[1], names);
	cli_common_init(&v.c);
	/* a list under a record has its own fields and filters */
	v.res = resource_by_path(v.a->sub ? v.a->sub : g->path);
	strbuf_init(&v.filters, FIELDS_QUERY_MAX);
	v.body = json_object();
	rc = parse(&v, argc, argv);
	if (rc == 0)
		rc = v.a->run(&v);
	json_decref(v.body);
	strbuf_free(&v.filters);
	return rc;
}
