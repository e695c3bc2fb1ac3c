/* Files the agent writes: always atomically (a temporary file in the same
 * directory, fsync, rename, fsync of the directory), so a crash leaves either
 * the old or the new content, never a mix. */
#ifndef CERTWARD_AGENT_FSUTIL_H
#define CERTWARD_AGENT_FSUTIL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Owner and mode to give a file; set = 0 means "keep the existing file's,
 * or the default mode and our own ids for a new file". */
struct file_meta {
	int set;
	mode_t mode;
	uid_t uid;
	gid_t gid;
};

/* Replaces PATH with DATA[0..len). The existing file's owner and mode are
 * kept unless META says otherwise; a new file gets NEW_MODE. 0, or -1 with
 * WHY (never the content). */
int atomic_write(const char *path, const void *data, size_t len, mode_t new_mode,
		 const struct file_meta *meta, char *why, size_t whylen);

/* J (NULL: out of memory) as compact JSON into PATH, mode 0600, with
 * atomic_write(): the agent's own state files. 0, or -1 with WHY. */
int atomic_write_json(const char *path, const json_t *j, char *why, size_t whylen);

/* fsync of the directory holding PATH (or of PATH itself when it is one). */
int fsync_dir_of(const char *path);
int fsync_dir(const char *dir);

/* Reads at most MAX bytes of PATH into a NUL-terminated buffer: NULL with
 * errno (EFBIG when larger) on failure. */
char *read_file_max(const char *path, size_t max, size_t *len);

/* SHA-256 of PATH's content: 1 with OUT set, 0 when the file does not exist,
 * -1 on another error. */
int file_sha256(const char *path, uint8_t out[32]);

/* mkdir -p with MODE for the directories it creates: 0 or -1 (errno). */
int mkdir_p(const char *path, mode_t mode);

/* Removes DIR and everything under it; every regular file is overwritten
 * with zeros and synced first (a job's files hold its key and backups of
 * keys), so a key does not linger in the freed blocks. */
int remove_tree_wiped(const char *dir);

/* Overwrites PATH with zeros, syncs, and removes it: 0 or -1. */
int unlink_wiped(const char *path);

/* Overwrites a heap buffer before freeing it. */
void free_wiped(void *p, size_t len);

#endif
