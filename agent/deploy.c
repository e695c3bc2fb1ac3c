#include "deploy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#include "fsutil.h"
#include "keys.h"
#include "log.h"
#include "runner.h"

/* ---- resolving targets --------------------------------------------------- */

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

const struct agent_target *deploy_local_target(const struct agent_config *c, const char *id, const char *name)
{
	for (size_t i = 0; i < c->ntargets; i++)
		if (c->targets[i].target_id && strcmp(c->targets[i].target_id, id) == 0)
			return &c->targets[i];
	for (size_t i = 0; i < c->ntargets; i++)
		if (name[0] && strcmp(c->targets[i].name, name) == 0)
			return &c->targets[i];
	return NULL;
}

static int from_local(const struct agent_target *at, const struct work_target *wt,
		      struct deploy_target *t)
{
	snprintf(t->name, sizeof t->name, "%s", at->name);
	snprintf(t->id, sizeof t->id, "%s", wt ? wt->id : at->target_id ? at->target_id : "");
	t->type = at->type;
	t->cert_path = dup_or_null(at->cert_path);
	t->key_path = dup_or_null(at->key_path);
	t->chain_path = dup_or_null(at->chain_path);
	t->pem_path = dup_or_null(at->pem_path);
	t->validate = at->has_validate ? (at->validate && at->validate[0] ? (const char *const *)at->validate : NULL)
				       : target_default_validate(at->type);
	t->reload = at->has_reload ? (at->reload && at->reload[0] ? (const char *const *)at->reload : NULL)
				   : target_default_reload(at->type);
	t->verify_address = dup_or_null(at->verify_address);
	t->verify_server_name = dup_or_null(at->verify_server_name);
	t->verify_timeout_ms = at->verify_timeout_ms;
	t->command_timeout_ms = at->command_timeout_ms;
	return 0;
}

/* A server-described path: under allowed_paths, resolved. */
static int server_path(const struct agent_config *c, const char *path, char **out, const char *tname,
		       char *why, size_t whylen)
{
	char resolved[PATH_MAX], w[512];

	if (!path)
		return 0;
	if (!agent_path_allowed(c, path, resolved, w, sizeof w)) {
		snprintf(why, whylen, "target %s: %s", tname, w);
		return -1;
	}
	*out = strdup(resolved);
	return *out ? 0 : -1;
}

static int from_server(const struct agent_config *c, const struct work_target *wt,
		       struct deploy_target *t, char *why, size_t whylen)
{
	snprintf(t->name, sizeof t->name, "%s", wt->name[0] ? wt->name : wt->id);
	snprintf(t->id, sizeof t->id, "%s", wt->id);
	t->type = target_type_from_name(wt->type);
	if (t->type == TARGET_NONE) {
		snprintf(why, whylen, "target %s: type \"%s\" is not one the agent deploys to and agent.yml "
				      "has no entry for it", t->name, wt->type);
		return -1;
	}
	if (server_path(c, wt->cert_path, &t->cert_path, t->name, why, whylen) != 0 ||
	    server_path(c, wt->key_path, &t->key_path, t->name, why, whylen) != 0 ||
	    server_path(c, wt->chain_path, &t->chain_path, t->name, why, whylen) != 0 ||
	    server_path(c, wt->pem_path, &t->pem_path, t->name, why, whylen) != 0)
		return -1;
	if (t->type == TARGET_HAPROXY ? !t->pem_path : (!t->cert_path || !t->key_path)) {
		snprintf(why, whylen, "target %s: agent.yml has no entry for it and its config lacks %s",
			 t->name, t->type == TARGET_HAPROXY ? "pem_path" : "cert_path and key_path");
		return -1;
	}
	/* the commands are the type's own: never the server's */
	t->validate = target_default_validate(t->type);
	t->reload = target_default_reload(t->type);
	t->verify_address = dup_or_null(wt->verify_address);
	t->verify_server_name = dup_or_null(wt->verify_server_name);
	t->verify_timeout_ms = AGENT_DEFAULT_VERIFY_TIMEOUT_MS;
	t->command_timeout_ms = AGENT_DEFAULT_CMD_TIMEOUT_MS;
	return 0;
}

int deploy_resolve(const struct agent_config *c, const struct work_job *job,
		   struct deploy_target **out, size_t *n, char *why, size_t whylen)
{
	struct deploy_target *t = calloc(job->ntargets + 1, sizeof *t);

	*out = NULL;
	*n = 0;
	if (!t) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < job->ntargets; i++) {
		const struct work_target *wt = &job->targets[i];
		const struct agent_target *at = deploy_local_target(c, wt->id, wt->name);
		int rc = at ? from_local(at, wt, &t[i]) : from_server(c, wt, &t[i], why, whylen);

		if (rc != 0) {
			deploy_targets_free(t, i + 1);
			return -1;
		}
	}
	*out = t;
	*n = job->ntargets;
	return 0;
}

void deploy_targets_free(struct deploy_target *t, size_t n)
{
	for (size_t i = 0; t && i < n; i++) {
		free(t[i].cert_path);
		free(t[i].key_path);
		free(t[i].chain_path);
		free(t[i].pem_path);
		free(t[i].verify_address);
		free(t[i].verify_server_name);
	}
	free(t);
}

/* ---- planning files ------------------------------------------------------ */

static char *concat(const char *a, const char *b, const char *c, size_t clen, size_t *len)
{
	size_t la = strlen(a), lb = b ? strlen(b) : 0;
	int nla = la && a[la - 1] != '\n', nlb = lb && b[lb - 1] != '\n';
	size_t n = la + (size_t)nla + lb + (size_t)nlb + clen;
	char *out = malloc(n + 1), *p = out;

	if (!out)
		return NULL;
	memcpy(p, a, la);
	p += la;
	if (nla)
		*p++ = '\n';
	if (lb) {
		memcpy(p, b, lb);
		p += lb;
		if (nlb)
			*p++ = '\n';
	}
	if (clen) {
		memcpy(p, c, clen);
		p += clen;
	}
	*p = 0;
	*len = (size_t)(p - out);
	return out;
}

/* Appends one file whose content is A + B (each ending in a newline) + C. */
static int add_file(struct deploy_file *f, size_t *n, const char *path, const char *a, const char *b,
		    const char *c, size_t clen, mode_t mode, int has_key)
{
	size_t len = 0;
	char *content = concat(a, b, c, clen, &len);

	if (!content)
		return -1;
	f[*n] = (struct deploy_file){.path = path, .content = content, .len = len,
				     .new_mode = mode, .has_key = has_key};
	(*n)++;
	return 0;
}

int deploy_plan(const struct deploy_target *t, const char *leaf, const char *chain, const char *key,
		size_t keylen, struct deploy_file files[DEPLOY_MAX_FILES])
{
	size_t n = 0;
	int rc = 0;

	if (t->type == TARGET_HAPROXY) {
		rc |= add_file(files, &n, t->pem_path, leaf, chain, key, keylen, 0600, 1);
	} else if (t->type == TARGET_APACHE) {
		rc |= add_file(files, &n, t->key_path, "", NULL, key, keylen, 0600, 1);
		rc |= add_file(files, &n, t->cert_path, leaf, NULL, NULL, 0, 0644, 0);
		if (t->chain_path && chain && *chain)
			rc |= add_file(files, &n, t->chain_path, chain, NULL, NULL, 0, 0644, 0);
	} else {
		rc |= add_file(files, &n, t->key_path, "", NULL, key, keylen, 0600, 1);
		rc |= add_file(files, &n, t->cert_path, leaf, chain, NULL, 0, 0644, 0);
		if (t->chain_path && chain && *chain)
			rc |= add_file(files, &n, t->chain_path, chain, NULL, NULL, 0, 0644, 0);
	}
	if (rc != 0) {
		deploy_files_free(files, n);
		return -1;
	}
	return (int)n;
}

void deploy_files_free(struct deploy_file *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (f[i].has_key)
			free_wiped(f[i].content, f[i].len);
		else
			free(f[i].content);
		f[i].content = NULL;
	}
}

int deploy_unchanged(const struct deploy_file *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t have[32], want[32];

		if (file_sha256(f[i].path, have) != 1)
			return 0;
		SHA256((const uint8_t *)f[i].content, f[i].len, want);
		if (memcmp(have, want, 32) != 0)
			return 0;
	}
	return 1;
}

/* ---- backups ------------------------------------------------------------- */

static json_t *load_manifest(const char *job_dir)
{
	char path[PATH_MAX + 32];
	json_t *m;

	snprintf(path, sizeof path, "%s/backups.json", job_dir);
	m = json_load_file(path, 0, NULL);
	if (!json_is_array(m)) {
		json_decref(m);
		m = json_array();
	}
	return m;
}

static int save_manifest(const char *job_dir, json_t *m, char *why, size_t whylen)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof path, "%s/backups.json", job_dir);
	return atomic_write_json(path, m, why, whylen);
}

int backup_files(const char *job_dir, int target_index, const struct deploy_file *f, size_t n,
		 char *why, size_t whylen)
{
	json_t *m = load_manifest(job_dir);
	int rc = -1;

	if (!m) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		char bpath[PATH_MAX + 64], bname[64];
		json_t *e;

		/* a backup of this file from an earlier attempt of this job is
		 * the original: keep it */
		{
			size_t k;
			json_t *old;
			int seen = 0;

			json_array_foreach (m, k, old)
				if (json_integer_value(json_object_get(old, "target")) == target_index &&
				    strcmp(json_string_value(json_object_get(old, "path")) ?: "", f[i].path) == 0)
					seen = 1;
			if (seen)
				continue;
		}
		snprintf(bname, sizeof bname, "backup-%d-%zu", target_index, i);
		if (stat(f[i].path, &st) != 0) {
			if (errno != ENOENT) {
				snprintf(why, whylen, "cannot back up %.200s: %s", f[i].path, strerror(errno));
				goto out;
			}
			e = json_pack("{s:i, s:s, s:b}", "target", target_index, "path", f[i].path, "existed", 0);
		} else {
			size_t len = 0;
			char *old = read_file_max(f[i].path, 16u << 20, &len);
			struct file_meta own = {.set = 1, .mode = 0600, .uid = geteuid(), .gid = getegid()};
			int w;

			if (!old) {
				snprintf(why, whylen, "cannot back up %.200s: %s", f[i].path, strerror(errno));
				goto out;
			}
			snprintf(bpath, sizeof bpath, "%s/%s", job_dir, bname);
			/* the old file may hold a key: the backup is 0600 */
			w = atomic_write(bpath, old, len, 0600, &own, why, whylen);
			free_wiped(old, len);
			if (w != 0)
				goto out;
			e = json_pack("{s:i, s:s, s:b, s:s, s:i, s:i, s:i}", "target", target_index, "path",
				      f[i].path, "existed", 1, "backup", bname, "mode",
				      (int)(st.st_mode & 07777), "uid", (int)st.st_uid, "gid", (int)st.st_gid);
		}
		if (!e || json_array_append_new(m, e) != 0) {
			snprintf(why, whylen, "out of memory");
			goto out;
		}
	}
	rc = save_manifest(job_dir, m, why, whylen);
out:
	json_decref(m);
	return rc;
}

int restore_backups(const char *job_dir, int target_index, char *why, size_t whylen)
{
	json_t *m = load_manifest(job_dir), *e;
	size_t k;
	int rc = 0;

	if (!m) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	json_array_foreach (m, k, e) {
		const char *path = json_string_value(json_object_get(e, "path"));
		const char *bname = json_string_value(json_object_get(e, "backup"));
		char w[512];

		if (!path || (target_index >= 0 &&
			      json_integer_value(json_object_get(e, "target")) != target_index))
			continue;
		if (!json_is_true(json_object_get(e, "existed"))) {
			if (unlink(path) != 0 && errno != ENOENT) {
				snprintf(why, whylen, "cannot remove %.200s: %s", path, strerror(errno));
				rc = -1;
			} else {
				(void)fsync_dir_of(path);
			}
			continue;
		}
		{
			char bpath[PATH_MAX + 64];
			size_t len = 0;
			char *old;
			struct file_meta meta = {
				.set = 1,
				.mode = (mode_t)json_integer_value(json_object_get(e, "mode")),
				.uid = (uid_t)json_integer_value(json_object_get(e, "uid")),
				.gid = (gid_t)json_integer_value(json_object_get(e, "gid")),
			};

			snprintf(bpath, sizeof bpath, "%s/%s", job_dir, bname ? bname : "-");
			old = bname && !strchr(bname, '/') ? read_file_max(bpath, 16u << 20, &len) : NULL;
			if (!old) {
				snprintf(why, whylen, "backup of %.200s unreadable", path);
				rc = -1;
				continue;
			}
			if (atomic_write(path, old, len, meta.mode, &meta, w, sizeof w) != 0) {
				snprintf(why, whylen, "%s", w);
				rc = -1;
			}
			free_wiped(old, len);
		}
	}
	json_decref(m);
	return rc;
}

int backup_targets(const char *job_dir, int *idx, size_t max)
{
	json_t *m = load_manifest(job_dir), *e;
	size_t k, n = 0;

	json_array_foreach (m, k, e) {
		int t = (int)json_integer_value(json_object_get(e, "target"));
		size_t i;

		for (i = 0; i < n && idx[i] != t; i++)
			;
		if (i == n && n < max)
			idx[n++] = t;
	}
	json_decref(m);
	return (int)n;
}

void backups_clear(const char *job_dir)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof path, "%s/backups.json", job_dir);
	(void)unlink(path);
}

/* ---- verification -------------------------------------------------------- */

static uint64_t mono_ms(void)
{
	return now_ms();
}

static int split_address(const char *address, char *host, size_t hostlen, char *port,
			 size_t portlen)
{
	const char *colon;

	if (address[0] == '[') {
		const char *end = strchr(address, ']');

		if (!end || end[1] != ':' || (size_t)(end - address - 1) >= hostlen)
			return -1;
		snprintf(host, hostlen, "%.*s", (int)(end - address - 1), address + 1);
		colon = end + 1;
	} else {
		colon = strrchr(address, ':');
		if (!colon || (size_t)(colon - address) >= hostlen || colon == address)
			return -1;
		snprintf(host, hostlen, "%.*s", (int)(colon - address), address);
	}
	if (!colon[1] || strlen(colon + 1) >= portlen || strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return -1;
	snprintf(port, portlen, "%s", colon + 1);
	return 0;
}

/* One handshake: 1 when the served leaf is DER, 0 when another, -1 with WHY. */
static int handshake_once(const struct addrinfo *ai, const char *server_name, SSL_CTX *ctx,
			  const uint8_t *der, size_t derlen, uint64_t deadline, char *why,
			  size_t whylen)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	SSL *ssl = NULL;
	int rc = -1;

	if (fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
		snprintf(why, whylen, "connect: %s", strerror(errno));
		goto out;
	}
	ssl = SSL_new(ctx);
	if (!ssl || !SSL_set_fd(ssl, fd) ||
	    (server_name && *server_name && !SSL_set_tlsext_host_name(ssl, server_name))) {
		snprintf(why, whylen, "cannot set up TLS");
		goto out;
	}
	for (;;) {
		int r = SSL_connect(ssl), e;
		struct pollfd p = {.fd = fd};
		uint64_t now = mono_ms();

		if (r == 1)
			break;
		e = SSL_get_error(ssl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			unsigned long ee = ERR_peek_last_error();

			snprintf(why, whylen, "TLS handshake failed: %s",
				 e == SSL_ERROR_SYSCALL ? strerror(errno ? errno : ECONNRESET)
				 : ee && ERR_reason_error_string(ee) ? ERR_reason_error_string(ee)
								     : "error");
			goto out;
		}
		if (now >= deadline) {
			snprintf(why, whylen, "TLS handshake timed out");
			goto out;
		}
		p.events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		if (poll(&p, 1, (int)(deadline - now)) < 0 && errno != EINTR) {
			snprintf(why, whylen, "poll: %s", strerror(errno));
			goto out;
		}
	}
	{
		X509 *peer = SSL_get_peer_certificate(ssl);
		size_t plen = 0;
		uint8_t *pder = peer ? cert_der(peer, &plen) : NULL;

		rc = pder && plen == derlen && memcmp(pder, der, derlen) == 0;
		if (!rc)
			snprintf(why, whylen, "%s", peer ? "another certificate is served" : "no certificate served");
		OPENSSL_free(pder);
		X509_free(peer);
	}
out:
	ERR_clear_error();
	SSL_free(ssl);
	close(fd);
	return rc;
}

int verify_served(const char *address, const char *server_name, const uint8_t *der, size_t derlen,
		  uint64_t timeout_ms, char *why, size_t whylen)
{
	char host[256], port[8];
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
	uint64_t deadline = mono_ms() + timeout_ms;
	SSL_CTX *ctx;
	int gai, rc = -1;

	if (split_address(address, host, sizeof host, port, sizeof port) != 0) {
		snprintf(why, whylen, "verify address \"%.100s\" is not host:port", address);
		return -1;
	}
	gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0) {
		snprintf(why, whylen, "cannot resolve %s: %s", host, gai_strerror(gai));
		return -1;
	}
	ctx = SSL_CTX_new(TLS_method());
	if (!ctx) {
		freeaddrinfo(res);
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	/* what is served is compared byte for byte: no chain validation */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	for (;;) {
		uint64_t now = mono_ms(), attempt_end;
		int r;

		attempt_end = deadline - now > 3000 ? now + 3000 : deadline;
		r = handshake_once(res, server_name, ctx, der, derlen, attempt_end, why, whylen);
		if (r == 1) {
			rc = 0;
			break;
		}
		if (mono_ms() + 250 >= deadline)
			break;
		{
			struct timespec ts = {0, 250 * 1000 * 1000};

			nanosleep(&ts, NULL);
		}
	}
	if (rc != 0) {
		char last[256];

		snprintf(last, sizeof last, "%s", why);
		snprintf(why, whylen, "%s (server_name %s) did not serve the new certificate within %llums: %s",
			 address, server_name ? server_name : "-", (unsigned long long)timeout_ms, last);
	}
	SSL_CTX_free(ctx);
	freeaddrinfo(res);
	return rc;
}

/* ---- the deploy ---------------------------------------------------------- */

static void note_command(struct strbuf *out, const char *tname, const char *what,
			 const char *const *argv, const struct run_result *r)
{
	char cmd[256];

	argv_render(argv, cmd, sizeof cmd);
	if (r->timed_out)
		strbuf_printf(out, "target %s: %s `%s` timed out", tname, what, cmd);
	else if (r->exec_failed)
		strbuf_printf(out, "target %s: %s `%s` could not be started", tname, what, cmd);
	else if (r->signaled)
		strbuf_printf(out, "target %s: %s `%s` killed by signal %d", tname, what, cmd,
			      r->exit_status - 128);
	else
		strbuf_printf(out, "target %s: %s `%s` exited %d", tname, what, cmd, r->exit_status);
	if (r->output_len)
		strbuf_printf(out, ": %.*s%s", (int)r->output_len, r->output,
			      r->truncated ? " [output truncated]" : "");
	strbuf_printf(out, "\n");
}

static int run_step(const struct deploy_target *t, const char *what, const char *const *argv,
		    struct strbuf *out)
{
	struct run_result *r;
	int rc;

	if (!argv)
		return 0;
	r = malloc(sizeof *r);
	if (!r) {
		strbuf_printf(out, "target %s: out of memory\n", t->name);
		return -1;
	}
	rc = run_command(argv, t->command_timeout_ms, r);
	if (rc != 0)
		note_command(out, t->name, what, argv, r);
	else
		log_event(LOG_INFO, NULL, NULL, "target %s: %s ok", t->name, what);
	free(r);
	return rc == 0 ? 0 : -1;
}

static void rollback(const char *job_dir, int index, const struct deploy_target *t,
		     struct strbuf *out)
{
	char why[512];

	if (restore_backups(job_dir, index, why, sizeof why) != 0)
		strbuf_printf(out, "target %s: rollback incomplete: %s\n", t->name, why);
	else
		strbuf_printf(out, "target %s: previous files restored\n", t->name);
	if (t->reload && run_step(t, "reload after rollback", t->reload, out) == 0)
		strbuf_printf(out, "target %s: reloaded with the previous files\n", t->name);
}

/* One target: 1 deployed, 2 unchanged, 0 failed (rolled back). */
static int deploy_one(const char *job_dir, int index, const struct deploy_target *t,
		      const char *leaf, const char *chain, const char *key, size_t keylen,
		      const uint8_t *der, size_t derlen, struct strbuf *out)
{
	struct deploy_file files[DEPLOY_MAX_FILES];
	char why[512];
	int n = deploy_plan(t, leaf, chain, key, keylen, files), rc = 0;

	if (n < 0) {
		strbuf_printf(out, "target %s: out of memory\n", t->name);
		return 0;
	}
	if (deploy_unchanged(files, (size_t)n)) {
		strbuf_printf(out, "target %s: unchanged\n", t->name);
		deploy_files_free(files, (size_t)n);
		return 2;
	}
	if (backup_files(job_dir, index, files, (size_t)n, why, sizeof why) != 0) {
		strbuf_printf(out, "target %s: %s\n", t->name, why);
		deploy_files_free(files, (size_t)n);
		return 0;
	}
	for (int i = 0; i < n; i++)
		if (atomic_write(files[i].path, files[i].content, files[i].len, files[i].new_mode, NULL,
				 why, sizeof why) != 0) {
			strbuf_printf(out, "target %s: %s\n", t->name, why);
			goto fail;
		}
	if (run_step(t, "validate", t->validate, out) != 0 || run_step(t, "reload", t->reload, out) != 0)
		goto fail;
	if (t->verify_address) {
		if (verify_served(t->verify_address, t->verify_server_name, der, derlen,
				  t->verify_timeout_ms, why, sizeof why) != 0) {
			strbuf_printf(out, "target %s: verify: %s\n", t->name, why);
			goto fail;
		}
		strbuf_printf(out, "target %s: deployed, %s serves it\n", t->name, t->verify_address);
	} else {
		strbuf_printf(out, "target %s: deployed\n", t->name);
	}
	rc = 1;
	goto done;
fail:
	rollback(job_dir, index, t, out);
done:
	deploy_files_free(files, (size_t)n);
	return rc;
}

int deploy_job(const struct agent_config *c, const struct journal *j, struct strbuf *out)
{
	char path[PATH_MAX + 32], why[512];
	char *leaf = NULL, *chain = NULL, *key = NULL;
	size_t leaflen = 0, chainlen = 0, keylen = 0, derlen = 0, ntargets = 0;
	struct deploy_target *targets = NULL;
	uint8_t *der = NULL;
	X509 *x = NULL;
	int rc = -1, failed = 0, deployed = 0;

	journal_file(j, "cert.pem", path, sizeof path);
	leaf = read_file_max(path, 1u << 20, &leaflen);
	journal_file(j, "chain.pem", path, sizeof path);
	chain = read_file_max(path, 4u << 20, &chainlen);
	journal_file(j, "key.pem", path, sizeof path);
	key = read_file_max(path, 64u << 10, &keylen);
	if (!leaf || !key) {
		strbuf_printf(out, "the job's %s is missing", !leaf ? "certificate" : "key");
		goto out;
	}
	x = cert_from_pem(leaf, leaflen);
	der = x ? cert_der(x, &derlen) : NULL;
	if (!der) {
		strbuf_printf(out, "the job's certificate is unreadable");
		goto out;
	}
	if (deploy_resolve(c, &j->job, &targets, &ntargets, why, sizeof why) != 0) {
		strbuf_printf(out, "%s\n", why);
		rc = 0;
		goto out;
	}
	for (size_t i = 0; i < ntargets; i++) {
		int r = deploy_one(j->dir, (int)i, &targets[i], leaf, chain ? chain : "", key, keylen,
				   der, derlen, out);

		log_event(r ? LOG_INFO : LOG_WARN, NULL, NULL, "job %s: target %s %s", j->job.id,
			  targets[i].name, r == 1 ? "deployed" : r == 2 ? "unchanged" : "failed");
		failed |= r == 0;
		deployed |= r == 1;
	}
	if (ntargets == 0)
		strbuf_printf(out, "no deployment target on this agent");
	else if (!failed && !deployed)
		strbuf_printf(out, "unchanged");
	rc = failed ? 0 : 1;
out:
	OPENSSL_free(der);
	X509_free(x);
	free(leaf);
	free(chain);
	free_wiped(key, keylen);
	deploy_targets_free(targets, ntargets);
	return rc;
}
