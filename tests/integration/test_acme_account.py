"""An ACME issuer's account through the API, against Debian's pebble: key
rollover and deactivation (RFC 8555 7.3.5, 7.3.6), carried out by the
scheduler with keys the signer makes and keeps.

- The account of an issuer that got a certificate: GET .../acme/account.
- Key rollover to ES384: the action done, the account row's thumbprint and
  the issuer's account_key_algorithm changed, the key file replaced (no
  pending file left), the old key refused by pebble for the account, and a
  renewal with the new key works (pebble bound it to the same account).
- A rollover whose run ended between the CA's answer and the commit (the
  pending key on disk, the CA holding it; the signer restarted): the next
  renewal makes the pending key the account key and works. A pending key
  the CA never saw is discarded, the account key kept.
- Deactivation: pebble's account deactivated (a POST-as-GET with its key
  refused), the row deactivated, the key file retired; the next renewal
  registers a new account with a new key and works.
- The CA's refusal (an account deactivated behind certward's back) fails a
  rollover with pebble's own problem text and leaves no pending key; a
  deactivation then counts the CA's unauthorized as done.
- The CA unreachable: the action is retried later (pending, the error and
  the next attempt shown), and a second action is refused meanwhile.
- API errors: unknown issuer 404, an issuer of another type 422 (404 for
  its account), no account yet 409, bad bodies 400, other roles 403,
  unknown actions 404; the requests audited."""
import base64
import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Api, Cases, Certward, Pebble, Postgres, check, free_port, log, make_key, make_root, openssl,
                     psql, teardown, wait_for)

RUN = Cases(lambda: cw)
case = RUN.case
S = {}


def call(method, path, body=None, key=None):
    return api.call(method, path, key or S["admin"], body)


def made(path, body):
    code, ans = call("POST", path, body)
    check(code == 201, "POST %s: %r" % (path, (code, ans)))
    return ans["id"]


def one(text):
    return psql(pg, text).strip()


def key_dir():
    return os.path.join(cw.state, "signer", "acme")


def key_file(issuer, suffix=""):
    return os.path.join(key_dir(), issuer + ".key" + suffix)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


# ---- the inventory: a certificate moved to the ACME issuer ----

def renewed(cert_id):
    """A renewal job of the certificate, run to its end: the job."""
    code, ans = call("POST", "/api/v1/certificates/%s/renew" % cert_id, {})
    check(code == 202, "renew: %r" % ((code, ans),))

    def ended():
        code, j = call("GET", "/api/v1/jobs/" + ans["job_id"])
        return j if code == 200 and j["status"] in ("Completed", "Failed") else None
    return wait_for("job %s" % ans["job_id"], ended, timeout=120)


def renews(cert_id, why):
    j = renewed(cert_id)
    check(j["status"] == "Completed", "%s: the renewal %r\n%s" % (why, j, cw.tail()))
    code, vs = call("GET", "/api/v1/certificates/%s/versions" % cert_id)
    newest = sorted(vs["data"], key=lambda v: v["created_at"])[-1]["pem_chain"]
    leaf = os.path.join(S["dir"], "leaf.pem")
    with open(leaf, "w") as f:
        f.write(newest.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")
    issuer = openssl("x509", "-in", leaf, "-noout", "-issuer").stdout
    check("Pebble" in issuer, "%s: not pebble's certificate: %s" % (why, issuer))


def certificate(name):
    key, csr = os.path.join(S["dir"], name + ".key"), os.path.join(S["dir"], name + ".csr")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
            "-out", csr, "-subj", "/CN=%s.example.com" % name, "-addext", "subjectAltName=DNS:%s.example.com" % name)
    with open(csr) as f:
        body = {"name": name, "common_name": name + ".example.com", "sans": [name + ".example.com"],
                "owner_id": S["owner"], "team_id": S["team"], "renewal_policy_id": S["policy"],
                "certificate_profile_id": S["profile"], "issuer_id": S["local"], "csr_pem": f.read()}
    cert = made("/api/v1/certificates", body)
    del body["csr_pem"]
    body["issuer_id"] = S["acme"]
    code, ans = call("PUT", "/api/v1/certificates/" + cert, body)
    check(code == 200, "moving %s to the ACME issuer: %r" % (name, (code, ans)))
    return cert


# ---- the account ----

def account():
    code, a = call("GET", "/api/v1/issuers/%s/acme/account" % S["acme"])
    check(code == 200, "GET account: %r" % ((code, a),))
    return a


def requested(what, body=None):
    code, a = call("POST", "/api/v1/issuers/%s/acme/%s" % (S["acme"], what), {} if body is None else body)
    check(code == 202 and a["status"] == "pending" and a["attempts"] == 0, "POST %s: %r" % (what, (code, a)))
    return a


def action_ended(a, statuses=("done", "failed")):
    def ended():
        code, x = call("GET", "/api/v1/issuers/%s/acme/actions/%d" % (S["acme"], a["id"]))
        check(code == 200, "GET action: %r" % ((code, x),))
        return x if x["status"] in statuses else None
    return wait_for("action %d %s" % (a["id"], "/".join(statuses)), ended, timeout=90)


def restart_signer():
    pid = cw.status()["signer"]["pid"]
    cw.ctl("restart", "signer")
    wait_for("signer back", lambda: cw.all_running() and cw.status()["signer"]["pid"] != pid, timeout=60)
    wait_for("the scheduler reaches the signer",
             lambda: cw.ctl("ping", "scheduler", "signer", check_rc=False).returncode == 0, timeout=30,
             interval=0.3)


# ---- a client of pebble's own, for what certward must not do itself ----

def jwk_of(path):
    """The public JWK (RFC 7638 member order) of the EC key in path."""
    der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"], capture_output=True,
                         check=True, timeout=30).stdout
    w = {91: 32, 120: 48}[len(der)]  # SubjectPublicKeyInfo of P-256, P-384
    point = der[-(2 * w + 1):]
    return {"crv": "P-256" if w == 32 else "P-384", "kty": "EC", "x": b64u(point[1:1 + w]), "y": b64u(point[1 + w:])}


def thumbprint(jwk):
    return b64u(hashlib.sha256(json.dumps(jwk, separators=(",", ":")).encode()).digest())


def sign(path, jwk, text):
    """ES256/ES384 JWS signature (r||s) of text with the key in path."""
    w = 32 if jwk["crv"] == "P-256" else 48
    der = subprocess.run(["openssl", "dgst", "-sha256" if w == 32 else "-sha384", "-sign", path],
                         input=text.encode(), capture_output=True, check=True, timeout=30).stdout
    i, out = 2, b""
    for _ in range(2):
        n = der[i + 1]
        out += int.from_bytes(der[i + 2:i + 2 + n], "big").to_bytes(w, "big")
        i += 2 + n
    return out


def jws(path, url, payload, kid=None, nonce=None):
    """A flattened JWS by the key in path (kid, else its jwk), as JSON text."""
    jwk = jwk_of(path)
    protected = {"alg": "ES256" if jwk["crv"] == "P-256" else "ES384", "url": url}
    if nonce:
        protected["nonce"] = nonce
    if kid:
        protected["kid"] = kid
    else:
        protected["jwk"] = jwk
    p = b64u(json.dumps(protected).encode())
    body = "" if payload is None else b64u((payload if isinstance(payload, str) else json.dumps(payload)).encode())
    return json.dumps({"protected": p, "payload": body, "signature": b64u(sign(path, jwk, p + "." + body))})


def pebble_post(path, url, payload, kid):
    """POST to pebble, signed by the key in path by kid: (status, JSON answer)."""
    ctx = pebble._context()
    with urllib.request.urlopen(urllib.request.Request(pebble.directory()["newNonce"], method="HEAD"),
                                context=ctx, timeout=10) as r:
        nonce = r.headers["Replay-Nonce"]
    req = urllib.request.Request(url, method="POST", data=jws(path, url, payload, kid, nonce).encode(),
                                 headers={"Content-Type": "application/jose+json"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def new_key(path, curve="P-256"):
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:" + curve, "-out", path)


def plant_pending(path):
    """path as the issuer's pending key, owned and moded as the signer keeps
    its keys."""
    st = os.stat(key_file(S["acme"]))
    dest = key_file(S["acme"], ".next")
    with open(path) as f, open(dest, "w") as g:
        g.write(f.read())
    os.chmod(dest, 0o600)
    os.chown(dest, st.st_uid, st.st_gid)


def audits(action):
    return int(one("SELECT count(*) FROM audit_events WHERE action = '%s' AND resource_id = '%s'"
                   % (action, S["acme"])))


# ---- cases ----

def setup():
    wait_for("workers up", lambda: cw.all_running(), timeout=60)
    wait_for("api ready", lambda: api.call("GET", "/ready")[0] == 200, timeout=60)
    S["admin"] = make_key(pg, "acct-admin", "admin")
    S["operator"] = make_key(pg, "acct-operator", "operator")
    S["viewer"] = make_key(pg, "acct-viewer", "viewer")
    S["team"] = made("/api/v1/teams", {"name": "acct"})
    S["owner"] = made("/api/v1/owners", {"name": "acct", "email": "acct@example.com", "team_id": S["team"]})
    S["local"] = made("/api/v1/issuers", {"name": "acct-local", "type": "Local"})
    S["policy"] = made("/api/v1/renewal-policies", {"name": "acct", "max_retries": 0})
    S["profile"] = made("/api/v1/profiles", {"name": "acct-any", "allowed_key_algorithms": [
        {"algorithm": "ECDSA", "min_size": 256}]})
    config = {"directory_url": pebble.directory_url, "contact_email": "pki@example.com",
              "challenge_type": "http-01", "trust_anchors_pem": pebble.ca_pem()}
    S["acme"] = made("/api/v1/issuers", {"name": "acct-pebble", "type": "ACME", "config": config})
    S["fresh"] = made("/api/v1/issuers", {"name": "acct-fresh", "type": "ACME", "config": config})
    S["cert"] = certificate("acct")
    renews(S["cert"], "the first order")
    a = account()
    check(a["status"] == "valid" and a["account_url"].startswith("https://127.0.0.1:%d/" % pebble.port) and
          a["account_key_algorithm"] == "ES256" and a["actions"] == [] and
          a["key_thumbprint"] == thumbprint(jwk_of(key_file(S["acme"]))), "the account: %r" % a)
    S["account_url"] = a["account_url"]


def api_errors():
    """Refusals, each audited as a failed request; nothing is queued."""
    base = "/api/v1/issuers/%s/acme/"
    for issuer, code in (("iss-no-such", 404), (S["local"], 422), (S["fresh"], 409)):
        for what in ("key-rollover", "deactivate"):
            got, ans = call("POST", base % issuer + what, {})
            check(got == code and ans.get("status") == code, "POST %s for %s: %r" % (what, issuer, (got, ans)))
    check(call("POST", base % S["fresh"] + "deactivate", {})[1]["detail"].startswith(
        "the issuer has no valid ACME account"), "the 409's detail")
    for issuer in ("iss-no-such", S["local"], S["fresh"], "..%2F..%2Fetc"):
        got, ans = call("GET", base % issuer + "account")
        check(got == 404, "GET account of %s: %r" % (issuer, (got, ans)))
    for body, field in (({"account_key_algorithm": "HS256"}, "account_key_algorithm"),
                        ({"account_key_algorithm": 256}, "account_key_algorithm"),
                        ({"account_key_algorithm": "ES256", "extra": 1}, "extra"),
                        ('{"account_key_algorithm": "ES256", "account_key_algorithm": "ES384"}', None),
                        ("[]", None), ("{", None), ('"ES256"', None)):
        got, ans = call("POST", base % S["acme"] + "key-rollover", body)
        check(got == 400 and (field is None or ans.get("field") == field), "body %r: %r" % (body, (got, ans)))
    got, ans = call("POST", base % S["acme"] + "deactivate", {"account_key_algorithm": "ES256"})
    check(got == 400 and ans.get("field") == "account_key_algorithm", "deactivate with a member: %r" % ((got, ans),))
    big = os.path.join(S["dir"], "big.json")
    with open(big, "w") as f:
        f.write('{"account_key_algorithm": "%s"}' % ("E" * (2 << 20)))
    got = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                          os.path.join(cw.state, "tls", "api.crt"), "-H", "Authorization: Bearer " + S["admin"],
                          "--data-binary", "@" + big, "https://127.0.0.1:%d%s" % (cw.api_port, base % S["acme"] +
                                                                                  "key-rollover")],
                         capture_output=True, text=True, timeout=30).stdout
    check(got == "413", "a 2 MiB body: %r" % got)
    for role in ("operator", "viewer"):
        for what in ("key-rollover", "deactivate"):
            got, _ = call("POST", base % S["acme"] + what, {}, key=S[role])
            check(got == 403, "%s may not %s: %r" % (role, what, got))
    check(call("GET", base % S["acme"] + "account", key=S["viewer"])[0] == 200, "a viewer reads the account")
    check(api.call("GET", base % S["acme"] + "account")[0] == 401, "no key")
    for action_id in ("1", "999999999999999999", "0x10", "-1", "1234567890123456789", "abc"):
        got, _ = call("GET", base % S["acme"] + "actions/" + action_id)
        check(got == 404, "action %s: %r" % (action_id, got))
    check(one("SELECT count(*) FROM acme_account_actions") == "0", "a refused request queued an action")
    check(int(one("SELECT count(*) FROM audit_events WHERE action = 'request.failed' AND details::text LIKE "
                  "'%%/acme/%%'")) >= 10, "the refusals are not audited")


def key_rollover():
    old_file = os.path.join(S["dir"], "k1.pem")
    with open(key_file(S["acme"])) as f, open(old_file, "w") as g:
        g.write(f.read())
    before = account()
    a = requested("key-rollover", {"account_key_algorithm": "ES384"})
    check(a["action"] == "keychange" and a["account_key_algorithm"] == "ES384" and
          a["old_thumbprint"] == before["key_thumbprint"], "the action: %r" % a)
    a = action_ended(a)
    check(a["status"] == "done" and a["error"] is None and a["new_thumbprint"] not in (None, a["old_thumbprint"]),
          "the rollover: %r" % a)
    now = account()
    new_jwk = jwk_of(key_file(S["acme"]))
    check(now["key_thumbprint"] == a["new_thumbprint"] == thumbprint(new_jwk) and new_jwk["crv"] == "P-384" and
          now["account_key_algorithm"] == "ES384" and now["account_url"] == S["account_url"] and
          now["actions"][0]["id"] == a["id"], "the account after the rollover: %r" % now)
    check(not os.path.exists(key_file(S["acme"], ".next")), "a pending key left behind")
    check(call("GET", "/api/v1/issuers/" + S["acme"])[1]["config"]["account_key_algorithm"] == "ES384",
          "the issuer's account_key_algorithm")
    check(audits("acme_account.key_rollover") == 1 and audits("acme_accounts.key_rollover") == 1 and
          audits("acme_account_actions.finish") == 1, "the audit trail of the rollover")
    check(one("SELECT actor FROM audit_events WHERE action = 'acme_account.key_rollover'") ==
          one("SELECT id FROM api_keys WHERE name = 'acct-admin'"), "who asked, in the audit trail")
    # the CA: the old key is no more the account's, the new one orders
    code, ans = pebble_post(old_file, S["account_url"], None, S["account_url"])
    check(code >= 400 and "urn:ietf:params:acme:error:" in ans.get("type", ""), "the old key at pebble: %r" %
          ((code, ans),))
    renews(S["cert"], "with the new key")
    check(account()["key_thumbprint"] == now["key_thumbprint"], "the renewal changed the account key")


def pending_key_taken_by_ca():
    """The CA took a pending key, the commit never happened (the signer
    restarted): the next run finds the account key unknown to the CA and
    the pending one known, and makes it the account key."""
    pending = os.path.join(S["dir"], "k3.pem")
    new_key(pending, "P-256")
    plant_pending(pending)
    url = pebble.directory()["keyChange"]
    inner = jws(pending, url, {"account": S["account_url"], "oldKey": jwk_of(key_file(S["acme"]))})
    code, ans = pebble_post(key_file(S["acme"]), url, inner, S["account_url"])
    check(code == 200, "keyChange at pebble: %r" % ((code, ans),))
    restart_signer()
    renews(S["cert"], "after a rollover left pending")
    a = account()
    check(a["key_thumbprint"] == thumbprint(jwk_of(pending)) and a["account_key_algorithm"] == "ES256" and
          a["account_url"] == S["account_url"], "the account: %r" % a)
    check(not os.path.exists(key_file(S["acme"], ".next")) and jwk_of(key_file(S["acme"])) == jwk_of(pending),
          "the pending key is not the account key")
    check(audits("acme_accounts.key_rollover") == 2, "the settled rollover is not audited")


def pending_key_never_taken():
    """A pending key the CA never saw is discarded by the next run; the
    account key stays."""
    kept = jwk_of(key_file(S["acme"]))
    stray = os.path.join(S["dir"], "k4.pem")
    new_key(stray, "P-256")
    plant_pending(stray)
    restart_signer()
    renews(S["cert"], "with a stray pending key")
    check(not os.path.exists(key_file(S["acme"], ".next")) and jwk_of(key_file(S["acme"])) == kept and
          account()["key_thumbprint"] == thumbprint(kept), "the stray pending key was not discarded")
    with open(os.path.join(cw.logs, "scheduler.log"), errors="replace") as f:
        check("the CA never took" in f.read(), "the discard is not logged")


def deactivation():
    key = key_file(S["acme"])
    retired_copy = os.path.join(S["dir"], "deactivated.pem")
    with open(key) as f, open(retired_copy, "w") as g:
        g.write(f.read())
    a = action_ended(requested("deactivate"))
    check(a["status"] == "done" and a["action"] == "deactivate" and a["account_key_algorithm"] is None,
          "the deactivation: %r" % a)
    gone = account()
    check(gone["status"] == "deactivated" and gone["account_url"] == S["account_url"], "the row: %r" % gone)
    retired = [n for n in os.listdir(key_dir()) if n.startswith(S["acme"] + ".key.deactivated.")]
    check(len(retired) == 1 and not os.path.exists(key) and
          jwk_of(os.path.join(key_dir(), retired[0])) == jwk_of(retired_copy), "the key file: %r" % retired)
    code, ans = pebble_post(retired_copy, S["account_url"], None, S["account_url"])
    check(code in (401, 403) and ans["type"] == "urn:ietf:params:acme:error:unauthorized",
          "pebble's account after the deactivation: %r" % ((code, ans),))
    check(audits("acme_accounts.deactivate") == 1, "the deactivation is not audited")
    code, ans = call("POST", "/api/v1/issuers/%s/acme/key-rollover" % S["acme"], {})
    check(code == 409, "a rollover of a deactivated account: %r" % ((code, ans),))
    renews(S["cert"], "after the deactivation")
    a = account()
    check(a["status"] == "valid" and a["account_url"] != S["account_url"] and os.path.exists(key) and
          a["key_thumbprint"] == thumbprint(jwk_of(key)) and a["key_thumbprint"] != gone["key_thumbprint"],
          "the new account: %r" % a)
    S["account_url"] = a["account_url"]


def ca_refusal():
    """pebble deactivates the account behind certward's back: a rollover
    fails with pebble's own problem and leaves no pending key; a
    deactivation counts the CA's unauthorized as done."""
    code, ans = pebble_post(key_file(S["acme"]), S["account_url"], {"status": "deactivated"}, S["account_url"])
    check(code == 200 and ans["status"] == "deactivated", "deactivating at pebble: %r" % ((code, ans),))
    a = action_ended(requested("key-rollover"))
    check(a["status"] == "failed" and a["attempts"] == 1 and
          "urn:ietf:params:acme:error:unauthorized" in a["error"] and "deactivated" in a["error"],
          "the refused rollover: %r" % a)
    check(not os.path.exists(key_file(S["acme"], ".next")), "the refused rollover left its pending key")
    a = action_ended(requested("deactivate"))
    check(a["status"] == "done" and account()["status"] == "deactivated" and
          not os.path.exists(key_file(S["acme"])), "the deactivation of a deactivated account: %r" % a)
    renews(S["cert"], "after the CA's deactivation")


def ca_unreachable():
    """The CA away: the action waits for its next attempt with the error;
    another is refused meanwhile (409)."""
    pebble.stop()
    a = requested("key-rollover")
    a = wait_for("a failed attempt", lambda: (lambda x: x if x["attempts"] == 1 and x["status"] == "pending"
                                              else None)(call("GET", "/api/v1/issuers/%s/acme/actions/%d"
                                                              % (S["acme"], a["id"]))[1]), timeout=60)
    check(a["error"] and str(pebble.port) in a["error"] and a["next_attempt_at"], "the pending action: %r" % a)
    code, ans = call("POST", "/api/v1/issuers/%s/acme/deactivate" % S["acme"], {})
    check(code == 409 and ("action %d" % a["id"]) in ans["detail"], "a second action: %r" % ((code, ans),))
    m = cw.metrics("scheduler")
    check(m.get("scheduler_acme_account_actions_retried_total") == 1 and
          m.get("scheduler_acme_account_actions_done_total") == 3 and
          m.get("scheduler_acme_account_actions_failed_total") == 1, "metrics: %r" %
          {k: v for k, v in m.items() if "account_actions" in k})


def main():
    global root, pg, cw, api, pebble
    root = make_root("cw-acme-acct-")
    S["dir"] = os.path.join(root, "work")
    os.makedirs(S["dir"])
    plain = free_port()
    pg = Postgres(root, free_port())
    pebble = Pebble(os.path.join(root, "pebble"), http_port=plain)
    cw = Certward(root, pg.dsn, api_extra="  plain_listen: 127.0.0.1:%d\n" % plain,
                  extra="scheduler:\n  dispatch_interval: 200ms\n  acme_account_interval: 300ms\n")
    api = Api(cw)
    try:
        cw.start()
        case(setup)
        case(api_errors)
        case(key_rollover)
        case(pending_key_taken_by_ca)
        case(pending_key_never_taken)
        case(deactivation)
        case(ca_refusal)
        case(ca_unreachable)
        RUN.stop_clean(cw)
    finally:
        pebble.stop()
        teardown(cw, pg, root)
    RUN.finish()


if __name__ == "__main__":
    log("ACME account key rollover and deactivation against pebble")
    main()
