/* Frames between a PKCS#11 client (lib/p11client.c, in the signer or the
 * CLI) and certward-p11, over SOCK_SEQPACKET socket pairs: one frame per
 * message, a header then at most P11W_DATA_MAX bytes. Descriptor 3 of
 * certward-p11 is the control channel (configuration, connect, status);
 * 4, 5, ... are one channel per session, each served by its own thread. */
#ifndef CERTWARD_P11WIRE_H
#define CERTWARD_P11WIRE_H

#include <stdint.h>

#define P11W_DATA_MAX 4096
#define P11W_FIRST_FD 3

enum p11w_op {
	P11W_CONFIG = 1, /* data: module, token label, slot, key label, key id, pin file, pin env, sessions (NUL-ended) */
	P11W_CONNECT,    /* arg: P11_RW | P11_NO_KEY */
	P11W_DISCONNECT, /* data: why */
	P11W_READY,      /* reply arg: 1 ready, 0 not (data: why) */
	P11W_RETRY_DUE,  /* reply arg: 1 or 0 */
	P11W_SIGN,       /* arg: mech | md_bits << 8; data: input; reply data: the signature */
	P11W_PUBKEY,     /* reply arg: P11_KEY_*; data: u16 length, a1, u16 length, a2 */
	P11W_GENERATE,   /* data: the algorithm's name */
	P11W_COUNTERS,   /* reply data: three u64 (signatures, failures, connects) */
	P11W_KEYTYPE,    /* reply arg: P11_KEY_* or 0 */
};

struct p11w_hdr {
	uint32_t op;  /* a request: enum p11w_op; a reply: 0 done, 1 failed (data: why) */
	uint32_t arg;
	uint32_t len; /* bytes of data after the header */
	uint32_t reserved;
};

#endif
