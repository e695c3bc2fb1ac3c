/* certward-signer: the only process that holds private keys. It has no
 * network, no database and cannot exec; it reaches nothing but its channels
 * and its key directory. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "acme.h"
#include "agent_ca.h"
#include "ca.h"
#include "codec.h"
#include "ledger.h"
#include "harden.h"
#include "issue.h"
#include "csr_policy.h"
#include "keygen.h"
#include "revoke.h"
#include "log.h"
#include "pki.h"
#include "secretbox.h"
#include "secrets.h"
#include "tlskey.h"
#include "worker.h"

/* A signed object waiting for the ledger's next commit. */
struct pending {
	struct ipc_channel *ch; /* NULL once that peer is gone */
	uint64_t id;
	enum { P_CERT, P_CRL, P_OCSP, P_AGENT_ID } kind;
	struct issue_result res; /* P_CERT */
	struct agent_id_result agent; /* P_AGENT_ID */
	char agent_id[129];           /* P_AGENT_ID: for its log line */
	const char *chain;       /* P_CERT: the signing CA's chain */
	size_t chain_len;
	/* P_CERT with a key made here (KEYGEN_SIGN) */
	bool keygen;
	char *key_pem;
	size_t key_pem_len;
	uint8_t *csr, *sealed;
	size_t csr_len, sealed_len;
	struct revoke_crl crl;   /* P_CRL */
	struct revoke_ocsp ocsp; /* P_OCSP */
	struct pending *next;
};

struct signer {
	int key_dir_fd;
	struct tls_key *api_key;
	struct ledger *ledger; /* every certificate, CRL and OCSP signature */
	struct ca *ca;
	struct agent_ca *agent_ca; /* signs agent identities, nothing else */
	const char *key_dir;
	struct responders *responders;
	const char *base_url;
	uint64_t default_validity_s, agent_identity_lifetime_s;
	uint64_t refused;
	uint64_t issued, issue_refused, ledger_failures;
	uint64_t crls, crl_refused, ocsp_signed, ocsp_refused, intermediate_refused;
	uint64_t agent_ids, agent_id_refused;
	uint64_t unavailable; /* requests a CA whose token was not ready could not sign */
	struct acme_keys *acme; /* ACME account keys, for the scheduler alone */
	uint64_t acme_jws, acme_eab, acme_refused;
	/* group commit: certificates signed in one turn of the event loop share
	 * one ledger write and fdatasync, after which they are answered */
	uv_check_t committer;
	bool committer_active;
	uv_loop_t *loop;
	bool stopped;
	uv_timer_t p11_retry; /* a token CA that is not ready, tried again */
	bool p11_timer;
	struct pending *pending, **pending_tail;
};

static struct signer signer = {.key_dir_fd = -1};

/* a certificate being signed on the thread pool (sign_async) */
struct sign_job {
	uv_work_t req;
	struct pending *p; /* its answer, once signed */
	struct ca *ca;
	X509 *cert;
	char issuer_id[65];
	int ok;
	struct ipc_channel *ch; /* NULL once that peer is gone */
	uint64_t id;
	struct sign_job *next;
};

static struct sign_job *inflight;

/* The key directory must be ours alone: anything else means someone else
 * could read or plant keys. */
static int open_key_dir(const char *path)
{
	struct stat st;
	int fd;

	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		log_error("cannot create key directory %s: %s", path, strerror(errno));
		return -1;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		log_error("cannot open key directory %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 077)) {
		log_error("key directory %s must be owned by uid %u with mode 0700",
			  path, (unsigned)geteuid());
		close(fd);
		return -1;
	}
	return fd;
}

static void p11_retry(uv_timer_t *t)
{
	(void)t;
	ca_retry(signer.ca);
}

static int signer_init(struct worker *w, const struct cfg *section)
{
	const char *dir = cfg_str(section, "signer", "key_dir");

	if (!dir || !*dir) {
		log_error("signer.key_dir is not set");
		return -1;
	}
	umask(077);
	signer.key_dir_fd = open_key_dir(dir);
	if (signer.key_dir_fd < 0)
		return -1;
	if (secrets_init(signer.key_dir_fd) != 0)
		return -1;
	signer.api_key = tls_key_open(section, dir, cfg_str(section, "signer", "cert_dir"));
	if (!signer.api_key)
		return -1;
	{
		char path[1100], why[400];

		snprintf(path, sizeof path, "%s/ledger", dir);
		signer.ledger = ledger_open(path, why, sizeof why);
		if (!signer.ledger) {
			log_error("%s; the signer signs nothing without its ledger", why);
			return -1;
		}
		if (*why)
			log_warn("%s: %s", path, why);
	}
	signer.ca = ca_open(section, dir, cfg_str(section, "signer", "cert_dir"), signer.ledger);
	/* in either CA mode: the agent identity CA is always the signer's own */
	if (signer.ca &&
	    !(signer.agent_ca = agent_ca_open(section, dir, cfg_str(section, "signer", "cert_dir"), signer.ledger)))
		return -1;
	signer.base_url = cfg_str(section, "signer", "pki_base_url");
	signer.key_dir = dir;
	if (signer.ca && !(signer.responders = responders_open(section, dir, signer.ledger)))
		return -1;
	if (signer.ca && !(signer.acme = acme_keys_open(section, dir)))
		return -1;
	signer.pending_tail = &signer.pending;
	signer.loop = worker_loop(w);
	uv_check_init(worker_loop(w), &signer.committer);
	signer.default_validity_s = cfg_duration_ms(section, "signer", "default_validity") / 1000;
	signer.agent_identity_lifetime_s = cfg_duration_ms(section, "signer", "agent_identity_lifetime") / 1000;
	if (signer.ca && strcmp(cfg_str(section, "signer", "ca_backend"), "pkcs11") == 0) {
		uint64_t every = cfg_duration_ms(section, "signer", "pkcs11_retry_interval");
		int64_t sessions = cfg_int(section, "signer", "pkcs11_sessions");
		char n[24];

		/* a thread of libuv's pool for each session that may sign at once
		 * (read when the pool starts, at the first signature) */
		snprintf(n, sizeof n, "%lld", (long long)(sessions > 4 ? sessions : 4));
		setenv("UV_THREADPOOL_SIZE", n, 1);

		uv_timer_init(worker_loop(w), &signer.p11_retry);
		uv_timer_start(&signer.p11_retry, p11_retry, every, every);
		signer.p11_timer = true;
	}
	return signer.ca ? 0 : -1;
}

/* An agent identity, its ledger line on disk: counted and logged (no key
 * material), then answered. */
static void agent_id_answer(struct pending *p, struct ipc_msg *req)
{
	struct ipc_msg r = {.type = IPC_T_AGENT_ID_SIGNED};
	char kv[400], until[32];
	time_t t = (time_t)p->agent.not_after;
	struct tm tm;
	size_t len;

	signer.agent_ids++;
	if (!gmtime_r(&t, &tm) || !strftime(until, sizeof until, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(until, sizeof until, "%lld", (long long)p->agent.not_after);
	snprintf(kv, sizeof kv, "agent_id=%s serial=%s not_after=%s", p->agent_id, p->agent.serial, until);
	log_event(LOG_INFO, NULL, kv, "signed an agent identity");
	if (!p->ch)
		return;
	r.u.agent_id_signed.der.ptr = p->agent.der;
	r.u.agent_id_signed.der.len = (uint32_t)p->agent.der_len;
	r.u.agent_id_signed.serial = p->agent.serial;
	r.u.agent_id_signed.sha256 = p->agent.sha256;
	r.u.agent_id_signed.not_before = (uint64_t)p->agent.not_before;
	r.u.agent_id_signed.not_after = (uint64_t)p->agent.not_after;
	r.u.agent_id_signed.ca_pem.ptr = (const uint8_t *)agent_ca_pem(signer.agent_ca, &len);
	r.u.agent_id_signed.ca_pem.len = (uint32_t)len;
	ipc_reply(p->ch, req, &r);
}

/* After the loop's I/O: one ledger commit for everything signed in this
 * turn, then the answers (or, if the commit failed, EIO for all of them:
 * none of those certificates exists outside the signer). */
static void commit_pending(uv_check_t *h)
{
	struct pending *p = signer.pending, *next;
	char why[300];
	int rc = ledger_commit(signer.ledger, why, sizeof why);

	signer.pending = NULL;
	signer.pending_tail = &signer.pending;
	uv_check_stop(&signer.committer);
	signer.committer_active = false;
	if (rc != 0)
		log_error("refused to hand out the certificates signed just now: %s", why);
	for (; p; p = next) {
		struct ipc_msg req = {.id = p->id}, r = {0};
		char werr[200];

		next = p->next;
		if (rc != 0) {
			signer.ledger_failures++;
			if (p->ch)
				ipc_reply_error(p->ch, &req, EIO, why);
		} else if (p->kind == P_CERT) {
			signer.issued++; /* signed and in the ledger, also when its asker is gone */
			r.type = IPC_T_CERT_SIGNED;
			r.u.cert_signed.der.ptr = p->res.der;
			r.u.cert_signed.der.len = (uint32_t)p->res.der_len;
			r.u.cert_signed.serial = p->res.serial;
			r.u.cert_signed.not_before = (uint64_t)p->res.not_before;
			r.u.cert_signed.not_after = (uint64_t)p->res.not_after;
			r.u.cert_signed.chain_pem.ptr = (const uint8_t *)p->chain;
			r.u.cert_signed.chain_pem.len = (uint32_t)p->chain_len;
			if (p->keygen) {
				r.type = IPC_T_KEYGEN_SIGNED;
				r.u.keygen_signed.der = r.u.cert_signed.der;
				r.u.keygen_signed.serial = p->res.serial;
				r.u.keygen_signed.not_before = (uint64_t)p->res.not_before;
				r.u.keygen_signed.not_after = (uint64_t)p->res.not_after;
				r.u.keygen_signed.chain_pem.ptr = (const uint8_t *)p->chain;
				r.u.keygen_signed.chain_pem.len = (uint32_t)p->chain_len;
				r.u.keygen_signed.csr.ptr = p->csr;
				r.u.keygen_signed.csr.len = (uint32_t)p->csr_len;
				r.u.keygen_signed.sealed_key.ptr = p->sealed;
				r.u.keygen_signed.sealed_key.len = (uint32_t)p->sealed_len;
				r.u.keygen_signed.key_pem.ptr = (const uint8_t *)p->key_pem;
				r.u.keygen_signed.key_pem.len = (uint32_t)p->key_pem_len;
			}
			if (p->ch)
				ipc_reply(p->ch, &req, &r);
		} else if (p->kind == P_AGENT_ID) {
			agent_id_answer(p, &req);
		} else if (p->kind == P_CRL) {
			signer.crls++;
			/* only now, with its ledger line on disk, does the CRL reach the memfd */
			if (revoke_crl_deliver(&p->crl, werr, sizeof werr) != 0) {
				log_error("CRL %llu of %s: %s", (unsigned long long)p->crl.crl_number, p->crl.issuer_id,
					  werr);
				if (p->ch)
					ipc_reply_error(p->ch, &req, EIO, werr);
			} else if (p->ch) {
				r.type = IPC_T_CRL_SIGNED;
				r.u.crl_signed.der_offset = p->crl.der_offset;
				r.u.crl_signed.der_len = p->crl.der_len;
				r.u.crl_signed.sha256 = p->crl.sha256;
				r.u.crl_signed.next_update = (uint64_t)p->crl.next_update;
				ipc_reply(p->ch, &req, &r);
			}
		} else {
			signer.ocsp_signed++;
			r.type = IPC_T_OCSP_SIGNED;
			r.u.ocsp_signed.response.ptr = p->ocsp.der;
			r.u.ocsp_signed.response.len = (uint32_t)p->ocsp.der_len;
			r.u.ocsp_signed.this_update = (uint64_t)p->ocsp.this_update;
			r.u.ocsp_signed.next_update = (uint64_t)p->ocsp.next_update;
			if (p->ch)
				ipc_reply(p->ch, &req, &r);
		}
		OPENSSL_free(p->res.der);
		OPENSSL_free(p->agent.der);
		keygen_wipe(p->key_pem, p->key_pem_len);
		OPENSSL_free(p->csr);
		free(p->sealed);
		revoke_crl_free(&p->crl);
		OPENSSL_free(p->ocsp.der);
		free(p);
	}
}

/* Queues p for the next commit (after this turn's I/O). */
static void pending_add(struct pending *p)
{
	*signer.pending_tail = p;
	signer.pending_tail = &p->next;
	if (!signer.committer_active) {
		uv_check_start(&signer.committer, commit_pending);
		signer.committer_active = true;
	}
}

/* A certificate signed by ca (its ledger line staged), answered after the commit. */
static void pending_cert(struct pending *p, struct ipc_channel *from, uint64_t id, struct ca *ca)
{
	p->ch = from;
	p->id = id;
	p->kind = P_CERT;
	p->chain = ca_chain_pem(ca, &p->chain_len);
	p->crl.memfd = -1;
	pending_add(p);
}

static void signer_peer_closed(struct worker *w, struct ipc_channel *ch)
{
	for (struct pending *p = signer.pending; p; p = p->next)
		if (p->ch == ch)
			p->ch = NULL;
	for (struct sign_job *j = inflight; j; j = j->next)
		if (j->ch == ch)
			j->ch = NULL;
}

/* A request not signed: rc -2 is the ledger (EIO, an error line), -3 a
 * CertID of another CA (EACCES), -4 a CA whose key cannot sign now (its
 * token: EAGAIN), anything else a rule broken (EINVAL, counted in
 * *refused); why goes back to the caller. what: "sign a CRL". */
static void refuse(struct ipc_channel *from, struct ipc_msg *m, int rc, const char *what, const char *why,
		   uint64_t *refused)
{
	if (rc == -4) {
		signer.unavailable++;
		log_event(LOG_WARN, NULL, NULL, "could not %s for %s: %s", what, ipc_channel_peer(from), why);
		ipc_reply_error(from, m, EAGAIN, why);
		return;
	}
	if (rc == -2) {
		signer.ledger_failures++;
		log_error("refused to %s for %s (the ledger): %s", what, ipc_channel_peer(from), why);
	} else {
		(*refused)++;
		log_event(LOG_WARN, NULL, NULL, "refused to %s for %s: %s", what, ipc_channel_peer(from), why);
	}
	ipc_reply_error(from, m, rc == -2 ? EIO : rc == -3 ? EACCES : EINVAL, why);
}

/* A certificate of a CA whose key is on a token: built here, signed on
 * libuv's thread pool (a signature waits for a free session of the token:
 * requests queue per session, and several sessions sign at once), then
 * staged in the ledger and answered here like any other. */

static void pending_drop(struct pending *p)
{
	if (!p)
		return;
	keygen_wipe(p->key_pem, p->key_pem_len);
	OPENSSL_free(p->csr);
	free(p->sealed);
	free(p);
}

static void job_work(uv_work_t *req)
{
	struct sign_job *j = req->data;

	j->ok = X509_sign(j->cert, ca_key(j->ca), pki_sign_digest(ca_key(j->ca))) > 0;
	ERR_clear_error();
}

static void pending_cert(struct pending *p, struct ipc_channel *from, uint64_t id, struct ca *ca);
static void refuse(struct ipc_channel *from, struct ipc_msg *m, int rc, const char *what, const char *why,
		   uint64_t *refused);

static void job_done(uv_work_t *req, int status)
{
	struct sign_job *j = req->data, **pp;
	struct ipc_msg m = {.id = j->id};
	char why[400];
	int rc = 0;

	for (pp = &inflight; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	if (signer.stopped) {
		/* stopping: nothing staged, nothing answered; the CA waited for us */
		pending_drop(j->p);
		X509_free(j->cert);
		free(j);
		if (!inflight) {
			ca_free(signer.ca);
			signer.ca = NULL;
		}
		return;
	}
	if (status != 0 || !j->ok) {
		char last[300];

		if (!ca_usable(j->ca, why, sizeof why)) {
			rc = -4;
		} else {
			ca_last_error(j->ca, last, sizeof last);
			snprintf(why, sizeof why, "the token did not sign the certificate: %s", last);
			rc = -4;
		}
	} else {
		rc = issue_finish(j->ca, signer.ledger, j->issuer_id, j->cert, &j->p->res, why, sizeof why);
	}
	if (rc == 0) {
		pending_cert(j->p, j->ch, j->id, j->ca);
		j->p = NULL;
	} else if (j->ch) {
		refuse(j->ch, &m, rc, j->p->keygen ? "make a key and certificate" : "sign a certificate", why,
		       &signer.issue_refused);
	} else {
		signer.issue_refused++;
	}
	pending_drop(j->p);
	X509_free(j->cert);
	free(j);
}

/* cert (built by issue_prepare, owned now) signed on the thread pool, then
 * answered as p (whose keygen parts, if any, are set). 0, or -1 when it
 * cannot be queued (nothing freed but cert). */
static int sign_async(struct ca *ca, X509 *cert, const char *issuer_id, struct pending *p,
		      struct ipc_channel *from, uint64_t id)
{
	struct sign_job *j = calloc(1, sizeof *j);

	if (!j) {
		X509_free(cert);
		return -1;
	}
	j->req.data = j;
	j->p = p;
	j->ca = ca;
	j->cert = cert;
	snprintf(j->issuer_id, sizeof j->issuer_id, "%s", issuer_id);
	j->ch = from;
	j->id = id;
	if (uv_queue_work(signer.loop, &j->req, job_work, job_done) != 0) {
		X509_free(cert);
		free(j);
		return -1;
	}
	j->next = inflight;
	inflight = j;
	return 0;
}

/* ca's key cannot sign now (its token): -4 with why. A request refused for
 * another reason (rc -1) is also put down to the token when the token
 * went away meanwhile: the signature failed, not a rule. */
static int usable(struct ca *ca, char *why, size_t whylen)
{
	return !ca || ca_usable(ca, why, whylen) ? 0 : -4;
}

static int token_reason(struct ca *ca, int rc, char *why, size_t whylen)
{
	return rc == -1 && ca && !ca_usable(ca, why, whylen) ? -4 : rc;
}

/* CERT_SIGN: the rules checked again here (issue.c), whatever the caller
 * checked before. */
static void cert_sign(struct ipc_channel *from, struct ipc_msg *m)
{
	struct issue_request rq = {
		.csr = m->u.cert_sign.csr.ptr,
		.csr_len = m->u.cert_sign.csr.len,
		.profile = (const char *)m->u.cert_sign.profile.ptr,
		.profile_len = m->u.cert_sign.profile.len,
		.issuer_id = m->u.cert_sign.issuer_id,
		.validity_seconds = m->u.cert_sign.validity_seconds,
		.default_seconds = signer.default_validity_s,
		.base_url = signer.base_url,
	};
	struct issue_result res;
	struct pending *p;
	char why[300];
	struct ca *ca = ca_intermediate(signer.ca, signer.key_dir, m->u.cert_sign.intermediate_id, why, sizeof why);
	int rc = !ca ? -1 : usable(ca, why, sizeof why);

	if (rc == 0 && ca_on_token(ca)) {
		X509 *cert;

		if ((rc = issue_prepare(ca, &rq, &cert, why, sizeof why)) == 0) {
			if (!(p = calloc(1, sizeof *p)) || sign_async(ca, cert, rq.issuer_id, p, from, m->id) != 0) {
				if (!p)
					X509_free(cert);
				free(p);
				ipc_reply_error(from, m, ENOMEM, "out of memory");
			}
			return;
		}
	} else if (rc == 0)
		rc = token_reason(ca, issue_sign(ca, signer.ledger, &rq, &res, why, sizeof why), why, sizeof why);

	if (rc != 0) {
		refuse(from, m, rc, "sign a certificate", why, &signer.issue_refused);
		return;
	}
	p = calloc(1, sizeof *p);
	if (!p) {
		/* its line is staged: it goes out with the next commit, unanswered */
		OPENSSL_free(res.der);
		ipc_reply_error(from, m, ENOMEM, "out of memory");
		return;
	}
	p->res = res;
	pending_cert(p, from, m->id, ca);
}

/* AGENT_ID_SIGN (the api alone may send it, checked by the codec): an
 * identity under the agent identity CA, answered after the commit like a
 * certificate of CERT_SIGN */
static void agent_id_sign(struct ipc_channel *from, struct ipc_msg *m)
{
	const struct ipc_agent_id_sign *q = &m->u.agent_id_sign;
	struct pending *p = calloc(1, sizeof *p);
	char why[300];
	int rc;

	if (!p) {
		ipc_reply_error(from, m, ENOMEM, "out of memory");
		return;
	}
	rc = agent_ca_sign(signer.agent_ca, signer.ledger, q->csr.ptr, q->csr.len, q->agent_id, q->validity_seconds,
			   signer.agent_identity_lifetime_s, &p->agent, why, sizeof why);
	if (rc != 0) {
		free(p);
		refuse(from, m, rc, "sign an agent identity", why, &signer.agent_id_refused);
		return;
	}
	snprintf(p->agent_id, sizeof p->agent_id, "%s", q->agent_id);
	p->ch = from;
	p->id = m->id;
	p->kind = P_AGENT_ID;
	p->crl.memfd = -1;
	pending_add(p);
}

/* KEYGEN_SIGN: a key made here, its CSR signed like any other */
static void keygen_sign(struct ipc_channel *from, struct ipc_msg *m)
{
	const struct ipc_keygen_sign *q = &m->u.keygen_sign;
	struct issue_request rq = {
		.profile = (const char *)q->profile.ptr,
		.profile_len = q->profile.len,
		.issuer_id = q->issuer_id,
		.validity_seconds = q->validity_seconds,
		.default_seconds = signer.default_validity_s,
		.base_url = signer.base_url,
	};
	struct pending *p = NULL;
	struct ca *ca;
	EVP_PKEY *key = NULL;
	char why[300];
	int rc = -1;

	if (!keygen_allowed((const char *)q->profile.ptr, q->profile.len)) {
		refuse(from, m, -1, "make a key", "the certificate profile does not allow server-side key generation",
		       &signer.issue_refused);
		return;
	}
	if (!(ca = ca_intermediate(signer.ca, signer.key_dir, q->intermediate_id, why, sizeof why)) ||
	    (rc = usable(ca, why, sizeof why)) != 0 || (rc = -1, !(p = calloc(1, sizeof *p))) ||
	    !(p->sealed = malloc(16384)) ||
	    keygen_csr(*q->key_algorithm ? q->key_algorithm : "ecdsa-p256", q->common_name, (const char *)q->sans.ptr,
		       q->sans.len, &key, &p->csr, &p->csr_len, why, sizeof why) != 0 ||
	    keygen_export(key, &p->key_pem, &p->key_pem_len, p->sealed, 16384, &p->sealed_len, why, sizeof why) != 0)
		goto refused;
	/* the clear key goes to the api alone (for its client, once); a renewal
	 * the scheduler asks for keeps it sealed only */
	if (ipc_channel_peer_role(from) != IPC_ROLE_API) {
		keygen_wipe(p->key_pem, p->key_pem_len);
		p->key_pem = NULL;
		p->key_pem_len = 0;
	}
	rq.csr = p->csr;
	rq.csr_len = p->csr_len;
	if (ca_on_token(ca)) {
		X509 *cert;

		if ((rc = issue_prepare(ca, &rq, &cert, why, sizeof why)) != 0)
			goto refused;
		EVP_PKEY_free(key);
		p->keygen = true;
		if (sign_async(ca, cert, rq.issuer_id, p, from, m->id) != 0) {
			pending_drop(p);
			ipc_reply_error(from, m, ENOMEM, "out of memory");
		}
		return;
	}
	rc = token_reason(ca, issue_sign(ca, signer.ledger, &rq, &p->res, why, sizeof why), why, sizeof why);
	if (rc != 0)
		goto refused;
	EVP_PKEY_free(key);
	p->keygen = true;
	pending_cert(p, from, m->id, ca);
	return;
refused:
	EVP_PKEY_free(key);
	if (p) {
		keygen_wipe(p->key_pem, p->key_pem_len);
		OPENSSL_free(p->csr);
		free(p->sealed);
		free(p);
	}
	refuse(from, m, rc, "make a key and certificate", why, &signer.issue_refused);
}

/* KEYGEN_CSR: a key made here and its CSR, for an outside CA to sign (an
 * ACME order); checked against the profile like any CSR, signed by no CA */
static void keygen_csr_make(struct ipc_channel *from, struct ipc_msg *m)
{
	const struct ipc_keygen_csr *q = &m->u.keygen_csr;
	struct ipc_msg r = {0};
	struct csr_checked c;
	EVP_PKEY *key = NULL;
	uint8_t *csr = NULL, *sealed = malloc(16384);
	size_t csr_len = 0, sealed_len = 0, pem_len = 0;
	char *pem = NULL, why[300];

	if (!keygen_allowed((const char *)q->profile.ptr, q->profile.len)) {
		free(sealed);
		refuse(from, m, -1, "make a key", "the certificate profile does not allow server-side key generation",
		       &signer.issue_refused);
		return;
	}
	if (!sealed) {
		ipc_reply_error(from, m, ENOMEM, "out of memory");
		return;
	}
	if (keygen_csr(*q->key_algorithm ? q->key_algorithm : "ecdsa-p256", q->common_name, (const char *)q->sans.ptr,
		       q->sans.len, &key, &csr, &csr_len, why, sizeof why) != 0 ||
	    csr_policy_check(csr, csr_len, (const char *)q->profile.ptr, q->profile.len, 0, signer.default_validity_s,
			     &c, why, sizeof why) != 0) {
		EVP_PKEY_free(key);
		OPENSSL_free(csr);
		free(sealed);
		refuse(from, m, -1, "make a key and CSR", why, &signer.issue_refused);
		return;
	}
	csr_checked_free(&c);
	if (keygen_export(key, &pem, &pem_len, sealed, 16384, &sealed_len, why, sizeof why) != 0) {
		EVP_PKEY_free(key);
		OPENSSL_free(csr);
		free(sealed);
		refuse(from, m, -1, "make a key and CSR", why, &signer.issue_refused);
		return;
	}
	EVP_PKEY_free(key);
	r.type = IPC_T_KEYGEN_CSR_MADE;
	r.u.keygen_csr_made.csr.ptr = csr;
	r.u.keygen_csr_made.csr.len = (uint32_t)csr_len;
	r.u.keygen_csr_made.sealed_key.ptr = sealed;
	r.u.keygen_csr_made.sealed_key.len = (uint32_t)sealed_len;
	/* the clear key goes to the api alone (for its client, once) */
	if (ipc_channel_peer_role(from) == IPC_ROLE_API) {
		r.u.keygen_csr_made.key_pem.ptr = (const uint8_t *)pem;
		r.u.keygen_csr_made.key_pem.len = (uint32_t)pem_len;
	}
	ipc_reply(from, m, &r);
	keygen_wipe(pem, pem_len);
	OPENSSL_free(csr);
	free(sealed);
}

/* CRL_SIGN: the entries come in the memfd, the CRL goes back into it */
static void crl_sign(struct ipc_channel *from, struct ipc_msg *m, int fd)
{
	struct pending *p = calloc(1, sizeof *p);
	char why[300];
	int rc;

	if (!p) {
		if (fd >= 0)
			close(fd);
		ipc_reply_error(from, m, ENOMEM, "out of memory");
		return;
	}
	{
		struct ca *ca = ca_intermediate(signer.ca, signer.key_dir, m->u.crl_sign.intermediate_id, why,
						sizeof why);

		if (ca && (rc = usable(ca, why, sizeof why)) == 0)
			rc = token_reason(ca, revoke_crl_sign(ca, signer.ledger, &m->u.crl_sign, fd, &p->crl, why,
							      sizeof why),
					  why, sizeof why);
		else {
			if (!ca)
				rc = -1;
			if (fd >= 0)
				close(fd);
		}
	}
	if (rc != 0) {
		free(p);
		refuse(from, m, rc, "sign a CRL", why, &signer.crl_refused);
		return;
	}
	p->ch = from;
	p->id = m->id;
	p->kind = P_CRL;
	pending_add(p);
}

/* OCSP_SIGN: the status the api found, signed by the issuer's responder */
static void ocsp_sign(struct ipc_channel *from, struct ipc_msg *m)
{
	struct pending *p = calloc(1, sizeof *p);
	char why[300];
	int rc;

	if (!p) {
		ipc_reply_error(from, m, ENOMEM, "out of memory");
		return;
	}
	p->crl.memfd = -1;
	{
		struct ca *ca = ca_intermediate(signer.ca, signer.key_dir, m->u.ocsp_sign.intermediate_id, why,
						sizeof why);

		/* a responder made before signs without the CA's key: only a new one needs it */
		rc = ca ? token_reason(ca, revoke_ocsp_sign(signer.responders, ca, &m->u.ocsp_sign, &p->ocsp, why,
							    sizeof why),
				       why, sizeof why)
			: -1;
	}
	if (rc != 0) {
		free(p);
		refuse(from, m, rc, "sign an OCSP response", why, &signer.ocsp_refused);
		return;
	}
	p->ch = from;
	p->id = m->id;
	p->kind = P_OCSP;
	pending_add(p);
}

/* INTERMEDIATE_SIGN: a CA below the root (or the issuing CA), its ledger
 * line written before the answer (ledger_append: rare, not grouped) */
static void intermediate_sign(struct ipc_channel *from, struct ipc_msg *m)
{
	const struct ipc_intermediate_sign *q = &m->u.intermediate_sign;
	struct intermediate_request rq = {
		.id = q->id,
		.parent_id = q->parent_id,
		.common_name = q->common_name,
		.organization = q->organization,
		.algorithm = q->algorithm,
		.validity_seconds = q->validity_seconds,
		.path_len = q->path_len == 0xffffffffu ? -1 : (long)q->path_len,
		.name_constraints = q->name_constraints,
	};
	struct intermediate_result res;
	struct ipc_msg r = {.type = IPC_T_INTERMEDIATE_SIGNED};
	char why[300];
	int rc;

	if (q->path_len != 0xffffffffu && q->path_len > 32) {
		ipc_reply_error(from, m, EINVAL, "path_len_constraint: at most 32");
		return;
	}
	rc = *q->parent_id ? 0 : usable(signer.ca, why, sizeof why);
	if (rc == 0)
		rc = ca_make_intermediate(signer.ca, signer.ledger, signer.key_dir, &rq, &res, why, sizeof why);
	if (rc == -1 && !*q->parent_id)
		rc = token_reason(signer.ca, rc, why, sizeof why);
	if (rc != 0) {
		refuse(from, m, rc, "make an intermediate CA", why, &signer.intermediate_refused);
		return;
	}
	r.u.intermediate_signed.serial = res.serial;
	r.u.intermediate_signed.not_before = (uint64_t)res.not_before;
	r.u.intermediate_signed.not_after = (uint64_t)res.not_after;
	r.u.intermediate_signed.path_len = res.path_len < 0 ? 0xffffffffu : (uint32_t)res.path_len;
	r.u.intermediate_signed.chain_pem.ptr = (const uint8_t *)res.chain_pem;
	r.u.intermediate_signed.chain_pem.len = (uint32_t)res.chain_len;
	ipc_reply(from, m, &r);
	free(res.chain_pem);
}

/* ACME_ACCOUNT_GET, ACME_JWS_SIGN, ACME_EAB_SIGN and the rollover's
 * ACME_KEY_NEXT, ACME_JWS_SIGN_NEXT, ACME_KEY_COMMIT, ACME_KEY_ABORT,
 * ACME_KEY_RETIRE (the scheduler alone may send them, checked by the
 * codec): protocol signatures and account keys, not certificates, so
 * answered at once, without a ledger line */
static void acme_message(struct ipc_channel *from, struct ipc_msg *m)
{
	struct ipc_msg r = {0};
	struct acme_pubkey acct;
	uint8_t sig[ACME_SIG_MAX];
	char why[300], file[128];
	long n;

	if (m->type == IPC_T_ACME_ACCOUNT_GET || m->type == IPC_T_ACME_KEY_NEXT || m->type == IPC_T_ACME_KEY_COMMIT) {
		if (m->type == IPC_T_ACME_ACCOUNT_GET)
			n = acme_account_get(signer.acme, m->u.acme_account_get.issuer_id, m->u.acme_account_get.alg,
					     &acct, why, sizeof why);
		else if (m->type == IPC_T_ACME_KEY_NEXT)
			n = acme_key_next(signer.acme, m->u.acme_key_next.issuer_id, m->u.acme_key_next.alg, &acct, why,
					  sizeof why);
		else
			n = acme_key_commit(signer.acme, m->u.acme_key_commit.issuer_id, m->u.acme_key_commit.thumbprint,
					    &acct, why, sizeof why);
		if (n == 0) {
			r.type = IPC_T_ACME_ACCOUNT;
			r.u.acme_account.jwk.ptr = (const uint8_t *)acct.jwk;
			r.u.acme_account.jwk.len = (uint32_t)acct.jwk_len;
			r.u.acme_account.thumbprint = acct.thumbprint;
		}
	} else if (m->type == IPC_T_ACME_JWS_SIGN || m->type == IPC_T_ACME_JWS_SIGN_NEXT) {
		if (m->type == IPC_T_ACME_JWS_SIGN)
			n = acme_jws_sign(signer.acme, m->u.acme_jws_sign.issuer_id, m->u.acme_jws_sign.signing_input.ptr,
					  m->u.acme_jws_sign.signing_input.len, sig, why, sizeof why);
		else
			n = acme_jws_sign_next(signer.acme, m->u.acme_jws_sign_next.issuer_id,
					       m->u.acme_jws_sign_next.signing_input.ptr,
					       m->u.acme_jws_sign_next.signing_input.len, sig, why, sizeof why);
		if (n > 0) {
			signer.acme_jws++;
			r.type = IPC_T_ACME_JWS_SIGNATURE;
			r.u.acme_jws_signature.signature.ptr = sig;
			r.u.acme_jws_signature.signature.len = (uint32_t)n;
		}
	} else if (m->type == IPC_T_ACME_KEY_ABORT || m->type == IPC_T_ACME_KEY_RETIRE) {
		file[0] = '\0';
		if (m->type == IPC_T_ACME_KEY_ABORT)
			n = acme_key_abort(signer.acme, m->u.acme_key_abort.issuer_id, m->u.acme_key_abort.thumbprint, why,
					   sizeof why);
		else
			n = acme_key_retire(signer.acme, m->u.acme_key_retire.issuer_id, m->u.acme_key_retire.thumbprint,
					    file, sizeof file, why, sizeof why);
		r.type = IPC_T_ACME_KEY_DONE;
		r.u.acme_key_done.file = file;
	} else {
		n = acme_eab_sign(m->u.acme_eab_sign.sealed.ptr, m->u.acme_eab_sign.sealed.len,
				  m->u.acme_eab_sign.signing_input.ptr, m->u.acme_eab_sign.signing_input.len, sig, why,
				  sizeof why);
		if (n > 0) {
			signer.acme_eab++;
			r.type = IPC_T_ACME_EAB_SIGNATURE;
			r.u.acme_eab_signature.signature.ptr = sig;
			r.u.acme_eab_signature.signature.len = (uint32_t)n;
		}
	}
	/* "is a rollover pending?", asked before every account lookup: no is an
	 * answer, not a refusal */
	if (n == 1 && m->type == IPC_T_ACME_KEY_NEXT) {
		ipc_reply_error(from, m, ENOENT, why);
		return;
	}
	if (n < 0) {
		signer.acme_refused++;
		log_event(n == -2 ? LOG_ERROR : LOG_WARN, NULL, NULL, "refused %s for %s: %s", ipc_type_name(m->type),
			  ipc_channel_peer(from), why);
		ipc_reply_error(from, m, n == -2 ? EIO : n == ACME_NO_KEY ? ENOENT : n == ACME_PENDING ? EEXIST : EINVAL,
				why);
		return;
	}
	ipc_reply(from, m, &r);
}

static void signer_message(struct worker *w, struct ipc_channel *from, struct ipc_msg *m, int fd)
{
	struct ipc_msg r = {0};

	if (m->type == IPC_T_CRL_SIGN) {
		crl_sign(from, m, fd);
		return;
	}
	if (fd >= 0)
		close(fd);
	switch (m->type) {
	case IPC_T_TLS_CERT_GET: {
		size_t len;
		const char *pem = tls_key_chain_pem(signer.api_key, &len);

		r.type = IPC_T_TLS_CERT;
		r.u.tls_cert.chain_pem.ptr = (const uint8_t *)pem;
		r.u.tls_cert.chain_pem.len = (uint32_t)len;
		pem = agent_ca_pem(signer.agent_ca, &len);
		r.u.tls_cert.agent_ca_pem.ptr = (const uint8_t *)pem;
		r.u.tls_cert.agent_ca_pem.len = (uint32_t)len;
		ipc_reply(from, m, &r);
		return;
	}
	case IPC_T_TLS_SIGN: {
		uint8_t sig[1024];
		long n;

		if (m->u.tls_sign.algorithm > 0xffff ||
		    (n = tls_key_sign(signer.api_key, (uint16_t)m->u.tls_sign.algorithm,
				      m->u.tls_sign.input.ptr, m->u.tls_sign.input.len, sig,
				      sizeof sig)) < 0) {
			signer.refused++;
			log_event(LOG_WARN, NULL, NULL, "refused a TLS signature (scheme 0x%04x) for %s",
				  m->u.tls_sign.algorithm & 0xffff, ipc_channel_peer(from));
			ipc_reply_error(from, m, EINVAL, "signature scheme does not fit the key");
			return;
		}
		r.type = IPC_T_TLS_SIGNATURE;
		r.u.tls_signature.signature.ptr = sig;
		r.u.tls_signature.signature.len = (uint32_t)n;
		ipc_reply(from, m, &r);
		return;
	}
	case IPC_T_SECRET_SEAL: {
		uint8_t sealed[SECRETBOX_MAX_PLAIN + SECRETBOX_OVERHEAD];
		char why[160];
		long n = secrets_seal(m->u.secret_seal.old.ptr, m->u.secret_seal.old.len,
				      m->u.secret_seal.secrets.ptr, m->u.secret_seal.secrets.len, sealed,
				      sizeof sealed, why, sizeof why);

		if (n < 0) {
			log_event(LOG_WARN, NULL, NULL, "refused to seal secrets for %s: %s",
				  ipc_channel_peer(from), why);
			ipc_reply_error(from, m, EINVAL, why);
			return;
		}
		r.type = IPC_T_SECRET_SEALED;
		r.u.secret_sealed.sealed.ptr = sealed;
		r.u.secret_sealed.sealed.len = (uint32_t)n;
		ipc_reply(from, m, &r);
		return;
	}
	case IPC_T_CA_STATUS_GET: {
		char text[1024];
		size_t len = ca_status(signer.ca, text, sizeof text);

		r.type = IPC_T_CA_STATUS;
		r.u.ca_status.text.ptr = (const uint8_t *)text;
		r.u.ca_status.text.len = (uint32_t)len;
		ipc_reply(from, m, &r);
		return;
	}
	case IPC_T_CERT_SIGN:
		cert_sign(from, m);
		return;
	case IPC_T_OCSP_SIGN:
		ocsp_sign(from, m);
		return;
	case IPC_T_INTERMEDIATE_SIGN:
		intermediate_sign(from, m);
		return;
	case IPC_T_KEYGEN_SIGN:
		keygen_sign(from, m);
		return;
	case IPC_T_KEYGEN_CSR:
		keygen_csr_make(from, m);
		return;
	case IPC_T_AGENT_ID_SIGN:
		agent_id_sign(from, m);
		return;
	case IPC_T_ACME_ACCOUNT_GET:
	case IPC_T_ACME_JWS_SIGN:
	case IPC_T_ACME_EAB_SIGN:
	case IPC_T_ACME_KEY_NEXT:
	case IPC_T_ACME_JWS_SIGN_NEXT:
	case IPC_T_ACME_KEY_COMMIT:
	case IPC_T_ACME_KEY_ABORT:
	case IPC_T_ACME_KEY_RETIRE:
		acme_message(from, m);
		return;
	case IPC_T_OCSP_RESPONDERS_RENEW: {
		char why[300] = "";

		r.type = IPC_T_OCSP_RESPONDERS_RENEWED;
		if (responders_renew_due(signer.responders, &r.u.ocsp_responders_renewed.renewed,
					 &r.u.ocsp_responders_renewed.responders, why, sizeof why) != 0) {
			log_warn("OCSP responder renewal: %s", why);
			ipc_reply_error(from, m, EIO, why);
			return;
		}
		ipc_reply(from, m, &r);
		return;
	}
	default:
		ipc_reply_error(from, m, ENOTSUP, "the signer does not handle this message");
	}
}

static void signer_metrics(struct worker *w, struct strbuf *out)
{
	strbuf_printf(out, "tls_signatures_total %llu\n",
		      (unsigned long long)(signer.api_key ? tls_key_signatures(signer.api_key) : 0));
	strbuf_printf(out, "tls_signatures_refused_total %llu\n", (unsigned long long)signer.refused);
	if (signer.ledger)
		strbuf_printf(out, "ledger_entries %llu\n", (unsigned long long)ledger_entries(signer.ledger));
	strbuf_printf(out, "certificates_signed_total %llu\n", (unsigned long long)signer.issued);
	strbuf_printf(out, "certificates_refused_total %llu\n", (unsigned long long)signer.issue_refused);
	strbuf_printf(out, "ledger_write_failures_total %llu\n", (unsigned long long)signer.ledger_failures);
	strbuf_printf(out, "crls_signed_total %llu\n", (unsigned long long)signer.crls);
	strbuf_printf(out, "crls_refused_total %llu\n", (unsigned long long)signer.crl_refused);
	strbuf_printf(out, "ocsp_responses_signed_total %llu\n", (unsigned long long)signer.ocsp_signed);
	strbuf_printf(out, "ocsp_responses_refused_total %llu\n", (unsigned long long)signer.ocsp_refused);
	strbuf_printf(out, "intermediates_refused_total %llu\n", (unsigned long long)signer.intermediate_refused);
	strbuf_printf(out, "agent_identities_signed_total %llu\n", (unsigned long long)signer.agent_ids);
	strbuf_printf(out, "agent_identities_refused_total %llu\n", (unsigned long long)signer.agent_id_refused);
	if (signer.responders)
		strbuf_printf(out, "ocsp_responder_rotations_total %llu\n",
			      (unsigned long long)responders_rotations(signer.responders));
	if (signer.ledger)
		strbuf_printf(out, "ledger_commits_total %llu\n", (unsigned long long)ledger_commits(signer.ledger));
	strbuf_printf(out, "ca_unavailable_total %llu\n", (unsigned long long)signer.unavailable);
	strbuf_printf(out, "acme_jws_signatures_total %llu\n", (unsigned long long)signer.acme_jws);
	strbuf_printf(out, "acme_eab_signatures_total %llu\n", (unsigned long long)signer.acme_eab);
	strbuf_printf(out, "acme_refused_total %llu\n", (unsigned long long)signer.acme_refused);
	{
		uint64_t v[3];
		char why[300];

		if (signer.ca && ca_p11_counters(signer.ca, v) == 0) {
			strbuf_printf(out, "ca_ready{ca=\"issuing\"} %d\n", ca_usable(signer.ca, why, sizeof why));
			strbuf_printf(out, "pkcs11_signatures_total %llu\n", (unsigned long long)v[0]);
			strbuf_printf(out, "pkcs11_signature_failures_total %llu\n", (unsigned long long)v[1]);
			strbuf_printf(out, "pkcs11_connects_total %llu\n", (unsigned long long)v[2]);
		}
	}
}

static void signer_stop(struct worker *w)
{
	/* what was signed this turn still gets its ledger line and answer */
	if (signer.pending)
		commit_pending(&signer.committer);
	if (signer.pending_tail)
		uv_close((uv_handle_t *)&signer.committer, NULL);
	if (signer.p11_timer) {
		uv_close((uv_handle_t *)&signer.p11_retry, NULL);
		signer.p11_timer = false;
	}
	if (signer.key_dir_fd >= 0)
		close(signer.key_dir_fd);
	signer.key_dir_fd = -1;
	tls_key_free(signer.api_key);
	signer.api_key = NULL;
	responders_free(signer.responders);
	signer.responders = NULL;
	agent_ca_free(signer.agent_ca);
	signer.agent_ca = NULL;
	acme_keys_free(signer.acme);
	signer.acme = NULL;
	signer.stopped = true;
	/* a signature still on the thread pool uses the CA's key: the last one
	 * to come back frees it */
	if (!inflight) {
		ca_free(signer.ca);
		signer.ca = NULL;
	}
	ledger_close(signer.ledger);
	signer.ledger = NULL;
	secrets_stop();
}

static const struct worker_ops ops = {
	.role = IPC_ROLE_SIGNER,
	.summary = "certward-signer: holds CA, OCSP and TLS private keys and makes every signature.",
	.harden = HARDEN_SECRETS,
	.init = signer_init,
	.on_message = signer_message,
	.metrics = signer_metrics,
	.peer_closed = signer_peer_closed,
	.stop = signer_stop,
};

int main(int argc, char **argv)
{
	return worker_main(argc, argv, &ops);
}
