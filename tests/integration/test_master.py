"""certwardd against a throwaway PostgreSQL: workers as separate processes,
wiring, supervision, logs, control socket, reload, hardening, shutdown."""
import os
import pwd
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AS_ROOT, Cases, sanitizer_reports, teardown, BUILD, EDGES, TEST_HOOKS, WORKERS, Certward, Postgres, check,
                     exe_of, log, make_root, remove_root, uid_of, wait_for,
                     worker_pids_of_build)

RUN = Cases(lambda: cw)
case = RUN.case


def config_errors():
    """A config error stops start-up with one line naming file, line and key."""
    bad = os.path.join(root, "bad.yml")
    cases = [
        ("master:\n  log_dir: /tmp\n  colour: blue\n", "bad.yml:3", "master.colour"),
        ("store:\n  dsn: x\n  pool_size: many\n", "bad.yml:3", "store.pool_size"),
        ("master:\n  log_dir: /tmp\n", "bad.yml", "store.dsn"),
        ("store:\n  dsn: x\nbogus:\n  a: 1\n", "bad.yml:3", "bogus"),
    ]
    for text, where, key in cases:
        with open(bad, "w") as f:
            f.write(text)
        for args in (["--check-config"], ["-f"]):
            out = subprocess.run([os.path.join(BUILD, "certwardd"), "-c", bad] + args,
                                 capture_output=True, text=True, timeout=30)
            lines = out.stderr.strip().splitlines()
            check(out.returncode != 0, "certwardd %s accepted %r" % (args, text))
            check(len(lines) == 1, "expected one line, got %r" % out.stderr)
            check(where in lines[0] and key in lines[0],
                  "message %r does not name %s and %s" % (lines[0], where, key))
    # a secret never appears in the message
    with open(bad, "w") as f:
        f.write("store:\n  dsn: [password=hunter2]\n")
    out = subprocess.run([os.path.join(BUILD, "certwardd"), "-c", bad, "--check-config"],
                         capture_output=True, text=True, timeout=30)
    check(out.returncode != 0 and "hunter2" not in out.stderr, "secret leaked: %r" % out.stderr)
    good = subprocess.run([os.path.join(BUILD, "certwardd"), "-c", cw.config, "--check-config"],
                          capture_output=True, text=True, timeout=30)
    check(good.returncode == 0, "good config rejected: %s" % good.stderr)
    # environment overrides are validated too
    env = dict(os.environ, CERTWARD_STORE_POOL_SIZE="0")
    out = subprocess.run([os.path.join(BUILD, "certwardd"), "-c", cw.config, "--check-config"],
                         capture_output=True, text=True, timeout=30, env=env)
    check(out.returncode != 0 and "store.pool_size" in out.stderr, "env override not checked: %r" % out.stderr)


def workers_are_separate_processes():
    st = wait_for("all workers running", cw.all_running, timeout=60)
    pids = set()
    for w in WORKERS:
        pid = st[w]["pid"]
        exe = exe_of(pid)
        check(exe and os.path.basename(exe) == "certward-" + w,
              "%s runs %r, not certward-%s" % (w, exe, w))
        pids.add(pid)
        if AS_ROOT:
            want = "certward-signer" if w == "signer" else "certward"
            check(uid_of(pid) == pwd.getpwnam(want).pw_uid, "%s does not run as %s" % (w, want))
        # nothing of the master's leaks in: no log file, no control socket
        for fd in os.listdir("/proc/%d/fd" % pid):
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            check(not target.endswith(".log"), "%s inherited a log file: %s" % (w, target))
            check(cw.sock not in target, "%s inherited the control socket" % w)
        with open("/proc/%d/status" % pid) as f:
            status = f.read()
        check("NoNewPrivs:\t1" in status, "%s lacks no_new_privs" % w)
        check("Seccomp:\t2" in status, "%s has no seccomp filter" % w)
        if w == "signer":
            with open("/proc/%d/limits" % pid) as f:
                core = [l for l in f if l.startswith("Max core file size")][0].split()
            check(core[4] == "0" and core[5] == "0", "signer may dump core: %r" % core)
    check(len(pids) == len(WORKERS), "workers share a process")
    check(cw.proc.pid not in pids, "master is not a worker")


def pings_everywhere():
    for w in WORKERS:
        out = cw.ctl("ping", w).stdout
        check("pong from pid" in out, "ping %s: %r" % (w, out))
    for a, b in EDGES:
        for x, y in ((a, b), (b, a)):
            out = cw.ctl("ping", x, y).stdout
            check("%s -> %s: pong" % (x, y) in out, "peer ping %s->%s: %r" % (x, y, out))
    # not wired: the signer has no channel to the store
    out = cw.ctl("ping", "signer", "store", check_rc=False)
    check(out.returncode != 0 and "no such peer" in out.stderr, "signer reached store: %r" % (out,))


def store_reaches_postgres():
    m = wait_for("store connected", lambda: (lambda m: m if m.get("pg_connections_up") == 2 else None)(cw.metrics("store")))
    check(m["pg_pool_size"] == 2, "pool size %r" % m)


def kill_each_worker():
    for w in WORKERS:
        before = wait_for("all running", cw.all_running, timeout=30)
        old = before[w]["pid"]
        os.kill(old, signal.SIGKILL)

        def back():
            st = cw.status()
            s = st.get(w)
            return st if s and s["state"] == "running" and s["pid"] not in (None, old) else None
        st = wait_for("%s back after SIGKILL" % w, back, timeout=20)
        check(st[w]["restarts"] == before[w]["restarts"] + 1, "restart not counted for %s" % w)
        check("SIGKILL" in st[w]["last_exit"], "last exit of %s: %r" % (w, st[w]["last_exit"]))
        check(exe_of(st[w]["pid"]).endswith("certward-" + w), "wrong executable after restart")
        check("pong" in cw.ctl("ping", w).stdout, "master cannot ping restarted %s" % w)
        for a, b in EDGES:
            if w in (a, b):
                peer = b if a == w else a
                # both directions: the peer got the new channel end, and the new worker has its own
                wait_for("%s -> %s" % (peer, w), lambda: cw.ctl("ping", peer, w, check_rc=False).returncode == 0, timeout=10)
                check("pong" in cw.ctl("ping", w, peer).stdout, "%s cannot reach %s" % (w, peer))
        log("  %s: pid %d -> %d" % (w, old, st[w]["pid"]))


def seccomp_kills_signer():
    if not TEST_HOOKS:
        log("  (skipped: build without -Dtest_hooks=true)")
        return
    before = wait_for("all running", cw.all_running, timeout=30)
    out = cw.ctl("test-hook", "signer", "syscall", "socket", check_rc=False, timeout=30)
    check(out.returncode != 0, "signer survived socket(): %r" % (out,))

    def back():
        st = cw.status()
        s = st["signer"]
        return st if s["state"] == "running" and s["pid"] != before["signer"]["pid"] else None
    st = wait_for("signer restarted", back, timeout=20)
    check("SIGSYS" in st["signer"]["last_exit"], "signer exit: %r" % st["signer"]["last_exit"])
    with open(os.path.join(cw.logs, "signer.log")) as f:
        check("forbidden syscall" in f.read(), "no log line about the forbidden syscall")
    # the same syscall is allowed where the worker needs it
    out = cw.ctl("test-hook", "store", "syscall", "socket", check_rc=False)
    check("was allowed" in out.stderr, "store: %r" % (out,))
    out = cw.ctl("test-hook", "store", "syscall", "execve", check_rc=False)
    check(out.returncode != 0, "store could exec")
    wait_for("store back", lambda: cw.status()["store"]["state"] == "running", timeout=20)


def bad_frame_restarts_sender():
    """A frame over its type's bound: the receiver drops the channel, and the
    master restarts the sender."""
    if not TEST_HOOKS:
        log("  (skipped: build without -Dtest_hooks=true)")
        return
    before = wait_for("all running", cw.all_running, timeout=30)
    out = cw.ctl("test-hook", "scheduler", "bad-frame", "store", check_rc=False)
    # the master may restart the scheduler (on the store's report) before
    # the scheduler's own answer to the hook reaches it
    check("bad frame sent" in out.stderr or "went away before answering" in out.stderr, "hook: %r" % (out,))

    def back():
        st = cw.status()
        s = st["scheduler"]
        return st if s["state"] == "running" and s["pid"] != before["scheduler"]["pid"] else None
    st = wait_for("scheduler restarted", back, timeout=20)
    check(st["store"]["pid"] == before["store"]["pid"], "the receiver was restarted instead")
    check(st["scheduler"]["restarts"] == before["scheduler"]["restarts"] + 1, "restart not counted")
    with open(os.path.join(cw.logs, "store.log")) as f:
        check("ipc protocol error" in f.read(), "store did not log the bad frame")
    with open(os.path.join(cw.logs, "master.log")) as f:
        check("protocol violation by scheduler" in f.read(), "master did not report it")
    wait_for("store <-> scheduler", lambda: cw.ctl("ping", "store", "scheduler", check_rc=False).returncode == 0, timeout=10)
    check("pong" in cw.ctl("ping", "scheduler", "store").stdout, "channel not re-established")


def status_shows_metrics():
    out = cw.ctl("status", "--metrics").stdout
    check("[store]" in out and "pg_connections_up 2" in out, "no store metrics: %r" % out)
    check("[signer]" in out and "uptime_seconds" in out, "no signer metrics")


def logs_per_worker():
    for w in WORKERS + ["master"]:
        path = os.path.join(cw.logs, w + ".log")
        check(os.path.exists(path), "no %s" % path)
        with open(path) as f:
            lines = [l for l in f.read().splitlines() if l]
        check(lines, "%s is empty" % path)
        for l in lines:
            check(l.startswith("time=") and " level=" in l and " pid=" in l and " msg=" in l,
                  "malformed line in %s: %r" % (path, l))
        check(any(" worker=%s " % w in l for l in lines), "%s has no line of %s" % (path, w))
    with open(os.path.join(cw.logs, "master.log")) as f:
        text = f.read()
    check("worker store died" in text, "master.log does not report the store's death")
    check(cw.dsn not in text, "the DSN reached a log line")
    # foreground echo with the worker's name in front
    check("store: time=" in cw.tail(10000), "no foreground echo")
    # logrotate: move the file away, SIGUSR1, new lines land in a new file
    os.rename(os.path.join(cw.logs, "store.log"), os.path.join(cw.logs, "store.log.1"))
    cw.proc.send_signal(signal.SIGUSR1)
    wait_for("reopen", lambda: "log files reopened" in open(os.path.join(cw.logs, "master.log")).read())
    cw.ctl("restart", "store")
    wait_for("new store.log", lambda: os.path.exists(os.path.join(cw.logs, "store.log")) and
             "ready" in open(os.path.join(cw.logs, "store.log")).read(), timeout=20)


def restart_and_reload():
    st = wait_for("all running", cw.all_running, timeout=30)
    cw.ctl("restart", "deploy")
    st2 = wait_for("deploy restarted", lambda: (lambda s: s if s["deploy"]["state"] == "running" and s["deploy"]["pid"] != st["deploy"]["pid"] else None)(cw.status()), timeout=20)
    check(st2["deploy"]["restarts"] == st["deploy"]["restarts"], "a requested restart counts as a crash")
    out = cw.ctl("restart", "nosuch", check_rc=False)
    check(out.returncode != 0 and "no such worker" in out.stderr, "restart nosuch: %r" % (out,))
    out = cw.ctl("reload").stdout
    check("no worker section changed" in out, "reload without change: %r" % out)
    st = wait_for("all running", cw.all_running, timeout=30)
    # change only the scheduler's section: only the scheduler restarts
    cw.write_config("scheduler:\n  tick: 2s\n")
    cw.proc.send_signal(signal.SIGHUP)
    wait_for("reload logged", lambda: "reload: scheduler restarted" in open(os.path.join(cw.logs, "master.log")).read())
    st2 = wait_for("scheduler restarted", lambda: (lambda s: s if s["scheduler"]["state"] == "running" and s["scheduler"]["pid"] != st["scheduler"]["pid"] else None)(cw.status()), timeout=20)
    for w in WORKERS:
        if w != "scheduler":
            check(st2[w]["pid"] == st[w]["pid"], "%s restarted by an unrelated reload" % w)
    # a bad file is refused with the one-line message, and everything keeps running
    with open(cw.config, "a") as f:
        f.write("notifier:\n  nonsense: 1\n")
    out = cw.ctl("reload", check_rc=False)
    check(out.returncode != 0 and "notifier.nonsense" in out.stderr, "bad reload: %r" % (out,))
    check(cw.all_running(), "a failed reload disturbed the workers")
    cw.write_config("scheduler:\n  tick: 2s\n")


def crashloop_reported():
    key_dir = os.path.join(cw.state, "signer")
    os.chmod(key_dir, 0o755)  # the signer refuses a key directory others can read
    cw.ctl("restart", "signer")
    wait_for("signer crash-looping", lambda: cw.status()["signer"]["state"] == "crashloop", timeout=30)
    for w in WORKERS:
        if w != "signer":
            check("pong" in cw.ctl("ping", w).stdout, "%s affected by the crash loop" % w)
    with open(os.path.join(cw.logs, "master.log")) as f:
        check("crash-looping" in f.read(), "crash loop not reported in master.log")
    os.chmod(key_dir, 0o700)
    wait_for("signer recovers", lambda: cw.status()["signer"]["state"] == "running", timeout=30)


def sigterm_leaves_nothing():
    st = wait_for("all running", cw.all_running, timeout=30)
    pids = [st[w]["pid"] for w in WORKERS] + [cw.proc.pid]
    rc = cw.stop(timeout=30)
    check(rc == 0, "certwardd exit status %r" % rc)
    for pid in pids:
        check(not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split()[2] == "Z",
              "pid %d still alive" % pid)
    check(not worker_pids_of_build(), "processes left: %r" % worker_pids_of_build())
    check(not os.path.exists(cw.sock), "control socket left behind")
    with open(os.path.join(cw.logs, "master.log")) as f:
        final = f.read().split("stopping workers")[-1]
    for w in WORKERS:
        check('worker %s stopped" exit="exit 0"' % w in final, "%s did not exit 0 at shutdown" % w)
    with open(os.path.join(cw.logs, "master.log")) as f:
        text = f.read()
    order = [text.rfind("worker %s stopped" % w) for w in ("api", "scheduler", "signer", "store")]
    check(all(o >= 0 for o in order) and order == sorted(order), "stop order wrong: %r" % order)


def no_sanitizer_reports():
    """Every worker ran under ASan/UBSan in the test build: any report in any
    log is a failure, even when the worker was restarted afterwards."""
    bad = sanitizer_reports(cw.logs)
    check(not bad, "sanitizer reports:\n" + "\n".join(bad[:20]))


root = make_root("certward-it-")
cw = None
pg = None
try:
    pg = Postgres(root, 15400 + os.getpid() % 500)
    cw = Certward(root, pg.dsn)
    case(config_errors)
    cw.start()
    case(workers_are_separate_processes)
    case(pings_everywhere)
    case(store_reaches_postgres)
    case(kill_each_worker)
    case(seccomp_kills_signer)
    case(bad_frame_restarts_sender)
    case(status_shows_metrics)
    case(logs_per_worker)
    case(restart_and_reload)
    case(crashloop_reported)
    case(sigterm_leaves_nothing)
    case(no_sanitizer_reports)
finally:
    teardown(cw, pg, root)
RUN.finish()
