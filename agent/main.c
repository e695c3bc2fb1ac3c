/* certward-agent: runs on managed hosts, generates keys locally and deploys
 * certificates. Enrollment and the run loop come with the agent milestone. */
#include <stdio.h>
#include <string.h>

#include "build_config.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: certward-agent [--version] [--help]\n"
		"certward-agent: the certward host agent (keys never leave this host).\n"
		"Commands enroll and run are not available in this version.\n");
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
	usage(stderr);
	return 64;
}
