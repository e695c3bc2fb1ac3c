"""DNS-01 hooks run by certward-deploy for the scheduler (DNS_HOOK_RUN ->
DNS_HOOK_DONE), asked for through the scheduler's test hook "dns-hook"
(builds with -Dtest_hooks=true): the argv and environment a hook gets, no
shell, refusals, the timeout, the parallel limit, the output cap; the shipped
contrib/dns-hooks/nsupdate against a real knot DNS server (RFC 2136 with a
TSIG key, checked with dig) and contrib/dns-hooks/cloudflare against a small
HTTPS fake of the Cloudflare API v4."""
import base64
import http.server
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import threading
import time
import urllib.parse

from harness import (AS_ROOT, SOURCE, TEST_HOOKS, Cases, Certward, Postgres, check, free_port, log, make_root,
                     teardown, wait_for)
from test_notifier import make_pki  # a CA and a certificate for 127.0.0.1

TOKEN = "s3cret-env-token-7f2a"
CF_TOKEN = "cf-api-token-91c3"
CF_ZONE = "zone0123456789abcdef"
TSIG_SECRET = base64.b64encode(b"certward-dns-hooks-test-tsig-key").decode()
TIMEOUT_S = 3
PARALLEL = 2

RECORD_HOOK = """#!/bin/sh
# one line per argument, then what the environment holds
{
printf 'argc=%%s\\n' "$#"
for a in "$@"; do printf 'arg=%%s\\n' "$a"; done
printf 'token=%%s\\n' "${TEST_TOKEN:-unset}"
printf 'home=%%s\\n' "${HOME:-unset}"
printf 'path=%%s\\n' "$PATH"
printf 'end\\n'
} >> %(out)s/record.log
echo "recorded $1 $2"
"""

SLEEP_HOOK = """#!/bin/sh
echo "sleeping"
sleep 60 &
echo $! > %(out)s/sleep.pid
wait
touch %(out)s/sleep.finished
"""

BIG_HOOK = """#!/bin/sh
# 10000 bytes on stdout and stderr together, then failure
i=0
while [ $i -lt 100 ]; do
	printf '%%099d\\n' "$i"
	printf '%%099d\\n' "$i" >&2
	i=$((i + 1))
done
exit 3
"""

PARALLEL_HOOK = """#!/bin/sh
echo "+ $$" >> %(out)s/parallel.log
sleep 1
echo "- $$" >> %(out)s/parallel.log
"""


class FakeCloudflare:
    """The three calls of the API v4 the hook makes: create, list by type,
    name and content, delete; every request needs the bearer token."""

    def __init__(self, cert, key):
        self.records = {}
        self.requests = []
        self.lock = threading.Lock()
        fake = self
        prefix = "/client/v4/zones/%s/dns_records" % CF_ZONE

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def answer(self, status, obj):
                out = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def handle_any(self, method):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n) if n else b""
                url = urllib.parse.urlsplit(self.path)
                with fake.lock:
                    fake.requests.append((method, self.path, self.headers.get("Authorization"), body))
                if self.headers.get("Authorization") != "Bearer " + CF_TOKEN:
                    return self.answer(403, {"success": False, "errors": [{"code": 10000,
                                                                           "message": "Authentication error"}]})
                if not url.path.startswith(prefix):
                    return self.answer(404, {"success": False, "errors": [{"code": 7003, "message": "no route"}]})
                rest = url.path[len(prefix):]
                with fake.lock:
                    if method == "POST" and rest == "":
                        rec = json.loads(body)
                        rid = "%032x" % (len(fake.records) + 1)
                        rec.update({"id": rid, "zone_id": CF_ZONE})
                        fake.records[rid] = rec
                        return self.answer(200, {"success": True, "errors": [], "result": rec})
                    if method == "GET" and rest == "":
                        q = urllib.parse.parse_qs(url.query)
                        found = [r for r in fake.records.values()
                                 if r["type"] == q.get("type", [""])[0] and r["name"] == q.get("name", [""])[0]
                                 and r["content"] == q.get("content", [""])[0]]
                        return self.answer(200, {"success": True, "errors": [], "result": found,
                                                 "result_info": {"count": len(found)}})
                    if method == "DELETE" and rest.startswith("/") and rest[1:] in fake.records:
                        del fake.records[rest[1:]]
                        return self.answer(200, {"success": True, "errors": [], "result": {"id": rest[1:]}})
                return self.answer(404, {"success": False, "errors": [{"code": 81044, "message": "not found"}]})

            def do_POST(self):
                self.handle_any("POST")

            def do_GET(self):
                self.handle_any("GET")

            def do_DELETE(self):
                self.handle_any("DELETE")

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


class Knot:
    """knotd serving example.test on loopback, accepting updates signed with
    the test's TSIG key."""

    def __init__(self, d):
        os.makedirs(d)
        self.dir = d
        self.port = free_port()
        with open(os.path.join(d, "example.test.zone"), "w") as f:
            f.write("$ORIGIN example.test.\n$TTL 60\n"
                    "@ SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 60\n"
                    "@ NS ns\nns A 127.0.0.1\n")
        with open(os.path.join(d, "knot.conf"), "w") as f:
            f.write("server:\n  listen: 127.0.0.1@%d\n  rundir: %s\n"
                    "database:\n  storage: %s\n"
                    "key:\n  - id: certward-test\n    algorithm: hmac-sha256\n    secret: %s\n"
                    "acl:\n  - id: update\n    key: certward-test\n    action: update\n"
                    "zone:\n  - domain: example.test\n    file: %s/example.test.zone\n    acl: update\n"
                    "    zonefile-sync: -1\n"
                    "log:\n  - target: stderr\n    any: info\n" % (self.port, d, d, TSIG_SECRET, d))
        self.out = open(os.path.join(d, "knotd.out"), "w")
        self.proc = subprocess.Popen(["knotd", "-c", os.path.join(d, "knot.conf")], stdout=self.out,
                                     stderr=subprocess.STDOUT)
        wait_for("knotd answering", lambda: self.txt("ns.example.test") is not None or self.proc.poll() is not None,
                 timeout=20)
        check(self.proc.poll() is None, "knotd exited at start")

    def txt(self, name):
        out = subprocess.run(["dig", "+short", "+time=1", "+tries=1", "@127.0.0.1", "-p", str(self.port), "TXT",
                              name], capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            return None
        return [line.strip().strip('"') for line in out.stdout.splitlines() if line.strip()]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()


def write_hook(hooks, name, text, mode=0o755):
    path = os.path.join(hooks, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


class Runner:
    """Asks the scheduler to send DNS_HOOK_RUN and reads the outcome its
    log records."""

    def __init__(self, cw, root):
        self.cw = cw
        self.root = root
        self.n = 0

    def send(self, hook, action, record, value):
        self.n += 1
        path = os.path.join(self.root, "q%d" % self.n)
        check(len(path) < 32, "request path too long for the test hook: %s" % path)
        with open(path, "w") as f:
            f.write("%s\n%s\n%s\n%s\n" % (hook, action, record, value))
        os.chmod(path, 0o644)
        out = self.cw.ctl("test-hook", "scheduler", "dns-hook", path, check_rc=False)
        check("sent to deploy" in out.stdout + out.stderr, "the test hook did not send: %s%s" % (out.stdout, out.stderr))
        return path

    def outcome(self, path):
        pat = re.compile(r"dns-hook %s: (done|error)" % re.escape(path))
        with open(os.path.join(self.cw.logs, "scheduler.log"), errors="replace") as f:
            for line in f:
                if pat.search(line):
                    return line
        return None

    def wait(self, path, timeout=60):
        line = wait_for("the answer to " + path, lambda: self.outcome(path), timeout=timeout)
        res = {"line": line, "done": ": done" in line}
        m = re.search(r"exit_status=(\d+)", line)
        res["status"] = int(m.group(1)) if m else None
        m = re.search(r"output_len=(\d+)", line)
        res["output_len"] = int(m.group(1)) if m else None
        m = re.search(r"code=(\d+)", line)
        res["code"] = int(m.group(1)) if m else None
        return res

    def run(self, hook, action, record, value, timeout=60):
        return self.wait(self.send(hook, action, record, value), timeout)


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def records_of(text):
    """record.log -> one dict per run: args (list), token, home, path."""
    runs, cur = [], None
    for line in text.splitlines():
        k, _, v = line.partition("=")
        if k == "argc":
            cur = {"args": [], "argc": int(v)}
        elif k == "arg":
            cur["args"].append(v)
        elif line == "end":
            runs.append(cur)
        elif cur is not None:
            cur[k] = v
    return runs


def deploy_metrics(cw):
    return cw.metrics("deploy")


def main():
    if not TEST_HOOKS:
        log("SKIP: needs -Dtest_hooks=true (the scheduler's dns-hook test hook)")
        print("0 passed, 0 failed")
        return
    root = make_root("cwdns-")
    pg = cw = knot = cf = None
    cases = Cases(lambda: cw)
    try:
        hooks = os.path.join(root, "hooks")
        out = os.path.join(root, "out")
        bindir = os.path.join(root, "bin")
        for d in (hooks, out, bindir):
            os.makedirs(d)
        os.chmod(hooks, 0o755)
        os.chmod(out, 0o777)  # the hooks run as the service user
        write_hook(hooks, "record", RECORD_HOOK % {"out": out})
        write_hook(hooks, "sleeper", SLEEP_HOOK % {"out": out})
        write_hook(hooks, "big", BIG_HOOK % {})
        write_hook(hooks, "parallel", PARALLEL_HOOK % {"out": out})
        write_hook(hooks, "open-to-all", RECORD_HOOK % {"out": out}, mode=0o757)
        os.chmod(os.path.join(hooks, "open-to-all"), 0o757)
        shutil.copy(os.path.join(SOURCE, "contrib", "dns-hooks", "nsupdate"), os.path.join(hooks, "nsupdate"))
        shutil.copy(os.path.join(SOURCE, "contrib", "dns-hooks", "cloudflare"), os.path.join(hooks, "cloudflare"))
        for h in ("nsupdate", "cloudflare"):
            os.chmod(os.path.join(hooks, h), 0o755)
        tsig = os.path.join(root, "tsig.key")
        with open(tsig, "w") as f:
            f.write('key "certward-test" {\n\talgorithm hmac-sha256;\n\tsecret "%s";\n};\n' % TSIG_SECRET)
        os.chmod(tsig, 0o644)
        ca, cert, key = make_pki(root)
        os.chmod(ca, 0o644)
        knot = Knot(os.path.join(root, "knot"))
        cf = FakeCloudflare(cert, key)
        env = ("TEST_TOKEN=%s PATH=%s:/usr/bin:/bin NSUPDATE_SERVER=127.0.0.1:%d NSUPDATE_ZONE=example.test "
               "NSUPDATE_KEY=%s CLOUDFLARE_API_TOKEN=%s CLOUDFLARE_ZONE_ID=%s "
               "CLOUDFLARE_API_URL=https://127.0.0.1:%d/client/v4 CURL_CA_BUNDLE=%s"
               % (TOKEN, bindir, knot.port, tsig, CF_TOKEN, CF_ZONE, cf.port, ca))
        pg = Postgres(root, free_port())
        cw = Certward(root, pg.dsn, extra=("deploy:\n  dns_hook_dir: %s\n  dns_hook_env: \"%s\"\n"
                                           "  dns_hook_timeout: %ds\n  dns_hook_max_parallel: %d\n"
                                           % (hooks, env, TIMEOUT_S, PARALLEL)))
        cw.start()
        wait_for("all workers running", cw.all_running, timeout=60)
        runner = Runner(cw, root)
        record_log = os.path.join(out, "record.log")

        def argv_and_environment():
            r = runner.run("record", "present", "_acme-challenge.www.example.test.", "Abc-_9=.xyz")
            check(r["done"] and r["status"] == 0, "record hook: %s" % r["line"])
            check("recorded present _acme-challenge.www.example.test." in r["line"], r["line"])
            runs = records_of(read(record_log))
            check(len(runs) == 1, "record hook ran %d times" % len(runs))
            got = runs[0]
            check(got["argc"] == 3 and got["args"] == ["present", "_acme-challenge.www.example.test.", "Abc-_9=.xyz"],
                  "argv: %r" % got)
            check(got["token"] == TOKEN, "TEST_TOKEN from dns_hook_env not seen: %r" % got)
            check(got["home"] == "unset", "the hook inherited more than PATH and dns_hook_env: %r" % got)
            check(got["path"] == "%s:/usr/bin:/bin" % bindir, "PATH is not dns_hook_env's: %r" % got)

        def cleanup_called():
            r = runner.run("record", "cleanup", "_acme-challenge.www.example.test", "Abc-_9=.xyz")
            check(r["done"] and r["status"] == 0, r["line"])
            last = records_of(read(record_log))[-1]
            check(last["args"] == ["cleanup", "_acme-challenge.www.example.test", "Abc-_9=.xyz"], "%r" % last)

        def no_shell():
            before = read(record_log)
            for value in ("a;touch /tmp/cwdns-pwned", "$(id)", "`id`", "a b", "a|b", "a'b", "x\"y"):
                r = runner.run("record", "present", "_acme-challenge.example.test", value)
                check(not r["done"] and r["code"] == 22 and "value" in r["line"],
                      "value %r was not refused: %s" % (value, r["line"]))
            check(read(record_log) == before, "a refused run reached the hook")
            check(not os.path.exists("/tmp/cwdns-pwned"), "a shell ran the value")
            # dns-persist-01 parameters: other printable characters, still one argument, never a shell's
            v = "ca.example; accounturi=https://ca.example/acct/1; $(id) `id` & | > x"
            r = runner.run("record", "present", "_validation-persist.example.test", v)
            check(r["done"] and r["status"] == 0, r["line"])
            last = records_of(read(record_log))[-1]
            check(last["args"] == ["present", "_validation-persist.example.test", v], "%r" % last)
            check(not os.path.exists(os.path.join(SOURCE, "x")) and not os.path.exists("x"), "a redirection ran")

        def bad_arguments_refused():
            before = read(record_log)
            for hook, action, rec, why in (("../record", "present", "_acme-challenge.a.test", "hook"),
                                          ("Record", "present", "_acme-challenge.a.test", "hook"),
                                          ("record", "update", "_acme-challenge.a.test", "action"),
                                          ("record", "present", "www.a.test", "record_name"),
                                          ("record", "present", "_acme-challenge", "record_name"),
                                          ("record", "present", "_acme-challenge.a..test", "record_name"),
                                          ("record", "present", "_acme-challenge." + "a." * 117 + "test",
                                           "record_name")):
                r = runner.run(hook, action, rec, "v")
                check(not r["done"] and r["code"] == 22 and why in r["line"], "%s %s %s: %s"
                      % (hook, action, rec, r["line"]))
            r = runner.run("missing", "present", "_acme-challenge.a.test", "v")
            check(not r["done"] and r["code"] == 2, "a missing hook: %s" % r["line"])
            check(read(record_log) == before, "a refused run reached the hook")

        def writable_hook_refused():
            r = runner.run("open-to-all", "present", "_acme-challenge.a.test", "v")
            check(not r["done"] and r["code"] == 13 and "writable by group or others" in r["line"], r["line"])
            runs = records_of(read(record_log))
            check(all(x["args"][1] != "_acme-challenge.a.test" for x in runs), "the writable hook ran")

        def timeout_kills():
            t0 = time.monotonic()
            r = runner.run("sleeper", "present", "_acme-challenge.a.test", "v", timeout=60)
            took = time.monotonic() - t0
            check(r["done"] and r["status"] == 124, "sleeper: %s" % r["line"])
            check("sleeping" in r["line"], "the output before the kill is kept: %s" % r["line"])
            pid = read(os.path.join(out, "sleep.pid")).strip()
            check(pid.isdigit(), "the sleeper never started")
            log("  sleeper answered 124 after %.1fs (timeout %ds)" % (took, TIMEOUT_S))
            check(took >= TIMEOUT_S - 0.5, "answered before the timeout: %.1fs" % took)
            time.sleep(1)
            check(not os.path.exists(os.path.join(out, "sleep.finished")), "the hook's sleep survived the kill")
            check(not os.path.exists("/proc/%s" % pid) or "sleep" not in read("/proc/%s/cmdline" % pid),
                  "the hook's child (sleep, pid %s) outlived the kill" % pid)

        def output_capped():
            r = runner.run("big", "present", "_acme-challenge.a.test", "v")
            check(r["done"] and r["status"] == 3, "big: %s" % r["line"])
            check(r["output_len"] == 4096, "output not capped at 4 KiB: %s" % r["output_len"])
            with open(os.path.join(cw.logs, "deploy.log"), errors="replace") as f:
                lines = [x for x in f if "hook=big" in x]
            check(lines and "output_bytes=20000" in lines[-1], "the whole output was not drained: %r" % lines[-1:])

        def parallel_limit():
            paths = [runner.send("parallel", "present", "_acme-challenge.p%d.test" % i, "v") for i in range(5)]
            results = [runner.wait(p, timeout=60) for p in paths]
            check(all(r["done"] and r["status"] == 0 for r in results), "%r" % [r["line"] for r in results])
            running = peak = 0
            for line in read(os.path.join(out, "parallel.log")).splitlines():
                running += 1 if line.startswith("+") else -1
                peak = max(peak, running)
            check(peak == PARALLEL, "%d hooks ran at once, the limit is %d" % (peak, PARALLEL))

        def nsupdate_against_knot():
            name = "_acme-challenge.www.example.test."
            r = runner.run("nsupdate", "present", name, "tok-A_1=")
            check(r["done"] and r["status"] == 0, "nsupdate present: %s" % r["line"])
            check(knot.txt(name) == ["tok-A_1="], "knot does not serve the record: %r" % knot.txt(name))
            r = runner.run("nsupdate", "present", name, "tok-B_2")
            check(r["done"] and r["status"] == 0, r["line"])
            check(sorted(knot.txt(name)) == ["tok-A_1=", "tok-B_2"], "%r" % knot.txt(name))
            r = runner.run("nsupdate", "cleanup", name, "tok-A_1=")
            check(r["done"] and r["status"] == 0, "nsupdate cleanup: %s" % r["line"])
            check(knot.txt(name) == ["tok-B_2"], "cleanup removed the wrong value: %r" % knot.txt(name))
            r = runner.run("nsupdate", "cleanup", name, "tok-B_2")
            check(r["done"] and r["status"] == 0 and knot.txt(name) == [], r["line"])
            # a zone the server does not have: a failure with nsupdate's reason
            r = runner.run("nsupdate", "present", "_acme-challenge.other.invalid", "v")
            check(r["done"] and r["status"] != 0 and "nsupdate failed" in r["line"], r["line"])

        def nsupdate_argument_checks():
            hook = os.path.join(SOURCE, "contrib", "dns-hooks", "nsupdate")
            env = {"PATH": "/usr/bin:/bin", "NSUPDATE_SERVER": "127.0.0.1:%d" % knot.port}
            for args, why in ((["present", "_acme-challenge.a.test"], "usage"),
                              (["add", "_acme-challenge.a.test", "v"], "action"),
                              (["present", "a;b.test", "v"], "record_name"),
                              (["present", "_acme-challenge.a.test", 'v"\nsend'], "value"),
                              (["present", "_acme-challenge.a.test", "v\\"], "value")):
                p = subprocess.run([hook] + args, env=env, capture_output=True, text=True, timeout=30)
                check(p.returncode != 0 and why in p.stderr, "%r: %d %s" % (args, p.returncode, p.stderr))
            p = subprocess.run([hook, "present", "_acme-challenge.a.test", "v"], env={"PATH": "/usr/bin:/bin"},
                               capture_output=True, text=True, timeout=30)
            check(p.returncode != 0 and "NSUPDATE_SERVER" in p.stderr, p.stderr)

        def cloudflare_against_fake():
            name = "_acme-challenge.shop.example.test"
            r = runner.run("cloudflare", "present", name + ".", "cf-Value_1=")
            check(r["done"] and r["status"] == 0, "cloudflare present: %s" % r["line"])
            recs = list(cf.records.values())
            check(len(recs) == 1 and recs[0]["type"] == "TXT" and recs[0]["name"] == name
                  and recs[0]["content"] == "cf-Value_1=" and recs[0]["ttl"] == 60, "%r" % recs)
            r = runner.run("cloudflare", "present", name, "other")
            check(r["done"] and r["status"] == 0 and len(cf.records) == 2, r["line"])
            r = runner.run("cloudflare", "cleanup", name, "cf-Value_1=")
            check(r["done"] and r["status"] == 0, "cloudflare cleanup: %s" % r["line"])
            check([x["content"] for x in cf.records.values()] == ["other"], "%r" % cf.records)
            check(all(a == "Bearer " + CF_TOKEN for _, _, a, _ in cf.requests), "a request without the token")
            methods = [m for m, _, _, _ in cf.requests]
            check(methods == ["POST", "POST", "GET", "DELETE"], "%r" % methods)
            # cleanup of what is not there: nothing to delete, success
            r = runner.run("cloudflare", "cleanup", name, "never-made")
            check(r["done"] and r["status"] == 0 and "already removed" in r["line"], r["line"])
            # the token never on a command line: curl reads it from stdin
            check(CF_TOKEN not in read(os.path.join(cw.logs, "deploy.log")), "the token in deploy.log")

        def cloudflare_api_errors():
            hook = os.path.join(SOURCE, "contrib", "dns-hooks", "cloudflare")
            env = {"PATH": "/usr/bin:/bin", "CLOUDFLARE_API_TOKEN": "wrong", "CLOUDFLARE_ZONE_ID": CF_ZONE,
                   "CLOUDFLARE_API_URL": "https://127.0.0.1:%d/client/v4" % cf.port, "CURL_CA_BUNDLE": ca}
            p = subprocess.run([hook, "present", "_acme-challenge.a.test", "v"], env=env, capture_output=True,
                               text=True, timeout=60)
            check(p.returncode != 0 and "Authentication error" in p.stderr, "%d %s" % (p.returncode, p.stderr))
            env["CLOUDFLARE_API_URL"] = "http://127.0.0.1:%d/client/v4" % cf.port
            p = subprocess.run([hook, "present", "_acme-challenge.a.test", "v"], env=env, capture_output=True,
                               text=True, timeout=60)
            check(p.returncode != 0 and "https" in p.stderr, p.stderr)

        def metrics_and_logs():
            m = deploy_metrics(cw)
            # runs: record 3, sleeper, big, parallel 5, nsupdate 5, cloudflare 4; failed: sleeper (124),
            # big (3), nsupdate to a zone knot lacks; refused: 7 values, 7 arguments, missing, writable
            check(m.get("dns_hooks_run_total") == 19, "dns_hooks_run_total %r" % m.get("dns_hooks_run_total"))
            check(m.get("dns_hooks_failed_total") == 3, "dns_hooks_failed_total %r"
                  % m.get("dns_hooks_failed_total"))
            check(m.get("dns_hooks_refused_total") == 16, "%r" % m.get("dns_hooks_refused_total"))
            check(m.get("dns_hooks_running") == 0 and m.get("dns_hooks_waiting") == 0, "%r" % m)
            logs = "".join(read(os.path.join(cw.logs, n)) for n in os.listdir(cw.logs))
            logs += read(os.path.join(root, "certwardd.out"))
            for secret in (TOKEN, CF_TOKEN, TSIG_SECRET):
                check(secret not in logs, "a secret of dns_hook_env is in a log")
            ran = [x for x in read(os.path.join(cw.logs, "deploy.log")).splitlines() if "dns hook ran" in x]
            check(any("hook=record" in x and "action=present" in x and "exit_status=0" in x and "duration_ms=" in x
                      for x in ran), "no per-run log line: %r" % ran[:3])

        for fn in (argv_and_environment, cleanup_called, no_shell, bad_arguments_refused, writable_hook_refused,
                   timeout_kills, output_capped, parallel_limit, nsupdate_against_knot, nsupdate_argument_checks,
                   cloudflare_against_fake, cloudflare_api_errors, metrics_and_logs):
            cases.case(fn)
        cases.stop_clean(cw)
    except Exception as e:
        cases.fail("setup: %s" % e)
        if cw is not None:
            log("certwardd output tail:\n" + cw.tail())
    finally:
        if knot:
            knot.stop()
        if cf:
            cf.stop()
        teardown(cw, pg, root)
    cases.finish()


if __name__ == "__main__":
    if not AS_ROOT:
        log("note: not root: the workers and the hooks run as this user")
    main()
