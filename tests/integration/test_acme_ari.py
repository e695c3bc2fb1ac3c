"""ACME Renewal Information (RFC 9773) end to end: a real certwardd gets
certificates from Debian's pebble (2.4, which has no ARI) through an HTTPS
front on 127.0.0.1 that serves pebble's directory with renewalInfo added
(pointing at itself) and answers GET renewalInfo/<CertID> as each case
says. Every other URL of the directory stays pebble's: the JWS POSTs go to
pebble, never through the front.

- After issuance the scheduler asks for the certificate's CertID (computed
  here from the certificate with the openssl CLI); the certificate's
  renew_at (API) lands inside the suggested window; the next check is at
  the answer's Retry-After, held within [1 hour, 1 day] (6 hours without
  one); a window that stays the same keeps the time picked in it; the
  explanationURL is logged; the change is audited.
- The version issued by another CA before the move is never asked about.
- Errors (a 5xx, a window whose end is not after its start, an oversize
  answer) keep renew_at and back off (1 hour doubling, or a longer
  Retry-After); a 404 brings back the renewal policy's time with no
  warning.
- A window moved into the past makes the scheduler renew the certificate
  with no renew call, the order naming the certificate it replaces.
- A CA without renewalInfo (plain pebble) issues as before, renew_at the
  policy's, no ARI warning, asked again a day later.
- Moved to a Local issuer, the certificate's window is forgotten; so it is
  when its issuer stops being ACME, and asked for again when it is ACME
  again.

A certificate is asked about again before its next check by setting
acme_renewal_info.next_check in the database (the shortest wait the
scheduler allows is an hour)."""
import base64
import datetime
import http.server
import json
import os
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_acme as acme  # noqa: E402 its helpers (adm, post, one, certificate, renew, ...) on acme.api, acme.pg, S
from harness import (Api, Cases, Certward, Pebble, Postgres, check, free_port, make_root, openssl,  # noqa: E402
                     psql, teardown, wait_for)

RUN = Cases(lambda: cw)
case = RUN.case
S = acme.S
adm, one = acme.adm, acme.one
DAY = 86400


def now():
    return int(time.time())


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def unix(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class AriFront:
    """HTTPS on 127.0.0.1 (a certificate from a throwaway CA made with the
    openssl CLI: ca_pem): GET /dir is pebble's directory with renewalInfo
    at this server; GET /renewal-info/<CertID> records the CertID in asked
    and answers answer(cert_id) -> (status, {header: value}, body bytes)."""

    def __init__(self, d, ca):
        os.makedirs(d, exist_ok=True)
        ca_key, self.ca_file = os.path.join(d, "front-ca.key"), os.path.join(d, "front-ca.pem")
        key, cert, ext = os.path.join(d, "front.key"), os.path.join(d, "front.pem"), os.path.join(d, "front.ext")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", ca_key,
                "-out", self.ca_file, "-subj", "/CN=ARI front test CA", "-days", "2",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\n")
        csr = openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                      "-subj", "/CN=127.0.0.1").stdout
        openssl("x509", "-req", "-CA", self.ca_file, "-CAkey", ca_key, "-set_serial",
                str(int.from_bytes(os.urandom(8), "big")), "-days", "2", "-extfile", ext, "-out", cert, stdin=csr)
        self.ca = ca
        self.asked = []
        self.answer = lambda cert_id: (404, {}, b"")
        self.lock = threading.Lock()
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def send(self, status, headers, body):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/dir":
                    d = dict(front.ca.directory(), renewalInfo="%s/renewal-info" % front.url)
                    self.send(200, {"Content-Type": "application/json"}, json.dumps(d).encode())
                elif self.path.startswith("/renewal-info/"):
                    cert_id = self.path[len("/renewal-info/"):]
                    with front.lock:
                        front.asked.append(cert_id)
                    self.send(*front.answer(cert_id))
                else:
                    self.send(404, {}, b"")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = "https://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def ca_pem(self):
        with open(self.ca_file) as f:
            return f.read()

    def was_asked(self, cert_id):
        with self.lock:
            return cert_id in self.asked

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def window_answer(start, end, retry_after="7200", explanation=None):
    body = {"suggestedWindow": {"start": rfc3339(start), "end": rfc3339(end)}}
    if explanation:
        body["explanationURL"] = explanation
    headers = {"Content-Type": "application/json"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return 200, headers, json.dumps(body).encode()


def cert_id_of(pem_file):
    """RFC 9773 4.1: base64url(AKI keyIdentifier) "." base64url(serial DER
    content bytes), from openssl's text."""
    out = openssl("x509", "-in", pem_file, "-noout", "-ext", "authorityKeyIdentifier").stdout
    keyid = [ln.strip() for ln in out.splitlines()[1:] if ln.strip()][0].replace("keyid:", "").replace(":", "")
    serial = openssl("x509", "-in", pem_file, "-noout", "-serial").stdout.strip().split("=", 1)[1]
    raw = bytes.fromhex(("0" if len(serial) % 2 else "") + serial)
    if raw[0] & 0x80:
        raw = b"\0" + raw
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    return b64(bytes.fromhex(keyid)) + "." + b64(raw)


def not_after(pem_file):
    text = openssl("x509", "-in", pem_file, "-noout", "-enddate").stdout.strip().split("=", 1)[1]
    return datetime.datetime.strptime(text, "%b %d %H:%M:%S %Y GMT").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def certificate(name, names, issuer):
    """Issued by the Local CA from a CSR, then moved to issuer: its id."""
    return acme.certificate(name, names, issuer)[1]["id"]


def renew(cert):
    j = acme.wait_job(acme.renew(cert), ("Completed", "Failed"))
    check(j["status"] == "Completed", "the ACME job: %r\n%s" % (j, cw.tail()))


def leaf(cert):
    """The PEM file of the certificate's newest version."""
    return acme.newest_leaf(cert, cert)[0]


def nversions(cert):
    return acme.newest_leaf(cert, cert)[1]


def renew_at(cert):
    code, c = adm("GET", "/api/v1/certificates/" + cert)
    check(code == 200, "certificate: %r" % ((code, c),))
    return unix(c["renew_at"]) if c.get("renew_at") else None


def ari_row(cert):
    """checked_at (text), seconds to the next check, failures, last_error,
    window start, window end (Unix seconds or None)"""
    out = one("SELECT coalesce(checked_at::text, '') || '|' || coalesce(extract(epoch FROM next_check - "
              "checked_at)::bigint::text, '') || '|' || failures || '|' || coalesce(last_error, '') || '|' || "
              "coalesce(extract(epoch FROM window_start)::bigint::text, '') || '|' || coalesce(extract(epoch FROM "
              "window_end)::bigint::text, '') FROM acme_renewal_info WHERE certificate_id = '%s'" % cert)
    if not out:
        return None
    checked, wait, failures, error, ws, we = out.split("|")
    return {"checked_at": checked, "wait": int(wait) if wait else None, "failures": int(failures), "error": error,
            "start": int(ws) if ws else None, "end": int(we) if we else None}


def checked(cert, timeout=30):
    return wait_for("renewal information of %s checked" % cert,
                    lambda: (lambda r: r if r and r["checked_at"] else None)(ari_row(cert)), timeout=timeout)


def recheck(cert):
    """Asked about again now; the row once that check is recorded."""
    before = ari_row(cert)["checked_at"]
    psql(pg, "UPDATE acme_renewal_info SET next_check = now() WHERE certificate_id = '%s'" % cert)
    return wait_for("a new check of %s" % cert,
                    lambda: (lambda r: r if r["checked_at"] != before else None)(ari_row(cert)), timeout=30)


def scheduler_log():
    with open(os.path.join(cw.logs, "scheduler.log"), errors="replace") as f:
        return f.read()


def warnings_about(cert):
    return [ln for ln in scheduler_log().splitlines()
            if cert in ln and "renewal information" in ln and "level=warn" in ln]


def setup():
    """test_acme's setup (an admin key, team, owner, Local issuer, policy,
    profile, and S["http"]: an ACME issuer of plain pebble), and the
    issuer of pebble behind the front."""
    acme.cw, acme.pebble = cw, pebble
    acme.setup()
    S["ari"] = acme.acme_issuer("pebble-ari", pebble, directory_url=front.url + "/dir",
                                trust_anchors_pem=pebble.ca_pem() + front.ca_pem())


def window_sets_renew_at():
    start, end = now() + 10 * DAY, now() + 12 * DAY
    front.answer = lambda cid: window_answer(start, end, "7200", "https://ca.example/incidents/42")
    cert = certificate("windowed", ["windowed.example.com"], S["ari"])
    local_id = cert_id_of(leaf(cert))
    renew(cert)
    pem = leaf(cert)
    cid = cert_id_of(pem)
    wait_for("the front asked for %s" % cid, lambda: front.was_asked(cid), timeout=30)
    row = checked(cert)
    at = wait_for("renew_at in the window", lambda: (lambda t: t if t and start <= t < end else None)(renew_at(cert)),
                  timeout=30)
    check(row["start"] == start and row["end"] == end, "the recorded window: %r" % row)
    check(7200 - 5 <= row["wait"] <= 7200 + 5, "next check after Retry-After 7200: %r" % row)
    check(not front.was_asked(local_id), "the Local CA's version was asked about: %r" % front.asked)
    check(cid.split(".")[0] != local_id.split(".")[0], "the same authority key identifier twice")
    wait_for("the explanation logged", lambda: "https://ca.example/incidents/42" in scheduler_log(), timeout=10)
    ev = one("SELECT details::text FROM audit_events WHERE action = 'acme_renewal_info.window' AND resource_id = "
             "'%s' ORDER BY id DESC LIMIT 1" % cert)
    check(ev and json.loads(ev).get("cert_id") == cid and json.loads(ev).get("by") == "acme_ari", "audit: %r" % ev)
    S["windowed"], S["windowed_at"], S["windowed_window"] = cert, at, (start, end)


def retry_after_bounds():
    """Retry-After held within [1 h, 1 d], 6 h without one, an HTTP-date
    taken against now; the same window keeps the time picked before."""
    cert = S["windowed"]
    start, end = S["windowed_window"]
    for given, lo, hi in (("5", 3600, 3600), (None, 21600, 21600), ("864000", DAY, DAY),
                          (time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now() + 3 * 3600)),
                           3 * 3600 - 10, 3 * 3600 + 5)):
        front.answer = lambda cid, g=given: window_answer(start, end, g)
        row = recheck(cert)
        check(lo - 5 <= row["wait"] <= hi + 5 and row["failures"] == 0,
              "Retry-After %r: next check in %r s" % (given, row["wait"]))
        check(renew_at(cert) == S["windowed_at"], "the same window picked again: %r" % renew_at(cert))


def errors_keep_renew_at():
    """A 5xx, a window whose end is not after its start, and a 300 KiB
    answer keep renew_at and back off; a valid window afterwards counts
    again from zero."""
    cert = S["windowed"]
    start, end = S["windowed_window"]
    problem = json.dumps({"type": "urn:ietf:params:acme:error:serverInternal", "detail": "ARI is down"}).encode()
    cases = [
        (lambda cid: (503, {"Content-Type": "application/problem+json"}, problem), 3600, "serverInternal"),
        (lambda cid: window_answer(end, start), 7200, "end not after start"),
        (lambda cid: (200, {"Content-Type": "application/json"},
                      b'{"suggestedWindow":{"start":"x","end":"y"},"pad":"' + b"a" * (300 * 1024) + b'"}'),
         14400, "larger than"),
        (lambda cid: (500, {"Retry-After": "40000"}, b"oops"), 40000, "500"),
    ]
    for i, (answer, wait, text) in enumerate(cases):
        front.answer = answer
        row = recheck(cert)
        check(row["failures"] == i + 1 and abs(row["wait"] - wait) <= 5 and text in row["error"],
              "error %d: %r" % (i, row))
        check(renew_at(cert) == S["windowed_at"], "renew_at after error %d: %r" % (i, renew_at(cert)))
        check(row["start"] == start and row["end"] == end, "the window is forgotten after error %d: %r" % (i, row))
    check(warnings_about(cert), "no warning for the errors")
    front.answer = lambda cid: window_answer(start, end, "7200")
    row = recheck(cert)
    check(row["failures"] == 0 and row["error"] == "" and abs(row["wait"] - 7200) <= 5, "after the errors: %r" % row)


def not_found_means_policy():
    """A 404 for the certificate: the renewal policy's time (30 days before
    its expiry) is back, with no warning and no failed job."""
    cert = S["windowed"]
    warned = len(warnings_about(cert))
    front.answer = lambda cid: (404, {"Content-Type": "application/problem+json"},
                                b'{"type":"urn:ietf:params:acme:error:malformed","detail":"no such certificate"}')
    row = recheck(cert)
    expected = not_after(leaf(cert)) - 30 * DAY
    at = renew_at(cert)
    check(at is not None and abs(at - expected) <= 1, "renew_at %r, the policy's %r" % (at, expected))
    check(row["start"] is None and row["failures"] == 0 and row["error"] == "", "after a 404: %r" % row)
    check(len(warnings_about(cert)) == warned, "a warning for a 404: %r" % warnings_about(cert)[warned:])
    check(one("SELECT count(*) FROM jobs WHERE certificate_id = '%s' AND status = 'Failed'" % cert) == "0",
          "a failed job")
    ev = one("SELECT details->>'by' FROM audit_events WHERE action = 'acme_renewal_info.window' AND resource_id = "
             "'%s' ORDER BY id DESC LIMIT 1" % cert)
    check(ev == "renewal_policy", "the audit event: %r" % ev)


def past_window_renews():
    """The CA moves the window into the past: the scheduler renews at once,
    the order naming the certificate it replaces; the new certificate is
    asked about in turn."""
    cert = S["windowed"]
    old = cert_id_of(leaf(cert))
    n = nversions(cert)
    later = (now() + 20 * DAY, now() + 21 * DAY)
    front.answer = lambda cid: (window_answer(now() - 2 * DAY, now() - DAY) if cid == old
                                else window_answer(later[0], later[1]))
    recheck(cert)
    wait_for("a renewal made by the scheduler alone", lambda: nversions(cert) > n, timeout=90)
    check(one("SELECT count(*) FROM jobs WHERE certificate_id = '%s' AND requested_by = 'scheduler' AND status = "
              "'Completed'" % cert) == "1", "no Completed renewal job of the scheduler")
    check("orders the replacement of %s" % old in scheduler_log(), "the order did not name %s" % old)
    new = cert_id_of(leaf(cert))
    wait_for("the front asked for the new certificate", lambda: front.was_asked(new), timeout=30)
    wait_for("renew_at in the new window", lambda: (lambda t: t and later[0] <= t < later[1])(renew_at(cert)),
             timeout=30)


def plain_pebble_policy():
    """A CA without renewalInfo: issuance as before, renew_at the policy's,
    no ARI warning, asked again a day later."""
    cert = certificate("plain", ["plain.example.com"], S["http"])
    renew(cert)
    pem = leaf(cert)
    row = wait_for("the new version checked", lambda: (lambda r: r if r and r["checked_at"] and r["wait"] and
                                                       r["wait"] > 3600 else None)(ari_row(cert)), timeout=30)
    check(row["start"] is None and row["failures"] == 0 and abs(row["wait"] - DAY) <= 5, "the check: %r" % row)
    expected = not_after(pem) - 30 * DAY
    check(abs(renew_at(cert) - expected) <= 1, "renew_at %r, the policy's %r" % (renew_at(cert), expected))
    check(not warnings_about(cert), "warnings: %r" % warnings_about(cert))
    check(not front.was_asked(cert_id_of(pem)), "the front was asked about a plain pebble certificate")


def moved_to_local():
    """Moved to the Local issuer, the certificate's window is forgotten and
    its renew_at is the policy's."""
    cert = S["windowed"]
    check(renew_at(cert) != not_after(leaf(cert)) - 30 * DAY, "renew_at is not the window's before the move")
    code, c = adm("GET", "/api/v1/certificates/" + cert)
    body = {k: c[k] for k in ("name", "common_name", "sans", "owner_id", "team_id", "renewal_policy_id",
                              "certificate_profile_id")}
    body["issuer_id"] = S["local"]
    code, ans = adm("PUT", "/api/v1/certificates/" + cert, body)
    check(code == 200, "moving back: %r" % ((code, ans),))
    check(ari_row(cert) is None, "the renewal information row stayed: %r" % ari_row(cert))
    check(abs(renew_at(cert) - (not_after(leaf(cert)) - 30 * DAY)) <= 1, "renew_at after the move: %r"
          % renew_at(cert))


def issuer_retyped():
    """An issuer that stops being ACME takes its certificates' windows with
    it (renew_at the policy's again); made ACME again, its certificates are
    asked about at once."""
    start, end = now() + 5 * DAY, now() + 6 * DAY
    front.answer = lambda cid: window_answer(start, end)
    iss = acme.acme_issuer("pebble-ari-2", pebble, directory_url=front.url + "/dir",
                           trust_anchors_pem=pebble.ca_pem() + front.ca_pem())
    cert = certificate("retyped", ["retyped.example.com"], iss)
    renew(cert)
    policy = not_after(leaf(cert)) - 30 * DAY
    wait_for("renew_at in the window", lambda: (lambda t: t and start <= t < end)(renew_at(cert)), timeout=30)
    code, ans = adm("PUT", "/api/v1/issuers/" + iss, {"type": "GenericCA"})
    check(code == 200, "to GenericCA: %r" % ((code, ans),))
    check(ari_row(cert) is None and abs(renew_at(cert) - policy) <= 1,
          "after the type change: %r, renew_at %r" % (ari_row(cert), renew_at(cert)))
    code, ans = adm("PUT", "/api/v1/issuers/" + iss, {"type": "ACME"})
    check(code == 200, "back to ACME: %r" % ((code, ans),))
    wait_for("renew_at in the window again", lambda: (lambda t: t and start <= t < end)(renew_at(cert)), timeout=30)


def main():
    global root, pg, cw, api, pebble, front
    root = make_root("cw-ari-")
    S["dir"] = os.path.join(root, "work")
    os.makedirs(S["dir"])
    S["plain"] = free_port()
    pg = acme.pg = Postgres(root, free_port())
    pebble = Pebble(os.path.join(root, "pebble"), http_port=S["plain"])
    front = AriFront(os.path.join(root, "front"), pebble)
    os.chmod(root, 0o755)
    cw = Certward(root, pg.dsn, api_extra="  plain_listen: 127.0.0.1:%d\n" % S["plain"],
                  extra="scheduler:\n  dispatch_interval: 200ms\n  job_timeout: 300s\n  acme_ari_interval: 300ms\n"
                        "  tick: 1s\n  leader_check: 300ms\n  renewal_scan_interval: 1s\n")
    api = acme.api = Api(cw)
    try:
        cw.start()
        case(setup)
        case(window_sets_renew_at)
        case(retry_after_bounds)
        case(errors_keep_renew_at)
        case(not_found_means_policy)
        case(past_window_renews)
        case(plain_pebble_policy)
        case(moved_to_local)
        case(issuer_retyped)
        RUN.stop_clean(cw)
    finally:
        front.stop()
        pebble.stop()
        teardown(cw, pg, root)
    RUN.finish()


if __name__ == "__main__":
    main()
