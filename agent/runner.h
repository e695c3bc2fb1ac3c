/* Validate and reload commands: fork + execvp of an argv from agent.yml (no
 * shell), a minimal environment, stdout and stderr captured (the first
 * RUN_OUTPUT_MAX bytes kept), killed with its process group on timeout. */
#ifndef CERTWARD_AGENT_RUNNER_H
#define CERTWARD_AGENT_RUNNER_H

#include <stddef.h>
#include <stdint.h>

#define RUN_OUTPUT_MAX 4096

struct run_result {
	int exit_status; /* the exit code, or 128 + signal when killed */
	int signaled;
	int timed_out;
	int exec_failed; /* the program could not be started (exit_status 127) */
	char output[RUN_OUTPUT_MAX + 1];
	size_t output_len;
	int truncated;
};

/* Runs ARGV (NULL-terminated, argv[0] looked up in PATH): 0 when it ran to
 * the end and exited 0, 1 when it exited otherwise (or timed out: killed),
 * -1 when it could not be started at all (R says why). */
int run_command(const char *const *argv, uint64_t timeout_ms, struct run_result *r);

/* "nginx -t" style rendering of ARGV for messages (bounded). */
void argv_render(const char *const *argv, char *out, size_t outlen);

#endif
