/*
 * What a STORE_CALL carries besides the operation name, shared by the store
 * and its callers (lib/store_client.h).
 *
 * Parameters (the `params` BLOB of STORE_CALL), all integers big endian:
 *
 *   u16 count                       0..STORE_PARAMS_MAX
 *   count times:
 *     u32 length                    0xffffffff: SQL NULL, no bytes follow
 *     length bytes                  text, no NUL byte (libpq binds C strings)
 *
 * Nothing may follow the last parameter; the whole encoding is at most
 * STORE_PARAMS_BYTES bytes. The decoder refuses anything else, so the store
 * never binds a value it did not fully check.
 */
#ifndef CERTWARD_STORE_WIRE_H
#define CERTWARD_STORE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_PARAMS_MAX 16
#define STORE_PARAMS_BYTES 65536u   /* = the params bound in schema/ipc_messages.def */
#define STORE_RESULT_BYTES 4194304u /* = the json bound of STORE_RESULT */
#define STORE_OP_NAME_MAX 64        /* = the op bound of STORE_CALL */

/* STORE_RESULT.status */
enum store_status {
	STORE_OK = 0,     /* json holds the operation's result (or is empty for a command) */
	STORE_NO_ROW = 1, /* a single-row operation found nothing; json is "null" */
};

/* A refused or failed STORE_CALL is answered with ERROR, code an errno value:
 *   EPERM     the caller's role may not call this operation
 *   ENOENT    unknown operation
 *   EINVAL    malformed parameters, or not the operation's number of them
 *   ENOTCONN  database unavailable
 *   EBUSY     too many calls already waiting for a connection
 *   EAGAIN    database schema not ready (migrations running or pending)
 *   EIO       the statement failed ("SQLSTATE xxxxx: primary message")
 *   EMSGSIZE  the result is larger than STORE_RESULT_BYTES */

struct store_params {
	size_t n;
	const char *v[STORE_PARAMS_MAX]; /* NUL-terminated text, or NULL for SQL NULL */
	char *arena;                     /* owns the text */
};

/* Returns 0, -EINVAL (malformed: see above), -E2BIG (over a bound) or
 * -ENOMEM. On failure *out needs no release. */
int store_params_decode(const uint8_t *buf, size_t len, struct store_params *out);
void store_params_free(struct store_params *p);

/* Encodes params[0..n) (NULL entries are SQL NULL) into a malloc'd buffer.
 * Returns 0, -E2BIG or -ENOMEM. */
int store_params_encode(const char *const *params, size_t n, uint8_t **out, size_t *outlen);

#endif
