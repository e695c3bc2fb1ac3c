#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static uint8_t *encode(struct ipc_msg *m, size_t *len)
{
	uint8_t *f = NULL;

	cr_assert_eq(ipc_encode(m, &f, len), IPC_OK);
	return f;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

Test(codec, round_trip_every_field_kind)
{
	struct ipc_msg m = {.type = IPC_T_CONFIG, .id = 0x0102030405060708ull}, d;
	const char section[] = "dsn=host=/tmp\npool_size=4\n";
	uint8_t *f;
	size_t len;

	m.u.config.name = "store";
	m.u.config.instance = 7;
	m.u.config.ipc_timeout_ms = 5000;
	m.u.config.section.ptr = (const uint8_t *)section;
	m.u.config.section.len = sizeof section - 1;
	f = encode(&m, &len);
	cr_assert_eq(ipc_decode(f, len, IPC_ROLE_MASTER, &d), IPC_OK);
	cr_assert_eq(d.type, IPC_T_CONFIG);
	cr_assert_eq(d.id, 0x0102030405060708ull);
	cr_assert_str_eq(d.u.config.name, "store");
	cr_assert_eq(d.u.config.instance, 7);
	cr_assert_eq(d.u.config.ipc_timeout_ms, 5000);
	cr_assert_eq(d.u.config.section.len, sizeof section - 1);
	cr_assert_arr_eq(d.u.config.section.ptr, section, sizeof section - 1);
	ipc_msg_free(&d);
	free(f);
}

Test(codec, u64_and_reply_flag)
{
	struct ipc_msg m = {.type = IPC_T_PONG, .flags = IPC_F_REPLY, .id = 9}, d;
	uint8_t *f;
	size_t len;

	m.u.pong.nonce = UINT64_MAX - 1;
	m.u.pong.pid = 4242;
	m.u.pong.name = "signer";
	f = encode(&m, &len);
	cr_assert_eq(ipc_decode(f, len, IPC_ROLE_SIGNER, &d), IPC_OK);
	cr_assert_eq(d.u.pong.nonce, UINT64_MAX - 1);
	cr_assert_eq(d.flags, IPC_F_REPLY);
	ipc_msg_free(&d);
	free(f);
}

Test(codec, rejects_unknown_type)
{
	struct ipc_msg m = {.type = IPC_T_PING}, d;
	uint8_t *f;
	size_t len;

	m.u.ping.nonce = 1;
	f = encode(&m, &len);
	f[4] = 0x7f;
	f[5] = 0xff;
	cr_assert_eq(ipc_decode(f, len, IPC_ROLE_MASTER, &d), IPC_E_UNKNOWN_TYPE);
	f[4] = 0;
	f[5] = 0; /* type 0 is never assigned */
	cr_assert_eq(ipc_decode(f, len, IPC_ROLE_MASTER, &d), IPC_E_UNKNOWN_TYPE);
	free(f);
}

Test(codec, rejects_truncated_frame)
{
	struct ipc_msg m = {.type = IPC_T_PING}, d;
	uint8_t *f;
	size_t len;

	m.u.ping.nonce = 1;
	f = encode(&m, &len);
	for (size_t cut = 0; cut < len; cut++)
		cr_assert_eq(ipc_decode(f, cut, IPC_ROLE_MASTER, &d), IPC_E_TRUNCATED,
			     "cut at %zu", cut);
	free(f);
}

Test(codec, rejects_trailing_bytes)
{
	struct ipc_msg m = {.type = IPC_T_PEER_PING}, d;
	uint8_t *f, *g;
	size_t len;

	m.u.peer_ping.peer = "store";
	f = encode(&m, &len);
	g = calloc(1, len + 1);
	memcpy(g, f, len);
	/* the header claims one byte more than the fields use */
	put32(g, (uint32_t)(len - IPC_HEADER_LEN + 1));
	cr_assert_eq(ipc_decode(g, len + 1, IPC_ROLE_MASTER, &d), IPC_E_TRAILING);
	/* a buffer longer than the frame its header announces */
	memcpy(g, f, len);
	cr_assert_eq(ipc_decode(g, len + 1, IPC_ROLE_MASTER, &d), IPC_E_TRAILING);
	free(g);
	free(f);
}

Test(codec, rejects_oversize_frame_from_header_alone)
{
	uint8_t hdr[IPC_HEADER_LEN] = {0};
	struct ipc_header h;

	put32(hdr, ipc_payload_bound(IPC_T_PING) + 1);
	hdr[5] = IPC_T_PING;
	cr_assert_eq(ipc_header_decode(hdr, &h, IPC_ROLE_MASTER), IPC_E_OVERSIZE);
	put32(hdr, 0xffffffffu);
	cr_assert_eq(ipc_header_decode(hdr, &h, IPC_ROLE_MASTER), IPC_E_OVERSIZE);
}

Test(codec, rejects_oversize_field)
{
	/* a 33-byte name where 32 is the bound; the frame itself is within the
	 * type's total bound because the section blob is empty */
	uint8_t buf[IPC_HEADER_LEN + 4 + 33 + 4 + 4 + 4];
	struct ipc_msg d;
	size_t o = IPC_HEADER_LEN;

	memset(buf, 0, sizeof buf);
	put32(buf, sizeof buf - IPC_HEADER_LEN);
	buf[5] = IPC_T_CONFIG;
	put32(buf + o, 33);
	o += 4;
	memset(buf + o, 'a', 33);
	o += 33;
	o += 12; /* instance, timeout, empty section */
	cr_assert_eq(o, sizeof buf);
	cr_assert_eq(ipc_decode(buf, sizeof buf, IPC_ROLE_MASTER, &d), IPC_E_FIELD_SIZE);
}

Test(codec, encoder_refuses_what_decoder_would_reject)
{
	char big[64];
	struct ipc_msg m = {.type = IPC_T_PONG};
	uint8_t *f = NULL;
	size_t len;

	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = 0;
	m.u.pong.name = big;
	cr_assert_eq(ipc_encode(&m, &f, &len), IPC_E_FIELD_SIZE);
	cr_assert_null(f);
}

Test(codec, rejects_missing_field)
{
	/* PONG is u64 + u32 + str: stop after the u64 */
	uint8_t buf[IPC_HEADER_LEN + 8] = {0};
	struct ipc_msg d;

	put32(buf, 8);
	buf[5] = IPC_T_PONG;
	cr_assert_eq(ipc_decode(buf, sizeof buf, IPC_ROLE_STORE, &d), IPC_E_MISSING_FIELD);
}

Test(codec, rejects_string_length_past_payload)
{
	uint8_t buf[IPC_HEADER_LEN + 4 + 2] = {0};
	struct ipc_msg d;

	put32(buf, 6);
	buf[5] = IPC_T_PEER_PING;
	put32(buf + IPC_HEADER_LEN, 20); /* claims 20 bytes, has 2 */
	cr_assert_eq(ipc_decode(buf, sizeof buf, IPC_ROLE_MASTER, &d), IPC_E_MISSING_FIELD);
}

Test(codec, rejects_nul_inside_string)
{
	uint8_t buf[IPC_HEADER_LEN + 4 + 3] = {0};
	struct ipc_msg d;

	put32(buf, 7);
	buf[5] = IPC_T_PEER_PING;
	put32(buf + IPC_HEADER_LEN, 3);
	memcpy(buf + IPC_HEADER_LEN + 4, "a\0b", 3);
	cr_assert_eq(ipc_decode(buf, sizeof buf, IPC_ROLE_MASTER, &d), IPC_E_BAD_STRING);
}

Test(codec, rejects_sender_not_allowed)
{
	struct ipc_msg m = {.type = IPC_T_CONFIG}, d;
	uint8_t *f;
	size_t len;

	m.u.config.name = "store";
	f = encode(&m, &len);
	/* only the master hands out configuration */
	cr_assert_eq(ipc_decode(f, len, IPC_ROLE_API, &d), IPC_E_SENDER);
	cr_assert_eq(ipc_decode(f, len, IPC_ROLE_CLI, &d), IPC_E_SENDER);
	cr_assert_eq(ipc_decode(f, len, IPC_ROLE_MASTER, &d), IPC_OK);
	ipc_msg_free(&d);
	free(f);
	/* control requests come from the CLI only, never from a worker */
	m.type = IPC_T_CTL_RESTART;
	m.u.ctl_restart.worker = "signer";
	f = encode(&m, &len);
	cr_assert_eq(ipc_decode(f, len, IPC_ROLE_API, &d), IPC_E_SENDER);
	free(f);
	/* the ACME account keys sign for the scheduler alone, never the api */
	for (unsigned t = IPC_T_ACME_ACCOUNT_GET; t <= IPC_T_ACME_EAB_SIGN; t += 2) {
		cr_assert(!ipc_sender_allowed(t, IPC_ROLE_API));
		cr_assert(ipc_sender_allowed(t, IPC_ROLE_SCHEDULER));
	}
}

Test(codec, rejects_unknown_flags)
{
	struct ipc_msg m = {.type = IPC_T_PING}, d;
	uint8_t *f;
	size_t len;

	f = encode(&m, &len);
	f[6] = 0x80;
	cr_assert_eq(ipc_decode(f, len, IPC_ROLE_MASTER, &d), IPC_E_FLAGS);
	free(f);
}

Test(codec, roles_and_names)
{
	cr_assert_eq(ipc_role_by_name("signer"), IPC_ROLE_SIGNER);
	cr_assert_eq(ipc_role_by_name("nope"), -1);
	cr_assert_str_eq(ipc_role_executable(IPC_ROLE_STORE), "certward-store");
	cr_assert_str_eq(ipc_type_name(IPC_T_PEER_UP), "PEER_UP");
	cr_assert_gt(ipc_payload_bound_max(), 65536);
}
