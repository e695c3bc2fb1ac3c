/* libFuzzer target: the checks of lib/validate.c on arbitrary text. Besides
 * what the sanitizers see, an accepted value must keep the promises of
 * validate.h that later code relies on (charset, length). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void need(int cond)
{
	if (!cond)
		abort();
}

static int only(const char *s, const char *set)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      strchr(set, *s)))
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	(void)json_depth_ok((const char *)data, size, 32);
	if (valid_dns_name(s, false))
		need(strlen(s) <= 253 && only(s, "-."));
	if (valid_dns_name(s, true))
		need(strlen(s) <= 253 && only(s, "-.*") && !strchr(s + 1, '*'));
	if (valid_email(s))
		need(strlen(s) <= 254 && strchr(s, '@') && !strchr(s, ' ') && !strchr(s, '\n'));
	if (valid_resource_id(s, 64))
		need(strlen(s) <= 64 && only(s, "-_."));
	(void)valid_ip_address(s);
	free(s);
	return 0;
}
