/* libFuzzer target: a CSR (DER) and a profile (JSON) as the api and the
 * signer check them (lib/csr_policy.h). The input is a 2-byte length, the
 * profile, then the CSR. Whatever arrives is accepted with everything a
 * signature needs, or refused with a reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csr_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void need(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csr_checked c;
	char why[300] = "";
	size_t plen;

	if (size < 2)
		return 0;
	plen = (size_t)data[0] << 8 | data[1];
	if (plen > size - 2)
		plen = size - 2;
	if (csr_policy_check(data + 2 + plen, size - 2 - plen, (const char *)data + 2, plen, data[0] & 1 ? 7200 : 0,
			     86400, &c, why, sizeof why) != 0) {
		need(why[0] != '\0' && !c.req && !c.pub && !c.sans);
		return 0;
	}
	need(c.req && c.pub && c.sans && sk_GENERAL_NAME_num(c.sans) > 0 && c.validity > 0 && c.key_alg &&
	     c.key_bits >= 256 && c.ekus[0]);
	csr_checked_free(&c);
	return 0;
}
