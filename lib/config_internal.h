/* Shared by config.c and config_yaml.c; not for other users. */
#ifndef CERTWARD_CONFIG_INTERNAL_H
#define CERTWARD_CONFIG_INTERNAL_H

#include "config.h"

struct cfg_value {
	char *str;   /* canonical text for STRING/ADDRESS; NULL otherwise */
	int64_t num; /* INT, BOOL (0/1), DURATION (ms), SIZE (bytes) */
	bool set;    /* from the file or the environment, not the default */
};

struct cfg {
	struct cfg_value *v; /* one per entry of cfg_keys */
};

size_t cfg_key_count(void);
int cfg_key_index(const char *section, const char *name, size_t namelen);
bool cfg_section_known(const char *section, size_t len);
/* A cfg holding every default. */
struct cfg *cfg_new(void);
/*
 * Parse `text` as a value of key `k` into *out (replacing what was there).
 * On failure returns -1 and writes what was expected to msg; the value itself
 * is never copied into msg.
 */
int cfg_value_set(const struct cfg_key *k, const char *text, size_t len, struct cfg_value *out,
		  char *msg, size_t msglen);
void cfg_error_set(struct cfg_error *err, const char *file, unsigned line, const char *key,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* After loading: every CFG_REQUIRED key set and non-empty. */
int cfg_check_required(const struct cfg *cfg, const char *only_section, const char *file,
		       struct cfg_error *err);

#endif
