/* The CLI's commands that speak to the REST API over HTTPS. */
#ifndef CERTWARD_CLI_API_CMDS_H
#define CERTWARD_CLI_API_CMDS_H

#include <stdio.h>

/* Runs COMMAND (argv[0]) if it is an API command: its exit status, or -1
 * when COMMAND is not one of them. */
int api_cmd_run(int argc, char **argv);

/* The options and commands, for `certward --help`. */
void api_cmd_usage(FILE *out);

#endif
