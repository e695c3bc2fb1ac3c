"""The api's rules for an ACME issuer's config (POST and PUT /api/v1/issuers)
through real HTTPS against a real certwardd and PostgreSQL: each rule
refused with 422 naming config.<member> and nothing written; a full valid
config (and the bounds) accepted; an update sending only config checked
against the stored type, one sending only the type against the stored
config; other types untouched; the secret eab_hmac_key sealed, shown
redacted, kept when sent back redacted, and never echoed by a refusal or
written to a log."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Api, Cases, Certward, Postgres, check, free_port, make_key, make_root, psql, teardown, wait_for

RUN = Cases(lambda: cw)
case = RUN.case
S = {}
SECRET = "c2VjcmV0LWVhYi1rZXktdGhhdC1tdXN0LW5vdC1sZWFr"


def call(method, path, body=None, key="admin"):
    return api.call(method, path, S[key], body)


def count_issuers():
    return int(psql(pg, "SELECT count(*) FROM issuers").strip())


def cert_pem(name):
    d = os.path.join(root, "certs")
    os.makedirs(d, exist_ok=True)
    key, crt = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", crt, "-subj", "/CN=" + name, "-days", "30"],
                   check=True, capture_output=True, timeout=60)
    with open(crt) as f, open(key) as k:
        return f.read(), k.read()


def base(**extra):
    cfg = {"directory_url": "https://acme.example/directory"}
    cfg.update(extra)
    return cfg


def refused(body, member, path="/api/v1/issuers", method="POST", needle=None):
    before = count_issuers()
    code, e = call(method, path, body)
    check(code == 422 and isinstance(e, dict) and e.get("field") == "config." + member and
          ("config." + member) in e.get("detail", "") and (needle is None or needle in e["detail"]),
          "%s %r: expected 422 naming config.%s, got %r" % (method, body, member, (code, e)))
    check(SECRET not in str(e), "a refusal quotes the secret: %r" % e)
    check(count_issuers() == before, "a refused body wrote an issuer")
    return e


def setup():
    wait_for("api ready", lambda: cw.all_running() and api.call("GET", "/ready")[0] == 200, timeout=60)
    S["admin"] = make_key(pg, "acfg-admin", "admin")
    S["viewer"] = make_key(pg, "acfg-viewer", "viewer")
    S["pem"], S["key_pem"] = cert_pem("internal-acme-root")


def each_rule_refused():
    """One bad value per member (and the rules between members): 422 with
    field config.<member>, the member in the detail, nothing written."""
    acme = lambda cfg: {"name": "bad", "type": "ACME", "config": cfg}
    refused({"name": "bad", "type": "ACME"}, "directory_url", needle="required")
    refused(acme({}), "directory_url", needle="required")
    refused(acme({"directory_url": None}), "directory_url")
    for bad in ("http://acme.example/directory", "https://user:pw@acme.example/dir", "HTTPS://acme.example/dir",
                "https://", "https://acme example/dir", "ftp://acme.example/", 5, ["https://acme.example/"],
                "https://acme.example/" + "d" * 2048):
        refused(acme({"directory_url": bad}), "directory_url")
    for bad in ("not-an-email", "a@b", "pki@example.com\n", 7):
        refused(acme(base(contact_email=bad)), "contact_email")
    for bad in ("tls-alpn-01", "HTTP-01", "", 1):
        refused(acme(base(challenge_type=bad)), "challenge_type")
    for bad in ("EdDSA", "es256", "HS256", ""):
        refused(acme(base(account_key_algorithm=bad)), "account_key_algorithm")
    for bad in ("", "short lived", "p" * 65, "tab\there", 3):
        refused(acme(base(profile=bad)), "profile")
    garbage = "-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGUgYXQgYWxs\n-----END CERTIFICATE-----\n"
    for bad, what in (("not PEM at all", "text"), (garbage, "a PEM block that does not parse"),
                      (S["key_pem"], "a private key alone"), ("", "empty"),
                      (S["pem"] + "#" * (32768 - len(S["pem"]) + 1), "over 32 KiB"), (["x"], "an array")):
        e = refused(acme(base(trust_anchors_pem=bad)), "trust_anchors_pem")
        check("PRIVATE KEY" not in str(e), "%s: the refusal quotes the PEM" % what)
    for bad in ("x" * 256, "", "Root\nX1", "Root\x7fX1", 1):
        refused(acme(base(preferred_chain=bad)), "preferred_chain")
    for bad in ("../bin/sh", "Cloudflare", "x" * 65, "", "a b", "a/b", 9):
        refused(acme(base(dns_hook=bad)), "dns_hook")
    for bad in ("127.0.0.1:53", ["127.0.0.1:%d" % (5300 + i) for i in range(9)], ["127.0.0.1"], ["localhost:53"],
                ["::1:53"], ["[::1]"], ["127.0.0.1:0"], ["127.0.0.1:65536"], ["127.0.0.1: 53"], ["127.0.0.1:+53"],
                ["[127.0.0.1]:53"], ["300.0.0.1:53"], [53], [""], {"a": "127.0.0.1:53"}):
        refused(acme(base(dns_resolvers=bad)), "dns_resolvers")
    for bad in (0, 3601, -1, "30", 1.5, True):
        refused(acme(base(dns_propagation_timeout_seconds=bad)), "dns_propagation_timeout_seconds")
    for bad in ("k" * 256, "kid one", "", 12):
        refused(acme(base(eab_key_id=bad, eab_hmac_key=SECRET)), "eab_key_id")
    refused(acme(base(eab_key_id="kid-1")), "eab_hmac_key", needle="go together")
    refused(acme(base(eab_hmac_key=SECRET)), "eab_key_id", needle="go together")
    refused(acme(base(eab_key_id="kid-1", eab_hmac_key="")), "eab_hmac_key")
    refused(acme(base(challenge_type="dns-01")), "dns_hook", needle="required")
    refused(acme(base(challenge_type="dns-persist-01")), "dns_hook", needle="required")
    # unknown members, named (a secret-like one without its value)
    refused(acme(base(api_token=SECRET)), "api_token", needle="not a setting")
    refused(acme(base(eab_kid="kid-1")), "eab_kid", needle="not a setting")
    refused(acme(base(directory="https://acme.example/")), "directory", needle="not a setting")
    long_name = "m" * 300
    code, e = call("POST", "/api/v1/issuers", acme(base(**{long_name: 1})))
    check(code == 422 and e["field"].startswith("config.mmmm") and len(e["field"]) < 64 and
          len(e["detail"]) < 500, "an oversize member name: %r" % ((code, e),))
    code, e = call("POST", "/api/v1/issuers", acme(base(**{"d\u00e9j\u00e0": 1})))
    check(code == 422 and e["field"] == "config.d\u00e9j\u00e0", "a non-ASCII member name: %r" % ((code, e),))
    code, e = call("POST", "/api/v1/issuers", acme(base(**{"\u00e9" * 100: 1})))
    check(code == 422 and e["field"] == "config." + "\u00e9" * 28, "a long non-ASCII member name: %r" % ((code, e),))
    # the catalogue's own checks still come first (400)
    code, e = call("POST", "/api/v1/issuers", {"name": "bad", "type": "ACME", "config": ["x"]})
    check(code == 400 and e["field"] == "config", "config not an object: %r" % ((code, e),))
    # the refusals are problem documents
    status, headers, _ = api.raw("POST", "/api/v1/issuers", '{"name":"bad","type":"ACME","config":{}}',
                                 {"Authorization": "Bearer " + S["admin"], "Content-Type": "application/json"})
    check(status == 422 and headers.get("content-type", "").startswith("application/problem+json"),
          "content type: %r" % ((status, headers),))


def full_config_accepted():
    """Every member at once, at its bounds, accepted as sent; the secret
    sealed and shown redacted; null as not set."""
    bundle = S["pem"]
    while len(bundle) + len(S["pem"]) <= 32768:
        bundle += S["pem"]
    cfg = {
        "directory_url": "https://[::1]:14000/dir?x=1",
        "contact_email": "pki@example.com",
        "challenge_type": "dns-persist-01",
        "profile": "p" * 64,
        "account_key_algorithm": "RS256",
        "trust_anchors_pem": bundle,
        "preferred_chain": "\u00c9" + "R" * 253,
        "dns_hook": "cloud_flare-1",
        "dns_resolvers": ["127.0.0.1:53", "[::1]:8053"] + ["10.0.0.%d:53" % i for i in range(6)],
        "dns_propagation_timeout_seconds": 3600,
        "eab_key_id": "k" * 255,
        "eab_hmac_key": SECRET,
    }
    code, i = call("POST", "/api/v1/issuers", {"name": "acme-full", "type": "ACME", "config": cfg})
    check(code == 201, "the full config: %r" % ((code, i),))
    check(i["config"] == dict(cfg, eab_hmac_key="********"), "as stored: %r" % i["config"])
    code, got = call("GET", "/api/v1/issuers/" + i["id"], key="viewer")
    check(code == 200 and got["config"]["eab_hmac_key"] == "********" and SECRET not in str(got), "GET: %r" % got)
    check(SECRET not in psql(pg, "SELECT config::text || encode(secret_config, 'escape') FROM issuers"),
          "the secret in the clear in the database")
    S["full"] = i["id"]
    for n, extra in (("acme-min", {}), ("acme-low", {"dns_propagation_timeout_seconds": 1, "dns_resolvers": [],
                                                     "profile": "x", "challenge_type": "http-01",
                                                     "account_key_algorithm": "ES384"}),
                     ("acme-nulls", {"profile": None, "contact_email": None, "trust_anchors_pem": None,
                                     "eab_key_id": None}),
                     ("acme-dns", {"challenge_type": "dns-01", "dns_hook": "nsupdate",
                                   "trust_anchors_pem": S["pem"], "account_key_algorithm": "ES256"})):
        code, got = call("POST", "/api/v1/issuers", {"name": n, "type": "ACME", "config": base(**extra)})
        check(code == 201, "%s: %r" % (n, (code, got)))


def updates():
    """PUT: config alone is checked against the stored type, the type
    alone against the stored config; other types take any config; sent
    back as read (the secret redacted) it passes and keeps the secret."""
    full = S["full"]
    path = "/api/v1/issuers/" + full
    code, got = call("GET", path)
    check(code == 200, "GET: %r" % code)
    code, u = call("PUT", path, {"config": dict(got["config"], contact_email="ops@example.com")})
    check(code == 200 and u["config"]["contact_email"] == "ops@example.com" and
          u["config"]["eab_hmac_key"] == "********", "sent back as read: %r" % ((code, u),))
    check(psql(pg, "SELECT secret_config IS NOT NULL FROM issuers WHERE id = '%s'" % full).strip() == "t",
          "the secret was dropped")
    refused({"config": {"contact_email": "ops@example.com"}}, "directory_url", path, "PUT")
    refused({"config": dict(got["config"], dns_propagation_timeout_seconds=0)}, "dns_propagation_timeout_seconds",
            path, "PUT")
    refused({"name": "renamed", "config": base(challenge_type="dns-01")}, "dns_hook", path, "PUT")
    check(call("GET", path)[1]["name"] == "acme-full", "a refused update changed the name")
    check(call("PUT", path, {"enabled": False})[0] == 200, "an update without config")
    check(call("PUT", path, {"type": "ACME"})[0] == 200, "the type alone, the stored config valid")
    # another type: no rules; moving to ACME checks the stored config
    code, g = call("POST", "/api/v1/issuers", {"name": "generic", "type": "GenericCA",
                                               "config": {"url": "http://ca.example"}})
    check(code == 201, "GenericCA: %r" % ((code, g),))
    refused({"type": "ACME"}, "url", "/api/v1/issuers/" + g["id"], "PUT")
    check(call("GET", "/api/v1/issuers/" + g["id"])[1]["type"] == "GenericCA", "the type changed")
    code, u = call("PUT", "/api/v1/issuers/" + g["id"], {"type": "ACME", "config": base()})
    check(code == 200 and u["type"] == "ACME", "to ACME with a config: %r" % ((code, u),))
    code, u = call("PUT", "/api/v1/issuers/" + g["id"], {"type": "GenericCA", "config": {"anything": True}})
    check(code == 200 and u["config"] == {"anything": True}, "back to GenericCA: %r" % ((code, u),))
    code, u = call("PUT", "/api/v1/issuers/" + g["id"], {"config": {"still": "anything"}})
    check(code == 200, "GenericCA's config alone: %r" % ((code, u),))
    code, e = call("PUT", "/api/v1/issuers/iss-none", {"config": base()})
    check(code == 404, "an update of no issuer: %r" % ((code, e),))


def secrets_never_shown():
    """The secret neither in a refusal, a listing nor a log line."""
    code, lst = call("GET", "/api/v1/issuers?per_page=500", key="viewer")
    check(code == 200 and SECRET not in str(lst), "the listing shows the secret")
    for name in os.listdir(cw.logs):
        with open(os.path.join(cw.logs, name), errors="replace") as f:
            check(SECRET not in f.read(), "the secret in %s" % name)


root = make_root("certward-acme-config-")
pg = cw = None
try:
    pg = Postgres(root, free_port())
    cw = Certward(root, pg.dsn)
    cw.start()
    api = Api(cw)
    case(setup)
    case(each_rule_refused)
    case(full_config_accepted)
    case(updates)
    case(secrets_never_shown)
    RUN.stop_clean(cw)
finally:
    teardown(cw, pg, root)
RUN.finish()
