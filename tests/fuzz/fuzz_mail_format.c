/* certward-notifier's e-mail formatting on any message text (an event's
 * subject and body come from certificate names and outside CAs' errors):
 * the quoted-printable body stays in bounds, lines at most 76 characters,
 * only printable ASCII; a built message never carries a bare LF. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = 0, col = 0, cut = size / 3;
	char *qp = qp_encode((const char *)data, size, &n), *text, *subject, *m;

	if (qp) {
		if (strlen(qp) != n)
			abort();
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)qp[i];

			if (c == '\r') {
				if (i + 1 >= n || qp[i + 1] != '\n')
					abort();
				i++;
				col = 0;
				continue;
			}
			if ((c < 0x20 && c != '\t') || c > 0x7e || ++col > 76)
				abort();
		}
		free(qp);
	}
	/* the first third as the subject, the rest as the body */
	subject = malloc(cut + 1);
	text = malloc(size - cut + 1);
	if (!subject || !text)
		abort();
	memcpy(subject, data, cut);
	subject[cut] = 0;
	memcpy(text, data + cut, size - cut);
	text[size - cut] = 0;
	m = mail_build("certward@example.test", "ops@example.test", subject, text, "notif-1", "00ff", 0, &n);
	if (m) {
		for (size_t i = 0; i < n; i++)
			if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r'))
				abort();
		free(m);
	}
	free(subject);
	free(text);
	return 0;
}
