/* certward agents token create|list: one-time enrolment tokens for
 * certward-agent (docs/agent.md, "Enrolment"). */
#ifndef CERTWARD_CLI_AGENT_TOKEN_H
#define CERTWARD_CLI_AGENT_TOKEN_H

#include <stdint.h>
#include <stdio.h>

/* argv[0] is "token"; returns the exit status (cli.h). */
int agent_token_main(int argc, char **argv);
void agent_token_usage(FILE *out);

/* "15m", "900s", "2h", "1d" or plain seconds into seconds: 0, or -1. */
int agent_token_ttl(const char *text, int64_t *seconds);

#endif
