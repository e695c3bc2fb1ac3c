/*
 * The signing ledger: every signature the signer makes over a certificate,
 * a CRL or an OCSP response, one line each, appended and fsynced before the
 * signed object leaves the signer, and hash-chained so that a line changed,
 * removed or inserted later shows.
 *
 * A line (ASCII, fields separated by one space, ending in "\n"):
 *
 *   seq time kind issuer serial object prev hash
 *
 *   seq     1, 2, 3, ... (decimal, no leading zero)
 *   time    UTC, "2026-11-25T17:40:01.123Z"
 *   kind    certificate | crl | ocsp
 *   issuer  the signing CA's name in the ledger ([A-Za-z0-9._-], 1..64)
 *   serial  the certificate's serial or the CRL's number, lower-case hex;
 *           "-" for an OCSP response
 *   object  SHA-256 of the signed object's DER, lower-case hex
 *   prev    the previous line's hash (64 zeros on the first line)
 *   hash    SHA-256 of the line's text before " hash", lower-case hex
 *
 * A file whose last line has no "\n" was cut short by a crash during the
 * write: that signature was never handed out (the fsync comes first), so
 * ledger_open drops the partial line, saying so.
 */
#ifndef CERTWARD_LEDGER_H
#define CERTWARD_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#define LEDGER_LINE_MAX 400

struct ledger_check {
	uint64_t entries; /* whole lines that verified */
	char last_hash[65];
	uint64_t good_bytes; /* length of the verified prefix */
	int partial_tail;    /* the bytes after it are one line without "\n" */
	uint64_t bad_line;   /* 0, or the number of the first line that does not verify */
	char why[160];       /* what is wrong with it */
};

void ledger_check_init(struct ledger_check *c);
/* The next line, without its "\n". 0, or -1 with bad_line and why set. */
int ledger_check_line(struct ledger_check *c, const char *line, size_t len);
/* The whole file, streamed. 0 when every whole line verifies (a partial
 * last line is reported in partial_tail, not as an error); -1 when a line
 * does not verify or the file cannot be read (why says which). */
int ledger_verify_file(const char *path, struct ledger_check *out);

struct ledger;

/* Opens (creating, mode 0600) the ledger at path and verifies it; a partial
 * last line is cut off. NULL with why set when it cannot be opened or does
 * not verify. */
struct ledger *ledger_open(const char *path, char *why, size_t whylen);
void ledger_close(struct ledger *l);

/* Appends one line and fsyncs it (ledger_stage, then ledger_commit). 0, or
 * -1 with why set: then the caller must not hand the signed object out. */
int ledger_append(struct ledger *l, const char *kind, const char *issuer, const char *serial_hex,
		  const uint8_t *der, size_t derlen, char *why, size_t whylen);

/*
 * Group commit: lines staged one by one (the chain moves on in memory) and
 * written together, with one write and one fdatasync, by ledger_commit.
 * Nothing staged may be handed out before ledger_commit returned 0. When it
 * returns -1 every staged line is dropped: the file and the chain are as
 * they were before the first of them, and none of their objects may be
 * handed out.
 */
int ledger_stage(struct ledger *l, const char *kind, const char *issuer, const char *serial_hex,
		 const uint8_t *der, size_t derlen, char *why, size_t whylen);
int ledger_commit(struct ledger *l, char *why, size_t whylen);
size_t ledger_staged(const struct ledger *l);
uint64_t ledger_commits(const struct ledger *l);
uint64_t ledger_entries(const struct ledger *l);

#endif
