/* See secretbox.h. */
#include "secretbox.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/aead.h>
#include <openssl/mem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char magic[4] = {'c', 'w', 's', '1'};
static const char ad[] = "certward secret v1";

int secretbox_key_load(int dir_fd, const char *name, uint8_t key[SECRETBOX_KEY_BYTES], char *why,
		       size_t why_len)
{
	struct stat st;
	int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0 && errno == ENOENT) {
		/* first start: a new key, written whole before it is used */
		char tmp[64];

		snprintf(tmp, sizeof tmp, "%s.new", name);
		RAND_bytes(key, SECRETBOX_KEY_BYTES);
		fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0 || write(fd, key, SECRETBOX_KEY_BYTES) != SECRETBOX_KEY_BYTES || fsync(fd) != 0 ||
		    close(fd) != 0 || renameat(dir_fd, tmp, dir_fd, name) != 0 || fsync(dir_fd) != 0) {
			snprintf(why, why_len, "cannot create %s: %s", name, strerror(errno));
			OPENSSL_cleanse(key, SECRETBOX_KEY_BYTES);
			return -1;
		}
		return 0;
	}
	if (fd < 0) {
		snprintf(why, why_len, "cannot open %s: %s", name, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) ||
	    st.st_size != SECRETBOX_KEY_BYTES) {
		snprintf(why, why_len, "%s must be a 32-byte file of uid %u with mode 0600", name,
			 (unsigned)geteuid());
		close(fd);
		return -1;
	}
	n = read(fd, key, SECRETBOX_KEY_BYTES);
	close(fd);
	if (n != SECRETBOX_KEY_BYTES) {
		snprintf(why, why_len, "cannot read %s", name);
		OPENSSL_cleanse(key, SECRETBOX_KEY_BYTES);
		return -1;
	}
	return 0;
}

static long run(const uint8_t key[SECRETBOX_KEY_BYTES], int seal, const uint8_t *nonce, const uint8_t *in,
		size_t len, uint8_t *out, size_t cap)
{
	EVP_AEAD_CTX ctx;
	size_t n = 0;
	int ok;

	if (!EVP_AEAD_CTX_init(&ctx, EVP_aead_xchacha20_poly1305(), key, SECRETBOX_KEY_BYTES,
			       EVP_AEAD_DEFAULT_TAG_LENGTH, NULL))
		return -1;
	ok = seal ? EVP_AEAD_CTX_seal(&ctx, out, &n, cap, nonce, 24, in, len, (const uint8_t *)ad, sizeof ad - 1)
		  : EVP_AEAD_CTX_open(&ctx, out, &n, cap, nonce, 24, in, len, (const uint8_t *)ad, sizeof ad - 1);
	EVP_AEAD_CTX_cleanup(&ctx);
	return ok ? (long)n : -1;
}

long secretbox_seal(const uint8_t key[SECRETBOX_KEY_BYTES], const uint8_t *in, size_t len, uint8_t *out,
		    size_t cap)
{
	long n;

	if (len > SECRETBOX_MAX_PLAIN || cap < len + SECRETBOX_OVERHEAD)
		return -1;
	memcpy(out, magic, sizeof magic);
	RAND_bytes(out + 4, 24);
	n = run(key, 1, out + 4, in, len, out + 28, cap - 28);
	return n < 0 ? -1 : n + 28;
}

long secretbox_open(const uint8_t key[SECRETBOX_KEY_BYTES], const uint8_t *in, size_t len, uint8_t *out,
		    size_t cap)
{
	if (len < SECRETBOX_OVERHEAD || len - SECRETBOX_OVERHEAD > SECRETBOX_MAX_PLAIN ||
	    memcmp(in, magic, sizeof magic) != 0 || cap < len - SECRETBOX_OVERHEAD)
		return -1;
	return run(key, 0, in + 4, in + 28, len - 28, out, cap);
}
