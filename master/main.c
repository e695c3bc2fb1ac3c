/* certwardd: the master. Reads the configuration, forks the workers, wires
 * them together, files their logs and serves the control socket. It holds no
 * key, no database connection and no network listener. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "build_config.h"
#include "log.h"
#include "master.h"

struct master M;

extern char **environ;

static void usage(FILE *out)
{
	fprintf(out,
		"usage: certwardd [-c FILE] [-f] [--check-config]\n"
		"       certwardd migrate [-c FILE] [--status]\n"
		"       certwardd --version | --help\n"
		"\n"
		"  -c, --config FILE   configuration file (default /etc/certward/certward.yml)\n"
		"  -f, --foreground    also echo every log line to stderr\n"
		"      --check-config  validate the configuration and exit\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          print this help and exit\n"
		"\n"
		"certwardd migrate applies the pending database migrations and exits (the\n"
		"store also applies them at start unless store.migrate_on_start is false);\n"
		"with --status it lists every migration (version, name, applied or pending,\n"
		"applied at, checksum ok / CHANGED / unknown-to-this-binary) and changes\n"
		"nothing. Exit status: 0 done and consistent, 65 a CHANGED checksum or a\n"
		"migration unknown to this binary, 69 PostgreSQL unreachable, 78 bad\n"
		"configuration, 1 other failures.\n"
		"\n"
		"Signals: TERM/INT stop, HUP reloads the configuration, USR1 reopens log files.\n");
}

static void on_signal(uv_signal_t *h, int sig)
{
	char msg[1024];

	switch (sig) {
	case SIGTERM:
	case SIGINT:
		log_info("SIG%s received: shutting down", sigabbrev_np(sig));
		supervisor_shutdown();
		break;
	case SIGHUP:
		log_info("SIGHUP received: reloading %s", M.config_path);
		supervisor_reload(msg, sizeof msg);
		break;
	case SIGUSR1:
		logs_reopen();
		break;
	}
}

static int lookup_user(const char *key, const char *name, uid_t *uid, gid_t *gid)
{
	struct passwd *pw = getpwnam(name);

	if (!pw) {
		fprintf(stderr, "certwardd: %s: master.%s: no such user '%s' (create it, or set "
			"master.%s)\n", M.config_path, key, name, key);
		return -1;
	}
	if (pw->pw_uid == 0) {
		fprintf(stderr, "certwardd: %s: master.%s: workers must not run as root\n",
			M.config_path, key);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

/* Directories the workers need, with the ownership they expect. */
static int make_dir(const char *path, mode_t mode, uid_t uid, gid_t gid, bool chown_it)
{
	if (mkdir(path, mode) != 0) {
		if (errno == EEXIST)
			return 0;
		fprintf(stderr, "certwardd: cannot create %s: %s\n", path, strerror(errno));
		return -1;
	}
	/* the umask must not decide who can traverse it */
	if (chmod(path, mode) != 0 || (chown_it && chown(path, uid, gid) != 0)) {
		fprintf(stderr, "certwardd: cannot set owner or mode of %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int prepare(void)
{
	const struct cfg *c = M.cfg;
	char key_dir[1100], run_dir[200];
	char *slash;
	const char *exe[] = {"certward-api", "certward-store", "certward-signer",
			     "certward-scheduler", "certward-deploy", "certward-notifier"};

	snprintf(M.libexec, sizeof M.libexec, "%s", cfg_str(c, "master", "libexec_dir"));
	for (size_t i = 0; i < sizeof exe / sizeof exe[0]; i++) {
		char path[1100];

		snprintf(path, sizeof path, "%s/%s", M.libexec, exe[i]);
		if (access(path, X_OK) != 0) {
			fprintf(stderr, "certwardd: %s: master.libexec_dir: %s: %s\n",
				M.config_path, path, strerror(errno));
			return -1;
		}
	}
	M.as_root = geteuid() == 0;
	if (M.as_root) {
		if (lookup_user("user", cfg_str(c, "master", "user"), &M.uid, &M.gid) != 0 ||
		    lookup_user("signer_user", cfg_str(c, "master", "signer_user"), &M.signer_uid,
				&M.signer_gid) != 0)
			return -1;
		if (M.uid == M.signer_uid) {
			fprintf(stderr, "certwardd: %s: master.signer_user must differ from master.user\n",
				M.config_path);
			return -1;
		}
	}
	/* 0711: the signer (another user) must reach its key directory below */
	if (make_dir(cfg_str(c, "master", "state_dir"), 0711, M.uid, M.gid, M.as_root) != 0)
		return -1;
	signer_dir(c, "key_dir", key_dir, sizeof key_dir);
	if (make_dir(key_dir, 0700, M.signer_uid, M.signer_gid, M.as_root) != 0)
		return -1;
	/* public certificates: written by the signer, read by anyone */
	signer_dir(c, "cert_dir", key_dir, sizeof key_dir);
	if (make_dir(key_dir, 0755, M.signer_uid, M.signer_gid, M.as_root) != 0)
		return -1;
	/* the notifier's key pair, unless it is kept elsewhere */
	if (!cfg_is_set(c, "notifier", "key_file")) {
		snprintf(key_dir, sizeof key_dir, "%s/notifier", cfg_str(c, "master", "state_dir"));
		if (make_dir(key_dir, 0700, M.uid, M.gid, M.as_root) != 0)
			return -1;
	}
	snprintf(run_dir, sizeof run_dir, "%s", cfg_str(c, "master", "control_socket"));
	slash = strrchr(run_dir, '/');
	if (slash && slash != run_dir) {
		*slash = '\0';
		if (make_dir(run_dir, 0755, 0, 0, false) != 0)
			return -1;
	}
	return 0;
}

/* ---- certwardd migrate ---- */

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Runs certward-store --migrate[=status] as the store would run (the service
 * user when we are root), with the store's section on its stdin: the
 * connection string is a secret and never goes on a command line or into the
 * environment. Its stdout and stderr are ours; its exit status becomes ours.
 */
static int run_store_migrate(bool status)
{
	char path[1100], *section;
	char *argv[3];
	char *env[8];
	size_t len, nenv = 0;
	int in[2], wstatus;
	pid_t pid;
	static const char *const passthrough[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
						  "TZ", NULL};
	static char envbuf[4][1024];

	snprintf(path, sizeof path, "%s/certward-store", cfg_str(M.cfg, "master", "libexec_dir"));
	if (access(path, X_OK) != 0) {
		fprintf(stderr, "certwardd: %s: master.libexec_dir: %s: %s\n", M.config_path, path,
			strerror(errno));
		return 78;
	}
	if (geteuid() == 0 && lookup_user("user", cfg_str(M.cfg, "master", "user"), &M.uid, &M.gid) != 0)
		return 78;
	section = section_for(M.cfg, IPC_ROLE_STORE, &len);
	if (!section || pipe2(in, O_CLOEXEC) != 0) {
		fprintf(stderr, "certwardd: cannot prepare the store's configuration: %s\n", strerror(errno));
		free(section);
		return 1;
	}
	env[nenv++] = (char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	for (size_t i = 0; passthrough[i]; i++) {
		const char *v = getenv(passthrough[i]);

		if (v) {
			snprintf(envbuf[i], sizeof envbuf[i], "%s=%s", passthrough[i], v);
			env[nenv++] = envbuf[i];
		}
	}
	env[nenv] = NULL;
	argv[0] = path;
	argv[1] = (char *)(status ? "--migrate=status" : "--migrate");
	argv[2] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "certwardd: fork: %s\n", strerror(errno));
		explicit_bzero(section, len);
		free(section);
		close(in[0]);
		close(in[1]);
		return 1;
	}
	if (pid == 0) {
		if (dup2(in[0], STDIN_FILENO) < 0)
			_exit(127);
		if (geteuid() == 0 &&
		    (setgroups(0, NULL) != 0 || setgid(M.gid) != 0 || setuid(M.uid) != 0)) {
			fprintf(stderr, "certwardd: cannot become the store's user: %s\n", strerror(errno));
			_exit(127);
		}
		execve(path, argv, env);
		fprintf(stderr, "certwardd: cannot run %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(in[0]);
	if (write_all(in[1], section, len) != 0)
		fprintf(stderr, "certwardd: cannot hand the configuration to the store: %s\n",
			strerror(errno));
	close(in[1]);
	explicit_bzero(section, len);
	free(section);
	while (waitpid(pid, &wstatus, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "certwardd: waitpid: %s\n", strerror(errno));
			return 1;
		}
	}
	if (WIFSIGNALED(wstatus)) {
		fprintf(stderr, "certwardd: certward-store --migrate killed by SIG%s\n",
			sigabbrev_np(WTERMSIG(wstatus)) ? sigabbrev_np(WTERMSIG(wstatus)) : "?");
		return 1;
	}
	return WEXITSTATUS(wstatus);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"foreground", no_argument, NULL, 'f'},
		{"check-config", no_argument, NULL, 'C'},
		{"status", no_argument, NULL, 'S'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct cfg_error err;
	char line[1024];
	bool check_only = false, migrate = false, status = false;
	int opt, rc;

	M.config_path = "/etc/certward/certward.yml";
	while ((opt = getopt_long(argc, argv, "c:fVh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': M.config_path = optarg; break;
		case 'f': M.foreground = true; break;
		case 'C': check_only = true; break;
		case 'S': status = true; break;
		case 'V': printf("certwardd %s\n", CERTWARD_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 64;
		}
	}
	/* the one subcommand: certwardd [-c FILE] migrate [--status] */
	if (optind + 1 == argc && strcmp(argv[optind], "migrate") == 0) {
		migrate = true;
		optind++;
	}
	if (optind != argc || (status && !migrate) || (migrate && check_only)) {
		usage(stderr);
		return 64;
	}
	log_init("master");
	if (cfg_load(M.config_path, environ, &M.cfg, &err) != 0) {
		cfg_error_format(&err, line, sizeof line);
		fprintf(stderr, "certwardd: %s\n", line);
		return 78; /* EX_CONFIG */
	}
	if (check_only) {
		printf("%s: configuration OK\n", M.config_path);
		cfg_free(M.cfg);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	if (migrate) {
		rc = run_store_migrate(status);
		cfg_free(M.cfg);
		return rc;
	}
	umask(027);
	if (prepare() != 0 || logs_open(cfg_str(M.cfg, "master", "log_dir")) != 0) {
		cfg_free(M.cfg);
		return 78;
	}
	log_set_sink(logs_master_sink);

	M.loop = uv_default_loop();
	if (control_open(cfg_str(M.cfg, "master", "control_socket"), line, sizeof line) != 0) {
		fprintf(stderr, "certwardd: %s\n", line);
		cfg_free(M.cfg);
		return 1;
	}
	uv_signal_init(M.loop, &M.sig_term);
	uv_signal_init(M.loop, &M.sig_int);
	uv_signal_init(M.loop, &M.sig_hup);
	uv_signal_init(M.loop, &M.sig_usr1);
	uv_signal_start(&M.sig_term, on_signal, SIGTERM);
	uv_signal_start(&M.sig_int, on_signal, SIGINT);
	uv_signal_start(&M.sig_hup, on_signal, SIGHUP);
	uv_signal_start(&M.sig_usr1, on_signal, SIGUSR1);

	log_info("certwardd %s starting (config %s, control socket %s, logs in %s)",
		 CERTWARD_VERSION, M.config_path, cfg_str(M.cfg, "master", "control_socket"),
		 cfg_str(M.cfg, "master", "log_dir"));
	supervisor_start();
	uv_run(M.loop, UV_RUN_DEFAULT);
	log_info("certwardd stopped");
	log_set_sink(NULL);
	logs_close();
	uv_loop_close(M.loop);
	cfg_free(M.cfg);
	return M.exit_code;
}
