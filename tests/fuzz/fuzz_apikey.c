/* libFuzzer target: parsing a presented API key (the Authorization header's
 * token). An accepted key must round-trip to the same text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apikey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct apikey k;
	char text[APIKEY_TEXT_LEN + 1];

	if (!apikey_parse((const char *)data, size, &k))
		return 0;
	memcpy(text, k.prefix, APIKEY_PREFIX_LEN);
	text[APIKEY_PREFIX_LEN] = '_';
	for (size_t i = 0; i < APIKEY_SECRET_BYTES; i++)
		snprintf(text + APIKEY_PREFIX_LEN + 1 + 2 * i, 3, "%02x", k.secret[i]);
	if (size != APIKEY_TEXT_LEN || memcmp(text, data, size) != 0)
		abort();
	apikey_clear(&k);
	return 0;
}
