"""ACME issuers end to end: a real certwardd (scheduler, signer, api, deploy
executor) gets certificates from Debian's pebble, whose validation asks
pebble-challtestsrv's DNS (every name is 127.0.0.1).

- HTTP-01: a certificate for two names moved to an ACME issuer and renewed
  through the scheduler: pebble fetches the key authorizations from the
  api's plain-HTTP listener; the new version verifies against pebble's
  root and intermediate and keeps the CSR's key; the account is remembered
  (one newAccount for two orders); the challenges are gone afterwards.
- DNS-01: a wildcard through a DNS hook run by the deploy executor (it sets
  the TXT record through challtestsrv's management API) and the
  propagation check against challtestsrv's DNS; the record is cleaned up.
- External account binding: with pebble requiring it, an issuer without
  EAB fails with the CA's own text and an issuer with eab_key_id and the
  secret eab_hmac_key gets its certificate.
- pebble rejecting half the nonces and reusing authorizations: issuance
  still works.
- A problem from the CA (a name it cannot validate) ends the job with the
  CA's text.
- Revocation through the API reaches the CA (revokeCert with the reason).
- A short-lived certificate is renewed by the scheduler alone.
- preferred_chain picks the CA's alternate chain by its root's name."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Api, Cases, Certward, Pebble, Postgres, check, free_port, log, make_key, make_root, openssl,
                     psql, teardown, wait_for)

RUN = Cases(lambda: cw)
case = RUN.case
S = {}


def adm(method, path, body=None):
    return api.call(method, path, S["admin"], body)


def post(path, body):
    code, ans = adm("POST", path, body)
    check(code == 201, "POST %s: %r" % (path, (code, ans)))
    return ans


def one(text):
    return psql(pg, text).strip()


def csr_for(name, names):
    key = os.path.join(S["dir"], name + ".key")
    csr = os.path.join(S["dir"], name + ".csr")
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", csr, "-subj", "/CN=" + names[0],
                    "-addext", "subjectAltName=" + ",".join("DNS:" + n for n in names)],
                   check=True, capture_output=True)
    with open(csr) as f:
        return key, f.read()


def certificate(name, names, acme_issuer, profile=None):
    """A certificate issued by the Local CA from a CSR for names, then moved
    to acme_issuer: the scheduler renews it from there with the same CSR."""
    key, pem = csr_for(name, names)
    cert = post("/api/v1/certificates", {
        "name": name, "common_name": names[0], "sans": names, "owner_id": S["owner"], "team_id": S["team"],
        "issuer_id": S["local"], "renewal_policy_id": S["policy"],
        "certificate_profile_id": profile or S["profile"], "csr_pem": pem})
    body = {k: cert[k] for k in ("name", "common_name", "sans", "owner_id", "team_id", "renewal_policy_id",
                                 "certificate_profile_id")}
    body["issuer_id"] = acme_issuer
    code, ans = adm("PUT", "/api/v1/certificates/" + cert["id"], body)
    check(code == 200, "moving %s to the ACME issuer: %r" % (name, (code, ans)))
    return key, cert


def renew(cert_id):
    code, ans = adm("POST", "/api/v1/certificates/%s/renew" % cert_id, {})
    check(code in (200, 201, 202), "renew: %r" % ((code, ans),))
    return ans.get("job_id") or ans.get("id")


def job(job_id):
    code, ans = adm("GET", "/api/v1/jobs/" + job_id)
    check(code == 200, "job %s: %r" % (job_id, (code, ans)))
    return ans


def wait_job(job_id, statuses, timeout=120):
    return wait_for("job %s %s" % (job_id, "/".join(statuses)),
                    lambda: (lambda j: j if j["status"] in statuses else None)(job(job_id)), timeout=timeout)


def newest_leaf(cert_id, name):
    code, vs = adm("GET", "/api/v1/certificates/%s/versions" % cert_id)
    check(code == 200 and vs["data"], "versions: %r" % ((code, vs),))
    v = sorted(vs["data"], key=lambda x: x["created_at"])[-1]
    path = os.path.join(S["dir"], name + ".pem")
    with open(path, "w") as f:
        f.write(v["pem_chain"].split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")
    return path, len(vs["data"])


def acme_issuer(name, ca, **config):
    body = dict({"directory_url": ca.directory_url, "contact_email": "pki@example.com",
                 "challenge_type": "http-01", "trust_anchors_pem": ca.ca_pem()}, **config)
    return post("/api/v1/issuers", {"name": name, "type": "ACME", "config": body})["id"]


def setup():
    wait_for("workers up", lambda: cw.all_running(), timeout=60)
    wait_for("api ready", lambda: api.call("GET", "/ready")[0] == 200, timeout=60)
    S["admin"] = make_key(pg, "acme-admin", "admin")
    S["team"] = post("/api/v1/teams", {"name": "acme"})["id"]
    S["owner"] = post("/api/v1/owners", {"name": "ACME", "email": "acme@example.com", "team_id": S["team"]})["id"]
    S["local"] = post("/api/v1/issuers", {"name": "acme-local", "type": "Local"})["id"]
    S["policy"] = post("/api/v1/renewal-policies", {"name": "acme", "max_retries": 0})["id"]
    S["profile"] = post("/api/v1/profiles", {"name": "acme-any", "allowed_key_algorithms": [
        {"algorithm": "ECDSA", "min_size": 256}]})["id"]
    S["http"] = acme_issuer("pebble-http", pebble)


def http01_two_names():
    key, cert = certificate("two", ["a.example.com", "b.example.com"], S["http"])
    job_id = renew(cert["id"])
    j = wait_job(job_id, ("Completed", "Failed"))
    check(j["status"] == "Completed", "the ACME job: %r\n%s" % (j, cw.tail()))
    leaf, n = newest_leaf(cert["id"], "two-acme")
    check(n == 2, "versions: %d" % n)
    pebble.verify(leaf)
    text = openssl("x509", "-in", leaf, "-noout", "-text").stdout
    check("DNS:a.example.com" in text and "DNS:b.example.com" in text, "the names:\n" + text)
    check(openssl("x509", "-in", leaf, "-noout", "-pubkey").stdout == openssl("pkey", "-in", key, "-pubout").stdout,
          "the CA's certificate is not for the CSR's key")
    check(one("SELECT count(*) FROM acme_accounts WHERE issuer_id = '%s' AND status = 'valid'" % S["http"]) == "1",
          "the account is not remembered")
    check(one("SELECT count(*) FROM acme_challenges") == "0", "challenges left behind")
    S["http_account"] = one("SELECT account_url FROM acme_accounts WHERE issuer_id = '%s'" % S["http"])
    S["two"], S["two_leaf"] = cert["id"], leaf
    # a second order reuses the account
    _, cert2 = certificate("three", ["c.example.com"], S["http"])
    j = wait_job(renew(cert2["id"]), ("Completed", "Failed"))
    check(j["status"] == "Completed", "the second ACME job: %r" % j)
    check(one("SELECT account_url FROM acme_accounts WHERE issuer_id = '%s'" % S["http"]) == S["http_account"],
          "a second account")


def revocation_at_the_ca():
    """Revoking a certificate of an ACME issuer through the API tells the
    CA: revokeCert by the account with the reason; pebble reports it
    revoked, and the revocation is audited as done."""
    with open(S["two_leaf"]) as f:
        pem = f.read()
    check(pebble.cert_status(pem)["Status"] == "Valid", "pebble's status before: %r" % pebble.cert_status(pem))
    code, ans = adm("POST", "/api/v1/certificates/%s/revoke" % S["two"], {"reason": "keyCompromise"})
    check(code == 200, "revoke: %r" % ((code, ans),))
    wait_for("the revocation sent to the CA", lambda: one(
        "SELECT status FROM acme_revocations WHERE certificate_id = '%s'" % S["two"]) in ("done", "failed"), timeout=60)
    row = one("SELECT status || '|' || coalesce(last_error, '') FROM acme_revocations WHERE certificate_id = '%s'"
              % S["two"])
    check(row == "done|", "the revocation at the CA: %r" % row)
    st = pebble.cert_status(pem)
    check(st["Status"] == "Revoked" and str(st.get("Reason")) in ("1", "keyCompromise"), "pebble's status: %r" % st)
    check(one("SELECT count(*) FROM audit_events WHERE action = 'acme_revocations.finish' AND resource_id = '%s' "
              "AND outcome = 'success'" % S["two"]) == "1", "the revocation's audit event")


def dns01_wildcard():
    iss = acme_issuer("pebble-dns", pebble, challenge_type="dns-01", dns_hook="challtestsrv",
                      dns_resolvers=["127.0.0.1:%d" % pebble.dns_port], dns_propagation_timeout_seconds=30)
    _, cert = certificate("wild", ["*.wild.example.com"], iss)
    j = wait_job(renew(cert["id"]), ("Completed", "Failed"))
    check(j["status"] == "Completed", "the DNS-01 job: %r\n%s" % (j, cw.tail()))
    leaf, _ = newest_leaf(cert["id"], "wild-acme")
    pebble.verify(leaf)
    check("DNS:*.wild.example.com" in openssl("x509", "-in", leaf, "-noout", "-text").stdout, "the wildcard")
    with open(S["hook_log"]) as f:
        calls = f.read().split()
    check("present" in calls and "cleanup" in calls, "the hook's calls: %r" % calls)
    check(pebble.txt("_acme-challenge.wild.example.com") == [], "the TXT record was not cleaned up")
    # dns-persist-01 asked for, from a CA that does not offer it: dns-01 instead
    iss = acme_issuer("pebble-persist", pebble, challenge_type="dns-persist-01", dns_hook="challtestsrv",
                      dns_resolvers=["127.0.0.1:%d" % pebble.dns_port], dns_propagation_timeout_seconds=30)
    _, cert = certificate("persist", ["persist.example.com"], iss)
    j = wait_job(renew(cert["id"]), ("Completed", "Failed"))
    check(j["status"] == "Completed", "dns-persist-01 falling back to dns-01: %r\n%s" % (j, cw.tail()))
    with open(S["hook_log"]) as f:
        check(f.read().split().count("present") == 2, "the fallback's dns-01 record was not published")
    check(pebble.txt("_acme-challenge.persist.example.com") == [], "the TXT record was not cleaned up")


def eab():
    ca = Pebble(os.path.join(root, "pebble-eab"), http_port=S["plain"], eab_keys={"kid-1": S["eab_key"]})
    S["extra"].append(ca)
    without = acme_issuer("pebble-eab-none", ca)
    _, cert = certificate("eab-none", ["eab-none.example.com"], without)
    j = wait_job(renew(cert["id"]), ("Completed", "Failed"))
    check(j["status"] == "Failed" and "external account" in j["last_error"].lower(),
          "without EAB: %r" % j)
    with_eab = acme_issuer("pebble-eab", ca, eab_key_id="kid-1", eab_hmac_key=S["eab_key"])
    _, cert = certificate("eab", ["eab.example.com"], with_eab)
    j = wait_job(renew(cert["id"]), ("Completed", "Failed"))
    check(j["status"] == "Completed", "with EAB: %r\n%s" % (j, cw.tail()))
    leaf, _ = newest_leaf(cert["id"], "eab-acme")
    ca.verify(leaf)


def nonce_reject_and_authz_reuse():
    ca = Pebble(os.path.join(root, "pebble-hostile"), http_port=S["plain"], nonce_reject=50, authz_reuse=100)
    S["extra"].append(ca)
    iss = acme_issuer("pebble-hostile", ca)
    for i in range(2):
        _, cert = certificate("reuse-%d" % i, ["reuse.example.com"], iss)
        j = wait_job(renew(cert["id"]), ("Completed", "Failed"))
        check(j["status"] == "Completed", "with nonces rejected and authorizations reused: %r" % j)
        leaf, _ = newest_leaf(cert["id"], "reuse-%d" % i)
        ca.verify(leaf)


def renewed_by_the_scheduler():
    """A certificate from a CA that issues for 60 seconds is renewed with no
    request from the test: the renewal scan makes the job at 2/3 of its
    life and the scheduler gets the next one from the CA."""
    ca = Pebble(os.path.join(root, "pebble-short"), http_port=S["plain"], validity_seconds=60)
    S["extra"].append(ca)
    iss = acme_issuer("pebble-short", ca)
    # the Local CA's first version lives shorter still: the renewal time
    # follows the newest expiry, the CA's
    short = post("/api/v1/profiles", {"name": "acme-short", "max_ttl_seconds": 30, "allow_short_lived": True,
                                         "allowed_key_algorithms": [
        {"algorithm": "ECDSA", "min_size": 256}]})["id"]
    _, cert = certificate("short", ["short.example.com"], iss, profile=short)
    j = wait_job(renew(cert["id"]), ("Completed", "Failed"))
    check(j["status"] == "Completed", "the first ACME job: %r" % j)
    first, n = newest_leaf(cert["id"], "short-1")
    serial = openssl("x509", "-in", first, "-noout", "-serial").stdout
    try:
        wait_for("a renewal made by the scheduler alone", lambda: newest_leaf(cert["id"], "short-n")[1] >= 3,
                 timeout=120)
    except AssertionError:
        log("certificate: %s" % one("SELECT status || ' renew_at=' || coalesce(renew_at::text, '-') || ' now=' || "
                                    "now()::text FROM managed_certificates WHERE id = '%s'" % cert["id"]))
        log("jobs: %s" % psql(pg, "SELECT type, status, requested_by, last_error FROM jobs WHERE certificate_id = "
                                  "'%s'" % cert["id"]))
        log("versions: %s" % psql(pg, "SELECT not_before, not_after FROM certificate_versions WHERE "
                                      "certificate_id = '%s'" % cert["id"]))
        log("leader: %r" % cw.metrics("scheduler").get("scheduler_leader"))
        raise
    leaf, _ = newest_leaf(cert["id"], "short-n")
    ca.verify(leaf)
    check(openssl("x509", "-in", leaf, "-noout", "-serial").stdout != serial, "the same certificate again")
    check(one("SELECT count(*) FROM jobs WHERE certificate_id = '%s' AND requested_by = 'scheduler' AND "
              "status = 'Completed'" % cert["id"]) >= "1", "no renewal job of the scheduler")


def preferred_chain():
    """A CA with an alternate chain (another root): preferred_chain naming
    that root gets the certificate with the alternate intermediate, which
    verifies against the alternate root alone."""
    ca = Pebble(os.path.join(root, "pebble-alt"), http_port=S["plain"], env={"PEBBLE_ALTERNATE_ROOTS": "1"})
    S["extra"].append(ca)
    alt_root, alt_inter = ca.roots(1)
    cn = openssl("x509", "-noout", "-subject", "-nameopt", "multiline", stdin=alt_root).stdout
    cn = [line.split("=", 1)[1].strip() for line in cn.splitlines() if "commonName" in line][0]
    iss = acme_issuer("pebble-alt", ca, preferred_chain=cn)
    _, cert = certificate("alt", ["alt.example.com"], iss)
    j = wait_job(renew(cert["id"]), ("Completed", "Failed"))
    check(j["status"] == "Completed", "with preferred_chain: %r" % j)
    code, vs = adm("GET", "/api/v1/certificates/%s/versions" % cert["id"])
    chain = sorted(vs["data"], key=lambda x: x["created_at"])[-1]["pem_chain"]
    check(alt_inter.strip().split("-----END CERTIFICATE-----")[0] in chain,
          "the stored chain does not hold the alternate intermediate")
    leaf, _ = newest_leaf(cert["id"], "alt")
    ca.verify(leaf, 1)


def ca_problem_on_the_job():
    """pebble's validation cannot reach the name (challtestsrv sends it to
    127.0.0.2, where nothing listens): the authorization turns invalid and
    the job fails with the CA's own type and text."""
    pebble.set_default_ipv4("127.0.0.2")
    try:
        _, cert = certificate("unreachable", ["unreachable.example.com"], S["http"])
        j = wait_job(renew(cert["id"]), ("Completed", "Failed"))
    finally:
        pebble.set_default_ipv4("127.0.0.1")
    check(j["status"] == "Failed" and "urn:ietf:params:acme:error:" in j["last_error"]
          and "unreachable.example.com" in j["last_error"], "an authorization the CA could not validate: %r" % j)
    check(one("SELECT count(*) FROM acme_challenges") == "0", "challenges left behind")


def main():
    global root, pg, cw, api, pebble
    root = make_root("cw-acme-")
    S["dir"] = os.path.join(root, "work")
    os.makedirs(S["dir"])
    S["extra"] = []
    S["eab_key"] = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
    S["plain"] = free_port()
    pg = Postgres(root, free_port())
    pebble = Pebble(os.path.join(root, "pebble"), http_port=S["plain"])
    hooks = os.path.join(root, "hooks")
    os.makedirs(hooks)
    os.chmod(root, 0o755)
    os.chmod(hooks, 0o755)
    S["hook_log"] = os.path.join(root, "hook.log")
    with open(S["hook_log"], "w"):
        pass
    os.chmod(S["hook_log"], 0o666)
    hook = os.path.join(hooks, "challtestsrv")
    with open(hook, "w") as f:
        f.write("#!/bin/sh\n"
                "# sets and clears TXT records in pebble-challtestsrv through its management API\n"
                "set -eu\n"
                "echo \"$1\" >> \"$HOOK_LOG\"\n"
                "case \"$1\" in\n"
                "present) curl -sf -X POST -d \"{\\\"host\\\":\\\"$2\\\",\\\"value\\\":\\\"$3\\\"}\" \"$CTS/set-txt\" ;;\n"
                "cleanup) curl -sf -X POST -d \"{\\\"host\\\":\\\"$2\\\"}\" \"$CTS/clear-txt\" ;;\n"
                "esac\n")
    os.chmod(hook, 0o755)
    cw = Certward(root, pg.dsn,
                  api_extra="  plain_listen: 127.0.0.1:%d\n" % S["plain"],
                  extra="scheduler:\n  dispatch_interval: 200ms\n  job_timeout: 300s\n  acme_revocation_interval: 300ms\n"
                        "  tick: 1s\n  leader_check: 300ms\n  renewal_scan_interval: 1s\n"
                        "deploy:\n  dns_hook_dir: %s\n  dns_hook_env: \"CTS=http://127.0.0.1:%d HOOK_LOG=%s\"\n"
                        % (hooks, pebble.cts_port, S["hook_log"]))
    api = Api(cw)
    try:
        cw.start()
        case(setup)
        case(http01_two_names)
        case(revocation_at_the_ca)
        case(dns01_wildcard)
        case(eab)
        case(nonce_reject_and_authz_reuse)
        case(preferred_chain)
        case(ca_problem_on_the_job)
        case(renewed_by_the_scheduler)
        RUN.stop_clean(cw)
    finally:
        for ca in [pebble] + S["extra"]:
            ca.stop()
        teardown(cw, pg, root)
    RUN.finish()


if __name__ == "__main__":
    main()
