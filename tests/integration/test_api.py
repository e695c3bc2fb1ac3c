"""The api's TLS front end against a real certwardd: TLS 1.3 only by default,
the key kept in the signer (a memory scan proves it), handshakes surviving a
signer restart, handshake timeout and connection limit."""
import os
import re
import json
import signal
import struct
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import psql as harness_psql, make_key as harness_make_key
from harness import (AS_ROOT, Cases, free_port, teardown, Certward, Postgres, check, log, make_root, remove_root, wait_for)

RUN = Cases(lambda: cw)
case = RUN.case


def cert_path():
    return os.path.join(cw.state, "tls", "api.crt")


def s_client(*args):
    return subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % cw.api_port,
                           "-servername", "localhost", "-CAfile", cert_path()] + list(args),
                          input="Q\n", capture_output=True, text=True, timeout=30)


def tls_context():
    ctx = ssl.create_default_context(cafile=cert_path())
    ctx.check_hostname = False  # the certificate names 127.0.0.1 as an IP SAN; keep it simple
    return ctx


def handshake_once(ctx, timeout=5):
    with socket.create_connection(("127.0.0.1", cw.api_port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.version()


def tls13_only_by_default():
    wait_for("certificate published", lambda: os.path.exists(cert_path()), timeout=30)
    out = wait_for("TLS 1.3 handshake", lambda: (lambda o: o if "Verify return code: 0 (ok)" in o.stdout else None)(s_client("-tls1_3")), timeout=20)
    check("TLSv1.3" in out.stdout, "not TLS 1.3: %s" % out.stdout[-500:])
    out = s_client("-tls1_2")
    check("Cipher is (NONE)" in out.stdout or "alert protocol version" in out.stderr,
          "TLS 1.2 accepted by default: %s" % out.stdout[-300:])
    # the fingerprint the signer logged is the published certificate's
    fp = subprocess.run(["openssl", "x509", "-in", cert_path(), "-noout", "-fingerprint", "-sha256"],
                        capture_output=True, text=True, check=True).stdout.strip().split("=", 1)[1]
    with open(os.path.join(cw.logs, "signer.log")) as f:
        check("sha256=" + fp in f.read(), "signer.log does not show fingerprint %s" % fp)


def no_session_resumption():
    """Every handshake is a full one, signed by the signer: a client offering
    the session of its previous connection does not resume it."""
    ctx = tls_context()
    ctx.set_alpn_protocols(["http/1.1"])

    def get(session=None):
        with socket.create_connection(("127.0.0.1", cw.api_port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
                # TLS 1.3 tickets arrive after the handshake: read a response first
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                while s.recv(65536):
                    pass
                return s.session, s.session_reused

    before = cw.metrics("signer")["tls_signatures_total"]
    session, _ = get()
    _, reused = get(session)
    check(not reused, "the server resumed a session")
    check(cw.metrics("signer")["tls_signatures_total"] == before + 2, "a handshake was not signed")


def private_key_scalar():
    key = os.path.join(cw.state, "signer", "api-tls.key")
    txt = subprocess.run(["openssl", "pkey", "-in", key, "-noout", "-text"], capture_output=True,
                         text=True, check=True).stdout
    m = re.search(r"priv:\s*((?:[0-9a-f]{2}:?\s*)+)pub:", txt, re.S)
    check(m, "cannot read the private scalar")
    b = bytes.fromhex(re.sub(r"[^0-9a-f]", "", m.group(1)))
    return b[-32:] if len(b) > 32 else b


def memory_contains(pid, needles):
    """Scans the writable mappings of pid for any of the byte strings."""
    found = False
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            parts = line.split()
            if "w" not in parts[1]:
                continue
            start, end = (int(x, 16) for x in parts[0].split("-"))
            if end - start > (1 << 31):
                continue  # sanitizer shadow reservations: nothing of ours lives there
            try:
                mem.seek(start)
                chunk = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
            if any(n in chunk for n in needles):
                found = True
                break
    return found


def key_only_in_signer():
    st = wait_for("all running", cw.all_running, timeout=30)
    scalar = private_key_scalar()
    # BoringSSL keeps scalars as little-endian machine words: look for both orders
    needles = [scalar, scalar[::-1]]
    check(memory_contains(st["signer"]["pid"], needles), "scan did not find the key in the signer: the scan is broken")
    check(not memory_contains(st["api"]["pid"], needles), "the api's memory holds the TLS private key")
    with open("/proc/%d/maps" % st["api"]["pid"]) as f:
        check("libpq" not in f.read(), "libpq mapped in the api")
    with open("/proc/%d/maps" % st["store"]["pid"]) as f:
        maps = f.read()
        check("libssl.so.0" not in maps and "libcrypto.so.0" not in maps, "BoringSSL mapped in the store")


def handshakes_survive_signer_restart():
    ctx = tls_context()
    stop = threading.Event()
    results = []

    def storm():
        while not stop.is_set():
            try:
                handshake_once(ctx, timeout=3)
                results.append((time.monotonic(), True))
            except (OSError, ssl.SSLError):
                results.append((time.monotonic(), False))

    threads = [threading.Thread(target=storm) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        before = cw.status()["signer"]["pid"]
        os.kill(before, signal.SIGKILL)
        wait_for("signer back", lambda: (lambda s: s["signer"]["state"] == "running" and s["signer"]["pid"] != before)(cw.status()), timeout=20)
        t_back = time.monotonic()
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    ok_before = sum(1 for t, ok in results if ok and t < t_back - 1.0)
    ok_after = sum(1 for t, ok in results if ok and t > t_back + 0.5)
    failures = sum(1 for _, ok in results if not ok)
    log("  handshakes: %d ok before the kill, %d failed around it, %d ok after" % (ok_before, failures, ok_after))
    check(ok_before > 0 and ok_after > 0, "handshakes did not recover: %r" % ((ok_before, failures, ok_after),))
    handshake_once(ctx)


def slow_client_is_cut_off():
    # handshake_timeout is 1s in this test's config; a silent client is dropped
    ctx = tls_context()
    with socket.create_connection(("127.0.0.1", cw.api_port), timeout=10) as slow:
        t0 = time.monotonic()
        handshake_once(ctx)  # others are served meanwhile
        slow.settimeout(10)
        data = slow.recv(100)
        took = time.monotonic() - t0
    check(data == b"" and took < 5, "silent client kept for %.1fs (got %r)" % (took, data))


def slowloris_gets_408():
    """A client trickling its request head is answered 408 and dropped after
    request_timeout (1s here), however often it sends a byte; others are served."""
    ctx = tls_context()
    req = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    with socket.create_connection(("127.0.0.1", cw.api_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            t0 = time.monotonic()
            got = b""
            for i in range(len(req)):
                try:
                    s.sendall(req[i:i + 1])
                except OSError:
                    break
                if i % 5 == 0:
                    check(curl("/health")[0] == 200, "another client was not served")
                time.sleep(0.1)
                s.settimeout(0.01)
                try:
                    got += s.recv(4096)
                except (socket.timeout, ssl.SSLWantReadError):
                    pass
                except OSError:
                    break
                if got:
                    break
            took = time.monotonic() - t0
    check(got.startswith(b"HTTP/1.1 408"), "slow client got %r" % got[:80])
    check(took < 4, "slow client kept %.1fs" % took)


def connection_limit():
    ctx = tls_context()
    held = []
    try:
        for _ in range(4):  # max_connections is 4 in this test's config
            raw = socket.create_connection(("127.0.0.1", cw.api_port), timeout=5)
            held.append(ctx.wrap_socket(raw, server_hostname="localhost"))
        try:
            handshake_once(ctx, timeout=5)
            check(False, "a fifth connection was served")
        except (OSError, ssl.SSLError):
            pass
        m = cw.metrics("api")
        check(m['connections_refused_total{listener="https"}'] >= 1, "refusal not counted: %r" % m)
    finally:
        for s in held:
            s.close()
    wait_for("slots free again", lambda: cw.metrics("api")['connections_open{listener="https"}'] == 0, timeout=10)
    handshake_once(ctx)


def curl_full(path, *extra, proto="--http1.1", base=None):
    """(status, HTTP version, body) of one curl request."""
    base = base or "https://127.0.0.1:%d" % cw.api_port
    out = subprocess.run(["curl", "-sS", proto, "--cacert", cert_path(), "-o", "-", "-w",
                          "\n%{http_code} %{http_version}", base + path] + list(extra),
                         capture_output=True, text=True, timeout=30)
    body, _, tail = out.stdout.rpartition("\n")
    code, _, version = tail.partition(" ")
    return int(code or 0), version, body


def curl(path, *extra, proto="--http1.1"):
    code, _, body = curl_full(path, *extra, proto=proto)
    return code, body


def endpoint_checks(proto):
    """The endpoints and every request limit, over HTTP/1.1 or HTTP/2."""
    code, version, body = curl_full("/health", proto=proto)
    check(code == 200 and '"ok"' in body, "/health: %r" % ((code, body),))
    check(version == ("2" if proto == "--http2" else "1.1"), "%s negotiated HTTP/%s" % (proto, version))
    code, body = wait_for("ready", lambda: (lambda r: r if r[0] == 200 else None)(curl("/ready", proto=proto)), timeout=20)
    check('"ready"' in body, "/ready: %r" % body)
    code, body = curl("/metrics", proto=proto)
    check(code == 200 and 'certward_worker_up{worker="store"} 1' in body and
          "# TYPE certward_http_requests_total counter" in body, "/metrics: %r" % body[:400])
    code, body = curl("/nope", proto=proto)
    check(code == 404 and "problem" not in body and '"status":404' in body, "/nope: %r" % ((code, body),))
    code, _ = curl("/health", "-X", "POST", proto=proto)
    check(code == 405, "POST /health gave %d" % code)
    # a header section over the limit
    code, _ = curl("/health", "-H", "X-Big: " + "a" * 20000, proto=proto)
    check(code == 431, "oversize header gave %d" % code)
    code, _ = curl("/health", "-H", "X-%d: 1" % 0, *sum((["-H", "X-%d: 1" % i] for i in range(1, 80)), []), proto=proto)
    check(code == 431, "too many headers gave %d" % code)
    code, _ = curl("/" + "a" * 9000, proto=proto)
    check(code == 414, "oversize URI gave %d" % code)
    big = os.path.join(cw.root, "big.bin")
    with open(big, "wb") as f:
        f.write(b"x" * (2 << 20))
    code, _ = curl("/health", "-X", "POST", "--data-binary", "@" + big, proto=proto)
    check(code == 413, "oversize body gave %d" % code)


def http_endpoints():
    endpoint_checks("--http1.1")
    # malformed: the connection gets 400 and is closed; the server keeps serving
    data = raw_exchange(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    check(data.startswith(b"HTTP/1.1 400"), "malformed request: %r" % data[:100])
    check(curl("/health")[0] == 200, "server hurt by a malformed request")
    with open(os.path.join(cw.logs, "api.log")) as f:
        log_text = f.read()
    check(re.search(r'reqid=[0-9a-f]{16} msg="request" proto=h1 method=GET path="/health" status=200 bytes=\d+ '
                    r'duration_us=\d+ client=127\.0\.0\.1', log_text), "no access-log line for /health")


def http2_endpoints():
    out = s_client("-alpn", "h2,http/1.1")
    check("ALPN protocol: h2" in out.stdout, "ALPN did not choose h2: %s" % out.stdout[-400:])
    endpoint_checks("--http2")
    with open(os.path.join(cw.logs, "api.log")) as f:
        check(re.search(r'msg="request" proto=h2 method=GET path="/health" status=200', f.read()),
              "no HTTP/2 access-log line")


def h2_frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def h2_get(path):
    """A HEADERS block for GET path: indexed :method GET and :scheme https,
    literal :path and :authority (HPACK without Huffman coding)."""
    p, a = path.encode(), b"localhost"
    return b"\x82\x87\x04" + bytes([len(p)]) + p + b"\x01" + bytes([len(a)]) + a


def h2_read_frames(s, until):
    """Frames (type, flags, stream, payload) until until(frames) or EOF."""
    frames, buf = [], b""
    while not until(frames):
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            frames.append((buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7fffffff, buf[9:9 + n]))
            buf = buf[9 + n:]
    return frames


def h2_stream_limit():
    """A client opening more streams than h2_max_streams (4) at once: the
    first four are answered, the others refused, the connection survives."""
    ctx = tls_context()
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", cw.api_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            check(s.selected_alpn_protocol() == "h2", "no h2")
            out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0)
            ids = [1, 3, 5, 7, 9, 11]
            for sid in ids:  # END_STREAM | END_HEADERS
                out += h2_frame(1, 0x5, sid, h2_get("/ready"))
            s.sendall(out)
            settled = lambda fr: {f[2] for f in fr if f[0] == 1} | {f[2] for f in fr if f[0] == 3} >= set(ids)
            frames = h2_read_frames(s, settled)
            answered = sorted({f[2] for f in frames if f[0] == 1})
            refused = sorted(f[2] for f in frames if f[0] == 3)
            check(answered == [1, 3, 5, 7], "answered streams %r (frames %r)" % (answered, [f[:3] for f in frames]))
            check(refused == [9, 11], "refused streams %r" % refused)
            codes = {int.from_bytes(f[3], "big") for f in frames if f[0] == 3}
            check(codes == {7}, "RST_STREAM codes %r, expected REFUSED_STREAM (7)" % codes)
            # the same connection still serves once streams are free
            s.sendall(h2_frame(4, 1, 0) + h2_frame(1, 0x5, 13, h2_get("/health")))
            frames = h2_read_frames(s, lambda fr: any(f[0] == 1 and f[2] == 13 for f in fr))
            check(any(f[0] == 1 and f[2] == 13 for f in frames), "stream 13 not answered")


def h2_malformed():
    """Garbage after the preface ends in GOAWAY, and nothing is hurt."""
    ctx = tls_context()
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", cw.api_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            # a HEADERS frame on stream 0 is a connection error (RFC 9113 6.2)
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0) +
                      h2_frame(1, 0x5, 0, h2_get("/health")))
            frames = h2_read_frames(s, lambda fr: any(f[0] == 7 for f in fr))
            check(any(f[0] == 7 for f in frames), "no GOAWAY: %r" % [f[:3] for f in frames])
    check(curl("/health", proto="--http2")[0] == 200, "server hurt by a malformed HTTP/2 client")


def plain_listener():
    base = "http://127.0.0.1:%d" % cw.plain_port
    code, _, body = curl_full("/health", base=base)
    check(code == 200 and '"ok"' in body, "plain /health: %r" % ((code, body),))
    for path in ("/ready", "/metrics"):
        code, _, _ = curl_full(path, base=base)
        check(code == 404, "plain %s gave %d, expected 404" % (path, code))
        check(curl(path)[0] == 200, "https %s not served" % path)
    check(subprocess.run(["curl", "-sS", "-o", "/dev/null", "https://127.0.0.1:%d/health" % cw.plain_port, "-k"],
                         capture_output=True, timeout=30).returncode != 0, "TLS spoken on the plain port")
    with open(os.path.join(cw.logs, "api.log")) as f:
        check('proto=plain method=GET path="/health" status=200' in f.read(), "no plain access-log line")


def raw_exchange(request):
    """Sends bytes over one TLS connection and reads until the server closes it."""
    ctx = tls_context()
    data = b""
    with socket.create_connection(("127.0.0.1", cw.api_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(request)
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data
                data += chunk


def metrics_exposition():
    """/metrics passes promtool and carries the figures an operator graphs."""
    for _ in range(3):
        curl("/ready", proto="--http2")
    code, body = curl("/metrics")
    check(code == 200, "/metrics gave %d" % code)
    out = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True, timeout=60)
    check(out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(),
          "promtool check metrics: rc=%d %s%s" % (out.returncode, out.stdout, out.stderr))
    for needle in ['certward_http_requests_total{worker="api",route="/ready",method="GET",status="200"}',
                   '# TYPE certward_http_request_duration_seconds histogram',
                   'certward_http_request_duration_seconds_bucket{worker="api",route="/ready",method="GET",le="+Inf"}',
                   'certward_ipc_requests_total{worker="api",peer="store",result="ok"}',
                   'certward_ipc_request_duration_seconds_count{worker="api",peer="signer"}',
                   'certward_worker_up{worker="signer"} 1',
                   'certward_process_open_fds{worker="store"}',
                   'certward_process_resident_memory_bytes{worker="api"}',
                   'certward_worker_restarts_total{worker="api"}',
                   # the store: operations (the bootstrap key's, made at start), latency, pool
                   'certward_store_operations_total{worker="store",op="apikeys.bootstrap",result="ok"} 1',
                   '# TYPE certward_store_operation_duration_seconds histogram',
                   'certward_store_operation_duration_seconds_count{worker="store",op="apikeys.bootstrap"}',
                   'certward_store_pool_connections{worker="store",state="idle"}',
                   'certward_store_pool_queued{worker="store"} 0',
                   'certward_store_migrations_pending{worker="store"} 0']:
        check(needle in body, "/metrics lacks %s" % needle)
    m = re.search(r'certward_http_requests_total\{worker="api",route="/ready",method="GET",status="200"\} (\d+)', body)
    check(int(m.group(1)) >= 3, "requests not counted: %s" % m.group(0))


def prometheus_scrapes():
    """Debian's Prometheus scrapes /metrics over TLS: up == 1 and certward_
    series in its query API."""
    port = free_port()
    pdir = os.path.join(root, "prometheus")
    os.makedirs(pdir, exist_ok=True)
    conf = os.path.join(pdir, "prometheus.yml")
    with open(conf, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: certward\n    scheme: https\n"
                "    tls_config:\n      ca_file: %s\n      server_name: localhost\n"
                "    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % (cert_path(), cw.api_port))
    plog = open(os.path.join(pdir, "prometheus.log"), "w")
    prom = subprocess.Popen(["prometheus", "--config.file=" + conf, "--storage.tsdb.path=" + os.path.join(pdir, "data"),
                             "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
                            stdout=plog, stderr=subprocess.STDOUT, start_new_session=True)

    def query(q):
        url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (port, urllib.parse.quote(q))
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.load(r)["data"]["result"]
        except (OSError, ValueError, KeyError):
            return None

    try:
        up = wait_for("target up", lambda: (lambda r: r if r and r[0]["value"][1] == "1" else None)(query('up{job="certward"}')), timeout=60)
        check(up[0]["metric"]["instance"] == "127.0.0.1:%d" % cw.api_port, "unexpected target %r" % up)
        series = wait_for("certward_ series", lambda: query('certward_worker_up{worker="signer"}'), timeout=30)
        check(series[0]["value"][1] == "1", "certward_worker_up for the signer: %r" % series)
        check(query('count({__name__=~"certward_.+"})')[0]["value"][1] not in ("0", None), "no certward_ series")
    finally:
        prom.terminate()
        try:
            prom.wait(20)
        except subprocess.TimeoutExpired:
            prom.kill()
        plog.close()
    # its keep-alive connection is gone before the connection-limit case
    wait_for("prometheus connection closed",
             lambda: cw.metrics("api")['connections_open{listener="https"}'] == 0, timeout=10)


def psql(text):
    return harness_psql(pg, text)


def make_key(name, role, extra_cols="", extra_vals=""):
    return harness_make_key(pg, name, role, extra_cols, extra_vals)


def api_key_authentication():
    """/api/v1/auth/check accepts a valid key over HTTP/1.1 and HTTP/2, and
    refuses a missing, malformed, unknown, wrong, revoked or expired one with
    401; the secret appears in no log line."""
    wait_for("schema current", lambda: "0" == psql("SELECT count(*) FROM api_keys WHERE false").strip()
             or None, timeout=30)
    code, body = curl("/api/v1/auth/info")
    check(code == 200 and json.loads(body) == {"auth_type": "api-key", "required": True}, "auth/info: %r" % body)
    admin = make_key("it-admin", "admin")
    viewer = make_key("it-viewer", "viewer")
    revoked = make_key("it-revoked", "operator", ", revoked_at", ", now()")
    expired = make_key("it-expired", "operator", ", expires_at", ", now() - interval '1 second'")
    for proto in ("--http1.1", "--http2"):
        code, body = curl("/api/v1/auth/check", "-H", "Authorization: Bearer " + admin, proto=proto)
        check(code == 200 and json.loads(body)["role"] == "admin", "%s valid key: %r" % (proto, (code, body)))
    code, body = curl("/api/v1/auth/check", "-H", "authorization: bearer " + viewer)
    check(code == 200 and json.loads(body)["role"] == "viewer", "viewer key: %r" % ((code, body),))
    wrong = admin[:-1] + ("0" if admin[-1] != "0" else "1")
    unknown = "cw_" + "0" * 12 + admin[15:]
    for what, header in (("no key", None), ("basic auth", "Basic dXNlcjpwYXNz"), ("malformed", "Bearer cw_nonsense"),
                         ("unknown", "Bearer " + unknown), ("wrong secret", "Bearer " + wrong),
                         ("revoked", "Bearer " + revoked), ("expired", "Bearer " + expired)):
        extra = ["-H", "Authorization: " + header] if header else []
        code, body = curl("/api/v1/auth/check", *extra)
        check(code == 401 and json.loads(body)["request_id"], "%s: %r" % (what, (code, body)))
    with open(os.path.join(cw.logs, "api.log")) as f:
        text = f.read()
    for key in (admin, viewer, revoked, expired, wrong):
        check(key[16:] not in text, "a secret reached api.log")
    check(re.search(r'msg="authentication failed" client=127\.0\.0\.1 key=cw_[0-9a-f]{12} reason=wrong secret', text),
          "no log line for the wrong secret")
    check('reason=revoked key' in text and 'reason=expired key' in text, "revoked/expired not logged")


def bootstrap_admin_key():
    """At first start the master makes one admin key and leaves it in
    <state_dir>/admin-api-key (0600); it works, no log holds the secret, and
    once an admin key exists no other is made."""
    path = os.path.join(cw.state, "admin-api-key")
    wait_for("bootstrap key file", lambda: os.path.exists(path), timeout=30)
    check(os.stat(path).st_mode & 0o777 == 0o600, "mode %o" % (os.stat(path).st_mode & 0o777))
    with open(path) as f:
        key = f.read().strip()
    code, body = curl("/api/v1/auth/check", "-H", "Authorization: Bearer " + key)
    check(code == 200 and json.loads(body)["role"] == "admin", "bootstrap key: %r" % ((code, body),))
    for name in os.listdir(cw.logs):
        with open(os.path.join(cw.logs, name)) as f:
            check(key[16:] not in f.read(), "the secret is in %s" % name)
    with open(os.path.join(cw.logs, "master.log")) as f:
        check("bootstrap admin API key %s written to %s" % (key[:15], path) in f.read(), "not announced")
    # taken by the operator; a store restart must not make another
    os.unlink(path)
    pid = cw.status()["store"]["pid"]
    cw.ctl("restart", "store")
    wait_for("store back", lambda: (lambda st: st["state"] == "running" and st["pid"] != pid)(cw.status()["store"]),
             timeout=30)
    time.sleep(2)
    check(not os.path.exists(path), "a second bootstrap key was made")
    check(psql("SELECT count(*) FROM api_keys WHERE name = 'bootstrap-admin'").strip() == "1", "bootstrap rows")


def rest(method, path, key, data=None, proto="--http1.1"):
    extra = ["-X", method, "-H", "Authorization: Bearer " + key] if key else ["-X", method]
    if data is not None:
        extra += ["-H", "Content-Type: application/json", "--data-binary", data if isinstance(data, str) else json.dumps(data)]
    code, body = curl(path, *extra, proto=proto)
    try:
        return code, json.loads(body) if body else None
    except ValueError:
        return code, body


def rest_teams_and_owners():
    """The first REST resources end to end: keys and roles, create, get,
    partial update, list pages, sorting and filters, validation naming the
    field, uniqueness and references as 409/422, delete, and an audit event
    for every change."""
    time.sleep(2.1)  # past the failure window of the cases before
    admin, viewer = make_key("rest-admin", "admin"), make_key("rest-viewer", "viewer")
    events = int(psql("SELECT count(*) FROM audit_events WHERE outcome = 'success'").strip())
    check(rest("GET", "/api/v1/teams", None)[0] == 401, "no key")
    check(rest("GET", "/api/v1/teams", viewer)[0] == 200, "a viewer reads")
    code, body = rest("POST", "/api/v1/teams", viewer, {"name": "nope"})
    check(code == 403, "a viewer created: %r" % ((code, body),))
    code, t = rest("POST", "/api/v1/teams", admin, {"name": "platform", "description": "the platform team"})
    check(code == 201 and t["id"].startswith("t-") and t["name"] == "platform", "create: %r" % ((code, t),))
    code, t2 = rest("POST", "/api/v1/teams", admin, {"id": "t-sec", "name": "security"}, proto="--http2")
    check(code == 201 and t2["id"] == "t-sec", "create over HTTP/2: %r" % ((code, t2),))
    for body, field in (({"name": ""}, "name"), ({"description": "x"}, "name"), ({"name": "a", "colour": 1}, "colour"),
                        ({"name": 7}, "name"), ('{"name": "a", "name": "b"}', ""), ("[1]", ""), ("{", "")):
        code, p = rest("POST", "/api/v1/teams", admin, body)
        check(code == 400 and p.get("field", "") == field and p["request_id"] and p["detail"],
              "%r: %r" % (body, (code, p)))
    code, p = rest("POST", "/api/v1/teams", admin, {"name": "platform"})
    check(code == 409, "duplicate name: %r" % ((code, p),))
    code, got = rest("GET", "/api/v1/teams/" + t["id"], viewer)
    check(code == 200 and got == t, "get: %r" % ((code, got),))
    code, u = rest("PUT", "/api/v1/teams/t-sec", admin, dict(t2, description="security team"))
    check(code == 200 and u["description"] == "security team" and u["name"] == "security", "update: %r" % ((code, u),))
    check(rest("PUT", "/api/v1/teams/nope", admin, {"name": "x"})[0] == 404, "update of a missing team")
    code, page = rest("GET", "/api/v1/teams?per_page=1&sort=-name", viewer)
    check(code == 200 and page["per_page"] == 1 and page["total"] >= 2 and len(page["data"]) == 1, "page: %r" % page)
    code, page = rest("GET", "/api/v1/teams?name=security", viewer)
    check(page["total"] == 1 and page["data"][0]["id"] == "t-sec", "filter: %r" % page)
    code, page = rest("GET", "/api/v1/teams?page=1000", viewer)
    check(code == 200 and page["data"] == [] and page["total"] >= 2, "beyond the end: %r" % page)
    for q, field in (("per_page=501", "per_page"), ("page=0", "page"), ("page=x", "page"), ("sort=colour", "sort"),
                     ("colour=red", "colour"), ("name=%zz", ""), ("name=" + "x" * 5000, "")):
        code, p = rest("GET", "/api/v1/teams?" + q, viewer)
        check(code == 400 and p.get("field", "") == field, "%s: %r" % (q, (code, p)))
    check(rest("GET", "/api/v1/teams?per_page=1", None)[0] == 401, "validation before authentication")
    code, o = rest("POST", "/api/v1/owners", admin, {"name": "Ann", "email": "ann@example.com", "team_id": "t-sec"})
    check(code == 201 and o["team_id"] == "t-sec", "owner: %r" % ((code, o),))
    check(rest("POST", "/api/v1/owners", admin, {"name": "Bob", "team_id": "t-none"})[0] == 422, "dangling team_id")
    check(rest("POST", "/api/v1/owners", admin, {"name": "Bob", "email": "bob@"})[0] == 400, "bad e-mail")
    check(rest("DELETE", "/api/v1/teams/t-sec", admin)[0] == 409, "delete of a referenced team")
    check(rest("DELETE", "/api/v1/owners/" + o["id"], admin)[0] == 204, "delete owner")
    check(rest("DELETE", "/api/v1/teams/t-sec", admin)[0] == 204, "delete team")
    check(rest("GET", "/api/v1/teams/t-sec", admin)[0] == 404, "deleted team still there")
    check(rest("DELETE", "/api/v1/teams/t-sec", admin)[0] == 404, "second delete")
    check(rest("PATCH", "/api/v1/teams/" + t["id"], admin, {})[0] == 405, "PATCH")
    actions = psql("SELECT string_agg(action, ',' ORDER BY id) FROM audit_events WHERE outcome = 'success'").strip()
    check(int(psql("SELECT count(*) FROM audit_events WHERE outcome = 'success'").strip()) - events == 6,
          "audit events for 6 changes: %s" % actions)
    check(int(psql("SELECT count(*) FROM audit_events WHERE action = 'request.denied'").strip()) >= 1 and
          int(psql("SELECT count(*) FROM audit_events WHERE action = 'request.failed' AND outcome = 'failure'")
              .strip()) >= 5, "refused requests are not in the audit trail")
    with open(os.path.join(cw.logs, "api.log")) as f:
        check('path="/api/v1/teams"' in f.read(), "no access-log line")
    m = curl("/metrics")[1]
    check('route="/api/v1/teams/{id}",method="DELETE"' in m, "REST routes not in the metrics")


def rest_renewal_policies():
    """Renewal policies: defaults filled by the server, integer ranges and
    arrays checked, a partial update keeps what it does not name, a boolean
    filter."""
    admin = make_key("rp-admin", "admin")
    code, p = rest("POST", "/api/v1/renewal-policies", admin, {"name": "standard", "max_retries": 3})
    check(code == 201 and p["renewal_window_days"] == 30 and p["auto_renew"] is True and
          p["alert_thresholds_days"] == [30, 14, 7, 0] and p["retry_interval_seconds"] == 3600, "defaults: %r" % p)
    for body, field in (({"name": "x"}, "max_retries"), ({"name": "x", "max_retries": 11}, "max_retries"),
                        ({"name": "x", "max_retries": 1, "renewal_window_days": 0}, "renewal_window_days"),
                        ({"name": "x", "max_retries": 1, "alert_thresholds_days": [30, 400]}, "alert_thresholds_days"),
                        ({"name": "x", "max_retries": 1, "alert_thresholds_days": ["7"]}, "alert_thresholds_days"),
                        ({"name": "x", "max_retries": 1, "auto_renew": "yes"}, "auto_renew")):
        code, e = rest("POST", "/api/v1/renewal-policies", admin, body)
        check(code == 400 and e.get("field") == field, "%r: %r" % (body, (code, e)))
    code, u = rest("PUT", "/api/v1/renewal-policies/" + p["id"], admin, {"auto_renew": False, "alert_thresholds_days": [7]})
    check(code == 200 and u["auto_renew"] is False and u["alert_thresholds_days"] == [7] and u["max_retries"] == 3,
          "partial update: %r" % ((code, u),))
    code, page = rest("GET", "/api/v1/renewal-policies?auto_renew=false", admin)
    check(code == 200 and [x["id"] for x in page["data"]] == [p["id"]], "boolean filter: %r" % page)
    check(rest("GET", "/api/v1/renewal-policies?auto_renew=maybe", admin)[0] == 400, "a non-boolean filter")
    check(rest("POST", "/api/v1/renewal-policies", admin,
               {"name": "y", "max_retries": 1, "certificate_profile_id": "prof-none"})[0] == 422, "dangling profile")


def auth_failures_rate_limited():
    """Past api.auth_failure_limit (8) failures in api.auth_failure_window
    (2s) one address gets 429, even with a valid key, until the window ends."""
    time.sleep(2.1)  # a fresh window (api_key_authentication failed 7 times)
    admin = make_key("it-limit", "admin")
    codes = [curl("/api/v1/auth/check", "-H", "Authorization: Bearer cw_000000000000_" + "0" * 64)[0]
             for _ in range(9)]
    check(codes[:8] == [401] * 8 and codes[8] == 429, "failure answers: %r" % codes)
    check(curl("/api/v1/auth/check", "-H", "Authorization: Bearer " + admin)[0] == 429, "a valid key passed the limit")
    time.sleep(2.1)
    check(curl("/api/v1/auth/check", "-H", "Authorization: Bearer " + admin)[0] == 200, "still limited after the window")


def pipelined_keepalive():
    req = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    data = raw_exchange(req * 3 + b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    check(data.count(b"HTTP/1.1 200 OK") == 4, "pipelined answers: %r" % data[:600])
    check(data.rfind(b'"ready"') > data.rfind(b'{"status":"ok"}'), "answers out of order")


def ready_follows_postgres():
    subprocess.run([os.path.join(os.environ["CERTWARD_SOURCE_DIR"], "contrib", "pg.sh"), "stop", pg.dir],
                   capture_output=True, timeout=120)
    code, body = wait_for("503", lambda: (lambda r: r if r[0] == 503 else None)(curl("/ready")), timeout=15)
    check("postgresql" in body, "503 body does not name postgresql: %r" % body)
    check(curl("/health")[0] == 200, "liveness must not depend on the database")
    pid = cw.status()["store"]["pid"]
    Postgres(root, pg.port)
    wait_for("200 again", lambda: curl("/ready")[0] == 200, timeout=30)
    check(cw.status()["store"]["pid"] == pid, "the store was restarted")


def ready_when_store_hangs():
    """A store that stops answering (SIGSTOP) makes /ready 503 after the IPC
    deadline instead of hanging; it is ready again once the store resumes."""
    pid = cw.status()["store"]["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        code, body = curl("/ready")
        took = time.monotonic() - t0
        check(code == 503 and "store unreachable" in body, "/ready with a hung store: %r" % ((code, body),))
        check(took < 5 + 3, "/ready took %.1fs with a hung store" % took)
        check(curl("/health")[0] == 200, "liveness must not depend on the store")
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for("ready again", lambda: curl("/ready")[0] == 200, timeout=15)


def h2_slowloris():
    """An HTTP/2 client that opens a stream and never finishes its request
    loses the connection after api.request_timeout (1s)."""
    ctx = tls_context()
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", cw.api_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            t0 = time.monotonic()
            # HEADERS with END_HEADERS but without END_STREAM: a body is due
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0) + h2_frame(1, 0x4, 1, h2_get("/health")))
            check(curl("/health", proto="--http2")[0] == 200, "another client waited on the slow one")
            frames = h2_read_frames(s, lambda fr: any(f[0] == 7 for f in fr))
            took = time.monotonic() - t0
            check(any(f[0] == 7 for f in frames), "no GOAWAY for a stalled request")
            check(0.8 < took < 5, "cut off after %.1fs, expected about 1s" % took)


def two_api_processes_share_the_port():
    cw.api_extra = "  processes: 2\n" + BASE_API
    cw.write_config()
    out = cw.ctl("reload").stdout
    check("api.1 started" in out, "reload: %r" % out)
    wait_for("api.1 running", lambda: cw.status().get("api.1", {}).get("state") == "running", timeout=20)
    check("pong" in cw.ctl("ping", "api.1", "signer").stdout, "api.1 has no channel to the signer")
    check("pong" in cw.ctl("ping", "signer", "api.1").stdout, "the signer has no channel to api.1")
    for _ in range(40):
        check(curl("/health")[0] == 200, "a request failed with two api processes")
    served = [cw.metrics(a)['tls_handshakes_total{listener="https"}'] for a in ("api", "api.1")]
    check(all(n > 0 for n in served), "the kernel did not spread connections: %r" % served)
    cw.api_extra = BASE_API
    cw.write_config()
    check("api.1 retired" in cw.ctl("reload").stdout, "api.1 not retired")
    wait_for("api.1 gone", lambda: "api.1" not in cw.status(), timeout=20)


def tls12_when_configured():
    cw.api_extra = "  tls_min_version: \"1.2\"\n" + BASE_API
    cw.write_config()
    before = cw.status()["api"]["pid"]
    out = cw.ctl("reload").stdout
    check("api restarted" in out, "reload: %r" % out)
    wait_for("api back", lambda: (lambda s: s["api"]["state"] == "running" and s["api"]["pid"] != before)(cw.status()), timeout=20)
    out = wait_for("TLS 1.2 handshake", lambda: (lambda o: o if "Verify return code: 0 (ok)" in o.stdout else None)(s_client("-tls1_2")), timeout=20)
    check("TLSv1.2" in out.stdout, "TLS 1.2 refused although configured")


PLAIN_PORT = free_port()
BASE_API = ("  handshake_timeout: 1s\n  request_timeout: 1s\n  max_connections: 4\n  h2_max_streams: 4\n"
            "  auth_failure_limit: 8\n  auth_failure_window: 2s\n"
            "  plain_listen: 127.0.0.1:%d\n" % PLAIN_PORT)

root = make_root("certward-api-")
cw = None
pg = None
try:
    pg = Postgres(root, 15900 + os.getpid() % 90)
    cw = Certward(root, pg.dsn, api_extra=BASE_API)
    cw.plain_port = PLAIN_PORT
    cw.start()
    wait_for("all running", cw.all_running, timeout=60)
    case(tls13_only_by_default)
    case(no_session_resumption)
    case(http_endpoints)
    case(http2_endpoints)
    case(h2_stream_limit)
    case(h2_malformed)
    case(plain_listener)
    case(metrics_exposition)
    case(prometheus_scrapes)
    case(bootstrap_admin_key)
    case(api_key_authentication)
    case(rest_teams_and_owners)
    case(rest_renewal_policies)
    case(auth_failures_rate_limited)
    case(pipelined_keepalive)
    case(ready_follows_postgres)
    case(ready_when_store_hangs)
    case(key_only_in_signer)
    case(handshakes_survive_signer_restart)
    case(slow_client_is_cut_off)
    case(slowloris_gets_408)
    case(h2_slowloris)
    case(connection_limit)
    case(two_api_processes_share_the_port)
    case(tls12_when_configured)
    RUN.stop_clean(cw)
finally:
    teardown(cw, pg, root)
RUN.finish()
