/* certward: the operator's command line. `certward ctl ...` speaks to the
 * local master over the control socket; the other commands speak to the
 * REST API over HTTPS (api_cmds.c, resource_cmds.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent_token.h"
#include "api_cmds.h"
#include "build_config.h"
#include "cli.h"
#include "codec.h"
#include "config.h"
#include "resource_cmds.h"
#include "util.h"

#define CLI_COMMAND(cmd, sub, fn, usage_fn) \
	int fn(int argc, char **argv);      \
	void usage_fn(FILE *out);
#include "commands.def"
#undef CLI_COMMAND

static const struct {
	const char *cmd, *sub;
	int (*run)(int argc, char **argv);
	void (*usage)(FILE *out);
} commands[] = {
#define CLI_COMMAND(cmd, sub, fn, usage_fn) {cmd, sub, fn, usage_fn},
#include "commands.def"
#undef CLI_COMMAND
};

#define DEFAULT_SOCKET "/run/certward/control.sock"
#define REPLY_TIMEOUT_S 30

void ctl_usage(FILE *out)
{
	fprintf(out,
		"  ctl [-s SOCKET | -c CONFIG] status [--metrics]\n"
		"                              table of workers: pid, state, restarts, uptime, last exit\n"
		"  ctl ... restart WORKER      restart one worker (e.g. store, api, api.1)\n"
		"  ctl ... reload              re-read the configuration (like SIGHUP)\n"
		"  ctl ... ping WORKER [PEER]  ping a worker through the master, or have WORKER\n"
		"                              ping its wired PEER\n"
		"  ctl ... metrics WORKER      counters and gauges of a worker\n"
		"                              The control socket is SOCKET, else\n"
		"                              $CERTWARD_CONTROL_SOCKET, else master.control_socket\n"
		"                              of CONFIG, else " DEFAULT_SOCKET ".\n");
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: certward [--version] [--help] COMMAND ...\n"
		"\n"
		"commands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		commands[i].usage(out);
	fprintf(out, "\nREST commands:\n");
	api_cmd_usage(out);
	fprintf(out,
		"\n"
		"resource commands: certward COMMAND ACTION [ID] [OPTIONS]; each takes --help\n");
	resource_cmd_usage(out);
	fprintf(out,
		"\n"
		"options of the REST and resource commands (after the command):\n");
	cli_common_usage(out);
	fprintf(out,
		"\n"
		"exit status: 0 done, 1 the server answered with an error (or not ready),\n"
		"2 a bad command line, 66 --data @FILE unreadable, 69 cannot connect, not\n"
		"trusted or timed out, 71 out of memory, 76 a malformed answer\n");
}

static int connect_master(const char *path)
{
	struct sockaddr_un sa;
	struct timeval tv = {REPLY_TIMEOUT_S, 0};
	int fd;

	if (strlen(path) >= sizeof sa.sun_path) {
		fprintf(stderr, "certward: control socket path too long\n");
		return -1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		fprintf(stderr, "certward: cannot connect to %s: %s (is certwardd running?)\n", path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

/* Sends one request and prints the answer. Returns the exit status. */
static int call(int fd, struct ipc_msg *req, int quiet_ok, struct ipc_msg *out)
{
	static uint64_t next_id = 1;
	uint8_t *frame, hdr[IPC_HEADER_LEN];
	struct ipc_header h;
	struct ipc_msg r;
	size_t len;
	int rc;

	req->id = next_id++;
	if (ipc_encode(req, &frame, &len) != IPC_OK) {
		fprintf(stderr, "certward: argument too long\n");
		return EXIT_USAGE;
	}
	rc = fd_write_full(fd, frame, len);
	free(frame);
	if (rc != 0 || fd_read_full(fd, hdr, sizeof hdr) != 0) {
		fprintf(stderr, "certward: no answer from certwardd: %s\n",
			errno == EAGAIN ? "timed out" : "connection closed");
		return EXIT_UNAVAILABLE;
	}
	rc = ipc_header_decode(hdr, &h, IPC_ROLE_MASTER);
	if (rc != IPC_OK) {
		fprintf(stderr, "certward: bad answer from certwardd: %s\n", ipc_strerror(rc));
		return EXIT_PROTOCOL;
	}
	frame = malloc(IPC_HEADER_LEN + (size_t)h.len);
	if (!frame)
		return EXIT_OSERR;
	memcpy(frame, hdr, sizeof hdr);
	if (fd_read_full(fd, frame + IPC_HEADER_LEN, h.len) != 0) {
		free(frame);
		fprintf(stderr, "certward: truncated answer from certwardd\n");
		return EXIT_PROTOCOL;
	}
	rc = ipc_decode(frame, IPC_HEADER_LEN + (size_t)h.len, IPC_ROLE_MASTER, &r);
	free(frame);
	if (rc != IPC_OK) {
		fprintf(stderr, "certward: bad answer from certwardd: %s\n", ipc_strerror(rc));
		return EXIT_PROTOCOL;
	}
	if (r.type == IPC_T_ERROR) {
		fprintf(stderr, "certward: %s\n", r.u.error.message);
		ipc_msg_free(&r);
		return 1;
	}
	if (r.type != IPC_T_CTL_OK) {
		fprintf(stderr, "certward: unexpected answer %s\n", ipc_type_name(r.type));
		ipc_msg_free(&r);
		return EXIT_PROTOCOL;
	}
	if (!quiet_ok)
		fwrite(r.u.ctl_ok.text.ptr, 1, r.u.ctl_ok.text.len, stdout);
	if (out)
		*out = r;
	else
		ipc_msg_free(&r);
	return 0;
}

static int status_with_metrics(int fd)
{
	struct ipc_msg req = {.type = IPC_T_CTL_STATUS}, table;
	char *text, *line, *save = NULL;
	int rc = call(fd, &req, 0, &table);

	if (rc != 0)
		return rc;
	text = strndup((const char *)table.u.ctl_ok.text.ptr, table.u.ctl_ok.text.len);
	ipc_msg_free(&table);
	if (!text)
		return EXIT_OSERR;
	line = strtok_r(text, "\n", &save); /* header */
	while ((line = strtok_r(NULL, "\n", &save))) {
		char name[33];
		struct ipc_msg m = {.type = IPC_T_CTL_METRICS}, out;

		if (sscanf(line, "%32s", name) != 1 || !strstr(line, " running "))
			continue;
		m.u.ctl_metrics.worker = name;
		printf("\n[%s]\n", name);
		if (call(fd, &m, 1, &out) == 0) {
			fwrite(out.u.ctl_ok.text.ptr, 1, out.u.ctl_ok.text.len, stdout);
			ipc_msg_free(&out);
		}
	}
	free(text);
	return 0;
}

static const char *socket_from_config(const char *path)
{
	static char buf[256];
	struct cfg *cfg;
	struct cfg_error err;
	char line[512];

	if (cfg_load(path, NULL, &cfg, &err) != 0) {
		cfg_error_format(&err, line, sizeof line);
		fprintf(stderr, "certward: %s\n", line);
		return NULL;
	}
	snprintf(buf, sizeof buf, "%s", cfg_str(cfg, "master", "control_socket"));
	cfg_free(cfg);
	return buf;
}

static int ctl_usage_error(const char *at)
{
	if (at)
		return cli_usage_error(NULL, "ctl: unexpected '%s'", at);
	return cli_usage_error(NULL, "ctl needs a command: status, restart, reload, ping or metrics");
}

int ctl_main(int argc, char **argv)
{
	const char *sock = getenv("CERTWARD_CONTROL_SOCKET");
	struct ipc_msg m = {0};
	int i = 1, fd, rc;

	if (!sock || !*sock)
		sock = DEFAULT_SOCKET;
	while (i < argc && argv[i][0] == '-') {
		if ((strcmp(argv[i], "-s") == 0 || strcmp(argv[i], "--socket") == 0) && i + 1 < argc) {
			sock = argv[i + 1];
			i += 2;
		} else if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
			   i + 1 < argc) {
			sock = socket_from_config(argv[i + 1]);
			if (!sock)
				return 78;
			i += 2;
		} else {
			return ctl_usage_error(argv[i]);
		}
	}
	if (i >= argc)
		return ctl_usage_error(NULL);
	const char *cmd = argv[i++];
	int nargs = argc - i;

	if (strcmp(cmd, "status") == 0 && nargs <= 1) {
		if (nargs == 1 && strcmp(argv[i], "--metrics") != 0)
			return ctl_usage_error(argv[i]);
		if (nargs == 1) {
			fd = connect_master(sock);
			if (fd < 0)
				return EXIT_UNAVAILABLE;
			rc = status_with_metrics(fd);
			close(fd);
			return rc;
		}
		m.type = IPC_T_CTL_STATUS;
	} else if (strcmp(cmd, "restart") == 0 && nargs == 1) {
		m.type = IPC_T_CTL_RESTART;
		m.u.ctl_restart.worker = argv[i];
	} else if (strcmp(cmd, "reload") == 0 && nargs == 0) {
		m.type = IPC_T_CTL_RELOAD;
	} else if (strcmp(cmd, "ping") == 0 && (nargs == 1 || nargs == 2)) {
		m.type = IPC_T_CTL_PING;
		m.u.ctl_ping.worker = argv[i];
		m.u.ctl_ping.peer = nargs == 2 ? argv[i + 1] : "";
	} else if (strcmp(cmd, "metrics") == 0 && nargs == 1) {
		m.type = IPC_T_CTL_METRICS;
		m.u.ctl_metrics.worker = argv[i];
	} else if (strcmp(cmd, "test-hook") == 0 && nargs == 3) {
		/* only builds with -Dtest_hooks=true act on it */
		m.type = IPC_T_CTL_TEST_HOOK;
		m.u.ctl_test_hook.worker = argv[i];
		m.u.ctl_test_hook.hook = argv[i + 1];
		m.u.ctl_test_hook.arg = argv[i + 2];
	} else {
		return ctl_usage_error(cmd);
	}
	fd = connect_master(sock);
	if (fd < 0)
		return EXIT_UNAVAILABLE;
	rc = call(fd, &m, 0, NULL);
	close(fd);
	return rc;
}

int main(int argc, char **argv)
{
	int rc;

	if (argc < 2)
		return cli_usage_error(NULL, "which command?");
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("certward %s\n", CERTWARD_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		int skip = commands[i].sub ? 2 : 1;

		if (strcmp(argv[1], commands[i].cmd) == 0 &&
		    (!commands[i].sub || (argc > 2 && strcmp(argv[2], commands[i].sub) == 0)))
			return commands[i].run(argc - skip, argv + skip);
	}
	if ((rc = api_cmd_run(argc - 1, argv + 1)) >= 0)
		return rc;
	if ((rc = resource_cmd_run(argc - 1, argv + 1)) >= 0)
		return rc;
	return cli_usage_error(NULL, "unknown command '%s'", argv[1]);
}
