"""Agent enrolment and the agent routes against a real certwardd and
PostgreSQL, with the openssl CLI making keys and CSRs as a host would:
one-time tokens (shown once, stored hashed, single use, expiring, refusals
audited), identity certificates from the agent identity CA and nothing
else reaching the agent routes, identity renewal and revocation,
re-enrolment, liveness (Offline after missed heartbeats, 410 once retired),
and a job's way through work, CSR, pickup and status."""
import json
import os
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, Api, Cases, Certward, Postgres, agent_token, check, enrol_agent, free_port, make_csr, make_key,
                     make_root, psql, teardown, wait_for)

RUN = Cases(lambda: cw)
case = RUN.case
K = {}


def count(table, where="true"):
    return int(psql(pg, "SELECT count(*) FROM %s WHERE %s" % (table, where)).strip())


def openssl(*args, stdin=None):
    return subprocess.run(["openssl"] + list(args), capture_output=True, text=True, timeout=60, input=stdin)


def published(name):
    return os.path.join(cw.state, "tls", name)


def setup():
    wait_for("ready", lambda: cw.all_running() and api.call("GET", "/ready")[0] == 200, timeout=90)
    K["admin"] = make_key(pg, "agents-admin", "admin")
    K["viewer"] = make_key(pg, "agents-viewer", "viewer")
    wait_for("the agent identity CA", lambda: os.path.exists(published("agent-ca.crt")), timeout=30)


def tokens_are_shown_once_and_stored_hashed():
    tok = agent_token(api, K["admin"], "edge01.example.internal", ttl_seconds=900)
    secret = tok["token"]
    check(tok["state"] == "active" and tok["agent_id"].startswith("agent-") and tok["token_prefix"] in secret,
          "token record: %r" % tok)
    code, lst = api.call("GET", "/api/v1/agent-tokens", K["admin"])
    check(code == 200 and lst["total"] >= 1 and all("token" not in t and "salt" not in t and "token_hash" not in t
                                                     for t in lst["data"]), "list: %r" % lst)
    check(secret.split("_")[-1] not in psql(pg, "SELECT row_to_json(t) FROM agent_tokens t"), "the secret is stored")
    check(count("audit_events", "action = 'agent_tokens.create' AND resource_id = '%s'" % tok["id"]) == 1,
          "token creation audited")
    check(secret not in open(os.path.join(cw.logs, "api.log")).read(), "the token is in the api's log")
    # the agent record exists, Offline, named for the host identity
    code, ag = api.call("GET", "/api/v1/agents/" + tok["agent_id"], K["admin"])
    check(code == 200 and ag["name"] == "edge01.example.internal" and ag["status"] == "Offline", "agent: %r" % ag)
    # a second token for the same name is for the same agent
    check(agent_token(api, K["admin"], "edge01.example.internal")["agent_id"] == tok["agent_id"], "same agent")
    # bad requests
    for body, field in (({"name": ""}, "name"), ({"name": "x", "ttl_seconds": 5}, "ttl_seconds"),
                        ({"name": "x", "ttl_seconds": 10 ** 9}, "ttl_seconds"), ({"name": "x" * 256}, "name"),
                        ({"name": "a\nb"}, "name"), ({"name": "x", "colour": 1}, "colour")):
        code, e = api.call("POST", "/api/v1/agent-tokens", K["admin"], body)
        check(code == 400 and e.get("field") == field, "%r: %r" % (body, (code, e)))
    check(api.call("POST", "/api/v1/agent-tokens", K["viewer"], {"name": "x"})[0] == 403, "a viewer made a token")
    # the CLI: --out writes it 0600 and never over a file
    out = os.path.join(cw.root, "cli.token")
    cli = [os.path.join(BUILD, "certward"), "agents", "token", "create", "--name", "cli-host", "--ttl", "15m",
           "--out", out, "--cacert", published("api.crt"), "--server", "https://127.0.0.1:%d" % cw.api_port]
    env = dict(os.environ, CERTWARD_API_KEY=K["admin"])
    r = subprocess.run(cli, capture_output=True, text=True, timeout=60, env=env)
    check(r.returncode == 0 and oct(os.stat(out).st_mode & 0o777) == "0o600", "cli: %r" % r)
    text = open(out).read().strip()
    check(text.startswith("cw_") and text not in r.stdout + r.stderr, "token file: %r / %r" % (text, r))
    r = subprocess.run(cli, capture_output=True, text=True, timeout=60, env=env)
    check(r.returncode != 0 and open(out).read().strip() == text, "written over: %r" % r)
    r = subprocess.run(cli[:6] + ["--ttl", "90d"], capture_output=True, text=True, timeout=60, env=env)
    check(r.returncode == 2, "a ttl of 90d: %r" % r)


def enrolment_is_single_use_and_audited():
    d = os.path.join(cw.root, "enrol")
    os.makedirs(d, exist_ok=True)
    tok = agent_token(api, K["admin"], "web01")
    key, csr = make_csr(d, "web01", subject="/CN=evil.example.com/O=Evil")
    code, ans = api.call("POST", "/api/v1/agents/enroll", None, {"token": tok["token"], "csr_pem": csr})
    check(code == 201 and ans["agent_id"] == tok["agent_id"] and ans["name"] == "web01", "enrol: %r" % ((code, ans),))
    crt = os.path.join(d, "web01.crt")
    with open(crt, "w") as f:
        f.write(ans["certificate_pem"])
    v = openssl("verify", "-CAfile", published("agent-ca.crt"), "-purpose", "sslclient", crt)
    check(v.returncode == 0, "identity does not verify: %s%s" % (v.stdout, v.stderr))
    subj = openssl("x509", "-in", crt, "-noout", "-subject", "-nameopt", "RFC2253").stdout.strip()
    check(subj == "subject=CN=" + ans["agent_id"], "subject: %r" % subj)
    check(openssl("verify", "-CAfile", published("ca-chain.crt"), crt).returncode != 0,
          "the identity verifies against the issuing CA")
    check(ans["ca_pem"].strip() == open(published("agent-ca.crt")).read().strip(), "ca_pem")
    # the same token again, and a well-formed token nobody made, and garbage
    _, csr2 = make_csr(d, "web01-again")
    fake = "cw_%s_%s" % ("0" * 12, "1" * 64)
    for token, reason in ((tok["token"], "used"), (fake, "unknown"), ("cw_nonsense", "malformed"),
                          (tok["token"][:-1] + ("0" if tok["token"][-1] != "0" else "1"), "wrong secret")):
        code, e = api.call("POST", "/api/v1/agents/enroll", None, {"token": token, "csr_pem": csr2})
        check(code == 401 and e["field"] == "token" and "not valid" in e["detail"], "%s: %r" % (reason, (code, e)))
        # refusals are audited without holding up the answer
        wait_for("the refusal audited: " + reason,
                 lambda: count("audit_events", "action = 'agents.enroll' AND outcome = 'failure' AND "
                                               "details->>'reason' = '%s'" % reason) >= 1, timeout=10)
    check(count("audit_events", "action = 'agents.enroll' AND outcome = 'success' AND resource_id = '%s'"
                % ans["agent_id"]) == 1, "enrolment audited")
    check(count("agent_identities", "agent_id = '%s'" % ans["agent_id"]) == 1, "identities recorded")
    # an expired token
    old = agent_token(api, K["admin"], "web02", ttl_seconds=60)
    psql(pg, "UPDATE agent_tokens SET created_at = now() - interval '2 hours', expires_at = now() - interval '1 hour' "
             "WHERE id = '%s'" % old["id"])
    code, e = api.call("POST", "/api/v1/agents/enroll", None, {"token": old["token"], "csr_pem": csr2})
    check(code == 401, "expired token: %r" % ((code, e),))
    wait_for("the expired token audited",
             lambda: count("audit_events", "action = 'agents.enroll' AND details->>'reason' = 'expired'") == 1,
             timeout=10)
    # a CSR that is not one, an RSA-1024 key, oversize: refused without using the token
    fresh = agent_token(api, K["admin"], "web03")
    _, weak = make_csr(d, "weak", key_spec=("-newkey", "rsa:1024"))
    for csr_pem, want in (("not a csr", 400), (weak, 400), ("A" * 20000, 400)):
        code, e = api.call("POST", "/api/v1/agents/enroll", None, {"token": fresh["token"], "csr_pem": csr_pem})
        check(code == want and e.get("field") == "csr_pem", "bad CSR: %r" % ((code, e),))
    code, e = api.call("POST", "/api/v1/agents/enroll", None, {"token": "cw_" + "a" * 200, "csr_pem": csr2})
    check(code == 400 and e.get("field") == "token", "an oversize token: %r" % ((code, e),))
    code, ans3 = api.call("POST", "/api/v1/agents/enroll", None, {"token": fresh["token"], "csr_pem": csr2})
    check(code == 201, "the token is still good after refused CSRs: %r" % ((code, ans3),))
    K["web01"] = (ans["agent_id"], crt, key)


def only_identities_reach_agent_routes():
    agent_id, crt, key = K["web01"]
    me = Api(cw, identity=(crt, key))
    code, r = me.call("POST", "/api/v1/agents/%s/heartbeat" % agent_id, None, {"hostname": "web01.example.internal"})
    check(code == 200 and r == {"status": "ok"}, "heartbeat with the identity: %r" % ((code, r),))
    check(me.call("GET", "/api/v1/agents/%s/work" % agent_id)[0] == 200, "work")
    # no certificate, an agent's API key, an admin key, another agent's id
    check(api.call("GET", "/api/v1/agents/%s/work" % agent_id)[0] == 401, "no credentials")
    akey = make_key(pg, "web01-key", "agent", ", agent_id", ", '%s'" % agent_id)
    code, e = api.call("GET", "/api/v1/agents/%s/work" % agent_id, akey)
    check(code == 401 and "identity certificate" in e["detail"], "an agent API key: %r" % ((code, e),))
    check(api.call("GET", "/api/v1/agents/%s/work" % agent_id, K["admin"])[0] == 403, "an admin key")
    d = os.path.join(cw.root, "enrol")
    b_id, b_crt, b_key, _ = enrol_agent(api, K["admin"], "web-b", d)
    b = Api(cw, identity=(b_crt, b_key))
    check(b.call("GET", "/api/v1/agents/%s/work" % agent_id)[0] == 403, "agent B read agent A's work")
    check(me.call("GET", "/api/v1/agents/%s/work" % b_id)[0] == 403, "agent A read agent B's work")
    # a certificate that is not from the agent identity CA: no handshake
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", os.path.join(d, "self.key"), "-out", os.path.join(d, "self.crt"), "-subj",
                    "/CN=" + agent_id, "-days", "1"], capture_output=True, timeout=60, check=True)
    stranger = Api(cw, identity=(os.path.join(d, "self.crt"), os.path.join(d, "self.key")))
    try:
        code = stranger.call("GET", "/api/v1/agents/%s/work" % agent_id)[0]
    except (ssl.SSLError, ConnectionError, OSError) as e:
        code = "refused: %s" % type(e).__name__
    check(isinstance(code, str), "a self-signed identity was answered: %r" % code)
    # revoked identity: 401
    code, ids = api.call("GET", "/api/v1/agents/%s/identities" % b_id, K["viewer"])
    check(code == 200 and len(ids["data"]) == 1, "identities: %r" % ids)
    code, r = api.call("POST", "/api/v1/agents/%s/identities/%s/revoke" % (b_id, ids["data"][0]["id"]), K["admin"],
                       {"reason": "key lost"})
    check(code == 200, "revoke: %r" % ((code, r),))
    check(b.call("GET", "/api/v1/agents/%s/work" % b_id)[0] == 401, "a revoked identity was accepted")
    check(api.call("POST", "/api/v1/agents/%s/identities/%s/revoke" % (b_id, ids["data"][0]["id"]), K["admin"])[0]
          == 409, "revoked twice")


def identity_renewal_and_reenrolment():
    agent_id, crt, key = K["web01"]
    me = Api(cw, identity=(crt, key))
    d = os.path.join(cw.root, "enrol")
    key2, csr = make_csr(d, "web01-renewed")
    code, ans = me.call("POST", "/api/v1/agents/%s/identity" % agent_id, None, {"csr_pem": csr})
    check(code == 201 and ans["agent_id"] == agent_id, "renewal: %r" % ((code, ans),))
    crt2 = os.path.join(d, "web01-renewed.crt")
    with open(crt2, "w") as f:
        f.write(ans["certificate_pem"])
    renewed = Api(cw, identity=(crt2, key2))
    check(renewed.call("GET", "/api/v1/agents/%s/work" % agent_id)[0] == 200, "the renewed identity")
    me.conn = None
    check(me.call("GET", "/api/v1/agents/%s/work" % agent_id)[0] == 200, "the old one until it expires")
    check(count("audit_events", "action = 'agents.identity_renew' AND resource_id = '%s'" % agent_id) == 1,
          "renewal audited")
    # a new token enrols the agent again: its earlier identities stop working
    again_dir = os.path.join(d, "again")
    os.makedirs(again_dir, exist_ok=True)
    _, crt3, key3, _ = enrol_agent(api, K["admin"], "web01", again_dir)
    again = Api(cw, identity=(crt3, key3))
    check(again.call("GET", "/api/v1/agents/%s/work" % agent_id)[0] == 200, "re-enrolled")
    for old in (Api(cw, identity=(crt, key)), Api(cw, identity=(crt2, key2))):
        check(old.call("GET", "/api/v1/agents/%s/work" % agent_id)[0] == 401, "an identity from before re-enrolment")
    K["web01"] = (agent_id, crt3, key3)


def liveness_offline_and_retired():
    d = os.path.join(cw.root, "enrol")
    agent_id, crt, key, _ = enrol_agent(api, K["admin"], "web-live", d)
    me = Api(cw, identity=(crt, key))
    check(me.call("POST", "/api/v1/agents/%s/heartbeat" % agent_id, None, {})[0] == 200, "heartbeat")
    check(api.call("GET", "/api/v1/agents/" + agent_id, K["admin"])[1]["status"] == "Online", "Online")
    # scheduler.agent_offline_after is 2s here
    wait_for("Offline after missed heartbeats",
             lambda: api.call("GET", "/api/v1/agents/" + agent_id, K["admin"])[1]["status"] == "Offline", timeout=20)
    check(me.call("POST", "/api/v1/agents/%s/heartbeat" % agent_id, None, {})[0] == 200, "heartbeat again")
    check(api.call("GET", "/api/v1/agents/" + agent_id, K["admin"])[1]["status"] == "Online", "Online again")
    check(api.call("DELETE", "/api/v1/agents/" + agent_id, K["admin"])[0] == 200, "retire")
    code, e = me.call("POST", "/api/v1/agents/%s/heartbeat" % agent_id, None, {})
    check(code == 410 and "retired" in e["detail"], "heartbeat of a retired agent: %r" % ((code, e),))
    check(me.call("GET", "/api/v1/agents/%s/work" % agent_id)[0] == 410, "work of a retired agent")
    # its tokens are void too
    tok = agent_token(api, K["admin"], "web-live")
    check(tok["agent_id"] != agent_id, "a token for a retired agent's name makes a new agent: %r" % tok)


def a_job_through_work_csr_and_status():
    agent_id, crt, key = K["web01"]
    me = Api(cw, identity=(crt, key))
    adm = lambda m, p, b=None: api.call(m, p, K["admin"], b)
    iss = adm("POST", "/api/v1/issuers", {"name": "agents-local", "type": "Local"})[1]["id"]
    team = adm("POST", "/api/v1/teams", {"name": "web"})[1]["id"]
    owner = adm("POST", "/api/v1/owners", {"name": "web team", "email": "web@example.com", "team_id": team})[1]["id"]
    rp = adm("POST", "/api/v1/renewal-policies", {"name": "agents-rp", "max_retries": 2})[1]["id"]
    prof = adm("POST", "/api/v1/profiles", {"name": "agents-web", "allowed_ekus": ["serverAuth"],
                                            "allowed_key_algorithms": [{"algorithm": "ECDSA", "min_size": 256}],
                                            "max_ttl_seconds": 86400 * 30})[1]["id"]
    tgt = adm("POST", "/api/v1/targets", {"name": "web-nginx", "type": "NGINX", "agent_id": agent_id,
                                          "config": {"cert_path": "/etc/nginx/certs/web.crt"}})[1]["id"]
    code, mc = adm("POST", "/api/v1/certificates", {
        "name": "web", "common_name": "web.example.internal", "sans": ["web.example.internal"], "owner_id": owner,
        "team_id": team,
        "issuer_id": iss, "renewal_policy_id": rp, "certificate_profile_id": prof, "target_ids": [tgt],
        "environment": "production"})
    check(code == 201, "certificate: %r" % ((code, mc),))
    code, r = adm("POST", "/api/v1/certificates/%s/renew" % mc["id"])
    check(code == 202, "renew: %r" % ((code, r),))
    job = r["job_id"]
    code, j = adm("GET", "/api/v1/jobs/" + job)
    check(j["status"] == "AwaitingCSR" and j["agent_id"] == agent_id, "job: %r" % j)
    code, w = me.call("GET", "/api/v1/agents/%s/work" % agent_id)
    check(code == 200 and w["count"] == 1, "work: %r" % w)
    item = w["jobs"][0]
    check(item["id"] == job and item["certificate_id"] == mc["id"] and item["common_name"] == "web.example.internal"
          and item["key_algorithm"] == "ECDSA" and item["key_size"] == 256 and item["target_id"] == tgt and
          item["targets"][0]["config"]["cert_path"] == "/etc/nginx/certs/web.crt", "work item: %r" % item)
    d = os.path.join(cw.root, "enrol")
    _, csr = make_csr(d, "web-cert", subject="/CN=web.example.internal")
    # a CSR for another job, a broken body
    check(me.call("POST", "/api/v1/agents/%s/csr" % agent_id, None,
                  {"job_id": "job-none", "certificate_id": mc["id"], "csr_pem": csr})[0] == 404, "no such job")
    check(me.call("POST", "/api/v1/agents/%s/csr" % agent_id, None, {"job_id": job})[0] == 400, "no CSR")
    code, s = me.call("POST", "/api/v1/agents/%s/csr" % agent_id, None,
                      {"job_id": job, "certificate_id": mc["id"], "csr_pem": csr})
    check(code == 202 and s["status"] == "issued" and s["certificate_pem"].count("BEGIN CERTIFICATE") == 1 and
          s["chain_pem"].count("BEGIN CERTIFICATE") >= 1, "csr: %r" % ((code, s),))
    leaf = os.path.join(d, "web-leaf.pem")
    with open(leaf, "w") as f:
        f.write(s["certificate_pem"])
    with open(os.path.join(d, "web-chain.pem"), "w") as f:
        f.write(s["chain_pem"])
    v = openssl("verify", "-partial_chain", "-CAfile", os.path.join(d, "web-chain.pem"), leaf)
    check(v.returncode == 0, "issued certificate: %s%s" % (v.stdout, v.stderr))
    code, again = me.call("POST", "/api/v1/agents/%s/csr" % agent_id, None,
                          {"job_id": job, "certificate_id": mc["id"], "csr_pem": csr})
    check(code == 409 and "/certificates/" in again["detail"], "a second CSR: %r" % ((code, again),))
    code, p = me.call("GET", "/api/v1/agents/%s/certificates/%s" % (agent_id, mc["id"]))
    check(code == 200 and p["serial"] == s["serial"] and p["certificate_pem"] == s["certificate_pem"], "pickup: %r" % p)
    b_id, b_crt, b_key, _ = enrol_agent(api, K["admin"], "web-c", d)
    check(Api(cw, identity=(b_crt, b_key)).call("GET", "/api/v1/agents/%s/certificates/%s" % (b_id, mc["id"]))[0]
          == 404, "another agent picked up the certificate")
    check(adm("GET", "/api/v1/jobs/" + job)[1]["status"] == "Running", "Running after the CSR")
    for body, field in (({"status": "Done"}, "status"), ({"status": "Failed", "error": "x\x01"}, "error"),
                        ({"status": "Completed", "serial": "XYZ"}, "serial"), ({"status": "Failed", "error": "e" * 4097},
                                                                              "error")):
        code, e = me.call("POST", "/api/v1/agents/%s/jobs/%s/status" % (agent_id, job), None, body)
        check(code == 400 and e.get("field") == field, "%r: %r" % (body, (code, e)))
    code, r = me.call("POST", "/api/v1/agents/%s/jobs/%s/status" % (agent_id, job), None,
                      {"status": "Completed", "serial": s["serial"]})
    check(code == 200 and r == {"status": "ok"}, "status: %r" % ((code, r),))
    j = adm("GET", "/api/v1/jobs/" + job)[1]
    check(j["status"] == "Completed" and j["completed_at"], "job: %r" % j)
    check(psql(pg, "SELECT deployed_serial FROM jobs WHERE id = '%s'" % job).strip() == s["serial"], "deployed serial")
    check(me.call("POST", "/api/v1/agents/%s/jobs/%s/status" % (agent_id, job), None, {"status": "Failed"})[0] == 409,
          "reported twice")
    check(count("audit_events", "action = 'jobs.completed' AND resource_id = '%s'" % job) == 1, "completion audited")
    check(adm("GET", "/api/v1/certificates/" + mc["id"])[1]["status"] == "Active", "certificate Active")


root = make_root("certward-agents-")
pg = cw = None
try:
    pg = Postgres(root, free_port())
    cw = Certward(root, pg.dsn, extra="scheduler:\n  tick: 200ms\n  agent_offline_after: 2s\n")
    cw.start()
    api = Api(cw)
    case(setup)
    case(tokens_are_shown_once_and_stored_hashed)
    case(enrolment_is_single_use_and_audited)
    case(only_identities_reach_agent_routes)
    case(identity_renewal_and_reenrolment)
    case(liveness_offline_and_retired)
    case(a_job_through_work_csr_and_status)
    RUN.stop_clean(cw)
finally:
    teardown(cw, pg, root)
RUN.finish()
