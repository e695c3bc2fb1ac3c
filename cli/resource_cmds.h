/* The CLI's resource commands: teams, owners, issuers, profiles,
 * renewal-policies, targets, agent-groups, policies, certs, agents, jobs,
 * notifications, audit and apikey, each with its actions (list, get,
 * create, update, delete, and the resource's own), over the REST API. */
#ifndef CERTWARD_CLI_RESOURCE_CMDS_H
#define CERTWARD_CLI_RESOURCE_CMDS_H

#include <stdio.h>

/* Runs the command argv[0] with its action argv[1]: the exit status, or
 * -1 when argv[0] is not a resource command. */
int resource_cmd_run(int argc, char **argv);

/* One line a command, for `certward --help`. */
void resource_cmd_usage(FILE *out);

#endif
