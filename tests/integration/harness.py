"""Shared pieces of the integration tests: a throwaway PostgreSQL cluster, a
certwardd under test, and the certward CLI. Standard library only."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("CERTWARD_BUILD_DIR") or sys.exit("CERTWARD_BUILD_DIR is not set")
SOURCE = os.environ.get("CERTWARD_SOURCE_DIR") or sys.exit("CERTWARD_SOURCE_DIR is not set")
TEST_HOOKS = os.environ.get("CERTWARD_TEST_HOOKS") == "1"
AS_ROOT = os.geteuid() == 0
WORKERS = ["store", "signer", "notifier", "deploy", "scheduler", "api"]
EDGES = [("api", "store"), ("api", "signer"), ("api", "scheduler"), ("scheduler", "store"),
         ("scheduler", "signer"), ("scheduler", "deploy"), ("scheduler", "notifier"),
         ("deploy", "store"), ("notifier", "store")]


def log(*a):
    print("[%s]" % time.strftime("%H:%M:%S"), *a, flush=True)


def wait_for(what, pred, timeout=30.0, interval=0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.0fs waiting for %s (last: %r)" % (timeout, what, last))


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


class Postgres:
    def __init__(self, root, port):
        self.dir = os.path.join(root, "pg")
        self.port = port
        out = subprocess.run([os.path.join(SOURCE, "contrib", "pg.sh"), "start", self.dir, str(port)],
                             capture_output=True, text=True, timeout=180)
        if out.returncode != 0:
            raise RuntimeError("pg.sh start failed:\n" + out.stdout + out.stderr)
        self.dsn = out.stdout.strip().splitlines()[-1]

    def stop(self):
        subprocess.run([os.path.join(SOURCE, "contrib", "pg.sh"), "stop", self.dir],
                       capture_output=True, text=True, timeout=120)


class Certward:
    def __init__(self, root, dsn, extra="", api_extra="", store_extra=""):
        self.root = root
        self.api_port = free_port()
        self.api_extra = api_extra
        self.store_extra = store_extra
        self.state = os.path.join(root, "state")
        self.logs = os.path.join(root, "log")
        self.sock = os.path.join(root, "run", "control.sock")
        self.config = os.path.join(root, "certward.yml")
        self.dsn = dsn
        self.write_config(extra)
        self.proc = None
        self.output = None

    def write_config(self, extra=""):
        with open(self.config, "w") as f:
            f.write("# written by the integration test\n"
                    "master:\n"
                    "  libexec_dir: %s\n"
                    "  state_dir: %s\n"
                    "  log_dir: %s\n"
                    "  control_socket: %s\n"
                    "  restart_backoff_initial: 50ms\n"
                    "  restart_backoff_max: 400ms\n"
                    "  restart_stable_after: 3s\n"
                    "  crashloop_restarts: 3\n"
                    "  stop_timeout: 5s\n"
                    "store:\n"
                    "  dsn: \"%s\"\n"
                    "  pool_size: 2\n"
                    "%s"
                    "api:\n"
                    "  listen: 127.0.0.1:%d\n" % (BUILD, self.state, self.logs, self.sock, self.dsn,
                                                   self.store_extra, self.api_port))
            f.write(self.api_extra)
            f.write(extra)

    def start(self):
        self.output = open(os.path.join(self.root, "certwardd.out"), "w")
        self.proc = subprocess.Popen([os.path.join(BUILD, "certwardd"), "-f", "-c", self.config],
                                     stdout=self.output, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_for("control socket", lambda: os.path.exists(self.sock) or self.proc.poll() is not None)
        check(self.proc.poll() is None, "certwardd exited at start:\n" + self.tail())

    def tail(self, n=40):
        try:
            with open(os.path.join(self.root, "certwardd.out")) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def ctl(self, *args, check_rc=True, timeout=60):
        out = subprocess.run([os.path.join(BUILD, "certward"), "ctl", "-s", self.sock] + list(args),
                             capture_output=True, text=True, timeout=timeout)
        if check_rc and out.returncode != 0:
            raise AssertionError("certward ctl %s failed (%d): %s%s"
                                 % (" ".join(args), out.returncode, out.stdout, out.stderr))
        return out

    def status(self):
        rows = {}
        lines = self.ctl("status").stdout.splitlines()
        check(lines and lines[0].split()[0] == "WORKER", "status has no header: %r" % lines)
        for line in lines[1:]:
            parts = line.split(None, 5)
            rows[parts[0]] = {"pid": None if parts[1] == "-" else int(parts[1]), "state": parts[2],
                              "restarts": int(parts[3]), "uptime": parts[4],
                              "last_exit": parts[5] if len(parts) > 5 else ""}
        return rows

    def all_running(self):
        st = self.status()
        if all(st.get(w, {}).get("state") == "running" for w in WORKERS):
            return st
        return None

    def metrics(self, worker):
        out = {}
        for line in self.ctl("metrics", worker).stdout.splitlines():
            if line.startswith("#"):
                continue
            k, v = line.rsplit(" ", 1)
            out[k] = float(v) if "." in v or "e" in v else int(v)
        return out

    def stop(self, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise AssertionError("certwardd did not stop on SIGTERM")
        return self.proc.returncode if self.proc else None

    def kill_everything(self):
        """Last-resort cleanup so a failed test leaves nothing behind: this
        certwardd and its workers, not another test's."""
        if not self.proc or self.proc.poll() is not None:
            return
        children = children_of(self.proc.pid)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exe_of(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return None


def children_of(ppid):
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == ppid:
                pids.append(int(d))
    return pids


def worker_pids_of_build():
    """Every live process running an executable from this build directory."""
    pids = []
    build = os.path.realpath(BUILD)
    for d in os.listdir("/proc"):
        if d.isdigit():
            exe = exe_of(int(d))
            if exe and os.path.dirname(exe) == build and os.path.basename(exe).startswith("certward"):
                pids.append(int(d))
    return pids


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[2])  # effective
    return None


def make_root(prefix):
    root = tempfile.mkdtemp(prefix=prefix)
    # the service users and postgres must traverse it
    os.chmod(root, 0o755)
    return root


def remove_root(root):
    shutil.rmtree(root, ignore_errors=True)


def sanitizer_reports(log_dir):
    """Lines of any ASan/LSan/UBSan report in the per-worker logs: the test
    build runs every worker under the sanitizers."""
    bad = []
    for name in sorted(os.listdir(log_dir)):
        with open(os.path.join(log_dir, name), errors="replace") as f:
            for line in f:
                if any(k in line for k in ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                                            "UndefinedBehaviorSanitizer")):
                    bad.append("%s: %s" % (name, line.strip()[:300]))
    return bad


def stop_process(p, timeout=30):
    """SIGTERM to p (a Popen) when it still runs, then SIGKILL after timeout
    seconds. True when it ended on SIGTERM (or had ended already)."""
    if not p or p.poll() is not None:
        return True
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return False


def teardown(cw, pg, root):
    """Whatever happened: no certward process, no PostgreSQL, no files left."""
    if cw:
        cw.kill_everything()
    if pg:
        pg.stop()
    remove_root(root)


class Cases:
    """Runs test cases one after the other, reporting each and going on after
    a failure; current() gives the Certward whose output to show on failure."""

    def __init__(self, current=lambda: None):
        self.passed = 0
        self.failed = 0
        self.current = current

    def case(self, fn):
        t0 = time.monotonic()
        try:
            fn()
            self.passed += 1
            log("PASS %s (%.1fs)" % (fn.__name__, time.monotonic() - t0))
        except Exception as e:  # report and go on with the other cases
            self.fail("%s: %s" % (fn.__name__, e))
            cw = self.current()
            if cw is not None:
                log("certwardd output tail:\n" + cw.tail())

    def fail(self, msg):
        self.failed += 1
        log("FAIL " + msg)

    def stop_clean(self, cw):
        """Stops cw; a non-zero exit or a sanitizer report is a failure."""
        rc = cw.stop()
        if rc != 0:
            self.fail("certwardd exit status %r" % rc)
        reports = sanitizer_reports(cw.logs)
        if reports:
            self.fail("sanitizer reports:\n" + "\n".join(reports[:20]))

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


def psql(pg, text, user="certward"):
    """One SQL command through psql as the database's owner; its output
    (unaligned, tuples only)."""
    cmd = (["runuser", "-u", user, "--"] if AS_ROOT else []) + ["psql", pg.dsn, "-qAtX", "-v",
                                                               "ON_ERROR_STOP=1", "-c", text]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, "psql failed: %s" % out.stderr)
    return out.stdout


def make_key(pg, name, role, extra_cols="", extra_vals=""):
    """An API key put straight into the database, as the api stores one:
    salt and SHA-256(salt || secret), never the secret."""
    import hashlib
    prefix = "cw_" + os.urandom(6).hex()
    secret = os.urandom(32)
    salt = os.urandom(16)
    digest = hashlib.sha256(salt + secret).hexdigest()
    psql(pg, "INSERT INTO api_keys (name, role, salt, key_hash, key_prefix%s) VALUES ('%s', '%s', "
         "'\\x%s', '\\x%s', '%s'%s)" % (extra_cols, name, role, salt.hex(), digest, prefix, extra_vals))
    return "%s_%s" % (prefix, secret.hex())


class Api:
    """HTTPS/1.1 keep-alive client of a certwardd's api, trusting only its
    published certificate. call() answers (status, parsed JSON or text).
    identity: (certificate file, key file) presented as the TLS client
    certificate (an agent's identity from enrol_agent())."""

    def __init__(self, cw, identity=None):
        self.cw = cw
        self.ctx = None  # the certificate is published once the signer runs
        self.conn = None
        self.identity = identity

    def call(self, method, path, key=None, body=None, headers=None):
        import json
        h = dict(headers or {})
        if key:
            h["Authorization"] = "Bearer " + key
        if body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        if body is not None:
            h["Content-Type"] = "application/json"
        status, _, data = self.raw(method, path, body, h)
        text = data.decode("utf-8", "replace")
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    def raw(self, method, path, body=None, headers=None):
        """(status, {lower-case header: value}, body bytes)"""
        import http.client
        h = dict(headers or {})
        if self.ctx is None:
            import ssl
            crt = os.path.join(self.cw.state, "tls", "api.crt")
            wait_for("the api's certificate", lambda: os.path.exists(crt), timeout=60)
            self.ctx = ssl.create_default_context(cafile=crt)
            self.ctx.check_hostname = False
            if self.identity:
                self.ctx.load_cert_chain(*self.identity)
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection("127.0.0.1", self.cw.api_port, context=self.ctx,
                                                        timeout=30)
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        if r.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        self.last_type = r.getheader("Content-Type", "")
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def make_csr(directory, name, key_spec=("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
             subject="/CN=agent"):
    """A new key and CSR made by the openssl CLI in directory: (key path, CSR PEM text)."""
    key = os.path.join(directory, name + ".key")
    out = subprocess.run(["openssl", "req", "-new", "-nodes", *key_spec, "-keyout", key, "-subj", subject],
                         capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, "openssl req: " + out.stderr)
    os.chmod(key, 0o600)
    return key, out.stdout


def agent_token(api, admin_key, name, ttl_seconds=900):
    """A one-time enrolment token for the agent named name: the token record
    (with "token", its text, shown once)."""
    status, rec = api.call("POST", "/api/v1/agent-tokens", admin_key, {"name": name, "ttl_seconds": ttl_seconds})
    check(status == 201, "token for %s: %d %r" % (name, status, rec))
    return rec


def enrol_agent(api, admin_key, name, directory):
    """An agent enrolled through the API as certward-agent does it: a token,
    a key and CSR of its own, POST /api/v1/agents/enroll. (agent id,
    certificate file, key file, the enrolment answer)."""
    tok = agent_token(api, admin_key, name)
    key, csr = make_csr(directory, name)
    status, ans = api.call("POST", "/api/v1/agents/enroll", None, {"token": tok["token"], "csr_pem": csr})
    check(status == 201, "enrolment of %s: %d %r" % (name, status, ans))
    crt = os.path.join(directory, name + ".crt")
    with open(crt, "w") as f:
        f.write(ans["certificate_pem"])
    return ans["agent_id"], crt, key, ans


# ---- TLS servers the agent deploys to ----

def self_signed(path_crt, path_key, cn):
    """A self-signed P-256 certificate (two days) and its key (0600)."""
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", path_key, "-out", path_crt, "-subj", "/CN=" + cn, "-days", "2"],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, r.stderr)
    os.chmod(path_key, 0o600)


def served_serial(port, name):
    """The serial (lower-case hex, no leading zeros) of the certificate a
    TLS server on 127.0.0.1:port presents for name; None when it presents none."""
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", name],
                       input="", capture_output=True, text=True, timeout=30)
    pem = r.stdout[r.stdout.find("-----BEGIN CERTIFICATE-----"):r.stdout.find("-----END CERTIFICATE-----") + 25]
    if "BEGIN" not in pem:
        return None
    out = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem, capture_output=True, text=True,
                         timeout=30).stdout.strip()
    return out.split("=", 1)[1].lower().lstrip("0") if "=" in out else None


class Nginx:
    """A real nginx under directory d serving web.example.internal on a free
    loopback port from d/certs/web.crt and web.key (a self-signed pair at
    first). conf is its configuration file, prefix its -p directory, text
    the configuration as written."""

    NAME = "web.example.internal"

    def __init__(self, d, http_port=None):
        """With http_port, also plain HTTP on that loopback port serving the
        directory d/www (self.webroot), as a web server answering ACME
        HTTP-01 challenges from its document root does."""
        for sub in ("nginx", "nginx/tmp", "certs", "www"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        self.webroot = os.path.join(d, "www")
        self.cert, self.key = os.path.join(d, "certs", "web.crt"), os.path.join(d, "certs", "web.key")
        self_signed(self.cert, self.key, "old.example.internal")
        self.port = free_port()
        self.conf = os.path.join(d, "nginx.conf")
        self.prefix = os.path.join(d, "nginx")
        self.text = (
            "pid %(d)s/nginx/nginx.pid;\nerror_log %(d)s/nginx/error.log;\nevents {}\nhttp {\n"
            "  access_log off;\n  client_body_temp_path %(d)s/nginx/tmp;\n  proxy_temp_path %(d)s/nginx/tmp;\n"
            "  fastcgi_temp_path %(d)s/nginx/tmp;\n  uwsgi_temp_path %(d)s/nginx/tmp;\n"
            "  scgi_temp_path %(d)s/nginx/tmp;\n"
            "  server {\n    listen 127.0.0.1:%(p)d ssl;\n    server_name %(n)s;\n"
            "    ssl_certificate %(c)s;\n    ssl_certificate_key %(k)s;\n"
            "    return 200 \"ok\\n\";\n  }\n%(h)s}\n" % {"d": d, "p": self.port, "n": self.NAME, "c": self.cert,
                                                     "k": self.key, "h": "" if not http_port else
                                                     "  server {\n    listen 127.0.0.1:%d;\n    root %s;\n  }\n"
                                                     % (http_port, os.path.join(d, "www"))})
        with open(self.conf, "w") as f:
            f.write(self.text)
        r = subprocess.run(["nginx", "-c", self.conf, "-p", self.prefix], capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, "nginx: %s" % r.stderr)
        self.running = True
        wait_for("nginx serving", lambda: self.serial(), timeout=20)

    def serial(self):
        return served_serial(self.port, self.NAME)

    def stop(self):
        if self.running:
            subprocess.run(["nginx", "-c", self.conf, "-p", self.prefix, "-s", "stop"], capture_output=True,
                           timeout=30)
            self.running = False


def openssl(*args, ok=True, stdin=None):
    """The openssl CLI's answer to args; ok: a non-zero exit fails the check."""
    out = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, timeout=60, input=stdin)
    if ok:
        check(out.returncode == 0, "openssl %s: %s%s" % (" ".join(args), out.stdout, out.stderr))
    return out


# ---- a SoftHSM2 token for the signer's pkcs11 backend ----

class SoftHSM:
    """A SoftHSM2 token of its own under directory d: d/softhsm2.conf names
    the token directory d/tokens; the token labelled label has a random
    user PIN (pin) and SO PIN, the user PIN in d/token.pin (0600). As root
    everything under d (and d) belongs to owner, the signer's user, who
    must reach it; the directories above d must be traversable."""

    MODULE = "/usr/lib/softhsm/libsofthsm2.so"

    def __init__(self, d, label="certward-test", owner="certward-signer"):
        import secrets
        self.dir, self.label, self.owner = d, label, owner
        self.tokendir = os.path.join(d, "tokens")
        self.conf = os.path.join(d, "softhsm2.conf")
        self.pin_file = os.path.join(d, "token.pin")
        self.pin = "".join(secrets.choice("0123456789") for _ in range(16))
        self.so_pin = "".join(secrets.choice("0123456789") for _ in range(16))
        os.makedirs(self.tokendir, mode=0o700)
        os.chmod(d, 0o750)
        with open(self.conf, "w") as f:
            f.write("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n" % self.tokendir)
        os.chmod(self.conf, 0o644)
        self.env = dict(os.environ, SOFTHSM2_CONF=self.conf)
        r = subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", self.so_pin,
                            "--pin", self.pin], capture_output=True, text=True, timeout=60, env=self.env)
        check(r.returncode == 0, "softhsm2-util --init-token: %s%s" % (r.stdout, r.stderr))
        self.write_pin(self.pin)
        self.give()

    def give(self):
        """Everything under the directory to the owner (files a command run
        as root made: the token's, a CA certificate)."""
        if not AS_ROOT:
            return
        import pwd
        pw = pwd.getpwnam(self.owner)
        for top, dirs, files in os.walk(self.dir):
            for name in [top] + [os.path.join(top, n) for n in dirs + files]:
                os.chown(name, pw.pw_uid, pw.pw_gid)

    def write_pin(self, pin, mode=0o600):
        """pin as the PIN file's first line, the file replaced at once (a new
        file renamed over it: a reader never sees half of it)."""
        tmp = self.pin_file + ".new"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as f:
            f.write(pin + "\n")
        if AS_ROOT:
            import pwd
            pw = pwd.getpwnam(self.owner)
            os.chown(tmp, pw.pw_uid, pw.pw_gid)
        os.rename(tmp, self.pin_file)

    def token_dir(self):
        """The token's own directory in the token directory."""
        names = [n for n in os.listdir(self.tokendir) if os.path.isdir(os.path.join(self.tokendir, n))]
        check(len(names) == 1, "token directories: %r" % names)
        return os.path.join(self.tokendir, names[0])

    def tool(self, *args):
        """pkcs11-tool on this token, logged in: (exit status, output)."""
        r = subprocess.run(["pkcs11-tool", "--module", self.MODULE, "--token-label", self.label, "--login",
                            "--pin", self.pin] + list(args), capture_output=True, text=True, timeout=60,
                           env=self.env)
        return r.returncode, r.stdout + r.stderr

    def signer_config(self, ca_cert_file, retry_interval="1s", sessions=2):
        """certward.yml's signer section for a CA key on this token."""
        return ("signer:\n"
                "  ca_backend: pkcs11\n"
                "  ca_cert_file: %s\n"
                "  pkcs11_module: %s\n"
                "  pkcs11_token_label: %s\n"
                "  pkcs11_pin_file: %s\n"
                "  pkcs11_sessions: %d\n"
                "  pkcs11_env: \"SOFTHSM2_CONF=%s\"\n"
                "  pkcs11_retry_interval: %s\n"
                % (ca_cert_file, self.MODULE, self.label, self.pin_file, sessions, self.conf, retry_interval))


# ---- an ACME CA: Debian's pebble and pebble-challtestsrv ----

def dns_query(port, name, qtype=16, host="127.0.0.1", timeout=5.0):
    """One DNS question (UDP) to host:port: the answers' RDATA of type qtype
    for name, TXT (16) as lists of their strings (str), A (1) as dotted
    quads, others as bytes. None when the server answers with an error code."""
    import socket
    import struct
    qid = os.urandom(2)
    labels = [l.encode("ascii") for l in name.rstrip(".").split(".") if l]
    question = b"".join(bytes([len(l)]) + l for l in labels) + b"\0" + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(qid + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + question, (host, port))
        while True:
            data = s.recv(65535)
            if data[:2] == qid:
                break
    flags, qd, an = struct.unpack(">HHH", data[2:8])
    if flags & 0xF:
        return None

    def skip_name(i):
        while True:
            n = data[i]
            if n & 0xC0 == 0xC0:
                return i + 2
            i += 1 + n
            if n == 0:
                return i
    i = 12
    for _ in range(qd):
        i = skip_name(i) + 4
    out = []
    for _ in range(an):
        i = skip_name(i)
        rtype, _, _, rdlen = struct.unpack(">HHIH", data[i:i + 10])
        rdata = data[i + 10:i + 10 + rdlen]
        i += 10 + rdlen
        if rtype != qtype:
            continue
        if rtype == 16:
            strings, j = [], 0
            while j < len(rdata):
                strings.append(rdata[j + 1:j + 1 + rdata[j]].decode("utf-8", "replace"))
                j += 1 + rdata[j]
            out.append(strings)
        elif rtype == 1:
            out.append(".".join(str(b) for b in rdata))
        else:
            out.append(rdata)
    return out


class Pebble:
    """Debian's pebble (an RFC 8555 CA for tests) and pebble-challtestsrv
    (the DNS pebble's validation asks) on loopback ports of their own, under
    directory d.

    http_port: the port pebble's VA fetches HTTP-01 challenges from
    (certward's api.plain_listen port); tls_port the TLS-ALPN-01 one (unused
    by certward; a free port when left out). eab_keys {kid: base64url HMAC
    key} makes external account binding required. nonce_reject (0..100) and
    authz_reuse (0..100) are PEBBLE_WFE_NONCEREJECT and PEBBLE_AUTHZREUSE;
    validity_seconds the certificates' lifetime (pebble's default: 5 years);
    env more PEBBLE_* variables (PEBBLE_ALTERNATE_ROOTS, PEBBLE_CHAIN_LENGTH).
    Validation never sleeps (PEBBLE_VA_NOSLEEP=1); challtestsrv answers A
    queries with 127.0.0.1 and AAAA with nothing, so every name pebble
    validates is this host.

    pebble's own HTTPS (ACME and management) uses a certificate for
    127.0.0.1 and localhost from a throwaway CA made here with openssl:
    ca_pem() is its trust anchor (an ACME issuer's trust_anchors_pem),
    ca_file its path. The CA that issues certificates is pebble's own, new at
    each start: roots()."""

    def __init__(self, d, http_port, tls_port=None, eab_keys=None, nonce_reject=0, authz_reuse=0,
                 validity_seconds=None, env=None):
        import json
        self.dir = d
        os.makedirs(d, exist_ok=True)
        self.procs = []
        self.port, self.mgmt_port = free_port(), free_port()
        self.dns_port, self.cts_port = free_port(), free_port()
        self.ca_file = os.path.join(d, "pebble-https-ca.pem")
        cert, key = os.path.join(d, "pebble-https.pem"), os.path.join(d, "pebble-https.key")
        ca_key = os.path.join(d, "pebble-https-ca.key")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", ca_key, "-out", self.ca_file, "-subj", "/CN=pebble HTTPS test CA", "-days", "2",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
        ext = os.path.join(d, "pebble-https.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
                    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n")
        csr = openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-keyout", key, "-subj", "/CN=localhost").stdout
        openssl("x509", "-req", "-CA", self.ca_file, "-CAkey", ca_key, "-set_serial",
                str(int.from_bytes(os.urandom(8), "big")), "-days", "2", "-extfile", ext, "-out", cert, stdin=csr)
        conf = {"listenAddress": "127.0.0.1:%d" % self.port,
                "managementListenAddress": "127.0.0.1:%d" % self.mgmt_port,
                "certificate": cert, "privateKey": key, "httpPort": http_port,
                "tlsPort": tls_port or free_port(), "ocspResponderURL": "",
                "externalAccountBindingRequired": bool(eab_keys)}
        if eab_keys:
            conf["externalAccountMACKeys"] = dict(eab_keys)
        if validity_seconds:
            conf["certificateValidityPeriod"] = int(validity_seconds)
        self.config = os.path.join(d, "pebble-config.json")
        with open(self.config, "w") as f:
            json.dump({"pebble": conf}, f, indent=2)
        self._start("challtestsrv", ["pebble-challtestsrv", "-management", "127.0.0.1:%d" % self.cts_port,
                                     "-dns01", "127.0.0.1:%d" % self.dns_port, "-http01", "", "-https01", "",
                                     "-tlsalpn01", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""], None)
        wait_for("pebble-challtestsrv", lambda: self._listening(self.cts_port) or self._exited("challtestsrv"),
                 timeout=30)
        check(not self._exited("challtestsrv"), "pebble-challtestsrv exited:\n" + self.tail("challtestsrv"))
        penv = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT=str(int(nonce_reject)),
                    PEBBLE_AUTHZREUSE=str(int(authz_reuse)))
        penv.update(env or {})
        self._start("pebble", ["pebble", "-config", self.config, "-dnsserver", "127.0.0.1:%d" % self.dns_port],
                    penv)
        wait_for("pebble's directory", lambda: self._directory_ready() or self._exited("pebble"), timeout=30)
        check(not self._exited("pebble"), "pebble exited:\n" + self.tail("pebble"))

    # -- processes --

    def _start(self, name, argv, env):
        out = open(os.path.join(self.dir, name + ".log"), "w")
        try:
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                 start_new_session=True)
        finally:
            out.close()
        self.procs.append((name, p))

    def _exited(self, name):
        return any(n == name and p.poll() is not None for n, p in self.procs)

    @staticmethod
    def _listening(port):
        import socket
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    def _directory_ready(self):
        try:
            return self._get(self.directory_url) is not None
        except OSError:
            return False

    def tail(self, name="pebble", n=40):
        """The last lines of pebble's (or challtestsrv's) output."""
        try:
            with open(os.path.join(self.dir, name + ".log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        for _, p in self.procs:
            if p.poll() is None:
                p.terminate()
        for _, p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        self.procs = []

    # -- HTTP --

    def _context(self):
        import ssl
        return ssl.create_default_context(cafile=self.ca_file)

    def _get(self, url):
        """The body (bytes) of GET url (pebble's HTTPS, checked against
        ca_file, or challtestsrv's plain HTTP); None for a 404."""
        import urllib.error
        import urllib.request
        try:
            with urllib.request.urlopen(url, timeout=10,
                                        context=self._context() if url.startswith("https:") else None) as r:
                return r.read()
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def _cts(self, path, body):
        import json
        import urllib.request
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.cts_port, path), method="POST",
                                     data=json.dumps(body).encode())
        with urllib.request.urlopen(req, timeout=10) as r:
            check(r.status == 200, "challtestsrv %s: %d" % (path, r.status))

    # -- what tests use --

    @property
    def directory_url(self):
        return "https://127.0.0.1:%d/dir" % self.port

    def directory(self):
        import json
        return json.loads(self._get(self.directory_url))

    def ca_pem(self):
        """The trust anchor of pebble's HTTPS (PEM)."""
        with open(self.ca_file) as f:
            return f.read()

    def roots(self, index=0):
        """(root PEM, intermediate PEM) of pebble's issuing chain index (0;
        more with env PEBBLE_ALTERNATE_ROOTS), from its management interface."""
        base = "https://127.0.0.1:%d" % self.mgmt_port
        root = self._get("%s/roots/%d" % (base, index))
        inter = self._get("%s/intermediates/%d" % (base, index))
        check(root and inter, "pebble has no chain %d" % index)
        return root.decode(), inter.decode()

    def verify(self, leaf, index=0):
        """Checks that the certificate in file leaf verifies with openssl
        against pebble's chain index (its root and intermediate)."""
        root, inter = self.roots(index)
        rp, ip = os.path.join(self.dir, "root-%d.pem" % index), os.path.join(self.dir, "inter-%d.pem" % index)
        with open(rp, "w") as f:
            f.write(root)
        with open(ip, "w") as f:
            f.write(inter)
        out = openssl("verify", "-CAfile", rp, "-untrusted", ip, leaf, ok=False)
        check(out.returncode == 0 and out.stdout.strip().endswith(": OK"),
              "openssl verify with pebble's chain: %s%s" % (out.stdout, out.stderr))

    def add_txt(self, name, value):
        """A TXT record name (a FQDN; the final dot added when missing) with
        value, in the DNS pebble validates with."""
        self._cts("/set-txt", {"host": name if name.endswith(".") else name + ".", "value": value})

    def clear_txt(self, name):
        self._cts("/clear-txt", {"host": name if name.endswith(".") else name + "."})

    def txt(self, name):
        """The TXT values challtestsrv's DNS answers for name now (a list of
        str; each record's strings joined)."""
        return ["".join(r) for r in dns_query(self.dns_port, name, 16) or []]

    def set_default_ipv4(self, ip):
        """The address challtestsrv gives for every A query (127.0.0.1 at start)."""
        self._cts("/set-default-ipv4", {"ip": ip})

    def cert_status(self, serial_or_pem):
        """Pebble's record of a certificate it issued, by serial (hex) or PEM:
        {"Status": "Valid"|"Revoked", "Serial", "Certificate", "Reason",
        "RevokedAt"}, or None when pebble never issued it."""
        import json
        serial = serial_or_pem
        if "BEGIN CERTIFICATE" in serial_or_pem:
            out = openssl("x509", "-noout", "-serial", stdin=serial_or_pem).stdout.strip()
            serial = out.split("=", 1)[1]
        body = self._get("https://127.0.0.1:%d/cert-status-by-serial/%s" % (self.mgmt_port, serial.lower()))
        return None if body is None else json.loads(body)
