/* Spawning, wiring and supervising the workers. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "master.h"
#include "util.h"

/* Start order; stop order is the reverse phases below. */
static const unsigned start_order[] = {
	IPC_ROLE_STORE, IPC_ROLE_SIGNER, IPC_ROLE_NOTIFIER, IPC_ROLE_DEPLOY,
	IPC_ROLE_SCHEDULER, IPC_ROLE_API,
};

/* Front end first so nothing new comes in, the store last so everything
 * before it can still record what it finished. */
static const unsigned stop_phases[][3] = {
	{IPC_ROLE_API, 0, 0},
	{IPC_ROLE_SCHEDULER, 0, 0},
	{IPC_ROLE_DEPLOY, IPC_ROLE_NOTIFIER, 0},
	{IPC_ROLE_SIGNER, 0, 0},
	{IPC_ROLE_STORE, 0, 0},
};
#define NPHASES (sizeof stop_phases / sizeof stop_phases[0])

static const struct {
	unsigned a, b;
} edges[] = {
#define IPC_EDGE(A, B) {IPC_ROLE_##A, IPC_ROLE_##B},
#include "wiring.def"
#undef IPC_EDGE
};

static bool wired(unsigned a, unsigned b)
{
	for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
		if ((edges[i].a == a && edges[i].b == b) || (edges[i].a == b && edges[i].b == a))
			return true;
	return false;
}

struct slot *slot_by_name(const char *name)
{
	for (size_t i = 0; i < M.nslots; i++)
		if (!M.slots[i].retired && strcmp(M.slots[i].name, name) == 0)
			return &M.slots[i];
	return NULL;
}

const char *slot_state_name(const struct slot *s)
{
	if (s->crashlooping && s->state != SLOT_RUNNING)
		return "crashloop";
	switch (s->state) {
	case SLOT_STOPPED: return "stopped";
	case SLOT_STARTING: return "starting";
	case SLOT_RUNNING: return "running";
	case SLOT_BACKOFF: return "backoff";
	case SLOT_STOPPING: return "stopping";
	}
	return "?";
}

static bool slot_alive(const struct slot *s)
{
	return s->proc_active && s->control && !s->retired;
}

/* Replace "key=<anything>\n" by "key=value\n" in a serialized section. */
static char *section_set(char *text, size_t *len, const char *key, const char *value)
{
	size_t klen = strlen(key);
	char *line = text, *out;

	while (line < text + *len) {
		char *nl = memchr(line, '\n', (size_t)(text + *len - line));

		if (!nl)
			break;
		if ((size_t)(nl - line) >= klen + 1 && memcmp(line, key, klen) == 0 &&
		    line[klen] == '=') {
			size_t before = (size_t)(line - text), after = (size_t)(text + *len - nl);
			size_t vlen = strlen(value);

			out = malloc(before + klen + 1 + vlen + after + 1);
			if (!out)
				return text;
			memcpy(out, text, before);
			memcpy(out + before, key, klen);
			out[before + klen] = '=';
			memcpy(out + before + klen + 1, value, vlen);
			memcpy(out + before + klen + 1 + vlen, nl, after);
			*len = before + klen + 1 + vlen + after;
			out[*len] = '\0';
			free(text);
			return out;
		}
		line = nl + 1;
	}
	return text;
}

void signer_dir(const struct cfg *cfg, const char *key, char *out, size_t outlen)
{
	if (cfg_is_set(cfg, "signer", key))
		snprintf(out, outlen, "%s", cfg_str(cfg, "signer", key));
	else
		snprintf(out, outlen, "%s/%s", cfg_str(cfg, "master", "state_dir"),
			 strcmp(key, "key_dir") == 0 ? "signer" : "tls");
}

char *section_for(const struct cfg *cfg, unsigned role, size_t *len)
{
	char *text = NULL;

	if (cfg_section_serialize(cfg, ipc_role_name(role), &text, len) != 0)
		return NULL;
	if (role == IPC_ROLE_SIGNER) {
		/* the signer does not see the master section: resolve its defaults here */
		char dir[1100];

		signer_dir(cfg, "key_dir", dir, sizeof dir);
		text = section_set(text, len, "key_dir", dir);
		signer_dir(cfg, "cert_dir", dir, sizeof dir);
		text = section_set(text, len, "cert_dir", dir);
	}
	if (role == IPC_ROLE_NOTIFIER && text && !cfg_is_set(cfg, "notifier", "key_file")) {
		/* nor does the notifier: its key's default place */
		char file[1100];

		snprintf(file, sizeof file, "%s/notifier/notifier.key", cfg_str(cfg, "master", "state_dir"));
		text = section_set(text, len, "key_file", file);
	}
	return text;
}

static void slot_init(struct slot *s, unsigned role, unsigned instance)
{
	memset(s, 0, sizeof *s);
	s->role = role;
	s->instance = instance;
	if (instance == 0)
		snprintf(s->name, sizeof s->name, "%s", ipc_role_name(role));
	else
		snprintf(s->name, sizeof s->name, "%s.%u", ipc_role_name(role), instance);
	backoff_init(&s->backoff, cfg_duration_ms(M.cfg, "master", "restart_backoff_initial"),
		     cfg_duration_ms(M.cfg, "master", "restart_backoff_max"),
		     cfg_duration_ms(M.cfg, "master", "restart_stable_after"));
	uv_timer_init(M.loop, &s->timer);
	s->timer.data = s;
	snprintf(s->last_exit, sizeof s->last_exit, "-");
}

static int spawn(struct slot *s);

/* ---- control channel of a worker ---- */

static void on_worker_msg(struct ipc_channel *ch, struct ipc_msg *m, int fd, void *ud)
{
	struct slot *s = ud;

	if (fd >= 0)
		close(fd);
	switch (m->type) {
	case IPC_T_READY:
		if (s->state == SLOT_STARTING) {
			s->state = SLOT_RUNNING;
			log_event(LOG_INFO, NULL, NULL, "worker %s ready (pid %u)", s->name,
				  m->u.ready.pid);
			if (s->role == IPC_ROLE_STORE)
				bootstrap_store_ready();
		}
		break;
	case IPC_T_WORKERS_GET:
		workers_report(ch, m);
		break;
	case IPC_T_METRICS_ALL_GET:
		metrics_gather(s, m);
		break;
	case IPC_T_PEER_FAULT: {
		struct slot *bad = slot_by_name(m->u.peer_fault.peer);

		if (bad && bad->proc_active && bad->pid && !M.shutting_down) {
			log_error("worker %s reports a protocol violation by %s (%s): restarting %s",
				  s->name, bad->name, m->u.peer_fault.reason, bad->name);
			uv_process_kill(&bad->proc, SIGKILL);
		}
		break;
	}
	default:
		log_warn("unexpected %s from %s", ipc_type_name(m->type), s->name);
	}
}

static void on_worker_channel_close(struct ipc_channel *ch, int reason, void *ud)
{
	struct slot *s = ud;

	if (s->control == ch)
		s->control = NULL;
	/* a protocol error from the worker: it is not trustworthy any more */
	if (ipc_is_protocol_error(reason) && s->proc_active) {
		log_error("worker %s broke the IPC protocol (%s): killing it", s->name,
			  ipc_strerror(reason));
		uv_process_kill(&s->proc, SIGKILL);
	}
}

/* ---- exits and restarts ---- */

static void on_restart_timer(uv_timer_t *t)
{
	struct slot *s = t->data;

	if (!M.shutting_down && s->state == SLOT_BACKOFF)
		spawn(s);
}

static void advance_shutdown(void);

static void describe_exit(char *buf, size_t len, int64_t status, int sig)
{
	if (sig)
		snprintf(buf, len, "killed by SIG%s", sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
	else
		snprintf(buf, len, "exit %lld", (long long)status);
}

static void proc_closed(uv_handle_t *h)
{
	struct slot *s = h->data;

	s->proc_active = false;
	if (M.shutting_down)
		advance_shutdown();
	else if (s->state == SLOT_BACKOFF && s->restart_now) {
		s->restart_now = false;
		spawn(s);
	}
}

static void on_worker_exit(uv_process_t *p, int64_t status, int sig)
{
	struct slot *s = p->data;
	uint64_t up = now_ms() - s->started_ms;
	char kv[128];

	describe_exit(s->last_exit, sizeof s->last_exit, status, sig);
	s->pid = 0;
	uv_timer_stop(&s->timer);
	if (s->control) {
		ipc_channel_close(s->control);
		s->control = NULL;
	}
	snprintf(kv, sizeof kv, "exit=\"%s\" uptime_ms=%llu", s->last_exit, (unsigned long long)up);
	if (M.shutting_down || s->retired) {
		s->state = SLOT_STOPPED;
		log_event(LOG_INFO, NULL, kv, "worker %s stopped", s->name);
	} else if (s->restart_now) {
		s->state = SLOT_BACKOFF; /* proc_closed starts it again at once */
		log_event(LOG_INFO, NULL, kv, "worker %s stopped for a restart", s->name);
	} else {
		uint64_t delay = backoff_on_exit(&s->backoff, up);
		unsigned limit = (unsigned)cfg_int(M.cfg, "master", "crashloop_restarts");

		s->restarts++;
		s->state = SLOT_BACKOFF;
		snprintf(kv + strlen(kv), sizeof kv - strlen(kv), " restart_in_ms=%llu restarts=%u",
			 (unsigned long long)delay, s->restarts);
		log_event(LOG_ERROR, NULL, kv, "worker %s died", s->name);
		if (backoff_crashlooping(&s->backoff, limit)) {
			if (!s->crashlooping)
				log_event(LOG_ERROR, NULL, NULL,
					  "worker %s is crash-looping (%u restarts without a stable "
					  "period); still retrying, other workers keep running",
					  s->name, s->backoff.consecutive);
			s->crashlooping = true;
		}
		uv_timer_start(&s->timer, on_restart_timer, delay, 0);
	}
	uv_close((uv_handle_t *)p, proc_closed);
}

/* ---- spawning ---- */

static const char *const passthrough_env[] = {
	"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TZ", NULL,
};

static int spawn(struct slot *s)
{
	char path[1100], fds_spec[2048], name_env[64], fds_env[2100];
	char *env[16], *pin_env = NULL;
	size_t nenv = 0;
	uv_stdio_container_t stdio[3 + 1 + MAX_SLOTS];
	int nstdio = 0;
	int logpipe[2] = {-1, -1}, ctl[2] = {-1, -1};
	int peer_local[MAX_SLOTS];
	struct slot *peer_slot[MAX_SLOTS];
	int npeers = 0;
	char *args[2];
	uv_process_options_t o;
	size_t off;
	int rc;
	struct ipc_msg cfgmsg = {.type = IPC_T_CONFIG};

	snprintf(path, sizeof path, "%s/%s", M.libexec, ipc_role_executable(s->role));
	if (pipe2(logpipe, O_CLOEXEC) != 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) != 0) {
		log_error("cannot create channels for %s: %s", s->name, strerror(errno));
		goto fail_early;
	}
	stdio[nstdio++].flags = UV_IGNORE;
	stdio[nstdio].flags = UV_INHERIT_FD;
	stdio[nstdio++].data.fd = logpipe[1];
	stdio[nstdio].flags = UV_INHERIT_FD;
	stdio[nstdio++].data.fd = logpipe[1];
	stdio[nstdio].flags = UV_INHERIT_FD;
	stdio[nstdio++].data.fd = ctl[1];
	off = (size_t)snprintf(fds_spec, sizeof fds_spec, "control=3");

	for (size_t i = 0; i < M.nslots; i++) {
		struct slot *p = &M.slots[i];
		int sp[2];

		if (p == s || p->retired || !wired(s->role, p->role))
			continue;
		/* the api instances each have their own edges; they are not wired to each other */
		if (!slot_alive(p)) {
			off += (size_t)snprintf(fds_spec + off, sizeof fds_spec - off, ",%s=-", p->name);
			continue;
		}
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
			log_error("cannot create a channel %s-%s: %s", s->name, p->name,
				  strerror(errno));
			continue;
		}
		stdio[nstdio].flags = UV_INHERIT_FD;
		stdio[nstdio].data.fd = sp[1];
		off += (size_t)snprintf(fds_spec + off, sizeof fds_spec - off, ",%s=%d", p->name,
					nstdio);
		nstdio++;
		peer_local[npeers] = sp[0];
		peer_slot[npeers] = p;
		npeers++;
	}

	snprintf(name_env, sizeof name_env, "CERTWARD_WORKER_NAME=%s", s->name);
	snprintf(fds_env, sizeof fds_env, "CERTWARD_WORKER_FDS=%s", fds_spec);
	env[nenv++] = (char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	env[nenv++] = name_env;
	env[nenv++] = fds_env;
	for (const char *const *e = passthrough_env; *e; e++) {
		static char bufs[8][1024];
		const char *v = getenv(*e);

		if (v && nenv < 14) {
			snprintf(bufs[e - passthrough_env], sizeof bufs[0], "%s=%s", *e, v);
			env[nenv++] = bufs[e - passthrough_env];
		}
	}
	/* the PKCS#11 PIN's variable, to the signer alone (which hands it to
	 * certward-p11 and wipes its copy) */
	if (s->role == IPC_ROLE_SIGNER && *cfg_str(M.cfg, "signer", "pkcs11_pin_env") && nenv < 15) {
		const char *name = cfg_str(M.cfg, "signer", "pkcs11_pin_env"), *v = getenv(name);

		if (v && asprintf(&pin_env, "%s=%s", name, v) > 0)
			env[nenv++] = pin_env;
		else
			pin_env = NULL;
	}
	env[nenv] = NULL;

	args[0] = path;
	args[1] = NULL;
	memset(&o, 0, sizeof o);
	o.exit_cb = on_worker_exit;
	o.file = path;
	o.args = args;
	o.env = env;
	o.stdio_count = nstdio;
	o.stdio = stdio;
	/* own session: a Ctrl-C on the terminal reaches the master only, which
	 * then stops the workers in order */
	o.flags = UV_PROCESS_DETACHED;
	if (M.as_root) {
		o.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
		o.uid = s->role == IPC_ROLE_SIGNER ? M.signer_uid : M.uid;
		o.gid = s->role == IPC_ROLE_SIGNER ? M.signer_gid : M.gid;
	}
	s->proc.data = s;
	rc = uv_spawn(M.loop, &s->proc, &o);
	if (pin_env) {
		explicit_bzero(pin_env, strlen(pin_env));
		free(pin_env);
	}
	close(logpipe[1]);
	close(ctl[1]);
	for (int i = 4; i < nstdio; i++)
		close(stdio[i].data.fd);
	if (rc != 0) {
		log_error("cannot start %s (%s): %s", s->name, path, uv_strerror(rc));
		close(logpipe[0]);
		close(ctl[0]);
		for (int i = 0; i < npeers; i++)
			close(peer_local[i]);
		/* uv_spawn failures still need the handle closed */
		s->proc_active = true;
		s->started_ms = now_ms();
		on_worker_exit(&s->proc, 127, 0);
		return -1;
	}
	s->proc_active = true;
	s->generation++;
	s->pid = s->proc.pid;
	s->started_ms = now_ms();
	s->state = SLOT_STARTING;
	logs_attach(s, logpipe[0]);
	s->control = ipc_channel_open(M.loop, ctl[0], s->role, s->name, on_worker_msg,
				      on_worker_channel_close, s);
	if (!s->control) {
		log_error("cannot open the control channel of %s", s->name);
		uv_process_kill(&s->proc, SIGKILL);
	} else {
		free(s->section);
		s->section = section_for(M.cfg, s->role, &s->section_len);
		cfgmsg.u.config.name = s->name;
		cfgmsg.u.config.instance = s->instance;
		cfgmsg.u.config.ipc_timeout_ms = (uint32_t)cfg_duration_ms(M.cfg, "master", "ipc_timeout");
		cfgmsg.u.config.section.ptr = (const uint8_t *)s->section;
		cfgmsg.u.config.section.len = (uint32_t)s->section_len;
		if (!s->section || ipc_send(s->control, &cfgmsg, -1) != 0) {
			log_error("cannot send the configuration to %s", s->name);
			uv_process_kill(&s->proc, SIGKILL);
		}
	}
	/* hand the other ends to the running peers */
	for (int i = 0; i < npeers; i++) {
		struct ipc_msg up = {.type = IPC_T_PEER_UP};

		up.u.peer_up.peer = s->name;
		up.u.peer_up.role = s->role;
		if (!peer_slot[i]->control ||
		    ipc_send(peer_slot[i]->control, &up, peer_local[i]) != 0)
			log_warn("could not hand the channel to %s to %s", s->name, peer_slot[i]->name);
	}
	log_event(LOG_INFO, NULL, NULL, "started %s (pid %d)", s->name, (int)s->pid);
	return 0;

fail_early:
	if (logpipe[0] >= 0) {
		close(logpipe[0]);
		close(logpipe[1]);
	}
	if (ctl[0] >= 0) {
		close(ctl[0]);
		close(ctl[1]);
	}
	s->state = SLOT_BACKOFF;
	uv_timer_start(&s->timer, on_restart_timer, backoff_on_exit(&s->backoff, 0), 0);
	return -1;
}

int supervisor_start(void)
{
	unsigned napi = (unsigned)cfg_int(M.cfg, "api", "processes");

	M.nslots = 0;
	for (size_t i = 0; i < sizeof start_order / sizeof start_order[0]; i++) {
		unsigned n = start_order[i] == IPC_ROLE_API ? napi : 1;

		for (unsigned k = 0; k < n; k++)
			slot_init(&M.slots[M.nslots++], start_order[i], k);
	}
	for (size_t i = 0; i < M.nslots; i++)
		spawn(&M.slots[i]);
	return 0;
}

/* ---- stopping ---- */

static void on_stop_deadline(uv_timer_t *t)
{
	struct slot *s = t->data;

	if (s->proc_active && s->pid) {
		log_warn("worker %s did not stop in time: killing it", s->name);
		uv_process_kill(&s->proc, SIGKILL);
	}
}

static void slot_stop(struct slot *s)
{
	struct ipc_msg m = {.type = IPC_T_SHUTDOWN};

	uv_timer_stop(&s->timer);
	if (!s->proc_active || !s->pid) {
		if (!s->proc_active)
			s->state = SLOT_STOPPED;
		return;
	}
	s->state = SLOT_STOPPING;
	if (!s->control || ipc_send(s->control, &m, -1) != 0)
		uv_process_kill(&s->proc, SIGTERM);
	uv_timer_start(&s->timer, on_stop_deadline, cfg_duration_ms(M.cfg, "master", "stop_timeout"), 0);
}

static bool in_phase(unsigned role, int phase)
{
	/* unused entries are 0, the master's role, which no slot has */
	for (int i = 0; i < 3; i++)
		if (stop_phases[phase][i] == role)
			return true;
	return false;
}

static void handles_closed(uv_handle_t *h)
{
}

static void finish_shutdown(void)
{
	for (size_t i = 0; i < M.nslots; i++) {
		struct slot *s = &M.slots[i];

		if (!uv_is_closing((uv_handle_t *)&s->timer))
			uv_close((uv_handle_t *)&s->timer, handles_closed);
		free(s->section);
		s->section = NULL;
	}
	control_close();
	uv_close((uv_handle_t *)&M.sig_term, NULL);
	uv_close((uv_handle_t *)&M.sig_int, NULL);
	uv_close((uv_handle_t *)&M.sig_hup, NULL);
	uv_close((uv_handle_t *)&M.sig_usr1, NULL);
	log_info("all workers stopped");
}

static void advance_shutdown(void)
{
	while (M.shutdown_phase < (int)NPHASES) {
		bool waiting = false;

		for (size_t i = 0; i < M.nslots; i++) {
			struct slot *s = &M.slots[i];

			if (!in_phase(s->role, M.shutdown_phase))
				continue;
			if (s->proc_active) {
				waiting = true;
				if (s->state != SLOT_STOPPING)
					slot_stop(s);
			} else {
				uv_timer_stop(&s->timer);
				s->state = SLOT_STOPPED;
			}
		}
		if (waiting)
			return;
		M.shutdown_phase++;
	}
	if (M.shutdown_phase == (int)NPHASES) {
		M.shutdown_phase++;
		finish_shutdown();
	}
}

void supervisor_shutdown(void)
{
	if (M.shutting_down)
		return;
	M.shutting_down = true;
	M.shutdown_phase = 0;
	bootstrap_stop();
	log_info("stopping workers");
	advance_shutdown();
}

int slot_restart(struct slot *s)
{
	if (M.shutting_down)
		return -ECANCELED;
	if (s->state == SLOT_BACKOFF && !s->proc_active) {
		uv_timer_stop(&s->timer);
		return spawn(s);
	}
	s->restart_now = true;
	slot_stop(s);
	return 0;
}

/* ---- reload ---- */

int supervisor_reload(char *msg, size_t msglen)
{
	struct cfg *fresh;
	struct cfg_error err;
	char line[600];
	size_t off = 0;
	unsigned restarted = 0;
	unsigned napi_old, napi_new;
	extern char **environ;

	if (cfg_load(M.config_path, environ, &fresh, &err) != 0) {
		cfg_error_format(&err, line, sizeof line);
		snprintf(msg, msglen, "configuration not reloaded: %s", line);
		log_error("%s", msg);
		return -1;
	}
	napi_old = (unsigned)cfg_int(M.cfg, "api", "processes");
	napi_new = (unsigned)cfg_int(fresh, "api", "processes");
	{
		char *a = NULL, *b = NULL;
		size_t al = 0, bl = 0;

		cfg_section_serialize(M.cfg, "master", &a, &al);
		cfg_section_serialize(fresh, "master", &b, &bl);
		if (a && b && (al != bl || memcmp(a, b, al) != 0))
			off += (size_t)snprintf(msg + off, msglen - off,
						"master section changed: restart certwardd to apply it; ");
		free(a);
		free(b);
	}
	cfg_free(M.cfg);
	M.cfg = fresh;

	for (size_t i = 0; i < M.nslots && off < msglen; i++) {
		struct slot *s = &M.slots[i];
		size_t len;
		char *text;

		if (s->retired)
			continue;
		if (s->role == IPC_ROLE_API && s->instance >= napi_new) {
			s->retired = true;
			slot_stop(s);
			off += (size_t)snprintf(msg + off, msglen - off, "%s retired; ", s->name);
			continue;
		}
		text = section_for(M.cfg, s->role, &len);
		if (text && s->section && (len != s->section_len || memcmp(text, s->section, len) != 0)) {
			off += (size_t)snprintf(msg + off, msglen - off, "%s restarted; ", s->name);
			slot_restart(s);
			restarted++;
		}
		free(text);
	}
	for (unsigned k = napi_old; k < napi_new; k++) {
		struct slot *s = NULL;

		/* reuse the slot of an instance an earlier reload retired */
		for (size_t i = 0; i < M.nslots && !s; i++)
			if (M.slots[i].retired && M.slots[i].role == IPC_ROLE_API &&
			    M.slots[i].instance == k && !M.slots[i].proc_active)
				s = &M.slots[i];
		if (s) {
			s->retired = false;
			s->state = SLOT_STOPPED;
		} else if (M.nslots < MAX_SLOTS) {
			s = &M.slots[M.nslots++];
			slot_init(s, IPC_ROLE_API, k);
		} else {
			break;
		}
		spawn(s);
		off += (size_t)snprintf(msg + off, msglen - off, "%s started; ", s->name);
	}
	if (off == 0)
		snprintf(msg, msglen, "configuration reloaded: no worker section changed");
	log_info("reload: %s", msg);
	return 0;
}
