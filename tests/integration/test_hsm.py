"""The issuing CA's key on a PKCS#11 token (SoftHSM2), end to end: a token
made here, `certward ca init --backend pkcs11` making the key on it and a
self-signed CA certificate; certificates issued through the API verify
against that certificate, as do the CRL and the OCSP answers (openssl crl,
openssl ocsp -url); the key is sensitive and never extractable and in no
file of the signer's; a wrong PIN and a token taken away while serving make
the CA not ready (503, /ready names it, no PIN in any log) and it comes
back by itself once the PIN or the token is right again, while the api's
TLS, agent enrolment and OCSP go on."""
import os
import secrets
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, Api, Cases, Certward, Postgres, SoftHSM, check, enrol_agent, log, make_csr, make_key,
                     make_root, openssl, psql, teardown, wait_for)

RUN = Cases(lambda: cw)
case = RUN.case
S = {}
SUBJECT = "CN=HSM Test CA"


def cli(*args):
    return subprocess.run([os.path.join(BUILD, "certward")] + list(args), capture_output=True, text=True, timeout=120)


def signer_log():
    try:
        with open(os.path.join(cw.logs, "signer.log"), errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def signer_pid():
    st = cw.status()["signer"]
    check(st["state"] == "running", "the signer is not running: %r" % st)
    return st["pid"]


def ca_ready_metric():
    m = cw.metrics("signer")
    got = [v for k, v in m.items() if k.startswith("ca_ready") and 'ca="issuing"' in k]
    check(len(got) == 1, "ca_ready{ca=\"issuing\"} in the signer's metrics: %r" % m)
    return got[0]


def ready():
    """(status, the state /ready gives "ca issuing" or None)"""
    code, body = api.call("GET", "/ready")
    items = body.get("not_ready", []) if isinstance(body, dict) else []
    states = [i.get("state", "") for i in items if i.get("component") == "ca issuing"]
    return code, (states[0] if states else None)


def ca_not_ready():
    code, state = ready()
    return state if code == 503 and state else None


def ca_ready():
    return ready() == (200, None)


def pubkey_of_cert(path):
    return openssl("x509", "-in", path, "-noout", "-pubkey").stdout


def issue(name, client=None):
    """POST /api/v1/certificates with a CSR for name.example.com (through
    client, else the test's connection): (status, answer, path of the
    leaf's PEM or None)."""
    client = client or api
    fqdn = name + ".example.com"
    _, pem = make_csr(S["dir"], name, key_spec=("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                                                 "-addext", "subjectAltName=DNS:" + fqdn), subject="/CN=" + fqdn)
    body = {"name": name, "common_name": fqdn, "owner_id": S["owner"], "team_id": S["team"],
            "issuer_id": S["issuer"], "renewal_policy_id": S["policy"], "certificate_profile_id": S["profile"],
            "csr_pem": pem}
    code, ans = client.call("POST", "/api/v1/certificates", S["admin"], body)
    if code != 201:
        return code, ans, None
    code2, versions = client.call("GET", "/api/v1/certificates/%s/versions" % ans["id"], S["admin"])
    check(code2 == 200 and versions["total"] == 1, "versions of %s: %r" % (name, (code2, versions)))
    path = os.path.join(S["dir"], name + ".issued.pem")
    with open(path, "w") as f:
        f.write(versions["data"][0]["pem_chain"].split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")
    return code, ans, path


def issued(name):
    code, ans, path = issue(name)
    check(code == 201 and path, "issue %s: %r" % (name, (code, ans)))
    return ans, path


def refused(name, needle):
    """An issuance that must be refused with 503 as a problem whose detail
    holds needle; nothing recorded."""
    code, prob, _ = issue(name)
    check(code == 503 and "application/problem+json" in api.last_type and needle in prob.get("detail", ""),
          "issuance of %s: %r (%s)" % (name, (code, prob), api.last_type))
    check(psql(pg, "SELECT count(*) FROM managed_certificates WHERE name = '%s'" % name).strip() == "0",
          "a record of the refused %s" % name)
    return prob["detail"]


def verify_leaf(path):
    out = openssl("verify", "-CAfile", S["ca"], path, ok=False)
    check(out.returncode == 0 and out.stdout.strip().endswith(": OK"), "openssl verify: %s%s" % (out.stdout, out.stderr))


def crl():
    """The Local issuer's CRL as the API serves it, checked by openssl crl
    -verify against the token CA: its text."""
    code, headers, der = api.raw("GET", "/.well-known/pki/crl/" + S["issuer"])
    if code != 200:
        return None
    path = os.path.join(S["dir"], "crl.der")
    with open(path, "wb") as f:
        f.write(der)
    out = openssl("crl", "-inform", "DER", "-in", path, "-CAfile", S["ca"], "-verify", "-noout", "-text", ok=False)
    check(out.returncode == 0 and "verify OK" in out.stderr, "openssl crl -verify: %s" % out.stderr)
    return out.stdout


def serial_of(path):
    return openssl("x509", "-in", path, "-noout", "-serial").stdout.strip().split("=", 1)[1].upper()


def ocsp(leaf):
    """openssl ocsp asking the API's responder (-url) about leaf, the
    answer checked against the token CA: its output."""
    url = "https://127.0.0.1:%d/.well-known/pki/ocsp/%s" % (cw.api_port, S["issuer"])
    out = openssl("ocsp", "-issuer", S["ca"], "-CAfile", S["ca"], "-cert", leaf, "-url", url, ok=False)
    text = out.stdout + out.stderr
    check(out.returncode == 0 and "Response verify OK" in text, "openssl ocsp: %s" % text)
    return text


def no_pin_anywhere(*pins):
    """Neither PIN in a file under the log directory nor in certwardd's
    output."""
    files = [os.path.join(top, n) for top, _, names in os.walk(cw.logs) for n in names]
    files.append(os.path.join(cw.root, "certwardd.out"))
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        for pin in pins:
            check(pin.encode() not in data, "a PIN in %s" % path)


def token_ca():
    """`certward ca init --backend pkcs11` made a self-signed CA certificate
    (the given subject, CA:TRUE, certificate and CRL signing) for a key pair
    on the token whose public key is the certificate's; the signer starts
    with it: the CA ready, /ready 200."""
    ca = S["ca"]
    subject = openssl("x509", "-in", ca, "-noout", "-subject", "-nameopt", "RFC2253").stdout.strip()
    issuer = openssl("x509", "-in", ca, "-noout", "-issuer", "-nameopt", "RFC2253").stdout.strip()
    check(subject == "subject=" + SUBJECT and issuer == "issuer=" + SUBJECT, "names: %r %r" % (subject, issuer))
    verify_leaf(ca)
    text = openssl("x509", "-in", ca, "-noout", "-text").stdout
    check("CA:TRUE" in text and "Certificate Sign" in text and "CRL Sign" in text, "the CA certificate:\n" + text)
    rc, out = hsm.tool("--read-object", "--type", "pubkey", "--label", "certward-ca", "--output-file",
                       os.path.join(S["dir"], "token-pub.der"))
    check(rc == 0, "pkcs11-tool --read-object: " + out)
    token_pub = openssl("pkey", "-pubin", "-inform", "DER", "-in", os.path.join(S["dir"], "token-pub.der"),
                        "-pubout").stdout
    check(token_pub == pubkey_of_cert(ca), "the token's public key is not the certificate's")
    wait_for("all workers running", cw.all_running, timeout=60)
    wait_for("/ready 200", ca_ready, timeout=60)
    check("issuing CA ready" in signer_log(), "signer.log says nothing of the CA:\n" + signer_log()[-2000:])
    check(ca_ready_metric() == 1, "ca_ready metric")
    # what the issuance cases need
    S["admin"] = admin = make_key(pg, "hsm-admin", "admin")

    def post(path, body):
        code, obj = api.call("POST", path, admin, body)
        check(code == 201, "POST %s: %r" % (path, (code, obj)))
        return obj["id"]
    S["team"] = post("/api/v1/teams", {"name": "hsm"})
    S["owner"] = post("/api/v1/owners", {"name": "HSM", "email": "hsm@example.com", "team_id": S["team"]})
    S["issuer"] = post("/api/v1/issuers", {"name": "hsm-local", "type": "Local"})
    S["policy"] = post("/api/v1/renewal-policies", {"name": "hsm", "max_retries": 1})
    S["profile"] = post("/api/v1/profiles", {"name": "hsm-web", "allowed_key_algorithms": [
        {"algorithm": "ECDSA", "min_size": 256}], "required_san_patterns": ["*.example.com"]})


def issuance_crl_ocsp():
    """A certificate issued through the API is the token CA's (openssl
    verify, its issuer); the CRL verifies against the token CA, before and
    after a revocation (then listing the serial); OCSP through -url: good,
    then revoked."""
    signed = cw.metrics("signer").get("pkcs11_signatures_total", 0)
    cert, leaf = issued("hsm-one")
    verify_leaf(leaf)
    issuer = openssl("x509", "-in", leaf, "-noout", "-issuer", "-nameopt", "RFC2253").stdout.strip()
    check(issuer == "issuer=" + SUBJECT, "the leaf's issuer: %r" % issuer)
    aki = openssl("x509", "-in", leaf, "-noout", "-ext", "authorityKeyIdentifier").stdout
    ski = openssl("x509", "-in", S["ca"], "-noout", "-ext", "subjectKeyIdentifier").stdout.split("\n", 1)[-1].strip()
    check(ski and ski in aki, "the leaf's AKI %r is not the CA's SKI %r" % (aki, ski))
    check(cw.metrics("signer").get("pkcs11_signatures_total", 0) > signed, "the token made no signature")
    S["leaf"] = leaf
    serial = serial_of(leaf)
    text = wait_for("a CRL for the Local issuer", crl, timeout=30)
    check("Serial Number: " + serial not in text, "a CRL lists the serial before its revocation")
    out = ocsp(leaf)
    check(leaf + ": good" in out, "OCSP before revocation: " + out)

    code, _ = api.call("POST", "/api/v1/certificates/%s/revoke" % cert["id"], S["admin"], {"reason": "key_compromise"})
    check(code == 200, "revoke: %r" % code)
    text = wait_for("the revoked serial in the CRL",
                    lambda: (lambda t: t if t and "Serial Number: " + serial in t else None)(crl()), timeout=30)
    check("Key Compromise" in text, "the CRL entry's reason:\n" + text)
    out = wait_for("OCSP says revoked", lambda: (lambda t: t if leaf + ": revoked" in t else None)(ocsp(leaf)),
                   timeout=15)
    check("Reason: keyCompromise" in out, "OCSP after revocation: " + out)
    S["revoked"] = leaf
    S["good"] = issued("hsm-two")[1]


def concurrent_issuance():
    """Sixteen issuances at once, over separate connections: each is
    signed on the token (two sessions, the signer's thread pool), each
    verifies, no serial twice, and the token made a signature for each."""
    import concurrent.futures
    import threading
    signed = cw.metrics("signer").get("pkcs11_signatures_total", 0)
    local = threading.local()

    def one(i):
        if not hasattr(local, "api"):
            local.api = Api(cw)
        code, ans, path = issue("hsm-many-%d" % i, local.api)
        check(code == 201 and path, "issuance %d at once: %r" % (i, (code, ans)))
        return path

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        paths = list(pool.map(one, range(16)))
    serials = set()
    for path in paths:
        verify_leaf(path)
        serials.add(serial_of(path))
    check(len(serials) == 16, "serials issued at once: %d distinct of 16" % len(serials))
    made = cw.metrics("signer").get("pkcs11_signatures_total", 0) - signed
    check(made >= 16, "the token made %d signatures for 16 certificates" % made)


def key_stays_on_token():
    """pkcs11-tool: the CA's private key is sensitive, always sensitive and
    never extractable; no file of the signer's holds it (no PEM private key
    whose public key is the CA certificate's, no ca/issuing.key or
    ca/root.key)."""
    rc, out = hsm.tool("--list-objects", "--type", "privkey")
    check(rc == 0, "pkcs11-tool --list-objects: " + out)
    objects = [o for o in out.split("Private Key Object")[1:]]
    check(len(objects) == 1 and "certward-ca" in objects[0], "private keys on the token: %s" % out)
    access = [l.split(":", 1)[1] for l in objects[0].splitlines() if l.strip().startswith("Access:")]
    check(len(access) == 1, "no Access: line: %s" % out)
    flags = [a.strip() for a in access[0].split(",")]
    check("sensitive" in flags and "always sensitive" in flags and "never extractable" in flags
          and "extractable" not in flags, "the key's access: %r" % flags)
    usage = [l for l in objects[0].splitlines() if l.strip().startswith("Usage:")]
    check(usage and "sign" in usage[0] and "decrypt" not in usage[0], "the key's usage: %r" % usage)

    ca_pub = pubkey_of_cert(S["ca"])
    keys = 0
    for top, _, names in os.walk(cw.root):
        for n in names:
            path = os.path.join(top, n)
            if not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                data = f.read()
            if b"PRIVATE KEY-----" not in data:
                continue
            out = openssl("pkey", "-in", path, "-pubout", ok=False)
            check(out.returncode == 0, "a private key openssl cannot read: %s: %s" % (path, out.stderr))
            check(out.stdout != ca_pub, "the CA's private key is in %s" % path)
            keys += 1
    check(keys >= 2, "only %d private keys under %s: the api's TLS key and the agent CA's are missing" % (keys, cw.root))
    for name in ("issuing.key", "root.key"):
        check(not os.path.exists(os.path.join(cw.state, "signer", "ca", name)), "ca/%s exists" % name)


def wrong_pin():
    """The signer restarted with a wrong PIN in the PIN file: it runs, the
    CA is not ready (/ready 503 naming ca issuing with CKR_PIN_INCORRECT;
    issuance 503 "the issuing CA is not ready"); the refused PIN is not
    tried again; no PIN in a log; the right PIN written to the file: ready
    again and issuing, without a restart."""
    wrong = "".join(secrets.choice("0123456789") for _ in range(16))
    hsm.write_pin(wrong)
    before = signer_pid()
    mark = len(signer_log())
    cw.ctl("restart", "signer")
    wait_for("the signer restarted", lambda: cw.status()["signer"]["state"] == "running"
             and cw.status()["signer"]["pid"] != before, timeout=30)
    pid, restarts = signer_pid(), cw.status()["signer"]["restarts"]
    state = wait_for("/ready naming ca issuing", ca_not_ready, timeout=30)
    check("C_Login" in state and "CKR_PIN_INCORRECT" in state, "/ready: %r" % state)
    log("  /ready with a wrong PIN: ca issuing %r" % state)
    detail = refused("hsm-pin", "the issuing CA is not ready")
    check(detail.startswith("the issuing CA is not ready: ") and "CKR_PIN_INCORRECT" in detail, "detail: %r" % detail)
    check(ca_ready_metric() == 0, "ca_ready metric with the PIN refused")
    time.sleep(2.5)  # two retry intervals: a refused PIN is not sent to the token again
    lines = [l for l in signer_log()[mark:].splitlines() if "issuing CA not ready" in l]
    check(len(lines) == 1 and "CKR_PIN_INCORRECT" in lines[0], "signer.log: %r" % lines)
    check(signer_pid() == pid and cw.status()["signer"]["restarts"] == restarts, "the signer restarted: %r"
          % cw.status())
    no_pin_anywhere(wrong, hsm.pin)

    hsm.write_pin(hsm.pin)
    wait_for("/ready 200 with the right PIN", ca_ready, timeout=10)
    _, leaf = issued("hsm-pin")
    verify_leaf(leaf)
    check(signer_pid() == pid, "the signer restarted")
    check("issuing CA ready" in signer_log()[mark:], "signer.log: %s" % signer_log()[mark:][-2000:])
    check(ca_ready_metric() == 1, "ca_ready metric")
    no_pin_anywhere(wrong, hsm.pin)


def pin_file_open_to_others():
    """A PIN file others can read is not used (the CA not ready, naming
    it, issuance 503); made 0600, it is, without a restart."""
    hsm.write_pin(hsm.pin, mode=0o644)
    before = signer_pid()
    cw.ctl("restart", "signer")
    wait_for("the signer restarted", lambda: cw.status()["signer"]["state"] == "running"
             and cw.status()["signer"]["pid"] != before, timeout=30)
    pid = signer_pid()
    state = wait_for("/ready naming the PIN file", ca_not_ready, timeout=30)
    check("readable by others" in state and hsm.pin_file in state, "/ready: %r" % state)
    check("readable by others" in refused("hsm-open-pin", "the issuing CA is not ready: "), "detail")
    os.chmod(hsm.pin_file, 0o600)
    wait_for("/ready 200 with the PIN file 0600", ca_ready, timeout=10)
    verify_leaf(issued("hsm-closed-pin")[1])
    check(signer_pid() == pid, "the signer restarted")
    no_pin_anywhere(hsm.pin)


def token_away():
    """The token's directory moved away while serving: issuance 503 naming
    the token's failure, the signer still running (same pid), /ready 503
    naming ca issuing; the api's TLS, agent enrolment (the agent identity
    CA) and OCSP go on; the token moved back: ready and issuing again,
    without a restart."""
    tok = hsm.token_dir()
    away = os.path.join(hsm.dir, "token.away")
    pid, restarts = signer_pid(), cw.status()["signer"]["restarts"]
    mark = len(signer_log())
    os.rename(tok, away)
    try:
        code, prob, _ = issue("hsm-gone")
        check(code == 503 and "application/problem+json" in api.last_type, "issuance without the token: %r"
              % ((code, prob),))
        detail = prob.get("detail", "")
        log("  issuance with the token away: %r" % detail)
        check("issuing CA" in detail and "CKR_" in detail, "detail: %r" % detail)
        check(signer_pid() == pid, "the signer restarted")
        state = wait_for("/ready naming ca issuing", ca_not_ready, timeout=15)
        log("  /ready with the token away: ca issuing %r" % state)
        check("CKR_" in state or "no token" in state, "/ready: %r" % state)
        check(refused("hsm-gone2", "the issuing CA is not ready: ").startswith("the issuing CA is not ready: "),
              "detail")
        check(ca_ready_metric() == 0, "ca_ready metric without the token")
        # what does not need the token: a new TLS connection to the api
        # (its key is the signer's), an agent's identity, OCSP answers
        fresh = Api(cw)
        code, _ = fresh.call("GET", "/api/v1/auth/check", S["admin"])
        check(code == 200, "a new connection to the api: %r" % code)
        agent_id, crt, key, _ = enrol_agent(fresh, S["admin"], "hsm-agent", S["dir"])
        out = openssl("verify", "-CAfile", os.path.join(cw.state, "tls", "agent-ca.crt"), crt, ok=False)
        check(out.returncode == 0, "the agent's identity: %s%s" % (out.stdout, out.stderr))
        check(S["revoked"] + ": revoked" in ocsp(S["revoked"]), "OCSP for the revoked certificate")
        check(S["good"] + ": good" in ocsp(S["good"]), "OCSP for a good certificate")
        check(signer_pid() == pid, "the signer restarted")
    finally:
        if os.path.exists(away):
            os.rename(away, tok)
    wait_for("/ready 200 with the token back", ca_ready, timeout=15)
    _, leaf = issued("hsm-back")
    verify_leaf(leaf)
    check(signer_pid() == pid and cw.status()["signer"]["restarts"] == restarts, "the signer restarted")
    text = signer_log()[mark:]
    check("issuing CA not ready" in text and "issuing CA ready" in text, "signer.log: %s" % text[-2000:])
    check(ca_ready_metric() == 1, "ca_ready metric")


root = make_root("cw-hsm-")
pg = cw = None
try:
    pg = Postgres(root, 16300 + os.getpid() % 90)
    hsm = SoftHSM(os.path.join(root, "hsm"), label="cw-hsm")
    S["dir"] = os.path.join(root, "work")
    os.makedirs(S["dir"])
    S["ca"] = os.path.join(hsm.dir, "ca.crt")
    os.makedirs(os.path.join(root, "main"))
    os.chmod(os.path.join(root, "main"), 0o755)
    cw = Certward(os.path.join(root, "main"), pg.dsn, extra=hsm.signer_config(S["ca"]))
    init = cli("ca", "init", "--backend", "pkcs11", "-c", cw.config, "--subject", SUBJECT)
    check(init.returncode == 0, "certward ca init: %d\n%s%s" % (init.returncode, init.stdout, init.stderr))
    check(hsm.pin not in init.stdout + init.stderr, "certward ca init printed the PIN")
    hsm.give()
    cw.start()
    api = Api(cw)
    case(token_ca)
    case(issuance_crl_ocsp)
    case(concurrent_issuance)
    case(key_stays_on_token)
    case(wrong_pin)
    case(pin_file_open_to_others)
    case(token_away)
    no_pin_anywhere(hsm.pin)
    RUN.stop_clean(cw)
finally:
    teardown(cw, pg, root)
RUN.finish()
