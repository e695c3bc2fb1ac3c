#!/usr/bin/env python3
"""certward-notifier against real receivers: an SMTP server (aiosmtpd, with
STARTTLS and AUTH) and an HTTPS sink (http.server over ssl) standing in for
a webhook receiver, Slack, Teams, PagerDuty and OpsGenie; events recorded
with cw_notify() through psql, routed, delivered, retried and given up on."""
import os
import sys

try:
    import aiosmtpd  # noqa: F401
except ImportError:
    # Debian's python3-aiosmtpd is installed for the system interpreter
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

import email
import email.policy
import email.utils
import hashlib
import hmac
import http.server
import json
import re
import ssl
import subprocess
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Api, Cases, Certward, Postgres, check, free_port, log, make_key, make_root,  # noqa: E402
                     psql, teardown, wait_for)

from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

SMTP_USER = "alice"
SMTP_PASSWORD = "smtp-pw-" + os.urandom(8).hex()
HMAC_KEY = "hmac-key-" + os.urandom(12).hex()
WEBHOOK_TOKEN = "hooktoken" + os.urandom(8).hex()
SLACK_TOKEN = "slacktoken" + os.urandom(8).hex()
TEAMS_TOKEN = "teamstoken" + os.urandom(8).hex()
PD_KEY = "pdkey" + os.urandom(8).hex()
OG_KEY = "ogkey" + os.urandom(8).hex()
SECRETS = [SMTP_PASSWORD, HMAC_KEY, WEBHOOK_TOKEN, SLACK_TOKEN, TEAMS_TOKEN, PD_KEY, OG_KEY]


def openssl(*args, cwd):
    out = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, "openssl %s: %s" % (args[0], out.stderr))


def make_pki(d):
    """A CA and a certificate for 127.0.0.1 it signed (both receivers use it)."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=notifier test CA", cwd=d)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "sink.key",
            "-out", "sink.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "sink.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "sink.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    return os.path.join(d, "ca.pem"), os.path.join(d, "sink.pem"), os.path.join(d, "sink.key")


class Sink:
    """HTTPS receiver: records every request; /flaky answers 500 twice then
    200, /hang holds its answer until released, /fail always answers 500."""

    def __init__(self, cert, key):
        self.requests = []
        self.lock = threading.Lock()
        self.flaky_seen = 0
        self.release = threading.Event()
        self.hanging = threading.Event()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                status = 200
                if self.path.startswith("/flaky"):
                    with sink.lock:
                        sink.flaky_seen += 1
                        status = 500 if sink.flaky_seen <= 2 else 200
                elif self.path.startswith("/hang"):
                    sink.hanging.set()
                    sink.release.wait(60)
                elif self.path.startswith("/fail"):
                    status = 500
                elif self.path.startswith("/pd"):
                    status = 202
                with sink.lock:
                    sink.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                          "body": body, "status": status,
                                          "while_hanging": sink.hanging.is_set() and not sink.release.is_set()})
                out = b'{"ok":true}' if status < 300 else b'{"error":"try later"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path):
        return "https://127.0.0.1:%d%s" % (self.port, path)

    def got(self, prefix):
        with self.lock:
            return [r for r in self.requests if r["path"].startswith(prefix)]

    def stop(self):
        self.release.set()
        self.server.shutdown()


class Mailbox:
    def __init__(self):
        self.messages = []
        self.auth = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                              "data": envelope.original_content or envelope.content,
                              "tls": session.ssl is not None})
        return "250 OK"


def authenticator(box):
    def check_auth(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == SMTP_USER.encode()
              and auth_data.password == SMTP_PASSWORD.encode())
        box.auth.append((mechanism, ok, session.ssl is not None))
        return AuthResult(success=ok)
    return check_auth


def notifications(api, key, **q):
    qs = "&".join("%s=%s" % kv for kv in q.items())
    st, body = api.call("GET", "/api/v1/notifications?per_page=500" + ("&" + qs if qs else ""), key=key)
    check(st == 200, "GET /api/v1/notifications: %d %r" % (st, body))
    return body["data"]


def main():
    root = make_root("cw-notifier-")
    pg = cw = sink = smtp = smtps = None
    cases = Cases(lambda: cw)
    try:
        ca, cert, key = make_pki(root)
        sink = Sink(cert, key)
        box = Mailbox()
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        smtp_port = free_port()
        smtp = Controller(box, hostname="127.0.0.1", port=smtp_port, tls_context=tls, require_starttls=True,
                          auth_required=True, auth_require_tls=True, authenticator=authenticator(box))
        smtp.start()
        box_tls = Mailbox()
        smtps_port = free_port()
        smtps = Controller(box_tls, hostname="127.0.0.1", port=smtps_port, ssl_context=tls, auth_required=True,
                           auth_require_tls=False, authenticator=authenticator(box_tls))
        smtps.start()
        pg = Postgres(root, free_port())
        # the daily digest at a time of day still ahead (the database's
        # clock), so only the test's digest-now makes one
        if psql(pg, "SELECT to_char(now(), 'HH24:MI')").strip() == "23:59":
            time.sleep(61)
        digest_time = psql(pg, "SELECT CASE WHEN now()::time < '22:59' THEN to_char(now() + interval '1 hour', "
                               "'HH24:MI') ELSE '23:59' END").strip()
        extra = ("notifier:\n"
                 "  poll: 200ms\n  retry_base: 500ms\n  retry_max: 1s\n  max_attempts: 3\n  timeout: 20s\n"
                 "  digest_time: %s\n  ca_file: %s\n"
                 "  email_host: 127.0.0.1\n  email_port: %d\n  email_tls: starttls\n  email_user: %s\n"
                 "  email_password: %s\n  email_from: certward@example.test\n"
                 "  email_to: ops@example.test, oncall@example.test\n  email_events: ExpirationWarning\n"
                 "  webhook_url: %s\n  webhook_hmac_key: %s\n  webhook_min_severity: warning\n"
                 "  slack_url: %s\n  slack_events: ExpirationWarning\n"
                 "  teams_url: %s\n  teams_events: ExpirationWarning\n"
                 "  pagerduty_url: %s\n  pagerduty_routing_key: %s\n  pagerduty_events: ExpirationWarning\n"
                 "  opsgenie_url: %s\n  opsgenie_api_key: %s\n  opsgenie_events: ExpirationWarning\n"
                 % (digest_time, ca, smtp_port, SMTP_USER, SMTP_PASSWORD, sink.url("/hook/" + WEBHOOK_TOKEN), HMAC_KEY,
                    sink.url("/flaky/services/T0/B0/" + SLACK_TOKEN), sink.url("/hang/webhookb2/" + TEAMS_TOKEN),
                    sink.url("/pd/v2/enqueue"), PD_KEY, sink.url("/og/v2/alerts"), OG_KEY))
        cw = Certward(root, pg.dsn, extra=extra)
        cw.start()
        wait_for("all workers running", cw.all_running, timeout=60)
        try:
            wait_for("the migrations applied", lambda: psql(pg, "SELECT count(*) FROM pg_tables WHERE tablename = "
                                                                "'notifier_keys'").strip() == "1", timeout=60)
        except AssertionError:
            with open(os.path.join(cw.logs, "store.log"), errors="replace") as f:
                log("store log:\n" + f.read()[-3000:])
            raise
        admin = make_key(pg, "notifier-test", "admin")
        api = Api(cw)
        wait_for("config channels in the store",
                 lambda: psql(pg, "SELECT count(*) FROM notification_channels WHERE source = 'config' "
                                  "AND enabled").strip() == "6", timeout=30)
        ids = dict(line.split("|") for line in psql(
            pg, "SELECT name, id FROM notification_channels").split())

        def event(etype, severity, dedup, subject, body):
            return psql(pg, "SELECT cw_notify('%s', '%s', NULL, NULL, '%s', '%s', '%s', "
                            "'{\"why\": \"test\"}')" % (etype, severity, dedup, subject, body)).strip()

        ev1 = event("ExpirationWarning", "warning", "t-exp-1", "Certificate api.example.test expires in 7 days",
                    "The certificate of api.example.test expires in 7 days.\n.A line starting with a dot")

        def key_published():
            out = psql(pg, "SELECT id || ' ' || encode(public_key, 'hex') FROM notifier_keys").split()
            check(len(out) in (0, 2), "one key: %r" % out)
            if out:
                check(out[0] == hashlib.sha256(bytes.fromhex(out[1])).hexdigest(), "key id is the SHA-256")
                keyfile = os.path.join(cw.state, "notifier", "notifier.key")
                check(os.stat(keyfile).st_mode & 0o777 == 0o600, "key file 0600")
            return bool(out)

        def test_key_published():
            wait_for("the notifier's key in notifier_keys", key_published, timeout=20)

        def test_hanging_channel_does_not_delay_others():
            # Teams hangs on its first request; the webhook still gets the event meanwhile
            wait_for("the Teams request held", lambda: sink.hanging.is_set(), timeout=30)
            # an event made now, for the webhook alone (Teams takes ExpirationWarning only)
            held = event("RenewalFailure", "warning", "t-while-held", "Renewal failed while Teams hangs", "z")

            def webhook_of_held():
                return [r for r in sink.got("/hook/") if json.loads(r["body"]).get("event_id") == held]
            try:
                got = wait_for("the webhook of the new event", webhook_of_held, timeout=30)
                check(got[0]["while_hanging"], "the webhook arrived while the Teams request was still held")
            finally:
                sink.release.set()
            wait_for("Teams delivered", lambda: sink.got("/hang/"), timeout=30)

        def test_webhook_signature():
            r = wait_for("the webhook of the first event", lambda: [
                x for x in sink.got("/hook/") if json.loads(x["body"]).get("event_id") == ev1], timeout=30)[0]
            ts = r["headers"].get("x-certward-timestamp")
            sig = r["headers"].get("x-certward-signature")
            check(ts and ts.isdigit() and sig and sig.startswith("sha256="), "headers: %r" % r["headers"])
            want = hmac.new(HMAC_KEY.encode(), ts.encode() + b"." + r["body"], hashlib.sha256).hexdigest()
            check(hmac.compare_digest(sig, "sha256=" + want), "the HMAC matches the documented formula")
            wrong = hmac.new(b"another key", ts.encode() + b"." + r["body"], hashlib.sha256).hexdigest()
            check(sig != "sha256=" + wrong, "a wrong key does not verify")
            doc = json.loads(r["body"])
            check(doc["event"] == "ExpirationWarning" and doc["event_id"] == ev1 and doc["severity"] == "warning"
                  and doc["subject"].startswith("Certificate api.example.test") and doc["details"] == {"why": "test"},
                  "webhook body: %r" % doc)
            check(r["headers"].get("content-type") == "application/json", "JSON")

        def test_email_over_starttls():
            wait_for("two e-mails", lambda: len(box.messages) >= 2, timeout=30)
            check(sorted(m["to"][0] for m in box.messages) == ["oncall@example.test", "ops@example.test"],
                  "one per recipient: %r" % [m["to"] for m in box.messages])
            check(all(m["tls"] for m in box.messages), "delivered over TLS")
            check(box.auth and all(ok and t for _, ok, t in box.auth), "AUTH over TLS: %r" % box.auth)
            m = box.messages[0]
            check(m["from"] == "certward@example.test", "MAIL FROM")
            msg = email.message_from_bytes(m["data"], policy=email.policy.default)
            check(msg["Subject"] == "Certificate api.example.test expires in 7 days", "subject %r" % msg["Subject"])
            check(msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8", "MIME type")
            body = msg.get_content()
            check("expires in 7 days." in body and "\n.A line starting with a dot" in body, "body %r" % body)
            check(email.utils.parsedate_to_datetime(msg["Date"]) is not None, "Date")
            check(re.fullmatch(r"<[A-Za-z0-9._-]+@example\.test>", msg["Message-ID"]), "Message-ID %r"
                  % msg["Message-ID"])

        def test_chat_and_paging_shapes():
            pd = wait_for("PagerDuty", lambda: sink.got("/pd/"), timeout=30)[0]
            doc = json.loads(pd["body"])
            check(doc["routing_key"] == PD_KEY and doc["event_action"] == "trigger" and doc["dedup_key"]
                  and doc["payload"]["summary"].startswith("Certificate") and doc["payload"]["severity"] == "warning"
                  and doc["payload"]["source"] == "certward", "PagerDuty: %r" % doc)
            og = wait_for("OpsGenie", lambda: sink.got("/og/"), timeout=30)[0]
            doc = json.loads(og["body"])
            check(og["headers"].get("authorization") == "GenieKey " + OG_KEY, "GenieKey header")
            check(doc["alias"] and doc["message"].startswith("Certificate") and doc["priority"] == "P3",
                  "OpsGenie: %r" % doc)
            teams = json.loads(wait_for("Teams", lambda: sink.got("/hang/"), timeout=30)[0]["body"])
            check(teams["@type"] == "MessageCard" and teams["title"].startswith("Certificate")
                  and teams["sections"][0]["facts"], "Teams: %r" % teams)

        def test_retries_then_exactly_once():
            wait_for("Slack accepted", lambda: [r for r in sink.got("/flaky/") if r["status"] == 200], timeout=60)
            reqs = sink.got("/flaky/")
            check([r["status"] for r in reqs] == [500, 500, 200], "500, 500, 200: %r" % [r["status"] for r in reqs])
            slack = json.loads(reqs[-1]["body"])
            check(slack["text"] and slack["blocks"][0]["type"] == "header", "Slack: %r" % slack)

            def sent_row():
                rows = [n for n in notifications(api, admin) if n.get("channel") == "Slack"]
                return rows if rows and rows[0]["status"] == "sent" else None
            rows = wait_for("the Slack notification sent", sent_row, timeout=20)
            check(len(rows) == 1 and rows[0]["retry_count"] == 2 and "HTTP 500" in (rows[0]["last_error"] or ""),
                  "retry_count 2, last_error kept: %r" % rows)
            check(len(sink.got("/flaky/")) == 3, "never sent again once accepted")

        def test_routing_by_type_and_severity():
            info = event("RenewalFailure", "info", "t-rf-info", "Renewal failed (info)", "x")
            crit = event("RenewalFailure", "critical", "t-rf-crit", "Renewal failed (critical)", "y")
            wait_for("routed", lambda: psql(pg, "SELECT count(*) FROM notification_events WHERE routed_at IS NULL")
                     .strip() == "0", timeout=20)
            rows = psql(pg, "SELECT event_id || ' ' || channel FROM notifications WHERE event_id IN ('%s', '%s')"
                        % (info, crit)).split("\n")
            rows = sorted(r for r in rows if r)
            check(rows == [crit + " Webhook"], "only the webhook (min_severity warning, every type): %r" % rows)

        def test_api_channel_routed_by_team_and_owner():
            """A webhook channel made through the API (its URL and HMAC key
            sealed by the api to the notifier's key, opened only here) gets
            the events of its rule's team and no other; an e-mail rule with
            to_owner writes to the certificate owner's address."""
            def made(path, body):
                st, r = api.call("POST", path, key=admin, body=body)
                check(st == 201, "POST %s: %d %r" % (path, st, r))
                return r["id"]
            team_a = made("/api/v1/teams", {"name": "payments"})
            team_b = made("/api/v1/teams", {"name": "search"})
            owner = made("/api/v1/owners", {"name": "Carol", "email": "carol@example.test", "team_id": team_a})
            issuer = made("/api/v1/issuers", {"name": "local", "type": "Local"})
            policy = made("/api/v1/renewal-policies", {"name": "rp", "max_retries": 1})

            def cert(name, team):
                return made("/api/v1/certificates", {"name": name, "common_name": name + ".example.test",
                                                     "owner_id": owner, "team_id": team, "issuer_id": issuer,
                                                     "renewal_policy_id": policy})
            cert_a, cert_b = cert("pay", team_a), cert("find", team_b)
            api_key = "api-hmac-" + os.urandom(12).hex()
            SECRETS.append(api_key)
            chan = made("/api/v1/notification-channels", {"name": "api-hook", "type": "Webhook", "config": {
                "url": sink.url("/apihook/" + os.urandom(8).hex()), "hmac_key": api_key}})
            made("/api/v1/notification-rules", {"name": "payments-hook", "channel_id": chan,
                                                "event_types": ["RenewalFailure"], "team_id": team_a})
            made("/api/v1/notification-rules", {"name": "owner-mail", "channel_id": ids["config-email"],
                                                "event_types": ["RenewalFailure"], "team_id": team_a,
                                                "to_owner": True})
            mails_before = len(box.messages)
            ev_a = psql(pg, "SELECT cw_notify('RenewalFailure', 'warning', '%s', NULL, 't-api-a', "
                            "'Renewal of pay.example.test failed', 'a')" % cert_a).strip()
            ev_b = psql(pg, "SELECT cw_notify('RenewalFailure', 'warning', '%s', NULL, 't-api-b', "
                            "'Renewal of find.example.test failed', 'b')" % cert_b).strip()
            got = wait_for("the API channel's webhook", lambda: sink.got("/apihook/"), timeout=30)
            r = got[0]
            doc = json.loads(r["body"])
            check(doc["event_id"] == ev_a, "the payments event only: %r" % doc)
            ts, sig = r["headers"].get("x-certward-timestamp"), r["headers"].get("x-certward-signature")
            want = hmac.new(api_key.encode(), ts.encode() + b"." + r["body"], hashlib.sha256).hexdigest()
            check(sig == "sha256=" + want, "signed with the key given to the API")
            mail = wait_for("the owner's e-mail", lambda: [m for m in box.messages[mails_before:]
                                                           if m["to"] == ["carol@example.test"]], timeout=30)
            msg = email.message_from_bytes(mail[0]["data"], policy=email.policy.default)
            check(msg["Subject"] == "Renewal of pay.example.test failed", "subject %r" % msg["Subject"])
            wait_for("routed", lambda: psql(pg, "SELECT count(*) FROM notification_events WHERE routed_at IS NULL")
                     .strip() == "0", timeout=20)
            check(psql(pg, "SELECT count(*) FROM notifications WHERE event_id = '%s' AND (channel_id = '%s' OR "
                           "recipient = 'carol@example.test')" % (ev_b, chan)).strip() == "0",
                  "the other team's event reached the payments rules")
            check(len(sink.got("/apihook/")) == 1, "one delivery: %d" % len(sink.got("/apihook/")))

        def test_email_over_implicit_tls():
            """An Email channel made through the API with implicit TLS (TLS
            from the first byte, port-465 style) and AUTH: the message
            arrives at a server that speaks only TLS."""
            st, c = api.call("POST", "/api/v1/notification-channels", key=admin, body={
                "name": "implicit-mail", "type": "Email", "config": {
                    "host": "127.0.0.1", "port": smtps_port, "tls": "implicit", "from": "certward@example.test",
                    "to": ["tls@example.test"], "username": SMTP_USER, "password": SMTP_PASSWORD}})
            check(st == 201, "channel: %d %r" % (st, c))
            st, r = api.call("POST", "/api/v1/notification-rules", key=admin, body={
                "name": "to-implicit", "channel_id": c["id"], "event_types": ["PolicyViolation"]})
            check(st == 201, "rule: %d %r" % (st, r))
            event("PolicyViolation", "warning", "t-pv-1", "Policy violated by api.example.test", "details")
            m = wait_for("the e-mail over implicit TLS", lambda: box_tls.messages, timeout=30)[0]
            check(m["to"] == ["tls@example.test"] and box_tls.auth and box_tls.auth[0][1], "delivery %r, auth %r"
                  % (m["to"], box_tls.auth))
            msg = email.message_from_bytes(m["data"], policy=email.policy.default)
            check(msg["Subject"] == "Policy violated by api.example.test", "subject %r" % msg["Subject"])

        def test_dead_after_max_attempts():
            chan = psql(pg, "INSERT INTO notification_channels (name, type, config) VALUES ('failing', 'Webhook', "
                            "'{\"url\": \"%s\"}') RETURNING id" % sink.url("/fail")).strip().split("\n")[0]
            psql(pg, "INSERT INTO notification_rules (name, channel_id, event_types) VALUES ('to-failing', '%s', "
                     "'{AgentOffline}')" % chan)
            event("AgentOffline", "warning", "t-off", "Agent a1 is offline", "z")

            def dead():
                rows = [n for n in notifications(api, admin) if n.get("channel_id") == chan or
                        n.get("recipient") == "failing"]
                return rows if rows and rows[0]["status"] == "dead" else None
            rows = wait_for("dead", dead, timeout=60)
            check(rows[0]["retry_count"] == 3 and len(sink.got("/fail")) == 3, "3 attempts: %r" % rows)

        def test_digest():
            psql(pg, "INSERT INTO notification_rules (name, channel_id, event_types, digest) VALUES "
                     "('digest-opsgenie', '%s', '{Revocation}', true)" % ids["config-opsgenie"])
            before = len(sink.got("/og/"))
            event("Revocation", "info", "t-rev-1", "Certificate one revoked", "1")
            event("Revocation", "info", "t-rev-2", "Certificate two revoked", "2")
            wait_for("held", lambda: psql(pg, "SELECT count(*) FROM notifications WHERE digest AND "
                                              "status = 'pending'").strip() == "2", timeout=20)
            check(len(sink.got("/og/")) == before, "held, not sent")
            out = cw.ctl("test-hook", "notifier", "digest-now", "", check_rc=False)
            check("digests of every channel" in out.stderr, "hook: %r" % out)
            og = wait_for("the digest", lambda: sink.got("/og/")[before:], timeout=30)
            check(len(og) == 1, "one message for both: %d" % len(og))
            doc = json.loads(og[0]["body"])
            check("2 notification" in doc["message"] and "Certificate one revoked" in doc["description"]
                  and "Certificate two revoked" in doc["description"], "digest: %r" % doc)
            wait_for("carried ones sent", lambda: psql(pg, "SELECT count(*) FROM notifications WHERE digest AND "
                                                           "status = 'sent'").strip() == "2", timeout=20)

        def test_no_secret_in_logs():
            texts = []
            for d in (cw.logs,):
                for name in os.listdir(d):
                    with open(os.path.join(d, name), errors="replace") as f:
                        texts.append(f.read())
            with open(os.path.join(root, "certwardd.out"), errors="replace") as f:
                texts.append(f.read())
            for s in SECRETS:
                check(not any(s in t for t in texts), "a secret is in the logs")
            check(any("notification sent" in t for t in texts), "the log has delivery lines")

        for fn in (test_key_published, test_hanging_channel_does_not_delay_others, test_webhook_signature,
                   test_email_over_starttls, test_chat_and_paging_shapes, test_retries_then_exactly_once,
                   test_routing_by_type_and_severity, test_api_channel_routed_by_team_and_owner,
                   test_email_over_implicit_tls,
                   test_dead_after_max_attempts, test_digest,
                   test_no_secret_in_logs):
            cases.case(fn)
        m = cw.metrics("notifier")
        log("notifier metrics: %r" % {k: v for k, v in m.items() if k.startswith("notifier_")})
        cases.stop_clean(cw)
    finally:
        if sink:
            sink.stop()
        if smtp:
            smtp.stop()
        if smtps:
            smtps.stop()
        teardown(cw, pg, root)
    cases.finish()


if __name__ == "__main__":
    main()
