"""Notification channels and rules through the API, against a real certwardd
and a real PostgreSQL: each channel type created with its secrets sealed to
the notifier's published key (opened here with that key, for that channel
only), secrets never in a response, a list, an audit event or a log file;
strict validation of configs and hostile bodies; updates that keep or
replace the secrets; config channels read-only; rules CRUD and their
validation; requeueing a dead delivery; the digest's preview and send; roles."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Api, Cases, Certward, Postgres, check, make_key, make_root, psql, teardown, wait_for

BUILD = os.environ.get("CERTWARD_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
TOOL = os.path.join(BUILD, "tests", "notifier_seal_open")
RUN = Cases(lambda: cw)
case = RUN.case
CH = "/api/v1/notification-channels"
RULES = "/api/v1/notification-rules"
REDACTED = "********"
SECRETS = []  # every secret value sent: none may show up anywhere
SEEN = []     # every response body


def secret(prefix):
    s = "%s-%s" % (prefix, os.urandom(12).hex())
    SECRETS.append(s)
    return s


def call(method, path, who="admin", body=None):
    code, r = API.call(method, path, KEYS[who], body)
    SEEN.append(json.dumps(r) if not isinstance(r, str) else r)
    return code, r


def sql(text):
    return psql(pg, text)


def sealed_of(channel_id):
    row = sql("SELECT encode(sealed_secrets, 'hex') || '|' || coalesce(secrets_key_id, '') "
              "FROM notification_channels WHERE id = '%s'" % channel_id).strip()
    return row.split("|") if row else None


def opened(blob_hex, channel_id):
    """What a sealed blob holds, opened with the notifier's private key for
    channel_id, or None when it does not open."""
    out = subprocess.run([TOOL, "open", ROOT_KEYS, "notifier.key", channel_id, blob_hex],
                         capture_output=True, text=True, timeout=30)
    return json.loads(out.stdout) if out.returncode == 0 else None


def make_channel(name, type_, config, **extra):
    code, c = call("POST", CH, body=dict(name=name, type=type_, config=config, **extra))
    check(code == 201, "create %s: %r" % (name, (code, c)))
    return c


def no_key_yet():
    """Before any notifier published a key, a channel with secrets cannot be
    sealed: 503 with a clear message, and nothing is stored."""
    # the running notifier publishes its key once, soon after it starts:
    # wait for that, so the key is gone for good once deleted
    wait_for("the notifier's key", lambda: sql("SELECT count(*) FROM notifier_keys").strip() != "0")
    sql("DELETE FROM notifier_keys")
    code, r = call("POST", CH, body={"name": "early", "type": "Slack",
                                     "config": {"webhook_url": "https://hooks.example/" + secret("slack")}})
    check(code == 503 and "notifier" in r["detail"], "no key: %r" % ((code, r),))
    check(sql("SELECT count(*) FROM notification_channels").strip() == "0", "a channel was stored")
    publish_key()


def publish_key():
    global KEY_ID
    out = subprocess.run([TOOL, "key", ROOT_KEYS, "notifier.key"], capture_output=True, text=True, timeout=30)
    check(out.returncode == 0, out.stderr)
    pub, KEY_ID = out.stdout.split()
    # newest of all, whatever a running notifier published at its start
    sql("INSERT INTO notifier_keys (id, public_key, created_at) VALUES ('%s', '\\x%s', now() + interval '1 day') "
        "ON CONFLICT (id) DO NOTHING" % (KEY_ID, pub))


def each_type():
    """Every type with its config: secret members sealed (opening with the
    notifier's key for this channel id only), shown as ********."""
    smtp_pw, hook, hmac_key = secret("smtp"), secret("hook"), secret("hmac")
    slack, teams, pd, og = secret("slack"), secret("teams"), secret("pd"), secret("og")
    cases = [
        ("mail", "Email", {"host": "smtp.example.com", "port": 587, "tls": "starttls", "from": "certward@example.com",
                           "to": ["ops@example.com", "pki@example.com"], "username": "certward",
                           "password": smtp_pw}, {"password": smtp_pw}),
        ("hook", "Webhook", {"url": "https://hooks.example.com:8443/in?token=" + hook, "hmac_key": hmac_key},
         {"url": "https://hooks.example.com:8443/in?token=" + hook, "hmac_key": hmac_key}),
        ("slack", "Slack", {"webhook_url": "https://hooks.slack.example/services/" + slack},
         {"webhook_url": "https://hooks.slack.example/services/" + slack}),
        ("teams", "Teams", {"webhook_url": "https://outlook.example/webhook/" + teams},
         {"webhook_url": "https://outlook.example/webhook/" + teams}),
        ("pager", "PagerDuty", {"routing_key": pd}, {"routing_key": pd}),
        ("genie", "OpsGenie", {"api_url": "https://api.eu.opsgenie.example", "api_key": og}, {"api_key": og}),
    ]
    for name, type_, config, secrets in cases:
        c = make_channel(name, type_, config)
        CHANNELS[name] = c
        shown = {k: (REDACTED if k in secrets else v) for k, v in config.items()}
        check(c["type"] == type_ and c["source"] == "api" and c["enabled"] is True and c["config"] == shown and
              c["id"].startswith("nch-") and c["secrets_key_id"] == KEY_ID, "%s: %r" % (name, c))
        check(call("GET", CH + "/" + c["id"], "viewer") == (200, c), "%s: get" % name)
        blob, key_id = sealed_of(c["id"])
        check(key_id == KEY_ID, "%s: sealed to %s" % (name, key_id))
        check(opened(blob, c["id"]) == secrets, "%s: the blob holds %r" % (name, opened(blob, c["id"])))
        check(opened(blob, CHANNELS.get("mail", c)["id"] + "x") is None, "%s: opens for another channel" % name)
    # a blob moved to another row does not open for that row's id
    hook_blob = sealed_of(CHANNELS["hook"]["id"])[0]
    check(opened(hook_blob, CHANNELS["slack"]["id"]) is None, "a webhook's blob opens as the Slack channel's")
    # an Email channel without authentication has no secrets at all
    c = make_channel("mail-open", "Email", {"host": "127.0.0.1", "tls": "none", "from": "a@example.com",
                                            "to": ["b@example.com"]}, id="nch-open", enabled=False)
    check(c["id"] == "nch-open" and c["enabled"] is False and c["secrets_key_id"] is None and
          sealed_of("nch-open") is None, "no secrets: %r" % c)
    code, lst = call("GET", CH + "?type=Email&sort=name", "viewer")
    check(code == 200 and [x["name"] for x in lst["data"]] == ["mail", "mail-open"] and lst["total"] == 2,
          "list: %r" % lst)


def validation():
    """Strict configs and hostile bodies: 400 naming the member, never its value."""
    url = "https://h.example/x"
    bad = [
        ({"name": "x", "type": "Fax", "config": {}}, "type"),
        ({"name": "x", "type": "Slack", "config": {"webhook_url": "http://h.example/x"}}, "config.webhook_url"),
        ({"name": "x", "type": "Email", "config": {"host": "smtp.example.com", "tls": "none", "from": "a@example.com",
                                                   "to": ["b@example.com"], "username": "u", "password": "pw"}},
         "config.tls"),
        ({"name": "x", "type": "Slack", "config": {"webhook_url": "https://user:pw@h.example/x"}}, "config.webhook_url"),
        ({"name": "x", "type": "Slack", "config": {"webhook_url": "https://h.example/a b"}}, "config.webhook_url"),
        ({"name": "x", "type": "Slack", "config": {"webhook_url": "https://h.example:99999/"}}, "config.webhook_url"),
        ({"name": "x", "type": "Slack", "config": {"webhook_url": "https:///x"}}, "config.webhook_url"),
        ({"name": "x", "type": "Slack", "config": {"webhook_url": "https://" + "a" * 2050}}, "config.webhook_url"),
        ({"name": "x", "type": "Slack", "config": {}}, "config.webhook_url"),
        ({"name": "x", "type": "Slack", "config": {"webhook_url": url, "channel": "#x"}}, "config.channel"),
        ({"name": "x", "type": "Slack", "config": {"webhook_url": REDACTED}}, "config"),
        ({"name": "x", "type": "Slack", "config": []}, "config"),
        ({"name": "x", "type": "Webhook", "config": {"url": url, "hmac_key": "short"}}, "config.hmac_key"),
        ({"name": "x", "type": "PagerDuty", "config": {"routing_key": "k" * 129}}, "config.routing_key"),
        ({"name": "x", "type": "PagerDuty", "config": {"routing_key": "a\r\nb"}}, "config.routing_key"),
        ({"name": "x", "type": "OpsGenie", "config": {"api_key": 7}}, "config.api_key"),
        ({"name": "x", "type": "Email", "config": {"host": "bad host", "from": "a@b.example", "to": ["c@d.example"]}},
         "config.host"),
        ({"name": "x", "type": "Email", "config": {"host": "h.example", "from": "a@b.example", "to": []}}, "config.to"),
        ({"name": "x", "type": "Email", "config": {"host": "h.example", "from": "a@b.example",
                                                   "to": ["c@d.example"] * 101}}, "config.to"),
        ({"name": "x", "type": "Email", "config": {"host": "h.example", "from": "nope", "to": ["c@d.example"]}},
         "config.from"),
        ({"name": "x", "type": "Email", "config": {"host": "h.example", "port": 0, "from": "a@b.example",
                                                   "to": ["c@d.example"]}}, "config.port"),
        ({"name": "x", "type": "Email", "config": {"host": "h.example", "tls": "ssl", "from": "a@b.example",
                                                   "to": ["c@d.example"]}}, "config.tls"),
        ({"name": "x", "type": "Email", "config": {"host": "h.example", "from": "a@b.example",
                                                   "to": ["c@d.example"], "password": "pw-alone"}}, "config.username"),
        ({"name": "", "type": "Slack", "config": {"webhook_url": url}}, "name"),
        ({"name": "n" * 256, "type": "Slack", "config": {"webhook_url": url}}, "name"),
        ({"name": "x", "type": "Slack", "config": {"webhook_url": url}, "source": "config"}, "source"),
        ({"name": "x", "type": "Slack", "config": {"webhook_url": url}, "id": "../x"}, "id"),
        ({"name": "x", "type": "Slack", "config": {"webhook_url": url}, "enabled": "yes"}, "enabled"),
    ]
    for body, field in bad:
        code, r = call("POST", CH, body=body)
        check(code == 400 and r.get("field") == field, "%r: %r" % (body, (code, r)))
        check("pw-alone" not in json.dumps(r) and "a\\r\\nb" not in json.dumps(r), "a value in the problem: %r" % r)
    for raw in ["", "[]", "null", "{\"name\": \"x\", \"name\": \"y\"}", "{" * 50 + "}" * 50, "{\"name\": \"x\"",
                "\xff\xfe"]:
        code, r = call("POST", CH, body=raw)
        check(code == 400, "%r: %r" % (raw[:20], (code, r)))
    big = {"name": "big", "type": "Webhook", "config": {"url": url, "hmac_key": "k" * 1025}}
    check(call("POST", CH, body=big)[0] == 400, "an oversize secret")
    check(call("POST", CH, body={"name": "mail", "type": "Slack", "config": {"webhook_url": url}})[0] == 409,
          "a name taken")
    check(sql("SELECT count(*) FROM notification_channels WHERE name IN ('x', 'big', '')").strip() == "0",
          "a refused channel was stored")


def updates():
    """An update without secrets (or with ********) keeps the sealed blob;
    with secrets it needs them all and replaces the blob."""
    mail = CHANNELS["mail"]
    before = sealed_of(mail["id"])
    code, c = call("PUT", CH + "/" + mail["id"], body={"name": "mail-2", "enabled": False})
    check(code == 200 and c["name"] == "mail-2" and c["enabled"] is False and c["config"] == mail["config"],
          "rename: %r" % ((code, c),))
    check(sealed_of(mail["id"]) == before, "the blob changed on a rename")
    cfg = dict(mail["config"], to=["new@example.com"])
    code, c = call("PUT", CH + "/" + mail["id"], body={"config": cfg})  # password "********": kept
    check(code == 200 and c["config"]["to"] == ["new@example.com"] and c["config"]["password"] == REDACTED,
          "config kept secrets: %r" % ((code, c),))
    check(sealed_of(mail["id"]) == before, "the blob changed on a config change without secrets")
    cfg.pop("password")
    code, c = call("PUT", CH + "/" + mail["id"], body={"config": cfg})  # no password member: kept too
    check(code == 200 and c["config"]["password"] == REDACTED and sealed_of(mail["id"]) == before, "kept: %r" % c)
    pw = secret("smtp2")
    code, c = call("PUT", CH + "/" + mail["id"], body={"config": dict(cfg, password=pw)})
    blob = sealed_of(mail["id"])[0]
    check(code == 200 and blob != before[0] and opened(blob, mail["id"]) == {"password": pw}, "replaced")
    hook = CHANNELS["hook"]
    # some secrets new, others left out: refused (the api cannot open the old blob)
    code, r = call("PUT", CH + "/" + hook["id"], body={"config": {"hmac_key": secret("hmac2")}})
    check(code == 400 and r["field"] == "config.url", "partial secrets: %r" % ((code, r),))
    code, r = call("PUT", CH + "/" + hook["id"], body={"config": {"url": REDACTED, "hmac_key": secret("h3")}})
    check(code == 400 and r["field"] == "config", "a mix of ******** and new: %r" % ((code, r),))
    code, r = call("PUT", CH + "/" + hook["id"], body={"type": "Slack"})
    check(code == 400 and r["field"] == "type", "type change: %r" % ((code, r),))
    code, r = call("PUT", CH + "/" + hook["id"], body={"config": {"url": "http://x.example/"}})
    check(code == 400 and r["field"] == "config.url", "bad url: %r" % ((code, r),))
    check(call("PUT", CH + "/nch-none", body={"name": "n"})[0] == 404, "unknown id")
    check(call("PUT", CH + "/" + hook["id"], body={"bogus": 1})[0] == 400, "unknown member")


def config_channels_read_only():
    """A channel from certward.yml is shown but not changed through the API."""
    sql("INSERT INTO notification_channels (id, name, type, source, config) VALUES ('nch-cfg', 'from-yaml', "
        "'Email', 'config', '{\"host\": \"smtp.example\"}')")
    code, c = call("GET", CH + "/nch-cfg", "viewer")
    check(code == 200 and c["source"] == "config", "get: %r" % c)
    code, r = call("PUT", CH + "/nch-cfg", body={"name": "renamed"})
    check(code == 409 and "certward.yml" in r["detail"], "put: %r" % ((code, r),))
    check(call("DELETE", CH + "/nch-cfg")[0] == 409, "delete")
    check(sql("SELECT name FROM notification_channels WHERE id = 'nch-cfg'").strip() == "from-yaml", "changed")


def rules():
    """Rules: CRUD, event types and severities checked, references 422."""
    slack = CHANNELS["slack"]["id"]
    team = call("POST", "/api/v1/teams", body={"name": "platform"})[1]["id"]
    code, r = call("POST", RULES, body={"name": "critical-to-slack", "channel_id": slack,
                                        "event_types": ["RenewalFailure", "CertificateExpired"],
                                        "min_severity": "warning", "team_id": team})
    check(code == 201 and r["channel_id"] == slack and sorted(r["event_types"]) == ["CertificateExpired",
          "RenewalFailure"] and r["min_severity"] == "warning" and r["digest"] is False and r["enabled"] is True,
          "create: %r" % ((code, r),))
    rid = r["id"]
    code, r = call("PUT", RULES + "/" + rid, body={"digest": True, "min_severity": "critical"})
    check(code == 200 and r["digest"] is True and r["min_severity"] == "critical", "update: %r" % ((code, r),))
    code, lst = call("GET", RULES + "?channel_id=" + slack, "viewer")
    check(code == 200 and [x["id"] for x in lst["data"]] == [rid], "list: %r" % lst)
    for body, status in [({"name": "x", "channel_id": slack, "event_types": ["Nope"]}, 400),
                         ({"name": "x", "channel_id": slack, "min_severity": "fatal"}, 400),
                         ({"name": "x"}, 400),
                         ({"name": "x", "channel_id": "nch-none"}, 422),
                         ({"name": "x", "channel_id": slack, "owner_id": "o-none"}, 422),
                         ({"name": "x", "channel_id": slack, "renewal_policy_id": "rp-none"}, 422),
                         ({"name": "x", "channel_id": slack, "to_owner": "yes"}, 400)]:
        code, r = call("POST", RULES, body=body)
        check(code == status, "%r: %r" % (body, (code, r)))
    code, r = call("POST", RULES, body={"name": "gone-with-channel", "channel_id": CHANNELS["teams"]["id"]})
    check(code == 201, "rule on teams")
    RULE_IDS.extend([rid, r["id"]])


def delete_channel():
    """A deleted channel takes its rules; unknown ids are 404."""
    teams = CHANNELS["teams"]["id"]
    check(call("DELETE", CH + "/" + teams)[0] == 204, "delete")
    check(call("GET", CH + "/" + teams)[0] == 404, "still there")
    check(call("DELETE", CH + "/" + teams)[0] == 404, "twice")
    check(call("GET", RULES + "/" + RULE_IDS[1])[0] == 404, "its rule stayed")
    check(call("DELETE", RULES + "/" + RULE_IDS[1])[0] == 404, "its rule stayed (delete)")


def requeue():
    """Only a dead delivery goes back to pending: retry budget reset,
    next_retry_at cleared, last_error kept; audited."""
    sql("INSERT INTO notifications (id, type, channel, channel_id, recipient, message, status, retry_count, "
        "next_retry_at, last_error, severity, subject) VALUES "
        "('notif-dead', 'RenewalFailure', 'Slack', '%s', 'slack', 'm', 'dead', 5, now(), 'HTTP 500', 'critical', "
        "'renewal failed'), ('notif-sent', 'RenewalSuccess', 'Slack', NULL, 'slack', 'm', 'sent', 0, NULL, NULL, "
        "'info', 's')" % CHANNELS["slack"]["id"])
    code, r = call("POST", "/api/v1/notifications/notif-dead/requeue", "operator")
    check(code == 200 and r == {"status": "requeued"}, "requeue: %r" % ((code, r),))
    row = sql("SELECT status, retry_count, next_retry_at IS NULL, last_error FROM notifications "
              "WHERE id = 'notif-dead'").strip()
    check(row == "pending|0|t|HTTP 500", "row: %r" % row)
    code, r = call("POST", "/api/v1/notifications/notif-dead/requeue", "operator")
    check(code == 409 and "pending" in r["detail"], "again: %r" % ((code, r),))
    check(call("POST", "/api/v1/notifications/notif-sent/requeue")[0] == 409, "sent")
    check(call("POST", "/api/v1/notifications/notif-none/requeue")[0] == 404, "unknown")
    check(call("POST", "/api/v1/notifications/notif-dead/requeue", "viewer")[0] == 403, "viewer")
    check(sql("SELECT count(*) FROM audit_events WHERE action = 'notifications.requeue' AND "
              "resource_id = 'notif-dead'").strip() == "1", "audit")
    code, n = call("GET", "/api/v1/notifications/notif-dead", "viewer")
    check(code == 200 and n["severity"] == "critical" and n["subject"] == "renewal failed" and
          n["channel_id"] == CHANNELS["slack"]["id"] and n["event_id"] is None and n["digest"] is False and
          n["channel"] == "Slack", "the new columns: %r" % n)
    code, lst = call("GET", "/api/v1/notifications?severity=critical", "viewer")
    check(code == 200 and [x["id"] for x in lst["data"]] == ["notif-dead"], "filter: %r" % lst)


def digest():
    """The preview is the HTML the digest would hold now (values escaped);
    send asks the notifier for it, 409 while no rule collects a digest."""
    sql("UPDATE notification_rules SET digest = false")
    check(call("POST", "/api/v1/digest/send", "operator")[0] == 409, "no digest rule")
    sql("INSERT INTO notifications (id, type, channel, channel_id, recipient, message, status, digest, subject) "
        "VALUES ('notif-held', 'ExpirationWarning', 'Slack', '%s', 'slack', 'm', 'pending', true, "
        "'<script>alert(1)</script> expires')" % CHANNELS["slack"]["id"])
    status, headers, body = API.raw("GET", "/api/v1/digest/preview", headers={"Authorization": "Bearer " + KEYS["viewer"]})
    html = body.decode()
    check(status == 200 and headers["content-type"].startswith("text/html"), "preview: %r" % ((status, headers),))
    check("&lt;script&gt;alert(1)&lt;/script&gt; expires" in html and "<script>" not in html and
          "slack" in html, "preview body: %r" % html[:600])
    check(call("GET", "/api/v1/digest/preview?x=1", "viewer")[0] == 400, "query")
    sql("UPDATE notification_rules SET digest = true WHERE id = '%s'" % RULE_IDS[0])
    code, r = call("POST", "/api/v1/digest/send", "operator")
    check(code == 200 and r["status"] == "requested", "send: %r" % ((code, r),))
    check(sql("SELECT value FROM settings WHERE key = 'notifier.digest_requested_at'").strip() == r["requested_at"],
          "the request is not stored")
    check(call("POST", "/api/v1/digest/send", "viewer")[0] == 403, "viewer sends")


def roles():
    """Viewers read; only admins change channels and rules."""
    slack = CHANNELS["slack"]["id"]
    check(call("GET", CH, "viewer")[0] == 200 and call("GET", RULES, "viewer")[0] == 200, "viewer reads")
    for who in ("viewer", "operator"):
        check(call("POST", CH, who, {"name": "v", "type": "Slack",
                                     "config": {"webhook_url": "https://h.example/"}})[0] == 403, who)
        check(call("PUT", CH + "/" + slack, who, {"name": "v"})[0] == 403, who)
        check(call("DELETE", CH + "/" + slack, who)[0] == 403, who)
        check(call("POST", RULES, who, {"name": "v", "channel_id": slack})[0] == 403, who)


def secrets_nowhere():
    """No secret in any response, audit event or log file; the database
    holds them only sealed."""
    for s in SECRETS:
        check(not any(s in body for body in SEEN), "a secret in a response")
    events = sql("SELECT action || ' ' || details::text FROM audit_events WHERE resource_type = "
                 "'notification_channels' ORDER BY id")
    check("notification_channels.create" in events and "notification_channels.update" in events and
          "notification_channels.delete" in events and '"secrets_set": ["password"]' in events, events)
    dump = events + sql("SELECT config::text FROM notification_channels") + sql(
        "SELECT encode(sealed_secrets, 'escape') FROM notification_channels WHERE sealed_secrets IS NOT NULL")
    logs = ""
    for d in (cw.logs, cw.root):
        for name in os.listdir(d):
            p = os.path.join(d, name)
            if os.path.isfile(p):
                with open(p, errors="replace") as f:
                    logs += f.read()
    for s in SECRETS:
        check(s not in dump, "a secret in the database in the clear")
        check(s not in logs, "a secret in a log file")


root = make_root("certward-notify-api-")
ROOT_KEYS = os.path.join(root, "notifier-keys")
cw = pg = API = None
KEYS, CHANNELS, RULE_IDS = {}, {}, []
KEY_ID = None
try:
    os.makedirs(ROOT_KEYS, mode=0o700)
    pg = Postgres(root, 15900 + (os.getpid() + 37) % 90)
    cw = Certward(root, pg.dsn)
    cw.start()
    wait_for("all running", lambda: cw.all_running(), timeout=60)
    key_file = os.path.join(cw.state, "admin-api-key")
    wait_for("bootstrap admin key", lambda: os.path.exists(key_file), timeout=30)
    with open(key_file) as f:
        KEYS["admin"] = f.read().strip()
    KEYS["operator"] = make_key(pg, "op", "operator")
    KEYS["viewer"] = make_key(pg, "view", "viewer")
    API = Api(cw)
    case(no_key_yet)
    case(each_type)
    case(validation)
    case(updates)
    case(config_channels_read_only)
    case(rules)
    case(delete_channel)
    case(requeue)
    case(digest)
    case(roles)
    case(secrets_nowhere)
    RUN.stop_clean(cw)
finally:
    teardown(cw, pg, root)
RUN.finish()
