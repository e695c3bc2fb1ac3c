#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "notifier_seal.h"

static const char secrets[] = "{\"password\":\"s3cret-smtp\"}";

static long seal_for(const uint8_t pub[NOTIFIER_SEAL_KEY_BYTES], const char *channel, uint8_t *blob, size_t cap)
{
	return notifier_seal(pub, channel, (const uint8_t *)secrets, strlen(secrets), blob, cap);
}

Test(notifier_seal, round_trip_fresh_ephemeral_keys)
{
	uint8_t pub[NOTIFIER_SEAL_KEY_BYTES], priv[NOTIFIER_SEAL_KEY_BYTES], a[256], b[256], out[256];
	long na, nb;

	cr_assert_eq(notifier_seal_keygen(pub, priv), 0);
	na = seal_for(pub, "nch-mail", a, sizeof a);
	nb = seal_for(pub, "nch-mail", b, sizeof b);
	cr_assert_eq(na, (long)(strlen(secrets) + NOTIFIER_SEAL_OVERHEAD));
	cr_assert_eq(nb, na);
	cr_expect_eq(memcmp(a, "cwn\x01", 4), 0, "versioned header");
	cr_expect_neq(memcmp(a, b, (size_t)na), 0, "two seals of one text are equal");
	cr_expect_null(memmem(a, (size_t)na, "s3cret", 6), "the secret is in the blob");
	cr_assert_eq(notifier_seal_open(priv, "nch-mail", a, (size_t)na, out, sizeof out), (long)strlen(secrets));
	cr_expect_eq(memcmp(out, secrets, strlen(secrets)), 0);
	cr_assert_eq(notifier_seal_open(priv, "nch-mail", b, (size_t)nb, out, sizeof out), (long)strlen(secrets));
	/* an empty secrets text seals and opens too */
	na = notifier_seal(pub, "nch-mail", NULL, 0, a, sizeof a);
	cr_assert_eq(na, NOTIFIER_SEAL_OVERHEAD);
	cr_expect_eq(notifier_seal_open(priv, "nch-mail", a, (size_t)na, out, sizeof out), 0);
}

Test(notifier_seal, bound_to_key_and_channel)
{
	uint8_t pub[NOTIFIER_SEAL_KEY_BYTES], priv[NOTIFIER_SEAL_KEY_BYTES];
	uint8_t pub2[NOTIFIER_SEAL_KEY_BYTES], priv2[NOTIFIER_SEAL_KEY_BYTES], blob[256], out[256];
	long n;

	cr_assert_eq(notifier_seal_keygen(pub, priv), 0);
	cr_assert_eq(notifier_seal_keygen(pub2, priv2), 0);
	n = seal_for(pub, "nch-a", blob, sizeof blob);
	cr_assert_gt(n, 0);
	memset(out, 0x55, sizeof out);
	cr_expect_eq(notifier_seal_open(priv2, "nch-a", blob, (size_t)n, out, sizeof out), -1, "another key");
	cr_expect_null(memmem(out, sizeof out, "s3cret", 6), "a refused open left plaintext behind");
	cr_expect_eq(notifier_seal_open(priv, "nch-b", blob, (size_t)n, out, sizeof out), -1, "another channel");
	cr_expect_eq(notifier_seal_open(priv, "nch-a2", blob, (size_t)n, out, sizeof out), -1, "a longer id");
	cr_expect_eq(notifier_seal_open(priv, "nch-", blob, (size_t)n, out, sizeof out), -1, "a prefix");
	cr_expect_eq(notifier_seal_open(priv, "", blob, (size_t)n, out, sizeof out), -1, "empty id");
	cr_expect_eq(notifier_seal_open(priv, NULL, blob, (size_t)n, out, sizeof out), -1, "no id");
	cr_expect_eq(notifier_seal_open(priv, "nch-a", blob, (size_t)n, out, sizeof out), (long)strlen(secrets));
}

Test(notifier_seal, refuses_changed_truncated_and_oversize)
{
	uint8_t pub[NOTIFIER_SEAL_KEY_BYTES], priv[NOTIFIER_SEAL_KEY_BYTES], blob[256], out[256];
	static uint8_t big[NOTIFIER_SEAL_MAX_BLOB + 64];
	long n;

	cr_assert_eq(notifier_seal_keygen(pub, priv), 0);
	n = seal_for(pub, "nch-a", blob, sizeof blob);
	cr_assert_gt(n, 0);
	for (long i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			blob[i] ^= (uint8_t)(1u << bit);
			cr_expect_eq(notifier_seal_open(priv, "nch-a", blob, (size_t)n, out, sizeof out), -1,
				     "byte %ld bit %d flipped", i, bit);
			blob[i] ^= (uint8_t)(1u << bit);
		}
	}
	for (long len = 0; len < n; len++)
		cr_expect_eq(notifier_seal_open(priv, "nch-a", blob, (size_t)len, out, sizeof out), -1,
			     "truncated to %ld", len);
	cr_expect_eq(notifier_seal_open(priv, "nch-a", blob, (size_t)n, out, (size_t)n - NOTIFIER_SEAL_OVERHEAD - 1),
		     -1, "no room");
	/* oversize in and out */
	cr_expect_eq(notifier_seal(pub, "nch-a", big, NOTIFIER_SEAL_MAX_PLAIN + 1, big, sizeof big), -1);
	cr_expect_eq(notifier_seal(pub, "nch-a", (const uint8_t *)secrets, strlen(secrets), big,
				   strlen(secrets) + NOTIFIER_SEAL_OVERHEAD - 1),
		     -1, "no room to seal");
	memcpy(big, blob, (size_t)n);
	cr_expect_eq(notifier_seal_open(priv, "nch-a", big, NOTIFIER_SEAL_MAX_BLOB + 1, big, sizeof big), -1);
	{
		static uint8_t plain[NOTIFIER_SEAL_MAX_PLAIN], sealed[NOTIFIER_SEAL_MAX_BLOB], back[NOTIFIER_SEAL_MAX_PLAIN];

		memset(plain, 'x', sizeof plain);
		n = notifier_seal(pub, "nch-a", plain, sizeof plain, sealed, sizeof sealed);
		cr_assert_eq(n, NOTIFIER_SEAL_MAX_BLOB, "the largest secrets text");
		cr_expect_eq(notifier_seal_open(priv, "nch-a", sealed, (size_t)n, back, sizeof back),
			     NOTIFIER_SEAL_MAX_PLAIN);
	}
}

Test(notifier_seal, refuses_bad_channel_ids_and_public_keys)
{
	uint8_t pub[NOTIFIER_SEAL_KEY_BYTES], priv[NOTIFIER_SEAL_KEY_BYTES], blob[256], out[256];
	char long_id[NOTIFIER_SEAL_MAX_CHANNEL_ID + 2];

	cr_assert_eq(notifier_seal_keygen(pub, priv), 0);
	memset(long_id, 'a', sizeof long_id - 1);
	long_id[sizeof long_id - 1] = '\0';
	cr_expect_eq(seal_for(pub, long_id, blob, sizeof blob), -1, "id over the bound");
	long_id[NOTIFIER_SEAL_MAX_CHANNEL_ID] = '\0';
	cr_assert_gt(seal_for(pub, long_id, blob, sizeof blob), 0, "id at the bound");
	cr_expect_eq(seal_for(pub, "", blob, sizeof blob), -1);
	cr_expect_eq(seal_for(pub, NULL, blob, sizeof blob), -1);
	/* an all-zero public key is a low-order point: X25519 refuses it */
	memset(pub, 0, sizeof pub);
	cr_expect_eq(seal_for(pub, "nch-a", blob, sizeof blob), -1, "low-order public key");
	(void)out;
}

Test(notifier_seal, key_id_and_public_key)
{
	uint8_t pub[NOTIFIER_SEAL_KEY_BYTES], priv[NOTIFIER_SEAL_KEY_BYTES], again[NOTIFIER_SEAL_KEY_BYTES];
	char id[NOTIFIER_SEAL_KEY_ID_LEN + 1];
	static const uint8_t zeros[NOTIFIER_SEAL_KEY_BYTES];

	cr_assert_eq(notifier_seal_keygen(pub, priv), 0);
	cr_assert_eq(notifier_seal_public_key(priv, again), 0);
	cr_expect_eq(memcmp(pub, again, sizeof pub), 0);
	/* SHA-256 of 32 zero bytes */
	notifier_seal_key_id(zeros, id);
	cr_expect_str_eq(id, "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925");
	notifier_seal_key_id(pub, id);
	cr_expect_eq(strlen(id), NOTIFIER_SEAL_KEY_ID_LEN);
	cr_expect_eq(strspn(id, "0123456789abcdef"), NOTIFIER_SEAL_KEY_ID_LEN);
}

Test(notifier_seal, key_file_made_once_and_checked)
{
	char dir[] = "/tmp/notifier-seal-XXXXXX", why[160];
	uint8_t priv1[NOTIFIER_SEAL_KEY_BYTES], pub1[NOTIFIER_SEAL_KEY_BYTES];
	uint8_t priv2[NOTIFIER_SEAL_KEY_BYTES], pub2[NOTIFIER_SEAL_KEY_BYTES], blob[256], out[256];
	struct stat st;
	long n;
	int fd;

	cr_assert_not_null(mkdtemp(dir));
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert_eq(notifier_seal_key_load(fd, "notifier.key", priv1, pub1, why, sizeof why), 0, "%s", why);
	cr_assert_eq(fstatat(fd, "notifier.key", &st, 0), 0);
	cr_expect_eq(st.st_mode & 0777, 0600);
	cr_assert_eq(notifier_seal_key_load(fd, "notifier.key", priv2, pub2, why, sizeof why), 0, "%s", why);
	cr_expect_eq(memcmp(pub1, pub2, sizeof pub1), 0, "a second load made another key");
	n = seal_for(pub1, "nch-a", blob, sizeof blob);
	cr_expect_eq(notifier_seal_open(priv2, "nch-a", blob, (size_t)n, out, sizeof out), (long)strlen(secrets));
	cr_assert_eq(fchmodat(fd, "notifier.key", 0644, 0), 0);
	cr_expect_eq(notifier_seal_key_load(fd, "notifier.key", priv2, pub2, why, sizeof why), -1, "0644 accepted");
	unlinkat(fd, "notifier.key", 0);
	close(fd);
	rmdir(dir);
}
