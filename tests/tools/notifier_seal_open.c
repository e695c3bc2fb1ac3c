/* A test's eyes on channel secrets at rest (lib/notifier_seal.h). Built
 * for the tests only; never installed.
 *
 *   notifier_seal_open key DIR NAME        makes (or reads) the private key
 *                                          file DIR/NAME; prints the public
 *                                          key in hex and its key id
 *   notifier_seal_open open DIR NAME CHANNEL_ID HEX_BLOB
 *                                          prints what the blob holds;
 *                                          exit status 1 when it does not open
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "notifier_seal.h"
#include "util.h"

int main(int argc, char **argv)
{
	uint8_t priv[NOTIFIER_SEAL_KEY_BYTES], pub[NOTIFIER_SEAL_KEY_BYTES], *blob, plain[NOTIFIER_SEAL_MAX_PLAIN];
	char why[200], hex[2 * NOTIFIER_SEAL_KEY_BYTES + 1], id[NOTIFIER_SEAL_KEY_ID_LEN + 1];
	bool opening = argc == 6 && strcmp(argv[1], "open") == 0;
	size_t len;
	long n;
	int dir;

	if (!opening && !(argc == 4 && strcmp(argv[1], "key") == 0)) {
		fprintf(stderr, "usage: notifier_seal_open key DIR NAME | open DIR NAME CHANNEL_ID HEX_BLOB\n");
		return 2;
	}
	dir = open(argv[2], O_RDONLY | O_DIRECTORY);
	if (dir < 0 || notifier_seal_key_load(dir, argv[3], priv, pub, why, sizeof why) != 0) {
		fprintf(stderr, "notifier_seal_open: %s\n", dir < 0 ? "no such directory" : why);
		return 2;
	}
	close(dir);
	if (!opening) {
		hex_encode(pub, sizeof pub, hex);
		notifier_seal_key_id(pub, id);
		printf("%s %s\n", hex, id);
		return 0;
	}
	len = strlen(argv[5]) / 2;
	blob = malloc(len + 1);
	if (!blob || hex_decode(argv[5], blob, len) != 0) {
		fprintf(stderr, "notifier_seal_open: not hex\n");
		return 2;
	}
	n = notifier_seal_open(priv, argv[4], blob, len, plain, sizeof plain);
	free(blob);
	if (n < 0) {
		fprintf(stderr, "notifier_seal_open: does not open\n");
		return 1;
	}
	fwrite(plain, 1, (size_t)n, stdout);
	putchar('\n');
	return 0;
}
