/* libFuzzer target: the STORE_CALL parameter decoder (the store runs it on
 * what other workers send). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_params p;

	if (store_params_decode(data, size, &p) == 0) {
		uint8_t *again;
		size_t len;

		/* what decodes must encode back to the same bytes */
		if (p.n > STORE_PARAMS_MAX ||
		    store_params_encode(p.v, p.n, &again, &len) != 0 || len != size ||
		    memcmp(again, data, len) != 0)
			abort();
		free(again);
		store_params_free(&p);
	}
	return 0;
}
