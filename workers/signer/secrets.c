/* See secrets.h. */
#include "secrets.h"

#include <jansson.h>
#include <openssl/mem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "secretbox.h"

#define REDACTED "********"

static uint8_t key[SECRETBOX_KEY_BYTES];
static int have_key;

int secrets_init(int key_dir_fd)
{
	char why[160];

	if (secretbox_key_load(key_dir_fd, "secrets.key", key, why, sizeof why) != 0) {
		log_error("secrets at rest: %s", why);
		return -1;
	}
	have_key = 1;
	return 0;
}

void secrets_stop(void)
{
	OPENSSL_cleanse(key, sizeof key);
	have_key = 0;
}

/* The members of a blob sealed before, or NULL (why filled). */
static json_t *open_old(const uint8_t *old, size_t len, char *why, size_t why_len)
{
	uint8_t plain[SECRETBOX_MAX_PLAIN];
	long n;
	json_t *j;

	if (len == 0)
		return json_object();
	n = secretbox_open(key, old, len, plain, sizeof plain);
	if (n < 0) {
		snprintf(why, why_len, "the stored secrets do not open (another key, or changed)");
		return NULL;
	}
	j = json_loadb((const char *)plain, (size_t)n, 0, NULL);
	OPENSSL_cleanse(plain, (size_t)n);
	if (!json_is_object(j)) {
		json_decref(j);
		snprintf(why, why_len, "the stored secrets are not an object");
		return NULL;
	}
	return j;
}

long secrets_seal(const uint8_t *old, size_t old_len, const uint8_t *secrets, size_t len, uint8_t *out,
		  size_t cap, char *why, size_t why_len)
{
	json_t *in = NULL, *prev = NULL, *merged = NULL, *v;
	const char *k;
	char *text = NULL;
	long n = -1;

	if (!have_key) {
		snprintf(why, why_len, "no key for secrets");
		return -1;
	}
	in = json_loadb((const char *)secrets, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(in)) {
		snprintf(why, why_len, "the secrets are not a JSON object");
		goto out;
	}
	merged = json_object();
	json_object_foreach(in, k, v) {
		if (!json_is_string(v)) {
			snprintf(why, why_len, "secret %.64s is not a string", k);
			goto out;
		}
		if (strcmp(json_string_value(v), REDACTED) == 0) {
			json_t *was;

			if (!prev && !(prev = open_old(old, old_len, why, why_len)))
				goto out;
			was = json_object_get(prev, k);
			if (!json_is_string(was)) {
				snprintf(why, why_len, "secret %.64s has no stored value to keep", k);
				goto out;
			}
			v = was;
		}
		json_object_set(merged, k, v);
	}
	text = json_dumps(merged, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text) {
		snprintf(why, why_len, "out of memory");
		goto out;
	}
	n = secretbox_seal(key, (const uint8_t *)text, strlen(text), out, cap);
	if (n < 0)
		snprintf(why, why_len, "the secrets are too large");
out:
	if (text) {
		OPENSSL_cleanse(text, strlen(text));
		free(text);
	}
	/* the values are in jansson's buffers too: clear what we can reach */
	json_decref(merged);
	json_decref(prev);
	json_decref(in);
	return n;
}

/* Wipes the string values of an opened blob before freeing it: they are
 * secrets, and jansson hands their memory back as it is. */
static void wipe_decref(json_t *j)
{
	const char *k;
	json_t *v;

	json_object_foreach(j, k, v) {
		if (json_is_string(v))
			OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
	}
	json_decref(j);
}

long secrets_member(const uint8_t *sealed, size_t len, const char *name, char *out, size_t cap, char *why,
		    size_t why_len)
{
	json_t *all, *v;
	size_t n;

	if (!have_key) {
		snprintf(why, why_len, "no key for secrets");
		return -1;
	}
	if (!(all = open_old(sealed, len, why, why_len)))
		return -1;
	v = json_object_get(all, name);
	if (!json_is_string(v)) {
		wipe_decref(all);
		return 0;
	}
	n = json_string_length(v);
	if (n >= cap) {
		wipe_decref(all);
		snprintf(why, why_len, "secret %.64s is too long", name);
		return -1;
	}
	memcpy(out, json_string_value(v), n);
	out[n] = '\0';
	wipe_decref(all);
	return (long)n;
}
