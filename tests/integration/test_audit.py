"""The audit trail against a real certwardd and PostgreSQL: the events REST
changes write, read back through GET /api/v1/audit (filters, pages, roles,
bad input) and /api/v1/audit/{id}; `certward audit verify` over the chain
feed, intact, then after a superuser changed an event, removed one from the
middle and one from the end (each restored afterwards); the store's role
cannot change or remove events; audit_record() failing loudly; and what
audit.failure_mode does to a change whose event cannot be written."""
import hashlib
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import make_key as harness_make_key, psql as harness_psql
from harness import (AS_ROOT, BUILD, SOURCE, TEST_HOOKS, Cases, Certward, Postgres, check, log,
                     make_root, teardown, wait_for)

RUN = Cases(lambda: cw)
case = RUN.case

SQLSTATE = re.compile(r"ERROR:\s+([0-9A-Z]{5}):")


# ---- helpers ----

def run_psql(sql, superuser=False):
    """psql as the store's role (the one in store.dsn) or as the cluster's
    superuser; the CompletedProcess."""
    if superuser:
        cmd = [os.path.join(SOURCE, "contrib", "pg.sh"), "psql", pg.dir]
    else:
        cmd = (["runuser", "-u", "certward", "--"] if AS_ROOT else []) + ["psql", pg.dsn]
    cmd += ["-qAtX", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-c", sql]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def psql(sql, superuser=False):
    if not superuser:
        return harness_psql(pg, sql).strip()
    out = run_psql(sql, superuser)
    check(out.returncode == 0, "psql %r failed: %s" % (sql[:200], out.stderr))
    return out.stdout.strip()


def cert_path():
    return os.path.join(cw.state, "tls", "api.crt")


def curl(path, key=None, method="GET", data=None):
    """(status, parsed JSON body or text, content type) of one request."""
    args = ["curl", "-sS", "--http1.1", "--cacert", cert_path(), "-X", method, "-o", "-",
            "-w", "\n%{http_code} %{content_type}", "https://127.0.0.1:%d%s" % (cw.api_port, path)]
    if key:
        args += ["-H", "Authorization: Bearer " + key]
    if data is not None:
        args += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(data)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    body, _, tail = out.stdout.rpartition("\n")
    code, _, ctype = tail.partition(" ")
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = body
    return int(code or 0), parsed, ctype


def make_key(name, role, agent_id=None):
    if agent_id:
        return harness_make_key(pg, name, role, ", agent_id", ", '%s'" % agent_id)
    return harness_make_key(pg, name, role)


def verify(*args, key=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTWARD_")}
    env["CERTWARD_SERVER_URL"] = "https://127.0.0.1:%d" % cw.api_port
    if key is not False:
        env["CERTWARD_API_KEY"] = key or ADMIN
    return subprocess.run([os.path.join(BUILD, "certward"), "audit", "verify", "--cacert", cert_path()]
                          + list(args), capture_output=True, text=True, timeout=300, env=env)


def expect_verify(out, rc, pattern):
    check(out.returncode == rc and re.search(pattern, out.stdout + out.stderr),
          "audit verify: exit %d, want %d and /%s/\nstdout: %s\nstderr: %s"
          % (out.returncode, rc, pattern, out.stdout, out.stderr))


def last_id():
    return int(psql("SELECT last_id FROM audit_chain_head"))


def log_text(name):
    with open(os.path.join(cw.logs, name), errors="replace") as f:
        return f.read()


def as_superuser_without_triggers(statement):
    """What someone holding the database's superuser could do: the
    append-only trigger is an ordinary trigger, off in replica mode."""
    psql("SET session_replication_role = replica; %s" % statement, superuser=True)


COLUMNS = ("id, occurred_at, actor, actor_type, actor_role, action, resource_type, resource_id, "
           "request_id, source_address, outcome, body_sha256, details, prev_hash, hash")


def remove_event(n):
    """Deletes event n as the superuser; returns what puts it back."""
    row = psql("SELECT format('INSERT INTO audit_events (%s) OVERRIDING SYSTEM VALUE VALUES "
               "(%%s, %%L, %%L, %%L, %%L, %%L, %%L, %%L, %%L, %%L, %%L, %%L, %%L, %%L, %%L)', %s) "
               "FROM audit_events WHERE id = %d" % (COLUMNS, COLUMNS, n))
    check(row, "no event %d" % n)
    as_superuser_without_triggers("DELETE FROM audit_events WHERE id = %d" % n)
    return row


# ---- cases ----

def changes_make_events():
    """Teams made, changed and removed through the API each leave one event,
    with the caller, the request and a digest of the body."""
    global ADMIN
    path = os.path.join(cw.state, "admin-api-key")
    wait_for("bootstrap key", lambda: os.path.exists(path), timeout=60)
    with open(path) as f:
        ADMIN = f.read().strip()
    wait_for("api ready", lambda: curl("/ready")[0] == 200, timeout=60)
    before = last_id()
    for i in range(6):
        code, body, _ = curl("/api/v1/teams", ADMIN, "POST", {"name": "team-%d" % i})
        check(code == 201, "create: %r" % ((code, body),))
        TEAMS.append(body["id"])
    code, body, _ = curl("/api/v1/teams/" + TEAMS[0], ADMIN, "PUT", {"description": "first"})
    check(code == 200, "update: %r" % ((code, body),))
    code, body, _ = curl("/api/v1/teams/" + TEAMS[5], ADMIN, "DELETE")
    check(code == 204, "delete: %r" % ((code, body),))
    check(last_id() == before + 8, "8 changes, %d events" % (last_id() - before))
    body_digest = hashlib.sha256(json.dumps({"name": "team-0"}).encode()).hexdigest()
    row = psql("SELECT actor_type, actor_role, action, resource_id, host(source_address), outcome, "
               "encode(body_sha256, 'hex') FROM audit_events WHERE id = %d" % (before + 1))
    check(row == "User|admin|teams.create|%s|127.0.0.1|success|%s" % (TEAMS[0], body_digest),
          "the first event: %r" % row)


def list_and_filters():
    code, page, ctype = curl("/api/v1/audit", ADMIN)
    check(code == 200 and ctype.startswith("application/json"), "list: %r" % ((code, page),))
    check(set(page) == {"data", "total", "page", "per_page"} and page["page"] == 1 and
          page["per_page"] == 50 and page["total"] == last_id(), "envelope: %r" % {k: page[k] for k in page if k != "data"})
    ids = [int(e["id"]) for e in page["data"]]
    check(ids == sorted(ids, reverse=True) and ids[0] == last_id(), "not newest first: %r" % ids)
    e = page["data"][0]
    check(set(e) == {"id", "timestamp", "actor", "actor_type", "actor_role", "action", "resource_type",
                     "resource_id", "outcome", "request_id", "source_address", "details"},
          "event members: %r" % sorted(e))
    check(isinstance(e["id"], str) and e["action"] == "teams.delete" and e["resource_id"] == TEAMS[5] and
          re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", e["timestamp"]) and
          isinstance(e["details"], dict) and re.match(r"^[0-9a-f]{16}$", e["request_id"]),
          "event: %r" % e)
    # oldest first, pages
    code, page, _ = curl("/api/v1/audit?sort=id&per_page=2&page=2", ADMIN)
    check(code == 200 and [x["id"] for x in page["data"]] == ["3", "4"], "page 2 oldest first: %r" % page)
    # filters
    code, page, _ = curl("/api/v1/audit?action=teams.update", ADMIN)
    check(code == 200 and page["total"] == 1 and page["data"][0]["resource_id"] == TEAMS[0],
          "action filter: %r" % page)
    code, page, _ = curl("/api/v1/audit?resource_type=teams&resource_id=%s&outcome=success" % TEAMS[0], ADMIN)
    check(code == 200 and [x["action"] for x in page["data"]] == ["teams.update", "teams.create"],
          "resource filter: %r" % page)
    code, page, _ = curl("/api/v1/audit?actor_type=System", ADMIN)
    check(code == 200 and page["total"] == 0, "actor_type filter: %r" % page)
    actor = psql("SELECT actor FROM audit_events WHERE id = %d" % last_id())
    code, page, _ = curl("/api/v1/audit?actor=%s&per_page=500" % actor, ADMIN)
    check(code == 200 and page["total"] == 8, "actor filter: %r" % {k: page[k] for k in page if k != "data"})
    rid = page["data"][0]["request_id"]
    code, page, _ = curl("/api/v1/audit?request_id=" + rid, ADMIN)
    check(code == 200 and page["total"] == 1, "request_id filter: %r" % page)
    # time range: from inclusive, to exclusive, offsets and percent-escapes
    t = psql("SELECT to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
             "FROM audit_events WHERE id = %d" % last_id())
    code, page, _ = curl("/api/v1/audit?from=" + t, ADMIN)
    check(code == 200 and page["total"] >= 1 and all(int(x["id"]) >= last_id() - 1 for x in page["data"]) and
          page["data"][0]["id"] == str(last_id()), "from: %r" % page)
    code, page, _ = curl("/api/v1/audit?to=" + t, ADMIN)
    check(code == 200 and str(last_id()) not in [x["id"] for x in page["data"]], "to is exclusive: %r" % page)
    code, page, _ = curl("/api/v1/audit?from=2000-01-01T00%3A00%3A00%2B05%3A30&to=2000-01-02T00:00:00Z", ADMIN)
    check(code == 200 and page["total"] == 0 and page["data"] == [], "an empty range: %r" % page)
    code, page, _ = curl("/api/v1/audit?from=1999-12-31T23:00:00-01:00", ADMIN)
    check(code == 200 and page["total"] == last_id(), "from with an offset: %r" % page["total"])


def list_bad_input():
    """Every malformed or unknown parameter is 400 problem+json naming it."""
    for query, field in (("page=0", "page"), ("page=-1", "page"), ("page=x", "page"), ("page=1.5", "page"),
                         ("per_page=501", "per_page"), ("per_page=0", "per_page"), ("per_page=", "per_page"),
                         ("sort=timestamp", "sort"), ("sort=actor", "sort"),
                         ("actor_type=user", "actor_type"), ("outcome=ok", "outcome"),
                         ("actor=", "actor"), ("action=" + "a" * 129, "action"),
                         ("from=yesterday", "from"), ("from=2026-11-25", "from"),
                         ("to=2026-02-30T00:00:00Z", "to"), ("to=2026-11-25T14:00:00", "to"),
                         ("actor=a&actor=b", "actor"), ("page=1&page=2", "page"),
                         ("nope=1", "nope"), ("limit=10", "limit"), ("Actor=x", "Actor")):
        code, body, ctype = curl("/api/v1/audit?" + query, ADMIN)
        check(code == 400 and ctype.startswith("application/problem+json") and body.get("field") == field and
              body.get("status") == 400 and field in body.get("detail", ""),
              "%s: %r" % (query, (code, body, ctype)))
    for query in ("actor", "a=%zz", "a=%00"):
        code, body, ctype = curl("/api/v1/audit?" + query, ADMIN)
        check(code == 400 and ctype.startswith("application/problem+json"), "%s: %r" % (query, (code, body)))
    code, body, _ = curl("/api/v1/audit?" + "&".join("actor%d=x" % i for i in range(800)), ADMIN)
    check(code in (400, 414), "a query over the bound: %r" % code)


def pagination_edges():
    total = last_id()
    code, page, _ = curl("/api/v1/audit?page=1000&per_page=500", ADMIN)
    check(code == 200 and page["data"] == [] and page["total"] == total and page["page"] == 1000 and
          page["per_page"] == 500, "beyond the end: %r" % page)
    code, page, _ = curl("/api/v1/audit?page=1000000000&per_page=500", ADMIN)
    check(code == 200 and page["data"] == [] and page["total"] == total, "far beyond the end: %r" % page)
    code, page, _ = curl("/api/v1/audit?per_page=500", ADMIN)
    check(code == 200 and len(page["data"]) == min(total, 500), "per_page 500: %d" % len(page["data"]))
    code, page, _ = curl("/api/v1/audit?per_page=1&page=%d" % total, ADMIN)
    check(code == 200 and [x["id"] for x in page["data"]] == ["1"], "the last page: %r" % page)


def get_one():
    code, e, _ = curl("/api/v1/audit/%d" % last_id(), ADMIN)
    check(code == 200 and e["id"] == str(last_id()) and e["action"] == "teams.delete", "get: %r" % ((code, e),))
    code, listed, _ = curl("/api/v1/audit?per_page=1", ADMIN)
    check(listed["data"][0] == e, "get and list disagree: %r / %r" % (e, listed["data"][0]))
    for bad in ("0", str(last_id() + 1000), "01", "-1", "abc", "1.0", "9223372036854775808", "%2D1"):
        code, body, ctype = curl("/api/v1/audit/" + bad, ADMIN)
        check(code == 404 and ctype.startswith("application/problem+json"), "%s: %r" % (bad, (code, body)))
    code, body, _ = curl("/api/v1/audit/1", ADMIN, "DELETE")
    check(code == 405, "DELETE an event: %r" % ((code, body),))
    code, body, _ = curl("/api/v1/audit", ADMIN, "POST", {"actor": "me"})
    check(code == 405, "POST an event: %r" % ((code, body),))


def roles():
    viewer = make_key("it-viewer", "viewer")
    operator = make_key("it-operator", "operator")
    psql("INSERT INTO agents (id, name) VALUES ('agent-it', 'it')")
    agent = make_key("it-agent", "agent", "agent-it")
    for who, key, want in (("viewer", viewer, 200), ("operator", operator, 200), ("agent", agent, 403),
                           ("no key", None, 401), ("a wrong key", ADMIN[:-1] + ("1" if ADMIN.endswith("0") else "0"), 401)):
        for path in ("/api/v1/audit", "/api/v1/audit/1"):
            code, body, ctype = curl(path, key)
            check(code == want, "%s on %s: %r" % (who, path, (code, body)))
            if want != 200:
                check(ctype.startswith("application/problem+json"), "%s: %s" % (who, ctype))
    # the chain feed is the admins'
    for who, key, want in (("viewer", viewer, 403), ("operator", operator, 403), ("agent", agent, 403),
                           ("no key", None, 401), ("admin", ADMIN, 200)):
        code, body, _ = curl("/api/v1/audit/chain?limit=1", key)
        check(code == want, "%s on the chain feed: %r" % (who, (code, body)))
    # a refused key is not told about bad parameters
    code, _, _ = curl("/api/v1/audit?page=0", None)
    check(code == 401, "no key with page=0: %r" % code)


def chain_feed():
    code, p, _ = curl("/api/v1/audit/chain?after=1&limit=2", ADMIN)
    check(code == 200 and set(p) == {"data", "head"} and [e["id"] for e in p["data"]] == [2, 3] and
          p["head"]["last_id"] == last_id(), "feed: %r" % p)
    e = p["data"][0]
    row = psql("SELECT encode(hash, 'hex'), encode(prev_hash, 'hex'), details::text, "
               "encode(audit_event_hash(prev_hash, audit_events), 'hex') FROM audit_events WHERE id = 2").split("|")
    check(e["hash"] == row[0] == row[3] and e["prev_hash"] == row[1] and e["details"] == row[2] and
          isinstance(e["occurred_at"], int), "event 2 as fed: %r vs %r" % (e, row))
    code, p, _ = curl("/api/v1/audit/chain?after=%d" % last_id(), ADMIN)
    check(code == 200 and p["data"] == [], "after the end: %r" % p)
    for query, field in (("limit=1001", "limit"), ("limit=0", "limit"), ("after=-1", "after"),
                         ("after=x", "after"), ("page=1", "page"), ("after=1&after=2", "after")):
        code, body, _ = curl("/api/v1/audit/chain?" + query, ADMIN)
        check(code == 400 and body.get("field") == field, "%s: %r" % (query, (code, body)))


# the vectors of tests/unit/test_audit_chain.c: PostgreSQL's
# audit_event_hash must still give each its hash
VECTORS = [
    (1, "2026-11-25 14:00:00.123456+00", "key-0123", "User", "admin", "teams.create", "teams", "t-platform",
     "4f1c2a9b0d3e5f67", "192.0.2.7", "success", "beeb6663673830289d61bf209bf4ca177448b936005236244f06a0e07015fd24",
     '{"name": "Platform", "status": 201}', "00" * 32,
     "5a416524d8658b7f6baf5bf73ca63a6258e7e5b163b60edb50a526f9c1ae8a65"),
    (2, "1969-12-31 23:59:59.999999+00", "system", "System", None, "certificate.renew", "certificates", None,
     None, None, "failure", None, "{}", "5a416524d8658b7f6baf5bf73ca63a6258e7e5b163b60edb50a526f9c1ae8a65",
     "abee3d4e504bf6d199e29c8d87f299371641cfa3aa20d345137c328826452fba"),
    (3, "2000-02-29 12:34:56+05:30", "anonymous", "User", None, "auth.failed", "apikeys", None, "req-\u00e9|3",
     "2001:db8::1", "denied", None, '{"n": [1, 2.50, {"z": null}], "\u00fc": "\u00e9\\n", "reason": "unknown key"}',
     "abee3d4e504bf6d199e29c8d87f299371641cfa3aa20d345137c328826452fba",
     "6730b4315a7f25eb459d4dfd84dde51f3de1acfe3df5bea60857d87e808c357c"),
    (4, "2026-11-25 14:00:01+00", "agent-web1", "Agent", "agent", "agents.heartbeat", "agents", "agent-web1",
     "ffffffffffffffff", "::ffff:198.51.100.9", "success",
     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", '{"a": {"b": {"c": []}}}',
     "6730b4315a7f25eb459d4dfd84dde51f3de1acfe3df5bea60857d87e808c357c",
     "cf45bf1ba081c9f8675c5f888cdc599027e70be1174674436cff4cac352d8bb7"),
]


def lit(v):
    return "NULL" if v is None else "'" + v.replace("'", "''") + "'"


def unit_vectors_hold():
    for v in VECTORS:
        row = ("ROW(%d, %s::timestamptz, %s, %s, %s, %s, %s, %s, %s, %s::inet, %s, decode(%s, 'hex'), %s::jsonb, "
               "decode('%s', 'hex'), decode('%s', 'hex'))::audit_events"
               % (v[0], lit(v[1]), lit(v[2]), lit(v[3]), lit(v[4]), lit(v[5]), lit(v[6]), lit(v[7]), lit(v[8]),
                  lit(v[9]), lit(v[10]), lit(v[11]), lit(v[12]), v[13], v[14]))
        got = psql("SELECT encode(audit_event_hash(decode('%s', 'hex'), %s), 'hex')" % (v[13], row))
        check(got == v[14], "vector %d: PostgreSQL says %s" % (v[0], got))


def verify_intact():
    out = verify()
    expect_verify(out, 0, r"^audit chain intact: %d events, ids 1\.\.%d, head [0-9a-f]{64}\n$" % (last_id(), last_id()))
    head = psql("SELECT encode(last_hash, 'hex') FROM audit_chain_head")
    check(out.stdout.strip().endswith(head), "head: %r vs %s" % (out.stdout, head))
    out = verify("--from", "3")
    expect_verify(out, 0, r"intact: %d events, ids 3\.\.%d" % (last_id() - 2, last_id()))


def verify_errors():
    """Could not check: exit 2, one line, never the key."""
    out = verify(key=False)
    expect_verify(out, 2, r"401")
    check(len(out.stderr.strip().splitlines()) == 1, "not one line: %r" % out.stderr)
    viewer = make_key("it-viewer-2", "viewer")
    out = verify(key=viewer)
    expect_verify(out, 2, r"403")
    check(viewer[16:] not in out.stdout + out.stderr, "the key was printed")
    env = {"CERTWARD_API_KEY": ADMIN}
    out = subprocess.run([os.path.join(BUILD, "certward"), "audit", "verify", "--server", "https://127.0.0.1:1",
                          "--cacert", cert_path()], capture_output=True, text=True, timeout=60, env=env)
    check(out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, "unreachable: %r" % out)
    for bad in (["--from"], ["--from", "0"], ["--from", "x"], ["--bogus"], ["extra"]):
        out = verify(*bad)
        check(out.returncode == 2, "%r: %r" % (bad, out))
    out = verify("--help")
    check(out.returncode == 0 and "usage: certward audit verify" in out.stdout, "--help: %r" % out)
    out = verify("--from", str(last_id() + 5))
    expect_verify(out, 2, r"chain ends at event %d" % last_id())


def verify_finds_a_changed_event():
    n = last_id() // 2
    actor = psql("SELECT actor FROM audit_events WHERE id = %d" % n)
    as_superuser_without_triggers("UPDATE audit_events SET actor = 'mallory' WHERE id = %d" % n)
    try:
        expect_verify(verify(), 1, r"^audit chain broken at event %d: its hash does not match its contents\n$" % n)
        # rewriting the hash too moves the break to the next link
        as_superuser_without_triggers("UPDATE audit_events SET hash = audit_event_hash(prev_hash, audit_events) "
                                      "WHERE id = %d" % n)
        expect_verify(verify(), 1, r"broken at event %d: prev_hash is not the hash of event %d" % (n + 1, n))
    finally:
        as_superuser_without_triggers("UPDATE audit_events SET actor = %s WHERE id = %d; "
                                      "UPDATE audit_events SET hash = audit_event_hash(prev_hash, audit_events) "
                                      "WHERE id = %d" % (lit(actor), n, n))
    expect_verify(verify(), 0, r"intact")


def verify_finds_a_gap_and_a_lost_tail():
    n = last_id() // 2
    put_back = remove_event(n)
    try:
        expect_verify(verify(), 1, r"^audit chain broken at event %d: missing \(the next stored event is %d\)\n$"
                      % (n, n + 1))
        expect_verify(verify("--from", str(n + 1)), 1, r"broken at event %d: missing" % n)
    finally:
        as_superuser_without_triggers(put_back)
    expect_verify(verify(), 0, r"intact")
    last = last_id()
    put_back = remove_event(last)
    try:
        expect_verify(verify(), 1, r"broken at event %d: missing \(the chain head records events up to %d\)"
                      % (last, last))
    finally:
        as_superuser_without_triggers(put_back)
    expect_verify(verify(), 0, r"intact")
    # a head that names another hash
    head = psql("SELECT encode(last_hash, 'hex') FROM audit_chain_head")
    as_superuser_without_triggers("UPDATE audit_chain_head SET last_hash = sha256('forged')")
    try:
        expect_verify(verify(), 1, r"broken at event %d: the chain head's hash is not this event's hash" % last)
    finally:
        as_superuser_without_triggers("UPDATE audit_chain_head SET last_hash = decode('%s', 'hex')" % head)
    expect_verify(verify(), 0, r"intact")


def store_role_cannot_change_events():
    for stmt in ("UPDATE audit_events SET actor = 'x' WHERE id = 1", "DELETE FROM audit_events WHERE id = 1",
                 "TRUNCATE audit_events", "UPDATE audit_chain_head SET last_id = 1"):
        out = run_psql(stmt)
        m = SQLSTATE.search(out.stderr)
        check(out.returncode != 0 and m and m.group(1) == "42501", "%s as the store's role: %s" % (stmt, out.stderr))
    expect_verify(verify(), 0, r"intact")


def verify_a_long_chain():
    """Pages of 1000, progress every 10,000 events on stderr."""
    before = last_id()
    psql("INSERT INTO audit_events (actor, actor_type, action, resource_type, resource_id, outcome, details) "
         "SELECT 'system', 'System', 'it.bulk', 'test', i::text, 'success', jsonb_build_object('i', i) "
         "FROM generate_series(1, 10500) i")
    out = verify()
    expect_verify(out, 0, r"intact: %d events, ids 1\.\.%d" % (before + 10500, before + 10500))
    check(re.search(r"10000 events checked", out.stderr), "no progress line: %r" % out.stderr)


def large_events_in_smaller_pages():
    """A page larger than one store answer (4 MiB) is 422 naming limit, and
    verify asks again for fewer events."""
    before = last_id()
    psql("INSERT INTO audit_events (actor, actor_type, action, resource_type, outcome, details) "
         "SELECT 'system', 'System', 'it.large', 'test', 'success', jsonb_build_object('pad', repeat('x', 5000), 'i', i) "
         "FROM generate_series(1, 1000) i")
    code, body, ctype = curl("/api/v1/audit/chain?after=%d&limit=1000" % before, ADMIN)
    check(code == 422 and body.get("field") == "limit" and ctype.startswith("application/problem+json"),
          "a page over the bound: %r" % ((code, body if isinstance(body, dict) else str(body)[:200]),))
    code, body, _ = curl("/api/v1/audit/chain?after=%d&limit=500" % before, ADMIN)
    check(code == 200 and len(body["data"]) == 500, "half of it: %r" % code)
    expect_verify(verify(), 0, r"intact: %d events" % last_id())


def record_hook(action):
    out = cw.ctl("test-hook", "api", "audit-record", action, check_rc=False)
    check("sent to the store" in out.stderr, "hook: %r" % out)


def record_failure_is_loud():
    """audit_record() writes its event; when the write fails, an error line
    and certward_audit_write_failures_total say so."""
    if not TEST_HOOKS:
        log("  (skipped: build without -Dtest_hooks=true)")
        return
    record_hook("it.recorded")
    wait_for("recorded event", lambda: curl("/api/v1/audit?action=it.recorded", ADMIN)[1]["total"] == 1, timeout=20)
    e = curl("/api/v1/audit?action=it.recorded", ADMIN)[1]["data"][0]
    check(e["actor_type"] == "System" and e["details"] == {"test_hook": True} and e["actor_role"] is None,
          "recorded: %r" % e)
    psql("ALTER TABLE audit_events ADD CONSTRAINT cw_test_block CHECK (false) NOT VALID", superuser=True)
    try:
        record_hook("it.blocked")
        line = wait_for("the error line", lambda: next((l for l in log_text("api.log").splitlines()
                                                          if "AUDIT EVENT NOT RECORDED" in l and "it.blocked" in l), None),
                        timeout=20)
        check("level=error" in line and 'reason="SQLSTATE 23514"' in line and 'resource_type="test"' in line,
              "error line: %s" % line)
        code, text, _ = curl("/metrics")
        check(re.search(r'certward_audit_write_failures_total\{worker="api",action="it\.blocked"\} 1', text),
              "metric: %s" % "\n".join(l for l in text.splitlines() if "audit" in l))
    finally:
        psql("ALTER TABLE audit_events DROP CONSTRAINT cw_test_block", superuser=True)
    check(curl("/api/v1/audit?action=it.blocked", ADMIN)[1]["total"] == 0, "the blocked event was stored")
    expect_verify(verify(), 0, r"intact")


def reconfigure(extra):
    pid = cw.status()["api"]["pid"]
    cw.write_config(extra)
    cw.ctl("reload")
    wait_for("api restarted", lambda: (lambda s: s["state"] == "running" and s["pid"] != pid)(cw.status()["api"]),
             timeout=30)
    wait_for("api ready", lambda: curl("/ready")[0] == 200, timeout=30)


def failure_modes():
    """fail_closed (the default): a change whose audit event cannot be
    written fails and leaves nothing; fail_open: it is made, loudly."""
    psql("ALTER TABLE audit_events ADD CONSTRAINT cw_test_block CHECK (false) NOT VALID", superuser=True)
    try:
        events = last_id()
        code, body, ctype = curl("/api/v1/teams", ADMIN, "POST", {"name": "closed-door"})
        check(500 <= code < 600 and ctype.startswith("application/problem+json"), "fail_closed: %r" % ((code, body),))
        check(psql("SELECT count(*) FROM teams WHERE name = 'closed-door'") == "0", "fail_closed wrote the team")
        check(last_id() == events, "an event was written")
        reconfigure("audit:\n  failure_mode: fail_open\n")
        check("audit.failure_mode is fail_open" in log_text("api.log"), "fail_open not announced")
        code, body, _ = curl("/api/v1/teams", ADMIN, "POST", {"name": "open-door"})
        check(code == 201 and body["name"] == "open-door", "fail_open: %r" % ((code, body),))
        check(last_id() == events, "an event was written")
        code, text, _ = curl("/metrics")
        m = re.search(r'certward_audit_write_failures_total\{worker="api",action="teams\.create"\} (\d+)', text)
        check(m and int(m.group(1)) > 0, "no failure counted: %s" % "\n".join(l for l in text.splitlines() if "audit" in l))
        check(any("AUDIT EVENT NOT RECORDED" in l and "level=error" in l and "teams.create" in l
                  for l in log_text("api.log").splitlines()), "no loud line in api.log")
    finally:
        psql("ALTER TABLE audit_events DROP CONSTRAINT cw_test_block", superuser=True)
        reconfigure("")
    code, body, _ = curl("/api/v1/teams", ADMIN, "POST", {"name": "door-after"})
    check(code == 201, "after the block: %r" % ((code, body),))


def bad_failure_mode_refused():
    cw.write_config("audit:\n  failure_mode: fail_sometimes\n")
    out = subprocess.run([os.path.join(BUILD, "certwardd"), "-c", cw.config, "--check-config"],
                         capture_output=True, text=True, timeout=30)
    check(out.returncode != 0 and "audit.failure_mode: expected one of: fail_closed, fail_open" in out.stderr,
          "check-config: %r" % out)
    before = cw.status()["api"]["pid"]
    out = cw.ctl("reload", check_rc=False)
    check(out.returncode != 0 and "audit.failure_mode" in out.stderr, "reload of a bad value: %r" % out)
    check(cw.status()["api"]["pid"] == before, "the api was restarted for a refused file")
    cw.write_config("")


ADMIN = None
TEAMS = []
root = make_root("certward-audit-")
cw = None
pg = None
try:
    pg = Postgres(root, 16400 + os.getpid() % 90)
    cw = Certward(root, pg.dsn)
    cw.start()
    wait_for("all running", cw.all_running, timeout=60)
    case(changes_make_events)
    case(list_and_filters)
    case(list_bad_input)
    case(pagination_edges)
    case(get_one)
    case(roles)
    case(chain_feed)
    case(unit_vectors_hold)
    case(verify_intact)
    case(verify_errors)
    case(verify_finds_a_changed_event)
    case(verify_finds_a_gap_and_a_lost_tail)
    case(store_role_cannot_change_events)
    case(record_failure_is_loud)
    case(failure_modes)
    case(bad_failure_mode_refused)
    case(verify_a_long_chain)
    case(large_events_in_smaller_pages)
    RUN.stop_clean(cw)
finally:
    teardown(cw, pg, root)
RUN.finish()
