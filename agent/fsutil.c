#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/mem.h>
#include <openssl/sha.h>

void free_wiped(void *p, size_t len)
{
	if (p) {
		OPENSSL_cleanse(p, len);
		free(p);
	}
}

int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static void dir_of(const char *path, char *out, size_t outlen)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(out, outlen, ".");
	else if (slash == path)
		snprintf(out, outlen, "/");
	else
		snprintf(out, outlen, "%.*s", (int)(slash - path), path);
}

int fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	struct stat st;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return fsync_dir(path);
	dir_of(path, dir, sizeof dir);
	return fsync_dir(dir);
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int atomic_write_json(const char *path, const json_t *j, char *why, size_t whylen)
{
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	int rc;

	if (!text) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	rc = atomic_write(path, text, strlen(text), 0600, NULL, why, whylen);
	free(text);
	return rc;
}

int atomic_write(const char *path, const void *data, size_t len, mode_t new_mode,
		 const struct file_meta *meta, char *why, size_t whylen)
{
	char dir[PATH_MAX], tmp[PATH_MAX + 128];
	const char *base = strrchr(path, '/');
	struct stat st;
	mode_t mode = new_mode;
	uid_t uid = geteuid();
	gid_t gid = getegid();
	int fd, e;

	base = base ? base + 1 : path;
	if (!*base || strlen(path) >= PATH_MAX - 32) {
		snprintf(why, whylen, "%.200s: not a file name", path);
		return -1;
	}
	if (meta && meta->set) {
		mode = meta->mode;
		uid = meta->uid;
		gid = meta->gid;
	} else if (stat(path, &st) == 0) {
		if (!S_ISREG(st.st_mode)) {
			snprintf(why, whylen, "%.200s: exists and is not a regular file", path);
			return -1;
		}
		mode = st.st_mode & 07777;
		uid = st.st_uid;
		gid = st.st_gid;
	} else if (errno != ENOENT) {
		snprintf(why, whylen, "%.200s: %s", path, strerror(errno));
		return -1;
	}
	dir_of(path, dir, sizeof dir);
	snprintf(tmp, sizeof tmp, "%s/.%.100s.cwtmp.XXXXXX", dir, base);
	/* mkstemp makes it 0600: nothing is readable before its mode is set */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, whylen, "cannot create a file in %.200s: %s", dir, strerror(errno));
		return -1;
	}
	if (write_all(fd, data, len) != 0)
		goto fail;
	if ((uid != geteuid() || gid != getegid()) && fchown(fd, uid, gid) != 0)
		goto fail;
	if (fchmod(fd, mode) != 0 || fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	if (fsync_dir(dir) != 0) {
		snprintf(why, whylen, "%.200s written, but syncing %.200s failed: %s", path, dir,
			 strerror(errno));
		return -1;
	}
	return 0;
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	snprintf(why, whylen, "cannot write %.200s: %s", path, strerror(e));
	errno = e;
	return -1;
}

char *read_file_max(const char *path, size_t max, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 4096, n = 0;
	char *buf;

	if (fd < 0)
		return NULL;
	buf = malloc(cap + 1);
	if (!buf)
		goto fail;
	for (;;) {
		ssize_t r;

		if (n == cap) {
			char *nb;

			if (cap > max)
				break;
			cap *= 2;
			nb = malloc(cap + 1);
			if (!nb)
				goto fail;
			memcpy(nb, buf, n);
			/* the old copy may hold a key */
			free_wiped(buf, n);
			buf = nb;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		free_wiped(buf, n);
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	close(fd);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
fail: {
	int e = errno;

	if (buf)
		free_wiped(buf, n);
	close(fd);
	errno = e;
	return NULL;
}
}

int file_sha256(const char *path, uint8_t out[32])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	SHA256_CTX ctx;
	unsigned char buf[16384];

	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	SHA256_Init(&ctx);
	for (;;) {
		ssize_t r = read(fd, buf, sizeof buf);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			OPENSSL_cleanse(buf, sizeof buf);
			return -1;
		}
		if (r == 0)
			break;
		SHA256_Update(&ctx, buf, (size_t)r);
	}
	close(fd);
	OPENSSL_cleanse(buf, sizeof buf);
	SHA256_Final(out, &ctx);
	return 1;
}

int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, mode) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

static void wipe_file(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	static const unsigned char zeros[4096];

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		off_t left = st.st_size;

		while (left > 0) {
			size_t n = left > (off_t)sizeof zeros ? sizeof zeros : (size_t)left;

			if (write_all(fd, zeros, n) != 0)
				break;
			left -= (off_t)n;
		}
		(void)fsync(fd);
	}
	close(fd);
}

static int remove_at(int parent, const char *name, int depth)
{
	int fd;
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (depth > 8) {
		errno = ELOOP;
		return -1;
	}
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d))) {
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (remove_at(fd, de->d_name, depth + 1) != 0)
				rc = -1;
			continue;
		}
		if (S_ISREG(st.st_mode))
			wipe_file(fd, de->d_name);
		if (unlinkat(fd, de->d_name, 0) != 0)
			rc = -1;
	}
	closedir(d);
	if (unlinkat(parent, name, AT_REMOVEDIR) != 0)
		rc = -1;
	return rc;
}

int remove_tree_wiped(const char *dir)
{
	int rc = remove_at(AT_FDCWD, dir, 0);

	(void)fsync_dir_of(dir);
	return rc;
}

int unlink_wiped(const char *path)
{
	wipe_file(AT_FDCWD, path);
	if (unlink(path) != 0)
		return errno == ENOENT ? 0 : -1;
	(void)fsync_dir_of(path);
	return 0;
}
