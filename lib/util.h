#ifndef CERTWARD_UTIL_H
#define CERTWARD_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic clock in milliseconds / microseconds. */
uint64_t now_ms(void);
uint64_t now_us(void);

/* Close every descriptor >= 3 that is not listed in keep[0..nkeep). */
void close_fds_except(const int *keep, size_t nkeep);
/* Blocking reads and writes of exactly n bytes (EINTR retried): 0, or -1 on
 * an error or end of file. */
int fd_read_full(int fd, uint8_t *p, size_t n);
int fd_write_full(int fd, const uint8_t *p, size_t n);

/* Growable text buffer with a hard cap; appends past the cap are dropped and
 * remembered in `truncated`. */
struct strbuf {
	char *p;
	size_t len, cap, limit;
	int truncated;
};
void strbuf_init(struct strbuf *b, size_t limit);
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_free(struct strbuf *b);

/* PEM text as the inside of a JSON string, without a library's copy to
 * wipe: PEM needs no escape but its line ends. out has room for 2 * len;
 * returns the length written (not NUL-terminated). */
size_t pem_json_escape(const char *pem, size_t len, char *out);
/* FNV-1a of a string: table slots for keys no outsider picks the hash of
 * (a client address, a key prefix), not a defence against collisions. */
uint32_t str_hash32(const char *s);
/* The value of one hex digit (either case), or -1. */
int hex_digit(char c);
/* Lowercase hex of p[0..n) into out (2n + 1 bytes, NUL-terminated). */
void hex_encode(const uint8_t *p, size_t n, char *out);
/* Exactly 2n hex digits (either case) into out[0..n); 0, or -1 for anything
 * else (wrong length, a non-hex character). */
int hex_decode(const char *s, uint8_t *out, size_t n);

/* The code point of the UTF-8 sequence at s (at most len bytes, len >= 1)
 * and its length, or 0 for bytes that are not UTF-8 (overlong, surrogate,
 * beyond U+10FFFF, cut short). */
size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

/* "1h02m" style rendering of a duration. */
void format_duration(char *buf, size_t len, uint64_t ms);

#endif
