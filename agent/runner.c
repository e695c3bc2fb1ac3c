#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

void argv_render(const char *const *argv, char *out, size_t outlen)
{
	size_t o = 0;

	out[0] = 0;
	for (size_t i = 0; argv && argv[i] && o + 1 < outlen; i++) {
		int n = snprintf(out + o, outlen - o, "%s%s", i ? " " : "", argv[i]);

		if (n < 0)
			break;
		o += (size_t)n;
	}
	if (o >= outlen && outlen > 4)
		memcpy(out + outlen - 4, "...", 4);
}

static void keep(struct run_result *r, const char *p, size_t n)
{
	size_t room = RUN_OUTPUT_MAX - r->output_len;

	if (n > room) {
		r->truncated = 1;
		n = room;
	}
	memcpy(r->output + r->output_len, p, n);
	r->output_len += n;
	r->output[r->output_len] = 0;
}

/* In the child: stdio on the pipe, nothing else inherited, then exec. */
static void child(const char *const *argv, int out_fd)
{
	const char *path = getenv("PATH");
	char pathvar[4096];
	char *envp[3];
	int devnull = open("/dev/null", O_RDONLY);
	int keepfd[1];

	snprintf(pathvar, sizeof pathvar, "PATH=%s", path && *path ? path : DEFAULT_PATH);
	envp[0] = pathvar;
	envp[1] = "LC_ALL=C";
	envp[2] = NULL;
	if (devnull >= 0 && devnull != STDIN_FILENO) {
		dup2(devnull, STDIN_FILENO);
		close(devnull);
	}
	if (dup2(out_fd, STDOUT_FILENO) < 0 || dup2(out_fd, STDERR_FILENO) < 0)
		_exit(127);
	if (out_fd > STDERR_FILENO)
		close(out_fd);
	keepfd[0] = -1;
	close_fds_except(keepfd, 0);
	/* its own process group, so a timeout kills what it started too */
	setpgid(0, 0);
	{
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
	}
	execvpe(argv[0], (char *const *)argv, envp);
	dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int run_command(const char *const *argv, uint64_t timeout_ms, struct run_result *r)
{
	int pfd[2], status = 0, reaped = 0, eof = 0;
	uint64_t deadline = now_ms() + (timeout_ms ? timeout_ms : 60000), linger = 0;
	pid_t pid;

	memset(r, 0, sizeof *r);
	if (!argv || !argv[0] || !argv[0][0]) {
		keep(r, "no command", 10);
		r->exec_failed = 1;
		r->exit_status = 127;
		return -1;
	}
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		snprintf(r->output, sizeof r->output, "cannot run %s: pipe: %s", argv[0], strerror(errno));
		r->output_len = strlen(r->output);
		r->exec_failed = 1;
		r->exit_status = 127;
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		snprintf(r->output, sizeof r->output, "cannot run %s: fork: %s", argv[0], strerror(errno));
		r->output_len = strlen(r->output);
		r->exec_failed = 1;
		r->exit_status = 127;
		return -1;
	}
	if (pid == 0) {
		close(pfd[0]);
		child(argv, pfd[1]);
	}
	close(pfd[1]);
	setpgid(pid, pid); /* also here: no race with the child's own call */
	for (;;) {
		uint64_t now = now_ms();
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		int wait_ms;

		if (!reaped) {
			pid_t w = waitpid(pid, &status, WNOHANG);

			if (w == pid) {
				reaped = 1;
				/* a daemon it left behind may hold the pipe: read
				 * what is there, briefly */
				linger = now + 200;
			}
		}
		if (eof && reaped)
			break;
		if (reaped && now >= linger)
			break;
		if (!reaped && now >= deadline) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			reaped = 1;
			r->timed_out = 1;
			break;
		}
		if (eof) {
			/* output closed, process still running: wait in small steps */
			struct timespec ts = {0, 10 * 1000 * 1000};

			nanosleep(&ts, NULL);
			continue;
		}
		wait_ms = reaped ? (int)(linger - now) : (int)(deadline - now > 50 ? 50 : deadline - now);
		if (poll(&p, 1, wait_ms < 1 ? 1 : wait_ms) > 0) {
			char buf[4096];
			ssize_t n = read(pfd[0], buf, sizeof buf);

			if (n > 0)
				keep(r, buf, (size_t)n);
			else if (n == 0 || (errno != EINTR && errno != EAGAIN))
				eof = 1;
		}
	}
	close(pfd[0]);
	if (r->timed_out) {
		char msg[128];
		int n = snprintf(msg, sizeof msg, "%s[killed after %llums]", r->output_len ? "\n" : "",
				 (unsigned long long)(timeout_ms ? timeout_ms : 60000));

		/* the note goes in even when the output filled the buffer */
		if (r->output_len + (size_t)n > RUN_OUTPUT_MAX)
			r->output_len = RUN_OUTPUT_MAX - (size_t)n;
		memcpy(r->output + r->output_len, msg, (size_t)n + 1);
		r->output_len += (size_t)n;
		r->exit_status = 128 + SIGKILL;
		r->signaled = 1;
		return 1;
	}
	if (WIFEXITED(status)) {
		r->exit_status = WEXITSTATUS(status);
		if (r->exit_status == 127 && strncmp(r->output, "cannot run ", 11) == 0) {
			r->exec_failed = 1;
			return -1;
		}
		return r->exit_status == 0 ? 0 : 1;
	}
	r->signaled = 1;
	r->exit_status = 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return 1;
}
