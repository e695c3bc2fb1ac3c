/*
 * The first admin API key. Once the store is up, the master makes a key
 * (lib/apikey.h) and asks the store to record its salted hash as
 * "bootstrap-admin" unless an admin key that is not revoked exists
 * (apikeys.bootstrap, callable by the master only). When it was recorded,
 * the key is written to <state_dir>/admin-api-key (mode 0600, never
 * overwritten) for the operator to take; it never reaches a log line, and
 * the secret never reaches another process. While the schema is not ready
 * or PostgreSQL is away, the master asks again later.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apikey.h"
#include "log.h"
#include "master.h"
#include "store_wire.h"
#include "util.h"

#define RETRY_MIN_MS 500
#define RETRY_MAX_MS 30000

static struct {
	bool done, asking, timer_ready;
	unsigned generation; /* of the store process asked */
	uint64_t retry_ms;
	uv_timer_t timer;
	struct apikey_made made;
} B;

static void ask(void);

static void key_path(char *out, size_t len)
{
	snprintf(out, len, "%s/admin-api-key", cfg_str(M.cfg, "master", "state_dir"));
}

static void forget_key(void)
{
	apikey_made_clear(&B.made);
}

static void on_timer(uv_timer_t *t)
{
	ask();
}

static void again(void)
{
	forget_key();
	B.retry_ms = B.retry_ms ? B.retry_ms * 2 : RETRY_MIN_MS;
	if (B.retry_ms > RETRY_MAX_MS)
		B.retry_ms = RETRY_MAX_MS;
	uv_timer_start(&B.timer, on_timer, B.retry_ms, 0);
}

static void write_key(void)
{
	char path[1100];
	int fd;

	key_path(path, sizeof path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, B.made.text, strlen(B.made.text)) != (ssize_t)strlen(B.made.text) ||
	    write(fd, "\n", 1) != 1) {
		log_error("bootstrap admin API key %s was recorded but cannot be written to %s (%s): "
			  "revoke it and make another with certward apikey create", B.made.key.prefix, path,
			  strerror(errno));
	} else {
		log_info("bootstrap admin API key %s written to %s (mode 0600): keep it safe, then "
			 "delete the file", B.made.key.prefix, path);
	}
	if (fd >= 0)
		close(fd);
}

static void on_reply(int status, struct ipc_msg *m, int fd, void *arg)
{
	if (fd >= 0)
		close(fd);
	B.asking = false;
	if (M.shutting_down) {
		forget_key();
		return;
	}
	if (status == 0 && m->type == IPC_T_STORE_RESULT) {
		B.done = true;
		if (m->u.store_result.status == STORE_OK)
			write_key();
		else
			log_debug("an admin API key exists: no bootstrap key made");
		forget_key();
		return;
	}
	if (status == 0 && m->type == IPC_T_ERROR && m->u.error.code == EIO &&
	    strstr(m->u.error.message, "23505")) {
		B.done = true; /* another node made it at the same moment */
		forget_key();
		return;
	}
	if (status == 0 && m->type == IPC_T_ERROR && m->u.error.code != EAGAIN &&
	    m->u.error.code != ENOTCONN && m->u.error.code != EBUSY) {
		log_warn("cannot make the bootstrap admin API key: %s", m->u.error.message);
		B.done = true;
		forget_key();
		return;
	}
	again(); /* schema not ready, database away, or no answer in time */
}

static void ask(void)
{
	struct slot *store = NULL;
	uint8_t *buf = NULL;
	size_t len;
	const char *params[4];
	struct ipc_msg m = {.type = IPC_T_STORE_CALL};

	if (B.done || B.asking || M.shutting_down)
		return;
	for (size_t i = 0; i < M.nslots; i++)
		if (M.slots[i].role == IPC_ROLE_STORE && M.slots[i].state == SLOT_RUNNING &&
		    M.slots[i].control)
			store = &M.slots[i];
	if (!store)
		return; /* asked again when the store is ready */
	if (!apikey_make(&B.made)) {
		log_error("no randomness for the bootstrap admin API key");
		return;
	}
	params[0] = "bootstrap-admin";
	params[1] = B.made.salt_hex;
	params[2] = B.made.hash_hex;
	params[3] = B.made.key.prefix;
	if (store_params_encode(params, 4, &buf, &len) != 0) {
		forget_key();
		return;
	}
	m.u.store_call.op = "apikeys.bootstrap";
	m.u.store_call.params.ptr = buf;
	m.u.store_call.params.len = (uint32_t)len;
	B.generation = store->generation;
	if (ipc_request(store->control, &m, -1, cfg_duration_ms(M.cfg, "master", "ipc_timeout"),
			on_reply, NULL) == 0)
		B.asking = true;
	else
		again();
	free(buf);
}

void bootstrap_store_ready(void)
{
	char path[1100];

	if (!B.timer_ready) {
		uv_timer_init(M.loop, &B.timer);
		B.timer_ready = true;
	}
	key_path(path, sizeof path);
	if (!B.done && access(path, F_OK) == 0) {
		/* left from an earlier start: the operator has not taken it yet */
		log_info("%s exists: keep the key it holds safe, then delete the file", path);
		B.done = true;
	}
	B.retry_ms = 0;
	ask();
}

void bootstrap_stop(void)
{
	forget_key();
	if (B.timer_ready) {
		uv_timer_stop(&B.timer);
		uv_close((uv_handle_t *)&B.timer, NULL);
		B.timer_ready = false;
	}
}
