/* The HTTPS client's response parser (lib/https_client.c) and its header
 * lookup over whatever a server sends: no crash, no read past the input,
 * every header found fits the buffer it was asked into. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "https_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"Replay-Nonce", "Location", "Link", "Retry-After", "Content-Type"};
	struct http_response r;
	char err[256], v[512];

	for (int head_only = 0; head_only < 2; head_only++) {
		if (http_parse_response((const char *)data, size, 1, head_only, &r, err, sizeof err) != 1)
			continue;
		for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
			for (size_t k = 0; k < 4 && http_header(&r, names[i], k, v, sizeof v) == 0; k++)
				if (strlen(v) >= sizeof v)
					__builtin_trap();
		http_response_free(&r);
	}
	return 0;
}
