/* DNS-01 hooks run for the scheduler: see dns_hooks.h. */
#include "dns_hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "codec.h"
#include "dns.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define ENV_MAX 64
#define WAITING_MAX 256
#define EXIT_GRACE_MS 1000 /* after the hook exits, for what it left holding the pipe */
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct run {
	struct run *next;
	struct ipc_channel *ch; /* NULL: nobody waits for the answer any more */
	uint64_t req_id;
	char hook[65], action[17], record[257], value[257];
	uv_process_t proc;
	uv_pipe_t out;
	uv_timer_t timer;
	uint8_t kept[DNS_HOOK_OUTPUT_MAX];
	size_t nkept, total;
	int open_handles;
	bool exited, eof, timed_out, finished;
	int64_t exit_status;
	int term_signal;
	uint64_t t0_ms;
};

static struct {
	struct worker *w;
	char dir[PATH_MAX];
	char *env_text;          /* NAME=VALUE strings, NUL-separated; holds secrets */
	size_t env_text_len;
	char *envp[ENV_MAX + 2]; /* PATH (unless given) + the pairs + NULL */
	uint64_t timeout_ms;
	unsigned max_parallel, running, waiting;
	struct run *head, *tail, *active; /* active: a list of running ones through next */
} H;

static uint8_t drain[65536];

static bool hook_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

static bool first_label_is(const char *name, const char *label)
{
	size_t n = strlen(label);

	return strncasecmp(name, label, n) == 0 && name[n] == '.' && name[n + 1] != '\0';
}

int dns_hook_args_check(const char *hook, const char *action, const char *record_name, const char *value,
			char *err, size_t errlen)
{
	bool persist;
	size_t n;

	if (!hook_name_valid(hook)) {
		snprintf(err, errlen, "hook: 1 to 64 of a-z, 0-9, '_' and '-'");
		return -1;
	}
	if (strcmp(action, "present") != 0 && strcmp(action, "cleanup") != 0) {
		snprintf(err, errlen, "action: present or cleanup");
		return -1;
	}
	persist = first_label_is(record_name, "_validation-persist");
	if (!dns_name_valid(record_name) || !(persist || first_label_is(record_name, "_acme-challenge"))) {
		snprintf(err, errlen, "record_name: a DNS name of at most 253 bytes under _acme-challenge or "
				      "_validation-persist");
		return -1;
	}
	n = strlen(value);
	if (n == 0 || n > 255) {
		snprintf(err, errlen, "value: 1 to 255 characters");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
			  c == '-' || c == '=' || c == '.';

		/* dns-persist-01 records carry parameters ("ca.example; accounturi=..."):
		 * printable ASCII, no quotes or backslashes */
		if (!ok && persist)
			ok = c >= 0x20 && c < 0x7f && c != '"' && c != '\'' && c != '\\';
		if (!ok) {
			snprintf(err, errlen,
				 persist ? "value: printable ASCII without quotes or backslashes"
					 : "value: base64url characters (A-Z a-z 0-9 _ - = .)");
			return -1;
		}
	}
	return 0;
}

static bool env_name_valid(const char *s, size_t n)
{
	if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '_'))
			return false;
	return true;
}

/* "A=1 B=2" -> envp; names are checked, values are never logged */
static int parse_env(const char *text)
{
	size_t len = strlen(text), n = 0;
	bool have_path = false;
	char *p;

	H.env_text = malloc(len + 1);
	if (!H.env_text) {
		log_error("deploy.dns_hook_env: out of memory");
		return -1;
	}
	memcpy(H.env_text, text, len + 1);
	H.env_text_len = len + 1;
	for (p = H.env_text; *p;) {
		size_t tok, name;

		if (*p == ' ' || *p == '\t') {
			*p++ = '\0';
			continue;
		}
		tok = strcspn(p, " \t");
		name = strcspn(p, "=");
		if (name >= tok || !env_name_valid(p, name)) {
			log_error("deploy.dns_hook_env: item %zu is not NAME=VALUE (NAME of A-Z, a-z, 0-9, '_')", n + 1);
			return -1;
		}
		if (n == ENV_MAX) {
			log_error("deploy.dns_hook_env: more than %d variables", ENV_MAX);
			return -1;
		}
		if (name == 4 && strncmp(p, "PATH", 4) == 0)
			have_path = true;
		H.envp[n++] = p;
		p += tok;
	}
	if (!have_path)
		H.envp[n++] = (char *)"PATH=" DEFAULT_PATH;
	H.envp[n] = NULL;
	return 0;
}

int dns_hooks_init(struct worker *w, const struct cfg *section)
{
	int n;

	H.w = w;
	n = snprintf(H.dir, sizeof H.dir, "%s", cfg_str(section, "deploy", "dns_hook_dir"));
	if (n <= 0 || (size_t)n >= sizeof H.dir) {
		log_error("deploy.dns_hook_dir: empty or too long");
		return -1;
	}
	H.timeout_ms = cfg_duration_ms(section, "deploy", "dns_hook_timeout");
	H.max_parallel = (unsigned)cfg_int(section, "deploy", "dns_hook_max_parallel");
	return parse_env(cfg_str(section, "deploy", "dns_hook_env"));
}

static bool owner_ok(const struct stat *st)
{
	return st->st_uid == 0 || st->st_uid == geteuid();
}

/* The hook's path when it may be run: 0, or a negative errno with why in err. */
static int hook_path(const struct run *r, char *path, size_t pathlen, char *err, size_t errlen)
{
	struct stat st;

	if (stat(H.dir, &st) != 0) {
		snprintf(err, errlen, "the hook directory %.200s: %s", H.dir, strerror(errno));
		return -ENOENT;
	}
	if (!S_ISDIR(st.st_mode) || !owner_ok(&st) || (st.st_mode & 022)) {
		snprintf(err, errlen, "the hook directory %.200s is not a directory owned by root or this user and "
				      "closed to writes by group and others", H.dir);
		return -EACCES;
	}
	if ((size_t)snprintf(path, pathlen, "%s/%s", H.dir, r->hook) >= pathlen) {
		snprintf(err, errlen, "the hook's path is too long");
		return -ENAMETOOLONG;
	}
	if (lstat(path, &st) != 0) {
		snprintf(err, errlen, "hook %s: %s", r->hook, strerror(errno));
		return errno == ENOENT ? -ENOENT : -EACCES;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "hook %s is not a regular file", r->hook);
		return -EACCES;
	}
	if (!owner_ok(&st)) {
		snprintf(err, errlen, "hook %s is owned by uid %u, neither root nor this user", r->hook,
			 (unsigned)st.st_uid);
		return -EACCES;
	}
	if (st.st_mode & 022) {
		snprintf(err, errlen, "hook %s is writable by group or others (mode %04o)", r->hook,
			 (unsigned)(st.st_mode & 07777));
		return -EACCES;
	}
	if (access(path, X_OK) != 0) {
		snprintf(err, errlen, "hook %s is not executable by this user", r->hook);
		return -EACCES;
	}
	return 0;
}

/* Nothing this process holds open reaches a hook: every descriptor above
 * stderr is closed on exec (the IPC channels inherited from the master
 * were not opened with O_CLOEXEC). */
static void cloexec_all(void)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) == 0)
		return;
#endif
	for (int fd = 3; fd < 4096; fd++)
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static void count(const char *name)
{
	metrics_add(worker_metrics(H.w), name, NULL, 1);
}

static void answer_error(struct ipc_channel *ch, uint64_t req_id, int code, const char *why)
{
	struct ipc_msg req = {.id = req_id};

	if (ch)
		ipc_reply_error(ch, &req, code, why);
}

static void unlink_active(struct run *r)
{
	for (struct run **p = &H.active; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			return;
		}
}

static void pump(void);

static void on_handle_closed(uv_handle_t *h)
{
	struct run *r = h->data;

	if (--r->open_handles == 0)
		free(r);
}

static void finish(struct run *r)
{
	struct ipc_msg done = {.type = IPC_T_DNS_HOOK_DONE};
	struct ipc_msg req = {.id = r->req_id};
	char kv[512];
	uint32_t status;

	if (r->finished)
		return;
	r->finished = true;
	if (r->timed_out)
		status = 124;
	else if (r->term_signal)
		status = 128u + (uint32_t)r->term_signal;
	else
		status = (uint32_t)r->exit_status;
	uv_timer_stop(&r->timer);
	uv_read_stop((uv_stream_t *)&r->out);
	snprintf(kv, sizeof kv, "hook=%s action=%s record=%s exit_status=%u duration_ms=%llu output_bytes=%zu",
		 r->hook, r->action, r->record, status, (unsigned long long)(now_ms() - r->t0_ms), r->total);
	log_event(status == 0 ? LOG_INFO : LOG_WARN, NULL, kv,
		  r->timed_out ? "dns hook killed after deploy.dns_hook_timeout" : "dns hook ran");
	count("dns_hooks_run_total");
	if (status != 0)
		count("dns_hooks_failed_total");
	if (r->ch) {
		done.u.dns_hook_done.exit_status = status;
		done.u.dns_hook_done.output.ptr = r->kept;
		done.u.dns_hook_done.output.len = (uint32_t)r->nkept;
		ipc_reply(r->ch, &req, &done);
	}
	unlink_active(r);
	H.running--;
	uv_close((uv_handle_t *)&r->proc, on_handle_closed);
	uv_close((uv_handle_t *)&r->out, on_handle_closed);
	uv_close((uv_handle_t *)&r->timer, on_handle_closed);
	pump();
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct run *r = h->data;

	(void)suggested;
	if (r->nkept < sizeof r->kept)
		*buf = uv_buf_init((char *)r->kept + r->nkept, (unsigned)(sizeof r->kept - r->nkept));
	else
		*buf = uv_buf_init((char *)drain, sizeof drain);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct run *r = s->data;

	if (n > 0) {
		if (buf->base == (char *)r->kept + r->nkept)
			r->nkept += (size_t)n;
		r->total += (size_t)n;
		return;
	}
	if (n < 0) {
		r->eof = true;
		uv_read_stop(s);
		if (r->exited)
			finish(r);
	}
}

static void on_timer(uv_timer_t *t)
{
	struct run *r = t->data;

	if (r->exited) {
		/* exited, but something of its own still holds the pipe */
		finish(r);
		return;
	}
	r->timed_out = true;
	kill(-r->proc.pid, SIGKILL);
}

static void on_hook_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
	struct run *r = p->data;

	r->exited = true;
	r->exit_status = exit_status;
	r->term_signal = term_signal;
	/* whatever it started and left behind goes with it */
	kill(-p->pid, SIGKILL);
	if (r->eof)
		finish(r);
	else
		uv_timer_start(&r->timer, on_timer, EXIT_GRACE_MS, 0);
}

/* Starts r: 0, or -1 after answering why it could not run (r freed). */
static int start(struct run *r)
{
	uv_loop_t *loop = worker_loop(H.w);
	char path[PATH_MAX + 80], why[512];
	char *args[] = {path, r->action, r->record, r->value, NULL};
	uv_stdio_container_t stdio[3];
	uv_process_options_t o;
	uv_file fds[2];
	int rc;

	rc = hook_path(r, path, sizeof path, why, sizeof why);
	if (rc != 0)
		goto refused;
	rc = uv_pipe(fds, UV_NONBLOCK_PIPE, 0);
	if (rc != 0) {
		snprintf(why, sizeof why, "pipe: %s", uv_strerror(rc));
		rc = -EIO;
		goto refused;
	}
	uv_pipe_init(loop, &r->out, 0);
	uv_timer_init(loop, &r->timer);
	r->out.data = r->timer.data = r->proc.data = r;
	r->open_handles = 3;
	uv_pipe_open(&r->out, fds[0]);
	cloexec_all();
	memset(&o, 0, sizeof o);
	stdio[0].flags = UV_IGNORE; /* /dev/null */
	stdio[1].flags = UV_INHERIT_FD;
	stdio[1].data.fd = fds[1];
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = fds[1];
	o.file = path;
	o.args = args;
	o.env = H.envp;
	o.stdio = stdio;
	o.stdio_count = 3;
	o.exit_cb = on_hook_exit;
	o.flags = UV_PROCESS_DETACHED; /* setsid: a process group to kill whole */
	r->t0_ms = now_ms();
	rc = uv_spawn(loop, &r->proc, &o);
	close(fds[1]);
	if (rc != 0) {
		snprintf(why, sizeof why, "hook %s could not be started: %s", r->hook, uv_strerror(rc));
		log_event(LOG_WARN, NULL, NULL, "%s", why);
		count("dns_hooks_run_total");
		count("dns_hooks_failed_total");
		answer_error(r->ch, r->req_id, EIO, why);
		uv_close((uv_handle_t *)&r->proc, on_handle_closed);
		uv_close((uv_handle_t *)&r->out, on_handle_closed);
		uv_close((uv_handle_t *)&r->timer, on_handle_closed);
		return -1;
	}
	uv_read_start((uv_stream_t *)&r->out, on_alloc, on_read);
	uv_timer_start(&r->timer, on_timer, H.timeout_ms, 0);
	r->next = H.active;
	H.active = r;
	H.running++;
	return 0;
refused:
	log_event(LOG_WARN, NULL, NULL, "dns hook refused: %s", why);
	count("dns_hooks_refused_total");
	answer_error(r->ch, r->req_id, -rc, why);
	free(r);
	return -1;
}

static void pump(void)
{
	while (H.head && H.running < H.max_parallel) {
		struct run *r = H.head;

		H.head = r->next;
		if (!H.head)
			H.tail = NULL;
		H.waiting--;
		r->next = NULL;
		start(r);
	}
}

void dns_hooks_on_run(struct worker *w, struct ipc_channel *from, struct ipc_msg *m)
{
	const struct ipc_dns_hook_run *q = &m->u.dns_hook_run;
	char why[256];
	struct run *r;

	(void)w;
	if (dns_hook_args_check(q->hook, q->action, q->record_name, q->value, why, sizeof why) != 0) {
		/* the refused text itself is not logged: it may be anything */
		log_event(LOG_WARN, NULL, NULL, "dns hook refused: %s", why);
		count("dns_hooks_refused_total");
		ipc_reply_error(from, m, EINVAL, why);
		return;
	}
	if (H.waiting >= WAITING_MAX) {
		ipc_reply_error(from, m, EAGAIN, "too many DNS hook runs waiting");
		return;
	}
	r = calloc(1, sizeof *r);
	if (!r) {
		ipc_reply_error(from, m, ENOMEM, "out of memory");
		return;
	}
	r->ch = from;
	r->req_id = m->id;
	snprintf(r->hook, sizeof r->hook, "%s", q->hook);
	snprintf(r->action, sizeof r->action, "%s", q->action);
	snprintf(r->record, sizeof r->record, "%s", q->record_name);
	snprintf(r->value, sizeof r->value, "%s", q->value);
	if (H.tail)
		H.tail->next = r;
	else
		H.head = r;
	H.tail = r;
	H.waiting++;
	pump();
}

void dns_hooks_peer_closed(struct ipc_channel *ch)
{
	for (struct run *r = H.head; r; r = r->next)
		if (r->ch == ch)
			r->ch = NULL;
	for (struct run *r = H.active; r; r = r->next)
		if (r->ch == ch)
			r->ch = NULL;
}

void dns_hooks_stop(void)
{
	while (H.head) {
		struct run *r = H.head;

		H.head = r->next;
		free(r);
	}
	H.tail = NULL;
	H.waiting = 0;
	for (struct run *r = H.active; r; r = r->next) {
		r->ch = NULL;
		kill(-r->proc.pid, SIGKILL);
	}
	if (H.env_text) {
		memset(H.env_text, 0, H.env_text_len);
		free(H.env_text);
		H.env_text = NULL;
	}
}

void dns_hooks_metrics(struct strbuf *out)
{
	strbuf_printf(out, "dns_hooks_running %u\n", H.running);
	strbuf_printf(out, "dns_hooks_waiting %u\n", H.waiting);
}
