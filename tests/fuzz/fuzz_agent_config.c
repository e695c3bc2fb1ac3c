/* libFuzzer target: the agent.yml parser. An accepted file keeps the
 * bounds of config.h; a refused one says where (file:line). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void need(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_config c;
	char why[512];

	if (agent_config_parse((const char *)data, size, "agent.yml", &c, why, sizeof why) != 0) {
		need(strncmp(why, "agent.yml", 9) == 0);
		return 0;
	}
	need(c.server && c.state_dir && c.state_dir[0] == '/');
	need(c.ntargets <= AGENT_MAX_TARGETS && c.nallowed_paths <= AGENT_MAX_LIST);
	need(c.discovery.ndirectories <= AGENT_MAX_DISCOVERY_DIRS);
	need(c.heartbeat_interval_ms >= 1000 && c.poll_interval_ms >= 1000);
	for (size_t i = 0; i < c.ntargets; i++) {
		const struct agent_target *t = &c.targets[i];

		need(t->name && strlen(t->name) <= AGENT_MAX_NAME && t->type != TARGET_NONE);
		need(t->type == TARGET_HAPROXY ? t->pem_path != NULL : (t->cert_path && t->key_path));
		for (size_t k = 0; t->validate && t->validate[k]; k++)
			need(k < AGENT_MAX_ARGV);
	}
	agent_config_free(&c);
	return 0;
}
