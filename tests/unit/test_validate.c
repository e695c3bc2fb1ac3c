#include <criterion/criterion.h>
#include <string.h>

#include "validate.h"

Test(validate, dns_names)
{
	static const char *const good[] = {
		"example.com", "a.b.c.example.org", "localhost", "x-1.example.com",
		"xn--bcher-kva.example", "EXAMPLE.COM", "a1", "1a.example.com",
	};
	static const char *const bad[] = {
		"", ".", "example.com.", ".example.com", "exa mple.com", "-a.example.com",
		"a-.example.com", "a..b", "ex_ample.com", "bücher.example", "ab--cd.example",
		"*.example.com", "1.2.3.4", "a.b.c.d\n", "example.com/x",
	};
	char big[300];

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		cr_expect(valid_dns_name(good[i], false), "refused %s", good[i]);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_expect(!valid_dns_name(bad[i], false), "accepted %s", bad[i]);
	/* a 64-byte label, and a 254-byte name */
	memset(big, 'a', 64);
	strcpy(big + 64, ".example.com");
	cr_expect(!valid_dns_name(big, false));
	strcpy(big + 63, ".example.com");
	cr_expect(valid_dns_name(big, false), "a 63-byte label");
	memset(big, 'a', sizeof big);
	for (size_t i = 50; i < 254; i += 51)
		big[i] = '.';
	big[253] = '\0';
	cr_expect(valid_dns_name(big, false), "253 bytes is the limit");
	big[253] = 'a';
	big[254] = '\0';
	cr_expect(!valid_dns_name(big, false), "254 bytes");
}

Test(validate, wildcards)
{
	cr_expect(valid_dns_name("*.example.com", true));
	cr_expect(valid_dns_name("*.xn--bcher-kva.example", true));
	cr_expect(!valid_dns_name("*.com", true), "a whole TLD");
	cr_expect(!valid_dns_name("*", true));
	cr_expect(!valid_dns_name("a*.example.com", true));
	cr_expect(!valid_dns_name("*a.example.com", true));
	cr_expect(!valid_dns_name("www.*.example.com", true));
	cr_expect(!valid_dns_name("*.*.example.com", true));
}

Test(validate, addresses)
{
	cr_expect(valid_ip_address("127.0.0.1"));
	cr_expect(valid_ip_address("::1"));
	cr_expect(valid_ip_address("2001:db8::42"));
	cr_expect(!valid_ip_address("256.1.1.1"));
	cr_expect(!valid_ip_address("1.2.3"));
	cr_expect(!valid_ip_address("example.com"));
	cr_expect(!valid_ip_address(""));
}

Test(validate, networks)
{
	cr_expect(valid_cidr("10.0.0.0/8"));
	cr_expect(valid_cidr("0.0.0.0/0"));
	cr_expect(valid_cidr("192.0.2.1/32"));
	cr_expect(valid_cidr("2001:db8::/32"));
	cr_expect(valid_cidr("::1/128"));
	cr_expect(!valid_cidr("10.0.0.1/8"), "host bits set");
	cr_expect(!valid_cidr("10.0.0.0/33"));
	cr_expect(!valid_cidr("10.0.0.0/08"), "leading zero");
	cr_expect(!valid_cidr("10.0.0.0/"));
	cr_expect(!valid_cidr("10.0.0.0"));
	cr_expect(!valid_cidr("/8"));
	cr_expect(!valid_cidr("10.0.0.0/8/8"));
	cr_expect(!valid_cidr("2001:db8::/129"));
	cr_expect(!valid_cidr("example.com/24"));
	cr_expect(!valid_cidr("10.0.0.0/-1"));
}

Test(validate, emails)
{
	static const char *const good[] = {
		"ops@example.com", "first.last@example.co.uk", "a+tag@example.com",
		"o'brien@xn--bcher-kva.example",
	};
	static const char *const bad[] = {
		"", "@example.com", "ops@", "ops@localhost", "ops@@example.com", "o ps@example.com",
		".ops@example.com", "ops.@example.com", "o..ps@example.com", "ops@example..com",
		"\"quoted\"@example.com", "ops@exa_mple.com", "ops@example.com\r\n",
	};
	char big[300];

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		cr_expect(valid_email(good[i]), "refused %s", good[i]);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_expect(!valid_email(bad[i]), "accepted %s", bad[i]);
	memset(big, 'a', 65);
	strcpy(big + 65, "@example.com");
	cr_expect(!valid_email(big), "a 65-byte local part");
}

Test(validate, resource_ids)
{
	cr_expect(valid_resource_id("mc-api-prod", 64));
	cr_expect(valid_resource_id("t_platform.2", 64));
	cr_expect(!valid_resource_id("", 64));
	cr_expect(!valid_resource_id("-x", 64));
	cr_expect(!valid_resource_id("_x", 64), "the database refuses a leading underscore");
	cr_expect(!valid_resource_id(".x", 64));
	cr_expect(!valid_resource_id("a/b", 64));
	cr_expect(!valid_resource_id("a b", 64));
	cr_expect(!valid_resource_id("abcdef", 5));
}

Test(validate, json_depth)
{
	char deep[2000];

	cr_expect(json_depth_ok("1", 1, 0));
	cr_expect(!json_depth_ok("[]", 2, 0));
	cr_expect(json_depth_ok("[]", 2, 1));
	cr_expect(json_depth_ok("{\"a\":[1,{\"b\":2}]}", 17, 3));
	cr_expect(!json_depth_ok("{\"a\":[1,{\"b\":[2]}]}", 19, 3));
	/* brackets inside strings, and escaped quotes, do not count */
	cr_expect(json_depth_ok("{\"a\":\"[[[[\\\"[[[[\"}", 18, 1));
	memset(deep, '[', sizeof deep);
	cr_expect(!json_depth_ok(deep, sizeof deep, 32), "2000 open brackets");
	cr_expect(json_depth_ok(deep, 32, 32));
}

Test(validate, rfc3339)
{
	static const char *const good[] = {
		"2026-11-25T14:00:00Z", "2026-11-25t14:00:00z", "2026-11-25T14:00:00.5Z",
		"2026-11-25T14:00:00.123456789+01:00", "2026-11-25T23:59:60-23:59", "2000-02-29T00:00:00Z",
		"2024-02-29T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59+00:00",
		"1969-12-31T23:59:59.999999Z",
	};
	static const char *const bad[] = {
		"", "2026-11-25", "2026-11-25T14:00:00", "2026-11-25 14:00:00Z", "2026-11-25T14:00Z",
		"2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-11-31T00:00:00Z",
		"2026-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2026-11-00T00:00:00Z",
		"2026-11-25T24:00:00Z", "2026-11-25T14:60:00Z", "2026-11-25T14:00:61Z",
		"2026-11-25T14:00:00.Z", "2026-11-25T14:00:00.1234567890Z", "2026-11-25T14:00:00+24:00",
		"2026-11-25T14:00:00+01:60", "2026-11-25T14:00:00+0100", "2026-11-25T14:00:00Z ",
		" 2026-11-25T14:00:00Z", "0000-01-01T00:00:00Z", "+2026-11-25T14:00:00Z",
		"2026-11-25T14:00:00+01", "2026-11-25T14:00:00+01:00x", "2026-1-25T14:00:00Z",
		"２026-11-25T14:00:00Z", "2026-11-25T14:00:00-", "2026-11-25T14:00:00+",
	};

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		cr_expect(valid_rfc3339(good[i]), "refused %s", good[i]);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_expect(!valid_rfc3339(bad[i]), "accepted %s", bad[i]);
}
