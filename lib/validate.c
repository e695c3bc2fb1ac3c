/* See validate.h. */
#include "validate.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* One LDH label [s, s+n): 1..63, no hyphen at either end; "xx--" in
 * positions 3-4 only as an A-label ("xn--"). */
static bool ldh_label(const char *s, size_t n)
{
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '-')
			return false;
	/* RFC 5891 4.2.3.1: "--" in positions 3 and 4 is reserved for A-labels */
	if (n >= 4 && s[2] == '-' && s[3] == '-' &&
	    !((s[0] == 'x' || s[0] == 'X') && (s[1] == 'n' || s[1] == 'N')))
		return false;
	return true;
}

bool valid_dns_name(const char *s, bool allow_wildcard)
{
	size_t len = strlen(s), labels = 0;
	bool all_numeric = true;
	const char *p = s;

	if (len == 0 || len > 253)
		return false;
	if (allow_wildcard && s[0] == '*') {
		if (s[1] != '.')
			return false;
		p = s + 2;
		/* "*.com" would cover a whole top-level domain */
		if (!strchr(p, '.'))
			return false;
	}
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);

		if (!ldh_label(p, n))
			return false;
		for (size_t i = 0; i < n; i++)
			if (!is_digit(p[i]))
				all_numeric = false;
		labels++;
		if (!dot)
			break;
		p = dot + 1;
	}
	return labels > 0 && !all_numeric;
}

bool valid_ip_address(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

bool valid_cidr(const char *s)
{
	char addr[64];
	unsigned char buf[16];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : 0;
	int bits = 0, max;

	if (!slash || alen == 0 || alen >= sizeof addr || !slash[1] || strlen(slash + 1) > 3 ||
	    (slash[1] == '0' && slash[2]))
		return false;
	for (const char *p = slash + 1; *p; p++) {
		if (!is_digit(*p))
			return false;
		bits = bits * 10 + (*p - '0');
	}
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, buf) == 1)
		max = 32;
	else if (inet_pton(AF_INET6, addr, buf) == 1)
		max = 128;
	else
		return false;
	if (bits > max)
		return false;
	for (int i = bits; i < max; i++)
		if (buf[i / 8] & (0x80 >> (i % 8)))
			return false;
	return true;
}

static bool atext(char c)
{
	return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

bool valid_email(const char *s)
{
	const char *at = strchr(s, '@');
	size_t local;

	if (!at || strchr(at + 1, '@') || strlen(s) > 254)
		return false;
	local = (size_t)(at - s);
	if (local == 0 || local > 64 || s[0] == '.' || at[-1] == '.')
		return false;
	for (size_t i = 0; i < local; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return false;
		} else if (!atext(s[i])) {
			return false;
		}
	}
	return strchr(at + 1, '.') && valid_dns_name(at + 1, false);
}

bool valid_resource_id(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || (!is_alpha(s[0]) && !is_digit(s[0])))
		return false; /* as the database's cw_valid_id() */
	for (size_t i = 0; i < n; i++)
		if (!is_alpha(s[i]) && !is_digit(s[i]) && !strchr("-_.", s[i]))
			return false;
	return true;
}

/* n digits at s as a number, or -1 */
static int fixed_digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

bool valid_rfc3339(const char *s)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	/* the fixed part, "YYYY-MM-DDTHH:MM:SS": where each number starts, its width, its range */
	static const struct {
		int at, width, lo, hi;
		char after;
	} parts[] = {{0, 4, 1, 9999, '-'}, {5, 2, 1, 12, '-'}, {8, 2, 1, 31, 'T'},
		     {11, 2, 0, 23, ':'}, {14, 2, 0, 59, ':'}, {17, 2, 0, 60, '\0'}};
	int v[6];
	size_t i = 19;

	if (strnlen(s, 20) < 20)
		return false;
	for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++) {
		char sep = s[parts[k].at + parts[k].width];

		v[k] = fixed_digits(s + parts[k].at, parts[k].width);
		if (v[k] < parts[k].lo || v[k] > parts[k].hi)
			return false;
		if (parts[k].after && sep != parts[k].after && !(parts[k].after == 'T' && sep == 't'))
			return false;
	}
	if (v[2] > mdays[v[1] - 1] ||
	    (v[1] == 2 && v[2] == 29 && (v[0] % 4 != 0 || (v[0] % 100 == 0 && v[0] % 400 != 0))))
		return false;
	if (s[i] == '.') {
		size_t start = ++i;

		while (is_digit(s[i]))
			i++;
		if (i == start || i - start > 9)
			return false;
	}
	if (s[i] == 'Z' || s[i] == 'z')
		return s[i + 1] == '\0';
	if (s[i] != '+' && s[i] != '-')
		return false;
	return fixed_digits(s + i + 1, 2) >= 0 && fixed_digits(s + i + 1, 2) <= 23 && s[i + 3] == ':' &&
	       fixed_digits(s + i + 4, 2) >= 0 && fixed_digits(s + i + 4, 2) <= 59 && s[i + 6] == '\0';
}

bool json_depth_ok(const char *text, size_t len, unsigned max_depth)
{
	unsigned depth = 0;
	bool in_string = false;

	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (in_string) {
			if (c == '\\')
				i++; /* whatever is escaped cannot end the string */
			else if (c == '"')
				in_string = false;
			continue;
		}
		switch (c) {
		case '"': in_string = true; break;
		case '[':
		case '{':
			if (++depth > max_depth)
				return false;
			break;
		case ']':
		case '}':
			if (depth)
				depth--;
			break;
		}
	}
	return true;
}

bool valid_https_url(const char *s, size_t max)
{
	const char *host = s + 8, *end, *rest;
	char h[256];
	size_t n;

	if (strlen(s) > max || strncasecmp(s, "https://", 8) != 0)
		return false;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return false;
	end = host + strcspn(host, "/?#");
	if (memchr(host, '@', (size_t)(end - host)))
		return false;
	if (*host == '[') {
		const char *close = memchr(host, ']', (size_t)(end - host));

		if (!close || (n = (size_t)(close - host - 1)) == 0 || n >= sizeof h)
			return false;
		memcpy(h, host + 1, n);
		h[n] = '\0';
		if (!strchr(h, ':') || !valid_ip_address(h))
			return false;
		rest = close + 1;
	} else {
		const char *colon = memchr(host, ':', (size_t)(end - host));

		rest = colon ? colon : end;
		if ((n = (size_t)(rest - host)) == 0 || n >= sizeof h)
			return false;
		memcpy(h, host, n);
		h[n] = '\0';
		if (!valid_dns_name(h, false) && !valid_ip_address(h))
			return false;
	}
	if (rest < end) {
		long port = 0;

		if (*rest != ':' || end - rest < 2 || end - rest > 6)
			return false;
		for (const char *p = rest + 1; p < end; p++) {
			if (*p < '0' || *p > '9')
				return false;
			port = port * 10 + (*p - '0');
		}
		if (port < 1 || port > 65535)
			return false;
	}
	return true;
}
