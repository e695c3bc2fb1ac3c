#include "backoff.h"

void backoff_init(struct backoff *b, uint64_t initial_ms, uint64_t max_ms, uint64_t stable_after_ms)
{
	b->initial_ms = initial_ms;
	b->max_ms = max_ms < initial_ms ? initial_ms : max_ms;
	b->stable_after_ms = stable_after_ms;
	b->next_ms = initial_ms;
	b->consecutive = 0;
}

uint64_t backoff_on_exit(struct backoff *b, uint64_t uptime_ms)
{
	uint64_t delay;

	if (uptime_ms >= b->stable_after_ms) {
		b->next_ms = b->initial_ms;
		b->consecutive = 0;
	}
	delay = b->next_ms;
	b->consecutive++;
	b->next_ms = b->next_ms > b->max_ms / 2 ? b->max_ms : b->next_ms * 2;
	return delay;
}

bool backoff_crashlooping(const struct backoff *b, unsigned limit)
{
	return b->consecutive >= limit;
}
