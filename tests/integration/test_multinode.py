"""Two certward nodes on one PostgreSQL (docs/operations.md, "Several
nodes"): each with its own state directory, api port and control socket, and
a signer key directory holding the same CA (the second node's made from the
first one's: ca/, secrets.key and agent-ca/, not its ledger). 1,000 renewal
jobs of certificates without an agent, put in the database at once, are run
by both nodes' schedulers, each exactly once: one new version per
certificate, attempts 1, one certificate.issued audit event per job, each new
serial once in the two signers' ledgers together. Then the node holding the
scheduler lock is killed (SIGKILL, every process) and the other takes the
lock over and runs the leader-only loops."""
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Api, Cases, Certward, Postgres, check, free_port, log, make_key, make_root, psql, wait_for

JOBS = 1000
CONFIG = ("scheduler:\n  dispatch_interval: 100ms\n  job_concurrency: 16\n  leader_check: 300ms\n"
          "  job_timeout_check: 300ms\n")

RUN = Cases(lambda: S.get("current"))
case = RUN.case
S = {}


def one(text):
    return psql(pg, text).strip()


def key_dir(c):
    return os.path.join(c.state, "signer")


def ledger_certificates(c):
    """serial -> count of the certificate lines of the node's signing ledger"""
    out = {}
    try:
        with open(os.path.join(key_dir(c), "ledger")) as f:
            for line in f:
                p = line.split(" ")
                if len(p) >= 5 and p[2] == "certificate":
                    out[p[4]] = out.get(p[4], 0) + 1
    except FileNotFoundError:
        pass
    return out


def same_ca(src, dst):
    """dst's signer key directory with src's CA (and sealing key, agent CA),
    owned as src's is: both nodes sign as the same CA, each with its own
    ledger."""
    os.makedirs(dst, mode=0o700)
    st = os.stat(src)
    for name in ("ca", "secrets.key", "agent-ca", "intermediates"):
        s, d = os.path.join(src, name), os.path.join(dst, name)
        if os.path.isdir(s):
            shutil.copytree(s, d)
        elif os.path.exists(s):
            shutil.copy2(s, d)
    for base, dirs, files in os.walk(dst):
        for n in [base] + [os.path.join(base, x) for x in dirs + files]:
            os.chown(n, st.st_uid, st.st_gid)


def two_nodes_one_ca():
    """Node a makes the CA on first start; node b starts with a copy of it:
    both publish the same issuing CA."""
    a = S["a"]
    S["current"] = a
    a.start()
    wait_for("node a up", lambda: a.all_running(), timeout=60)
    wait_for("node a's CA", lambda: os.path.exists(os.path.join(a.state, "tls", "ca-chain.crt")), timeout=60)
    b = S["b"]
    os.makedirs(b.state, exist_ok=True)
    shutil.copystat(a.state, b.state)
    st = os.stat(a.state)
    os.chown(b.state, st.st_uid, st.st_gid)
    same_ca(key_dir(a), key_dir(b))
    S["current"] = b
    b.start()
    wait_for("node b up", lambda: b.all_running(), timeout=60)
    wait_for("node b's CA", lambda: os.path.exists(os.path.join(b.state, "tls", "ca-issuing.crt")), timeout=60)
    with open(os.path.join(a.state, "tls", "ca-issuing.crt")) as f, \
            open(os.path.join(b.state, "tls", "ca-issuing.crt")) as g:
        check(f.read() == g.read(), "the nodes sign as different CAs")
    S["current"] = a


def thousand_jobs_each_once():
    """1,000 Renewal jobs due at once: all Completed at their first attempt,
    by both nodes, each certificate with exactly one new version, one audit
    event per job, each new serial once in the ledgers together."""
    a, b = S["a"], S["b"]
    api = Api(a)
    wait_for("api ready", lambda: api.call("GET", "/ready")[0] == 200, timeout=60)
    admin = make_key(pg, "mn-admin", "admin")

    def post(path, body):
        code, obj = api.call("POST", path, admin, body)
        check(code == 201, "POST %s: %r" % (path, (code, obj)))
        return obj["id"]

    team = post("/api/v1/teams", {"name": "mn"})
    owner = post("/api/v1/owners", {"name": "MN", "team_id": team})
    issuer = post("/api/v1/issuers", {"name": "mn-local", "type": "Local"})
    policy = post("/api/v1/renewal-policies", {"name": "mn", "max_retries": 2, "renewal_window_days": 1,
                                               "auto_renew": False})
    out = subprocess.run(["openssl", "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
                          "ec_paramgen_curve:P-256", "-keyout", os.path.join(root, "mn.key"), "-subj",
                          "/CN=mn.example.com"], capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, "openssl req: %s" % out.stderr)
    csr = out.stdout.replace("'", "")
    before_a, before_b = ledger_certificates(a), ledger_certificates(b)
    t0 = time.monotonic()
    psql(pg, "BEGIN; "
         "INSERT INTO managed_certificates (id, name, common_name, owner_id, team_id, issuer_id, renewal_policy_id, "
         "status, expires_at) SELECT 'mc-mn-' || g, 'mn-' || g, 'mn.example.com', '%(owner)s', '%(team)s', "
         "'%(issuer)s', '%(policy)s', 'Active', now() + interval '80 days' FROM generate_series(1, %(n)d) g; "
         "INSERT INTO certificate_versions (certificate_id, serial_number, not_before, not_after, fingerprint_sha256, "
         "pem_chain, csr_pem, key_algorithm, key_size) SELECT 'mc-mn-' || g, lpad(to_hex(g), 8, '0'), "
         "now() - interval '10 days', now() + interval '80 days', encode(sha256(g::text::bytea), 'hex'), "
         "'fixture', '%(csr)s', 'ECDSA', 256 FROM generate_series(1, %(n)d) g; "
         "INSERT INTO jobs (type, certificate_id, requested_by) SELECT 'Renewal', 'mc-mn-' || g, 'multinode' "
         "FROM generate_series(1, %(n)d) g; COMMIT"
         % {"owner": owner, "team": team, "issuer": issuer, "policy": policy, "n": JOBS, "csr": csr})
    done = lambda: one("SELECT count(*) FILTER (WHERE status IN ('Completed', 'Failed', 'Cancelled')) FROM jobs "
                       "WHERE requested_by = 'multinode'") == str(JOBS)
    wait_for("%d jobs done" % JOBS, done, timeout=150, interval=0.5)
    elapsed = time.monotonic() - t0
    stats = one("SELECT count(*) FILTER (WHERE status = 'Completed') || ' ' || count(*) FILTER (WHERE attempts = 1) "
                "|| ' ' || count(DISTINCT claimed_by) || ' ' || round(extract(epoch FROM max(completed_at) - "
                "min(started_at))::numeric, 2) FROM jobs WHERE requested_by = 'multinode'").split()
    log("  %d jobs in %.1f s (%s s from the first claim to the last completion): %.0f jobs/s over two nodes"
        % (JOBS, elapsed, stats[3], JOBS / max(float(stats[3]), 0.001)))
    check(stats[0] == str(JOBS) and stats[1] == str(JOBS), "completed, first attempt: %r" % stats)
    check(stats[2] == "2", "claimed by %s scheduler(s), not both nodes" % stats[2])
    per_node = psql(pg, "SELECT claimed_by, count(*) FROM jobs WHERE requested_by = 'multinode' GROUP BY 1")
    log("  per node: " + " ".join(per_node.split()))
    check(one("SELECT count(*) FROM (SELECT certificate_id FROM certificate_versions WHERE certificate_id LIKE "
              "'mc-mn-%' GROUP BY 1 HAVING count(*) = 2) x") == str(JOBS), "one new version per certificate")
    check(one("SELECT count(*) || ' ' || count(DISTINCT details->>'job_id') FROM audit_events WHERE action = "
              "'certificate.issued' AND resource_id LIKE 'mc-mn-%'") == "%d %d" % (JOBS, JOBS),
          "one certificate.issued event per job")
    completed = int(a.metrics("scheduler").get("scheduler_jobs_completed_total", 0)) + \
        int(b.metrics("scheduler").get("scheduler_jobs_completed_total", 0))
    check(completed == JOBS, "the nodes completed %d jobs" % completed)
    serials = set(psql(pg, "SELECT v.serial_number FROM certificate_versions v WHERE v.certificate_id LIKE "
                           "'mc-mn-%' AND v.pem_chain <> 'fixture'").split())
    check(len(serials) == JOBS, "%d distinct new serials" % len(serials))
    after_a, after_b = ledger_certificates(a), ledger_certificates(b)
    signed = {}
    for after, before in ((after_a, before_a), (after_b, before_b)):
        for s, n in after.items():
            if n - before.get(s, 0):
                signed[s] = signed.get(s, 0) + n - before.get(s, 0)
    check(all(signed.get(s) == 1 for s in serials), "a new serial is not once in the ledgers")
    check(sum(n for s, n in signed.items() if s in serials) == JOBS, "ledgers: %d signatures of the new versions"
          % sum(n for s, n in signed.items() if s in serials))
    check(any(after_a[s] - before_a.get(s, 0) for s in serials if s in after_a) and
          any(after_b[s] - before_b.get(s, 0) for s in serials if s in after_b), "one ledger signed them all")


def leader_killed_other_takes_over():
    """The node holding the scheduler lock, killed with SIGKILL (master and
    workers): the other node takes the lock and runs the leader-only loops."""
    a, b = S["a"], S["b"]

    def leader():
        la, lb = a.metrics("scheduler").get("scheduler_leader"), b.metrics("scheduler").get("scheduler_leader")
        return {(1, 0): "a", (0, 1): "b"}.get((la, lb))

    name = wait_for("one leader", leader, timeout=30)
    dead, alive = (a, b) if name == "a" else (b, a)
    log("  node %s leads; killing it" % name)

    def timeout_runs():
        m = alive.metrics("scheduler")
        return sum(v for k, v in m.items() if k.startswith("scheduler_loop_runs_total") and "job_timeouts" in k)

    check(alive.metrics("scheduler").get("scheduler_leader") == 0, "two leaders")
    runs = timeout_runs()
    pids = [dead.proc.pid]
    for w in dead.status().values():
        if w["pid"]:
            pids.append(w["pid"])
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    dead.proc.wait(30)
    S["current"] = alive
    wait_for("the other node leads", lambda: alive.metrics("scheduler").get("scheduler_leader") == 1, timeout=60)
    wait_for("its leader-only loops run", lambda: timeout_runs() > runs, timeout=30)
    # and it still runs jobs: one more renewal, by the survivor
    job = one("INSERT INTO jobs (type, certificate_id, requested_by) VALUES ('Renewal', 'mc-mn-1', 'after-kill') "
              "RETURNING id")
    wait_for("a job after the kill", lambda: one("SELECT status FROM jobs WHERE id = '%s'" % job) == "Completed",
             timeout=30)
    check(one("SELECT claimed_by FROM jobs WHERE id = '%s'" % job).endswith("/%d" % alive.status()["scheduler"]["pid"]),
          "run by the survivor")


def main():
    global root, pg
    root = make_root("cw-multinode-")
    pg = Postgres(root, free_port())
    for n in ("a", "b"):
        r = os.path.join(root, n)
        os.makedirs(r)
        os.chmod(r, 0o755)
        S[n] = Certward(r, pg.dsn, extra=CONFIG)
    try:
        case(two_nodes_one_ca)
        case(thousand_jobs_each_once)
        case(leader_killed_other_takes_over)
        for n in ("a", "b"):
            c = S[n]
            if c.proc and c.proc.poll() is None:
                RUN.stop_clean(c)
    finally:
        for n in ("a", "b"):
            S[n].kill_everything()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
    RUN.finish()


if __name__ == "__main__":
    main()
