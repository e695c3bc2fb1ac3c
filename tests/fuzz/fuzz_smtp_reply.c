/* certward-notifier's SMTP reply parser on whatever a server may send:
 * bounds kept, every reply it accepts well formed, EHLO lookups safe. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_reply r;
	size_t pos = 0;

	while (pos < size) {
		long n = smtp_reply_parse((const char *)data + pos, size - pos, &r);

		if (n <= 0)
			break;
		if (r.code < 200 || r.code > 599 || r.lines == 0 || r.lines > SMTP_REPLY_MAX_LINES ||
		    strlen(r.text) >= sizeof r.text || (size_t)n > size - pos)
			abort();
		(void)smtp_ehlo_has(&r, "AUTH", "PLAIN");
		(void)smtp_ehlo_has(&r, "STARTTLS", NULL);
		pos += (size_t)n;
	}
	return 0;
}
