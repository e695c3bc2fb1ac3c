/*
 * Certificate discovery (docs/agent.md, "Discovery"; docs/api.md):
 *
 *   POST /api/v1/agents/{id}/discoveries              the agent's report        202 (agent, its own)
 *   POST /api/v1/discovered-certificates/{id}/claim    {managed_certificate_id}  200 (admin, operator)
 *   POST /api/v1/discovered-certificates/{id}/dismiss                            200 (admin, operator)
 *   GET  /api/v1/discovery-summary                     counts by status          200 (readers)
 *
 * The lists (GET /api/v1/discovered-certificates[/{id}], GET
 * /api/v1/discovery-scans) are resources of schema/resources.json.
 *
 * A report is checked whole before anything is stored: every member's type
 * and bound, and each certificate's pem_data against its fingerprint. It is
 * then written by one statement, discovery.report, which also writes the
 * audit event. A store call carries at most 64 KiB of parameters, so the
 * certificates of a larger report go first, in parts (discovery.stage),
 * and the last call takes them: the report is stored whole or not at all.
 */
#include "discovery.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "log.h"
#include "rest.h"
#include "routes.h"
#include "store_client.h"
#include "store_wire.h"
#include "discovery_report.h"
#include "util.h"
#include "validate.h"

/* A report's bounds beyond discovery_report.h's, the api's alone */
#define DIRS_JSON_MAX 16384
#define ERRORS_KEPT_JSON_MAX 16384 /* the first errors a scan keeps */
#define DURATION_MAX 604800000LL   /* a week, in milliseconds */
/* what the certificates of one store call may take, beside the others */
#define PART_MAX (STORE_PARAMS_BYTES - 1024)

/* ---- the report's checks ---- */

struct check {
	char field[64];
	char msg[200];
};

static bool refuse(struct check *k, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool refuse(struct check *k, const char *field, const char *fmt, ...)
{
	va_list ap;

	snprintf(k->field, sizeof k->field, "%s", field);
	va_start(ap, fmt);
	vsnprintf(k->msg, sizeof k->msg, fmt, ap);
	va_end(ap);
	return false;
}

/* no control characters (the text came through jansson: it is UTF-8) */
static bool printable(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* A string member of min..max bytes without control characters; NULL
 * (not a string) and absent are told apart by the caller. */
static bool text(json_t *v, size_t min, size_t max)
{
	size_t n = json_string_length(v);

	return json_is_string(v) && n >= min && n <= max && printable(json_string_value(v), n);
}

static bool lower_hex(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* pem_data: one CERTIFICATE block, nothing after it but white space, whose
 * DER is one certificate with the fingerprint given */
static bool pem_matches(const char *pem, size_t len, const char *fingerprint)
{
	BIO *b = BIO_new_mem_buf(pem, (long)len);
	char *name = NULL, *header = NULL;
	uint8_t *der = NULL, digest[SHA256_DIGEST_LENGTH];
	const uint8_t *rest, *p;
	char hex[2 * SHA256_DIGEST_LENGTH + 1];
	long der_len = 0;
	size_t rest_len = 0;
	bool ok = false;
	X509 *x = NULL;

	if (b && PEM_read_bio(b, &name, &header, &der, &der_len) && strcmp(name, "CERTIFICATE") == 0 && !header[0] &&
	    BIO_mem_contents(b, &rest, &rest_len)) {
		ok = true;
		for (size_t i = 0; i < rest_len; i++)
			ok &= rest[i] == '\n' || rest[i] == '\r' || rest[i] == ' ' || rest[i] == '\t';
		p = der;
		ok = ok && (x = d2i_X509(NULL, &p, der_len)) && p == der + der_len;
		if (ok) {
			SHA256(der, (size_t)der_len, digest);
			hex_encode(digest, sizeof digest, hex);
			ok = strcmp(hex, fingerprint) == 0;
		}
	}
	X509_free(x);
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	BIO_free(b);
	ERR_clear_error();
	return ok;
}

/* NULL, with k naming certificates[i].member */
static json_t *bad(struct check *k, size_t i, const char *member, const char *msg)
{
	snprintf(k->field, sizeof k->field, "certificates[%zu]%s%s", i, *member ? "." : "", member);
	snprintf(k->msg, sizeof k->msg, "%s", msg);
	return NULL;
}

/* a member that may be absent or null, else checked by ok */
#define OPTIONAL(v, ok) (!(v) || json_is_null(v) || (ok))

/*
 * One certificate of the report, checked member by member, as the object
 * discovery.report takes (every member present, null where the agent sent
 * none, the serial in lower case), or NULL with k filled.
 */
static json_t *check_certificate(json_t *c, size_t i, struct check *k)
{
	static const char *const members[] = {"fingerprint_sha256", "common_name", "sans", "serial_number",
					      "issuer_dn", "subject_dn", "not_before", "not_after", "key_algorithm",
					      "key_size", "is_ca", "pem_data", "source_path", "source_format"};
	static const char pem_head[] = "-----BEGIN CERTIFICATE-----";
	char serial[DISCOVERY_SERIAL_HEX_MAX + 1] = "";
	const char *key, *s, *fp;
	json_t *v, *e, *out;
	size_t j, n;

	if (!json_is_object(c))
		return bad(k, i, "", "each certificate must be an object");
	json_object_foreach(c, key, v) {
		for (j = 0; j < sizeof members / sizeof members[0] && strcmp(key, members[j]) != 0; j++)
			;
		if (j == sizeof members / sizeof members[0])
			return bad(k, i, key, "unknown field");
	}
	v = json_object_get(c, "fingerprint_sha256");
	if (!json_is_string(v) || json_string_length(v) != 64 || !lower_hex(json_string_value(v), 64))
		return bad(k, i, "fingerprint_sha256", "required: 64 lower-case hex digits (SHA-256 of the DER)");
	fp = json_string_value(v);
	v = json_object_get(c, "common_name");
	if (!OPTIONAL(v, text(v, 0, DISCOVERY_CN_MAX)))
		return bad(k, i, "common_name", "at most 1024 bytes of text");
	v = json_object_get(c, "sans");
	if (!OPTIONAL(v, json_is_array(v) && json_array_size(v) <= DISCOVERY_SANS_MAX))
		return bad(k, i, "sans", "an array of at most 1000 names");
	json_array_foreach(json_is_array(v) ? v : NULL, j, e)
		if (!text(e, 1, DISCOVERY_SAN_MAX))
			return bad(k, i, "sans", "each name: 1 to 1024 bytes of text");
	v = json_object_get(c, "serial_number");
	if (!OPTIONAL(v, json_is_string(v) && json_string_length(v) >= 1 && json_string_length(v) <= DISCOVERY_SERIAL_HEX_MAX))
		return bad(k, i, "serial_number", "1 to 128 hex digits");
	if (json_is_string(v)) {
		/* hex in either case, kept in lower case */
		s = json_string_value(v);
		n = json_string_length(v);
		for (j = 0; j < n; j++) {
			serial[j] = (char)(s[j] >= 'A' && s[j] <= 'F' ? s[j] + 32 : s[j]);
			if (!lower_hex(serial + j, 1))
				return bad(k, i, "serial_number", "1 to 128 hex digits");
		}
		serial[n] = '\0';
	}
	v = json_object_get(c, "issuer_dn");
	if (!OPTIONAL(v, text(v, 0, DISCOVERY_DN_MAX)))
		return bad(k, i, "issuer_dn", "at most 4096 bytes of text");
	v = json_object_get(c, "subject_dn");
	if (!OPTIONAL(v, text(v, 0, DISCOVERY_DN_MAX)))
		return bad(k, i, "subject_dn", "at most 4096 bytes of text");
	v = json_object_get(c, "not_before");
	if (!OPTIONAL(v, json_is_string(v) && valid_rfc3339(json_string_value(v))))
		return bad(k, i, "not_before", "an RFC 3339 date-time");
	v = json_object_get(c, "not_after");
	if (!OPTIONAL(v, json_is_string(v) && valid_rfc3339(json_string_value(v))))
		return bad(k, i, "not_after", "an RFC 3339 date-time");
	v = json_object_get(c, "key_algorithm");
	s = json_string_value(v);
	if (!OPTIONAL(v, s && (!strcmp(s, "RSA") || !strcmp(s, "ECDSA") || !strcmp(s, "Ed25519") || !strcmp(s, "Other"))))
		return bad(k, i, "key_algorithm", "RSA, ECDSA, Ed25519 or Other");
	v = json_object_get(c, "key_size");
	if (!OPTIONAL(v, json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 65536))
		return bad(k, i, "key_size", "an integer from 0 to 65536 (bits)");
	v = json_object_get(c, "is_ca");
	if (!OPTIONAL(v, json_is_boolean(v)))
		return bad(k, i, "is_ca", "a boolean");
	v = json_object_get(c, "source_path");
	if (!text(v, 2, DISCOVERY_PATH_MAX) || json_string_value(v)[0] != '/')
		return bad(k, i, "source_path", "required: an absolute path of at most 2048 bytes of text");
	v = json_object_get(c, "source_format");
	s = json_string_value(v);
	if (!s || (strcmp(s, "PEM") && strcmp(s, "DER")))
		return bad(k, i, "source_format", "required: PEM or DER");
	v = json_object_get(c, "pem_data");
	s = json_string_value(v);
	if (!s || json_string_length(v) > DISCOVERY_PEM_MAX || strncmp(s, pem_head, sizeof pem_head - 1) != 0 ||
	    !pem_matches(s, json_string_length(v), fp))
		return bad(k, i, "pem_data",
			   "required: one PEM CERTIFICATE of at most 32768 bytes whose SHA-256 is fingerprint_sha256");
	out = json_pack("{s:s, s:O?, s:O?, s:s?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O, s:O, s:O}",
			"fingerprint_sha256", fp, "common_name", json_object_get(c, "common_name"), "sans",
			json_object_get(c, "sans"), "serial_number", serial[0] ? serial : NULL, "issuer_dn",
			json_object_get(c, "issuer_dn"), "subject_dn", json_object_get(c, "subject_dn"), "not_before",
			json_object_get(c, "not_before"), "not_after", json_object_get(c, "not_after"),
			"key_algorithm", json_object_get(c, "key_algorithm"), "key_size", json_object_get(c, "key_size"),
			"is_ca", json_object_get(c, "is_ca"), "pem_data", json_object_get(c, "pem_data"), "source_path",
			json_object_get(c, "source_path"), "source_format", json_object_get(c, "source_format"));
	if (!out)
		refuse(k, "", "out of memory");
	return out;
}

/* ---- the report, then its calls to the store ---- */

struct report {
	struct route_call *c;
	char id[48];       /* the scan's, chosen here so that parts can name it */
	char *meta;        /* $1 of discovery.report */
	char **parts;      /* certificates, JSON arrays of at most PART_MAX bytes */
	size_t nparts, next;
	size_t ncerts;
	bool staged;       /* every part goes through discovery.stage */
};

static void report_free(struct report *r)
{
	for (size_t i = 0; i < r->nparts; i++)
		free(r->parts[i]);
	free(r->parts);
	free(r->meta);
	free(r);
}

static void report_fail(struct report *r, int status, const char *title, const char *detail, const char *field)
{
	route_problem(r->c, status, title, detail, field);
	report_free(r);
}

/* The certificates, serialized, packed into parts in order */
static bool pack(struct report *r, json_t *certs, struct check *k)
{
	size_t i, cap = 0, used = 0;
	json_t *c;

	json_array_foreach(certs, i, c) {
		char *one = json_dumps(c, JSON_COMPACT);
		size_t n = one ? strlen(one) : 0;

		if (!one)
			return refuse(k, "", "out of memory");
		if (n > DISCOVERY_CERT_JSON_MAX) {
			free(one);
			snprintf(k->field, sizeof k->field, "certificates[%zu]", i);
			snprintf(k->msg, sizeof k->msg, "a certificate's fields take at most 48 KiB");
			return false;
		}
		if (!r->nparts || used + n + 2 > PART_MAX) {
			if (r->nparts == cap) {
				char **p = realloc(r->parts, (cap = cap ? cap * 2 : 4) * sizeof *p);

				if (!p) {
					free(one);
					return refuse(k, "", "out of memory");
				}
				r->parts = p;
			}
			if (!(r->parts[r->nparts] = malloc(PART_MAX + 1))) {
				free(one);
				return refuse(k, "", "out of memory");
			}
			strcpy(r->parts[r->nparts++], "[");
			used = 1;
		}
		if (used > 1)
			r->parts[r->nparts - 1][used++] = ',';
		memcpy(r->parts[r->nparts - 1] + used, one, n);
		used += n;
		strcpy(r->parts[r->nparts - 1] + used, "]");
		free(one);
	}
	return true;
}

static void on_report(const struct store_outcome *o, void *arg)
{
	struct report *r = arg;
	json_t *j, *scan;
	const char *state;
	char *text, kv[200];

	if (o->error) {
		rest_store_failed(r->c, o, false, "discovery.report");
		report_free(r);
		return;
	}
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	state = json_string_value(json_object_get(j, "state"));
	scan = json_object_get(j, "scan");
	if (state && strcmp(state, "done") == 0 && json_is_object(scan) && (text = json_dumps(scan, JSON_COMPACT))) {
		snprintf(kv, sizeof kv, "agent=%s scan=%s certificates=%zu parts=%zu new=%lld", route_param(r->c, "id"),
			 r->id, r->ncerts, r->staged ? r->nparts : 1,
			 (long long)json_integer_value(json_object_get(scan, "certificates_new")));
		log_event(LOG_INFO, r->c->req.reqid, kv, "discovery report stored");
		route_respond(r->c, 202, "application/json", text, strlen(text));
		free(text);
	} else if (state && strcmp(state, "retired") == 0) {
		route_problem(r->c, 410, "Gone", "the agent is retired: stop", NULL);
	} else if (state && strcmp(state, "missing") == 0) {
		route_problem(r->c, 404, "Not Found", NULL, NULL);
	} else {
		log_event(LOG_ERROR, r->c->req.reqid, NULL, "discovery.report: an answer without a state");
		route_problem(r->c, 500, "Internal Server Error", NULL, NULL);
	}
	json_decref(j);
	report_free(r);
}

static void next_call(struct report *r);

static void on_staged(const struct store_outcome *o, void *arg)
{
	struct report *r = arg;

	if (o->error) {
		/* the parts stored so far are dropped by a later report */
		rest_store_failed(r->c, o, false, "discovery.stage");
		report_free(r);
		return;
	}
	next_call(r);
}

/* the next part through discovery.stage, or the report's last call */
static void next_call(struct report *r)
{
	const char *p[12];
	char part[24];
	int rc;

	if (r->staged && r->next < r->nparts) {
		snprintf(part, sizeof part, "%zu", r->next);
		p[0] = r->id;
		p[1] = route_param(r->c, "id");
		p[2] = part;
		p[3] = r->parts[r->next++];
		rc = store_call(r->c->w, "discovery.stage", p, 4, on_staged, r);
	} else {
		p[0] = r->meta;
		p[1] = r->staged || !r->nparts ? "[]" : r->parts[0];
		rc = store_call(r->c->w, "discovery.report", p, route_audit_params(r->c, p, 2), on_report, r);
	}
	if (rc != 0)
		report_fail(r, 503, "Service Unavailable", "the database is unavailable", NULL);
}

/* whether the report's last call, with the one part, fits one store call */
static bool fits_one_call(struct report *r)
{
	const char *p[12] = {r->meta, r->nparts ? r->parts[0] : "[]"};
	size_t n = route_audit_params(r->c, p, 2), total = 2;

	for (size_t i = 0; i < n; i++)
		total += 4 + (p[i] ? strlen(p[i]) : 0);
	return r->nparts <= 1 && total <= STORE_PARAMS_BYTES;
}

/* the members of the report other than its certificates; the scan's
 * JSON (meta) on success */
static bool check_scan(struct report *r, json_t *body, struct check *k)
{
	static const char *const members[] = {"agent_id", "directories", "certificates", "errors", "scan_duration_ms"};
	json_t *v, *e, *kept = NULL, *meta = NULL;
	const char *key;
	size_t i, j, kept_bytes = 2;
	json_int_t ms = 0;
	char *dirs_text;

	json_object_foreach(body, key, v) {
		for (j = 0; j < sizeof members / sizeof members[0] && strcmp(key, members[j]) != 0; j++)
			;
		if (j == sizeof members / sizeof members[0])
			return refuse(k, key, "unknown field");
	}
	v = json_object_get(body, "agent_id");
	if (!json_is_string(v))
		return refuse(k, "agent_id", "required: the agent's id");
	if (strcmp(json_string_value(v), route_param(r->c, "id")) != 0)
		return refuse(k, "agent_id", "must be the agent of the path");
	v = json_object_get(body, "directories");
	if (!json_is_array(v) || json_array_size(v) > DISCOVERY_DIRS_MAX)
		return refuse(k, "directories", "required: an array of at most 32 directories");
	json_array_foreach(v, i, e)
		if (!text(e, 1, DISCOVERY_DIR_MAX) || json_string_value(e)[0] != '/')
			return refuse(k, "directories", "each: an absolute path of at most 1024 bytes of text");
	dirs_text = json_dumps(v, JSON_COMPACT);
	if (!dirs_text || strlen(dirs_text) > DIRS_JSON_MAX) {
		free(dirs_text);
		return refuse(k, "directories", "at most 16384 bytes of JSON in all");
	}
	free(dirs_text);
	v = json_object_get(body, "certificates");
	if (!json_is_array(v) || json_array_size(v) > DISCOVERY_CERTS_MAX)
		return refuse(k, "certificates", "required: an array of at most 5000 certificates");
	v = json_object_get(body, "errors");
	if (v && !json_is_null(v) && (!json_is_array(v) || json_array_size(v) > DISCOVERY_ERRORS_MAX))
		return refuse(k, "errors", "an array of at most 1000 entries");
	if (!(kept = json_array()))
		return refuse(k, "", "out of memory");
	json_array_foreach(json_is_array(v) ? v : NULL, i, e) {
		if (!text(e, 1, DISCOVERY_ERROR_MAX)) {
			json_decref(kept);
			return refuse(k, "errors", "each entry: 1 to 1024 bytes of text");
		}
		/* the scan keeps the first ones (its errors_count counts all) */
		kept_bytes += json_string_length(e) * 2 + 3;
		if (kept_bytes <= ERRORS_KEPT_JSON_MAX)
			json_array_append(kept, e);
	}
	v = json_object_get(body, "scan_duration_ms");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > DURATION_MAX) {
			json_decref(kept);
			return refuse(k, "scan_duration_ms", "an integer from 0 to 604800000");
		}
		ms = json_integer_value(v);
	}
	meta = json_pack("{s:s, s:s, s:O, s:o, s:I, s:I}", "id", r->id, "agent_id", route_param(r->c, "id"),
			 "directories", json_object_get(body, "directories"), "errors", kept, "errors_count",
			 (json_int_t)json_array_size(json_object_get(body, "errors")), "scan_duration_ms", ms);
	r->meta = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
	json_decref(meta);
	return r->meta ? true : refuse(k, "", "out of memory");
}

static void report(struct route_call *c)
{
	struct report *r = calloc(1, sizeof *r);
	struct check k = {"", ""};
	json_t *body = NULL, *certs = NULL, *e;
	uint8_t rnd[16];
	char hex[33];
	size_t i;

	if (!r) {
		route_problem(c, 503, "Service Unavailable", "out of memory", NULL);
		return;
	}
	r->c = c;
	if (!valid_resource_id(route_param(c, "id"), 128)) {
		report_fail(r, 404, "Not Found", NULL, NULL);
		return;
	}
	/* report, certificates, a certificate, its sans */
	if (!c->req.body_len || !json_depth_ok((const char *)c->req.body, c->req.body_len, 4) ||
	    !(body = json_loadb((const char *)c->req.body, c->req.body_len, JSON_REJECT_DUPLICATES, NULL)) ||
	    !json_is_object(body)) {
		json_decref(body);
		report_fail(r, 400, "Bad Request", "the body must be a DiscoveryReport (a JSON object, nested at most 4 deep)",
			    NULL);
		return;
	}
	RAND_bytes(rnd, sizeof rnd);
	hex_encode(rnd, sizeof rnd, hex);
	snprintf(r->id, sizeof r->id, "dscan-%s", hex);
	if (!check_scan(r, body, &k) || !(certs = json_array()))
		goto refused;
	json_array_foreach(json_object_get(body, "certificates"), i, e) {
		json_t *one = check_certificate(e, i, &k);

		if (!one)
			goto refused;
		json_array_append_new(certs, one);
	}
	r->ncerts = json_array_size(certs);
	if (!pack(r, certs, &k))
		goto refused;
	json_decref(certs);
	json_decref(body);
	r->staged = !fits_one_call(r);
	next_call(r);
	return;
refused:
	json_decref(certs);
	json_decref(body);
	if (strcmp(k.msg, "out of memory") == 0)
		report_fail(r, 503, "Service Unavailable", k.msg, NULL);
	else
		report_fail(r, 400, "Bad Request", k.msg, k.field[0] ? k.field : NULL);
}

/* ---- triage ---- */

enum triage { T_CLAIM, T_DISMISS, T_SUMMARY };

static const char *const triage_ops[] = {"discovered_certificates.claim", "discovered_certificates.dismiss",
					 "discovery.summary"};

static void on_triage(const struct store_outcome *o, void *arg)
{
	struct route_call *c = arg;
	enum triage t = (enum triage)(size_t)c->route->arg;
	json_t *j;
	const char *state;
	char message[200];

	if (o->error) {
		rest_store_failed(c, o, false, triage_ops[t]);
		return;
	}
	if (t == T_SUMMARY) {
		route_respond(c, 200, "application/json", (const char *)o->json, o->json_len);
		return;
	}
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	state = json_string_value(json_object_get(j, "state"));
	if (!state) {
		log_event(LOG_ERROR, c->req.reqid, NULL, "%s: an answer without a state", triage_ops[t]);
		route_problem(c, 500, "Internal Server Error", NULL, NULL);
	} else if (strcmp(state, "missing") == 0) {
		route_problem(c, 404, "Not Found", NULL, NULL);
	} else if (strcmp(state, "no_certificate") == 0) {
		route_problem(c, 422, "Unprocessable Content", "no managed certificate with this id (or it is archived)",
			      "managed_certificate_id");
	} else if (t == T_CLAIM) {
		snprintf(message, sizeof message, "linked to managed certificate %s",
			 json_string_value(json_object_get(j, "managed_certificate_id")) ?: "?");
		route_respond_json(c, 200, json_pack("{s:s, s:s}", "status", "claimed", "message", message));
	} else {
		route_respond_json(c, 200, json_pack("{s:s, s:s}", "status", "dismissed", "message",
					       "left out of the triage queue"));
	}
	json_decref(j);
}

static void triage(struct route_call *c)
{
	static const char *const claim_members[] = {"managed_certificate_id"};
	enum triage t = (enum triage)(size_t)c->route->arg;
	const char *p[10] = {route_param(c, "id")};
	char mc[129];
	size_t n = 0;
	json_t *b, *v;

	if (t == T_SUMMARY && c->req.query[0]) {
		route_problem(c, 400, "Bad Request", "the summary takes no query parameters", NULL);
		return;
	}
	if (t != T_SUMMARY) {
		if (!valid_resource_id(p[0], 128)) {
			route_problem(c, 404, "Not Found", NULL, NULL);
			return;
		}
		if (!(b = action_body(c, claim_members, t == T_CLAIM ? 1 : 0)))
			return;
		n = 1;
		if (t == T_CLAIM) {
			v = json_object_get(b, "managed_certificate_id");
			if (!json_is_string(v) || !valid_resource_id(json_string_value(v), 128)) {
				json_decref(b);
				route_problem(c, 400, "Bad Request", "required: the id of a managed certificate",
					      "managed_certificate_id");
				return;
			}
			snprintf(mc, sizeof mc, "%s", json_string_value(v));
			p[n++] = mc;
		}
		json_decref(b);
		n = route_audit_params(c, p, n);
	}
	if (store_call(c->w, triage_ops[t], p, n, on_triage, c) != 0)
		route_problem(c, 503, "Service Unavailable", "the database is unavailable", NULL);
}

static const struct route discovery_routes[] = {
	{"POST", "/api/v1/agents/{id}/discoveries", ROLE_AGENT, ROUTE_OWN_AGENT, report, NULL},
	{"POST", "/api/v1/discovered-certificates/{id}/claim", ROLES_MANAGE, 0, triage, (void *)T_CLAIM},
	{"POST", "/api/v1/discovered-certificates/{id}/dismiss", ROLES_MANAGE, 0, triage, (void *)T_DISMISS},
	{"GET", "/api/v1/discovery-summary", ROLES_READ, 0, triage, (void *)T_SUMMARY},
};

void discovery_routes_init(void)
{
	routes_add(discovery_routes, sizeof discovery_routes / sizeof discovery_routes[0]);
}
