/* See issuance.h. */
#include "issuance.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "csr_policy.h"
#include "store_client.h"
#include "store_wire.h"
#include "util.h"
#include "worker.h"
#include "x509pem.h"

/* what the api assumes for the default validity when it checks ahead;
 * the signer decides with its own signer.default_validity */
#define API_DEFAULT_VALIDITY_S (90 * 86400)

struct issuance {
	struct route_call *rc;
	issuance_done_cb done;
	void *arg;
	char *body; /* the record's checked fields */
	char issuer_id[132], profile_id[132];
	char intermediate_id[68]; /* the issuer's config.intermediate_id, "" for the issuing CA */
	char *csr_pem;
	uint8_t *csr_der;
	size_t csr_len;
	char *profile; /* JSON */
	/* the signed certificate */
	char serial[64], not_before[24], not_after[24], fingerprint[65], key_size[12];
	char key_alg[12];
	char *pem_chain;
	/* server-side key generation: the algorithm asked for ("" for a CSR) */
	char keygen_alg[20];
	char *sealed_hex; /* the key as the signer sealed it, for the store */
	char *key_pem;    /* and in clear, for this answer only */
	size_t key_pem_len;
	/* a renewal (issuance_renew): a version of this record */
	bool renewal;
	char renew_id[132];
	/* an ACME issuer: the CA signs later, the scheduler orders it (order()) */
	bool acme;
	char job_id[132]; /* the agent's job the CSR is for (issuance_renew_job), "" for none */
};

static void issuance_free(struct issuance *is)
{
	if (is->key_pem) {
		OPENSSL_cleanse(is->key_pem, is->key_pem_len);
		free(is->key_pem);
	}
	free(is->sealed_hex);
	free(is->body);
	free(is->csr_pem);
	free(is->csr_der);
	free(is->profile);
	free(is->pem_chain);
	free(is);
}

static void give_up(struct issuance *is, int status, const char *title, const char *detail, const char *field)
{
	issuance_done_cb done = is->done;
	void *arg = is->arg;

	issuance_free(is);
	done(arg, status, title, detail, field, NULL, 0);
}

static void record(struct issuance *is);

static void unavailable(struct issuance *is, const char *what)
{
	char detail[480];

	snprintf(detail, sizeof detail, "%s: nothing was issued or recorded; the request can be sent again", what);
	give_up(is, 503, "Service Unavailable", detail, NULL);
}

/* A store call for this issuance; answered 503 when it cannot be made. */
static void ask(struct issuance *is, const char *op, const char **p, size_t n, store_call_cb cb)
{
	if (store_call(is->rc->w, op, p, n, cb, is) != 0)
		unavailable(is, "the database is unavailable");
}

/* Whether the store's answer is a failure, then answered 503. */
static bool failed(struct issuance *is, const struct store_outcome *o)
{
	if (o->error)
		unavailable(is, "the database is unavailable");
	return o->error != 0;
}

/* ---- 2. the signer's signature ---- */

char *issuance_der_to_pem(const uint8_t *der, size_t len, bool req)
{
	return x509pem_from_der(der, len, req);
}

/* KEYGEN_SIGNED: the CSR made, the key sealed (for the store) and in
 * clear (for the answer); then the certificate as CERT_SIGNED has it */
static int take_key(struct issuance *is, struct ipc_msg *m)
{
	const struct ipc_keygen_signed *k = &m->u.keygen_signed;
	struct ipc_cert_signed c = {
		.der = k->der,
		.serial = k->serial,
		.not_before = k->not_before,
		.not_after = k->not_after,
		.chain_pem = k->chain_pem,
	};

	free(is->csr_pem);
	is->csr_pem = issuance_der_to_pem(k->csr.ptr, k->csr.len, true);
	is->sealed_hex = malloc(2 * (size_t)k->sealed_key.len + 1);
	is->key_pem = malloc((size_t)k->key_pem.len + 1);
	if (!is->csr_pem || !is->sealed_hex || !is->key_pem)
		return -1;
	hex_encode(k->sealed_key.ptr, k->sealed_key.len, is->sealed_hex);
	memcpy(is->key_pem, k->key_pem.ptr, k->key_pem.len);
	is->key_pem[k->key_pem.len] = '\0';
	is->key_pem_len = k->key_pem.len;
	/* the frame's copy of the key goes when the reply is freed; wipe it first */
	OPENSSL_cleanse((void *)k->key_pem.ptr, k->key_pem.len);
	m->type = IPC_T_CERT_SIGNED;
	m->u.cert_signed = c;
	return 0;
}

static void on_signed(int status, struct ipc_msg *m, int fd, void *arg)
{
	struct issuance *is = arg;

	if (fd >= 0)
		close(fd);
	if (status == 0 && m && m->type == IPC_T_ERROR && m->u.error.code == EINVAL) {
		char detail[360];

		/* what the api's own check let through: the signer's word is final */
		const char *field = is->keygen_alg[0] ? "key_generation" : "csr_pem";

		snprintf(detail, sizeof detail, "%s: %.300s", field, m->u.error.message);
		give_up(is, 400, "Bad Request", detail, field);
		return;
	}
	if (status == 0 && m && m->type == IPC_T_KEYGEN_SIGNED) {
		if (take_key(is, m) != 0) {
			unavailable(is, "out of memory");
			return;
		}
	} else if (status == 0 && m && m->type == IPC_T_ERROR && m->u.error.code == EAGAIN) {
		char what[320];

		/* the CA's key cannot sign now (its token): the signer says why */
		snprintf(what, sizeof what, "%.300s", m->u.error.message);
		unavailable(is, what);
		return;
	} else if (status != 0 || !m || m->type != IPC_T_CERT_SIGNED) {
		unavailable(is, status == 0 && m && m->type == IPC_T_ERROR && m->u.error.code == EIO
					? "the signer cannot write its ledger"
					: "the signer is unavailable");
		return;
	}
	snprintf(is->serial, sizeof is->serial, "%s", m->u.cert_signed.serial);
	snprintf(is->not_before, sizeof is->not_before, "%llu", (unsigned long long)m->u.cert_signed.not_before);
	snprintf(is->not_after, sizeof is->not_after, "%llu", (unsigned long long)m->u.cert_signed.not_after);
	if (x509pem_signed(m->u.cert_signed.der.ptr, m->u.cert_signed.der.len, m->u.cert_signed.chain_pem.ptr,
			   m->u.cert_signed.chain_pem.len, is->fingerprint, &is->pem_chain) != 0) {
		unavailable(is, "out of memory");
		return;
	}
	record(is);
}

/* The record's names (common_name and sans) in one newline-separated
 * string (malloc'd), NULL when out of memory. */
static char *record_names(const char *body, const char **cn)
{
	json_t *j = json_loads(body, 0, NULL), *v;
	char *sans = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&sans, &len);

	*cn = "";
	json_array_foreach(json_object_get(j, "sans"), i, v)
		if (f && json_is_string(v))
			fprintf(f, "%s%s", i ? "\n" : "", json_string_value(v));
	if (!f || fclose(f) != 0) {
		json_decref(j);
		free(sans);
		return NULL;
	}
	/* the common name, copied after the names (one allocation) */
	{
		const char *c = json_string_value(json_object_get(j, "common_name"));
		size_t cl = c ? strlen(c) : 0;
		char *out = realloc(sans, len + cl + 2);

		if (!out) {
			json_decref(j);
			free(sans);
			return NULL;
		}
		memcpy(out + len + 1, c ? c : "", cl + 1);
		*cn = out + len + 1;
		json_decref(j);
		return out;
	}
}

static void sign(struct issuance *is)
{
	struct ipc_msg m = {.type = IPC_T_CERT_SIGN};
	struct ipc_channel *ch = worker_peer(is->rc->w, IPC_ROLE_SIGNER);

	m.u.cert_sign.csr.ptr = is->csr_der;
	m.u.cert_sign.csr.len = (uint32_t)is->csr_len;
	m.u.cert_sign.profile.ptr = (const uint8_t *)is->profile;
	m.u.cert_sign.profile.len = (uint32_t)strlen(is->profile);
	m.u.cert_sign.issuer_id = is->issuer_id;
	m.u.cert_sign.validity_seconds = 0;
	m.u.cert_sign.intermediate_id = is->intermediate_id;
	if (!ch || ipc_request(ch, &m, -1, worker_ipc_timeout_ms(is->rc->w), on_signed, is) != 0)
		unavailable(is, "the signer is unavailable");
}

/* the version's key_algorithm and key_size for a key the signer makes */
static void kind_of(const char *alg, char *kind, size_t kcap, char *size, size_t scap)
{
	snprintf(kind, kcap, "%s", strncmp(alg, "rsa", 3) == 0 ? "RSA" : strncmp(alg, "ed25519", 7) == 0 ? "Ed25519"
								      : "ECDSA");
	snprintf(size, scap, "%s", strcmp(alg, "ecdsa-p384") == 0 ? "384" : strncmp(alg, "rsa-", 4) == 0 ? alg + 4
				   : "256");
}

/* ---- 2b. an ACME issuer: the order is the scheduler's ---- */

/* Whether name (a DNS name, any case) is one of the record's. */
static bool record_has(const char *cn, const char *sans, const char *name)
{
	size_t n = strlen(name);

	if (strcasecmp(cn, name) == 0)
		return true;
	for (const char *p = sans; *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l == n && strncasecmp(p, name, n) == 0)
			return true;
		p += l + (e != NULL);
	}
	return false;
}

/*
 * An ACME CA orders exactly the names in the CSR (RFC 8555 7.4): the
 * scheduler orders the record's common_name and sans, so the CSR must
 * name the same DNS names, no more and no fewer. true (why filled) when
 * they differ.
 */
static bool names_differ(const struct csr_checked *c, const char *body, char *why, size_t whylen)
{
	const char *cn;
	char *sans = record_names(body, &cn), *csr_names = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&csr_names, &len);
	bool differ = false;

	if (!sans || !f) {
		if (f)
			fclose(f);
		free(sans);
		free(csr_names);
		snprintf(why, whylen, "out of memory");
		return true;
	}
	/* each DNS name of the CSR is one of the record's */
	for (int i = 0; c->sans && i < (int)sk_GENERAL_NAME_num(c->sans) && !differ; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(c->sans, (size_t)i);
		char name[256];
		int n;

		if (g->type != GEN_DNS) {
			snprintf(why, whylen, "an ACME CA is asked for DNS names only: the CSR names something else");
			differ = true;
			break;
		}
		n = ASN1_STRING_length(g->d.dNSName);
		if (n <= 0 || n >= (int)sizeof name) {
			snprintf(why, whylen, "a DNS name of the CSR is empty or too long");
			differ = true;
			break;
		}
		memcpy(name, ASN1_STRING_get0_data(g->d.dNSName), (size_t)n);
		name[n] = '\0';
		if (!record_has(cn, sans, name)) {
			snprintf(why, whylen, "the CSR names %.100s, which is not the record's common_name or one of its "
				 "sans (the ACME order is for the record's names)", name);
			differ = true;
		}
		fprintf(f, "%s%s", i ? "\n" : "", name);
	}
	if (fclose(f) != 0 || !csr_names) {
		free(sans);
		free(csr_names);
		snprintf(why, whylen, "out of memory");
		return true;
	}
	/* and each name of the record is one of the CSR's */
	if (!differ && *cn && !record_has("", csr_names, cn)) {
		snprintf(why, whylen, "the CSR does not name the record's common_name %.100s (the ACME order is for "
			 "the record's names)", cn);
		differ = true;
	}
	for (const char *p = sans; !differ && *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		char name[256];

		snprintf(name, sizeof name, "%.*s", (int)(l < sizeof name ? l : sizeof name - 1), p);
		if (!record_has("", csr_names, name)) {
			snprintf(why, whylen, "the CSR does not name %.100s, one of the record's sans (the ACME order is "
				 "for the record's names)", name);
			differ = true;
		}
		p += l + (e != NULL);
	}
	free(sans);
	free(csr_names);
	return differ;
}

static void on_ordered(const struct store_outcome *o, void *arg);
static void on_order_renewal(const struct store_outcome *o, void *arg);
static void on_agent_order(const struct store_outcome *o, void *arg);

/* The CSR (the client's, the agent's or the one made with the key here)
 * handed to the scheduler with the job that orders the certificate */
static void order(struct issuance *is)
{
	const char *p[16];
	size_t n = 0;

	if (is->job_id[0]) {
		p[n++] = is->rc->who.agent_id;
		p[n++] = is->job_id;
		p[n++] = is->csr_pem;
		ask(is, "agents.csr_order", p, n, on_agent_order);
	} else if (is->renewal) {
		p[n++] = is->renew_id;
		n = route_audit_params(is->rc, p, n);
		p[n++] = is->csr_pem;
		ask(is, "certificates.renew", p, n, on_order_renewal);
	} else {
		p[n++] = is->body;
		n = route_audit_params(is->rc, p, n);
		p[n++] = is->csr_pem;
		p[n++] = is->sealed_hex; /* NULL: the client holds the key */
		ask(is, "managed_certificates.create_ordered", p, n, on_ordered);
	}
}

/* KEYGEN_CSR_MADE: the key (sealed for the store, in clear for this answer)
 * and its CSR, then the order */
static void on_key_made(int status, struct ipc_msg *m, int fd, void *arg)
{
	struct issuance *is = arg;
	const struct ipc_keygen_csr_made *k;

	if (fd >= 0)
		close(fd);
	if (status == 0 && m && m->type == IPC_T_ERROR && m->u.error.code == EINVAL) {
		char detail[360];

		snprintf(detail, sizeof detail, "key_generation: %.300s", m->u.error.message);
		give_up(is, 400, "Bad Request", detail, "key_generation");
		return;
	}
	if (status != 0 || !m || m->type != IPC_T_KEYGEN_CSR_MADE) {
		unavailable(is, "the signer is unavailable");
		return;
	}
	k = &m->u.keygen_csr_made;
	free(is->csr_pem);
	is->csr_pem = issuance_der_to_pem(k->csr.ptr, k->csr.len, true);
	is->sealed_hex = malloc(2 * (size_t)k->sealed_key.len + 1);
	is->key_pem = malloc((size_t)k->key_pem.len + 1);
	if (!is->csr_pem || !is->sealed_hex || !is->key_pem || !k->sealed_key.len) {
		OPENSSL_cleanse((void *)k->key_pem.ptr, k->key_pem.len);
		unavailable(is, "out of memory");
		return;
	}
	hex_encode(k->sealed_key.ptr, k->sealed_key.len, is->sealed_hex);
	memcpy(is->key_pem, k->key_pem.ptr, k->key_pem.len);
	is->key_pem[k->key_pem.len] = '\0';
	is->key_pem_len = k->key_pem.len;
	/* the frame's copy of the key goes when the reply is freed; wipe it first */
	OPENSSL_cleanse((void *)k->key_pem.ptr, k->key_pem.len);
	order(is);
}

/* The signer makes the key for the record's names, the profile allowing
 * it: with its certificate (KEYGEN_SIGN, a Local issuer), or its CSR alone
 * for an ACME order (KEYGEN_CSR) */
static void keygen(struct issuance *is, bool csr_only)
{
	struct ipc_msg m = {.type = csr_only ? IPC_T_KEYGEN_CSR : IPC_T_KEYGEN_SIGN};
	struct ipc_channel *ch = worker_peer(is->rc->w, IPC_ROLE_SIGNER);
	const char *cn;
	char *sans = record_names(is->body, &cn);
	struct ipc_bytes profile, names;

	if (!sans) {
		unavailable(is, "out of memory");
		return;
	}
	profile = (struct ipc_bytes){(const uint8_t *)is->profile, (uint32_t)strlen(is->profile)};
	names = (struct ipc_bytes){(const uint8_t *)sans, (uint32_t)strlen(sans)};
	if (csr_only)
		m.u.keygen_csr = (struct ipc_keygen_csr){.profile = profile, .common_name = cn, .sans = names,
							 .key_algorithm = is->keygen_alg};
	else
		m.u.keygen_sign = (struct ipc_keygen_sign){.profile = profile, .issuer_id = is->issuer_id,
							   .intermediate_id = is->intermediate_id, .common_name = cn,
							   .sans = names, .key_algorithm = is->keygen_alg};
	if (!ch || ipc_request(ch, &m, -1, worker_ipc_timeout_ms(is->rc->w), csr_only ? on_key_made : on_signed,
			       is) != 0)
		unavailable(is, "the signer is unavailable");
	free(sans);
}

/* ---- 1. what the CSR is checked against ---- */

static void check_csr(struct issuance *is)
{
	struct csr_checked c;
	char why[300], detail[340];

	if (is->keygen_alg[0]) {
		json_t *p = json_loads(is->profile, 0, NULL);
		bool allowed = json_is_true(json_object_get(p, "server_keygen"));

		json_decref(p);
		if (!allowed) {
			give_up(is, 422, "Unprocessable Content",
				"certificate_profile_id: server-side key generation needs a profile that allows it "
				"(server_keygen: true)", "certificate_profile_id");
			return;
		}
		/* the signer checks the key and names it made against the profile */
		kind_of(is->keygen_alg, is->key_alg, sizeof is->key_alg, is->key_size, sizeof is->key_size);
		keygen(is, is->acme);
		return;
	}

	if (csr_policy_check(is->csr_der, is->csr_len, is->profile, strlen(is->profile), 0, API_DEFAULT_VALIDITY_S,
			     &c, why, sizeof why) != 0) {
		snprintf(detail, sizeof detail, "csr_pem: %s", why);
		give_up(is, 400, "Bad Request", detail, "csr_pem");
		return;
	}
	snprintf(is->key_alg, sizeof is->key_alg, "%s", c.key_alg);
	snprintf(is->key_size, sizeof is->key_size, "%d", c.key_bits);
	if (is->acme && names_differ(&c, is->body, why, sizeof why)) {
		csr_checked_free(&c);
		snprintf(detail, sizeof detail, "csr_pem: %s", why);
		give_up(is, 400, "Bad Request", detail, "csr_pem");
		return;
	}
	csr_checked_free(&c);
	if (is->acme)
		order(is);
	else
		sign(is);
}

static void on_profile(const struct store_outcome *o, void *arg)
{
	struct issuance *is = arg;

	if (failed(is, o))
		return;
	if (o->status == STORE_NO_ROW) {
		give_up(is, 422, "Unprocessable Content", "certificate_profile_id: no such certificate profile",
			"certificate_profile_id");
		return;
	}
	is->profile = strndup((const char *)o->json, o->json_len);
	if (!is->profile) {
		unavailable(is, "out of memory");
		return;
	}
	check_csr(is);
}

static void on_intermediate(const struct store_outcome *o, void *arg);
static void fetch_profile(struct issuance *is);

static void on_issuer(const struct store_outcome *o, void *arg)
{
	struct issuance *is = arg;
	json_t *j;
	const char *type;
	bool enabled;

	if (failed(is, o))
		return;
	if (o->status == STORE_NO_ROW) {
		give_up(is, 422, "Unprocessable Content", "issuer_id: no such issuer", "issuer_id");
		return;
	}
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	type = json_string_value(json_object_get(j, "type"));
	enabled = !json_is_false(json_object_get(j, "enabled"));
	is->acme = type && strcmp(type, "ACME") == 0;
	if (!type || (strcmp(type, "Local") != 0 && !is->acme) || !enabled) {
		char detail[200];

		snprintf(detail, sizeof detail, "issuer_id: %s", !enabled ? "the issuer is disabled"
			 : "only issuers of type Local (certward's own CA) and ACME sign a csr_pem or a key made "
			   "by certward");
		json_decref(j);
		give_up(is, 422, "Unprocessable Content", detail, "issuer_id");
		return;
	}
	{
		const char *ica = json_string_value(json_object_get(json_object_get(j, "config"), "intermediate_id"));

		snprintf(is->intermediate_id, sizeof is->intermediate_id, "%s", ica && !is->acme ? ica : "");
	}
	json_decref(j);
	if (is->intermediate_id[0]) {
		const char *p[1] = {is->intermediate_id};

		ask(is, "intermediates.get", p, 1, on_intermediate);
		return;
	}
	fetch_profile(is);
}

/* the issuer signs with an intermediate CA (made below any Local issuer): it must be active */
static void on_intermediate(const struct store_outcome *o, void *arg)
{
	struct issuance *is = arg;
	json_t *j;
	const char *state;
	bool ok;

	if (failed(is, o))
		return;
	j = o->status == STORE_NO_ROW ? NULL : json_loadb((const char *)o->json, o->json_len, 0, NULL);
	state = json_string_value(json_object_get(j, "state"));
	ok = state && strcmp(state, "active") == 0;
	json_decref(j);
	if (!ok) {
		give_up(is, 422, "Unprocessable Content",
			"issuer_id: the issuer's intermediate CA (config.intermediate_id) is missing or retiring: "
			"it signs nothing new", "issuer_id");
		return;
	}
	fetch_profile(is);
}

static void fetch_profile(struct issuance *is)
{
	if (is->profile_id[0]) {
		const char *p[1] = {is->profile_id};

		ask(is, "certificate_profiles.get", p, 1, on_profile);
		return;
	}
	/* no profile: only the floors */
	is->profile = strdup("{}");
	if (!is->profile) {
		unavailable(is, "out of memory");
		return;
	}
	check_csr(is);
}

/* The CSR (PEM) read into is; else answered (400) and -1. */
int issuance_csr_der(const char *csr_pem, uint8_t **der, size_t *len, const char **why)
{
	return x509pem_csr_der(csr_pem, der, len, why);
}

static int read_csr(struct issuance *is, const char *csr_pem)
{
	const char *why;
	int rc = issuance_csr_der(csr_pem, &is->csr_der, &is->csr_len, &why);

	if (rc == -1) {
		give_up(is, 400, "Bad Request", why, "csr_pem");
		return -1;
	}
	if (rc != 0 || !(is->csr_pem = strdup(csr_pem))) {
		unavailable(is, "out of memory");
		return -1;
	}
	return 0;
}

/* The issuer and profile the record names, then on to on_issuer */
static void lookup(struct issuance *is)
{
	json_t *j = json_loads(is->body, 0, NULL);
	const char *issuer = json_string_value(json_object_get(j, "issuer_id"));
	const char *profile = json_string_value(json_object_get(j, "certificate_profile_id"));
	const char *p[1] = {is->issuer_id};

	snprintf(is->issuer_id, sizeof is->issuer_id, "%s", issuer ? issuer : "");
	snprintf(is->profile_id, sizeof is->profile_id, "%s", profile ? profile : "");
	json_decref(j);
	ask(is, "issuers.get", p, 1, on_issuer);
}

static struct issuance *issuance_new(struct route_call *rc, const char *body, issuance_done_cb done, void *arg)
{
	struct issuance *is = calloc(1, sizeof *is);

	if (!is || !(is->body = strdup(body))) {
		free(is);
		done(arg, 503, "Service Unavailable", "out of memory", NULL, NULL, 0);
		return NULL;
	}
	is->rc = rc;
	is->done = done;
	is->arg = arg;
	return is;
}

void issuance_run(struct route_call *rc, const char *body, const char *csr_pem, const char *keygen_alg,
		  issuance_done_cb done, void *arg)
{
	struct issuance *is = issuance_new(rc, body, done, arg);

	if (!is)
		return;
	if (keygen_alg)
		snprintf(is->keygen_alg, sizeof is->keygen_alg, "%s", keygen_alg);
	else if (read_csr(is, csr_pem) != 0)
		return;
	lookup(is);
}

/* ---- renewal: a new version of a stored record ---- */

static void on_record(const struct store_outcome *o, void *arg)
{
	struct issuance *is = arg;
	json_t *j;
	const char *id, *status;
	bool closed;

	if (failed(is, o))
		return;
	if (o->status == STORE_NO_ROW) {
		give_up(is, 404, "Not Found", "no such certificate", NULL);
		return;
	}
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	status = json_string_value(json_object_get(j, "status"));
	id = json_string_value(json_object_get(j, "id"));
	closed = !status || strcmp(status, "Revoked") == 0 || strcmp(status, "Archived") == 0;
	snprintf(is->renew_id, sizeof is->renew_id, "%s", id ? id : "");
	free(is->body);
	is->body = strndup((const char *)o->json, o->json_len);
	json_decref(j);
	if (closed) {
		give_up(is, 409, "Conflict", "the certificate is revoked or archived: it is not renewed", NULL);
		return;
	}
	if (!is->body) {
		unavailable(is, "out of memory");
		return;
	}
	lookup(is);
}

void issuance_renew_job(struct route_call *rc, const char *id, const char *csr_pem, const char *job_id,
			issuance_done_cb done, void *arg)
{
	struct issuance *is = issuance_new(rc, "{}", done, arg);
	const char *p[1] = {id};

	if (!is || read_csr(is, csr_pem) != 0)
		return;
	is->renewal = true;
	snprintf(is->job_id, sizeof is->job_id, "%s", job_id ? job_id : "");
	ask(is, "managed_certificates.get", p, 1, on_record);
}

void issuance_renew(struct route_call *rc, const char *id, const char *csr_pem, issuance_done_cb done, void *arg)
{
	issuance_renew_job(rc, id, csr_pem, NULL, done, arg);
}

/* ---- 3. the record, with the certificate as its first version ---- */

/* The record's JSON object with "private_key_pem" added: built by hand in
 * one buffer the caller wipes, so no copy of the key is left in jansson's.
 * NULL when out of memory. */
static char *with_key(const char *record, const char *pem, size_t pem_len)
{
	size_t rl = strlen(record), o;
	char *out;

	if (rl < 2 || record[rl - 1] != '}' || !(out = malloc(rl + 2 * pem_len + 32)))
		return NULL;
	memcpy(out, record, rl - 1);
	o = rl - 1;
	o += (size_t)sprintf(out + o, "%s\"private_key_pem\":\"", rl > 2 ? "," : "");
	o += pem_json_escape(pem, pem_len, out + o);
	memcpy(out + o, "\"}", 3);
	return out;
}

/*
 * The record as created: managed_certificates.create_issued (201, with its
 * first version) or, for an ACME issuer, .create_ordered (202, no version
 * yet, with the job that orders it); with a key the signer made, the key
 * in this answer and never again.
 */
static void on_created(const struct store_outcome *o, struct issuance *is, bool ordered)
{
	issuance_done_cb done = is->done;
	void *darg = is->arg;
	json_t *j, *rec;
	char *out;

	if (o->error || o->status != STORE_OK) {
		const char *m = o->message ? o->message : "";
		char detail[300];

		if (o->error == EIO && strstr(m, "SQLSTATE 23503")) {
			give_up(is, 422, "Unprocessable Content", "a referenced record does not exist", NULL);
			return;
		}
		if (o->error == EIO && strstr(m, "SQLSTATE 23")) {
			give_up(is, 409, "Conflict", "the record conflicts with a stored one", NULL);
			return;
		}
		if (ordered) {
			unavailable(is, "the database is unavailable");
			return;
		}
		snprintf(detail, sizeof detail,
			 "the certificate was signed (serial %s, in the signer's ledger) but could not be stored: "
			 "nothing was recorded; the request can be sent again",
			 is->serial);
		give_up(is, 503, "Service Unavailable", detail, NULL);
		return;
	}
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	rec = json_object_get(j, "certificate");
	if (rec && ordered) {
		json_t *job = json_object_get(j, "job");

		json_object_set_new(rec, "latest_version", json_null());
		json_object_set(rec, "job_id", json_object_get(job, "id"));
		json_object_set(rec, "job_status", json_object_get(job, "status"));
	} else if (rec) {
		json_object_set(rec, "latest_version", json_object_get(j, "version"));
	}
	out = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
	json_decref(j);
	if (out && is->key_pem) {
		char *record = out;

		out = with_key(record, is->key_pem, is->key_pem_len);
		free(record);
	}
	issuance_free(is);
	if (out)
		done(darg, ordered ? 202 : 201, NULL, NULL, NULL, out, strlen(out));
	else
		done(darg, 503, "Service Unavailable", "out of memory", NULL, NULL, 0);
	if (out)
		OPENSSL_cleanse(out, strlen(out));
	free(out);
}

static void on_recorded(const struct store_outcome *o, void *arg)
{
	on_created(o, arg, false);
}

static void on_renewed(const struct store_outcome *o, void *arg)
{
	struct issuance *is = arg;
	issuance_done_cb done = is->done;
	void *darg = is->arg;
	char detail[300];
	char *out;

	if (o->error || o->status != STORE_OK) {
		snprintf(detail, sizeof detail,
			 "the certificate was signed (serial %s, in the signer's ledger) but could not be stored: "
			 "nothing was recorded; the request can be sent again",
			 is->serial);
		give_up(is, 503, "Service Unavailable", detail, NULL);
		return;
	}
	out = strndup((const char *)o->json, o->json_len);
	issuance_free(is);
	if (out)
		done(darg, 201, NULL, NULL, NULL, out, strlen(out));
	else
		done(darg, 503, "Service Unavailable", "out of memory", NULL, NULL, 0);
	free(out);
}

static void on_ordered(const struct store_outcome *o, void *arg)
{
	on_created(o, arg, true);
}

/* certificates.renew with the CSR: 202 with the Renewal job */
static void on_order_renewal(const struct store_outcome *o, void *arg)
{
	struct issuance *is = arg;
	issuance_done_cb done = is->done;
	void *darg = is->arg;
	json_t *j;
	char state[16];
	char *out = NULL;
	int status = 0;

	if (failed(is, o))
		return;
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	snprintf(state, sizeof state, "%s", json_string_value(json_object_get(j, "state")) ?: "");
	if (strcmp(state, "done") == 0) {
		json_t *a = json_pack("{s:s, s:O?, s:O?}", "status", "renewal triggered", "job_id",
				      json_object_get(j, "job_id"), "job_status", json_object_get(j, "job_status"));

		out = a ? json_dumps(a, JSON_COMPACT) : NULL;
		json_decref(a);
		status = out ? 202 : 503;
	}
	json_decref(j);
	issuance_free(is);
	if (status == 202)
		done(darg, 202, NULL, NULL, NULL, out, strlen(out));
	else if (!*state || status == 503)
		done(darg, 503, "Service Unavailable", "out of memory", NULL, NULL, 0);
	else if (strcmp(state, "missing") == 0)
		done(darg, 404, "Not Found", "no such certificate", NULL, NULL, 0);
	else if (strcmp(state, "busy") == 0)
		done(darg, 409, "Conflict", "an issuance or renewal of this certificate is under way", NULL, NULL, 0);
	else
		done(darg, 409, "Conflict", "the certificate is archived or revoked", NULL, NULL, 0);
	free(out);
}

/* agents.csr_order: 202, the agent fetches the certificate once issued */
static void on_agent_order(const struct store_outcome *o, void *arg)
{
	struct issuance *is = arg;
	issuance_done_cb done = is->done;
	void *darg = is->arg;
	json_t *j;
	bool ok;

	if (failed(is, o))
		return;
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	ok = json_string_value(json_object_get(j, "state")) &&
	     strcmp(json_string_value(json_object_get(j, "state")), "done") == 0;
	json_decref(j);
	issuance_free(is);
	if (ok)
		done(darg, 202, NULL, NULL, NULL, "{\"status\":\"ordered\"}", 19);
	else
		done(darg, 409, "Conflict", "the job is no longer waiting for this CSR", "job_id", NULL, 0);
}

/* the signed certificate's parameters, in the order both ops take them */
static size_t signed_params(const struct issuance *is, const char **p, size_t n)
{
	p[n++] = is->serial;
	p[n++] = is->not_before;
	p[n++] = is->not_after;
	p[n++] = is->fingerprint;
	p[n++] = is->pem_chain;
	p[n++] = is->csr_pem;
	p[n++] = is->key_alg;
	p[n++] = is->key_size;
	return n;
}

static void record(struct issuance *is)
{
	const char *p[16];
	size_t n = 0;

	if (is->renewal) {
		/* $1 record, $2 issuer, the certificate, then the audit parameters */
		p[n++] = is->renew_id;
		p[n++] = is->issuer_id;
		n = route_audit_params(is->rc, p, signed_params(is, p, n));
		ask(is, "certificates.issued", p, n, on_renewed);
		return;
	}
	/* $1 the record, the audit parameters, the certificate, the sealed key */
	p[n++] = is->body;
	n = signed_params(is, p, route_audit_params(is->rc, p, n));
	p[n++] = is->sealed_hex; /* NULL: the client holds the key */
	ask(is, "managed_certificates.create_issued", p, n, on_recorded);
}
