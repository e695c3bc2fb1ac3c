/* A test's eyes on secrets at rest: opens a blob sealed by the signer
 * (lib/secretbox.h) with the key file the signer keeps, and prints what it
 * holds. Built for the tests only; never installed.
 *
 *   secretbox_open KEY_FILE HEX_BLOB
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "secretbox.h"
#include "util.h"

int main(int argc, char **argv)
{
	uint8_t key[SECRETBOX_KEY_BYTES], *blob, plain[SECRETBOX_MAX_PLAIN];
	size_t len;
	long n;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: secretbox_open KEY_FILE HEX_BLOB\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY);
	if (fd < 0 || read(fd, key, sizeof key) != (ssize_t)sizeof key) {
		perror(argv[1]);
		return 2;
	}
	close(fd);
	len = strlen(argv[2]) / 2;
	blob = malloc(len + 1);
	if (!blob || hex_decode(argv[2], blob, len) != 0) {
		fprintf(stderr, "secretbox_open: not hex\n");
		return 2;
	}
	n = secretbox_open(key, blob, len, plain, sizeof plain);
	free(blob);
	if (n < 0) {
		fprintf(stderr, "secretbox_open: does not open\n");
		return 1;
	}
	fwrite(plain, 1, (size_t)n, stdout);
	putchar('\n');
	return 0;
}
