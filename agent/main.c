/* certward-agent: runs on managed hosts, makes keys locally (they never
 * leave the host) and deploys the certificates the api signs for them.
 * The commands live in enroll.c and run.c (docs/agent.md). */
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "build_config.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: certward-agent enroll --server URL --token-file FILE [--cacert PEM]\n"
		"                             [--state-dir DIR] [--config agent.yml]\n"
		"       certward-agent run [--config agent.yml] [--once]\n"
		"       certward-agent --version | --help\n"
		"certward-agent: the certward host agent (keys never leave this host).\n");
}

int main(int argc, char **argv)
{
	if (argc == 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
		printf("certward-agent %s\n", CERTWARD_VERSION);
		return 0;
	}
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "enroll") == 0)
		return agent_enroll(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "run") == 0)
		return agent_run(argc - 1, argv + 1);
	usage(stderr);
	return AGENT_EXIT_USAGE;
}
