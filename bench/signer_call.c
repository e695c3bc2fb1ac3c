/*
 * Test and benchmark harness: plays certwardd and the api for a
 * certward-signer of its own, so that tests can send CERT_SIGN straight to
 * the signer, past every check the api makes, and bench/issue.sh can time
 * the signer alone.
 *
 *   signer_call [-n COUNT] SIGNER KEY_DIR CERT_DIR ISSUER_ID VALIDITY_S PROFILE.json CSR.der...
 *
 * Starts SIGNER with a control channel and an "api" channel, sends it its
 * configuration (key_dir, cert_dir), waits for READY, then sends one
 * CERT_SIGN per CSR: a signed certificate is written to CSR.der.crt (DER)
 * and reported as "signed SERIAL NOT_BEFORE NOT_AFTER"; a refusal as
 * "refused CODE: MESSAGE". With -n, each CSR is sent COUNT times, all of
 * them before the first answer is read (as many api connections would), and
 * a line "timed COUNT SECONDS" follows. Exit status: 0
 * all signed, 3 any refused, 1 the harness failed. The signer's log goes to
 * stderr.
 *
 *   signer_call [-n COUNT] --agent-id ID SIGNER KEY_DIR CERT_DIR VALIDITY_S CSR.der...
 *
 * sends AGENT_ID_SIGN for agent ID instead (VALIDITY_S 0: the signer's
 * agent_identity_lifetime), otherwise the same: CSR.der.crt and the
 * "signed" line (with the SHA-256 the signer reports as a fifth field), then
 * the certificate in PEM; the agent identity CA the signer answers with goes
 * to CSR.der.ca.crt.
 *
 *   signer_call --crl ENTRIES SIGNER KEY_DIR CERT_DIR ISSUER_ID OUT.der
 *
 * plays the scheduler instead: one CRL_SIGN of the issuing CA's CRL number 1
 * (valid for a day from now) announcing ENTRIES revoked certificates in a
 * memfd. Up to 1000 of them are real entries (serials 1..ENTRIES, revoked a
 * minute ago, keyCompromise); past that the memfd is ENTRIES records of
 * zeros, to cross the signer's bound. A signed CRL is written to OUT.der
 * and reported as "crl SHA256 DER_LEN"; a refusal as above.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codec.h"
#include "crl.h"
#include "util.h"

static int send_msg(int fd, struct ipc_msg *m)
{
	uint8_t *frame;
	size_t len;
	int rc;

	if (ipc_encode(m, &frame, &len) != 0)
		return -1;
	rc = fd_write_full(fd, frame, len);
	free(frame);
	return rc;
}

/* m with fd_pass along (SCM_RIGHTS with the frame's bytes, as a libuv IPC
 * pipe sends a handle) */
static int send_msg_fd(int fd, struct ipc_msg *m, int fd_pass)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr mh = {0};
	struct iovec iov;
	struct cmsghdr *c;
	uint8_t *frame;
	size_t len;
	ssize_t n;

	m->flags |= IPC_F_FD;
	if (ipc_encode(m, &frame, &len) != 0)
		return -1;
	memset(&ctl, 0, sizeof ctl);
	iov.iov_base = frame;
	iov.iov_len = len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof ctl.buf;
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd_pass, sizeof(int));
	n = sendmsg(fd, &mh, 0);
	if (n > 0 && (size_t)n < len)
		n = fd_write_full(fd, frame + n, len - (size_t)n) == 0 ? (ssize_t)len : -1;
	free(frame);
	return n == (ssize_t)len ? 0 : -1;
}

/* A memfd of `entries` wire records (workers/signer/crl.h): real ones up to
 * 1000, zeros past that. */
static int crl_memfd(unsigned long entries)
{
	int fd = memfd_create("crl-entries", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	struct crl_entry e = {.serial_len = 1, .revoked_at = (int64_t)time(NULL) - 60, .reason = 1 /* keyCompromise */};

	if (fd < 0 || ftruncate(fd, (off_t)(entries * CRL_ENTRY_WIRE)) != 0)
		goto fail;
	for (unsigned long i = 0; entries <= 1000 && i < entries; i++) {
		uint8_t rec[CRL_ENTRY_WIRE];
		unsigned long serial = i + 1;

		e.serial_len = serial > 0xff ? 2 : 1;
		e.serial[0] = (uint8_t)(serial >> (8 * (e.serial_len - 1)));
		e.serial[1] = (uint8_t)serial;
		crl_entry_pack(&e, rec);
		if (pwrite(fd, rec, sizeof rec, (off_t)(i * CRL_ENTRY_WIRE)) != (ssize_t)sizeof rec)
			goto fail;
	}
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

/* The next frame from a peer of role `role`, decoded. */
static int recv_msg(int fd, unsigned role, struct ipc_msg *m)
{
	uint8_t head[IPC_HEADER_LEN], *frame;
	struct ipc_header h;
	int rc;

	if (fd_read_full(fd, head, sizeof head) != 0 || ipc_header_decode(head, &h, role) != 0)
		return -1;
	frame = malloc(IPC_HEADER_LEN + h.len);
	if (!frame)
		return -1;
	memcpy(frame, head, sizeof head);
	rc = fd_read_full(fd, frame + IPC_HEADER_LEN, h.len) == 0 &&
			     ipc_decode(frame, IPC_HEADER_LEN + h.len, role, m) == 0
		     ? 0
		     : -1;
	free(frame);
	return rc;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = malloc(1 << 20);

	if (!f || !buf) {
		if (f)
			fclose(f);
		free(buf);
		return NULL;
	}
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

/* --crl: one CRL_SIGN as the scheduler; 0 signed, 3 refused, 1 failed */
static int crl_call(int fd, unsigned long entries, const char *issuer, const char *out)
{
	struct ipc_msg q = {.type = IPC_T_CRL_SIGN, .id = 20}, r;
	int memfd = crl_memfd(entries), rc = 1;
	uint64_t now = (uint64_t)time(NULL);

	if (memfd < 0) {
		perror("signer_call: memfd");
		return 1;
	}
	q.u.crl_sign.issuer_id = issuer;
	q.u.crl_sign.crl_number = 1;
	q.u.crl_sign.this_update = now;
	q.u.crl_sign.next_update = now + 86400;
	q.u.crl_sign.entries = (uint32_t)entries;
	q.u.crl_sign.intermediate_id = "";
	if (send_msg_fd(fd, &q, memfd) != 0 || recv_msg(fd, IPC_ROLE_SIGNER, &r) != 0) {
		fprintf(stderr, "signer_call: no answer to CRL_SIGN\n");
		close(memfd);
		return 1;
	}
	if (r.type == IPC_T_CRL_SIGNED) {
		uint8_t *der = malloc(r.u.crl_signed.der_len ? r.u.crl_signed.der_len : 1);
		FILE *f = fopen(out, "wb");

		if (der && f &&
		    pread(memfd, der, r.u.crl_signed.der_len, (off_t)r.u.crl_signed.der_offset) ==
			    (ssize_t)r.u.crl_signed.der_len &&
		    fwrite(der, 1, r.u.crl_signed.der_len, f) == r.u.crl_signed.der_len) {
			printf("crl %s %llu\n", r.u.crl_signed.sha256, (unsigned long long)r.u.crl_signed.der_len);
			rc = 0;
		}
		if (f)
			fclose(f);
		free(der);
	} else if (r.type == IPC_T_ERROR) {
		printf("refused %u: %s\n", r.u.error.code, r.u.error.message);
		rc = 3;
	} else {
		printf("unexpected %s\n", ipc_type_name(r.type));
	}
	fflush(stdout);
	ipc_msg_free(&r);
	close(memfd);
	return rc;
}

/* What the api sends with each CSR: AGENT_ID_SIGN when agent_id is set,
 * else CERT_SIGN. */
struct api_call {
	const char *agent_id;
	const char *issuer_id;
	uint64_t validity_seconds;
	const uint8_t *profile;
	size_t profile_len;
};

static void api_request(const struct api_call *c, const uint8_t *csr, size_t csr_len, struct ipc_msg *q)
{
	*q = (struct ipc_msg){.type = c->agent_id ? IPC_T_AGENT_ID_SIGN : IPC_T_CERT_SIGN};
	if (c->agent_id) {
		q->u.agent_id_sign.csr.ptr = csr;
		q->u.agent_id_sign.csr.len = (uint32_t)csr_len;
		q->u.agent_id_sign.agent_id = c->agent_id;
		q->u.agent_id_sign.validity_seconds = c->validity_seconds;
		return;
	}
	q->u.cert_sign.csr.ptr = csr;
	q->u.cert_sign.csr.len = (uint32_t)csr_len;
	q->u.cert_sign.profile.ptr = c->profile;
	q->u.cert_sign.profile.len = (uint32_t)c->profile_len;
	q->u.cert_sign.issuer_id = c->issuer_id;
	q->u.cert_sign.validity_seconds = c->validity_seconds;
}

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok = f && fwrite(data, 1, len, f) == len;

	if (f && fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

/* A signed answer for csr_path: CSR.der.crt, the "signed" line and, for an
 * agent identity, its PEM and CSR.der.ca.crt. 0, or -1. */
static int report_signed(const struct ipc_msg *r, const char *csr_path)
{
	const struct ipc_bytes *der = r->type == IPC_T_AGENT_ID_SIGNED ? &r->u.agent_id_signed.der : &r->u.cert_signed.der;
	char out[1200];
	int rc;

	snprintf(out, sizeof out, "%s.crt", csr_path);
	rc = write_file(out, der->ptr, der->len);
	if (r->type == IPC_T_CERT_SIGNED) {
		printf("signed %s %llu %llu\n", r->u.cert_signed.serial, (unsigned long long)r->u.cert_signed.not_before,
		       (unsigned long long)r->u.cert_signed.not_after);
	} else {
		const uint8_t *p = der->ptr;
		X509 *x = d2i_X509(NULL, &p, (long)der->len);

		printf("signed %s %llu %llu %s\n", r->u.agent_id_signed.serial,
		       (unsigned long long)r->u.agent_id_signed.not_before,
		       (unsigned long long)r->u.agent_id_signed.not_after, r->u.agent_id_signed.sha256);
		if (!x || !PEM_write_X509(stdout, x))
			rc = -1;
		X509_free(x);
		snprintf(out, sizeof out, "%s.ca.crt", csr_path);
		if (write_file(out, r->u.agent_id_signed.ca_pem.ptr, r->u.agent_id_signed.ca_pem.len) != 0)
			rc = -1;
	}
	return rc;
}

/* One request per CSR, count times each, as the api; 0 all signed, 3 any
 * refused, 1 failed */
static int api_calls(int fd, char **csrs, int ncsrs, long count, const struct api_call *call)
{
	struct timespec t0, t1;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < ncsrs && rc != 1; i++) {
		struct ipc_msg q;
		size_t csr_len;
		uint8_t *csr = slurp(csrs[i], &csr_len);

		if (!csr) {
			fprintf(stderr, "signer_call: cannot read %s\n", csrs[i]);
			rc = 1;
			break;
		}
		api_request(call, csr, csr_len, &q);
		for (long k = 0; k < count; k++) {
			q.id = (uint64_t)k + 10;
			if (send_msg(fd, &q) != 0) {
				fprintf(stderr, "signer_call: cannot send to the signer\n");
				rc = 1;
				break;
			}
		}
		free(csr);
		for (long k = 0; k < count && rc != 1; k++) {
			struct ipc_msg r;

			if (recv_msg(fd, IPC_ROLE_SIGNER, &r) != 0) {
				fprintf(stderr, "signer_call: no answer from the signer\n");
				rc = 1;
				break;
			}
			if ((r.type == IPC_T_CERT_SIGNED || r.type == IPC_T_AGENT_ID_SIGNED) && k != count - 1) {
				/* a repetition: only the last one is written and reported */
			} else if (r.type == IPC_T_CERT_SIGNED || r.type == IPC_T_AGENT_ID_SIGNED) {
				if (report_signed(&r, csrs[i]) != 0)
					rc = 1;
			} else if (r.type == IPC_T_ERROR) {
				printf("refused %u: %s\n", r.u.error.code, r.u.error.message);
				rc = rc ? rc : 3;
			} else {
				printf("unexpected %s\n", ipc_type_name(r.type));
				rc = 1;
			}
			fflush(stdout);
			ipc_msg_free(&r);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (count > 1)
		printf("timed %ld %.6f\n", count * ncsrs,
		       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return rc;
}

int main(int argc, char **argv)
{
	int ctl[2], api[2], sched[2], status, rc = 0;
	char section[2400];
	struct ipc_msg m = {0};
	uint8_t *profile = NULL;
	size_t profile_len = 0;
	pid_t pid;

	long count = 1, crl_entries = -1;
	struct api_call call = {0};
	int first_csr;

	while (argc > 2 && argv[1][0] == '-') {
		if (strcmp(argv[1], "-n") == 0)
			count = strtol(argv[2], NULL, 10);
		else if (strcmp(argv[1], "--crl") == 0)
			crl_entries = strtol(argv[2], NULL, 10);
		else if (strcmp(argv[1], "--agent-id") == 0)
			call.agent_id = argv[2];
		else
			break;
		argv += 2;
		argc -= 2;
	}
	/* the CSRs follow SIGNER KEY_DIR CERT_DIR VALIDITY_S (--agent-id) or
	 * SIGNER KEY_DIR CERT_DIR ISSUER_ID VALIDITY_S PROFILE.json */
	first_csr = call.agent_id ? 5 : 7;
	if ((crl_entries < 0 && (argc <= first_csr || count < 1)) ||
	    (crl_entries >= 0 && (argc != 6 || crl_entries > 0xffffffffL || call.agent_id || count != 1))) {
		fprintf(stderr, "usage: signer_call [-n COUNT] SIGNER KEY_DIR CERT_DIR ISSUER_ID VALIDITY_S PROFILE.json "
				"CSR.der...\n"
				"       signer_call [-n COUNT] --agent-id ID SIGNER KEY_DIR CERT_DIR VALIDITY_S CSR.der...\n"
				"       signer_call --crl ENTRIES SIGNER KEY_DIR CERT_DIR ISSUER_ID OUT.der\n");
		return 1;
	}
	if (crl_entries < 0 && !call.agent_id) {
		if (!(profile = slurp(argv[6], &profile_len))) {
			perror("signer_call");
			return 1;
		}
		call.issuer_id = argv[4];
		call.profile = profile;
		call.profile_len = profile_len;
	}
	if (crl_entries < 0)
		call.validity_seconds = strtoull(argv[call.agent_id ? 4 : 5], NULL, 10);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, ctl) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, api) != 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, sched) != 0) {
		perror("signer_call");
		return 1;
	}
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		dup2(null, 0);
		dup2(ctl[1], 3);
		dup2(api[1], 4);
		dup2(sched[1], 5);
		setenv("CERTWARD_WORKER_NAME", "signer", 1);
		setenv("CERTWARD_WORKER_FDS", "control=3,api=4,scheduler=5", 1);
		execl(argv[1], argv[1], (char *)NULL);
		perror("exec");
		_exit(127);
	}
	close(ctl[1]);
	close(api[1]);
	close(sched[1]);
	snprintf(section, sizeof section, "key_dir=%s\ncert_dir=%s\n", argv[2], argv[3]);
	m.type = IPC_T_CONFIG;
	m.id = 1;
	m.u.config.name = "signer";
	m.u.config.ipc_timeout_ms = 5000;
	m.u.config.section.ptr = (const uint8_t *)section;
	m.u.config.section.len = (uint32_t)strlen(section);
	if (send_msg(ctl[0], &m) != 0) {
		fprintf(stderr, "signer_call: cannot configure the signer\n");
		return 1;
	}
	for (;;) {
		struct ipc_msg r;

		if (recv_msg(ctl[0], IPC_ROLE_SIGNER, &r) != 0) {
			fprintf(stderr, "signer_call: the signer stopped before READY\n");
			waitpid(pid, &status, 0);
			return 1;
		}
		if (r.type == IPC_T_READY) {
			ipc_msg_free(&r);
			break;
		}
		ipc_msg_free(&r);
	}
	if (crl_entries >= 0)
		rc = crl_call(sched[0], (unsigned long)crl_entries, argv[4], argv[5]);
	else
		rc = api_calls(api[0], argv + first_csr, argc - first_csr, count, &call);
	m = (struct ipc_msg){.type = IPC_T_SHUTDOWN, .id = 2};
	send_msg(ctl[0], &m);
	close(api[0]);
	close(sched[0]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "signer_call: the signer did not stop cleanly (status %d)\n", status);
		rc = rc ? rc : 1;
	}
	free(profile);
	return rc;
}
