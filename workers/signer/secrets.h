/* Secrets at rest, the signer's side (lib/secretbox.h): the key, and
 * sealing a configuration's secret members for the api. */
#ifndef CERTWARD_SIGNER_SECRETS_H
#define CERTWARD_SIGNER_SECRETS_H

#include <stddef.h>
#include <stdint.h>

/* Loads (or makes, at first start) secrets.key in the key directory. */
int secrets_init(int key_dir_fd);
void secrets_stop(void);

/*
 * secrets: a JSON object of strings; "********" keeps the member's value
 * from old (a blob sealed before, or empty). Writes the sealed blob of the
 * resulting object (members sorted) to out and returns its length, or -1
 * with why (never holding a secret) filled.
 */
long secrets_seal(const uint8_t *old, size_t old_len, const uint8_t *secrets, size_t len, uint8_t *out,
		  size_t cap, char *why, size_t why_len);

/*
 * The string member `name` of a sealed blob (empty: no members), opened
 * here: copied to out (NUL-terminated) and its length returned; 0 when the
 * blob has no such string member; -1 with why filled (the blob does not
 * open, or the value does not fit in cap). The opened text is wiped.
 */
long secrets_member(const uint8_t *sealed, size_t len, const char *name, char *out, size_t cap, char *why,
		    size_t why_len);

#endif
