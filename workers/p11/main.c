/* certward-p11: loads a PKCS#11 module and holds the token's sessions for
 * the process that started it (the signer, or `certward ca`). The module
 * (outside code, often linked against a TLS library of its own) runs here
 * rather than in the signer; the key stays on the token, and only digests
 * come in and signatures go out. It ends when its control channel closes. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "p11.h"
#include "p11wire.h"

struct frame {
	struct p11w_hdr h;
	uint8_t data[P11W_DATA_MAX];
};

static struct p11_token *token;

static int recv_frame(int fd, struct frame *f)
{
	ssize_t n;

	do
		n = recv(fd, f, sizeof *f, 0);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	if ((size_t)n < sizeof f->h || f->h.len != (size_t)n - sizeof f->h)
		return -2;
	return 0;
}

static void reply(int fd, uint32_t status, uint32_t arg, const void *data, size_t len)
{
	struct frame f = {.h = {.op = status, .arg = arg, .len = (uint32_t)len}};

	if (len > P11W_DATA_MAX)
		len = f.h.len = 0;
	if (len)
		memcpy(f.data, data, len);
	(void)!send(fd, &f, sizeof f.h + len, MSG_NOSIGNAL);
	explicit_bzero(&f, sizeof f);
}

static void fail(int fd, const char *why)
{
	reply(fd, 1, 0, why, strlen(why));
}

/* one request of a session channel, or (control) of any kind */
static void serve(int fd, struct frame *f, int control)
{
	char why[400] = "";

	switch (f->h.op) {
	case P11W_SIGN: {
		uint8_t sig[P11_SIG_MAX];
		size_t len = sizeof sig;

		if (p11_sign(token, (enum p11_mech)(f->h.arg & 0xff), (int)(f->h.arg >> 8), f->data, f->h.len, sig,
			     &len, why, sizeof why) != 0)
			fail(fd, why);
		else
			reply(fd, 0, 0, sig, len);
		return;
	}
	case P11W_KEYTYPE:
		reply(fd, 0, (uint32_t)p11_key_type(token), NULL, 0);
		return;
	default:
		break;
	}
	if (!control) {
		fail(fd, "not on a session channel");
		return;
	}
	switch (f->h.op) {
	case P11W_CONNECT:
		if (p11_connect(token, f->h.arg, why, sizeof why) != 0)
			fail(fd, why);
		else
			reply(fd, 0, 0, NULL, 0);
		return;
	case P11W_DISCONNECT:
		f->data[f->h.len < P11W_DATA_MAX ? f->h.len : P11W_DATA_MAX - 1] = '\0';
		p11_disconnect(token, (const char *)f->data);
		reply(fd, 0, 0, NULL, 0);
		return;
	case P11W_READY: {
		int ready = p11_ready(token, why, sizeof why);

		reply(fd, 0, (uint32_t)ready, why, ready ? 0 : strlen(why));
		return;
	}
	case P11W_RETRY_DUE:
		reply(fd, 0, (uint32_t)p11_retry_due(token), NULL, 0);
		return;
	case P11W_PUBKEY: {
		uint8_t a1[1024], a2[1024], out[4 + sizeof a1 + sizeof a2];
		size_t l1 = sizeof a1, l2 = sizeof a2;
		int type;

		if (p11_public_key(token, &type, a1, &l1, a2, &l2, why, sizeof why) != 0) {
			fail(fd, why);
			return;
		}
		out[0] = (uint8_t)(l1 >> 8);
		out[1] = (uint8_t)l1;
		memcpy(out + 2, a1, l1);
		out[2 + l1] = (uint8_t)(l2 >> 8);
		out[3 + l1] = (uint8_t)l2;
		memcpy(out + 4 + l1, a2, l2);
		reply(fd, 0, (uint32_t)type, out, 4 + l1 + l2);
		return;
	}
	case P11W_GENERATE:
		f->data[f->h.len < P11W_DATA_MAX ? f->h.len : P11W_DATA_MAX - 1] = '\0';
		if (p11_generate(token, (const char *)f->data, why, sizeof why) != 0)
			fail(fd, why);
		else
			reply(fd, 0, 0, NULL, 0);
		return;
	case P11W_COUNTERS: {
		uint64_t v[3];

		p11_counters(token, &v[0], &v[1], &v[2]);
		reply(fd, 0, 0, v, sizeof v);
		return;
	}
	default:
		fail(fd, "unknown request");
	}
}

static void *session_thread(void *arg)
{
	int i = (int)(intptr_t)arg, fd = P11W_FIRST_FD + 1 + i;
	struct frame *f = malloc(sizeof *f);

	p11_bind_thread(token, i);
	while (f) {
		int rc = recv_frame(fd, f);

		if (rc == -1)
			break;
		if (rc == -2)
			fail(fd, "malformed request");
		else
			serve(fd, f, 0);
	}
	/* the client is gone: so are we */
	_exit(0);
}

/* CONFIG's fields, NUL-terminated one after another */
static int parse_config(struct frame *f, struct p11_config *c)
{
	const char *field[8];
	size_t off = 0;

	for (int i = 0; i < 8; i++) {
		const char *end = memchr(f->data + off, '\0', f->h.len - off);

		if (off >= f->h.len || !end)
			return -1;
		field[i] = (const char *)f->data + off;
		off = (size_t)((const uint8_t *)end - f->data) + 1;
	}
	c->module = field[0];
	c->token_label = field[1];
	c->slot = *field[2] ? strtol(field[2], NULL, 10) : -1;
	c->key_label = field[3];
	c->key_id = field[4];
	c->pin_file = field[5];
	c->pin_env = field[6];
	c->sessions = atoi(field[7]);
	return 0;
}

int main(void)
{
	struct rlimit nocore = {0, 0};
	struct frame *f = calloc(1, sizeof *f);
	struct p11_config c;
	char why[400];
	int control = P11W_FIRST_FD;

	/* a PIN lives here: no core dump, no ptrace by others */
	setrlimit(RLIMIT_CORE, &nocore);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (!f || recv_frame(control, f) != 0 || f->h.op != P11W_CONFIG) {
		fprintf(stderr, "certward-p11: started without a configuration (it is run by certward-signer "
				"and certward ca)\n");
		return 2;
	}
	if (parse_config(f, &c) != 0) {
		fail(control, "malformed configuration");
		return 2;
	}
	token = p11_token_new(&c, why, sizeof why);
	if (!token) {
		fail(control, why);
		return 1;
	}
	for (int i = 0; i < c.sessions; i++) {
		pthread_t th;

		if (pthread_create(&th, NULL, session_thread, (void *)(intptr_t)i) != 0) {
			fail(control, "cannot start the session threads");
			return 1;
		}
		pthread_detach(th);
	}
	reply(control, 0, 0, NULL, 0);
	for (;;) {
		int rc = recv_frame(control, f);

		if (rc == -1)
			break;
		if (rc == -2)
			fail(control, "malformed request");
		else
			serve(control, f, 1);
	}
	_exit(0);
}
