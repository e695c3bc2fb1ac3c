/*
 * Checks of values clients send: names, addresses, identifiers, and a bound
 * on JSON nesting applied before a document is parsed. Every function takes
 * NUL-terminated text (bodies are checked for embedded NULs by the caller)
 * and accepts only what it documents.
 */
#ifndef CERTWARD_VALIDATE_H
#define CERTWARD_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

/* A DNS host name in ASCII: 1..253 bytes, labels 1..63 of letters, digits
 * and inner hyphens, no trailing dot; internationalized names only in
 * A-label form ("xn--..."; U-labels are refused). With allow_wildcard, the
 * whole leftmost label may be "*" when at least two labels follow it
 * ("*.example.com", not "*.com" or "a*.example.com"). A name of digits and
 * dots only is refused (it is an IPv4 address, not a name). */
bool valid_dns_name(const char *s, bool allow_wildcard);

/* An IPv4 or IPv6 address in its textual form. */
bool valid_ip_address(const char *s);

/* https://host[:port][/path][?query][#fragment], at most max bytes:
 * printable ASCII, no user info (credentials belong elsewhere), a DNS name
 * or an IP address ([v6] in brackets), a port 1-65535. */
bool valid_https_url(const char *s, size_t max);
/* An IP network: address/prefix (prefix at most 32 or 128, no leading
 * zeros), with no bits set beyond the prefix ("10.0.0.0/8", not
 * "10.0.0.1/8"), as PostgreSQL's cidr wants. */
bool valid_cidr(const char *s);

/* An e-mail address for notifications: local@domain, local part 1..64 of
 * RFC 5322 atext with single inner dots (no quoted forms), domain a DNS
 * name with at least two labels; at most 254 bytes in all. */
bool valid_email(const char *s);

/* A resource id: 1..max bytes of letters, digits, '-', '_' and '.',
 * starting with a letter or digit (the database's cw_valid_id()). */
bool valid_resource_id(const char *s, size_t max);

/* An RFC 3339 date-time, "2026-11-25T14:00:00Z", "2026-11-25T15:00:00.5+01:00":
 * a four-digit year from 0001, a real calendar day (leap years counted),
 * hours 00-23, minutes 00-59, seconds 00-60 (a leap second), at most 9
 * fraction digits, and "Z" or an offset up to 23:59 ('T' and 'Z' in
 * either case). Nothing before or after it. */
bool valid_rfc3339(const char *s);

/* Whether a JSON text nests arrays and objects at most max_depth deep (a
 * scalar at the top is depth 0, "[]" depth 1). Only brackets outside
 * strings count; the text is not otherwise checked (the parser does that),
 * so this is safe on any bytes. */
bool json_depth_ok(const char *text, size_t len, unsigned max_depth);

#endif
