/* libFuzzer target: request bodies checked against every REST resource, for
 * create and update. What passes must be a JSON object of known fields. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "resource.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i < resource_catalogue_len; i++) {
		for (int create = 0; create < 2; create++) {
			struct resource_error err;
			char *out = resource_check_body(&resource_catalogue[i], (const char *)data, size, create,
							&err);
			json_t *j;
			const char *k;
			json_t *v;

			if (!out)
				continue;
			j = json_loads(out, 0, NULL);
			if (!json_is_object(j))
				abort();
			json_object_foreach(j, k, v) {
				if (!resource_field(&resource_catalogue[i], k))
					abort();
			}
			json_decref(j);
			free(out);
		}
	}
	return 0;
}
