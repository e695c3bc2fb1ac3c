/* certward-agent's pieces: agent.yml, atomic writes, the job journal, the
 * command runner, backups and rollback, the work answer, keys and CSRs. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent_config.h"
#include "deploy.h"
#include "fsutil.h"
#include "journal.h"
#include "keys.h"
#include "runner.h"
#include "util.h"
#include "work.h"

static char tmpdir[PATH_MAX];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/cw-agent-test-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
	remove_tree_wiped(tmpdir);
}

static void put(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	cr_assert(fd >= 0, "open %s", path);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	fchmod(fd, mode);
	close(fd);
}

static char *slurp(const char *path)
{
	size_t len;
	char *s = read_file_max(path, 1 << 20, &len);

	cr_assert_not_null(s, "read %s", path);
	return s;
}

static int parse(const char *text, struct agent_config *c, char *why)
{
	return agent_config_parse(text, strlen(text), "agent.yml", c, why, 512);
}

/* ---- agent.yml ---- */

static const char *valid_yml =
	"server: https://api.example:8443\n"
	"cacert: /etc/certward-agent/server.pem\n"
	"state_dir: /var/lib/certward-agent\n"
	"heartbeat_interval: 30s\n"
	"poll_interval: 5m\n"
	"log_level: debug\n"
	"allowed_paths: [/etc/nginx/certs, /etc/haproxy]\n"
	"discovery: {directories: [/etc/ssl/certs], interval: 6h, max_files: 100, max_file_size: 1MiB, max_depth: 4, max_certs: 50}\n"
	"targets:\n"
	"  - name: web\n"
	"    type: nginx\n"
	"    target_id: tgt-web\n"
	"    cert_path: /etc/nginx/certs/web.crt\n"
	"    key_path: /etc/nginx/certs/web.key\n"
	"    chain_path: /etc/nginx/certs/chain.pem\n"
	"    validate: [nginx, -t, -c, /etc/nginx/nginx.conf]\n"
	"    reload: [nginx, -s, reload]\n"
	"    verify: {address: 127.0.0.1:443, server_name: web.example.internal, timeout: 10s}\n"
	"    command_timeout: 20s\n"
	"  - name: lb\n"
	"    type: haproxy\n"
	"    pem_path: /etc/haproxy/site.pem\n"
	"    reload: []\n";

Test(agent_config, valid_file)
{
	struct agent_config c;
	char why[512];

	cr_assert_eq(parse(valid_yml, &c, why), 0, "%s", why);
	cr_expect_str_eq(c.server, "https://api.example:8443");
	cr_expect_str_eq(c.cacert, "/etc/certward-agent/server.pem");
	cr_expect_eq(c.heartbeat_interval_ms, 30000);
	cr_expect_eq(c.poll_interval_ms, 300000);
	cr_expect_eq(c.log_level, AGENT_LOG_DEBUG);
	cr_expect_eq(c.nallowed_paths, 2);
	cr_expect_eq(c.discovery.ndirectories, 1);
	cr_expect_eq(c.discovery.interval_ms, 6 * 3600000ull);
	cr_expect_eq(c.discovery.max_file_size, 1u << 20);
	cr_expect_eq(c.discovery.max_depth, 4);
	cr_expect_eq(c.discovery.max_certs, 50);
	cr_assert_eq(c.ntargets, 2);
	cr_expect_eq(c.targets[0].type, TARGET_NGINX);
	cr_expect_str_eq(c.targets[0].target_id, "tgt-web");
	cr_expect_str_eq(c.targets[0].validate[3], "/etc/nginx/nginx.conf");
	cr_expect_null(c.targets[0].validate[4]);
	cr_expect_str_eq(c.targets[0].verify_server_name, "web.example.internal");
	cr_expect_eq(c.targets[0].verify_timeout_ms, 10000);
	cr_expect_eq(c.targets[0].command_timeout_ms, 20000);
	cr_expect_eq(c.targets[1].type, TARGET_HAPROXY);
	cr_expect(c.targets[1].has_reload && c.targets[1].reload[0] == NULL);
	cr_expect_not(c.targets[1].has_validate);
	agent_config_free(&c);
}

Test(agent_config, defaults_without_keys)
{
	struct agent_config c;
	char why[512];

	cr_assert_eq(parse("state_dir: /srv/agent\n", &c, why), 0, "%s", why);
	cr_expect_str_eq(c.server, AGENT_DEFAULT_SERVER);
	cr_expect_null(c.cacert);
	cr_expect_eq(c.heartbeat_interval_ms, 60000);
	cr_expect_eq(c.poll_interval_ms, 30000);
	cr_expect_eq(c.ntargets, 0);
	agent_config_free(&c);
}

Test(agent_config, unknown_key_names_file_and_line)
{
	struct agent_config c;
	char why[512];

	cr_assert_neq(parse("server: https://a\nstate_dir: /x\nfrobnicate: 1\n", &c, why), 0);
	cr_expect(strstr(why, "agent.yml:3:") && strstr(why, "frobnicate"), "%s", why);
	cr_assert_neq(parse("targets:\n  - name: a\n    type: file\n    cert_path: /a\n    key_path: /b\n"
			    "    colour: red\n", &c, why), 0);
	cr_expect(strstr(why, "agent.yml:6:") && strstr(why, "colour"), "%s", why);
	cr_assert_neq(parse("discovery: {interval: 1h, depth: 3}\n", &c, why), 0);
	cr_expect(strstr(why, "depth"), "%s", why);
	cr_assert_neq(parse("server: https://a\nserver: https://b\n", &c, why), 0);
	cr_expect(strstr(why, "duplicate"), "%s", why);
}

Test(agent_config, bad_values)
{
	struct agent_config c;
	char why[512];
	const char *bad[] = {
		"heartbeat_interval: 30\n", "heartbeat_interval: 30 s\n", "heartbeat_interval: -5s\n",
		"heartbeat_interval: 5y\n", "poll_interval: 500ms\n", "poll_interval: 9999999999s\n",
		"discovery: {max_file_size: lots}\n", "discovery: {max_files: 0}\n",
		"discovery: {max_certs: 5001}\n", "log_level: loud\n", "server: http://plain\n",
		"state_dir: relative/dir\n", "targets:\n  - name: a\n    type: iis\n",
		"targets:\n  - name: a\n    type: nginx\n    cert_path: /a\n",
		"targets:\n  - name: a\n    type: haproxy\n    pem_path: /a\n    key_path: /b\n",
		"targets:\n  - {name: a, type: file, cert_path: /a, key_path: /b}\n  - {name: a, type: file, cert_path: /c, key_path: /d}\n",
		"a: [unclosed\n", "- just\n- a list\n", "server: https://a\n---\nserver: https://b\n",
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_expect_neq(parse(bad[i], &c, why), 0, "accepted: %s", bad[i]);
		cr_expect(strncmp(why, "agent.yml", 9) == 0, "%s", why);
	}
	cr_expect_neq(parse("heartbeat_interval: 5x\n", &c, why), 0);
	cr_expect(strstr(why, "agent.yml:1:") && strstr(why, "duration"), "%s", why);
}

Test(agent_config, durations_and_sizes)
{
	uint64_t v;

	cr_expect(parse_duration_ms("30s", &v) == 0 && v == 30000);
	cr_expect(parse_duration_ms("5m", &v) == 0 && v == 300000);
	cr_expect(parse_duration_ms("6h", &v) == 0 && v == 21600000);
	cr_expect(parse_duration_ms("250ms", &v) == 0 && v == 250);
	cr_expect(parse_duration_ms("1d", &v) == 0 && v == 86400000);
	cr_expect_neq(parse_duration_ms("s", &v), 0);
	cr_expect_neq(parse_duration_ms("10", &v), 0);
	cr_expect_neq(parse_duration_ms("400d", &v), 0);
	cr_expect(parse_size("1MiB", &v) == 0 && v == 1048576);
	cr_expect(parse_size("512KiB", &v) == 0 && v == 524288);
	cr_expect(parse_size("4096", &v) == 0 && v == 4096);
	cr_expect_neq(parse_size("1TiB", &v), 0);
	cr_expect_neq(parse_size("2000000000000G", &v), 0);
}

Test(agent_config, too_many_targets)
{
	struct strbuf b;
	struct agent_config c;
	char why[512];

	strbuf_init(&b, 1 << 20);
	strbuf_printf(&b, "targets:\n");
	for (int i = 0; i < AGENT_MAX_TARGETS; i++)
		strbuf_printf(&b, "  - {name: t%d, type: file, cert_path: /c/%d, key_path: /k/%d}\n", i, i, i);
	cr_assert_eq(parse(b.p, &c, why), 0, "%s", why);
	cr_expect_eq(c.ntargets, AGENT_MAX_TARGETS);
	agent_config_free(&c);
	strbuf_printf(&b, "  - {name: one-more, type: file, cert_path: /c/x, key_path: /k/x}\n");
	cr_expect_neq(parse(b.p, &c, why), 0);
	cr_expect(strstr(why, "more than"), "%s", why);
	strbuf_free(&b);
}

Test(agent_config, file_size_bound)
{
	size_t n = AGENT_CONFIG_MAX_BYTES + 1;
	char *big = malloc(n + 1);
	struct agent_config c;
	char why[512];

	memset(big, '#', n);
	big[n] = 0;
	cr_expect_neq(agent_config_parse(big, n, "agent.yml", &c, why, sizeof why), 0);
	cr_expect(strstr(why, "larger"), "%s", why);
	free(big);
}

Test(agent_config, relative_paths_are_the_files_directorys, .init = make_tmpdir, .fini = remove_tmpdir)
{
	char path[PATH_MAX + 16], want[PATH_MAX + 64], real[PATH_MAX], why[512];
	struct agent_config c;

	cr_assert_not_null(realpath(tmpdir, real));
	snprintf(path, sizeof path, "%s/agent.yml", tmpdir);
	put(path, "state_dir: state\ncacert: ../server.pem\n", 0600);
	cr_assert_eq(agent_config_load(path, &c, why, sizeof why), 0, "%s", why);
	snprintf(want, sizeof want, "%s/state", real);
	cr_expect_str_eq(c.state_dir, want);
	snprintf(want, sizeof want, "%s/../server.pem", real);
	cr_expect_str_eq(c.cacert, want);
	agent_config_free(&c);
	/* parsed without a file, a relative path has nothing to be relative to */
	cr_expect_neq(agent_config_parse("state_dir: state\n", 17, "agent.yml", &c, why, sizeof why), 0);
	cr_expect(strstr(why, "absolute"), "%s", why);
}

/* ---- server targets: allowed_paths, commands ---- */

static void job_with_target(struct work_job *j, const char *json)
{
	json_t *o = json_loads(json, 0, NULL);
	char why[256];

	cr_assert_not_null(o);
	cr_assert_eq(work_job_from_json(o, j, why, sizeof why), 0, "%s", why);
	json_decref(o);
}

Test(agent_targets, server_paths_under_allowed_paths_only, .init = make_tmpdir, .fini = remove_tmpdir)
{
	struct agent_config c;
	char why[512], yml[PATH_MAX + 64], json[4 * PATH_MAX], inside[PATH_MAX + 16];
	struct work_job j;
	struct deploy_target *t;
	size_t n;

	snprintf(inside, sizeof inside, "%s/certs", tmpdir);
	mkdir(inside, 0755);
	snprintf(yml, sizeof yml, "allowed_paths: [%s]\n", inside);
	cr_assert_eq(parse(yml, &c, why), 0, "%s", why);

	/* inside: accepted, with the type's default commands */
	snprintf(json, sizeof json,
		 "{\"id\":\"job-1\",\"type\":\"Issuance\",\"status\":\"AwaitingCSR\",\"certificate_id\":\"mc-1\","
		 "\"targets\":[{\"id\":\"tgt-1\",\"name\":\"web\",\"type\":\"NGINX\",\"config\":{"
		 "\"cert_path\":\"%s/web.crt\",\"key_path\":\"%s/web.key\","
		 "\"validate\":[\"sh\",\"-c\",\"touch /tmp/pwned\"],\"reload\":[\"rm\",\"-rf\",\"/\"],"
		 "\"reload_command\":\"rm -rf /\"}}]}",
		 inside, inside);
	job_with_target(&j, json);
	cr_assert_eq(deploy_resolve(&c, &j, &t, &n, why, sizeof why), 0, "%s", why);
	cr_assert_eq(n, 1);
	cr_expect_eq(t[0].type, TARGET_NGINX);
	cr_expect_str_eq(t[0].validate[0], "nginx");
	cr_expect_str_eq(t[0].validate[1], "-t");
	cr_expect_str_eq(t[0].reload[0], "nginx");
	cr_expect_str_eq(t[0].reload[2], "reload");
	deploy_targets_free(t, n);
	work_job_free(&j);

	/* outside, through "..", or a symlinked directory out of the prefix */
	{
		/* appended to the allowed directory unless they start with '/' or 'r' */
		const char *bad[] = {"/etc/passwd", "/../evil.crt", "/./web.crt", "/link/web.crt",
				     "relative.crt"};
		char link[PATH_MAX + 32];

		snprintf(link, sizeof link, "%s/link", inside);
		cr_assert_eq(symlink("/etc", link), 0);
		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			char path[PATH_MAX + 64];

			if (i == 0 || bad[i][0] == 'r')
				snprintf(path, sizeof path, "%s", bad[i]);
			else
				snprintf(path, sizeof path, "%s%s", inside, bad[i]);
			snprintf(json, sizeof json,
				 "{\"id\":\"job-1\",\"type\":\"Issuance\",\"status\":\"AwaitingCSR\","
				 "\"certificate_id\":\"mc-1\",\"targets\":[{\"id\":\"tgt-1\",\"name\":\"web\","
				 "\"type\":\"NGINX\",\"config\":{\"cert_path\":\"%s\",\"key_path\":\"%s/web.key\"}}]}",
				 path, inside);
			job_with_target(&j, json);
			cr_expect_neq(deploy_resolve(&c, &j, &t, &n, why, sizeof why), 0, "accepted %s", path);
			work_job_free(&j);
		}
	}
	agent_config_free(&c);
}

Test(agent_targets, local_entry_supplies_everything)
{
	struct agent_config c;
	char why[512];
	struct work_job j;
	struct deploy_target *t;
	size_t n;

	cr_assert_eq(parse(valid_yml, &c, why), 0, "%s", why);
	/* bound by target_id; the server's paths and commands are ignored */
	job_with_target(&j, "{\"id\":\"job-1\",\"type\":\"Renewal\",\"status\":\"AwaitingCSR\","
			    "\"certificate_id\":\"mc-1\",\"targets\":[{\"id\":\"tgt-web\",\"name\":\"x\","
			    "\"type\":\"Apache\",\"config\":{\"cert_path\":\"/tmp/elsewhere.crt\","
			    "\"reload\":[\"sh\",\"-c\",\"id\"]}},"
			    "{\"id\":\"tgt-2\",\"name\":\"lb\",\"type\":\"HAProxy\"}]}");
	cr_assert_eq(deploy_resolve(&c, &j, &t, &n, why, sizeof why), 0, "%s", why);
	cr_assert_eq(n, 2);
	cr_expect_str_eq(t[0].name, "web");
	cr_expect_eq(t[0].type, TARGET_NGINX);
	cr_expect_str_eq(t[0].cert_path, "/etc/nginx/certs/web.crt");
	cr_expect_str_eq(t[0].validate[2], "-c");
	cr_expect_str_eq(t[0].reload[1], "-s");
	/* matched by name; agent.yml's empty reload list means none */
	cr_expect_str_eq(t[1].pem_path, "/etc/haproxy/site.pem");
	cr_expect_null(t[1].reload);
	cr_expect_str_eq(t[1].validate[0], "haproxy");
	deploy_targets_free(t, n);
	work_job_free(&j);
	agent_config_free(&c);
}

Test(agent_targets, default_commands)
{
	cr_expect_str_eq(target_default_validate(TARGET_APACHE)[1], "configtest");
	cr_expect_str_eq(target_default_reload(TARGET_APACHE)[1], "graceful");
	cr_expect_str_eq(target_default_validate(TARGET_HAPROXY)[3], "/etc/haproxy/haproxy.cfg");
	cr_expect_str_eq(target_default_reload(TARGET_HAPROXY)[0], "systemctl");
	cr_expect_str_eq(target_default_validate(TARGET_POSTFIX)[1], "check");
	cr_expect_str_eq(target_default_reload(TARGET_DOVECOT)[0], "doveadm");
	cr_expect_null(target_default_validate(TARGET_FILE));
	cr_expect_null(target_default_reload(TARGET_FILE));
	cr_expect_eq(target_type_from_name("HAProxy"), TARGET_HAPROXY);
	cr_expect_eq(target_type_from_name("Dovecot"), TARGET_DOVECOT);
	cr_expect_eq(target_type_from_name("IIS"), TARGET_NONE);
}

/* ---- atomic writes ---- */

static int count_entries(const char *dir)
{
	char cmd[PATH_MAX + 32];
	FILE *p;
	int n = 0;
	char line[512];

	snprintf(cmd, sizeof cmd, "ls -A %s", dir);
	p = popen(cmd, "r");
	while (p && fgets(line, sizeof line, p))
		n++;
	if (p)
		pclose(p);
	return n;
}

Test(agent_fs, atomic_write_keeps_owner_and_mode, .init = make_tmpdir, .fini = remove_tmpdir)
{
	char path[PATH_MAX + 16], why[256], *s;
	struct stat st;
	int root = geteuid() == 0;

	snprintf(path, sizeof path, "%s/web.crt", tmpdir);
	put(path, "old content\n", 0640);
	if (root)
		cr_assert_eq(chown(path, 1234, 4321), 0);
	cr_assert_eq(atomic_write(path, "new content\n", 12, 0644, NULL, why, sizeof why), 0, "%s", why);
	s = slurp(path);
	cr_expect_str_eq(s, "new content\n");
	free(s);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0640);
	if (root) {
		cr_expect_eq(st.st_uid, 1234);
		cr_expect_eq(st.st_gid, 4321);
	}
	/* no temporary file left behind */
	cr_expect_eq(count_entries(tmpdir), 1);

	/* a new file gets the mode it is given */
	snprintf(path, sizeof path, "%s/new.key", tmpdir);
	cr_assert_eq(atomic_write(path, "k", 1, 0600, NULL, why, sizeof why), 0, "%s", why);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0600);
	cr_expect_eq(count_entries(tmpdir), 2);

	/* a directory in the way: refused, nothing left */
	snprintf(path, sizeof path, "%s/adir", tmpdir);
	mkdir(path, 0755);
	cr_expect_neq(atomic_write(path, "x", 1, 0644, NULL, why, sizeof why), 0);
	cr_expect_eq(count_entries(tmpdir), 3);
}

Test(agent_fs, unchanged_files_are_skipped, .init = make_tmpdir, .fini = remove_tmpdir)
{
	char crt[PATH_MAX + 16], key[PATH_MAX + 16];
	struct deploy_target t = {.type = TARGET_NGINX};
	struct deploy_file f[DEPLOY_MAX_FILES];
	int n;
	uint8_t h[32];

	snprintf(crt, sizeof crt, "%s/web.crt", tmpdir);
	snprintf(key, sizeof key, "%s/web.key", tmpdir);
	t.cert_path = crt;
	t.key_path = key;
	n = deploy_plan(&t, "LEAF\n", "CHAIN\n", "KEY\n", 4, f);
	cr_assert_eq(n, 2);
	cr_expect_eq(deploy_unchanged(f, (size_t)n), 0); /* nothing there yet */
	put(key, "KEY\n", 0600);
	put(crt, "LEAF\nCHAIN\n", 0644);
	cr_expect_eq(deploy_unchanged(f, (size_t)n), 1);
	put(crt, "LEAF\nOTHER\n", 0644);
	cr_expect_eq(deploy_unchanged(f, (size_t)n), 0);
	cr_expect_eq(file_sha256(crt, h), 1);
	deploy_files_free(f, (size_t)n);
}

Test(agent_fs, plans_by_type)
{
	struct deploy_target t = {.type = TARGET_HAPROXY, .pem_path = "/x/site.pem"};
	struct deploy_file f[DEPLOY_MAX_FILES];
	int n = deploy_plan(&t, "LEAF", "CHAIN", "KEY\n", 4, f);

	cr_assert_eq(n, 1);
	cr_expect_str_eq(f[0].content, "LEAF\nCHAIN\nKEY\n");
	cr_expect_eq(f[0].new_mode, 0600);
	deploy_files_free(f, (size_t)n);

	t = (struct deploy_target){.type = TARGET_APACHE, .cert_path = "/c", .key_path = "/k",
				   .chain_path = "/ch"};
	n = deploy_plan(&t, "LEAF\n", "CHAIN\n", "KEY\n", 4, f);
	cr_assert_eq(n, 3);
	cr_expect_str_eq(f[1].content, "LEAF\n");
	cr_expect_str_eq(f[2].content, "CHAIN\n");
	cr_expect_eq(f[0].new_mode, 0600);
	cr_expect_eq(f[1].new_mode, 0644);
	deploy_files_free(f, (size_t)n);

	t = (struct deploy_target){.type = TARGET_FILE, .cert_path = "/c", .key_path = "/k",
				   .chain_path = "/ch"};
	n = deploy_plan(&t, "LEAF\n", "CHAIN\n", "KEY\n", 4, f);
	cr_assert_eq(n, 3);
	cr_expect_str_eq(f[1].content, "LEAF\nCHAIN\n");
	cr_expect_str_eq(f[2].content, "CHAIN\n");
	deploy_files_free(f, (size_t)n);
}

/* ---- backups and rollback ---- */

Test(agent_fs, rollback_restores_bytes_and_mode, .init = make_tmpdir, .fini = remove_tmpdir)
{
	char job[PATH_MAX + 16], crt[PATH_MAX + 16], key[PATH_MAX + 16], why[256], *s;
	struct deploy_target t = {.type = TARGET_NGINX};
	struct deploy_file f[DEPLOY_MAX_FILES];
	struct stat st;
	int n;

	snprintf(job, sizeof job, "%s/job", tmpdir);
	mkdir(job, 0700);
	snprintf(crt, sizeof crt, "%s/web.crt", tmpdir);
	snprintf(key, sizeof key, "%s/web.key", tmpdir);
	put(crt, "OLD CERT\n", 0604);
	t.cert_path = crt;
	t.key_path = key; /* did not exist before */
	n = deploy_plan(&t, "NEW LEAF\n", "", "NEW KEY\n", 8, f);
	cr_assert_eq(n, 2);
	cr_assert_eq(backup_files(job, 0, f, (size_t)n, why, sizeof why), 0, "%s", why);
	for (int i = 0; i < n; i++)
		cr_assert_eq(atomic_write(f[i].path, f[i].content, f[i].len, f[i].new_mode, NULL, why,
					  sizeof why), 0, "%s", why);
	chmod(crt, 0600); /* what a deploy might leave */
	s = slurp(crt);
	cr_expect_str_eq(s, "NEW LEAF\n");
	free(s);
	cr_assert_eq(restore_backups(job, 0, why, sizeof why), 0, "%s", why);
	s = slurp(crt);
	cr_expect_str_eq(s, "OLD CERT\n");
	free(s);
	cr_assert_eq(stat(crt, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0604);
	cr_expect_neq(access(key, F_OK), 0, "a file that did not exist is removed");
	/* a second backup of the same job keeps the first (the original) */
	put(crt, "CHANGED\n", 0644);
	cr_assert_eq(backup_files(job, 0, f, (size_t)n, why, sizeof why), 0, "%s", why);
	cr_assert_eq(restore_backups(job, 0, why, sizeof why), 0, "%s", why);
	s = slurp(crt);
	cr_expect_str_eq(s, "OLD CERT\n");
	free(s);
	{
		int idx[4];

		cr_expect_eq(backup_targets(job, idx, 4), 1);
		cr_expect_eq(idx[0], 0);
	}
	deploy_files_free(f, (size_t)n);
}

/* ---- the journal ---- */

static void sample_job(struct work_job *j)
{
	job_with_target(j, "{\"id\":\"job-42\",\"type\":\"Issuance\",\"status\":\"AwaitingCSR\","
			   "\"certificate_id\":\"mc-7\",\"common_name\":\"web.example.internal\","
			   "\"sans\":[\"web.example.internal\",\"10.0.0.1\"],\"key_algorithm\":\"RSA\","
			   "\"key_size\":3072,\"targets\":[{\"id\":\"tgt-1\",\"name\":\"web\",\"type\":\"NGINX\","
			   "\"config\":{\"cert_path\":\"/etc/nginx/certs/a.crt\"}}]}");
}

Test(agent_journal, each_phase_round_trips, .init = make_tmpdir, .fini = remove_tmpdir)
{
	struct work_job w;
	struct journal j, back;
	char why[256];

	sample_job(&w);
	cr_assert_eq(journal_create(tmpdir, &w, &j, why, sizeof why), 0, "%s", why);
	for (int p = PHASE_ACCEPTED; p <= PHASE_REPORTED; p++) {
		if (p == PHASE_DEPLOYED) {
			j.result_ok = 0;
			snprintf(j.result_error, sizeof j.result_error, "validate exited 1: \"bad\"\nline 2");
			snprintf(j.serial, sizeof j.serial, "0abc");
		}
		cr_assert_eq(journal_set_phase(&j, (enum job_phase)p, why, sizeof why), 0, "%s", why);
		cr_assert_eq(journal_load(j.dir, &back, why, sizeof why), 0, "%s", why);
		cr_expect_eq(back.phase, (enum job_phase)p, "phase %s", job_phase_name((enum job_phase)p));
		cr_expect_str_eq(back.job.id, "job-42");
		cr_expect_str_eq(back.job.certificate_id, "mc-7");
		cr_expect_eq(back.job.key_alg, KEY_RSA);
		cr_expect_eq(back.job.key_bits, 3072);
		cr_expect_eq(back.job.nsans, 2);
		cr_expect_eq(back.job.ntargets, 1);
		cr_expect_str_eq(back.job.targets[0].cert_path, "/etc/nginx/certs/a.crt");
		if (p >= PHASE_DEPLOYED) {
			cr_expect_eq(back.result_ok, 0);
			cr_expect_str_eq(back.result_error, "validate exited 1: \"bad\"\nline 2");
			cr_expect_str_eq(back.serial, "0abc");
		}
		journal_free(&back);
	}
	{
		char *ids[4];
		int n = journal_list(tmpdir, ids, 4);

		cr_expect_eq(n, 1);
		if (n == 1) {
			cr_expect_str_eq(ids[0], "job-42");
			free(ids[0]);
		}
	}
	journal_free(&j);
	work_job_free(&w);
}

Test(agent_journal, resume_decisions)
{
	cr_expect_eq(journal_resume_action(PHASE_ACCEPTED, 0, 0), RESUME_START);
	cr_expect_eq(journal_resume_action(PHASE_ACCEPTED, 1, 0), RESUME_START);
	cr_expect_eq(journal_resume_action(PHASE_CSR_SENT, 1, 0), RESUME_RECOVER_CERT);
	cr_expect_eq(journal_resume_action(PHASE_CSR_SENT, 1, 1), RESUME_DEPLOY);
	cr_expect_eq(journal_resume_action(PHASE_CSR_SENT, 0, 0), RESUME_START);
	cr_expect_eq(journal_resume_action(PHASE_RECEIVED, 1, 1), RESUME_DEPLOY);
	cr_expect_eq(journal_resume_action(PHASE_DEPLOYING, 1, 1), RESUME_RESTORE_DEPLOY);
	cr_expect_eq(journal_resume_action(PHASE_DEPLOYED, 1, 1), RESUME_REPORT);
	cr_expect_eq(journal_resume_action(PHASE_REPORTED, 0, 0), RESUME_FORGET);
}

Test(agent_journal, refuses_unsafe_ids, .init = make_tmpdir, .fini = remove_tmpdir)
{
	char dir[PATH_MAX];

	cr_expect_neq(journal_dir(tmpdir, "../etc", dir, sizeof dir), 0);
	cr_expect_neq(journal_dir(tmpdir, "a/b", dir, sizeof dir), 0);
	cr_expect_neq(journal_dir(tmpdir, ".hidden", dir, sizeof dir), 0);
	cr_expect_neq(journal_dir(tmpdir, "", dir, sizeof dir), 0);
	cr_expect_eq(journal_dir(tmpdir, "job-0190.a_b", dir, sizeof dir), 0);
}

/* ---- the command runner ---- */

Test(agent_runner, exit_status_and_output)
{
	const char *ok[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
	struct run_result r;

	cr_expect_eq(run_command(ok, 5000, &r), 1);
	cr_expect_eq(r.exit_status, 3);
	cr_expect(strstr(r.output, "out") && strstr(r.output, "err"), "%s", r.output);
	cr_expect_not(r.truncated);
	{
		const char *t[] = {"true", NULL};

		cr_expect_eq(run_command(t, 5000, &r), 0);
		cr_expect_eq(r.exit_status, 0);
	}
	{
		const char *missing[] = {"/nonexistent/certward-no-such-program", NULL};

		cr_expect_eq(run_command(missing, 5000, &r), -1);
		cr_expect(r.exec_failed);
		cr_expect(strstr(r.output, "cannot run"), "%s", r.output);
	}
}

Test(agent_runner, output_truncated_at_4k)
{
	const char *argv[] = {"sh", "-c", "head -c 20000 /dev/zero | tr '\\0' x", NULL};
	struct run_result r;

	cr_expect_eq(run_command(argv, 5000, &r), 0);
	cr_expect_eq(r.output_len, RUN_OUTPUT_MAX);
	cr_expect(r.truncated);
	cr_expect_eq(strlen(r.output), RUN_OUTPUT_MAX);
}

Test(agent_runner, timeout_kills)
{
	const char *argv[] = {"sh", "-c", "echo started; sleep 30", NULL};
	struct run_result r;
	uint64_t t0 = now_ms();

	cr_expect_eq(run_command(argv, 300, &r), 1);
	cr_expect(r.timed_out);
	cr_expect(now_ms() - t0 < 5000, "took %llums", (unsigned long long)(now_ms() - t0));
	cr_expect(strstr(r.output, "started") && strstr(r.output, "killed"), "%s", r.output);
}

Test(agent_runner, no_shell, .init = make_tmpdir, .fini = remove_tmpdir)
{
	char marker[PATH_MAX + 16], arg[PATH_MAX + 64];
	const char *argv[] = {"echo", arg, NULL};
	struct run_result r;

	snprintf(marker, sizeof marker, "%s/x", tmpdir);
	snprintf(arg, sizeof arg, "a; touch %s", marker);
	cr_expect_eq(run_command(argv, 5000, &r), 0);
	cr_expect(strstr(r.output, "; touch"), "%s", r.output);
	cr_expect_neq(access(marker, F_OK), 0, "a shell ran the argument");
}

Test(agent_runner, minimal_environment)
{
	const char *argv[] = {"env", NULL};
	struct run_result r;

	setenv("CERTWARD_SECRET_TEST", "leak", 1);
	cr_expect_eq(run_command(argv, 5000, &r), 0);
	cr_expect(strstr(r.output, "PATH="), "%s", r.output);
	cr_expect_null(strstr(r.output, "CERTWARD_SECRET_TEST"), "%s", r.output);
}

/* ---- the work answer ---- */

Test(agent_work, parses_a_work_item)
{
	const char *body =
		"{\"jobs\":[{\"id\":\"job-1\",\"type\":\"Issuance\",\"status\":\"AwaitingCSR\","
		"\"certificate_id\":\"mc-1\",\"common_name\":\"web\",\"sans\":[\"web\"],"
		"\"key_algorithm\":\"Ed25519\",\"key_size\":0,\"target_id\":\"tgt-1\",\"target_type\":\"NGINX\","
		"\"target_config\":{},\"targets\":[{\"id\":\"tgt-1\",\"name\":\"web\",\"type\":\"NGINX\",\"config\":{}},"
		"{\"id\":\"tgt-1\",\"name\":\"dup\",\"type\":\"NGINX\"}]},"
		"{\"id\":\"../x\",\"type\":\"Issuance\",\"status\":\"AwaitingCSR\",\"certificate_id\":\"mc-1\"},"
		"{\"id\":\"job-3\",\"type\":\"Issuance\",\"status\":\"AwaitingCSR\",\"certificate_id\":\"mc-1\","
		"\"key_algorithm\":\"DSA\"}],\"count\":3}";
	struct work_list l;
	char why[256];

	cr_assert_eq(work_parse(body, strlen(body), &l, why, sizeof why), 0, "%s", why);
	cr_expect_eq(l.njobs, 1);
	cr_expect_eq(l.skipped, 2);
	cr_expect_eq(l.jobs[0].key_alg, KEY_ED25519);
	cr_expect_eq(l.jobs[0].ntargets, 1);
	work_list_free(&l);
}

Test(agent_work, bounds)
{
	struct strbuf b;
	struct work_list l;
	char why[256];
	struct work_job j;

	strbuf_init(&b, 1 << 20);
	strbuf_printf(&b, "{\"jobs\":[");
	for (int i = 0; i <= WORK_MAX_JOBS; i++)
		strbuf_printf(&b, "%s{\"id\":\"job-%d\",\"type\":\"Issuance\",\"status\":\"AwaitingCSR\","
				  "\"certificate_id\":\"mc-1\"}", i ? "," : "", i);
	strbuf_printf(&b, "]}");
	cr_expect_neq(work_parse(b.p, b.len, &l, why, sizeof why), 0);
	strbuf_free(&b);

	strbuf_init(&b, 1 << 20);
	strbuf_printf(&b, "{\"id\":\"job-1\",\"type\":\"Issuance\",\"status\":\"AwaitingCSR\","
			  "\"certificate_id\":\"mc-1\",\"targets\":[");
	for (int i = 0; i <= WORK_MAX_TARGETS; i++)
		strbuf_printf(&b, "%s{\"id\":\"t-%d\"}", i ? "," : "", i);
	strbuf_printf(&b, "]}");
	{
		json_t *o = json_loads(b.p, 0, NULL);

		cr_expect_neq(work_job_from_json(o, &j, why, sizeof why), 0);
		json_decref(o);
	}
	strbuf_free(&b);
	{
		char id[WORK_ID_MAX + 2];
		char text[512];
		json_t *o;

		memset(id, 'a', sizeof id - 1);
		id[sizeof id - 1] = 0;
		snprintf(text, sizeof text, "{\"id\":\"%s\",\"type\":\"Issuance\",\"status\":\"AwaitingCSR\","
					    "\"certificate_id\":\"mc-1\"}", id);
		o = json_loads(text, 0, NULL);
		cr_expect_neq(work_job_from_json(o, &j, why, sizeof why), 0);
		json_decref(o);
	}
	cr_expect_neq(work_parse("[]", 2, &l, why, sizeof why), 0);
	cr_expect_neq(work_parse("{\"jobs\":{}}", 11, &l, why, sizeof why), 0);
}

Test(agent_work, challenges)
{
	/* one good challenge; a token that would leave the directory; a key
	 * authorization for another token; a short thumbprint; no target */
	static const char *body =
		"{\"jobs\":[],\"count\":0,\"challenges\":["
		"{\"token\":\"tok_A-1\",\"key_authorization\":\"tok_A-1.abcdefghijABCDEFGHIJ0123456789_-abcdefghijk\","
		"\"target_id\":\"tgt-1\",\"target_name\":\"web\",\"webroot\":\"/srv/www\",\"state\":\"waiting\"},"
		"{\"token\":\"../x\",\"key_authorization\":\"../x.abcdefghijABCDEFGHIJ0123456789_-abcdefghijk\","
		"\"target_id\":\"tgt-1\",\"state\":\"waiting\"},"
		"{\"token\":\"tokB\",\"key_authorization\":\"tokC.abcdefghijABCDEFGHIJ0123456789_-abcdefghijk\","
		"\"target_id\":\"tgt-1\",\"state\":\"waiting\"},"
		"{\"token\":\"tokD\",\"key_authorization\":\"tokD.short\",\"target_id\":\"tgt-1\",\"state\":\"ready\"},"
		"{\"token\":\"tokE\",\"key_authorization\":\"tokE.abcdefghijABCDEFGHIJ0123456789_-abcdefghijk\","
		"\"state\":\"waiting\"}]}";
	struct work_list l;
	char why[256];
	struct strbuf b;

	cr_assert_eq(work_parse(body, strlen(body), &l, why, sizeof why), 0, "%s", why);
	cr_assert_eq(l.nchallenges, 1);
	cr_expect_eq(l.skipped, 4);
	cr_expect_str_eq(l.challenges[0].token, "tok_A-1");
	cr_expect_str_eq(l.challenges[0].target_id, "tgt-1");
	cr_expect_str_eq(l.challenges[0].webroot, "/srv/www");
	cr_expect_str_eq(l.challenges[0].state, "waiting");
	work_list_free(&l);

	/* more than WORK_MAX_CHALLENGES, or not a list: the answer is refused */
	strbuf_init(&b, 1 << 20);
	strbuf_printf(&b, "{\"jobs\":[],\"challenges\":[");
	for (int i = 0; i <= WORK_MAX_CHALLENGES; i++)
		strbuf_printf(&b, "%s{\"token\":\"t%d\"}", i ? "," : "", i);
	strbuf_printf(&b, "]}");
	cr_expect_neq(work_parse(b.p, b.len, &l, why, sizeof why), 0);
	strbuf_free(&b);
	cr_expect_neq(work_parse("{\"jobs\":[],\"challenges\":{}}", 27, &l, why, sizeof why), 0);
}

/* ---- keys and CSRs ---- */

Test(agent_keys, every_key_type_makes_a_csr)
{
	const struct {
		enum key_alg alg;
		int bits;
	} kinds[] = {{KEY_ECDSA, 256}, {KEY_ECDSA, 384}, {KEY_RSA, 2048}, {KEY_ED25519, 0}};
	const char *sans[] = {"web.example.internal", "10.0.0.1", "2001:db8::1"};

	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		char why[256];
		EVP_PKEY *k = key_generate(kinds[i].alg, kinds[i].bits, why, sizeof why);
		char *csr, *pem;
		size_t len = 0;
		BIO *b;
		X509_REQ *req;
		EVP_PKEY *pub, *back;

		cr_assert_not_null(k, "%s", why);
		csr = csr_make(k, "web.example.internal", sans, 3, why, sizeof why);
		cr_assert_not_null(csr, "%s", why);
		b = BIO_new_mem_buf(csr, (int)strlen(csr));
		req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
		cr_assert_not_null(req);
		pub = X509_REQ_get_pubkey(req);
		cr_expect_eq(X509_REQ_verify(req, pub), 1);
		cr_expect_eq(EVP_PKEY_cmp(pub, k), 1);
		pem = key_to_pem(k, &len);
		back = key_from_pem(pem, len);
		cr_expect_eq(EVP_PKEY_cmp(back, k), 1);
		free_wiped(pem, len);
		EVP_PKEY_free(back);
		EVP_PKEY_free(pub);
		X509_REQ_free(req);
		BIO_free(b);
		free(csr);
		EVP_PKEY_free(k);
	}
	{
		char why[256];

		cr_expect_null(key_generate(KEY_RSA, 1024, why, sizeof why));
		cr_expect_null(key_generate(KEY_ECDSA, 521, why, sizeof why));
	}
}

Test(agent_keys, saved_key_is_0600, .init = make_tmpdir, .fini = remove_tmpdir)
{
	char path[PATH_MAX + 16], why[256];
	EVP_PKEY *k = key_generate(KEY_ECDSA, 256, why, sizeof why), *back;
	struct stat st;

	snprintf(path, sizeof path, "%s/id.key", tmpdir);
	cr_assert_eq(key_save(k, path, why, sizeof why), 0, "%s", why);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0600);
	back = key_load(path);
	cr_expect_eq(EVP_PKEY_cmp(back, k), 1);
	EVP_PKEY_free(back);
	EVP_PKEY_free(k);
}
