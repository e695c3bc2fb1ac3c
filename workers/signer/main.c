/* certward-signer: the only process that holds private keys. It has no
 * network, no database and cannot exec; it reaches nothing but its channels
 * and its key directory. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "harden.h"
#include "log.h"
#include "worker.h"

struct signer {
	int key_dir_fd;
};

static struct signer signer = {.key_dir_fd = -1};

/* The key directory must be ours alone: anything else means someone else
 * could read or plant keys. */
static int open_key_dir(const char *path)
{
	struct stat st;
	int fd;

	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		log_error("cannot create key directory %s: %s", path, strerror(errno));
		return -1;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		log_error("cannot open key directory %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 077)) {
		log_error("key directory %s must be owned by uid %u with mode 0700",
			  path, (unsigned)geteuid());
		close(fd);
		return -1;
	}
	return fd;
}

static int signer_init(struct worker *w, const struct cfg *section)
{
	const char *dir = cfg_str(section, "signer", "key_dir");

	if (!dir || !*dir) {
		log_error("signer.key_dir is not set");
		return -1;
	}
	umask(077);
	signer.key_dir_fd = open_key_dir(dir);
	return signer.key_dir_fd < 0 ? -1 : 0;
}

static void signer_stop(struct worker *w)
{
	if (signer.key_dir_fd >= 0)
		close(signer.key_dir_fd);
	signer.key_dir_fd = -1;
}

static const struct worker_ops ops = {
	.role = IPC_ROLE_SIGNER,
	.summary = "certward-signer: holds CA, OCSP and TLS private keys and makes every signature.",
	.harden = HARDEN_SECRETS,
	.init = signer_init,
	.stop = signer_stop,
};

int main(int argc, char **argv)
{
	return worker_main(argc, argv, &ops);
}
