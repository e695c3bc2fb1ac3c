/*
 * IPC frames, expanded from schema/ipc_messages.def.
 *
 * Frame: 16-byte header, then the payload.
 *   u32 payload length | u16 type | u16 flags | u64 request id   (big endian)
 * Payload: the message's fields in declaration order; U32/U64 big endian,
 * STR/BLOB as u32 length + bytes.
 */
#ifndef CERTWARD_IPC_CODEC_H
#define CERTWARD_IPC_CODEC_H

#include <stddef.h>
#include <stdint.h>

enum ipc_role {
#define IPC_ROLE(NAME, id, name, exe) IPC_ROLE_##NAME = id,
#include "ipc_roles.def"
#undef IPC_ROLE
	IPC_ROLE_COUNT
};

enum ipc_type {
	IPC_T_NONE = 0,
#define S(r) 0
#define IPC_MESSAGE(NAME, name, id, senders, FIELDS) IPC_T_##NAME = id,
#include "ipc_messages.def"
#undef IPC_MESSAGE
#undef S
};

struct ipc_bytes {
	const uint8_t *ptr;
	uint32_t len;
};

#define IPC_FIELD_U32(n) uint32_t n;
#define IPC_FIELD_U64(n) uint64_t n;
#define IPC_FIELD_STR(n, max) const char *n;
#define IPC_FIELD_BLOB(n, max) struct ipc_bytes n;
#define S(r) 0
#define IPC_MESSAGE(NAME, name, id, senders, FIELDS) \
	struct ipc_##name { FIELDS(IPC_FIELD_U32, IPC_FIELD_U64, IPC_FIELD_STR, IPC_FIELD_BLOB) };
#include "ipc_messages.def"
#undef IPC_MESSAGE
#undef S

enum {
	IPC_F_REPLY = 1 << 0, /* answers the request with the same id */
	IPC_F_FD = 1 << 1,    /* a file descriptor travels with this frame */
	IPC_F_KNOWN = IPC_F_REPLY | IPC_F_FD,
};

#define IPC_HEADER_LEN 16u

struct ipc_msg {
	uint16_t type;
	uint16_t flags;
	uint64_t id;
	void *arena_; /* decoder-owned copy of strings and blobs */
	union {
#define S(r) 0
#define IPC_MESSAGE(NAME, name, id, senders, FIELDS) struct ipc_##name name;
#include "ipc_messages.def"
#undef IPC_MESSAGE
#undef S
	} u;
};

enum ipc_status {
	IPC_OK = 0,
	IPC_E_TRUNCATED = -1001,    /* fewer bytes than the header announces */
	IPC_E_UNKNOWN_TYPE = -1002,
	IPC_E_OVERSIZE = -1003,     /* frame longer than its type allows */
	IPC_E_FIELD_SIZE = -1004,   /* a field longer than its declared bound */
	IPC_E_MISSING_FIELD = -1005,/* payload ends before the last field */
	IPC_E_TRAILING = -1006,     /* bytes after the last field */
	IPC_E_SENDER = -1007,       /* the peer's role may not send this type */
	IPC_E_BAD_STRING = -1008,   /* NUL inside a STR field */
	IPC_E_FLAGS = -1009,        /* unknown flag bits */
	IPC_E_NOMEM = -1010,
};

/* Protocol errors are numbered apart from errno values so a channel's close
 * reason tells a misbehaving peer from a dead one. */
#define ipc_is_protocol_error(rc) ((rc) <= IPC_E_TRUNCATED && (rc) >= IPC_E_NOMEM)

const char *ipc_strerror(int status);
const char *ipc_type_name(unsigned type);
const char *ipc_role_name(unsigned role);       /* "api", "store", ... */
const char *ipc_role_executable(unsigned role); /* "certward-api", ... */
int ipc_role_by_name(const char *name);         /* -1 when unknown */

/* Largest payload a type may carry, or 0 for an unknown type. */
uint32_t ipc_payload_bound(unsigned type);
/* Largest payload of any type. */
uint32_t ipc_payload_bound_max(void);
/* Whether `role` may send `type`. */
int ipc_sender_allowed(unsigned type, unsigned role);

struct ipc_header {
	uint32_t len;
	uint16_t type;
	uint16_t flags;
	uint64_t id;
};

/* Validates the header on its own: type known, flags known, length within the
 * type's bound, sender allowed. */
int ipc_header_decode(const uint8_t *buf, struct ipc_header *h, unsigned peer_role);

/*
 * Decode a complete frame (header + payload, exactly `len` bytes) received from
 * a peer of role `peer_role`. On success *m holds the message; release it with
 * ipc_msg_free. On failure nothing needs releasing.
 */
int ipc_decode(const uint8_t *frame, size_t len, unsigned peer_role, struct ipc_msg *m);
void ipc_msg_free(struct ipc_msg *m);

/*
 * Encode m into a malloc'd frame. Fails (IPC_E_FIELD_SIZE) if a field exceeds
 * its bound, so a sender cannot emit what the receiver would reject.
 * NULL strings are sent as empty.
 */
int ipc_encode(const struct ipc_msg *m, uint8_t **frame, size_t *len);

#endif
