"""Certificates ordered from an ACME CA for a key that is not the stored
CSR's, end to end against Debian's pebble (validation through
pebble-challtestsrv's DNS, every name 127.0.0.1; HTTP-01 answered by the
api's plain listener):

- created on an ACME issuer from a client's CSR: 202 with the record
  Pending and its Issuance job; the scheduler orders it and the record
  gets the CA's certificate for the CSR's key. CSRs that name other names
  than the record, or break the profile, are refused (400) before anything
  is stored.
- created on an ACME issuer with a key made by the signer: the key comes
  once in the 202; the CA's certificate is for it; the key is kept sealed
  with the version (not with the job); a renewal gets a new key, again
  made by the signer, with a new certificate.
- renewed with a new CSR: 202 with the job; the new version is for the new
  key.
- an agent's certificate on an ACME issuer, its target with an ACME
  webroot: the renewal waits for the agent's CSR, the agent hears that the
  certificate is being ordered, writes the HTTP-01 answer into the webroot
  of a real nginx (which the CA's validation reaches; certward's api does
  not answer for that name), fetches the certificate once the CA issued
  it, deploys it to that nginx and reports the job Completed; the answer
  file is removed afterwards."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, Api, Cases, Certward, Nginx, Pebble, Postgres, agent_token, check, enrol_agent,
                     free_port, make_key, make_root, openssl, psql, served_serial, stop_process, teardown, wait_for)

RUN = Cases(lambda: cw)
case = RUN.case
S = {}
AGENT = os.path.join(BUILD, "certward-agent")


def adm(method, path, body=None):
    return api.call(method, path, S["admin"], body)


def post(path, body, want=201):
    code, ans = adm("POST", path, body)
    check(code == want, "POST %s: %r" % (path, (code, ans)))
    return ans


def one(text):
    return psql(pg, text).strip()


def csr_for(name, names, key_spec=("ec", "-pkeyopt", "ec_paramgen_curve:P-256")):
    key = os.path.join(S["dir"], name + ".key")
    csr = os.path.join(S["dir"], name + ".csr")
    subprocess.run(["openssl", "req", "-new", "-newkey", *key_spec, "-nodes", "-keyout", key, "-out", csr,
                    "-subj", "/CN=" + names[0], "-addext", "subjectAltName=" + ",".join("DNS:" + n for n in names)],
                   check=True, capture_output=True)
    with open(csr) as f:
        return key, f.read()


def record(name, names, **extra):
    return dict({"name": name, "common_name": names[0], "sans": names, "owner_id": S["owner"],
                 "team_id": S["team"], "issuer_id": S["acme"], "renewal_policy_id": S["policy"],
                 "certificate_profile_id": S["profile"]}, **extra)


def job(job_id):
    code, ans = adm("GET", "/api/v1/jobs/" + job_id)
    check(code == 200, "job %s: %r" % (job_id, (code, ans)))
    return ans


def wait_job(job_id, statuses=("Completed", "Failed"), timeout=120):
    return wait_for("job %s %s" % (job_id, "/".join(statuses)),
                    lambda: (lambda j: j if j["status"] in statuses else None)(job(job_id)), timeout=timeout)


def versions(cert_id):
    code, vs = adm("GET", "/api/v1/certificates/%s/versions" % cert_id)
    check(code == 200, "versions: %r" % ((code, vs),))
    return sorted(vs["data"], key=lambda x: x["created_at"])


def newest_leaf(cert_id, name):
    vs = versions(cert_id)
    check(vs, "no version of %s" % cert_id)
    path = os.path.join(S["dir"], name + ".pem")
    with open(path, "w") as f:
        f.write(vs[-1]["pem_chain"].split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")
    return path, len(vs)


def all_logs():
    text = cw.tail(100000)
    for name in os.listdir(cw.logs):
        with open(os.path.join(cw.logs, name), errors="replace") as f:
            text += f.read()
    return "".join(text.split())


def pubkey_of_cert(path):
    return openssl("x509", "-in", path, "-noout", "-pubkey").stdout


def pubkey_of_key(path):
    return openssl("pkey", "-in", path, "-pubout").stdout


def setup():
    wait_for("workers up", lambda: cw.all_running(), timeout=60)
    wait_for("api ready", lambda: api.call("GET", "/ready")[0] == 200, timeout=60)
    S["admin"] = make_key(pg, "orders-admin", "admin")
    S["team"] = post("/api/v1/teams", {"name": "orders"})["id"]
    S["owner"] = post("/api/v1/owners", {"name": "Orders", "email": "orders@example.com", "team_id": S["team"]})["id"]
    S["policy"] = post("/api/v1/renewal-policies", {"name": "orders", "max_retries": 0})["id"]
    S["profile"] = post("/api/v1/profiles", {"name": "orders-ec", "allowed_key_algorithms": [
        {"algorithm": "ECDSA", "min_size": 256}]})["id"]
    S["keygen_profile"] = post("/api/v1/profiles", {"name": "orders-keygen", "server_keygen": True,
                                                     "allowed_key_algorithms": [
        {"algorithm": "ECDSA", "min_size": 256}]})["id"]
    S["acme"] = post("/api/v1/issuers", {"name": "pebble", "type": "ACME", "config": {
        "directory_url": pebble.directory_url, "contact_email": "pki@example.com", "challenge_type": "http-01",
        "trust_anchors_pem": pebble.ca_pem()}})["id"]


def created_from_a_csr():
    key, csr = csr_for("direct", ["direct.example.com", "www.direct.example.com"])
    ans = post("/api/v1/certificates", record("direct", ["direct.example.com", "www.direct.example.com"],
                                              csr_pem=csr), want=202)
    check(ans["status"] == "Pending" and ans["job_id"] and ans.get("latest_version") is None,
          "the answer: %r" % ans)
    check("private_key_pem" not in ans, "a key in the answer for a client's CSR")
    j = wait_job(ans["job_id"])
    check(j["status"] == "Completed" and j["type"] == "Issuance", "the Issuance job: %r\n%s" % (j, cw.tail()))
    leaf, n = newest_leaf(ans["id"], "direct")
    check(n == 1, "versions: %d" % n)
    pebble.verify(leaf)
    check(pubkey_of_cert(leaf) == pubkey_of_key(key), "the CA's certificate is not for the CSR's key")
    code, rec = adm("GET", "/api/v1/certificates/" + ans["id"])
    check(code == 200 and rec["status"] == "Active", "the record: %r" % rec)
    check(one("SELECT count(*) FROM audit_events WHERE action = 'certificate.ordered' AND resource_id = '%s'"
              % ans["id"]) == "1", "the order's audit event")
    S["direct"], S["direct_key"] = ans["id"], key


def refused_before_anything_is_stored():
    before = one("SELECT count(*) FROM managed_certificates")
    # a CSR with a name the record does not have
    _, csr = csr_for("extra", ["extra.example.com", "other.example.com"])
    code, ans = adm("POST", "/api/v1/certificates", record("extra", ["extra.example.com"], csr_pem=csr))
    check(code == 400 and ans.get("field") == "csr_pem" and "other.example.com" in ans.get("detail", ""),
          "a CSR naming more: %r" % ((code, ans),))
    # a CSR missing one of the record's names
    _, csr = csr_for("fewer", ["fewer.example.com"])
    code, ans = adm("POST", "/api/v1/certificates", record("fewer", ["fewer.example.com", "more.example.com"],
                                                           csr_pem=csr))
    check(code == 400 and ans.get("field") == "csr_pem" and "does not name more.example.com" in ans.get("detail", ""),
          "a CSR naming fewer: %r" % ((code, ans),))
    # as many names as the record, one of them twice
    _, csr = csr_for("twice", ["twice.example.com", "twice.example.com"])
    code, ans = adm("POST", "/api/v1/certificates", record("twice", ["twice.example.com", "other.example.com"],
                                                           csr_pem=csr))
    check(code == 400 and "does not name other.example.com" in ans.get("detail", ""),
          "a CSR naming one name twice: %r" % ((code, ans),))
    # an RSA key where the profile allows ECDSA only
    _, csr = csr_for("rsa", ["rsa.example.com"], key_spec=("rsa:2048",))
    code, ans = adm("POST", "/api/v1/certificates", record("rsa", ["rsa.example.com"], csr_pem=csr))
    check(code == 400 and ans.get("field") == "csr_pem", "a CSR the profile forbids: %r" % ((code, ans),))
    # not a CSR at all
    code, ans = adm("POST", "/api/v1/certificates", record("junk", ["junk.example.com"],
                                                           csr_pem="-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                                                                   "-----END CERTIFICATE REQUEST-----\n"))
    check(code == 400 and ans.get("field") == "csr_pem", "a broken CSR: %r" % ((code, ans),))
    # a key made by the signer needs a profile that allows it
    code, ans = adm("POST", "/api/v1/certificates", record("nokeygen", ["nokeygen.example.com"],
                                                           key_generation="server"))
    check(code == 422 and ans.get("field") == "certificate_profile_id", "keygen refused: %r" % ((code, ans),))
    check(one("SELECT count(*) FROM managed_certificates") == before, "a refused request left a record")


def created_with_a_key_made_by_the_signer():
    ans = post("/api/v1/certificates", record("made", ["made.example.com"], key_generation="server",
                                              key_algorithm="ecdsa-p256",
                                              certificate_profile_id=S["keygen_profile"]), want=202)
    check(ans.get("private_key_pem", "").startswith("-----BEGIN PRIVATE KEY-----"), "no key in the answer: %r"
          % {k: v for k, v in ans.items() if k != "private_key_pem"})
    key = os.path.join(S["dir"], "made.key")
    with open(key, "w") as f:
        f.write(ans["private_key_pem"])
    j = wait_job(ans["job_id"])
    check(j["status"] == "Completed", "the Issuance job: %r\n%s" % (j, cw.tail()))
    check(one("SELECT count(*) FROM jobs WHERE id = '%s' AND sealed_key IS NOT NULL" % ans["job_id"]) == "0",
          "the ended job still holds the sealed key")
    leaf, _ = newest_leaf(ans["id"], "made")
    pebble.verify(leaf)
    check(pubkey_of_cert(leaf) == pubkey_of_key(key), "the CA's certificate is not for the key handed out")
    check(one("SELECT count(*) FROM version_keys k JOIN certificate_versions v ON v.id = k.certificate_version_id "
              "WHERE v.certificate_id = '%s'" % ans["id"]) == "1", "the version's sealed key")
    body = "".join(ans["private_key_pem"].split("-----")[2].split())
    check(body[:40] not in all_logs() and body[40:80] not in all_logs(), "the key in a log")
    # a renewal: the signer makes the next key
    code, r = adm("POST", "/api/v1/certificates/%s/renew" % ans["id"], {})
    check(code == 202, "renew: %r" % ((code, r),))
    j = wait_job(r["job_id"])
    check(j["status"] == "Completed", "the Renewal job: %r\n%s" % (j, cw.tail()))
    leaf2, n = newest_leaf(ans["id"], "made-2")
    check(n == 2, "versions: %d" % n)
    pebble.verify(leaf2)
    check(pubkey_of_cert(leaf2) != pubkey_of_cert(leaf), "the renewal kept the key")
    check(one("SELECT count(*) FROM version_keys k JOIN certificate_versions v ON v.id = k.certificate_version_id "
              "WHERE v.certificate_id = '%s'" % ans["id"]) == "2", "the new version's sealed key")


def renewed_with_a_new_csr():
    key, csr = csr_for("direct-2", ["direct.example.com", "www.direct.example.com"])
    code, r = adm("POST", "/api/v1/certificates/%s/renew" % S["direct"], {"csr_pem": csr})
    check(code == 202 and r.get("job_id"), "renew with a CSR: %r" % ((code, r),))
    # a second one while this one runs
    code2, r2 = adm("POST", "/api/v1/certificates/%s/renew" % S["direct"], {"csr_pem": csr})
    j = wait_job(r["job_id"])
    check(j["status"] == "Completed", "the Renewal job: %r\n%s" % (j, cw.tail()))
    check(code2 in (202, 409), "a second renewal: %r" % ((code2, r2),))
    leaf, _ = newest_leaf(S["direct"], "direct-2")
    pebble.verify(leaf)
    check(pubkey_of_cert(leaf) == pubkey_of_key(key), "the renewal is not for the new CSR's key")
    check(pubkey_of_cert(leaf) != pubkey_of_key(S["direct_key"]), "the old key")
    # a CSR for other names is refused
    _, bad = csr_for("direct-bad", ["direct.example.com"])
    code, r = adm("POST", "/api/v1/certificates/%s/renew" % S["direct"], {"csr_pem": bad})
    check(code == 400 and r.get("field") == "csr_pem", "a renewal CSR for fewer names: %r" % ((code, r),))


def challenge_reports_checked():
    """An agent's word on an HTTP-01 challenge: a token that is not its live
    challenge, a malformed token, an unknown status, an oversize error or an
    unknown member are refused, and nothing is recorded."""
    aid, crt, key, _ = enrol_agent(api, S["admin"], "hostile.example.internal", S["dir"])
    me = Api(cw, identity=(crt, key))
    base = "/api/v1/agents/%s/challenges/" % aid
    for token, body, want in (
            ("nosuchToken", {"status": "ready"}, 404),
            ("bad.token", {"status": "ready"}, 404),
            ("x" * 129, {"status": "ready"}, 404),
            ("nosuchToken", {"status": "done"}, 400),
            ("nosuchToken", {"status": "failed", "error": "e" * 1025}, 400),
            ("nosuchToken", {"status": "failed", "error": "line\x01"}, 400),
            ("nosuchToken", {"status": "ready", "extra": 1}, 400),
            ("nosuchToken", [], 400)):
        code, ans = me.call("POST", base + token, None, body)
        check(code == want, "%s %r: %r" % (token[:20], body if len(str(body)) < 80 else "...", (code, ans)))
    check(one("SELECT count(*) FROM acme_challenges") == "0", "a refused report left a challenge")


def write_agent_config(nginx):
    cfg = os.path.join(S["dir"], "agent.yml")
    with open(cfg, "w") as f:
        f.write("""server: https://127.0.0.1:%(api)d
cacert: %(cacert)s
state_dir: %(state)s
heartbeat_interval: 1s
poll_interval: 1s
log_level: debug
allowed_paths: [%(d)s/certs]
targets:
  - name: web
    type: nginx
    target_id: %(target)s
    cert_path: %(cert)s
    key_path: %(key)s
    acme_webroot: %(webroot)s
    validate: [nginx, -t, -c, %(conf)s, -p, %(prefix)s]
    reload: [nginx, -s, reload, -c, %(conf)s, -p, %(prefix)s]
    verify: {address: "127.0.0.1:%(port)d", server_name: %(name)s, timeout: 10s}
""" % {"api": cw.api_port, "cacert": os.path.join(cw.state, "tls", "api.crt"), "state": S["agent_state"],
       "d": S["dir"], "target": S["target"], "cert": nginx.cert, "key": nginx.key, "conf": nginx.conf,
       "prefix": nginx.prefix, "port": nginx.port, "name": Nginx.NAME, "webroot": nginx.webroot})
    return cfg


def agent_key_ordered_from_the_ca():
    # the CA validates HTTP-01 at nginx's plain port, where nginx serves its webroot
    http = free_port()
    nginx = S["nginx"] = Nginx(S["dir"], http_port=http)
    ca = S["pebble2"] = Pebble(os.path.join(root, "pebble-agent"), http_port=http)
    issuer = post("/api/v1/issuers", {"name": "pebble-agent", "type": "ACME", "config": {
        "directory_url": ca.directory_url, "contact_email": "pki@example.com", "challenge_type": "http-01",
        "trust_anchors_pem": ca.ca_pem()}})["id"]
    S["agent_state"] = os.path.join(S["dir"], "agent-state")
    tok = agent_token(api, S["admin"], "acme-edge.example.internal")
    token_file = os.path.join(S["dir"], "agent.token")
    with open(token_file, "w") as f:
        f.write(tok["token"] + "\n")
    os.chmod(token_file, 0o600)
    r = subprocess.run([AGENT, "enroll", "--server", "https://127.0.0.1:%d" % cw.api_port, "--token-file",
                        token_file, "--cacert", os.path.join(cw.state, "tls", "api.crt"), "--state-dir",
                        S["agent_state"]], capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "enroll: %r" % r)
    S["target"] = post("/api/v1/targets", {"name": "acme-web", "type": "NGINX", "agent_id": tok["agent_id"],
                                            "config": {"acme_webroot": nginx.webroot}})["id"]
    cert = post("/api/v1/certificates", record("edge", [Nginx.NAME], target_ids=[S["target"]], issuer_id=issuer))
    code, r = adm("POST", "/api/v1/certificates/%s/renew" % cert["id"], {})
    check(code == 202 and r.get("job_id"), "renew: %r" % ((code, r),))
    check(job(r["job_id"])["status"] == "AwaitingCSR", "the job does not wait for the agent: %r" % job(r["job_id"]))
    cfg = write_agent_config(nginx)
    out = open(os.path.join(S["dir"], "agent.log"), "a")
    S["agent"] = subprocess.Popen([AGENT, "run", "--config", cfg], stdout=out, stderr=subprocess.STDOUT)
    j = wait_job(r["job_id"], timeout=150)
    agent_log = open(os.path.join(S["dir"], "agent.log")).read()
    check(j["status"] == "Completed", "the agent's job: %r\n%s\n%s" % (j, agent_log[-3000:], cw.tail()))
    check("being ordered from the CA" in agent_log, "the agent did not hear of the order:\n" + agent_log[-3000:])
    check("written to %s/.well-known/acme-challenge/" % os.path.realpath(nginx.webroot) in agent_log,
          "the agent did not write the HTTP-01 answer:\n" + agent_log[-3000:])
    leaf, n = newest_leaf(cert["id"], "edge")
    check(n == 1, "versions: %d" % n)
    ca.verify(leaf)
    serial = openssl("x509", "-in", leaf, "-noout", "-serial").stdout.strip().split("=", 1)[1].lower().lstrip("0")
    check(served_serial(nginx.port, Nginx.NAME) == serial,
          "nginx serves %r, the CA issued %r" % (served_serial(nginx.port, Nginx.NAME), serial))
    check(pubkey_of_cert(leaf) == pubkey_of_key(nginx.key), "nginx's key is not the certificate's")
    check(one("SELECT deployed_serial FROM jobs WHERE id = '%s'" % r["job_id"]).lower().lstrip("0") == serial,
          "the job's deployed serial")
    answers = os.path.join(nginx.webroot, ".well-known", "acme-challenge")
    wait_for("the HTTP-01 answer removed", lambda: os.listdir(answers) == [], timeout=30)
    check(one("SELECT count(*) FROM acme_challenges") == "0", "challenges left behind")


def stop_agent():
    check(stop_process(S.get("agent")), "the agent did not stop on SIGTERM")


def main():
    global root, pg, cw, api, pebble
    root = make_root("cw-acme-orders-")
    S["dir"] = os.path.join(root, "work")
    os.makedirs(S["dir"])
    # nginx's workers (not root) read the webroot under it
    os.chmod(root, 0o755)
    os.chmod(S["dir"], 0o755)
    plain = free_port()
    pg = Postgres(root, free_port())
    pebble = Pebble(os.path.join(root, "pebble"), http_port=plain)
    cw = Certward(root, pg.dsn, api_extra="  plain_listen: 127.0.0.1:%d\n" % plain,
                  extra="scheduler:\n  dispatch_interval: 200ms\n  job_timeout: 300s\n  tick: 1s\n"
                        "  leader_check: 300ms\n")
    api = Api(cw)
    try:
        cw.start()
        case(setup)
        case(created_from_a_csr)
        case(refused_before_anything_is_stored)
        case(created_with_a_key_made_by_the_signer)
        case(renewed_with_a_new_csr)
        case(challenge_reports_checked)
        case(agent_key_ordered_from_the_ca)
        stop_agent()
        RUN.stop_clean(cw)
    finally:
        stop_agent()
        if S.get("nginx"):
            S["nginx"].stop()
        pebble.stop()
        if S.get("pebble2"):
            S["pebble2"].stop()
        teardown(cw, pg, root)
    RUN.finish()


if __name__ == "__main__":
    main()
