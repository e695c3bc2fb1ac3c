"""The scheduler's loops against a real PostgreSQL and certwardd: which
certificates the renewal scan picks (due, not due, no automatic renewal,
archived; the 2/3 rule of a short-lived certificate), the renewal times kept
by the triggers, expiry marking, expiry warnings recorded once per version
and threshold however often the loop runs, the scheduler lock (lost with its
connection, held elsewhere, taken back), and the headline: a short-lived
certificate deployed through a real certward-agent to a real nginx is renewed
with no request from the test, and nginx serves the new certificate."""
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AS_ROOT, BUILD, Api, Cases, Certward, Nginx, Postgres, agent_token, check, free_port, log,
                     make_key, make_root, psql, served_serial, stop_process, teardown, wait_for)

RUN = Cases(lambda: cw)
case = RUN.case
S = {}
AGENT = os.path.join(BUILD, "certward-agent")
LOCK = "classid = 1667592820 AND objid = 2 AND objsubid = 2"
SCHEDULER = ("scheduler:\n  tick: 1s\n  leader_check: 300ms\n  renewal_scan_interval: 1s\n"
             "  expiry_marking_interval: 1s\n  expiry_notify_interval: 500ms\n  ocsp_rotation_interval: 1s\n")


def adm(method, path, body=None):
    return api.call(method, path, S["admin"], body)


def sql1(text):
    return psql(pg, text).strip()


def loop_runs(name):
    return cw.metrics("scheduler").get('scheduler_loop_runs_total{loop="%s"}' % name, 0)


def runs_more(name, n):
    """Waits until the loop has run n more times."""
    start = loop_runs(name)
    wait_for("%d more runs of %s" % (n, name), lambda: loop_runs(name) >= start + n, timeout=60)


def setup():
    wait_for("ready", lambda: cw.all_running() and api.call("GET", "/ready")[0] == 200, timeout=90)
    S["admin"] = make_key(pg, "renewal-admin", "admin")
    S["team"] = adm("POST", "/api/v1/teams", {"name": "payments"})[1]["id"]
    S["owner"] = adm("POST", "/api/v1/owners", {"name": "Alice Ops", "email": "alice@example.com",
                                                 "team_id": S["team"]})[1]["id"]
    S["issuer"] = adm("POST", "/api/v1/issuers", {"name": "local-ca", "type": "Local"})[1]["id"]


def certificate(name, policy, ago_s, left_s, status="Active"):
    """A certificate with one version from now - ago_s to now + left_s, put
    in as an issuance records it (no signature needed for the scan)."""
    code, mc = adm("POST", "/api/v1/certificates", {
        "name": name, "common_name": name + ".example.internal", "owner_id": S["owner"], "team_id": S["team"],
        "issuer_id": S["issuer"], "renewal_policy_id": policy})
    check(code == 201, "certificate %s: %r" % (name, (code, mc)))
    serial = os.urandom(8).hex()
    sql1("INSERT INTO certificate_versions (certificate_id, serial_number, not_before, not_after, "
         "fingerprint_sha256, pem_chain) VALUES ('%s', '%s', now() - make_interval(secs => %d), "
         "now() + make_interval(secs => %d), '%s', 'test')" % (mc["id"], serial, ago_s, left_s, os.urandom(32).hex()))
    sql1("UPDATE managed_certificates SET status = '%s', expires_at = (SELECT max(not_after) FROM "
         "certificate_versions WHERE certificate_id = '%s') WHERE id = '%s'" % (status, mc["id"], mc["id"]))
    return mc["id"]


def scheduler_jobs(cert):
    return int(sql1("SELECT count(*) FROM jobs WHERE certificate_id = '%s' AND type = 'Renewal' AND "
                    "requested_by = 'scheduler'" % cert))


DAY = 86400


def scan_chooses_the_due_certificates():
    auto = adm("POST", "/api/v1/renewal-policies", {"name": "auto-30", "max_retries": 2})[1]["id"]
    manual = adm("POST", "/api/v1/renewal-policies", {"name": "manual-30", "max_retries": 0,
                                                        "auto_renew": False})[1]["id"]
    S["auto"], S["manual"] = auto, manual
    # the scan runs every second: hold it while the rows are put in
    sql1("UPDATE renewal_policies SET auto_renew = false WHERE id = '%s'" % auto)
    c = {
        "due": certificate("due", auto, 80 * DAY, 10 * DAY),
        "not-due": certificate("not-due", auto, 10 * DAY, 80 * DAY),
        "manual": certificate("manual", manual, 80 * DAY, 10 * DAY),
        "archived": certificate("archived", auto, 80 * DAY, 10 * DAY),
        # 6 days long: due at 2/3 of its life (2 days before its end), not at 30 days
        "short-due": certificate("short-due", auto, round(4.1 * DAY), round(1.9 * DAY)),
        "short-not-due": certificate("short-not-due", auto, round(3.9 * DAY), round(2.1 * DAY)),
        "pending": certificate("pending", auto, 80 * DAY, 10 * DAY, status="Pending"),
    }
    S["certs"] = c
    sql1("UPDATE managed_certificates SET status = 'Archived', archived_at = now() WHERE id = '%s'" % c["archived"])
    check(sql1("SELECT renew_at = not_after - interval '2 days' FROM managed_certificates m JOIN "
               "certificate_versions v ON v.certificate_id = m.id WHERE m.id = '%s'" % c["short-due"]) == "t",
          "the 6-day certificate's renewal time is not at 2/3 of its life")
    check(sql1("SELECT renew_at = not_after - interval '30 days' FROM managed_certificates m JOIN "
               "certificate_versions v ON v.certificate_id = m.id WHERE m.id = '%s'" % c["due"]) == "t",
          "the 90-day certificate's renewal time is not 30 days before its end")
    sql1("UPDATE renewal_policies SET auto_renew = true WHERE id = '%s'" % auto)
    for name in ("due", "short-due"):
        wait_for("a renewal job for %s" % name, lambda: scheduler_jobs(c[name]) == 1, timeout=30)
    runs_more("renewal_scan", 3)
    for name in ("not-due", "manual", "archived", "short-not-due", "pending"):
        check(scheduler_jobs(c[name]) == 0, "%s got a renewal job" % name)
    for name in ("due", "short-due"):
        check(scheduler_jobs(c[name]) == 1, "%s got more than one renewal job" % name)
        check(int(sql1("SELECT count(*) FROM audit_events WHERE actor = 'scheduler' AND actor_type = 'System' "
                       "AND action = 'managed_certificates.renew' AND resource_id = '%s'" % c[name])) == 1,
              "%s: no audit event of the scheduler's job" % name)


def renewal_time_follows_the_policy():
    c = S["certs"]
    sql1("UPDATE renewal_policies SET renewal_window_days = 5 WHERE id = '%s'" % S["manual"])
    check(sql1("SELECT renew_at = not_after - interval '5 days' FROM managed_certificates m JOIN "
               "certificate_versions v ON v.certificate_id = m.id WHERE m.id = '%s'" % c["manual"]) == "t",
          "a policy's new window did not move its certificates' renewal time")
    # a certificate moved to another policy takes that policy's window
    sql1("UPDATE managed_certificates SET renewal_policy_id = '%s' WHERE id = '%s'" % (S["auto"], c["not-due"]))
    check(sql1("SELECT renew_at = not_after - interval '30 days' FROM managed_certificates m JOIN "
               "certificate_versions v ON v.certificate_id = m.id WHERE m.id = '%s'" % c["not-due"]) == "t",
          "a certificate's new policy did not set its renewal time")


def expiry_marking():
    c = S["certs"]
    # manual: 10 days left, now outside its 5-day window; inside it with 3 days left
    wait_for("manual Active outside its window",
             lambda: sql1("SELECT status FROM managed_certificates WHERE id = '%s'" % c["manual"]) == "Active",
             timeout=30)
    S["expiring"] = certificate("expiring", S["manual"], 80 * DAY, 3 * DAY)
    S["expired"] = certificate("expired", S["manual"], 80 * DAY, -3600)
    wait_for("Expiring inside the window",
             lambda: sql1("SELECT status FROM managed_certificates WHERE id = '%s'" % S["expiring"]) == "Expiring",
             timeout=30)
    wait_for("Expired past its end",
             lambda: sql1("SELECT status FROM managed_certificates WHERE id = '%s'" % S["expired"]) == "Expired",
             timeout=30)
    check(sql1("SELECT status FROM managed_certificates WHERE id = '%s'" % c["archived"]) == "Archived",
          "an archived certificate's status changed")


def events(cert, kind=None):
    return psql(pg, "SELECT type || ' ' || dedup_key || ' ' || severity FROM notification_events WHERE "
                    "certificate_id = '%s'%s ORDER BY created_at" % (
                        cert, " AND type = '%s'" % kind if kind else "")).split("\n")[:-1]


def expiry_warnings_once_per_version_and_threshold():
    # thresholds 30/14/7/0: 3 days left -> the 7-day warning only, not four
    version = sql1("SELECT id FROM certificate_versions WHERE certificate_id = '%s'" % S["expiring"])
    wait_for("the expiry warning", lambda: events(S["expiring"], "ExpirationWarning"), timeout=30)
    runs_more("expiry_notify", 4)
    got = events(S["expiring"])
    check(got == ["ExpirationWarning expiry:%s:7 critical" % version], "warnings: %r" % got)
    body = sql1("SELECT subject || ' | ' || body FROM notification_events WHERE certificate_id = '%s'"
                % S["expiring"])
    for part in ("expiring.example.internal", "expires in 2 days", "Alice Ops", "payments", "local-ca"):
        check(part in body, "%r is not in the warning: %r" % (part, body))
    # 20 days left: the 30-day warning
    twenty = certificate("twenty", S["manual"], 70 * DAY, 20 * DAY)
    v20 = sql1("SELECT id FROM certificate_versions WHERE certificate_id = '%s'" % twenty)
    wait_for("the 30-day warning", lambda: events(twenty), timeout=30)
    check(events(twenty) == ["ExpirationWarning expiry:%s:30 warning" % v20], "warnings: %r" % events(twenty))
    # past its end: CertificateExpired, once
    ve = sql1("SELECT id FROM certificate_versions WHERE certificate_id = '%s'" % S["expired"])
    wait_for("the expiry event", lambda: events(S["expired"]), timeout=30)
    runs_more("expiry_notify", 3)
    check(events(S["expired"]) == ["CertificateExpired expired:%s critical" % ve], "events: %r" % events(S["expired"]))
    # a new version of the same certificate is warned of again
    serial = os.urandom(8).hex()
    sql1("INSERT INTO certificate_versions (certificate_id, serial_number, not_before, not_after, "
         "fingerprint_sha256, pem_chain) VALUES ('%s', '%s', now() - interval '1 day', now() + interval '6 days', "
         "'%s', 'test')" % (twenty, serial, os.urandom(32).hex()))
    sql1("UPDATE managed_certificates SET expires_at = now() + interval '6 days' WHERE id = '%s'" % twenty)
    wait_for("the new version's warning", lambda: len(events(twenty)) == 2, timeout=30)
    check(events(twenty)[1].startswith("ExpirationWarning expiry:") and events(twenty)[1].endswith(":7 critical"),
          "the new version: %r" % events(twenty))


def every_loop_runs():
    """Each loop has run, none failed; the OCSP responders' rotation asks
    the signer (OCSP_RESPONDERS_RENEW) on its own interval."""
    for name in ("renewal_scan", "expiry_marking", "expiry_notify", "agent_offline", "crl", "ocsp_rotation",
                 "job_dispatch"):
        wait_for("a run of " + name, lambda: loop_runs(name) > 0, timeout=30)
    # (a run before the store had applied the migrations may have failed)
    before = {k: v for k, v in cw.metrics("scheduler").items() if k.startswith("scheduler_loop_errors_total")}
    runs_more("ocsp_rotation", 2)
    runs_more("crl", 2)
    m = cw.metrics("scheduler")
    errors = {k: v for k, v in m.items() if k.startswith("scheduler_loop_errors_total") and v != before.get(k, 0)}
    check(not errors, "loops failed: %r (before: %r)" % (errors, before))
    check(m.get('scheduler_loop_duration_seconds_count{loop="renewal_scan"}', 0) > 0, "no duration histogram")
    # each run that made jobs says how many (the two due certificates may
    # fall into one run or two)
    with open(os.path.join(cw.logs, "scheduler.log")) as f:
        made = sum(int(n) for n in re.findall(r"loop renewal_scan: (\d+) renewal job\(s\) created", f.read()))
    check(made >= 2, "the scan's runs were not logged (%d job(s) in the log)" % made)


def lock_holder():
    return sql1("SELECT coalesce(string_agg(pid::text, ','), '') FROM pg_locks WHERE locktype = 'advisory' "
                "AND %s AND granted" % LOCK)


def leader():
    return cw.metrics("scheduler").get("scheduler_leader")


def the_scheduler_lock():
    wait_for("leader", lambda: leader() == 1, timeout=30)
    holder = lock_holder()
    check(holder and "," not in holder, "the lock's holder: %r" % holder)
    # the lock's connection dies; another session takes the lock first
    cmd = (["runuser", "-u", "certward", "--"] if AS_ROOT else []) + [
        "psql", pg.dsn, "-qAtX", "-c", "SELECT pg_advisory_lock(1667592820, 2)", "-c", "SELECT pg_sleep(600)"]
    other = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    S["other"] = other
    try:
        time.sleep(0.5)
        sql1("SELECT pg_terminate_backend(%s)" % holder)
        wait_for("the other session holds the lock", lambda: lock_holder() not in ("", holder), timeout=20)
        wait_for("leadership lost", lambda: leader() == 0, timeout=20)
        runs = loop_runs("renewal_scan")
        time.sleep(2.5)
        check(loop_runs("renewal_scan") == runs, "the renewal scan ran without the lock")
        check("no longer holds the scheduler lock" in open(os.path.join(cw.logs, "scheduler.log")).read(),
              "the loss was not logged")
    finally:
        # its backend, asleep, would not notice its client go: ended here
        sql1("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND %s AND granted "
             "AND pid <> pg_backend_pid()" % LOCK)
        os.killpg(other.pid, signal.SIGKILL)
        other.wait()
    # the holder gone, this node takes it at its next check
    wait_for("leadership back", lambda: leader() == 1, timeout=20)
    wait_for("the scan runs again", lambda: loop_runs("renewal_scan") > runs, timeout=20)
    m = cw.metrics("scheduler")
    check(m.get("scheduler_leader_changes_total", 0) >= 3, "leader changes: %r" % m.get("scheduler_leader_changes_total"))


# ---- the headline: agent + nginx, renewed by the scheduler alone ----

def stop_servers():
    if S.get("nginx"):
        S["nginx"].stop()
    stop_process(S.get("agent"))


def agent_log():
    try:
        return open(os.path.join(S["dir"], "agent.log")).read()[-4000:]
    except OSError:
        return ""


def agent_renews_through_nginx_unasked():
    d = S["dir"] = os.path.join(cw.root, "host")
    state = os.path.join(d, "agent-state")
    os.makedirs(d, exist_ok=True)
    S["nginx"] = nginx = Nginx(d)
    S["nginx_port"], S["nginx_conf"] = nginx.port, nginx.conf
    tok = agent_token(api, S["admin"], "web01.example.internal")
    token_file = os.path.join(d, "web01.token")
    with open(token_file, "w") as f:
        f.write(tok["token"] + "\n")
    os.chmod(token_file, 0o600)
    r = subprocess.run([AGENT, "enroll", "--server", "https://127.0.0.1:%d" % cw.api_port, "--token-file",
                        token_file, "--cacert", os.path.join(cw.state, "tls", "api.crt"), "--state-dir", state],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "enroll: %r" % r)
    # as short-lived as the signer allows: 90 s asked (+60 s backdated), so
    # the 1-day window gives way to a third of the life: due after ~100 s of 150
    prof = adm("POST", "/api/v1/profiles", {"name": "short-web", "allowed_ekus": ["serverAuth"],
                                            "allow_short_lived": True, "max_ttl_seconds": 90})[1]["id"]
    rp = adm("POST", "/api/v1/renewal-policies", {"name": "short-rp", "max_retries": 2,
                                                   "renewal_window_days": 1})[1]["id"]
    target = adm("POST", "/api/v1/targets", {"name": "web", "type": "NGINX", "agent_id": tok["agent_id"]})[1]["id"]
    code, mc = adm("POST", "/api/v1/certificates", {
        "name": "short-web", "common_name": "web.example.internal", "sans": ["web.example.internal"],
        "owner_id": S["owner"], "team_id": S["team"], "issuer_id": S["issuer"], "renewal_policy_id": rp,
        "certificate_profile_id": prof, "target_ids": [target]})
    check(code == 201, "certificate: %r" % ((code, mc),))
    np = os.path.join(d, "nginx")
    cfg = os.path.join(d, "agent.yml")
    with open(cfg, "w") as f:
        f.write("server: https://127.0.0.1:%d\ncacert: %s\nstate_dir: %s\nheartbeat_interval: 1s\n"
                "poll_interval: 1s\nallowed_paths: [%s/certs]\ntargets:\n  - name: web\n    type: nginx\n"
                "    target_id: %s\n    cert_path: %s/certs/web.crt\n    key_path: %s/certs/web.key\n"
                "    validate: [nginx, -t, -c, %s, -p, %s]\n    reload: [nginx, -s, reload, -c, %s, -p, %s]\n"
                "    verify: {address: \"127.0.0.1:%d\", server_name: web.example.internal, timeout: 10s}\n"
                % (cw.api_port, os.path.join(cw.state, "tls", "api.crt"), state, d, target, d, d,
                   S["nginx_conf"], np, S["nginx_conf"], np, S["nginx_port"]))
    S["agent"] = subprocess.Popen([AGENT, "run", "--config", cfg], stdout=open(os.path.join(d, "agent.log"), "a"),
                                  stderr=subprocess.STDOUT)
    # the first certificate: the certificate is Pending (never issued), which
    # the scan leaves alone; an operator asks for it once
    code, r = adm("POST", "/api/v1/certificates/%s/renew" % mc["id"])
    check(code == 202, "first issuance: %r" % ((code, r),))
    wait_for("the first certificate served",
             lambda: adm("GET", "/api/v1/jobs/" + r["job_id"])[1]["status"] in ("Completed", "Failed"), timeout=60)
    check(adm("GET", "/api/v1/jobs/" + r["job_id"])[1]["status"] == "Completed", "first job:\n" + agent_log())
    first = served_serial(S["nginx_port"], "web.example.internal")
    life = sql1("SELECT extract(epoch FROM not_after - not_before)::int || ' ' || "
                "extract(epoch FROM renew_at - not_before)::int FROM certificate_versions v JOIN managed_certificates m "
                "ON m.id = v.certificate_id WHERE m.id = '%s'" % mc["id"]).split()
    check(life == ["150", "100"], "lifetime and renewal time: %r" % life)
    log("first serial %s; waiting for the scheduler's renewal" % first)
    # from here on nothing but the scheduler asks for anything
    wait_for("nginx serving a renewed certificate",
             lambda: (lambda s: s if s and s != first else None)(served_serial(S["nginx_port"], "web.example.internal")),
             timeout=150, interval=1)
    row = sql1("SELECT requested_by || ' ' || status FROM jobs WHERE certificate_id = '%s' AND type = 'Renewal' "
               "ORDER BY created_at DESC LIMIT 1" % mc["id"])
    check(row.startswith("scheduler "), "the renewal was not the scheduler's: %r" % row)
    new = served_serial(S["nginx_port"], "web.example.internal")
    check(sql1("SELECT count(*) FROM certificate_versions WHERE certificate_id = '%s' AND "
               "ltrim(lower(replace(serial_number, ':', '')), '0') = '%s'" % (mc["id"], new)) == "1",
          "nginx serves %s, which is not a version of the certificate" % new)


if __name__ == "__main__":
    root = make_root("cw-renewal-")
    pg = cw = None
    try:
        pg = Postgres(root, free_port())
        cw = Certward(root, pg.dsn, extra=SCHEDULER)
        cw.start()
        api = Api(cw)
        setup()
        case(scan_chooses_the_due_certificates)
        case(renewal_time_follows_the_policy)
        case(expiry_marking)
        case(expiry_warnings_once_per_version_and_threshold)
        case(every_loop_runs)
        case(the_scheduler_lock)
        case(agent_renews_through_nginx_unasked)
        RUN.stop_clean(cw)
    finally:
        stop_servers()
        teardown(cw, pg, root)
    RUN.finish()
