#include "harden.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sched.h>
#include <unistd.h>

#include "build_config.h"

/* What any libuv event-loop process needs: memory, time, signals, its
 * inherited channels, files, threads of its own. */
static const int base_syscalls[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(close), SCMP_SYS(close_range),
	SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(lseek),
	SCMP_SYS(openat), SCMP_SYS(getdents64), SCMP_SYS(readlink), SCMP_SYS(readlinkat),
	SCMP_SYS(faccessat), SCMP_SYS(faccessat2), SCMP_SYS(access),
	SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(ftruncate), SCMP_SYS(flock),
	SCMP_SYS(renameat), SCMP_SYS(renameat2), SCMP_SYS(rename), SCMP_SYS(unlink),
	SCMP_SYS(unlinkat), SCMP_SYS(mkdirat), SCMP_SYS(fchmod),
	SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mprotect), SCMP_SYS(mremap),
	SCMP_SYS(brk), SCMP_SYS(madvise), SCMP_SYS(mlock), SCMP_SYS(munlock),
	SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),
	SCMP_SYS(sigaltstack), SCMP_SYS(tgkill), SCMP_SYS(tkill),
	SCMP_SYS(fcntl), SCMP_SYS(dup), SCMP_SYS(dup2), SCMP_SYS(dup3), SCMP_SYS(pipe2),
	SCMP_SYS(eventfd2), SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl),
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_pwait2),
	SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(futex),
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(clock_nanosleep),
	SCMP_SYS(nanosleep), SCMP_SYS(gettimeofday), SCMP_SYS(time),
	SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getppid), SCMP_SYS(getuid),
	SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid), SCMP_SYS(getrandom),
	SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(sched_yield),
	SCMP_SYS(sched_getaffinity), SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
	SCMP_SYS(uname), SCMP_SYS(sysinfo), SCMP_SYS(prlimit64), SCMP_SYS(getrlimit),
	SCMP_SYS(getrusage), SCMP_SYS(membarrier),
	/* anonymous memory as a file: large payloads passed along IPC (CRLs) */
	SCMP_SYS(memfd_create),
	/* IPC over the inherited AF_UNIX channels */
	SCMP_SYS(sendmsg), SCMP_SYS(recvmsg), SCMP_SYS(sendto), SCMP_SYS(recvfrom),
	SCMP_SYS(shutdown), SCMP_SYS(getsockopt), SCMP_SYS(setsockopt),
	SCMP_SYS(getsockname), SCMP_SYS(getpeername),
};

static const int net_client_syscalls[] = {
	SCMP_SYS(socket), SCMP_SYS(connect), SCMP_SYS(bind),
	/* glibc's resolver sends its A and AAAA queries together */
	SCMP_SYS(sendmmsg),
};

static const int accept_syscalls[] = {
	SCMP_SYS(accept), SCMP_SYS(accept4),
};

static const int exec_syscalls[] = {
	SCMP_SYS(execve), SCMP_SYS(execveat), SCMP_SYS(wait4), SCMP_SYS(waitid),
	SCMP_SYS(vfork), SCMP_SYS(kill),
	/* a filter outlives exec: what the programs run (DNS hooks: sh, curl,
	 * nsupdate) and libuv's child set-up before exec need */
	SCMP_SYS(setsid), SCMP_SYS(setpgid), SCMP_SYS(getpgid), SCMP_SYS(getpgrp),
	SCMP_SYS(arch_prctl), SCMP_SYS(set_tid_address), SCMP_SYS(prctl),
	SCMP_SYS(chdir), SCMP_SYS(fchdir), SCMP_SYS(getcwd), SCMP_SYS(umask),
	SCMP_SYS(open), SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(statfs), SCMP_SYS(fstatfs),
	SCMP_SYS(pipe), SCMP_SYS(socketpair), SCMP_SYS(getdents), SCMP_SYS(getresuid),
	SCMP_SYS(getresgid), SCMP_SYS(getgroups), SCMP_SYS(getpriority), SCMP_SYS(alarm),
	SCMP_SYS(setitimer), SCMP_SYS(getitimer), SCMP_SYS(rt_sigsuspend), SCMP_SYS(rt_sigtimedwait),
	SCMP_SYS(pause), SCMP_SYS(select), SCMP_SYS(pselect6), SCMP_SYS(epoll_create),
	SCMP_SYS(mkdir), SCMP_SYS(rmdir), SCMP_SYS(chmod), SCMP_SYS(fchmodat), SCMP_SYS(utimensat),
	SCMP_SYS(fchown), SCMP_SYS(symlink), SCMP_SYS(link), SCMP_SYS(fadvise64), SCMP_SYS(sendfile),
	SCMP_SYS(copy_file_range), SCMP_SYS(timerfd_create), SCMP_SYS(timerfd_settime),
	SCMP_SYS(signalfd4), SCMP_SYS(sched_setaffinity), SCMP_SYS(get_mempolicy),
	SCMP_SYS(clock_getres), SCMP_SYS(sendmmsg), SCMP_SYS(recvmmsg), SCMP_SYS(listen),
};

/* Sanitizer runtimes stop the world with ptrace from a helper task, read
 * /proc and may exec the symbolizer when they report. Test builds only. */
static const int sanitizer_syscalls[] = {
	SCMP_SYS(ptrace), SCMP_SYS(wait4), SCMP_SYS(waitid), SCMP_SYS(prctl),
	SCMP_SYS(execve), SCMP_SYS(pipe), SCMP_SYS(vfork), SCMP_SYS(open), SCMP_SYS(stat),
	SCMP_SYS(lstat), SCMP_SYS(getdents), SCMP_SYS(arch_prctl),
};

static void on_sigsys(int sig, siginfo_t *si, void *uctx)
{
	char line[160];
	int n;

	/* async-signal-safe: fixed buffer, one write, then die of the same signal */
	n = snprintf(line, sizeof line,
		     "seccomp: forbidden syscall %d, terminating\n",
		     si->si_syscall);
	if (n > 0)
		(void)!write(STDERR_FILENO, line, (size_t)n);
	signal(SIGSYS, SIG_DFL);
	raise(SIGSYS);
}

static int allow_all(scmp_filter_ctx ctx, const int *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (list[i] < 0)
			continue; /* not a syscall on this architecture */
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, list[i], 0) != 0)
			return -1;
	}
	return 0;
}

#define ALLOW(ctx, list) allow_all(ctx, list, sizeof list / sizeof list[0])

int harden_apply(const char *worker, unsigned flags, char *err, size_t errlen)
{
	scmp_filter_ctx ctx;
	struct sigaction sa;
	int rc = -1;

	if (flags & HARDEN_SECRETS) {
		struct rlimit nocore = {0, 0};

		if (setrlimit(RLIMIT_CORE, &nocore) != 0) {
			snprintf(err, errlen, "setrlimit(RLIMIT_CORE): %s", strerror(errno));
			return -1;
		}
#if !CERTWARD_SANITIZED
		/* LeakSanitizer needs to ptrace us at exit; elsewhere nobody may */
		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
			snprintf(err, errlen, "prctl(PR_SET_DUMPABLE): %s", strerror(errno));
			return -1;
		}
#endif
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, errlen, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
		return -1;
	}

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSYS, &sa, NULL);

	ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx) {
		snprintf(err, errlen, "seccomp_init failed");
		return -1;
	}
	/* the kernel audit log names every denied syscall, too */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1);
	if (ALLOW(ctx, base_syscalls) != 0)
		goto out;
	/* threads only: a new process needs HARDEN_EXEC */
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
			     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)) != 0)
		goto out;
	/* glibc falls back to clone() when clone3 is unavailable; clone3's flags
	 * live in memory seccomp cannot inspect */
	if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) != 0)
		goto out;
	if ((flags & HARDEN_NET_CLIENT) && ALLOW(ctx, net_client_syscalls) != 0)
		goto out;
	if ((flags & HARDEN_NET_ACCEPT) && ALLOW(ctx, accept_syscalls) != 0)
		goto out;
	if (flags & HARDEN_EXEC) {
		if (ALLOW(ctx, exec_syscalls) != 0 ||
		    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0)) != 0 ||
		    /* curl asks for the terminal's width, shells for its process group */
		    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				     SCMP_A1(SCMP_CMP_EQ, TIOCGWINSZ, 0)) != 0 ||
		    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				     SCMP_A1(SCMP_CMP_EQ, TIOCGPGRP, 0)) != 0)
			goto out;
	}
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
			     SCMP_A1(SCMP_CMP_EQ, FIONBIO, 0)) != 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
			     SCMP_A1(SCMP_CMP_EQ, FIOCLEX, 0)) != 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
			     SCMP_A1(SCMP_CMP_EQ, FIONREAD, 0)) != 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
			     SCMP_A1(SCMP_CMP_EQ, TCGETS, 0)) != 0)
		goto out;
#if CERTWARD_SANITIZED
	if (ALLOW(ctx, sanitizer_syscalls) != 0 ||
	    (!(flags & HARDEN_EXEC) &&
	     seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
			      SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0)) != 0))
		goto out;
#else
	(void)sanitizer_syscalls;
#endif
	if (seccomp_load(ctx) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		snprintf(err, errlen, "installing the seccomp filter of %s failed", worker);
	seccomp_release(ctx);
	return rc;
}
