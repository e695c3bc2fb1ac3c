"""The certward CLI's REST commands against a real certwardd over HTTPS:
status, health, version and api with the pinned certificate, a wrong
certificate, an unreachable port, an error answer, and an API key that
never shows in the output."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, Cases, Certward, Postgres, check, free_port, make_root, teardown,
                     wait_for)

RUN = Cases(lambda: cw)
case = RUN.case
KEY = "cw_0123456789ab_" + "5e" * 32


def cert_path():
    return os.path.join(cw.state, "tls", "api.crt")


def url():
    return "https://127.0.0.1:%d" % cw.api_port


def cli(*args, env=None, timeout=30):
    e = {k: v for k, v in os.environ.items() if not k.startswith("CERTWARD_")}
    e.update(env or {})
    return subprocess.run([os.path.join(BUILD, "certward")] + list(args), capture_output=True,
                          text=True, timeout=timeout, env=e)


def expect(out, rc, what):
    check(out.returncode == rc, "%s: exit %d, want %d\nstdout: %s\nstderr: %s"
          % (what, out.returncode, rc, out.stdout, out.stderr))


def status_and_health():
    out = cli("status", "--server", url(), "--cacert", cert_path())
    expect(out, 0, "status")
    check("status: ready" in out.stdout, "status output: %r" % out.stdout)
    out = cli("health", "--server", url(), "--cacert", cert_path())
    expect(out, 0, "health")
    check("health: ok" in out.stdout, "health output: %r" % out.stdout)
    out = cli("health", "--server", url(), "--cacert", cert_path(), "--format", "json")
    expect(out, 0, "health --format json")
    check('"status":"ok"' in out.stdout.replace(" ", ""), "health json: %r" % out.stdout)


def server_url_from_env():
    out = cli("status", "--cacert", cert_path(), "--format", "json",
              env={"CERTWARD_SERVER_URL": url()})
    expect(out, 0, "status via CERTWARD_SERVER_URL")
    check('"ready"' in out.stdout, "status json: %r" % out.stdout)
    # the host name is checked too: the certificate names localhost
    out = cli("health", "--cacert", cert_path(),
              env={"CERTWARD_SERVER_URL": "https://localhost:%d/" % cw.api_port})
    expect(out, 0, "health via localhost")


def version_tolerates_404():
    out = cli("version", "--server", url(), "--cacert", cert_path())
    expect(out, 0, "version")
    check("certward 0.1" in out.stdout or "certward " in out.stdout, "version: %r" % out.stdout)
    check("server:" in out.stdout, "version shows no server line: %r" % out.stdout)


def wrong_cacert_is_not_trusted():
    other = os.path.join(root, "other.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", os.path.join(root, "other.key"),
                    "-out", other, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   capture_output=True, check=True, timeout=30)
    out = cli("status", "--server", url(), "--cacert", other)
    check(out.returncode not in (0, 1), "wrong --cacert: exit %d" % out.returncode)
    check("not trusted" in out.stderr and "--cacert" in out.stderr,
          "wrong --cacert message: %r" % out.stderr)
    check(len(out.stderr.strip().splitlines()) == 1, "not one line: %r" % out.stderr)
    # the system store does not know the self-signed certificate either
    out = cli("health", "--server", url())
    check(out.returncode != 0 and "not trusted" in out.stderr and "--cacert" in out.stderr,
          "system store: %d %r" % (out.returncode, out.stderr))
    # a name the certificate does not carry
    out = cli("health", "--server", "https://127.0.0.2:%d" % cw.api_port, "--cacert", cert_path())
    check(out.returncode != 0, "127.0.0.2 accepted")


def unreachable_port_fails_fast():
    t0 = time.monotonic()
    out = cli("status", "--server", "https://127.0.0.1:%d" % free_port(), "--cacert", cert_path())
    check(time.monotonic() - t0 < 5, "took %.1fs" % (time.monotonic() - t0))
    check(out.returncode not in (0, 1), "exit %d" % out.returncode)
    check("cannot connect" in out.stderr, "message: %r" % out.stderr)
    # a port that accepts but never answers: the --timeout applies
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        t0 = time.monotonic()
        out = cli("health", "--server", "https://127.0.0.1:%d" % s.getsockname()[1],
                  "--cacert", cert_path(), "--timeout", "1")
        took = time.monotonic() - t0
    check(out.returncode != 0 and "timed out" in out.stderr, "silent server: %r" % out.stderr)
    check(took < 5, "--timeout 1 took %.1fs" % took)


def api_error_detail():
    out = cli("api", "GET", "/nope", "--server", url(), "--cacert", cert_path())
    check(out.returncode == 1, "exit %d" % out.returncode)
    check("404" in out.stderr and "no such route" in out.stderr, "stderr: %r" % out.stderr)
    check(len(out.stderr.strip().splitlines()) == 1, "not one line: %r" % out.stderr)
    out = cli("api", "GET", "/health", "--server", url(), "--cacert", cert_path())
    expect(out, 0, "api GET /health")
    check('"ok"' in out.stdout, "api GET /health: %r" % out.stdout)
    out = cli("api", "POST", "/nope", "--data", "{not json", "--server", url(),
              "--cacert", cert_path())
    check(out.returncode != 0 and "not JSON" in out.stderr, "bad --data: %r" % out.stderr)


def api_key_never_printed():
    env = {"CERTWARD_API_KEY": KEY}
    runs = [
        cli("api", "GET", "/nope", "--server", url(), "--cacert", cert_path(), env=env),
        cli("api", "GET", "/health", "--server", url(), "--cacert", cert_path(), env=env),
        cli("status", "--server", url(), "--cacert", cert_path(), env=env),
        cli("status", "--server", url(), env=env),  # not trusted
        cli("status", "--server", "https://127.0.0.1:%d" % free_port(), env=env),
        cli("api", "GET", "/x", "--server", "not-a-url", env=env),
        cli("api", "GET", "/x", "--server", url(), "--cacert", cert_path(),
            env={"CERTWARD_API_KEY": KEY + "\nX-Injected: 1"}),
    ]
    for out in runs:
        both = out.stdout + out.stderr
        check(KEY not in both and KEY[16:] not in both, "the key shows: %r" % both)
    check(runs[0].returncode == 1 and runs[1].returncode == 0, "key runs: %r"
          % [r.returncode for r in runs])
    check(runs[-1].returncode != 0, "a key with a line break was sent")


def ctl_still_works():
    out = cw.ctl("status")
    check(out.stdout.startswith("WORKER"), "ctl status: %r" % out.stdout)


LAST = {}


def ready_now():
    out = cli("status", "--server", url(), "--cacert", cert_path())
    LAST["status"] = (out.returncode, out.stdout, out.stderr)
    return out.returncode == 0 or None


root = make_root("certward-cli-")
cw = None
pg = None
try:
    pg = Postgres(root, 16500 + os.getpid() % 90)
    cw = Certward(root, pg.dsn)
    cw.start()
    wait_for("all running", cw.all_running, timeout=60)
    wait_for("certificate published", lambda: os.path.exists(cert_path()), timeout=30)
    try:
        wait_for("ready", ready_now, timeout=30, interval=0.3)
    except AssertionError:
        RUN.fail("never ready: %r" % (LAST.get("status"),))
        raise
    case(status_and_health)
    case(server_url_from_env)
    case(version_tolerates_404)
    case(wrong_cacert_is_not_trusted)
    case(unreachable_port_fails_fast)
    case(api_error_detail)
    case(api_key_never_printed)
    case(ctl_still_works)
    rc = cw.stop()
    if rc != 0:
        RUN.fail("certwardd exit status %r" % rc)
finally:
    teardown(cw, pg, root)
RUN.finish()
