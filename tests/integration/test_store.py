"""The store against a real PostgreSQL: migrations (at start, `certwardd
migrate`, --status, the advisory lock, changed checksums, unknown versions,
store.migrate_on_start false), named operations with the per-caller permission
check, failing fast while PostgreSQL is down and recovering without restarts,
and no BoringSSL in the store's address space."""
import hashlib
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, SOURCE, TEST_HOOKS, Certward, Postgres, check, Cases, log,
                     make_root, sanitizer_reports, teardown, wait_for)

MIGRATION_FILES = sorted(f for f in os.listdir(os.path.join(SOURCE, "migrations")) if f.endswith(".sql"))
FIRST = MIGRATION_FILES[0][:-4]          # "0001_meta"
LOCK = "1667592820, 1"                   # MIGRATE_LOCK_KEY1, KEY2 (workers/store/migrate.h)

RUN = Cases(lambda: cw)
case = RUN.case


def sha256_of(name):
    with open(os.path.join(SOURCE, "migrations", name), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def psql(db, sql):
    """Runs sql as the cluster's superuser in database db; returns the rows."""
    out = subprocess.run([os.path.join(SOURCE, "contrib", "pg.sh"), "psql", pg.dir, "-qAtX",
                          "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
                         capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, "psql %r failed: %s" % (sql, out.stderr))
    return [l.split("|") for l in out.stdout.splitlines() if l]


def create_db(name):
    psql("certward", "CREATE DATABASE %s OWNER certward" % name)


def dsn_for(db):
    return pg.dsn.replace("dbname=certward", "dbname=" + db)


def migrate(config, *args, timeout=60):
    return subprocess.run([os.path.join(BUILD, "certwardd"), "migrate", "-c", config] + list(args),
                          capture_output=True, text=True, timeout=timeout)


def status_rows(out):
    """{version: (name, state, applied_at, checksum)} from migrate --status."""
    rows = {}
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) == 5 and parts[0].isdigit():
            rows[int(parts[0])] = tuple(parts[1:])
    return rows


def recorded(db):
    return psql(db, "SELECT version, name, checksum FROM schema_migrations ORDER BY version")


def log_text(name):
    try:
        with open(os.path.join(cw.logs, name + ".log"), errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def hook(worker, arg, timeout=10):
    """Has `worker` call a store operation through the test hook; returns the
    line it logs with the outcome and the seconds until it appeared."""
    log_name = worker.split(".")[0]
    op = arg.split(":")[0]
    start = len(log_text(log_name))
    t0 = time.monotonic()
    out = cw.ctl("test-hook", worker, "store-call", arg, check_rc=False)
    check("sent with" in out.stderr, "hook %s %s: %r" % (worker, arg, out))

    def outcome():
        for line in log_text(log_name)[start:].splitlines():
            if ('msg="store-call %s: ' % op) in line:
                return line
        return None
    line = wait_for("outcome of %s in %s.log" % (arg, log_name), outcome, timeout=timeout)
    return line, time.monotonic() - t0


def wait_schema_current(since=0):
    return wait_for("store: database schema is current",
                    lambda: "database schema is current" in log_text("store")[since:], timeout=30)


# ---- migrations without a running certwardd ----

def status_of_fresh_database():
    out = migrate(race.config, "--status")
    check(out.returncode == 0, "migrate --status on a fresh database: %r" % (out,))
    rows = status_rows(out.stdout)
    check(rows.get(1, ("",))[0] == FIRST[5:] and rows[1][1] == "pending",
          "fresh database does not list %s pending: %r" % (FIRST, out.stdout))
    check(len(rows) == len(MIGRATION_FILES), "not every migration listed: %r" % out.stdout)
    check(pg.dsn not in out.stdout + out.stderr, "the DSN was printed")


def concurrent_migrate_applies_once():
    """Two `certwardd migrate` at the same moment, both held up by the
    migration lock taken from outside: both succeed, each migration once."""
    holder = subprocess.Popen([os.path.join(SOURCE, "contrib", "pg.sh"), "psql", pg.dir, "-qAtX",
                               "-d", "certward_race", "-c",
                               "SELECT pg_advisory_lock(%s), pg_sleep(1.5)" % LOCK],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for("lock held", lambda: psql("certward_race",
             "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")[0][0] == "1",
             timeout=10)
    cmd = [os.path.join(BUILD, "certwardd"), "migrate", "-c", race.config]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    holder.wait(timeout=30)
    for p, (out, err) in zip(procs, outs):
        check(p.returncode == 0, "a concurrent migrate failed (%d): %s %s" % (p.returncode, out, err))
    text = "".join(o + e for o, e in outs)
    check("waiting for the migration lock" in text, "nobody waited for the lock: %r" % text)
    check(sum("applied %d migration" % len(MIGRATION_FILES) in o for o, _ in outs) == 1 and
          sum("nothing to apply" in o for o, _ in outs) == 1,
          "expected one run to apply and one to find nothing: %r" % outs)
    rows = recorded("certward_race")
    check([int(r[0]) for r in rows] == list(range(1, len(MIGRATION_FILES) + 1)),
          "migrations recorded: %r" % rows)
    for r in rows:
        check(r[2] == sha256_of("%04d_%s.sql" % (int(r[0]), r[1])), "checksum of %r" % r)


# ---- the store at start ----

def first_start_applies_migrations():
    cw.start()
    wait_for("all workers running", cw.all_running, timeout=60)
    wait_schema_current()
    check("database schema is current: %d migration" % len(MIGRATION_FILES) in log_text("store") and
          "(%d by this start)" % len(MIGRATION_FILES) in log_text("store"),
          "store.log: %r" % log_text("store")[-2000:])
    for name in MIGRATION_FILES:
        check("applied migration %s" % name[:-4] in log_text("store"), "%s not logged" % name)
    rows = recorded("certward")
    check(len(rows) == len(MIGRATION_FILES), "recorded: %r" % rows)
    check(rows[0][1] == FIRST[5:] and rows[0][2] == sha256_of(MIGRATION_FILES[0]),
          "first record %r, file sha256 %s" % (rows[0], sha256_of(MIGRATION_FILES[0])))
    check(psql("certward", "SELECT to_regclass('settings') IS NOT NULL")[0][0] == "t",
          "0001 did not create settings")
    m = cw.metrics("store")
    check(m.get("store_migrations_applied") == len(MIGRATION_FILES) and
          m.get("store_migrations_pending") == 0, "migration gauges: %r" % m)


def second_start_applies_nothing():
    before = psql("certward", "SELECT version, applied_at FROM schema_migrations ORDER BY version")
    mark = len(log_text("store"))
    cw.ctl("restart", "store")
    wait_schema_current(mark)
    check("(0 by this start)" in log_text("store")[mark:], "store.log: %r" % log_text("store")[mark:])
    check("applying migration" not in log_text("store")[mark:], "a migration was applied again")
    after = psql("certward", "SELECT version, applied_at FROM schema_migrations ORDER BY version")
    check(before == after, "records changed: %r -> %r" % (before, after))


def migrate_status_output():
    out = migrate(cw.config, "--status")
    check(out.returncode == 0, "migrate --status: %r" % (out,))
    check(out.stdout.splitlines()[0].split()[:3] == ["VERSION", "NAME", "STATE"], "header: %r" % out.stdout)
    rows = status_rows(out.stdout)
    name, state, applied_at, checksum = rows[1]
    check(name == FIRST[5:] and state == "applied" and checksum == "ok" and applied_at.endswith("Z"),
          "row of %s: %r" % (FIRST, rows[1]))
    out = migrate(cw.config)
    check(out.returncode == 0 and "nothing to apply" in out.stdout, "migrate again: %r" % (out,))
    check(pg.dsn not in out.stdout + out.stderr, "the DSN was printed")


# ---- operations and permissions ----

def allowed_and_refused_calls():
    if not TEST_HOOKS:
        log("  (skipped: build without -Dtest_hooks=true)")
        return
    line, _ = hook("scheduler", "settings.put:it.colour,teal")
    check('store-call settings.put: ok"' in line and '\\"value\\" : \\"teal\\"' in line, line)
    line, _ = hook("api", "settings.get:it.colour")
    check('store-call settings.get: ok"' in line and "teal" in line and "status=0" in line, line)
    line, _ = hook("deploy", "settings.get:it.nothing")
    check("status=1" in line and 'result="null"' in line, "missing key: %s" % line)
    line, _ = hook("scheduler", "settings.list")
    check('store-call settings.list: ok"' in line and "it.colour" in line, line)
    check(psql("certward", "SELECT value FROM settings WHERE key = 'it.colour'") == [["teal"]],
          "settings.put did not store the value")
    # refused: a caller outside the operation's mask, with a parameter value
    # that must not reach any log line
    store_before = len(log_text("store"))
    line, _ = hook("deploy", "settings.put:k,s3cr3t-v4lue")
    check("error: deploy may not call settings.put" in line and "code=1 " in line, line)
    line, _ = hook("scheduler", "migrations.list")
    check("error: scheduler may not call migrations.list" in line, line)
    store_log = log_text("store")[store_before:]
    check('store operation refused' in store_log and 'op="migrations.list" caller=scheduler' in store_log
          and 'op="settings.put" caller=deploy' in store_log, "refusals not logged: %r" % store_log)
    check("s3cr3t-v4lue" not in store_log and "s3cr3t-v4lue" not in log_text("master"),
          "a parameter value reached a log")
    check(psql("certward", "SELECT value FROM settings WHERE key = 'it.colour'") == [["teal"]],
          "a refused call changed data")
    # unknown operation, wrong parameter count, a failing statement
    line, _ = hook("api", "settings.rename:a,b")
    check("error: unknown operation" in line and "code=2 " in line, line)
    line, _ = hook("api", "settings.get")
    check("takes 1 parameter, got 0" in line and "code=22 " in line, line)
    line, _ = hook("api", "settings.put:NOT VALID,x")
    check("SQLSTATE 23514" in line and "code=5 " in line, "SQL error: %s" % line)
    check(pg.dsn not in log_text("store") + log_text("api"), "the DSN reached a log")
    # a command reports rows affected; an allowed caller sees migrations
    line, _ = hook("api", "settings.delete:it.colour")
    check("ok" in line and "rows=1" in line, line)
    line, _ = hook("api", "migrations.list")
    check(sha256_of(MIGRATION_FILES[0]) in line, "migrations.list: %s" % line)
    m = cw.metrics("store")
    for key in ('store_operations_total{op="settings.put",result="ok"}',
                'store_operations_total{op="settings.put",result="refused"}',
                'store_operations_total{op="migrations.list",result="refused"}',
                'store_operations_total{op="unknown",result="refused"}',
                'store_operations_total{op="settings.put",result="error"}',
                'store_operation_duration_seconds_count{op="settings.get"}',
                'store_pool_connections{state="idle"}', 'store_pool_queued'):
        check(key in m, "metric %s missing" % key)


def caller_dies_mid_call():
    """A call held up by a row lock while its caller is killed: the store
    finishes the statement, drops the answer (the channel is gone, perhaps
    replaced by the restarted caller's) and keeps serving."""
    if not TEST_HOOKS:
        log("  (skipped: build without -Dtest_hooks=true)")
        return
    line, _ = hook("scheduler", "settings.put:it.locked,a")
    check("ok" in line, line)
    holder = subprocess.Popen([os.path.join(SOURCE, "contrib", "pg.sh"), "psql", pg.dir, "-qAtX",
                               "-d", "certward", "-c",
                               "BEGIN; SELECT 1 FROM settings WHERE key = 'it.locked' FOR UPDATE; "
                               "SELECT pg_sleep(2.5); COMMIT"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for("row locked", lambda: psql("certward", "SELECT count(*) FROM pg_locks l JOIN pg_class c "
                                            "ON c.oid = l.relation WHERE c.relname = 'settings' "
                                            "AND l.mode = 'RowShareLock'")[0][0] != "0", timeout=10)
        before = cw.status()
        out = cw.ctl("test-hook", "scheduler", "store-call", "settings.put:it.locked,b", check_rc=False)
        check("sent with" in out.stderr, "hook: %r" % (out,))
        time.sleep(0.3)
        os.kill(before["scheduler"]["pid"], 9)
        wait_for("scheduler back", lambda: (lambda st: st["scheduler"]["state"] == "running" and
                                            st["scheduler"]["pid"] != before["scheduler"]["pid"])(cw.status()),
                 timeout=20)
        line, _ = hook("scheduler", "settings.list")
        check('settings.list: ok"' in line, "the new scheduler: %s" % line)
    finally:
        holder.wait(timeout=30)
    wait_for("the held statement finished", lambda: psql("certward", "SELECT value FROM settings "
                                                         "WHERE key = 'it.locked'") == [["b"]], timeout=10)
    line, _ = hook("scheduler", "settings.get:it.locked")
    check('\\"value\\" : \\"b\\"' in line, line)
    st = cw.status()
    check(st["store"]["pid"] == before["store"]["pid"], "the store was restarted")
    check(not sanitizer_reports(cw.logs), "sanitizer report: %r" % sanitizer_reports(cw.logs)[:3])


def fails_fast_while_postgres_is_down():
    global pg
    if not TEST_HOOKS:
        log("  (skipped: build without -Dtest_hooks=true)")
        return
    store_pid = cw.status()["store"]["pid"]
    pg.stop()
    try:
        for _ in range(3):
            line, took = hook("scheduler", "settings.list", timeout=5)
            check("database unavailable" in line, "call while PostgreSQL is down: %s" % line)
            check(took < 2.0, "the failure took %.1fs" % took)
        m = cw.metrics("store")
        check(m.get('store_operations_total{op="settings.list",result="unavailable"}', 0) >= 3,
              "unavailable calls not counted")
        check(m.get('store_pool_connections{state="down"}') == 2, "pool gauges: %r" % m)
    finally:
        pg = Postgres(root, pg.port)

    def works_again():
        line, _ = hook("scheduler", "settings.list", timeout=5)
        return line if 'settings.list: ok"' in line else None
    wait_for("calls succeed after PostgreSQL is back", works_again, timeout=20, interval=0.5)
    st = cw.status()
    check(st["store"]["pid"] == store_pid and st["store"]["restarts"] == 0,
          "the store was restarted: %r" % st["store"])
    check("postgresql reachable again" in log_text("store"), "recovery not logged")


def operations_prepared_once_per_connection():
    """The store prepares an operation once per pool connection (2 here) and
    then only executes it; the connections made after PostgreSQL came back
    (the case before) prepare theirs again, and a prepared statement whose
    execution failed stays usable."""
    if not TEST_HOOKS:
        log("  (skipped: build without -Dtest_hooks=true)")
        return
    # counted for this operation alone: the api's and scheduler's polls
    # (apikeys.version, ocsp.version, crl.due) prepare theirs on the new
    # connections at times of their own
    key = 'store_statements_prepared_total{op="settings.get"}'
    total = cw.metrics("store").get("pg_statements_prepared_total")
    check(total is not None, "pg_statements_prepared_total missing")
    before = cw.metrics("store").get(key, 0)
    for i in range(12):
        line, _ = hook("api", "settings.get:it.prepared%d" % i)
        check("status=1" in line and 'result="null"' in line, line)
    after = cw.metrics("store")
    grown = after.get(key, 0) - before
    check(after["pg_statements_prepared_total"] - total >= grown, "the total counts fewer: %r" % after)
    check(1 <= grown <= 2,
          "settings.get prepared %d times for 12 calls on 2 connections" % grown)
    for _ in range(3):
        line, _ = hook("api", "settings.put:NOT VALID,x")
        check("SQLSTATE 23514" in line and "code=5 " in line, "SQL error: %s" % line)
    line, _ = hook("api", "settings.put:it.prepared,yes")
    check('settings.put: ok"' in line, line)


def store_has_no_boringssl():
    pid = cw.status()["store"]["pid"]
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read()
    check("libpq" in maps, "libpq not mapped? %s" % maps[:300])
    bad = [l for l in maps.splitlines() if "/android/" in l or "libcrypto.so.0" in l or "libssl.so.0" in l]
    check(not bad, "BoringSSL in the store: %r" % bad[:3])


# ---- what stops the store ----

def changed_checksum_stops_store():
    check(cw.stop() == 0, "certwardd did not stop cleanly")
    good = sha256_of(MIGRATION_FILES[0])
    psql("certward", "UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE version = 1")
    try:
        out = migrate(cw.config, "--status")
        check(out.returncode == 65 and status_rows(out.stdout)[1][3] == "CHANGED",
              "--status with a changed checksum: %r" % (out,))
        out = migrate(cw.config)
        check(out.returncode == 65 and FIRST in out.stderr and "changed after it was applied" in out.stderr,
              "migrate with a changed checksum: %r" % (out,))
        mark = len(log_text("store"))
        cw.start()
        wait_for("store crash-looping", lambda: cw.status()["store"]["state"] == "crashloop", timeout=30)
        text = log_text("store")[mark:]
        check("migration %s was changed after it was applied" % FIRST in text, "store.log: %r" % text[-1500:])
        check('worker store died" exit="exit 65"' in log_text("master"), "master did not report exit 65")
        for w in ("signer", "scheduler", "api"):
            check("pong" in cw.ctl("ping", w).stdout, "%s affected" % w)
    finally:
        psql("certward", "UPDATE schema_migrations SET checksum = '%s' WHERE version = 1" % good)
    wait_for("store recovers", lambda: cw.status()["store"]["state"] == "running", timeout=30)


def unknown_version_is_refused():
    psql("certward", "INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'from_the_future', 'x')")
    try:
        out = migrate(cw.config, "--status")
        rows = status_rows(out.stdout)
        check(out.returncode == 65 and rows.get(9999, ("",) * 4)[3] == "unknown-to-this-binary",
              "--status with an unknown version: %r" % (out,))
        out = migrate(cw.config)
        check(out.returncode == 65 and "9999_from_the_future" in out.stderr and "newer certward" in out.stderr,
              "migrate with an unknown version: %r" % (out,))
    finally:
        psql("certward", "DELETE FROM schema_migrations WHERE version = 9999")


def migrate_on_start_false_waits_for_migrate():
    """With store.migrate_on_start false the store stays up, answers, refuses
    operations while a migration is pending, and serves once certwardd
    migrate has run."""
    global cw
    check(cw.stop() == 0, "certwardd did not stop cleanly")
    create_db("certward_manual")
    cw = Certward(os.path.join(root, "manual"), dsn_for("certward_manual"))
    with open(cw.config) as f:
        text = f.read()
    with open(cw.config, "w") as f:  # into the store section the harness writes
        f.write(text.replace("  pool_size: 2\n", "  pool_size: 2\n  migrate_on_start: false\n"))
    cw.start()
    wait_for("all workers running", cw.all_running, timeout=60)
    wait_for("pending reported", lambda: "pending and store.migrate_on_start is false" in log_text("store"),
             timeout=20)
    check("pong" in cw.ctl("ping", "store").stdout and "pong" in cw.ctl("ping", "api", "store").stdout,
          "the store does not answer")
    check(not recorded_or_none("certward_manual"), "the store migrated anyway")
    code, body = ready()
    check(code == 503 and '"component":"database schema","state":"migrations pending"' in body,
          "/ready with migrations pending: %r" % ((code, body),))
    if TEST_HOOKS:
        line, _ = hook("scheduler", "settings.list")
        check("database schema not ready" in line and "run certwardd migrate" in line, line)
    out = migrate(cw.config)
    check(out.returncode == 0 and "applied" in out.stdout, "migrate: %r" % (out,))
    wait_schema_current()
    wait_for("/ready 200 once migrated", lambda: ready()[0] == 200, timeout=20)
    if TEST_HOOKS:
        line, _ = hook("scheduler", "settings.list")
        check('settings.list: ok"' in line, line)


def ready():
    crt = os.path.join(cw.state, "tls", "api.crt")
    wait_for("api certificate", lambda: os.path.exists(crt), timeout=20)
    out = subprocess.run(["curl", "-sS", "--cacert", crt, "-w", "\n%{http_code}",
                          "https://127.0.0.1:%d/ready" % cw.api_port],
                         capture_output=True, text=True, timeout=30)
    body, _, code = out.stdout.rpartition("\n")
    return int(code or 0), body


def recorded_or_none(db):
    exists = psql(db, "SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0] == "t"
    return recorded(db) if exists else []


def unreachable_database_at_start():
    """PostgreSQL unreachable from the start: the store comes up, answers
    pings and STORE_HEALTH at once, and refuses calls quickly."""
    global cw
    check(cw.stop() == 0, "certwardd did not stop cleanly")
    cw = Certward(os.path.join(root, "nodb"), pg.dsn.replace("port=%d" % pg.port, "port=%d" % (pg.port + 1)))
    cw.start()
    wait_for("all workers running", cw.all_running, timeout=60)
    check("pong" in cw.ctl("ping", "api", "store").stdout, "api cannot reach the store")
    # /ready asks the store (STORE_HEALTH): answered at once, "not connected"
    crt = os.path.join(cw.state, "tls", "api.crt")
    wait_for("api certificate", lambda: os.path.exists(crt), timeout=20)
    t0 = time.monotonic()
    out = subprocess.run(["curl", "-sS", "--cacert", crt, "-w", "\n%{http_code}",
                          "https://127.0.0.1:%d/ready" % cw.api_port],
                         capture_output=True, text=True, timeout=30)
    check(out.stdout.endswith("503") and '"component":"postgresql","state":"not connected"' in out.stdout
          and time.monotonic() - t0 < 3, "/ready without a database: %r" % (out,))
    if TEST_HOOKS:
        line, took = hook("scheduler", "settings.list")
        check("database unavailable" in line and took < 2.0, "%s (%.1fs)" % (line, took))
    out = migrate(cw.config)
    check(out.returncode == 69 and "database unavailable" in out.stderr, "migrate without a database: %r" % (out,))


def no_sanitizer_reports():
    bad = []
    for sub in ("main", "manual", "nodb"):
        d = os.path.join(root, sub, "log")
        if os.path.isdir(d):
            bad += sanitizer_reports(d)
    check(not bad, "sanitizer reports:\n" + "\n".join(bad[:20]))


root = make_root("certward-store-it-")
cw = None
pg = None
try:
    pg = Postgres(root, 15900 + os.getpid() % 500)
    create_db("certward_race")
    for sub in ("main", "manual", "nodb", "race"):
        os.makedirs(os.path.join(root, sub), mode=0o755)
    race = Certward(os.path.join(root, "race"), dsn_for("certward_race"))
    cw = Certward(os.path.join(root, "main"), pg.dsn)
    case(status_of_fresh_database)
    case(concurrent_migrate_applies_once)
    case(first_start_applies_migrations)
    case(second_start_applies_nothing)
    case(migrate_status_output)
    case(allowed_and_refused_calls)
    case(caller_dies_mid_call)
    case(fails_fast_while_postgres_is_down)
    case(operations_prepared_once_per_connection)
    case(store_has_no_boringssl)
    case(changed_checksum_stops_store)
    case(unknown_version_is_refused)
    case(migrate_on_start_false_waits_for_migrate)
    case(unreachable_database_at_start)
    if cw:
        cw.stop()
    case(no_sanitizer_reports)
finally:
    teardown(cw, pg, root)
RUN.finish()
