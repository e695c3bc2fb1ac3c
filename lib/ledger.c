#include "ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

struct ledger {
	int fd;
	char path[1024];
	struct ledger_check state;     /* the chain, staged lines included */
	struct ledger_check committed; /* the chain as the file holds it */
	char *buf;                     /* staged lines */
	size_t len, cap, nstaged;
	uint64_t commits;
	int failed; /* a write failed and its partial line could not be cut */
};

void ledger_check_init(struct ledger_check *c)
{
	memset(c, 0, sizeof *c);
	strcpy(c->last_hash, ZERO_HASH);
}

static int all_of(const char *s, size_t n, const char *set)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr(set, s[i]) || s[i] == '\0')
			return 0;
	return n > 0;
}

#define HEX "0123456789abcdef"
#define NAME "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

static void sha256_hex(const void *data, size_t len, char out[65])
{
	uint8_t md[SHA256_DIGEST_LENGTH];

	SHA256(data, len, md);
	hex_encode(md, sizeof md, out);
}

static int broken(struct ledger_check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int broken(struct ledger_check *c, const char *fmt, ...)
{
	va_list ap;

	c->bad_line = c->entries + 1;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof c->why, fmt, ap);
	va_end(ap);
	return -1;
}

/* "2026-11-25T17:40:01.123Z" */
static int valid_time(const char *s, size_t n)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";

	if (n != sizeof shape - 1)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
			return 0;
	return 1;
}

int ledger_check_line(struct ledger_check *c, const char *line, size_t len)
{
	const char *f[8];
	size_t flen[8], nf = 0, start = 0;
	char seq[24], want[65];

	if (c->bad_line)
		return -1;
	if (len == 0 || len > LEDGER_LINE_MAX)
		return broken(c, "%s", len ? "line too long" : "empty line");
	for (size_t i = 0; i <= len; i++) {
		if (i == len || line[i] == ' ') {
			if (nf == 8)
				return broken(c, "%s", "more than 8 fields");
			f[nf] = line + start;
			flen[nf++] = i - start;
			start = i + 1;
		}
	}
	if (nf != 8)
		return broken(c, "%s", "fewer than 8 fields");
	snprintf(seq, sizeof seq, "%llu", (unsigned long long)(c->entries + 1));
	if (flen[0] != strlen(seq) || memcmp(f[0], seq, flen[0]) != 0)
		return broken(c, "sequence number is not %s", seq);
	if (!valid_time(f[1], flen[1]))
		return broken(c, "%s", "bad time");
	if (!((flen[2] == 11 && memcmp(f[2], "certificate", 11) == 0) || (flen[2] == 3 && memcmp(f[2], "crl", 3) == 0) ||
	      (flen[2] == 4 && memcmp(f[2], "ocsp", 4) == 0)))
		return broken(c, "%s", "unknown kind");
	if (flen[3] > 64 || !all_of(f[3], flen[3], NAME))
		return broken(c, "%s", "bad issuer name");
	if (!(flen[4] == 1 && f[4][0] == '-') && (flen[4] > 64 || !all_of(f[4], flen[4], HEX)))
		return broken(c, "%s", "bad serial");
	if (flen[5] != 64 || !all_of(f[5], 64, HEX))
		return broken(c, "%s", "bad object hash");
	if (flen[6] != 64 || memcmp(f[6], c->last_hash, 64) != 0)
		return broken(c, "%s", "does not continue the chain: its previous hash is not the line before's hash");
	sha256_hex(line, (size_t)(f[7] - 1 - line), want);
	if (flen[7] != 64 || memcmp(f[7], want, 64) != 0)
		return broken(c, "%s", "its hash does not match its contents");
	memcpy(c->last_hash, want, 65);
	c->entries++;
	c->good_bytes += len + 1;
	return 0;
}

/* Streams fd from its start through the checker. 0, or -1 (why set). */
static int verify_fd(int fd, struct ledger_check *c)
{
	char buf[65536], line[LEDGER_LINE_MAX + 1];
	size_t have = 0;
	ssize_t n;

	ledger_check_init(c);
	while ((n = read(fd, buf, sizeof buf)) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n') {
				if (ledger_check_line(c, line, have) != 0)
					return -1;
				have = 0;
			} else if (have == LEDGER_LINE_MAX) {
				line[0] = '\0';
				return broken(c, "%s", "line too long");
			} else {
				line[have++] = buf[i];
			}
		}
	}
	if (n < 0) {
		snprintf(c->why, sizeof c->why, "cannot read: %s", strerror(errno));
		return -1;
	}
	c->partial_tail = have > 0;
	return 0;
}

int ledger_verify_file(const char *path, struct ledger_check *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc;

	ledger_check_init(out);
	if (fd < 0) {
		snprintf(out->why, sizeof out->why, "cannot open: %s", strerror(errno));
		return -1;
	}
	rc = verify_fd(fd, out);
	close(fd);
	return rc;
}

struct ledger *ledger_open(const char *path, char *why, size_t whylen)
{
	struct ledger *l = calloc(1, sizeof *l);
	struct stat st;

	if (!l) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	snprintf(l->path, sizeof l->path, "%s", path);
	l->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (l->fd < 0 || fstat(l->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "cannot open the ledger %s: %s", path, strerror(errno));
		goto fail;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077)) {
		snprintf(why, whylen, "the ledger %s must be owned by uid %u with mode 0600", path,
			 (unsigned)geteuid());
		goto fail;
	}
	if (verify_fd(l->fd, &l->state) != 0) {
		snprintf(why, whylen, "the ledger %s is broken at line %llu: %s", path,
			 (unsigned long long)l->state.bad_line, l->state.why);
		goto fail;
	}
	if (l->state.partial_tail) {
		/* a line the signer never finished writing: nothing was handed out for it */
		if (ftruncate(l->fd, (off_t)l->state.good_bytes) != 0 || fsync(l->fd) != 0) {
			snprintf(why, whylen, "cannot cut the unfinished last line of %s: %s", path, strerror(errno));
			goto fail;
		}
		snprintf(why, whylen, "the ledger's last line was unfinished (a crash while writing it) and was removed");
		l->state.partial_tail = 0;
	} else if (whylen) {
		why[0] = '\0';
	}
	l->committed = l->state;
	return l;
fail:
	if (l->fd >= 0)
		close(l->fd);
	free(l);
	return NULL;
}

void ledger_close(struct ledger *l)
{
	if (!l)
		return;
	close(l->fd);
	free(l->buf);
	free(l);
}

size_t ledger_staged(const struct ledger *l)
{
	return l->nstaged;
}

uint64_t ledger_commits(const struct ledger *l)
{
	return l->commits;
}

uint64_t ledger_entries(const struct ledger *l)
{
	return l->state.entries;
}

int ledger_stage(struct ledger *l, const char *kind, const char *issuer, const char *serial_hex,
		 const uint8_t *der, size_t derlen, char *why, size_t whylen)
{
	char line[LEDGER_LINE_MAX + 2], obj[65], tbuf[32];
	struct timespec ts;
	struct tm tm;
	size_t n;
	struct ledger_check next = l->state;

	if (l->failed) {
		snprintf(why, whylen, "the ledger %s could not be repaired after a failed write; restart the signer",
			 l->path);
		return -1;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%S", &tm);
	sha256_hex(der, derlen, obj);
	n = (size_t)snprintf(line, sizeof line, "%llu %s.%03ldZ %s %s %s %s %s",
			     (unsigned long long)(l->state.entries + 1), tbuf, ts.tv_nsec / 1000000, kind, issuer,
			     serial_hex && *serial_hex ? serial_hex : "-", obj, l->state.last_hash);
	if (n + 66 > LEDGER_LINE_MAX) {
		snprintf(why, whylen, "ledger line too long");
		return -1;
	}
	sha256_hex(line, n, line + n + 1);
	line[n] = ' ';
	n += 65;
	/* what we write must be what a verifier accepts */
	if (ledger_check_line(&next, line, n) != 0) {
		snprintf(why, whylen, "refusing a ledger line that would not verify: %s", next.why);
		return -1;
	}
	line[n++] = '\n';
	if (l->len + n > l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16384;
		char *b;

		while (cap < l->len + n)
			cap *= 2;
		if (!(b = realloc(l->buf, cap))) {
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		l->buf = b;
		l->cap = cap;
	}
	memcpy(l->buf + l->len, line, n);
	l->len += n;
	l->nstaged++;
	l->state = next;
	return 0;
}

int ledger_commit(struct ledger *l, char *why, size_t whylen)
{
	ssize_t w = 0;
	size_t done = 0;

	if (l->len == 0)
		return 0;
	while (done < l->len && (w = write(l->fd, l->buf + done, l->len - done)) > 0)
		done += (size_t)w;
	if (done != l->len || fdatasync(l->fd) != 0) {
		int e = w < 0 || done == l->len ? errno : EIO;

		snprintf(why, whylen, "cannot write the ledger %s: %s", l->path, strerror(e));
		/* partial lines must not stay in front of the next ones */
		if (ftruncate(l->fd, (off_t)l->committed.good_bytes) != 0 && (l->failed = 1))
			snprintf(why, whylen, "cannot write the ledger %s: %s (and cannot cut the partial line)",
				 l->path, strerror(e));
		l->state = l->committed;
		l->len = l->nstaged = 0;
		return -1;
	}
	l->committed = l->state;
	l->len = l->nstaged = 0;
	l->commits++;
	return 0;
}

int ledger_append(struct ledger *l, const char *kind, const char *issuer, const char *serial_hex,
		  const uint8_t *der, size_t derlen, char *why, size_t whylen)
{
	if (ledger_stage(l, kind, issuer, serial_hex, der, derlen, why, whylen) != 0)
		return -1;
	return ledger_commit(l, why, whylen);
}
