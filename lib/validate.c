/* See validate.h. */
#include "validate.h"

#include <arpa/inet.h>
#include <string.h>

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

	if (n == 0 || n > max || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alpha(s[i]) && !is_digit(s[i]) && !strchr("-_.", s[i]))
			return false;
	return true;
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
