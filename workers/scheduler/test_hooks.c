/* See test_hooks.h. */
#include "test_hooks.h"

#if CERTWARD_TEST_HOOKS
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec.h"
#include "log.h"
#include "util.h"

/* the request files the tests write are far smaller */
#define HOOK_FILE_MAX (1024 * 1024)

struct hook_call {
	char tag[40];
};

static void log_hex(char *kv, size_t cap, size_t *o, const char *name, const uint8_t *p, size_t n)
{
	char *hex = malloc(2 * n + 1);

	if (!hex)
		return;
	hex_encode(p, n, hex);
	*o += (size_t)snprintf(kv + *o, cap - *o, " %s=%s", name, hex);
	if (*o >= cap)
		*o = cap - 1;
	free(hex);
}

static void on_answer(int status, struct ipc_msg *r, int fd, void *arg)
{
	struct hook_call *h = arg;
	char kv[LOG_LINE_MAX / 2] = "";
	size_t o = 0;

	(void)fd;
	if (status != 0 || !r) {
		snprintf(kv, sizeof kv, "code=%d", -status);
		log_event(LOG_WARN, NULL, kv, "acme-signer %s: error: no answer", h->tag);
	} else if (r->type == IPC_T_ERROR) {
		snprintf(kv, sizeof kv, "code=%u", r->u.error.code);
		log_event(LOG_WARN, NULL, kv, "acme-signer %s: error: %s", h->tag, r->u.error.message);
	} else {
		o = (size_t)snprintf(kv, sizeof kv, "type=%s", ipc_type_name(r->type));
		if (r->type == IPC_T_ACME_ACCOUNT) {
			log_hex(kv, sizeof kv, &o, "jwk", r->u.acme_account.jwk.ptr, r->u.acme_account.jwk.len);
			snprintf(kv + o, sizeof kv - o, " thumbprint=%s", r->u.acme_account.thumbprint);
		} else if (r->type == IPC_T_ACME_JWS_SIGNATURE) {
			log_hex(kv, sizeof kv, &o, "signature", r->u.acme_jws_signature.signature.ptr,
				r->u.acme_jws_signature.signature.len);
		} else if (r->type == IPC_T_ACME_EAB_SIGNATURE) {
			log_hex(kv, sizeof kv, &o, "signature", r->u.acme_eab_signature.signature.ptr,
				r->u.acme_eab_signature.signature.len);
		} else if (r->type == IPC_T_ACME_KEY_DONE) {
			snprintf(kv + o, sizeof kv - o, " file=%s", *r->u.acme_key_done.file ? r->u.acme_key_done.file : "-");
		}
		log_event(LOG_INFO, NULL, kv, "acme-signer %s: ok", h->tag);
	}
	free(h);
}

static const char *field(json_t *req, const char *name)
{
	const char *s = json_string_value(json_object_get(req, name));

	return s ? s : "";
}

static int acme_signer(struct worker *w, const char *path, char *msg, size_t msglen)
{
	struct ipc_channel *ch = worker_peer(w, IPC_ROLE_SIGNER);
	struct ipc_msg m = {0};
	struct hook_call *h;
	struct stat st;
	json_t *req;
	const char *type, *input;
	uint8_t *sealed = NULL;
	size_t sealed_len = 0;
	int rc;

	if (stat(path, &st) != 0 || st.st_size > HOOK_FILE_MAX ||
	    !(req = json_load_file(path, JSON_REJECT_DUPLICATES, NULL)) || !json_is_object(req)) {
		snprintf(msg, msglen, "%s: not a JSON object of at most 1 MiB", path);
		return -EINVAL;
	}
	type = field(req, "message");
	input = field(req, "signing_input");
	if (strcmp(type, "ACME_ACCOUNT_GET") == 0) {
		m.type = IPC_T_ACME_ACCOUNT_GET;
		m.u.acme_account_get.issuer_id = field(req, "issuer_id");
		m.u.acme_account_get.alg = field(req, "alg");
	} else if (strcmp(type, "ACME_JWS_SIGN") == 0) {
		m.type = IPC_T_ACME_JWS_SIGN;
		m.u.acme_jws_sign.issuer_id = field(req, "issuer_id");
		m.u.acme_jws_sign.signing_input.ptr = (const uint8_t *)input;
		m.u.acme_jws_sign.signing_input.len = (uint32_t)strlen(input);
	} else if (strcmp(type, "ACME_KEY_NEXT") == 0) {
		m.type = IPC_T_ACME_KEY_NEXT;
		m.u.acme_key_next.issuer_id = field(req, "issuer_id");
		m.u.acme_key_next.alg = field(req, "alg");
	} else if (strcmp(type, "ACME_JWS_SIGN_NEXT") == 0) {
		m.type = IPC_T_ACME_JWS_SIGN_NEXT;
		m.u.acme_jws_sign_next.issuer_id = field(req, "issuer_id");
		m.u.acme_jws_sign_next.signing_input.ptr = (const uint8_t *)input;
		m.u.acme_jws_sign_next.signing_input.len = (uint32_t)strlen(input);
	} else if (strcmp(type, "ACME_KEY_COMMIT") == 0) {
		m.type = IPC_T_ACME_KEY_COMMIT;
		m.u.acme_key_commit.issuer_id = field(req, "issuer_id");
		m.u.acme_key_commit.thumbprint = field(req, "thumbprint");
	} else if (strcmp(type, "ACME_KEY_ABORT") == 0) {
		m.type = IPC_T_ACME_KEY_ABORT;
		m.u.acme_key_abort.issuer_id = field(req, "issuer_id");
		m.u.acme_key_abort.thumbprint = field(req, "thumbprint");
	} else if (strcmp(type, "ACME_KEY_RETIRE") == 0) {
		m.type = IPC_T_ACME_KEY_RETIRE;
		m.u.acme_key_retire.issuer_id = field(req, "issuer_id");
		m.u.acme_key_retire.thumbprint = field(req, "thumbprint");
	} else if (strcmp(type, "ACME_EAB_SIGN") == 0) {
		const char *hex = field(req, "sealed");

		sealed_len = strlen(hex) / 2;
		if (!(sealed = malloc(sealed_len + 1)) || hex_decode(hex, sealed, sealed_len) != 0) {
			free(sealed);
			json_decref(req);
			snprintf(msg, msglen, "sealed: not hex");
			return -EINVAL;
		}
		m.type = IPC_T_ACME_EAB_SIGN;
		m.u.acme_eab_sign.sealed.ptr = sealed;
		m.u.acme_eab_sign.sealed.len = (uint32_t)sealed_len;
		m.u.acme_eab_sign.signing_input.ptr = (const uint8_t *)input;
		m.u.acme_eab_sign.signing_input.len = (uint32_t)strlen(input);
	} else {
		json_decref(req);
		snprintf(msg, msglen, "message: ACME_ACCOUNT_GET, ACME_JWS_SIGN, ACME_EAB_SIGN, ACME_KEY_NEXT, "
				      "ACME_JWS_SIGN_NEXT, ACME_KEY_COMMIT, ACME_KEY_ABORT or ACME_KEY_RETIRE");
		return -EINVAL;
	}
	if (!(h = calloc(1, sizeof *h))) {
		free(sealed);
		json_decref(req);
		return -ENOMEM;
	}
	snprintf(h->tag, sizeof h->tag, "%s", path);
	rc = ch ? ipc_request(ch, &m, -1, worker_ipc_timeout_ms(w), on_answer, h) : -ENOTCONN;
	free(sealed);
	json_decref(req);
	if (rc != 0) {
		free(h);
		snprintf(msg, msglen, "%s not sent (%d)", ipc_type_name(m.type), rc);
		return rc < 0 ? rc : -EIO;
	}
	snprintf(msg, msglen, "%s sent to the signer", ipc_type_name(m.type));
	return 0;
}

int scheduler_test_hook(struct worker *w, const char *hook, const char *arg, char *msg, size_t msglen)
{
	if (strcmp(hook, "acme-signer") == 0)
		return acme_signer(w, arg, msg, msglen);
	return -ENOENT;
}
#endif
