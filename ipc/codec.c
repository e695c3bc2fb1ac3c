#include "codec.h"

#include <stdlib.h>
#include <string.h>

#define S(r) (1u << IPC_ROLE_##r)

static const struct {
	const char *name;
	const char *exe;
} roles[IPC_ROLE_COUNT] = {
#define IPC_ROLE(NAME, id, name, exe) [id] = {name, exe},
#include "ipc_roles.def"
#undef IPC_ROLE
};

const char *ipc_role_name(unsigned role)
{
	return role < IPC_ROLE_COUNT ? roles[role].name : "unknown";
}

const char *ipc_role_executable(unsigned role)
{
	return role < IPC_ROLE_COUNT ? roles[role].exe : NULL;
}

int ipc_role_by_name(const char *name)
{
	for (unsigned i = 0; i < IPC_ROLE_COUNT; i++)
		if (strcmp(roles[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* Per-type facts derived from the catalogue. */
#define B_U32(n) +4u
#define B_U64(n) +8u
#define B_STR(n, max) +4u + (uint32_t)(max)
#define B_BLOB(n, max) +4u + (uint32_t)(max)
#define C_NUM(n)
#define C_STR(n, max) +1u
#define C_BLOB(n, max) +1u

struct type_info {
	const char *name;
	uint32_t bound;
	uint32_t senders;
	uint32_t nstr;
};

static const struct type_info types[] = {
#define IPC_MESSAGE(NAME, name, id, senders, FIELDS) \
	[id] = {#NAME, 0 FIELDS(B_U32, B_U64, B_STR, B_BLOB), senders, 0 FIELDS(C_NUM, C_NUM, C_STR, C_BLOB)},
#include "ipc_messages.def"
#undef IPC_MESSAGE
};

#define NTYPES (sizeof types / sizeof types[0])

static const struct type_info *type_info(unsigned type)
{
	if (type >= NTYPES || types[type].name == NULL)
		return NULL;
	return &types[type];
}

const char *ipc_type_name(unsigned type)
{
	const struct type_info *t = type_info(type);
	return t ? t->name : "UNKNOWN";
}

uint32_t ipc_payload_bound(unsigned type)
{
	const struct type_info *t = type_info(type);
	return t ? t->bound : 0;
}

uint32_t ipc_payload_bound_max(void)
{
	uint32_t m = 0;

	for (unsigned i = 0; i < NTYPES; i++)
		if (types[i].bound > m)
			m = types[i].bound;
	return m;
}

int ipc_sender_allowed(unsigned type, unsigned role)
{
	const struct type_info *t = type_info(type);
	return t && role < IPC_ROLE_COUNT && (t->senders & (1u << role));
}

const char *ipc_strerror(int status)
{
	switch (status) {
	case IPC_OK: return "ok";
	case IPC_E_TRUNCATED: return "truncated frame";
	case IPC_E_UNKNOWN_TYPE: return "unknown message type";
	case IPC_E_OVERSIZE: return "frame exceeds the bound of its type";
	case IPC_E_FIELD_SIZE: return "field exceeds its bound";
	case IPC_E_MISSING_FIELD: return "missing field";
	case IPC_E_TRAILING: return "trailing bytes after the last field";
	case IPC_E_SENDER: return "sender not allowed to send this message";
	case IPC_E_BAD_STRING: return "NUL byte inside a string field";
	case IPC_E_FLAGS: return "unknown frame flags";
	case IPC_E_NOMEM: return "out of memory";
	}
	return "unknown error";
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) << 32 | rd32(p + 4);
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)(v >> 32));
	wr32(p + 4, (uint32_t)v);
}

int ipc_header_decode(const uint8_t *buf, struct ipc_header *h, unsigned peer_role)
{
	const struct type_info *t;

	h->len = rd32(buf);
	h->type = (uint16_t)(buf[4] << 8 | buf[5]);
	h->flags = (uint16_t)(buf[6] << 8 | buf[7]);
	h->id = rd64(buf + 8);
	t = type_info(h->type);
	if (!t)
		return IPC_E_UNKNOWN_TYPE;
	if (h->flags & ~IPC_F_KNOWN)
		return IPC_E_FLAGS;
	if (h->len > t->bound)
		return IPC_E_OVERSIZE;
	if (!ipc_sender_allowed(h->type, peer_role))
		return IPC_E_SENDER;
	return IPC_OK;
}

/* ---- encoding ---- */

struct wbuf {
	uint8_t *p;
	size_t off;
	int err;
};

static void put_u32(struct wbuf *w, uint32_t v)
{
	wr32(w->p + w->off, v);
	w->off += 4;
}

static void put_u64(struct wbuf *w, uint64_t v)
{
	wr64(w->p + w->off, v);
	w->off += 8;
}

static void put_bytes(struct wbuf *w, const void *ptr, size_t len)
{
	put_u32(w, (uint32_t)len);
	if (len)
		memcpy(w->p + w->off, ptr, len);
	w->off += len;
}

/* Size pass: each field's encoded size, with bounds checked up front so the
 * write pass cannot overflow. */
static size_t str_len(const char *s)
{
	return s ? strlen(s) : 0;
}

#define L_U32(n) n_ += 4;
#define L_U64(n) n_ += 8;
#define L_STR(n, max) \
	if (str_len(s->n) > (max)) \
		return -1; \
	n_ += 4 + str_len(s->n);
#define L_BLOB(n, max) \
	if (s->n.len > (max) || (s->n.len && !s->n.ptr)) \
		return -1; \
	n_ += 4 + (size_t)s->n.len;
#define E_U32(n) put_u32(w, s->n);
#define E_U64(n) put_u64(w, s->n);
#define E_STR(n, max) put_bytes(w, s->n, str_len(s->n));
#define E_BLOB(n, max) put_bytes(w, s->n.ptr, s->n.len);

#define IPC_MESSAGE(NAME, name, id, senders, FIELDS) \
	static long len_##name(const struct ipc_##name *s) \
	{ \
		size_t n_ = 0; \
		FIELDS(L_U32, L_U64, L_STR, L_BLOB) \
		return (long)n_; \
	} \
	static void enc_##name(struct wbuf *w, const struct ipc_##name *s) \
	{ \
		FIELDS(E_U32, E_U64, E_STR, E_BLOB) \
	}
#include "ipc_messages.def"
#undef IPC_MESSAGE

int ipc_encode(const struct ipc_msg *m, uint8_t **frame, size_t *len)
{
	long plen = -1;
	struct wbuf w = {0};

	switch (m->type) {
#define IPC_MESSAGE(NAME, name, id, senders, FIELDS) \
	case id: \
		plen = len_##name(&m->u.name); \
		break;
#include "ipc_messages.def"
#undef IPC_MESSAGE
	default:
		return IPC_E_UNKNOWN_TYPE;
	}
	if (plen < 0)
		return IPC_E_FIELD_SIZE;
	if (m->flags & ~IPC_F_KNOWN)
		return IPC_E_FLAGS;
	w.p = malloc(IPC_HEADER_LEN + (size_t)plen);
	if (!w.p)
		return IPC_E_NOMEM;
	wr32(w.p, (uint32_t)plen);
	w.p[4] = (uint8_t)(m->type >> 8);
	w.p[5] = (uint8_t)m->type;
	w.p[6] = (uint8_t)(m->flags >> 8);
	w.p[7] = (uint8_t)m->flags;
	wr64(w.p + 8, m->id);
	w.off = IPC_HEADER_LEN;
	switch (m->type) {
#define IPC_MESSAGE(NAME, name, id, senders, FIELDS) \
	case id: \
		enc_##name(&w, &m->u.name); \
		break;
#include "ipc_messages.def"
#undef IPC_MESSAGE
	}
	*frame = w.p;
	*len = w.off;
	return IPC_OK;
}

/* ---- decoding ---- */

struct rbuf {
	const uint8_t *p;
	size_t len, off;
	uint8_t *arena;
	size_t aoff;
	int err;
};

static uint32_t get_u32(struct rbuf *r)
{
	if (r->err)
		return 0;
	if (r->len - r->off < 4) {
		r->err = IPC_E_MISSING_FIELD;
		return 0;
	}
	r->off += 4;
	return rd32(r->p + r->off - 4);
}

static uint64_t get_u64(struct rbuf *r)
{
	if (r->err)
		return 0;
	if (r->len - r->off < 8) {
		r->err = IPC_E_MISSING_FIELD;
		return 0;
	}
	r->off += 8;
	return rd64(r->p + r->off - 8);
}

/* Copies the field into the arena, NUL-terminated, so callers may use
 * strings as C strings and blobs outlive the receive buffer. */
static const uint8_t *get_raw(struct rbuf *r, uint32_t max, uint32_t *outlen)
{
	uint32_t n = get_u32(r);
	uint8_t *dst;

	*outlen = 0;
	if (r->err)
		return (const uint8_t *)"";
	if (n > max) {
		r->err = IPC_E_FIELD_SIZE;
		return (const uint8_t *)"";
	}
	if (r->len - r->off < n) {
		r->err = IPC_E_MISSING_FIELD;
		return (const uint8_t *)"";
	}
	dst = r->arena + r->aoff;
	memcpy(dst, r->p + r->off, n);
	dst[n] = 0;
	r->aoff += (size_t)n + 1;
	r->off += n;
	*outlen = n;
	return dst;
}

static const char *get_str(struct rbuf *r, uint32_t max)
{
	uint32_t n;
	const uint8_t *s = get_raw(r, max, &n);

	if (!r->err && memchr(s, 0, n)) {
		r->err = IPC_E_BAD_STRING;
		return "";
	}
	return (const char *)s;
}

static struct ipc_bytes get_blob(struct rbuf *r, uint32_t max)
{
	struct ipc_bytes b;

	b.ptr = get_raw(r, max, &b.len);
	return b;
}

#define D_U32(n) s->n = get_u32(r);
#define D_U64(n) s->n = get_u64(r);
#define D_STR(n, max) s->n = get_str(r, (max));
#define D_BLOB(n, max) s->n = get_blob(r, (max));
#define IPC_MESSAGE(NAME, name, id, senders, FIELDS) \
	static void dec_##name(struct rbuf *r, struct ipc_##name *s) \
	{ \
		FIELDS(D_U32, D_U64, D_STR, D_BLOB) \
	}
#include "ipc_messages.def"
#undef IPC_MESSAGE

int ipc_decode(const uint8_t *frame, size_t len, unsigned peer_role, struct ipc_msg *m)
{
	struct ipc_header h;
	struct rbuf r = {0};
	int rc;

	memset(m, 0, sizeof *m);
	if (len < IPC_HEADER_LEN)
		return IPC_E_TRUNCATED;
	rc = ipc_header_decode(frame, &h, peer_role);
	if (rc != IPC_OK)
		return rc;
	if (len - IPC_HEADER_LEN < h.len)
		return IPC_E_TRUNCATED;
	if (len - IPC_HEADER_LEN > h.len)
		return IPC_E_TRAILING;
	r.p = frame + IPC_HEADER_LEN;
	r.len = h.len;
	/* every variable-size field needs its bytes plus a NUL */
	r.arena = malloc((size_t)h.len + type_info(h.type)->nstr + 1);
	if (!r.arena)
		return IPC_E_NOMEM;
	m->type = h.type;
	m->flags = h.flags;
	m->id = h.id;
	switch (h.type) {
#define IPC_MESSAGE(NAME, name, id, senders, FIELDS) \
	case id: \
		dec_##name(&r, &m->u.name); \
		break;
#include "ipc_messages.def"
#undef IPC_MESSAGE
	}
	if (!r.err && r.off != r.len)
		r.err = IPC_E_TRAILING;
	if (r.err) {
		free(r.arena);
		memset(m, 0, sizeof *m);
		return r.err;
	}
	m->arena_ = r.arena;
	return IPC_OK;
}

void ipc_msg_free(struct ipc_msg *m)
{
	free(m->arena_);
	m->arena_ = NULL;
}
