"""The ACME HTTP-01 responder and the pebble harness, against a real
PostgreSQL, a real certwardd and Debian's pebble and pebble-challtestsrv.

- the harness: pebble's directory over HTTPS trusting only the CA the
  harness made (and not without it), its issuing root and intermediate from
  the management interface, no status for a serial it never issued, TXT
  records set and cleared through challtestsrv seen by a DNS query, every
  name resolving to 127.0.0.1 and none to an IPv6 address, external account
  binding required when keys are given;
- GET /.well-known/acme-challenge/{token} on the plain-HTTP listener (the
  port pebble's VA is pointed at) and over HTTPS: exactly the key
  authorization, text/plain, no-store; unknown, expired and malformed
  tokens 404 (malformed ones without asking the store), an oversize token
  or path refused, other methods 405, a challenge that expires while
  nothing changes in the table no longer served, 503 while PostgreSQL is
  down and 200 again after;
- the store operations as the scheduler and the api call them (with test
  hooks): acme_challenges.put/.delete/.get, acme_accounts.put/.get, who may
  call what, expired challenges removed by a put, a token held by another
  issuer's live challenge kept, an audit event per account change, the
  rows gone with their issuer; the tables' CHECKs refuse malformed rows.

Pebble validating against the responder needs an ACME client: the
scheduler's tests do that."""
import base64
import hashlib
import http.client
import json
import os
import re
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SOURCE, TEST_HOOKS, Api, Cases, Certward, Pebble, Postgres, check, dns_query, free_port, log,
                     make_root, openssl, psql, teardown, wait_for)

RUN = Cases(lambda: cw)
case = RUN.case
PREFIX = "/.well-known/acme-challenge/"


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


THUMBPRINT = b64url(hashlib.sha256(b"an account key").digest())


def key_authorization(token):
    return token + "." + THUMBPRINT


def sql(text):
    return psql(pg, text)


def catalogued_sql(name):
    """(number of parameters, SQL) of the store operation name as
    schema/store_ops.def declares it."""
    with open(os.path.join(SOURCE, "schema", "store_ops.def")) as f:
        text = f.read()
    m = re.search(r'^STORE_(OP|READ|WRITE)\("%s",[^,]+,\s*(\d+),' % re.escape(name), text, re.M)
    check(m, "no operation %s in store_ops.def" % name)
    end = min(i for i in (text.find("\n\n", m.start()), text.find("\nSTORE_", m.start()),
                          text.find("\n/*", m.start()), len(text)) if i >= 0)
    body = text[m.start():end]
    literals = [l.replace('\\"', '"') for l in re.findall(r'"((?:[^"\\]|\\.)*)"', body)]
    tables_given = m.group(1) != "OP" and not re.match(r'STORE_\w+\("[^"]*",[^,]+,[^,]+,[^,]+,\s*NULL,', body)
    return int(m.group(2)), "".join(literals[2 if tables_given else 1:])


def run_op(name, *params):
    """The store operation's own statement, with params bound, through psql
    (the scheduler's operations, which the test hook cannot carry): its
    output, "" for no row."""
    n, statement = catalogued_sql(name)
    check(len(params) == n, "%s takes %d parameters" % (name, n))
    lit = lambda v: "NULL" if v is None else "'" + str(v).replace("'", "''") + "'"
    # parameter types inferred, as the store prepares its statements
    return sql("PREPARE op AS %s; EXECUTE op(%s)" % (statement, ", ".join(lit(p) for p in params))).strip()


def put_challenge(token, issuer="iss-acme-1", ttl=600, ka=None):
    """The challenge put by the scheduler's operation (acme_challenges.put):
    its JSON, or "" when refused without an error."""
    return run_op("acme_challenges.put", token, ka or key_authorization(token), issuer, ttl)


def store_call(worker, arg):
    """The line the worker logs with the outcome of a store operation it
    was made to call (test hook store-call)."""
    path = os.path.join(cw.logs, worker + ".log")
    start = os.path.getsize(path) if os.path.exists(path) else 0
    op = arg.split(":")[0]
    out = cw.ctl("test-hook", worker, "store-call", arg, check_rc=False)
    check("sent with" in out.stderr, "hook %s %s: %r" % (worker, arg, out))

    def outcome():
        with open(path, errors="replace") as f:
            f.seek(start)
            for line in f:
                if 'msg="store-call %s: ' % op in line:
                    return line
        return None
    return wait_for("outcome of %s" % arg, outcome, timeout=15)


def plain(method, path):
    """(status, {header: value}, body bytes) over plain HTTP from the plain listener."""
    conn = http.client.HTTPConnection("127.0.0.1", PLAIN_PORT, timeout=30)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def https(method, path):
    return api.raw(method, path)


def gets():
    """How often the store ran acme_challenges.get."""
    m = cw.metrics("store")
    return sum(v for k, v in m.items() if k.startswith("store_operations_total{") and
               'op="acme_challenges.get"' in k)


# ---- the harness ----

def pebble_directory_over_https():
    d = peb.directory()
    for member in ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange"):
        check(d.get(member, "").startswith("https://127.0.0.1:%d/" % peb.port), "directory %s: %r" % (member, d))
    check(d["meta"]["externalAccountRequired"] is False, "EAB required without keys: %r" % d)
    # the system's trust store does not know pebble's HTTPS certificate
    try:
        urllib.request.urlopen(peb.directory_url, timeout=10, context=ssl.create_default_context())
        check(False, "pebble's HTTPS trusted without the harness's CA")
    except urllib.error.URLError as e:
        check(isinstance(e.reason, ssl.SSLCertVerificationError), "not a verification failure: %r" % e)
    check("BEGIN CERTIFICATE" in peb.ca_pem(), "ca_pem(): %r" % peb.ca_pem()[:80])
    root, inter = peb.roots()
    paths = []
    for name, pem in (("root", root), ("inter", inter)):
        p = os.path.join(root_dir, "pebble-%s.pem" % name)
        with open(p, "w") as f:
            f.write(pem)
        paths.append(p)
    out = openssl("verify", "-CAfile", paths[0], paths[1])
    check(": OK" in out.stdout, "pebble's intermediate does not chain to its root: %r" % out.stdout)
    subj = openssl("x509", "-noout", "-subject", "-in", paths[0]).stdout
    check("Pebble Root CA" in subj, "root: %r" % subj)
    check(peb.cert_status("0123abcd") is None, "a status for a serial pebble never issued")
    # by PEM: the serial is read with openssl
    st = peb.cert_status(inter)
    check(st is None or st.get("Status") in ("Valid", "Revoked"), "cert_status(PEM): %r" % st)


def challtestsrv_dns():
    name = "_acme-challenge.web.example.test"
    check(peb.txt(name) == [], "TXT before any: %r" % peb.txt(name))
    peb.add_txt(name, "first-value")
    check(peb.txt(name) == ["first-value"], "TXT: %r" % peb.txt(name))
    peb.add_txt(name + ".", "second-value")
    check(sorted(peb.txt(name)) == ["first-value", "second-value"], "two TXT: %r" % peb.txt(name))
    peb.clear_txt(name)
    check(peb.txt(name) == [], "TXT after clear: %r" % peb.txt(name))
    check(dns_query(peb.dns_port, "anything.example.test", 1) == ["127.0.0.1"],
          "A: %r" % dns_query(peb.dns_port, "anything.example.test", 1))
    check(dns_query(peb.dns_port, "anything.example.test", 28) == [], "an AAAA answer: pebble could validate "
          "over IPv6, where certward does not listen")
    peb.set_default_ipv4("127.0.0.2")
    check(dns_query(peb.dns_port, "other.example.test", 1) == ["127.0.0.2"], "set_default_ipv4 not applied")
    peb.set_default_ipv4("127.0.0.1")


def pebble_with_eab():
    keys = {"kid-1": b64url(os.urandom(32))}
    p = Pebble(os.path.join(root_dir, "pebble-eab"), http_port=PLAIN_PORT, eab_keys=keys, nonce_reject=50,
               authz_reuse=100)
    try:
        check(p.directory()["meta"]["externalAccountRequired"] is True, "EAB not required")
        with open(p.config) as f:
            conf = json.load(f)["pebble"]
        check(conf["externalAccountMACKeys"] == keys and conf["httpPort"] == PLAIN_PORT, "config: %r" % conf)
        check(p.port != peb.port and p.dns_port != peb.dns_port, "two pebbles share ports")
        text = p.tail()
        check("reject 50% of good nonces" in text and "authz reuse for each identifier 100%" in text and
              "Disabling random VA sleeps" in text, "pebble's settings: %s" % text)
    finally:
        p.stop()
    check(all(proc.poll() is not None for _, proc in p.procs) or not p.procs, "processes left")


# ---- the responder ----

def served_on_plain_listener():
    token = "plainTOKEN_0123-abc"
    put_challenge(token)
    status, h, body = plain("GET", PREFIX + token)
    check(status == 200 and body == key_authorization(token).encode(), "GET: %r" % ((status, body),))
    check(h.get("content-type", "").split(";")[0] == "text/plain", "content type: %r" % h)
    check(h.get("cache-control") == "no-store", "cache-control: %r" % h)
    check(h.get("content-length") == str(len(body)), "length: %r" % h)
    status, h, body = plain("HEAD", PREFIX + token)
    check(status == 200 and body == b"", "HEAD: %r" % ((status, body),))
    # tokens are case-sensitive
    status, _, _ = plain("GET", PREFIX + token.swapcase())
    check(status == 404, "another token's case served: %d" % status)
    for method in ("POST", "PUT", "DELETE"):
        status, _, _ = plain(method, PREFIX + token)
        check(status == 405, "%s: %d" % (method, status))
    with open(os.path.join(cw.logs, "api.log")) as f:
        check('proto=plain method=GET path="%s%s" status=200' % (PREFIX, token) in f.read(),
              "no access-log line for the plain GET")


def served_over_https():
    token = "httpsToken-9"
    put_challenge(token)
    status, h, body = https("GET", PREFIX + token)
    check(status == 200 and body == key_authorization(token).encode(), "HTTPS GET: %r" % ((status, body),))
    check(h.get("content-type", "").split(";")[0] == "text/plain" and h.get("cache-control") == "no-store",
          "headers: %r" % h)
    # no key is asked for, and a key given changes nothing
    status, _, body2 = api.raw("GET", PREFIX + token, headers={"Authorization": "Bearer cw_nonsense"})
    check(status == 200 and body2 == body, "with a bogus key: %d" % status)


def unknown_expired_malformed():
    status, h, body = plain("GET", PREFIX + "neverPutThisOne")
    check(status == 404 and h.get("content-type", "").startswith("application/problem+json"),
          "unknown: %r" % ((status, h, body),))
    check(THUMBPRINT.encode() not in body, "404 body carries a thumbprint")
    sql("INSERT INTO acme_challenges (token, key_authorization, issuer_id, created_at, expires_at) VALUES "
        "('expiredOne', '%s', 'iss-acme-1', now() - interval '1 hour', now() - interval '1 second')"
        % key_authorization("expiredOne"))
    status, _, _ = plain("GET", PREFIX + "expiredOne")
    check(status == 404, "expired: %d" % status)
    # malformed tokens are 404 without a store call
    put_challenge("goodToken")
    before = gets()
    for bad in ("tok.en", "tok%2Een", "tok%2Fen", "tok%00en", "tok%20en", "tok=", "goodToken%0A", "%C3%A9t%C3%A9",
                "a" * 129, "%", "%zz", "goodToken%3Bx"):
        status, _, _ = plain("GET", PREFIX + bad)
        check(status == 404, "malformed %r: %d" % (bad[:40], status))
    check(gets() == before, "malformed tokens reached the store: %d -> %d" % (before, gets()))
    check(plain("GET", PREFIX + "goodToken")[0] == 200 and gets() > before, "lookups are not counted")
    for path in (PREFIX, PREFIX[:-1], PREFIX + "goodToken/", PREFIX + "goodToken/x", PREFIX + "goodToken?x=1"):
        status, _, body = plain("GET", path)
        if path.endswith("?x=1"):
            # the query is not part of the token
            check(status == 200 and body == key_authorization("goodToken").encode(), "%s: %d" % (path, status))
        else:
            check(status == 404, "%s: %d" % (path, status))
    # 128 characters is the longest token
    long_token = "L" * 128
    put_challenge(long_token)
    status, _, body = plain("GET", PREFIX + long_token)
    check(status == 200 and body == key_authorization(long_token).encode(), "128 characters: %d" % status)


def oversize_refused():
    status, _, _ = plain("GET", PREFIX + "x" * 600)
    check(status == 404, "600-character token: %d" % status)
    status, _, _ = plain("GET", PREFIX + "x" * 9000)
    check(status == 414, "9000-character path: %d" % status)
    status, _, _ = https("GET", PREFIX + "x" * 9000)
    check(status in (414, 431), "9000-character path over HTTPS: %d" % status)
    put_challenge("stillHere")
    status, _, body = plain("GET", PREFIX + "stillHere")
    check(status == 200 and body == key_authorization("stillHere").encode(), "served after: %d" % status)


def expires_while_nothing_changes():
    """Served until expires_at, then 404 with no write in between: nothing
    (the store's cache included) keeps an expired challenge."""
    sql("INSERT INTO acme_challenges (token, key_authorization, issuer_id, expires_at) VALUES "
        "('shortLived', '%s', 'iss-acme-1', now() + interval '3 seconds')" % key_authorization("shortLived"))
    status, _, body = plain("GET", PREFIX + "shortLived")
    check(status == 200 and body == key_authorization("shortLived").encode(), "before expiry: %d" % status)
    wait_for("the challenge to expire", lambda: plain("GET", PREFIX + "shortLived")[0] == 404, timeout=30)
    check(https("GET", PREFIX + "shortLived")[0] == 404, "served over HTTPS after expiry")


def refused_by_table(name, *params):
    """run_op that must fail on a CHECK: the constraint's error."""
    try:
        run_op(name, *params)
    except AssertionError as e:
        check("violates check constraint" in str(e), "%s%r: %s" % (name, params, e))
        return str(e)
    raise AssertionError("%s%r accepted" % (name, params))


def store_operations():
    # a put removes every expired challenge but keeps the live ones
    sql("INSERT INTO acme_challenges (token, key_authorization, issuer_id, created_at, expires_at) VALUES "
        "('expiredTwo', '%s', 'iss-acme-2', now() - interval '1 hour', now() - interval '1 minute')"
        % key_authorization("expiredTwo"))
    out = json.loads(put_challenge("freshOne", ttl=60))
    check(out["token"] == "freshOne" and out["issuer_id"] == "iss-acme-1" and out["expires_at"], "put: %r" % out)
    left = sql("SELECT count(*) FROM acme_challenges WHERE expires_at <= now()").strip()
    check(left == "0", "expired challenges left after a put: %s" % left)
    check(plain("GET", PREFIX + "goodToken")[0] == 200, "a live challenge removed by a put")
    # another issuer's live token is kept; the same issuer replaces its own
    other = "goodToken." + "Z" * 43
    check(put_challenge("goodToken", issuer="iss-acme-2", ka=other) == "", "another issuer took a live token")
    check(plain("GET", PREFIX + "goodToken")[2] == key_authorization("goodToken").encode(), "token taken over")
    check(put_challenge("goodToken", ka=other) != "", "the issuer could not replace its own challenge")
    check(plain("GET", PREFIX + "goodToken")[2] == other.encode(), "not replaced")
    # only ACME issuers; malformed values refused by the table
    check(put_challenge("localTok", issuer="iss-local") == "", "a challenge for a non-ACME issuer")
    refused_by_table("acme_challenges.put", "badTok", key_authorization("otherTok"), "iss-acme-1", 60)
    refused_by_table("acme_challenges.put", "badTok", "badTok.short", "iss-acme-1", 60)
    refused_by_table("acme_challenges.put", "badTok", key_authorization("badTok") + "\n", "iss-acme-1", 60)
    refused_by_table("acme_challenges.put", "bad.Tok", key_authorization("bad.Tok"), "iss-acme-1", 60)
    refused_by_table("acme_challenges.put", "badTok", key_authorization("badTok"), "iss-acme-1", 0)
    refused_by_table("acme_challenges.put", "badTok", key_authorization("badTok"), "iss-acme-1", 8 * 86400)
    check(plain("GET", PREFIX + "badTok")[0] == 404, "a refused challenge is served")
    # accounts: one audit event per change, none for the same values again
    audits = lambda: int(sql("SELECT count(*) FROM audit_events WHERE action = 'acme_accounts.put' "
                             "AND actor = 'scheduler'").strip())
    n0 = audits()
    url = "https://127.0.0.1:%d/my-account/1" % peb.port
    a = json.loads(run_op("acme_accounts.put", "iss-acme-1", url, THUMBPRINT, "valid", '["mailto:ops@example.com"]'))
    check(a["account_url"] == url and a["status"] == "valid" and a["contact"] == ["mailto:ops@example.com"] and
          a["key_thumbprint"] == THUMBPRINT and a["row_version"] == 1, "account: %r" % a)
    again = json.loads(run_op("acme_accounts.put", "iss-acme-1", url, THUMBPRINT, "valid",
                              '["mailto:ops@example.com"]'))
    check(again == a and audits() == n0 + 1, "the same values again: %r, %d events" % (again, audits() - n0))
    b = json.loads(run_op("acme_accounts.put", "iss-acme-1", url, THUMBPRINT, "deactivated", None))
    check(b["status"] == "deactivated" and b["contact"] == [] and b["row_version"] == 2 and audits() == n0 + 2,
          "deactivation: %r" % b)
    details = json.loads(sql("SELECT details FROM audit_events WHERE action = 'acme_accounts.put' "
                             "ORDER BY id DESC LIMIT 1"))
    check(details == {"account_url": url, "status": "deactivated", "previous_status": "valid"}, "audit: %r" % details)
    check(json.loads(run_op("acme_accounts.get", "iss-acme-1")) == b, "get")
    check(run_op("acme_accounts.get", "iss-acme-2") == "", "an account for an issuer without one")
    check(run_op("acme_accounts.put", "iss-local", url, THUMBPRINT, "valid", None) == "",
          "an account for a non-ACME issuer")
    refused_by_table("acme_accounts.put", "iss-acme-2", url.replace("https:", "http:"), THUMBPRINT, "valid", None)
    refused_by_table("acme_accounts.put", "iss-acme-2", url, "short", "valid", None)
    refused_by_table("acme_accounts.put", "iss-acme-2", url, THUMBPRINT, "pending", None)
    # through the store, as its callers call it (the hook carries short parameters only)
    if not TEST_HOOKS:
        log("  (callers: skipped, build without -Dtest_hooks=true)")
        return
    for worker, arg in (("api", "acme_challenges.put:a,b,c,d"), ("api", "acme_challenges.delete:goodToken"),
                        ("api", "acme_accounts.get:iss-acme-1"), ("api", "acme_accounts.put:a,b,c,d"),
                        ("scheduler", "acme_challenges.get:goodToken"),
                        ("deploy", "acme_challenges.get:goodToken"), ("notifier", "acme_accounts.get:iss-acme-1")):
        line = store_call(worker, arg)
        check("may not call %s" % arg.split(":")[0] in line, "%s may call %s: %s" % (worker, arg, line))
    line = store_call("api", "acme_challenges.get:goodToken")
    check('store-call acme_challenges.get: ok"' in line and other in line, line)
    line = store_call("api", "acme_challenges.get:neverPut")
    check('store-call acme_challenges.get: ok"' in line and "status=1" in line, line)
    line = store_call("scheduler", "acme_accounts.get:iss-acme-1")
    check('store-call acme_accounts.get: ok"' in line and "deactivated" in line, line)
    line = store_call("scheduler", "acme_challenges.delete:goodToken")
    check('store-call acme_challenges.delete: ok"' in line and "rows=1" in line, line)
    check(plain("GET", PREFIX + "goodToken")[0] == 404, "served after delete")


def gone_with_the_issuer():
    sql("INSERT INTO issuers (id, name, type) VALUES ('iss-acme-gone', 'ACME to remove', 'ACME')")
    put_challenge("goneToken", issuer="iss-acme-gone")
    sql("INSERT INTO acme_accounts (issuer_id, account_url, key_thumbprint) VALUES "
        "('iss-acme-gone', 'https://ca.example/acct/9', '%s')" % THUMBPRINT)
    check(plain("GET", PREFIX + "goneToken")[0] == 200, "not served")
    sql("DELETE FROM issuers WHERE id = 'iss-acme-gone'")
    check(plain("GET", PREFIX + "goneToken")[0] == 404, "served after its issuer went")
    check(sql("SELECT count(*) FROM acme_accounts WHERE issuer_id = 'iss-acme-gone'").strip() == "0",
          "the account outlived its issuer")


def store_down_is_503():
    put_challenge("duringOutage")
    subprocess.run([os.path.join(os.environ["CERTWARD_SOURCE_DIR"], "contrib", "pg.sh"), "stop", pg.dir],
                   capture_output=True, timeout=120)
    try:
        status, h, body = wait_for("503", lambda: (lambda r: r if r[0] == 503 else None)(
            plain("GET", PREFIX + "duringOutage")), timeout=30)
        check(h.get("content-type", "").startswith("application/problem+json") and
              key_authorization("duringOutage").encode() not in body, "503: %r" % ((h, body),))
        # malformed tokens are still 404: they never reach the store
        check(plain("GET", PREFIX + "bad.token")[0] == 404, "malformed token during the outage")
    finally:
        Postgres(root_dir, pg.port)
    wait_for("served again", lambda: plain("GET", PREFIX + "duringOutage")[0] == 200, timeout=60)


root_dir = make_root("certward-acme-http01-")
cw = pg = peb = None
PLAIN_PORT = free_port()
try:
    pg = Postgres(root_dir, 15900 + os.getpid() % 90)
    cw = Certward(root_dir, pg.dsn, api_extra="  plain_listen: 127.0.0.1:%d\n" % PLAIN_PORT)
    cw.start()
    wait_for("all running", cw.all_running, timeout=60)
    api = Api(cw)
    wait_for("ready", lambda: api.raw("GET", "/ready")[0] == 200, timeout=60)
    sql("INSERT INTO issuers (id, name, type, config) VALUES "
        "('iss-acme-1', 'ACME one', 'ACME', '{\"directory_url\": \"https://127.0.0.1/dir\"}'), "
        "('iss-acme-2', 'ACME two', 'ACME', '{}'), ('iss-local', 'not ACME', 'GenericCA', '{}')")
    peb = Pebble(os.path.join(root_dir, "pebble"), http_port=PLAIN_PORT)
    case(pebble_directory_over_https)
    case(challtestsrv_dns)
    case(pebble_with_eab)
    case(served_on_plain_listener)
    case(served_over_https)
    case(unknown_expired_malformed)
    case(oversize_refused)
    case(expires_while_nothing_changes)
    case(store_operations)
    case(gone_with_the_issuer)
    case(store_down_is_503)
    RUN.stop_clean(cw)
finally:
    if peb:
        peb.stop()
    teardown(cw, pg, root_dir)
RUN.finish()
