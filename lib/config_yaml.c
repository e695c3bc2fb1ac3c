/* cfg_load: the YAML file plus CERTWARD_* environment overrides. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "config_internal.h"

#define FILE_MAX (1024 * 1024)

struct loader {
	yaml_parser_t parser;
	const char *file;
	struct cfg *cfg;
	struct cfg_error *err;
	bool seen_section[16];
};

static unsigned line_of(const yaml_event_t *ev)
{
	return (unsigned)ev->start_mark.line + 1;
}

/* Pull the next event; anchors, aliases and explicit tags are refused
 * everywhere: the file is plain configuration. */
static int next(struct loader *L, yaml_event_t *ev, const char *where)
{
	if (!yaml_parser_parse(&L->parser, ev)) {
		cfg_error_set(L->err, L->file, (unsigned)L->parser.problem_mark.line + 1, where,
			      "YAML syntax error: %s", L->parser.problem ? L->parser.problem : "unknown");
		return -1;
	}
	if (ev->type == YAML_ALIAS_EVENT) {
		cfg_error_set(L->err, L->file, line_of(ev), where, "YAML aliases are not allowed");
		yaml_event_delete(ev);
		return -1;
	}
	if ((ev->type == YAML_SCALAR_EVENT && (ev->data.scalar.anchor || ev->data.scalar.tag)) ||
	    (ev->type == YAML_MAPPING_START_EVENT &&
	     (ev->data.mapping_start.anchor || ev->data.mapping_start.tag)) ||
	    (ev->type == YAML_SEQUENCE_START_EVENT &&
	     (ev->data.sequence_start.anchor || ev->data.sequence_start.tag))) {
		cfg_error_set(L->err, L->file, line_of(ev), where, "YAML anchors and tags are not allowed");
		yaml_event_delete(ev);
		return -1;
	}
	return 0;
}

static bool is_null_scalar(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;

	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return n == 0 || (n == 1 && v[0] == '~') || (n == 4 && strncmp(v, "null", 4) == 0);
}

static int load_section(struct loader *L, const char *section)
{
	yaml_event_t ev;
	char key[96];

	for (;;) {
		int idx;

		if (next(L, &ev, section) != 0)
			return -1;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		if (ev.type != YAML_SCALAR_EVENT) {
			cfg_error_set(L->err, L->file, line_of(&ev), section, "expected a key");
			yaml_event_delete(&ev);
			return -1;
		}
		idx = cfg_key_index(section, (const char *)ev.data.scalar.value, ev.data.scalar.length);
		snprintf(key, sizeof key, "%s.%.*s", section,
			 (int)(ev.data.scalar.length > 48 ? 48 : ev.data.scalar.length),
			 (const char *)ev.data.scalar.value);
		if (idx < 0 || memchr(ev.data.scalar.value, 0, ev.data.scalar.length)) {
			cfg_error_set(L->err, L->file, line_of(&ev), key, "unknown key");
			yaml_event_delete(&ev);
			return -1;
		}
		/* environment overrides come after the file, so `set` means this file */
		if (L->cfg->v[idx].set) {
			cfg_error_set(L->err, L->file, line_of(&ev), key, "duplicate key");
			yaml_event_delete(&ev);
			return -1;
		}
		{
			unsigned line = line_of(&ev);
			char msg[200];

			yaml_event_delete(&ev);
			if (next(L, &ev, key) != 0)
				return -1;
			if (ev.type != YAML_SCALAR_EVENT) {
				cfg_error_set(L->err, L->file, line, key,
					      "expected a single value, not a list or mapping");
				yaml_event_delete(&ev);
				return -1;
			}
			if (is_null_scalar(&ev) && cfg_keys[idx].type != CFG_STRING) {
				cfg_error_set(L->err, L->file, line, key, "missing value");
				yaml_event_delete(&ev);
				return -1;
			}
			if (cfg_value_set(&cfg_keys[idx], is_null_scalar(&ev) ? "" :
					  (const char *)ev.data.scalar.value,
					  is_null_scalar(&ev) ? 0 : ev.data.scalar.length,
					  &L->cfg->v[idx], msg, sizeof msg) != 0) {
				cfg_error_set(L->err, L->file, line, key, "%s", msg);
				yaml_event_delete(&ev);
				return -1;
			}
			L->cfg->v[idx].set = true;
			yaml_event_delete(&ev);
		}
	}
}

static int section_index(const char *name, size_t len)
{
	for (int i = 0; cfg_sections[i]; i++)
		if (strlen(cfg_sections[i]) == len && memcmp(cfg_sections[i], name, len) == 0)
			return i;
	return -1;
}

static int load_document(struct loader *L)
{
	yaml_event_t ev;

	if (next(L, &ev, "") != 0)
		return -1;
	if (ev.type == YAML_SCALAR_EVENT && is_null_scalar(&ev)) {
		yaml_event_delete(&ev); /* "---" alone: an empty document */
		return 0;
	}
	if (ev.type != YAML_MAPPING_START_EVENT) {
		cfg_error_set(L->err, L->file, line_of(&ev), "",
			      "the top level must be a mapping of sections");
		yaml_event_delete(&ev);
		return -1;
	}
	yaml_event_delete(&ev);
	for (;;) {
		char name[48];
		unsigned line;
		int si;

		if (next(L, &ev, "") != 0)
			return -1;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		if (ev.type != YAML_SCALAR_EVENT) {
			cfg_error_set(L->err, L->file, line_of(&ev), "", "expected a section name");
			yaml_event_delete(&ev);
			return -1;
		}
		line = line_of(&ev);
		snprintf(name, sizeof name, "%.*s",
			 (int)(ev.data.scalar.length > 40 ? 40 : ev.data.scalar.length),
			 (const char *)ev.data.scalar.value);
		si = section_index((const char *)ev.data.scalar.value, ev.data.scalar.length);
		yaml_event_delete(&ev);
		if (si < 0) {
			cfg_error_set(L->err, L->file, line, name, "unknown section");
			return -1;
		}
		if (L->seen_section[si]) {
			cfg_error_set(L->err, L->file, line, name, "duplicate section");
			return -1;
		}
		L->seen_section[si] = true;
		if (next(L, &ev, name) != 0)
			return -1;
		if (ev.type == YAML_SCALAR_EVENT && is_null_scalar(&ev)) {
			yaml_event_delete(&ev); /* "deploy:" with nothing below */
			continue;
		}
		if (ev.type != YAML_MAPPING_START_EVENT) {
			cfg_error_set(L->err, L->file, line, name, "a section must be a mapping of keys");
			yaml_event_delete(&ev);
			return -1;
		}
		yaml_event_delete(&ev);
		if (load_section(L, cfg_sections[si]) != 0)
			return -1;
	}
}

static int load_stream(struct loader *L)
{
	yaml_event_t ev;
	int docs = 0;

	if (next(L, &ev, "") != 0)
		return -1;
	yaml_event_delete(&ev); /* STREAM_START */
	for (;;) {
		if (next(L, &ev, "") != 0)
			return -1;
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		if (ev.type != YAML_DOCUMENT_START_EVENT) {
			cfg_error_set(L->err, L->file, line_of(&ev), "", "unexpected YAML content");
			yaml_event_delete(&ev);
			return -1;
		}
		if (++docs > 1) {
			cfg_error_set(L->err, L->file, line_of(&ev), "",
				      "more than one YAML document");
			yaml_event_delete(&ev);
			return -1;
		}
		yaml_event_delete(&ev);
		if (load_document(L) != 0)
			return -1;
		if (next(L, &ev, "") != 0)
			return -1;
		yaml_event_delete(&ev); /* DOCUMENT_END */
	}
}

static int read_file(const char *path, char **out, size_t *len, struct cfg_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;
	size_t got = 0;

	if (fd < 0) {
		cfg_error_set(err, path, 0, "", "cannot open: %s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		cfg_error_set(err, path, 0, "", "not a regular file");
		close(fd);
		return -1;
	}
	if (st.st_size > FILE_MAX) {
		cfg_error_set(err, path, 0, "", "larger than %d bytes", FILE_MAX);
		close(fd);
		return -1;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		cfg_error_set(err, path, 0, "", "out of memory");
		return -1;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*out = buf;
	*len = got;
	return 0;
}

/* CERTWARD_<SECTION>_<KEY>=value. A variable naming a known section with an
 * unknown key is an error (a typo would otherwise be silently ignored);
 * CERTWARD_ variables that name no section belong to other tools. */
static int apply_env(struct cfg *cfg, char *const *envp, struct cfg_error *err)
{
	if (!envp)
		return 0;
	for (char *const *e = envp; *e; e++) {
		const char *var = *e, *eq = strchr(var, '='), *rest;
		char msg[200], key[96], want[128];
		int sec = -1;

		if (strncmp(var, "CERTWARD_", 9) != 0 || !eq)
			continue;
		rest = var + 9;
		for (int i = 0; cfg_sections[i]; i++) {
			size_t n = strlen(cfg_sections[i]);

			if ((size_t)(eq - rest) > n && strncasecmp(rest, cfg_sections[i], n) == 0 &&
			    rest[n] == '_')
				sec = i;
		}
		if (sec < 0)
			continue;
		{
			int idx = -1;

			for (size_t i = 0; i < cfg_key_count(); i++) {
				size_t n;

				if (strcmp(cfg_keys[i].section, cfg_sections[sec]) != 0)
					continue;
				snprintf(want, sizeof want, "CERTWARD_%s_%s", cfg_keys[i].section,
					 cfg_keys[i].name);
				for (char *p = want; *p; p++)
					*p = (char)toupper((unsigned char)*p);
				n = strlen(want);
				if ((size_t)(eq - var) == n && memcmp(var, want, n) == 0)
					idx = (int)i;
			}
			snprintf(key, sizeof key, "%.*s", (int)((eq - var) > 80 ? 80 : eq - var), var);
			if (idx < 0) {
				cfg_error_set(err, "environment", 0, key, "unknown configuration variable");
				return -1;
			}
			if (cfg_value_set(&cfg_keys[idx], eq + 1, strlen(eq + 1), &cfg->v[idx], msg,
					  sizeof msg) != 0) {
				snprintf(key, sizeof key, "%s.%s (%.*s)", cfg_keys[idx].section,
					 cfg_keys[idx].name, (int)((eq - var) > 60 ? 60 : eq - var), var);
				cfg_error_set(err, "environment", 0, key, "%s", msg);
				return -1;
			}
			cfg->v[idx].set = true;
		}
	}
	return 0;
}

int cfg_load(const char *path, char *const *envp, struct cfg **out, struct cfg_error *err)
{
	struct loader L;
	char *text;
	size_t len;
	int rc;

	memset(err, 0, sizeof *err);
	if (read_file(path, &text, &len, err) != 0)
		return -1;
	memset(&L, 0, sizeof L);
	L.file = path;
	L.err = err;
	L.cfg = cfg_new();
	if (!L.cfg || !yaml_parser_initialize(&L.parser)) {
		cfg_error_set(err, path, 0, "", "out of memory");
		cfg_free(L.cfg);
		free(text);
		return -1;
	}
	yaml_parser_set_input_string(&L.parser, (const unsigned char *)text, len);
	rc = load_stream(&L);
	yaml_parser_delete(&L.parser);
	explicit_bzero(text, len);
	free(text);
	if (rc == 0)
		rc = apply_env(L.cfg, envp, err);
	if (rc == 0)
		rc = cfg_check_required(L.cfg, NULL, path, err);
	if (rc != 0) {
		cfg_free(L.cfg);
		return -1;
	}
	*out = L.cfg;
	return 0;
}
