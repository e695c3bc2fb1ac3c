"""Jobs run by the scheduler alone (docs/renewal.md "Jobs"): a renewal of
a certificate of certward's own CA without an agent, asked for with POST
/certificates/{id}/renew, is completed with a new version that openssl
verifies against the CA (the client's CSR signed again keeps its key; a key
the signer made is followed by a new one, kept sealed); targets of agents get
Deployment jobs handed to their agents; failures are retried with a growing
backoff, then Failed with a RenewalFailure event and the certificate left as
it was; an issuer certward cannot renew from fails at once; jobs running for
too long (a node that died) time out; a status change the state machine does
not allow is refused by PostgreSQL."""
import datetime
import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AS_ROOT, Api, Cases, Certward, Postgres, check, enrol_agent, free_port, log, make_key, make_root, \
    psql, teardown, wait_for

RUN = Cases(lambda: cw)
case = RUN.case
S = {}

PROFILE = {"name": "jobs-web", "allowed_key_algorithms": [{"algorithm": "ECDSA", "min_size": 256}],
           "max_ttl_seconds": 7776000, "required_san_patterns": ["*.example.com"]}


def openssl(*args, stdin=None):
    out = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, timeout=60, input=stdin)
    check(out.returncode == 0, "openssl %s: %s%s" % (" ".join(args), out.stdout, out.stderr))
    return out.stdout


def sql_error(text):
    """text run through psql, expected to fail: its SQLSTATE."""
    cmd = (["runuser", "-u", "certward", "--"] if AS_ROOT else []) + [
        "psql", pg.dsn, "-qAtX", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-c", text]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    check(out.returncode != 0, "%r was not refused" % text)
    return out.stderr


def one(text):
    return psql(pg, text).strip()


def adm(method, path, body=None):
    return api.call(method, path, S["admin"], body)


def post(path, body):
    code, obj = adm("POST", path, body)
    check(code == 201, "POST %s: %r" % (path, (code, obj)))
    return obj


def csr_of(name, key_spec=("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256")):
    d = os.path.join(root, "csr")
    os.makedirs(d, exist_ok=True)
    key = os.path.join(d, name + ".key")
    pem = openssl("req", "-new", "-nodes", *key_spec, "-keyout", key,
                  "-subj", "/CN=%s.example.com" % name, "-addext", "subjectAltName=DNS:%s.example.com" % name)
    return key, pem


def certificate(name, issuer=None, policy=None, **kw):
    b = {"name": name, "common_name": name + ".example.com", "sans": [name + ".example.com"], "owner_id": S["owner"],
         "team_id": S["team"], "issuer_id": issuer or S["local"], "renewal_policy_id": policy or S["policy"],
         "certificate_profile_id": kw.pop("profile", S["profile"])}
    b.update(kw)
    return post("/api/v1/certificates", b)


def renew(cert_id):
    code, r = adm("POST", "/api/v1/certificates/%s/renew" % cert_id)
    check(code == 202 and r.get("job_id"), "renew: %r" % ((code, r),))
    return r["job_id"]


def job(job_id):
    code, j = adm("GET", "/api/v1/jobs/" + job_id)
    check(code == 200, "job %s: %r" % (job_id, (code, j)))
    return j


def wait_job(job_id, statuses, timeout=60):
    wait_for("job %s %s" % (job_id, "/".join(statuses)), lambda: job(job_id)["status"] in statuses, timeout=timeout)
    return job(job_id)


def versions(cert_id):
    code, v = adm("GET", "/api/v1/certificates/%s/versions?per_page=100" % cert_id)
    check(code == 200, "versions: %r" % ((code, v),))
    return sorted(v["data"], key=lambda x: x["created_at"])


def leaf_of(version, name):
    path = os.path.join(root, name + ".pem")
    with open(path, "w") as f:
        f.write(version["pem_chain"].split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")
    return path


def verify(path):
    tls = os.path.join(cw.state, "tls")
    out = openssl("verify", "-CAfile", os.path.join(tls, "ca-root.crt"), "-untrusted",
                  os.path.join(tls, "ca-issuing.crt"), path)
    check(out.strip().endswith(": OK"), "verify: %r" % out)


def pubkey(path):
    return openssl("x509", "-in", path, "-noout", "-pubkey")


def events(job_id, type_):
    return psql(pg, "SELECT severity || '|' || dedup_key FROM notification_events WHERE job_id = '%s' AND type = '%s'"
                % (job_id, type_)).split()


def epoch(ts):
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def setup():
    """A certwardd whose scheduler dispatches every 200 ms and looks for
    timed-out jobs every 500 ms; an admin key, a Local issuer, a profile."""
    wait_for("workers up", lambda: cw.all_running(), timeout=60)
    wait_for("api ready", lambda: api.call("GET", "/ready")[0] == 200, timeout=60)
    S["admin"] = make_key(pg, "jobs-admin", "admin")
    S["team"] = post("/api/v1/teams", {"name": "jobs"})["id"]
    S["owner"] = post("/api/v1/owners", {"name": "Jobs", "email": "jobs@example.com", "team_id": S["team"]})["id"]
    S["local"] = post("/api/v1/issuers", {"name": "jobs-local", "type": "Local"})["id"]
    S["policy"] = post("/api/v1/renewal-policies", {"name": "jobs-std", "max_retries": 2,
                                                     "retry_interval_seconds": 60})["id"]
    S["profile"] = post("/api/v1/profiles", PROFILE)["id"]
    S["keygen_profile"] = post("/api/v1/profiles", dict(PROFILE, name="jobs-keygen", server_keygen=True))["id"]
    wait_for("CA published", lambda: os.path.exists(os.path.join(cw.state, "tls", "ca-chain.crt")), timeout=30)


def renewal_keeps_the_clients_key():
    """A certificate issued from a client's CSR, renewed by the scheduler
    alone: the job is Completed at its first attempt, the new version
    verifies against the CA and has the CSR's public key, the old version
    is still there, the certificate Active until the new expiry, one
    certificate.issued audit event and one RenewalSuccess event."""
    key, pem = csr_of("keep")
    cert = certificate("keep", csr_pem=pem)
    first = versions(cert["id"])
    job_id = renew(cert["id"])
    check(job(job_id)["agent_id"] is None, "an agentless job")
    j = wait_job(job_id, ("Completed", "Failed"))
    check(j["status"] == "Completed" and j["attempts"] == 1 and j["completed_at"], "job: %r" % j)
    vs = versions(cert["id"])
    check(len(vs) == 2 and vs[0]["id"] == first[0]["id"], "versions: %r" % [v["id"] for v in vs])
    new = leaf_of(vs[1], "keep-2")
    verify(new)
    key_pub = openssl("pkey", "-in", key, "-pubout")
    check(pubkey(new) == key_pub == pubkey(leaf_of(vs[0], "keep-1")), "the renewal changed the key")
    check(vs[1]["serial_number"] != vs[0]["serial_number"], "the same serial")
    code, c = adm("GET", "/api/v1/certificates/" + cert["id"])
    check(c["status"] == "Active" and epoch(c["expires_at"]) == epoch(vs[1]["not_after"]), "certificate: %r" % c)
    check(one("SELECT count(*) FROM audit_events WHERE action = 'certificate.issued' AND details->>'job_id' = '%s' "
              "AND actor = 'scheduler'" % job_id) == "1", "audit event")
    check(events(job_id, "RenewalSuccess") == ["info|renewal-completed:" + job_id], "RenewalSuccess event")
    check(one("SELECT claimed_by FROM jobs WHERE id = '%s'" % job_id).endswith("/%d" % cw.status()["scheduler"]["pid"]),
          "who ran it")
    m = cw.metrics("scheduler")
    check(m.get("scheduler_jobs_completed_total", 0) >= 1, "metrics: %r" % m)


def renewal_with_a_key_the_signer_made():
    """A certificate whose key the signer made gets a new key at renewal:
    another public key, kept sealed in version_keys like the first one,
    never in a log line; no Deployment job (no agent keeps that key)."""
    code, cert = adm("POST", "/api/v1/certificates", {
        "name": "made", "common_name": "made.example.com", "sans": ["made.example.com"], "owner_id": S["owner"],
        "team_id": S["team"], "issuer_id": S["local"], "renewal_policy_id": S["policy"],
        "certificate_profile_id": S["keygen_profile"], "key_generation": "server"})
    check(code == 201 and "PRIVATE KEY" in cert.get("private_key_pem", ""), "made: %r" % ((code, cert),))
    job_id = renew(cert["id"])
    j = wait_job(job_id, ("Completed", "Failed"))
    check(j["status"] == "Completed", "job: %r" % j)
    vs = versions(cert["id"])
    check(len(vs) == 2, "versions: %d" % len(vs))
    new, old = leaf_of(vs[1], "made-2"), leaf_of(vs[0], "made-1")
    verify(new)
    check(pubkey(new) != pubkey(old), "the same key after a renewal with a key the signer made")
    check("DNS:made.example.com" in openssl("x509", "-in", new, "-noout", "-text"), "SAN")
    check(one("SELECT count(*) FROM version_keys k JOIN certificate_versions v ON v.id = k.certificate_version_id "
              "WHERE v.certificate_id = '%s'" % cert["id"]) == "2", "the new key is not kept sealed")
    check(one("SELECT count(*) FROM jobs WHERE certificate_id = '%s' AND type = 'Deployment'" % cert["id"]) == "0",
          "deployment jobs")
    for name in os.listdir(cw.logs):
        with open(os.path.join(cw.logs, name), errors="replace") as f:
            check("PRIVATE KEY" not in f.read(), "a key in %s" % name)


def targets_get_deployment_jobs():
    """A renewal of a certificate deployed to two targets of an agent (the
    job made without one, as for a certificate whose agent is away): a
    Deployment job per target, handed to the agent (Running, listed in its
    work); a disabled target gets none."""
    agent = one("INSERT INTO agents (name, status) VALUES ('jobs-agent', 'Online') RETURNING id")
    t1 = one("INSERT INTO deployment_targets (name, type, agent_id) VALUES ('web', 'NGINX', '%s') RETURNING id" % agent)
    t2 = one("INSERT INTO deployment_targets (name, type, agent_id) VALUES ('lb', 'HAProxy', '%s') RETURNING id" % agent)
    t3 = one("INSERT INTO deployment_targets (name, type, agent_id, enabled) VALUES ('off', 'NGINX', '%s', false) "
             "RETURNING id" % agent)
    _, pem = csr_of("deployed")
    cert = certificate("deployed", csr_pem=pem)
    psql(pg, "INSERT INTO certificate_targets (certificate_id, target_id) VALUES ('%s', '%s'), ('%s', '%s'), "
             "('%s', '%s')" % (cert["id"], t1, cert["id"], t2, cert["id"], t3))
    job_id = one("INSERT INTO jobs (type, certificate_id, requested_by) VALUES ('Renewal', '%s', 'jobs-test') "
                 "RETURNING id" % cert["id"])
    check(wait_job(job_id, ("Completed", "Failed"))["status"] == "Completed", "job: %r" % job(job_id))
    code, d = adm("GET", "/api/v1/jobs?type=Deployment&certificate_id=%s" % cert["id"])
    check(code == 200 and d["total"] == 2, "deployment jobs: %r" % ((code, d),))
    check(sorted(x["target_id"] for x in d["data"]) == sorted([t1, t2]) and
          all(x["agent_id"] == agent for x in d["data"]), "deployment jobs: %r" % d["data"])
    wait_for("handed to the agent", lambda: all(
        job(x["id"])["status"] == "Running" and job(x["id"])["attempts"] == 1 for x in d["data"]), timeout=30)


def retries_then_failure():
    """A renewal that cannot succeed (its issuer disabled): retried with a
    growing backoff from the policy's retry_interval_seconds (60 s, then
    120 s, +-25%), Failed at its third attempt (max_retries 2), with a
    RenewalFailure event and the audit event jobs.failed; the certificate
    keeps its version and is Active again, not RenewalInProgress."""
    _, pem = csr_of("retry")
    iss = post("/api/v1/issuers", {"name": "jobs-retry", "type": "Local"})["id"]
    cert = certificate("retry", issuer=iss, csr_pem=pem)
    code, _ = adm("PUT", "/api/v1/issuers/" + iss, {"name": "jobs-retry", "type": "Local", "enabled": False})
    check(code == 200, "issuer disabled: %d" % code)
    job_id = renew(cert["id"])
    check(job(job_id)["max_attempts"] == 3, "max_attempts from the policy: %r" % job(job_id))
    prev = None
    for attempt, base in ((1, 60), (2, 120)):
        wait_for("attempt %d" % attempt, lambda: job(job_id)["attempts"] == attempt and
                 job(job_id)["status"] == "Pending", timeout=30)
        j = job(job_id)
        delay = one("SELECT extract(epoch FROM scheduled_at - updated_at) FROM jobs WHERE id = '%s'" % job_id)
        check(0.74 * base <= float(delay) <= 1.26 * base, "attempt %d: retried after %s s" % (attempt, delay))
        check("disabled" in (j["last_error"] or "") and (prev is None or j["scheduled_at"] != prev),
              "attempt %d: %r" % (attempt, j))
        prev = j["scheduled_at"]
        check(adm("GET", "/api/v1/certificates/" + cert["id"])[1]["status"] == "RenewalInProgress",
              "certificate during the retries")
        # the wait itself is the policy's; the test moves on at once
        psql(pg, "UPDATE jobs SET scheduled_at = now() WHERE id = '%s'" % job_id)
    j = wait_job(job_id, ("Failed",), timeout=30)
    check(j["attempts"] == 3 and j["completed_at"] and "disabled" in j["last_error"], "job: %r" % j)
    ev = events(job_id, "RenewalFailure")
    check(ev == ["warning|renewal-failed:" + job_id], "RenewalFailure: %r" % ev)
    body = one("SELECT body FROM notification_events WHERE dedup_key = 'renewal-failed:%s'" % job_id)
    check("disabled" in body and "stays in place" in body, "event body: %r" % body)
    code, c = adm("GET", "/api/v1/certificates/" + cert["id"])
    check(c["status"] == "Active" and len(versions(cert["id"])) == 1, "certificate: %r" % c)
    check(one("SELECT count(*) FROM audit_events WHERE action = 'jobs.failed' AND resource_id = '%s'" % job_id) == "1",
          "jobs.failed audited")


def unsupported_issuer_fails_at_once():
    """A renewal from an issuer type certward cannot renew from yet
    (StepCA), and one from an ACME issuer for a certificate without a CSR
    to send: Failed at their first attempt, no retry, saying why."""
    step = post("/api/v1/issuers", {"name": "jobs-step", "type": "StepCA",
                                    "config": {"url": "https://step.example"}})["id"]
    acme = post("/api/v1/issuers", {"name": "jobs-acme", "type": "ACME",
                                    "config": {"directory_url": "https://acme.example/dir"}})["id"]
    for name, issuer, needles in (("step", step, ("StepCA", "Local")), ("acme", acme, ("ACME", "CSR"))):
        code, cert = adm("POST", "/api/v1/certificates", {
            "name": name, "common_name": name + ".example.com", "owner_id": S["owner"], "team_id": S["team"],
            "issuer_id": issuer, "renewal_policy_id": S["policy"], "certificate_profile_id": S["profile"]})
        check(code == 201, "record: %r" % ((code, cert),))
        job_id = renew(cert["id"])
        j = wait_job(job_id, ("Failed",), timeout=30)
        check(j["attempts"] == 1 and all(n in j["last_error"] for n in needles), "job: %r" % j)
        check(len(events(job_id, "RenewalFailure")) == 1, "RenewalFailure event")


def timeouts():
    """A job taken by a scheduler that died (Running for longer than
    scheduler.job_timeout) is failed "timed out" and retried; an agent's job
    waiting for a CSR longer than scheduler.agent_job_timeout at its last
    attempt is Failed; each with the audit event jobs.timed_out."""
    _, pem = csr_of("ghost")
    cert = certificate("ghost", csr_pem=pem)
    job_id = one("INSERT INTO jobs (type, certificate_id, scheduled_at) VALUES ('Renewal', '%s', now() + "
                 "interval '1 day') RETURNING id" % cert["id"])
    psql(pg, "UPDATE jobs SET status = 'Running', attempts = 1, started_at = now() - interval '1 hour', "
             "claimed_by = 'node-gone/1' WHERE id = '%s'" % job_id)
    wait_for("timed out", lambda: job(job_id)["status"] == "Pending", timeout=30)
    j = job(job_id)
    check(j["attempts"] == 1 and j["last_error"].startswith("timed out") and "node-gone/1" in j["last_error"],
          "job: %r" % j)
    check(one("SELECT claimed_by IS NULL AND scheduled_at > now() FROM jobs WHERE id = '%s'" % job_id) == "t",
          "the claim is released and the retry later")
    # an agent's job, AwaitingCSR for two hours, no retries left
    agent = one("INSERT INTO agents (name) VALUES ('jobs-slow') RETURNING id")
    rp = post("/api/v1/renewal-policies", {"name": "jobs-once", "max_retries": 0})["id"]
    _, pem = csr_of("slow")
    slow = certificate("slow", policy=rp, csr_pem=pem)
    aj = one("INSERT INTO jobs (type, certificate_id, agent_id, status, scheduled_at) VALUES ('Renewal', '%s', '%s', "
             "'AwaitingCSR', now() - interval '2 hours') RETURNING id" % (slow["id"], agent))
    j = wait_job(aj, ("Failed",), timeout=30)
    check(j["attempts"] == 1 and "no CSR" in j["last_error"], "agent job: %r" % j)
    check(one("SELECT count(*) FROM audit_events WHERE action = 'jobs.timed_out' AND resource_id IN ('%s', '%s')"
              % (job_id, aj)) == "2", "timeouts audited")


def agent_failures_follow_the_retry_rule():
    """An agent's renewal job under the same rule: a CSR the signer refuses
    sends the job back to AwaitingCSR after the backoff (not in the agent's
    work until then); the agent's own failure report at the last attempt
    ends it Failed with a RenewalFailure event."""
    agent_id, crt, key, _ = enrol_agent(api, S["admin"], "jobs-web", os.path.join(root, "csr"))
    me = Api(cw, identity=(crt, key))
    rp = post("/api/v1/renewal-policies", {"name": "jobs-agent", "max_retries": 1, "retry_interval_seconds": 60})["id"]
    tgt = post("/api/v1/targets", {"name": "jobs-nginx", "type": "NGINX", "agent_id": agent_id,
                                   "config": {"cert_path": "/etc/nginx/certs/web.crt"}})["id"]
    cert = certificate("agentweb", policy=rp, target_ids=[tgt])
    job_id = renew(cert["id"])
    check(job(job_id)["status"] == "AwaitingCSR" and job(job_id)["max_attempts"] == 2, "job: %r" % job(job_id))
    work = lambda: [w["id"] for w in me.call("GET", "/api/v1/agents/%s/work" % agent_id)[1]["jobs"]]
    check(work() == [job_id], "work: %r" % work())
    _, bad = csr_of("agentweb-rsa", ("-newkey", "rsa:2048"))  # a key the profile does not allow
    code, _ = me.call("POST", "/api/v1/agents/%s/csr" % agent_id, None,
                      {"job_id": job_id, "certificate_id": cert["id"], "csr_pem": bad})
    check(code == 400, "a refused CSR: %d" % code)
    j = job(job_id)
    check(j["status"] == "AwaitingCSR" and j["attempts"] == 1 and epoch(j["scheduled_at"]) > epoch(j["updated_at"]) + 40,
          "after the refused CSR: %r" % j)
    check(work() == [], "a job waiting for its retry is in the agent's work")
    psql(pg, "UPDATE jobs SET scheduled_at = now() WHERE id = '%s'" % job_id)
    check(work() == [job_id], "the retry is not in the agent's work")
    _, good = csr_of("agentweb")
    code, _ = me.call("POST", "/api/v1/agents/%s/csr" % agent_id, None,
                      {"job_id": job_id, "certificate_id": cert["id"], "csr_pem": good})
    check(code == 202 and job(job_id)["status"] == "Running" and job(job_id)["attempts"] == 2, "second CSR: %d" % code)
    code, _ = me.call("POST", "/api/v1/agents/%s/jobs/%s/status" % (agent_id, job_id), None,
                      {"status": "Failed", "error": "nginx -t failed"})
    check(code == 200, "report: %d" % code)
    j = job(job_id)
    check(j["status"] == "Failed" and j["last_error"] == "nginx -t failed", "job: %r" % j)
    check(len(events(job_id, "RenewalFailure")) == 1, "RenewalFailure event")
    check(adm("GET", "/api/v1/certificates/" + cert["id"])[1]["status"] != "RenewalInProgress", "certificate status")


def store_lost_while_recording():
    """The store killed while a signed renewal waits to be recorded: the
    scheduler sends the record again once the store is back (signing again
    would put a second signature in the ledger): one new version, the job
    Completed at its first attempt."""
    _, pem = csr_of("storekill")
    cert = certificate("storekill", csr_pem=pem)
    signer, store = cw.status()["signer"]["pid"], cw.status()["store"]["pid"]
    before = cw.metrics("signer").get("certificates_signed_total", 0)
    os.kill(signer, signal.SIGSTOP)  # the job waits for its signature
    try:
        job_id = renew(cert["id"])
        wait_for("claimed", lambda: one("SELECT status FROM jobs WHERE id = '%s'" % job_id) == "Running", timeout=30)
        os.kill(store, signal.SIGKILL)
    finally:
        os.kill(signer, signal.SIGCONT)
    wait_for("store back", lambda: cw.status()["store"]["pid"] not in (None, store) and
             cw.status()["store"]["state"] == "running", timeout=30)
    j = wait_job(job_id, ("Completed", "Failed"), timeout=60)
    check(j["status"] == "Completed" and j["attempts"] == 1, "job: %r" % j)
    check(len(versions(cert["id"])) == 2, "versions: %d" % len(versions(cert["id"])))
    check(cw.metrics("signer").get("certificates_signed_total", 0) == before + 1, "signed more than once")


def illegal_transitions_refused():
    """The state machine in PostgreSQL: a final job does not move again,
    a Pending job is not Completed without running; SQLSTATE 23514."""
    _, pem = csr_of("fsm")
    cert = certificate("fsm", csr_pem=pem)
    job_id = one("INSERT INTO jobs (type, certificate_id, scheduled_at) VALUES ('Validation', '%s', now() + "
                 "interval '1 day') RETURNING id" % cert["id"])
    err = sql_error("UPDATE jobs SET status = 'Completed' WHERE id = '%s'" % job_id)
    check("23514" in err and "Pending -> Completed" in err, "Pending -> Completed: %s" % err)
    psql(pg, "UPDATE jobs SET status = 'Running' WHERE id = '%s'" % job_id)
    psql(pg, "UPDATE jobs SET status = 'Completed' WHERE id = '%s'" % job_id)
    check(one("SELECT completed_at IS NOT NULL FROM jobs WHERE id = '%s'" % job_id) == "t", "completed_at")
    for to in ("Running", "Pending", "Failed", "Cancelled", "AwaitingCSR"):
        err = sql_error("UPDATE jobs SET status = '%s' WHERE id = '%s'" % (to, job_id))
        check("23514" in err and "not an allowed status change" in err, "Completed -> %s: %s" % (to, err))
    check(job(job_id)["status"] == "Completed", "the job moved")
    # the api's cancel of a finished job is a 409-free "closed", not an error
    code, r = adm("POST", "/api/v1/jobs/%s/cancel" % job_id)
    check(code in (200, 409) and (r or {}).get("status") != "Cancelled", "cancel of a finished job: %r" % ((code, r),))


def main():
    global root, pg, cw, api
    root = make_root("cw-jobs-")
    pg = Postgres(root, free_port())
    cw = Certward(root, pg.dsn, extra="scheduler:\n  dispatch_interval: 200ms\n  job_timeout: 60s\n"
                                      "  agent_job_timeout: 1h\n  job_timeout_check: 500ms\n  leader_check: 200ms\n")
    api = Api(cw)
    try:
        cw.start()
        case(setup)
        case(renewal_keeps_the_clients_key)
        case(renewal_with_a_key_the_signer_made)
        case(targets_get_deployment_jobs)
        case(retries_then_failure)
        case(unsupported_issuer_fails_at_once)
        case(timeouts)
        case(agent_failures_follow_the_retry_rule)
        case(store_lost_while_recording)
        case(illegal_transitions_refused)
        RUN.stop_clean(cw)
    finally:
        teardown(cw, pg, root)
    RUN.finish()


if __name__ == "__main__":
    main()
