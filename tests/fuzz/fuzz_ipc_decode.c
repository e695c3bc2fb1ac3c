/* libFuzzer target: the IPC frame decoder, as every receiver runs it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipc_msg m;
	unsigned role;

	if (size < 1)
		return 0;
	role = data[0] % IPC_ROLE_COUNT;
	if (ipc_decode(data + 1, size - 1, role, &m) == IPC_OK) {
		uint8_t *again;
		size_t len;

		/* what decodes must encode back to the same bytes */
		if (ipc_encode(&m, &again, &len) != IPC_OK || len != size - 1 ||
		    memcmp(again, data + 1, len) != 0)
			abort();
		free(again);
		ipc_msg_free(&m);
	}
	return 0;
}
