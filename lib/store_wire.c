#include "store_wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NULL_MARK 0xffffffffu

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int store_params_decode(const uint8_t *buf, size_t len, struct store_params *out)
{
	size_t count, off = 2, text = 0;
	char *arena;

	memset(out, 0, sizeof *out);
	if (len > STORE_PARAMS_BYTES)
		return -E2BIG;
	if (len < 2)
		return -EINVAL;
	count = (size_t)buf[0] << 8 | buf[1];
	if (count > STORE_PARAMS_MAX)
		return -E2BIG;
	/* first pass: check every length against what is left, and the text */
	for (size_t i = 0; i < count; i++) {
		uint32_t n;

		if (len - off < 4)
			return -EINVAL;
		n = get32(buf + off);
		off += 4;
		if (n == NULL_MARK)
			continue;
		if (n > len - off || memchr(buf + off, '\0', n))
			return -EINVAL;
		off += n;
		text += (size_t)n + 1;
	}
	if (off != len)
		return -EINVAL;
	/* never zero bytes: a successful decode always owns an arena */
	arena = malloc(text + 1);
	if (!arena)
		return -ENOMEM;
	out->arena = arena;
	out->n = count;
	off = 2;
	for (size_t i = 0; i < count; i++) {
		uint32_t n = get32(buf + off);

		off += 4;
		if (n == NULL_MARK) {
			out->v[i] = NULL;
			continue;
		}
		memcpy(arena, buf + off, n);
		arena[n] = '\0';
		out->v[i] = arena;
		arena += (size_t)n + 1;
		off += n;
	}
	return 0;
}

void store_params_free(struct store_params *p)
{
	free(p->arena);
	memset(p, 0, sizeof *p);
}

int store_params_encode(const char *const *params, size_t n, uint8_t **out, size_t *outlen)
{
	size_t len = 2, off = 2;
	uint8_t *buf;

	*out = NULL;
	*outlen = 0;
	if (n > STORE_PARAMS_MAX)
		return -E2BIG;
	for (size_t i = 0; i < n; i++) {
		len += 4 + (params[i] ? strlen(params[i]) : 0);
		if (len > STORE_PARAMS_BYTES)
			return -E2BIG;
	}
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	buf[0] = (uint8_t)(n >> 8);
	buf[1] = (uint8_t)n;
	for (size_t i = 0; i < n; i++) {
		size_t k = params[i] ? strlen(params[i]) : 0;

		put32(buf + off, params[i] ? (uint32_t)k : NULL_MARK);
		off += 4;
		if (k)
			memcpy(buf + off, params[i], k);
		off += k;
	}
	*out = buf;
	*outlen = len;
	return 0;
}
