"""API key management through real HTTPS against a real certwardd with two
api processes and a real PostgreSQL: create keys of every role and use them,
the key text shown once and nowhere else, expiry, revocation reaching every
api process within a second, admin-only routes, validation, the last admin
key, audit events, last_used_at and the key cache."""
import concurrent.futures
import datetime
import hashlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Api, Cases, Certward, Postgres, check, log, make_key, make_root, psql, teardown,
                     wait_for)

RUN = Cases(lambda: cw)
case = RUN.case

RECORD = {"id", "name", "role", "agent_id", "key_prefix", "created_at", "expires_at", "revoked_at",
          "last_used_at"}
KEY_TEXT = re.compile(r"^cw_[0-9a-f]{12}_[0-9a-f]{64}$")
made = {}  # name -> (record, key text) of keys made through the API


def rest(method, path, key, data=None):
    return API.call(method, path, key, data)


def sql(text):
    return psql(pg, text)


def create(name, role, key=None, **extra):
    code, body = rest("POST", "/api/v1/apikeys", key or admin, dict(name=name, role=role, **extra))
    check(code == 201, "create %s (%s): %r" % (name, role, (code, body)))
    text = body.pop("key")
    made[name] = (body, text)
    return body, text


def who(key):
    """The role /api/v1/auth/check gives key, or the status when refused."""
    code, body = rest("GET", "/api/v1/auth/check", key)
    return body["role"] if code == 200 else code


def fresh_status(key, path="/api/v1/auth/check"):
    """The status of one request on a new TLS connection (so the kernel
    picks an api process each time), without curl's start-up cost."""
    with socket.create_connection(("127.0.0.1", cw.api_port), timeout=10) as raw:
        with TLS.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n"
                       % (path, key)).encode())
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    return int(data.split(b" ", 2)[1])


def api_metric(name):
    return [cw.metrics(a).get(name, 0) for a in ("api", "api.1")]


def utc(seconds_from_now):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds_from_now)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def each_role_works():
    """A key of each role, made through the API, does what its role may."""
    sql("INSERT INTO agents (id, name) VALUES ('agent-web1', 'web1'), ('agent-old', 'old')")
    sql("UPDATE agents SET retired_at = now() WHERE id = 'agent-old'")
    for role in ("admin", "operator", "viewer"):
        rec, text = create("it-" + role, role)
        check(set(rec) == RECORD and rec["role"] == role and rec["agent_id"] is None and
              rec["revoked_at"] is None and rec["expires_at"] is None and rec["id"].startswith("key-"),
              "record: %r" % rec)
        check(KEY_TEXT.match(text) and text.startswith(rec["key_prefix"] + "_"), "key text: %r" % text)
        check(who(text) == role, "%s key not accepted" % role)
    rec, text = create("it-agent", "agent", agent_id="agent-web1")
    check(rec["agent_id"] == "agent-web1" and who(text) == "agent", "agent key: %r" % rec)
    viewer, operator = made["it-viewer"][1], made["it-operator"][1]
    check(rest("GET", "/api/v1/teams", viewer)[0] == 200, "a viewer reads teams")
    check(rest("POST", "/api/v1/teams", viewer, {"name": "by-viewer"})[0] == 403, "a viewer created a team")
    check(rest("GET", "/api/v1/teams", operator)[0] == 200, "an operator reads teams")
    check(rest("GET", "/api/v1/teams", text)[0] == 403, "an agent key read teams")
    code, team = rest("POST", "/api/v1/teams", made["it-admin"][1], {"name": "by-new-admin"})
    check(code == 201, "the new admin key cannot create a team: %r" % ((code, team),))


def shown_once():
    """GET never shows the key text, the salt or the hash; the secret is in
    no log file, no state file, no audit event and not in the database."""
    rec, text = made["it-viewer"]
    secret = text[16:]
    code, got = rest("GET", "/api/v1/apikeys/" + rec["id"], admin)
    check(code == 200 and dict(got, last_used_at=None) == rec, "get: %r" % ((code, got),))
    code, page = rest("GET", "/api/v1/apikeys?per_page=500", admin)
    check(code == 200 and all(set(k) == RECORD for k in page["data"]), "list members: %r" % page["data"][:2])
    check(secret not in json.dumps(page), "the secret is listed")
    for d in (cw.logs, cw.state):
        for dirpath, _, files in os.walk(d):
            for name in files:
                with open(os.path.join(dirpath, name), "rb") as f:
                    data = f.read()
                for _, (_, t) in made.items():
                    check(t[16:].encode() not in data, "a secret is in %s" % os.path.join(dirpath, name))
    dump = sql("SELECT (SELECT string_agg(k::text, ' ') FROM api_keys k) || "
                   "(SELECT string_agg(e::text, ' ') FROM audit_events e)")
    for _, (_, t) in made.items():
        check(t[16:] not in dump, "a secret is in the database")


def admin_only():
    """Every route: no key 401, other roles 403."""
    target = made["it-viewer"][0]["id"]
    routes = [("GET", "/api/v1/apikeys", None), ("POST", "/api/v1/apikeys", {"name": "x", "role": "viewer"}),
              ("GET", "/api/v1/apikeys/" + target, None), ("DELETE", "/api/v1/apikeys/" + target, None),
              ("GET", "/api/v1/apikeys/key-none", None), ("POST", "/api/v1/apikeys", {"bad": 1})]
    for method, path, data in routes:
        check(rest(method, path, None, data)[0] == 401, "%s %s without a key" % (method, path))
        for role in ("operator", "viewer", "agent"):
            code, body = rest(method, path, made["it-" + role][1], data)
            check(code == 403 and body["status"] == 403, "%s %s as %s: %r" % (method, path, role, (code, body)))
    check(rest("GET", "/api/v1/apikeys/" + target, admin)[0] == 200, "the viewer's key was touched")


def validation():
    """Bad input gets 400 naming the field (422 for agents that are missing
    or retired, 409 for a name taken), and nothing is written."""
    creates = "SELECT count(*) FROM audit_events WHERE action = 'apikey.create'"
    refusals = "SELECT count(*) FROM audit_events WHERE action = 'request.failed' AND resource_type = 'apikeys'"
    before = sql(creates).strip()
    refused_before = int(sql(refusals).strip())
    keys = sql("SELECT count(*) FROM api_keys").strip()
    cases = [({"name": "a", "role": "viewer", "colour": "red"}, 400, "colour"),
             ({"name": "a", "role": "root"}, 400, "role"),
             ({"name": "a", "role": 7}, 400, "role"),
             ({"name": "a"}, 400, "role"),
             ({"role": "viewer"}, 400, "name"),
             ({"name": None, "role": "viewer"}, 400, "name"),
             ({"name": "", "role": "viewer"}, 400, "name"),
             ({"name": "n" * 256, "role": "viewer"}, 400, "name"),
             ({"name": "a", "role": "agent"}, 400, "agent_id"),
             ({"name": "a", "role": "viewer", "agent_id": "agent-web1"}, 400, "agent_id"),
             ({"name": "a", "role": "agent", "agent_id": "agent-none"}, 422, "agent_id"),
             ({"name": "a", "role": "agent", "agent_id": "agent-old"}, 422, "agent_id"),
             ({"name": "a", "role": "agent", "agent_id": "../etc"}, 400, "agent_id"),
             ({"name": "a", "role": "viewer", "expires_at": utc(-60)}, 400, "expires_at"),
             ({"name": "a", "role": "viewer", "expires_at": "tomorrow"}, 400, "expires_at"),
             ({"name": "a", "role": "viewer", "expires_at": "2030-13-45T00:00:00Z"}, 400, "expires_at"),
             ({"name": "a", "role": "viewer", "expires_at": 1893456000}, 400, "expires_at"),
             ({"name": "a", "role": "viewer", "key": "cw_000000000000_" + "0" * 64}, 400, "key"),
             ({"name": "a", "role": "viewer", "key_hash": "00"}, 400, "key_hash"),
             ('{"name": "a", "name": "b", "role": "viewer"}', 400, ""),
             ('["viewer"]', 400, ""), ("{", 400, ""), ("", 400, ""),
             ("[" * 40 + "]" * 40, 400, ""),
             ({"name": "it-viewer", "role": "viewer"}, 409, "name")]
    for body, status, field in cases:
        code, p = rest("POST", "/api/v1/apikeys", admin, body)
        check(code == status and p.get("field", "") == field and p["detail"] and p["request_id"] and
              p["status"] == status, "%.80r: %r" % (body, (code, p)))
    big = os.path.join(cw.root, "big.json")
    with open(big, "w") as f:
        f.write('{"name": "%s", "role": "viewer"}' % ("n" * (2 << 20)))
    code = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", CERT,
                           "-H", "Authorization: Bearer " + admin, "--data-binary", "@" + big,
                           "https://127.0.0.1:%d/api/v1/apikeys" % cw.api_port],
                          capture_output=True, text=True, timeout=30).stdout
    check(code == "413", "an oversize body gave %r" % code)
    check(sql(creates).strip() == before, "a refused create was audited as made")
    # the router records each refused change (not the oversize body: refused before routing)
    wait_for("the refusals on record", lambda: int(sql(refusals).strip()) == refused_before + len(cases), timeout=10)
    check(sql("SELECT count(*) FROM api_keys").strip() == keys, "a refused create wrote a key")


def lists_and_routes():
    """Pages, filters and their refusals; unknown ids; other methods."""
    code, page = rest("GET", "/api/v1/apikeys", admin)
    total = page["total"]
    check(code == 200 and page["page"] == 1 and page["per_page"] == 50 and len(page["data"]) == total,
          "list: %r" % page)
    code, page = rest("GET", "/api/v1/apikeys?role=viewer", admin)
    check([k["name"] for k in page["data"]] == ["it-viewer"] and page["total"] == 1, "role filter: %r" % page)
    code, page = rest("GET", "/api/v1/apikeys?per_page=1&page=2", admin)
    check(len(page["data"]) == 1 and page["total"] == total and page["per_page"] == 1, "page 2: %r" % page)
    code, page = rest("GET", "/api/v1/apikeys?page=99", admin)
    check(code == 200 and page["data"] == [] and page["total"] == total, "beyond the end: %r" % page)
    code, page = rest("GET", "/api/v1/apikeys?revoked=false&role=admin", admin)
    check(code == 200 and all(k["role"] == "admin" and k["revoked_at"] is None for k in page["data"]),
          "revoked=false: %r" % page)
    for q, field in (("per_page=501", "per_page"), ("page=0", "page"), ("page=-1", "page"), ("page=x", "page"),
                     ("role=root", "role"), ("revoked=maybe", "revoked"), ("sort=name", "sort"),
                     ("colour=red", "colour"), ("page=1&page=2", "page"), ("role=%zz", ""),
                     ("role=" + "x" * 5000, ""), ("novalue", "")):
        code, p = rest("GET", "/api/v1/apikeys?" + q, admin)
        check(code == 400 and p.get("field", "") == field, "%.40s: %r" % (q, (code, p)))
    check(rest("GET", "/api/v1/apikeys?page=0", None)[0] == 401, "refusals wait for authentication")
    for method, path, status in (("GET", "/api/v1/apikeys/key-none", 404), ("DELETE", "/api/v1/apikeys/key-none", 404),
                                 ("GET", "/api/v1/apikeys/a%2Fb", 404), ("GET", "/api/v1/apikeys/", 404),
                                 ("PUT", "/api/v1/apikeys/key-none", 405), ("PATCH", "/api/v1/apikeys", 405),
                                 ("DELETE", "/api/v1/apikeys", 405)):
        code, p = rest(method, path, admin, {} if method in ("PUT", "PATCH") else None)
        check(code == status, "%s %s: %r" % (method, path, (code, p)))


def expired_key():
    """A key made to expire in a few seconds works until then, also from
    the cache, and gets 401 after."""
    rec, text = create("it-expiring", "viewer", expires_at=utc(3))
    check(rec["expires_at"], "no expires_at: %r" % rec)
    for _ in range(6):
        check(fresh_status(text) == 200, "refused before its expiry")
    wait_for("expiry", lambda: time.time() > datetime.datetime.fromisoformat(rec["expires_at"]).timestamp() + 0.05,
             timeout=10)
    codes = [fresh_status(text) for _ in range(10)]
    check(codes == [401] * 10, "after expiry: %r" % codes)


def revoked_everywhere_within_a_second():
    """Once DELETE has answered, every api process refuses the key within a
    second: new connections, spread over both processes by the kernel, are
    made without pause; the last one accepted must be within 1 s of the
    answer, and both processes must have refused it after that."""
    rec, text = create("it-revoke-me", "operator")
    # every process has it cached (hits on both)
    hits = api_metric("api_key_cache_hits_total")
    wait_for("the key cached by both processes",
             lambda: fresh_status(text) == 200 and all(a > b for a, b in zip(api_metric("api_key_cache_hits_total"), hits)),
             timeout=30, interval=0)
    code, _ = rest("DELETE", "/api/v1/apikeys/" + rec["id"], admin)
    answered = time.monotonic()
    check(code == 204, "revoke: %r" % code)
    last_ok, refused_after = None, 0
    handshakes = api_metric('tls_handshakes_total{listener="https"}')
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        while time.monotonic() - answered < 2.0:
            for status, t in pool.map(lambda _: (fresh_status(text), time.monotonic()), range(4)):
                if status == 200:
                    last_ok = t
                elif time.monotonic() - answered > 1.0:
                    refused_after += status == 401
    late = None if last_ok is None else last_ok - answered
    check(late is None or late < 1.0, "accepted %r s after the revocation's answer" % late)
    spread = [a - b for a, b in zip(api_metric('tls_handshakes_total{listener="https"}'), handshakes)]
    check(all(n > 2 for n in spread), "both processes were not exercised: %r" % spread)
    check(refused_after >= 10, "too few requests after 1 s: %d" % refused_after)
    log("revocation: last accepted %s after the answer; connections per process %r" %
        ("never" if late is None else "%.3f s" % late, spread))
    got = rest("GET", "/api/v1/apikeys/" + rec["id"], admin)[1]
    check(got["revoked_at"], "revoked_at not set: %r" % got)
    # revoking again answers 204 and changes nothing
    check(rest("DELETE", "/api/v1/apikeys/" + rec["id"], admin)[0] == 204, "a second revoke")
    check(rest("GET", "/api/v1/apikeys/" + rec["id"], admin)[1]["revoked_at"] == got["revoked_at"],
          "a second revoke moved revoked_at")
    check(sql("SELECT count(*) FROM audit_events WHERE action = 'apikey.revoke' AND resource_id = '%s'"
                  % rec["id"]).strip() == "1", "a second revoke was audited")
    code, page = rest("GET", "/api/v1/apikeys?revoked=true", admin)
    check(rec["id"] in [k["id"] for k in page["data"]], "revoked=true: %r" % page)


def audit_events():
    """Each create and revoke wrote its event with the acting key's id, the
    request's id, address and body digest, and nothing of the secret."""
    admin_id = sql("SELECT id FROM api_keys WHERE key_prefix = '%s'" % admin[:15]).strip()
    rows = sql("SELECT actor, actor_type, actor_role, resource_type, resource_id, request_id, "
                   "host(source_address), outcome, encode(body_sha256, 'hex'), details::text "
                   "FROM audit_events WHERE action = 'apikey.create' ORDER BY id").splitlines()
    created = {r.split("|")[4]: r.split("|") for r in rows}
    for name in ("it-admin", "it-viewer", "it-agent", "it-revoke-me"):
        rec, text = made[name]
        row = created.get(rec["id"])
        check(row, "no apikey.create event for %s" % name)
        check(row[:4] == [admin_id, "User", "admin", "api_keys"] and re.match(r"^[0-9a-f]{16}$", row[5]) and
              row[6] == "127.0.0.1" and row[7] == "success", "event: %r" % row)
        body = json.dumps({"name": name, "role": rec["role"], **({"agent_id": rec["agent_id"]} if rec["agent_id"] else {})})
        check(row[8] == hashlib.sha256(body.encode()).hexdigest(), "body digest of %s: %r" % (name, row))
        check(json.loads(row[9]) == {"name": name, "role": rec["role"], "key_prefix": rec["key_prefix"]},
              "details: %r" % row[9])
        check(text[16:] not in "|".join(row), "the secret is in an audit event")
    revokes = sql("SELECT actor, actor_role, resource_type, outcome FROM audit_events "
                      "WHERE action = 'apikey.revoke' AND resource_id = '%s'" % made["it-revoke-me"][0]["id"]).strip()
    check(revokes == "%s|admin|api_keys|success" % admin_id, "revoke event: %r" % revokes)


def last_used_recorded():
    """last_used_at is set soon after a key is used, and not rewritten on
    every request."""
    rec, text = create("it-used", "viewer")
    check(rec["last_used_at"] is None, "a new key was used: %r" % rec)
    check(who(text) == "viewer", "key refused")
    got = wait_for("last_used_at", lambda: rest("GET", "/api/v1/apikeys/" + rec["id"], admin)[1]["last_used_at"],
                   timeout=10)
    for _ in range(5):
        fresh_status(text)
    time.sleep(1)
    check(rest("GET", "/api/v1/apikeys/" + rec["id"], admin)[1]["last_used_at"] == got,
          "last_used_at rewritten within the minute")


def warm_every_api(key):
    """Uses key on new connections until every api process has answered it
    (the kernel spreads connections at random: eight of them can all land
    on one process)."""
    def seen():
        return [h + m for h, m in zip(api_metric("api_key_cache_hits_total"),
                                      api_metric("api_key_cache_misses_total"))]
    before = seen()
    for _ in range(200):
        fresh_status(key)
        if all(a > b for a, b in zip(seen(), before)):
            return
    check(False, "new connections never reached every api process")


def cache_serves_known_keys():
    """A known key is answered from the cache: the store is not asked
    again, and the hits show in /metrics."""
    text = made["it-viewer"][1]
    warm_every_api(text)
    lookups = cw.metrics("store").get('store_operations_total{op="apikeys.lookup",result="ok"}', 0)
    hits = sum(api_metric("api_key_cache_hits_total"))
    for _ in range(20):
        check(fresh_status(text) == 200, "refused")
    check(cw.metrics("store").get('store_operations_total{op="apikeys.lookup",result="ok"}', 0) == lookups,
          "the store was asked for a cached key")
    check(sum(api_metric("api_key_cache_hits_total")) >= hits + 20, "hits not counted")
    code, m = rest("GET", "/metrics", None)
    for name in ("api_key_cache_hits_total", "api_key_cache_misses_total", "api_key_cache_flushes_total",
                 "api_key_cache_entries"):
        check("certward_%s{worker=\"api\"}" % name in m, "%s not in /metrics" % name)


def store_away():
    """With the store stopped, a cached key keeps working and a key the api
    has not seen gets 503, not 401."""
    cached = made["it-viewer"][1]
    unseen = make_key(pg, "it-unseen", "viewer")
    # every api process empties its cache when it sees the new key's change
    # counter: only what it caches after that survives
    version = int(sql("SELECT version FROM api_keys_version").strip())
    wait_for("every api process saw the new key", lambda: all(v >= version for v in api_metric("api_key_cache_version")),
             timeout=10)
    warm_every_api(cached)
    pid = cw.status()["store"]["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        codes = [fresh_status(cached) for _ in range(8)]
        check(codes == [200] * 8, "cached key with the store stopped: %r" % codes)
        code, body = rest("GET", "/api/v1/auth/check", unseen)
        check(code == 503, "a key not cached with the store stopped: %r" % ((code, body),))
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for("the unseen key accepted", lambda: who(unseen) == "viewer", timeout=20)


def last_admin_kept():
    """Revoking the last admin key that is not revoked is refused (409), also
    when two admins revoke each other at the same moment."""
    global admin
    other = made["it-admin"][1]
    others = sql("SELECT id FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL "
                     "AND key_prefix NOT IN ('%s', '%s')" % (admin[:15], other[:15])).split()
    for kid in others:
        check(rest("DELETE", "/api/v1/apikeys/" + kid, admin)[0] == 204, "revoke admin %s" % kid)
    ids = {k: sql("SELECT id FROM api_keys WHERE key_prefix = '%s'" % k[:15]).strip() for k in (admin, other)}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        codes = list(pool.map(lambda pair: Api(cw).call("DELETE", "/api/v1/apikeys/" + ids[pair[1]], pair[0])[0],
                              [(admin, other), (other, admin)]))
    check(sorted(codes) in ([204, 409], [204, 401]), "two admins revoking each other: %r" % codes)
    check(sql("SELECT count(*) FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL").strip() == "1",
          "admin keys left: %r" % codes)
    admin = admin if codes[0] == 204 else other
    wait_for("survivor accepted", lambda: who(admin) == "admin", timeout=5)
    code, p = rest("DELETE", "/api/v1/apikeys/" + ids[admin], admin)
    check(code == 409 and "last admin" in p["detail"], "revoking the last admin key: %r" % ((code, p),))
    check(who(admin) == "admin", "the last admin key stopped working")


def failures_audited():
    """Each refused authentication (missing, malformed, unknown, wrong,
    revoked, expired key) writes an auth.failure event naming the key's
    public prefix or "anonymous"; the address reaching the limit writes one
    auth.rate_limited event, and the 429s after it write none."""
    before = api_pid = cw.status()["api"]["pid"]
    cw.api_extra = "  auth_failure_limit: 6\n  auth_failure_window: 60s\n"
    cw.write_config()
    cw.ctl("reload")
    wait_for("one api process, restarted", lambda: (lambda st: "api.1" not in st and st["api"]["state"] == "running"
                                                     and st["api"]["pid"] != before)(cw.status()), timeout=30)
    wait_for("admin accepted", lambda: who(admin) == "admin", timeout=20)
    last = int(sql("SELECT coalesce(max(id), 0) FROM audit_events").strip())
    good = made["it-viewer"][1]
    revoked = make_key(pg, "it-failed-revoked", "viewer", ", revoked_at", ", now()")
    expired = make_key(pg, "it-failed-expired", "viewer", ", expires_at", ", now() - interval '1 second'")
    unknown = "cw_000000000000_" + good[16:]
    wrong = good[:-1] + ("0" if good[-1] != "0" else "1")
    tries = [(None, "anonymous", "no credentials"), ("cw_nonsense", "anonymous", "malformed credentials"),
             (unknown, unknown[:15], "unknown key"), (wrong, wrong[:15], "wrong secret"),
             (revoked, revoked[:15], "revoked key"), (expired, expired[:15], "expired key")]
    for key, _, reason in tries:
        check(rest("GET", "/api/v1/teams", key)[0] == 401, "%s: not 401" % reason)
    check([rest("GET", "/api/v1/teams", good)[0] for _ in range(3)] == [429] * 3, "not limited after 6 failures")
    query = ("SELECT action, actor, actor_type, coalesce(actor_role, '-'), resource_type, request_id, "
             "host(source_address), outcome, details::text FROM audit_events WHERE id > %d "
             "AND action LIKE 'auth.%%' ORDER BY id" % last)
    wait_for("the events (written without waiting)", lambda: len(sql(query).splitlines()) >= 7, timeout=10)
    time.sleep(0.5)  # and no more come
    rows = sql(query).splitlines()
    check(len(rows) == 7, "events: %r" % rows)
    # written without waiting, so not necessarily in the order of the requests
    failures = {json.loads(r.split("|")[8]).get("reason"): r for r in rows if r.startswith("auth.failure|")}
    for key, actor, reason in tries:
        row = failures.get(reason, "")
        f = row.split("|")
        check(f[:5] == ["auth.failure", actor, "User", "-", "api_keys"] and re.match(r"^[0-9a-f]{16}$", f[5]) and
              f[6] == "127.0.0.1" and f[7] == "failure", "%s: %r" % (reason, row))
        check(not key or len(key) < 80 or key[16:] not in row, "a secret is in an audit event")
    limited = [r.split("|") for r in rows if r.startswith("auth.rate_limited|")]
    check(len(limited) == 1 and limited[0][1] == expired[:15] and limited[0][7] == "denied" and
          json.loads(limited[0][8]) == {"failures": 6, "window_ms": 60000}, "rate limited: %r" % rows)


root = make_root("certward-apikeys-")
cw = None
pg = None
TLS = None
API = None
CERT = None
admin = None
try:
    pg = Postgres(root, 15900 + os.getpid() % 90)
    cw = Certward(root, pg.dsn, api_extra="  processes: 2\n  auth_failure_limit: 100000\n")
    cw.start()
    wait_for("all running", lambda: cw.all_running() and cw.status().get("api.1", {}).get("state") == "running",
             timeout=60)
    key_file = os.path.join(cw.state, "admin-api-key")
    wait_for("bootstrap admin key", lambda: os.path.exists(key_file), timeout=30)
    with open(key_file) as f:
        admin = f.read().strip()
    CERT = os.path.join(cw.state, "tls", "api.crt")
    API = Api(cw)
    TLS = ssl.create_default_context(cafile=CERT)
    TLS.check_hostname = False
    case(each_role_works)
    case(shown_once)
    case(admin_only)
    case(validation)
    case(lists_and_routes)
    case(expired_key)
    case(revoked_everywhere_within_a_second)
    case(audit_events)
    case(last_used_recorded)
    case(cache_serves_known_keys)
    case(store_away)
    case(last_admin_kept)
    case(failures_audited)
    RUN.stop_clean(cw)
finally:
    teardown(cw, pg, root)
RUN.finish()
