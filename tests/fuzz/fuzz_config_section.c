/* libFuzzer target: the configuration section parser (workers read it from
 * the master over IPC). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg *cfg;
	struct cfg_error err;
	const char *section;

	if (size < 1)
		return 0;
	section = cfg_sections[data[0] % 7];
	if (cfg_section_parse(section, (const char *)data + 1, size - 1, &cfg, &err) == 0) {
		char *text;
		size_t len;

		if (cfg_section_serialize(cfg, section, &text, &len) != 0)
			abort();
		free(text);
		cfg_free(cfg);
	}
	return 0;
}
