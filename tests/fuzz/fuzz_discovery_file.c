/* libFuzzer target: one file's contents through the discovery's parser
 * (agent/discovery.h), as the agent reads any file under a scanned
 * directory. Whatever it finds must be well-formed report entries. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "discovery.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *certs = json_array(), *errors = json_array(), *c;
	int n = discovery_parse_file(data, size, "/fuzz/input.pem", certs, errors, 8);
	size_t i;

	if (n >= 0 && (size_t)n != json_array_size(certs))
		abort();
	json_array_foreach(certs, i, c) {
		const char *fp = json_string_value(json_object_get(c, "fingerprint_sha256"));
		const char *pem = json_string_value(json_object_get(c, "pem_data"));

		if (!fp || strlen(fp) != 64 || !pem || strncmp(pem, "-----BEGIN CERTIFICATE-----\n", 28) != 0 ||
		    !json_is_array(json_object_get(c, "sans")) || !json_string_value(json_object_get(c, "not_after")))
			abort();
	}
	if (json_array_size(errors) > 1000)
		abort();
	json_decref(certs);
	json_decref(errors);
	return 0;
}
