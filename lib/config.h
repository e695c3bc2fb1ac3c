/*
 * certward configuration.
 *
 * The whole set of keys is declared once, in lib/config_keys.def; the YAML
 * loader (config_yaml.c, master and CLI only) and the section parser used by
 * workers (config.c) both validate against that table.
 *
 * File shape: a mapping of sections (master, api, store, signer, scheduler,
 * deploy, notifier, audit), each a mapping of scalar keys. CERTWARD_<SECTION>_<KEY>
 * environment variables override file values (KEY upper-cased, e.g.
 * CERTWARD_STORE_DSN).
 */
#ifndef CERTWARD_CONFIG_H
#define CERTWARD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cfg_type {
	CFG_STRING,   /* any scalar without NUL or newline, at most max bytes */
	CFG_INT,      /* decimal integer in [min, max] */
	CFG_BOOL,     /* true/false/yes/no/on/off */
	CFG_DURATION, /* integer + unit: ms, s, m, h, d (e.g. 250ms, 30s); stored as ms, in [min, max] ms */
	CFG_SIZE,     /* integer + optional unit: k, m, g (powers of 1024); stored as bytes, in [min, max] */
	CFG_ADDRESS,  /* host:port, [v6]:port; port 1..65535 */
	CFG_ENUM,     /* one of the words of the key's default, written "first|second|...";
		       * the first is the default. Read with cfg_str(). */
};

enum {
	CFG_REQUIRED = 1 << 0, /* must be set in the file or the environment */
	CFG_SECRET = 1 << 1,   /* value never appears in an error message or log line */
};

struct cfg_key {
	const char *section;
	const char *name;
	enum cfg_type type;
	const char *defval; /* NULL: no default */
	unsigned flags;
	int64_t min, max;   /* for STRING: max is the length bound */
	const char *help;
};

/* The table from config_keys.def, terminated by a zeroed entry. */
extern const struct cfg_key cfg_keys[];

/* The sections, in start order of their workers, then the sections that
 * belong to no one worker (audit); NULL-terminated. */
extern const char *const cfg_sections[];

struct cfg_error {
	char file[256];  /* path of the file, or "environment" */
	unsigned line;   /* 1-based; 0 when not from a file */
	char key[96];    /* "section.key", or "" */
	char msg[256];
};

struct cfg; /* opaque */

/*
 * Load a YAML file and apply CERTWARD_* overrides from envp (NULL-terminated,
 * may be NULL). Returns 0, or -1 with *err filled. Unknown section, unknown key,
 * wrong type, out of range, a missing required value, duplicate key, a non-scalar
 * where a scalar is expected, or a file larger than 1 MiB all fail.
 * Unknown CERTWARD_* variables are errors too.
 */
int cfg_load(const char *path, char *const *envp, struct cfg **out, struct cfg_error *err);

/* Formats "<file>:<line>: <section.key>: <msg>" (parts omitted when empty). */
void cfg_error_format(const struct cfg_error *err, char *buf, size_t len);

void cfg_free(struct cfg *cfg);

/* Typed getters; the key must be declared with that type (else abort in debug,
 * 0/NULL otherwise). Values always exist: a default or a validated value. */
const char *cfg_str(const struct cfg *cfg, const char *section, const char *key);
int64_t cfg_int(const struct cfg *cfg, const char *section, const char *key);
bool cfg_bool(const struct cfg *cfg, const char *section, const char *key);
uint64_t cfg_duration_ms(const struct cfg *cfg, const char *section, const char *key);

/* A duration as the configuration writes it ("90d", "12h", "500ms"; the
 * unit required) in milliseconds: 0, or -1 when it is not one. */
int cfg_parse_duration(const char *s, int64_t *ms);
uint64_t cfg_size(const struct cfg *cfg, const char *section, const char *key);
/* A size ("512", "64k", "1MiB", "2g": powers of 1024, units in any case)
 * in bytes: 0, or -1 when it is not one. */
int cfg_parse_size(const char *s, int64_t *bytes);
/* Whether the value came from the file or environment (not the default). */
bool cfg_is_set(const struct cfg *cfg, const char *section, const char *key);

/*
 * Serialize one section as "key=value\n" lines (canonical form of each value,
 * keys in table order, including defaults) into a malloc'd buffer. This is what
 * the master hands to a worker; equal text means an unchanged section.
 * The keys of sections the worker also reads (the api reads audit) follow as
 * "audit.key=value\n" lines, so a change there restarts that worker too.
 */
int cfg_section_serialize(const struct cfg *cfg, const char *section, char **out, size_t *outlen);

/*
 * Parse text produced by cfg_section_serialize back into a cfg holding only that
 * section and the sections it reads (other sections' getters return defaults). Strict: unknown key,
 * malformed line, bad value, text over 64 KiB all fail. err->file is "ipc".
 */
int cfg_section_parse(const char *section, const char *text, size_t len, struct cfg **out,
		      struct cfg_error *err);

#endif
