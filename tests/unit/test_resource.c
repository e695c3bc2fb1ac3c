#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resource.h"

static const struct resource_def *teams, *owners;

static void setup(void)
{
	teams = resource_by_path("/api/v1/teams");
	owners = resource_by_path("/api/v1/owners");
	cr_assert(teams && owners);
}

TestSuite(resource, .init = setup);

static char *check(const struct resource_def *r, const char *body, bool create,
		   struct resource_error *err)
{
	return resource_check_body(r, body, strlen(body), create, err);
}

static void refused(const struct resource_def *r, const char *body, bool create, const char *field)
{
	struct resource_error err;
	char *out = check(r, body, create, &err);

	cr_expect_null(out, "accepted %s", body);
	free(out);
	cr_expect_str_eq(err.field, field, "%s: field %s (%s)", body, err.field, err.msg);
	cr_expect(err.msg[0], "%s: no message", body);
}

Test(resource, canonical_output)
{
	struct resource_error err;
	char *out = check(teams, "{\"name\":\"platform\",\"description\":\"x\",\"id\":\"t-1\"}", true, &err);

	cr_assert_not_null(out, "%s", err.msg);
	cr_expect_str_eq(out, "{\"description\":\"x\",\"id\":\"t-1\",\"name\":\"platform\"}");
	free(out);
	/* server-owned fields from a GET body are ignored; id is not changed by an update */
	out = check(teams, "{\"id\":\"t-1\",\"name\":\"p\",\"created_at\":\"2026-01-01T00:00:00Z\","
			   "\"updated_at\":\"junk\"}", false, &err);
	cr_assert_not_null(out, "%s", err.msg);
	cr_expect_str_eq(out, "{\"name\":\"p\"}");
	free(out);
}

Test(resource, malformed_and_hostile_bodies)
{
	char deep[200];

	refused(teams, "", true, "");
	refused(teams, "{", true, "");
	refused(teams, "[]", true, "");
	refused(teams, "\"x\"", true, "");
	refused(teams, "{\"name\":\"a\",\"name\":\"b\"}", true, "");
	refused(teams, "{\"name\":\"a\"} trailing", true, "");
	memset(deep, '[', sizeof deep - 1);
	deep[sizeof deep - 1] = '\0';
	refused(teams, deep, true, "");
	refused(teams, "{\"name\":\"a\\u0000b\"}", true, "");
}

Test(resource, fields)
{
	char big[400];

	refused(teams, "{\"description\":\"x\"}", true, "name");
	refused(teams, "{\"name\":null}", true, "name");
	refused(teams, "{\"name\":\"\"}", true, "name");
	refused(teams, "{\"name\":5}", true, "name");
	refused(teams, "{\"name\":\"a\",\"colour\":\"red\"}", true, "colour");
	refused(teams, "{\"name\":\"a\",\"description\":null}", true, "description");
	refused(teams, "{\"name\":\"a\",\"id\":\"-x\"}", true, "id");
	refused(teams, "{\"name\":\"a\",\"id\":\"a/b\"}", true, "id");
	snprintf(big, sizeof big, "{\"name\":\"%0300d\"}", 0);
	refused(teams, big, true, "name");
	refused(owners, "{\"name\":\"a\",\"email\":\"not-an-address\"}", true, "email");
	refused(owners, "{\"name\":\"a\",\"team_id\":\"t 1\"}", true, "team_id");
	/* partial update: nothing required */
	{
		struct resource_error err;
		char *out = check(owners, "{\"email\":\"ops@example.com\",\"team_id\":null}", false, &err);

		cr_assert_not_null(out, "%s", err.msg);
		cr_expect_str_eq(out, "{\"email\":\"ops@example.com\",\"team_id\":null}");
		free(out);
	}
	/* 255 characters of 2-byte UTF-8 fit; 256 do not */
	{
		char s[600] = "{\"name\":\"";
		size_t n = strlen(s);
		struct resource_error err;
		char *out;

		for (int i = 0; i < 255; i++, n += 2)
			memcpy(s + n, "\xc3\xa9", 2);
		strcpy(s + n, "\"}");
		out = check(teams, s, true, &err);
		cr_expect_not_null(out, "%s", err.msg);
		free(out);
		strcpy(s + n, "\xc3\xa9\"}");
		refused(teams, s, true, "name");
	}
}

/* the types of the later resources: enums, lists of enums, key rules,
 * addresses, networks, tag maps, id lists and SANs */
Test(resource, typed_fields)
{
	const struct resource_def *issuers = resource_by_path("/api/v1/issuers");
	const struct resource_def *profiles = resource_by_path("/api/v1/profiles");
	const struct resource_def *agents = resource_by_path("/api/v1/agents");
	const struct resource_def *groups = resource_by_path("/api/v1/agent-groups");
	const struct resource_def *certs = resource_by_path("/api/v1/certificates");
	struct resource_error err;
	char *out;

	cr_assert(issuers && profiles && agents && groups && certs);
	refused(issuers, "{\"name\":\"a\",\"type\":\"acme\"}", true, "type");
	refused(issuers, "{\"name\":\"a\",\"type\":[\"ACME\"]}", true, "type");
	refused(issuers, "{\"name\":\"a\",\"type\":\"ACME\",\"config\":\"x\"}", true, "config");
	out = check(issuers, "{\"name\":\"a\",\"type\":\"ACME\",\"config\":{\"k\":{\"deep\":[1,2]}}}", true, &err);
	cr_expect_str_eq(out, "{\"config\":{\"k\":{\"deep\":[1,2]}},\"name\":\"a\",\"type\":\"ACME\"}", "%s", err.msg);
	free(out);
	refused(profiles, "{\"name\":\"p\",\"allowed_ekus\":[\"serverAuth\",\"any\"]}", true, "allowed_ekus");
	refused(profiles, "{\"name\":\"p\",\"allowed_key_algorithms\":{\"algorithm\":\"RSA\"}}", true,
		"allowed_key_algorithms");
	refused(profiles, "{\"name\":\"p\",\"allowed_key_algorithms\":[{\"algorithm\":\"RSA\",\"min_size\":1.5}]}",
		true, "allowed_key_algorithms");
	refused(profiles, "{\"name\":\"p\",\"allowed_key_algorithms\":[{\"algorithm\":\"RSA\",\"x\":1}]}", true,
		"allowed_key_algorithms");
	out = check(profiles, "{\"name\":\"p\",\"allowed_key_algorithms\":[{\"algorithm\":\"Ed25519\"}]}", true, &err);
	cr_expect_not_null(out, "%s", err.msg);
	free(out);
	refused(agents, "{\"name\":\"a\",\"ip_address\":\"10.0.0.1/32\"}", true, "ip_address");
	out = check(agents, "{\"name\":\"a\",\"ip_address\":\"2001:db8::1\",\"status\":\"Online\"}", true, &err);
	cr_expect_str_eq(out, "{\"ip_address\":\"2001:db8::1\",\"name\":\"a\"}", "status is the server's: %s", out);
	free(out);
	refused(groups, "{\"name\":\"g\",\"match_ip_cidr\":\"10.0.0.0\"}", true, "match_ip_cidr");
	refused(groups, "{\"name\":\"g\",\"match_ip_cidr\":\"2001:db8::1/64\"}", true, "match_ip_cidr");
	refused(certs, "{\"tags\":{\"a\":[\"b\"]}}", false, "tags");
	refused(certs, "{\"target_ids\":[\"ok\",\"not ok\"]}", false, "target_ids");
	refused(certs, "{\"sans\":[\"*.example.com\",\"a..b\"]}", false, "sans");
	out = check(certs, "{\"sans\":[\"*.example.com\",\"::1\",\"a@example.com\",\"xn--bcher-kva.example\"]}", false,
		    &err);
	cr_expect_not_null(out, "%s", err.msg);
	free(out);
}
