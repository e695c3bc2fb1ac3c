#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secretbox.h"

static const uint8_t key[SECRETBOX_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

Test(secretbox, round_trip_and_fresh_nonces)
{
	static const char msg[] = "{\"eab_hmac_key\":\"s3cret\"}";
	uint8_t a[256], b[256], out[256];
	long na = secretbox_seal(key, (const uint8_t *)msg, strlen(msg), a, sizeof a);
	long nb = secretbox_seal(key, (const uint8_t *)msg, strlen(msg), b, sizeof b);

	cr_assert_eq(na, (long)(strlen(msg) + SECRETBOX_OVERHEAD));
	cr_assert_eq(nb, na);
	cr_expect_neq(memcmp(a, b, (size_t)na), 0, "two seals of one text are equal");
	cr_expect_null(memmem(a, (size_t)na, "s3cret", 6), "the secret is in the blob");
	cr_assert_eq(secretbox_open(key, a, (size_t)na, out, sizeof out), (long)strlen(msg));
	cr_expect_eq(memcmp(out, msg, strlen(msg)), 0);
}

Test(secretbox, refuses_changed_short_and_foreign)
{
	uint8_t blob[128], out[128], other[SECRETBOX_KEY_BYTES] = {9};
	long n = secretbox_seal(key, (const uint8_t *)"x", 1, blob, sizeof blob);

	cr_assert_gt(n, 0);
	cr_expect_eq(secretbox_open(other, blob, (size_t)n, out, sizeof out), -1, "another key");
	for (long i = 0; i < n; i++) {
		blob[i] ^= 0x20;
		cr_expect_eq(secretbox_open(key, blob, (size_t)n, out, sizeof out), -1, "byte %ld changed", i);
		blob[i] ^= 0x20;
	}
	cr_expect_eq(secretbox_open(key, blob, SECRETBOX_OVERHEAD - 1, out, sizeof out), -1, "short");
	cr_expect_eq(secretbox_open(key, blob, (size_t)n - 1, out, sizeof out), -1, "truncated");
	cr_expect_eq(secretbox_seal(key, blob, SECRETBOX_MAX_PLAIN + 1, out, sizeof out), -1, "too long");
}

Test(secretbox, key_file_made_once_and_checked)
{
	char dir[] = "/tmp/secretbox-XXXXXX", why[160];
	uint8_t k1[SECRETBOX_KEY_BYTES], k2[SECRETBOX_KEY_BYTES];
	struct stat st;
	int fd;

	cr_assert_not_null(mkdtemp(dir));
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert_eq(secretbox_key_load(fd, "secrets.key", k1, why, sizeof why), 0, "%s", why);
	cr_assert_eq(fstatat(fd, "secrets.key", &st, 0), 0);
	cr_expect_eq(st.st_mode & 0777, 0600);
	cr_assert_eq(secretbox_key_load(fd, "secrets.key", k2, why, sizeof why), 0, "%s", why);
	cr_expect_eq(memcmp(k1, k2, sizeof k1), 0, "a second load made another key");
	cr_assert_eq(fchmodat(fd, "secrets.key", 0644, 0), 0);
	cr_expect_eq(secretbox_key_load(fd, "secrets.key", k2, why, sizeof why), -1, "mode 0644 accepted");
	unlinkat(fd, "secrets.key", 0);
	cr_assert_eq(symlinkat("/etc/passwd", fd, "secrets.key"), 0);
	cr_expect_eq(secretbox_key_load(fd, "secrets.key", k2, why, sizeof why), -1, "a symlink followed");
	unlinkat(fd, "secrets.key", 0);
	close(fd);
	rmdir(dir);
}
