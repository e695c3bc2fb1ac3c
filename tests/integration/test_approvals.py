"""Approvals through real HTTPS against a real certwardd and PostgreSQL: a
profile and a renewal policy that require approval put renewals in
AwaitingApproval with an approval request (requested_by: the operator's
key) and an ApprovalRequested event; the requester cannot decide its own
job (403 "two-person integrity", audited as denied, nothing changes);
another operator approves (the job carries on where it would have started:
Pending, or AwaitingCSR for an agent's job) or rejects (the job is
Cancelled with the reason, the certificate leaves RenewalInProgress);
deciding again is 409, also when two decide at once; the jobs' approve and
reject routes do the same; a viewer cannot decide; a job the scheduler made
waits the same way and a cancelled job's request expires; hostile bodies
and ids are refused and change nothing."""
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Api, Cases, Certward, Postgres, check, enrol_agent, free_port, make_key, make_root, psql,
                     teardown, wait_for)

RUN = Cases(lambda: cw)
case = RUN.case
K = {}    # role name -> API key
KID = {}  # role name -> the key's id (the actor of its requests)
R = {}    # records made by setup


def one(text):
    return psql(pg, text).strip()


def call(method, path, who, body=None):
    return api.call(method, path, K[who], body)


def cert(name, profile, policy, expires_days=None, target=None):
    body = {"name": name, "common_name": name + ".example.internal", "owner_id": R["owner"], "team_id": R["team"],
            "issuer_id": R["issuer"], "renewal_policy_id": policy, "certificate_profile_id": profile}
    if target:
        body["target_ids"] = [target]
    code, mc = call("POST", "/api/v1/certificates", "admin", body)
    check(code == 201, "certificate %s: %d %r" % (name, code, mc))
    if expires_days is not None:
        psql(pg, "UPDATE managed_certificates SET expires_at = now() + interval '%d days', status = 'Active' "
             "WHERE id = '%s'" % (expires_days, mc["id"]))
    return mc["id"]


def renew(c, who="opA"):
    code, r = call("POST", "/api/v1/certificates/%s/renew" % c, who)
    check(code == 202, "renew %s: %d %r" % (c, code, r))
    return r["job_id"]


def job(j):
    code, rec = call("GET", "/api/v1/jobs/" + j, "viewer")
    check(code == 200, "job %s: %d %r" % (j, code, rec))
    return rec


def approval_of(j):
    code, page = call("GET", "/api/v1/approvals?job_id=" + j, "viewer")
    check(code == 200 and page["total"] == 1, "approval of %s: %d %r" % (j, code, page))
    return page["data"][0]


def approval(a):
    code, rec = call("GET", "/api/v1/approvals/" + a, "viewer")
    check(code == 200, "approval %s: %d %r" % (a, code, rec))
    return rec


def audit(a, where="true"):
    return [json.loads(r) for r in psql(pg, "SELECT json_build_object('action', action, 'actor', actor, "
                                        "'outcome', outcome, 'details', details) FROM audit_events WHERE "
                                        "resource_id = '%s' AND %s ORDER BY id" % (a, where)).splitlines()]


def setup():
    wait_for("ready", lambda: cw.all_running() and api.call("GET", "/ready")[0] == 200, timeout=90)
    for role, name in (("admin", "admin"), ("opA", "operator"), ("opB", "operator"), ("viewer", "viewer")):
        K[role] = make_key(pg, "approvals-" + role, name)
        KID[role] = one("SELECT id FROM api_keys WHERE name = 'approvals-%s'" % role)
    adm = lambda p, b: call("POST", p, "admin", b)[1]["id"]
    R["team"] = adm("/api/v1/teams", {"name": "approvals"})
    R["owner"] = adm("/api/v1/owners", {"name": "approvals owner", "email": "ap@example.com", "team_id": R["team"]})
    R["issuer"] = adm("/api/v1/issuers", {"name": "approvals-local", "type": "Local"})
    R["gated_profile"] = adm("/api/v1/profiles", {"name": "gated", "requires_approval": True,
                                                  "max_ttl_seconds": 86400 * 30})
    R["open_profile"] = adm("/api/v1/profiles", {"name": "open", "max_ttl_seconds": 86400 * 30})
    R["open_policy"] = adm("/api/v1/renewal-policies", {"name": "open", "max_retries": 1})
    code, rp = call("POST", "/api/v1/renewal-policies", "admin",
                    {"name": "gated", "max_retries": 1, "requires_approval": True, "renewal_window_days": 30})
    check(code == 201 and rp["requires_approval"] is True, "gated policy: %d %r" % (code, rp))
    R["gated_policy"] = rp["id"]
    code, page = call("GET", "/api/v1/renewal-policies?requires_approval=true", "viewer")
    check(code == 200 and [p["id"] for p in page["data"]] == [rp["id"]], "policies requiring approval: %r" % page)


def renewal_waits_for_approval():
    c = R["c1"] = cert("gated-by-profile", R["gated_profile"], R["open_policy"], expires_days=200)
    j = R["j1"] = renew(c)
    rec = job(j)
    check(rec["status"] == "AwaitingApproval", "job: %r" % rec)
    a = approval_of(j)
    R["a1"] = a["id"]
    check(a["id"].startswith("ar-") and a["state"] == "pending" and a["requested_by"] == KID["opA"] and
          a["certificate_id"] == c and a["profile_id"] == R["gated_profile"] and a["decided_by"] is None and
          a["decided_at"] is None and a["metadata"]["common_name"] == "gated-by-profile.example.internal" and
          a["metadata"]["required_by"] == "profile" and a["created_at"] and a["updated_at"], "approval: %r" % a)
    check(approval(a["id"]) == a, "get and list differ")
    # the list's filters
    for q, n in (("state=pending&requested_by=" + KID["opA"], 1), ("certificate_id=" + c, 1),
                 ("requested_by=" + KID["opB"], 0), ("state=approved&certificate_id=" + c, 0)):
        code, page = call("GET", "/api/v1/approvals?" + q, "viewer")
        check(code == 200 and page["total"] == n, "?%s: %d %r" % (q, code, page))
    # the event the notifier routes
    ev = one("SELECT type || ' ' || severity || ' ' || certificate_id || ' ' || (details->>'approval_id') "
             "FROM notification_events WHERE job_id = '%s'" % j)
    check(ev == "ApprovalRequested warning %s %s" % (c, a["id"]), "event: %r" % ev)
    check(one("SELECT status FROM managed_certificates WHERE id = '%s'" % c) == "RenewalInProgress", "status")
    # a certificate under neither is renewed at once
    c0 = cert("open", R["open_profile"], R["open_policy"])
    j0 = R["j0"] = renew(c0)
    check(job(j0)["status"] != "AwaitingApproval", "an open renewal waits")
    check(one("SELECT count(*) FROM approval_requests WHERE job_id = '%s'" % j0) == "0", "an approval for it")
    check(one("SELECT requested_by FROM jobs WHERE id = '%s'" % j0) == KID["opA"], "requested_by")


def requester_cannot_decide():
    a = R["a1"]
    for verb in ("approve", "reject"):
        code, e = call("POST", "/api/v1/approvals/%s/%s" % (a, verb), "opA", {"note": "my own"})
        check(code == 403 and "two-person integrity" in e["detail"], "self-%s: %d %r" % (verb, code, e))
    check(approval(a)["state"] == "pending" and job(R["j1"])["status"] == "AwaitingApproval", "changed")
    events = audit(a)
    check([(e["action"], e["actor"], e["outcome"]) for e in events] ==
          [("approvals.approve", KID["opA"], "denied"), ("approvals.reject", KID["opA"], "denied")] and
          events[0]["details"]["refused"] == "two-person integrity" and
          events[0]["details"]["job_id"] == R["j1"], "audit: %r" % events)


def another_operator_approves():
    a, note = R["a1"], "\u00e9" * 1024  # the longest note: 1,024 characters of two bytes
    code, r = call("POST", "/api/v1/approvals/%s/approve" % a, "opB", {"note": note})
    check(code == 200 and r == {"id": a, "decided_by": KID["opB"], "action": "approved", "job_id": R["j1"],
                                "job_status": "Pending"}, "approve: %d %r" % (code, r))
    rec = approval(a)
    check(rec["state"] == "approved" and rec["decided_by"] == KID["opB"] and rec["decided_at"] and
          rec["decision_note"] == note, "approved: %r" % rec)
    check(job(R["j1"])["status"] not in ("AwaitingApproval", "Cancelled"), "job: %r" % job(R["j1"]))
    events = audit(a, "outcome = 'success'")
    check(len(events) == 1 and events[0]["action"] == "approvals.approve" and events[0]["actor"] == KID["opB"] and
          events[0]["details"]["job_status"] == "Pending", "audit: %r" % events)
    for who, verb in (("opB", "approve"), ("opB", "reject"), ("admin", "approve"), ("opA", "approve")):
        code, e = call("POST", "/api/v1/approvals/%s/%s" % (a, verb), who)
        check(code == 409 and "approved already" in e["detail"], "%s %s again: %d %r" % (who, verb, code, e))


def rejection_cancels():
    c = cert("gated-by-policy", R["open_profile"], R["gated_policy"], expires_days=10)
    j = renew(c)
    a = approval_of(j)
    check(job(j)["status"] == "AwaitingApproval" and a["metadata"]["required_by"] == "renewal_policy" and
          a["profile_id"] == R["open_profile"], "approval: %r" % a)
    check(one("SELECT status FROM managed_certificates WHERE id = '%s'" % c) == "RenewalInProgress", "in progress")
    code, r = call("POST", "/api/v1/approvals/%s/reject" % a["id"], "opB", {"note": "not during the change freeze"})
    check(code == 200 and r["action"] == "rejected" and r["job_status"] == "Cancelled", "reject: %d %r" % (code, r))
    rec = job(j)
    check(rec["status"] == "Cancelled" and "not during the change freeze" in rec["last_error"] and
          rec["completed_at"], "job: %r" % rec)
    # ten days before expiry, inside the 30-day window
    check(one("SELECT status FROM managed_certificates WHERE id = '%s'" % c) == "Expiring", "certificate status")
    check(approval(a["id"])["state"] == "rejected", "rejected")
    code, e = call("POST", "/api/v1/approvals/%s/approve" % a["id"], "admin")
    check(code == 409 and "rejected already" in e["detail"], "approve after reject: %d %r" % (code, e))
    # with the renewal cancelled, the certificate can be renewed again
    R["c_policy"] = c


def job_routes_decide_too():
    c = cert("jobs-route", R["gated_profile"], R["open_policy"], expires_days=100)
    j = renew(c)
    code, e = call("POST", "/api/v1/jobs/%s/approve" % j, "opA", {"reason": "mine"})
    check(code == 403 and "two-person integrity" in e["detail"], "self: %d %r" % (code, e))
    code, r = call("POST", "/api/v1/jobs/%s/approve" % j, "admin")
    a = approval_of(j)
    check(code == 200 and r == {"status": "approved", "approval_id": a["id"]}, "approve: %d %r" % (code, r))
    check(a["state"] == "approved" and a["decided_by"] == KID["admin"] and a["decision_note"] is None, "%r" % a)
    check(call("POST", "/api/v1/jobs/%s/approve" % j, "opB")[0] == 409, "again")
    # reject, with a reason
    j2 = renew(R["c_policy"], "opB")
    check(call("POST", "/api/v1/jobs/%s/reject" % j2, "opB", {"reason": "x"})[0] == 403, "self-reject")
    code, r = call("POST", "/api/v1/jobs/%s/reject" % j2, "opA", {"reason": "too risky today"})
    check(code == 200 and r["status"] == "rejected", "reject: %d %r" % (code, r))
    rec = job(j2)
    check(rec["status"] == "Cancelled" and "too risky today" in rec["last_error"], "job: %r" % rec)
    a2 = approval_of(j2)
    check(a2["state"] == "rejected" and a2["decision_note"] == "too risky today" and
          a2["requested_by"] == KID["opB"] and a2["decided_by"] == KID["opA"], "approval: %r" % a2)
    check(call("POST", "/api/v1/jobs/%s/reject" % j2, "admin")[0] == 409, "reject again")
    # a job without an approval request; no job at all
    code, e = call("POST", "/api/v1/jobs/%s/approve" % R["j0"], "opB")
    check(code == 409 and "no approval request" in e["detail"], "not awaiting: %d %r" % (code, e))
    check(call("POST", "/api/v1/jobs/job-nothing/reject", "opB")[0] == 404, "no such job")


def viewer_cannot_decide():
    c = cert("viewer", R["gated_profile"], R["open_policy"])
    j = R["jv"] = renew(c)
    a = R["av"] = approval_of(j)["id"]
    for path in ("/api/v1/approvals/%s/approve" % a, "/api/v1/approvals/%s/reject" % a,
                 "/api/v1/jobs/%s/approve" % j, "/api/v1/jobs/%s/reject" % j):
        code, e = call("POST", path, "viewer")
        check(code == 403 and "two-person" not in e.get("detail", ""), "viewer %s: %d %r" % (path, code, e))
        check(api.call("POST", path, None)[0] == 401, "no key: " + path)
    check(approval(a)["state"] == "pending", "decided by a viewer")
    check(call("GET", "/api/v1/approvals", "viewer")[0] == 200, "a viewer lists")


def hostile_input_is_refused():
    a, j = R["av"], R["jv"]
    base = "/api/v1/approvals/%s/approve" % a
    for body, what in (({"note": "x" * 1025}, "oversize note"), ({"note": "\u20ac" * 1025}, "oversize in chars"),
                       ({"note": 7}, "a number"), ({"note": ["a"]}, "an array"), ({"note": {"a": "b"}}, "an object"),
                       ({"note": "line\nbreak"}, "a control character"), ({"reason": "x"}, "jobs' member"),
                       ({"note": "a", "extra": 1}, "an unknown member"), ("[]", "not an object"),
                       ("{\"note\": \"a\", \"note\": \"b\"}", "a repeated member"), ("{not json", "not JSON"),
                       ("\"note\"", "a string"), ("[" * 40 + "]" * 40, "deep nesting")):
        code, e = call("POST", base, "opB", body)
        check(code == 400, "%s: %d %r" % (what, code, e))
    for body in ({"note": "x"}, {"reason": 3}, {"reason": "y" * 1025}):
        code, e = call("POST", "/api/v1/jobs/%s/reject" % j, "opB", body)
        check(code == 400, "jobs: %r: %d %r" % (body, code, e))
    for bad in ("ar-nothing", "-leading-dash", "a" * 129, "x%2Fy", "%00"):
        code, e = call("POST", "/api/v1/approvals/%s/approve" % bad, "opB")
        check(code == 404, "id %r: %d %r" % (bad, code, e))
        code, e = call("GET", "/api/v1/approvals/" + bad, "viewer")
        check(code in (400, 404), "get %r: %d %r" % (bad, code, e))
    for q in ("state=bogus", "per_page=0", "sort=requested_by", "unknown=1", "requested_by=" + "a" * 256):
        code, e = call("GET", "/api/v1/approvals?" + q, "viewer")
        check(code == 400, "?%s: %d %r" % (q, code, e))
    check(approval(a)["state"] == "pending" and job(j)["status"] == "AwaitingApproval", "something changed")


def two_deciders_at_once():
    """The approval and the rejection of one request at the same moment:
    one wins, the other finds it decided."""
    a, j = R["av"], R["jv"]
    clients = {who: Api(cw) for who in ("opB", "admin")}
    answers = {}
    barrier = threading.Barrier(2)

    def decide(who, verb):
        barrier.wait()
        answers[who] = clients[who].call("POST", "/api/v1/approvals/%s/%s" % (a, verb), K[who])

    threads = [threading.Thread(target=decide, args=("opB", "approve")),
               threading.Thread(target=decide, args=("admin", "reject"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    codes = sorted(code for code, _ in answers.values())
    check(codes == [200, 409], "answers: %r" % answers)
    winner = [w for w, (code, _) in answers.items() if code == 200][0]
    rec = approval(a)
    want = ("approved", "Pending") if winner == "opB" else ("rejected", "Cancelled")
    check(rec["state"] == want[0] and rec["decided_by"] == KID[winner], "approval: %r" % rec)
    check(job(j)["status"] == want[1] or (want[0] == "approved" and job(j)["status"] != "AwaitingApproval"),
          "job: %r" % job(j))
    check(len(audit(a, "outcome = 'success'")) == 1, "two decisions audited")


def scheduler_jobs_and_cancelled_jobs():
    # a renewal the scheduler starts (requested_by 'scheduler') waits the same way
    c = cert("scheduled", R["gated_profile"], R["open_policy"], expires_days=5)
    j = one("INSERT INTO jobs (type, certificate_id, requested_by) VALUES ('Renewal', '%s', 'scheduler') "
            "RETURNING id" % c)
    a = approval_of(j)
    check(job(j)["status"] == "AwaitingApproval" and a["requested_by"] == "scheduler", "approval: %r" % a)
    code, r = call("POST", "/api/v1/approvals/%s/approve" % a["id"], "opA")
    check(code == 200 and r["job_status"] == "Pending", "approve: %d %r" % (code, r))
    # a waiting job cancelled: its request expires and can no longer be decided
    c2 = cert("cancelled", R["gated_profile"], R["open_policy"])
    j2 = renew(c2)
    check(call("POST", "/api/v1/jobs/%s/cancel" % j2, "opA")[0] == 200, "cancel")
    a2 = approval_of(j2)
    check(a2["state"] == "expired" and a2["decided_at"] and a2["decided_by"] is None, "expired: %r" % a2)
    code, e = call("POST", "/api/v1/approvals/%s/approve" % a2["id"], "opB")
    check(code == 409 and "expired already" in e["detail"], "approve expired: %d %r" % (code, e))
    code, page = call("GET", "/api/v1/approvals?state=expired", "viewer")
    check(code == 200 and [x["id"] for x in page["data"]] == [a2["id"]], "expired list: %r" % page)


def agent_job_resumes_awaiting_csr():
    """An agent-deployed certificate of a Local issuer: the job would have
    waited for the agent's CSR; approved, that is where it goes."""
    work = os.path.join(cw.root, "agent")
    os.makedirs(work, exist_ok=True)
    agent_id, _, _, _ = enrol_agent(api, K["admin"], "approvals-edge", work)
    code, t = call("POST", "/api/v1/targets", "admin", {"name": "edge-nginx", "type": "NGINX", "agent_id": agent_id,
                                                       "config": {"cert_path": "/etc/nginx/certs/edge.crt"}})
    check(code == 201, "target: %d %r" % (code, t))
    c = cert("edge", R["gated_profile"], R["open_policy"], target=t["id"])
    j = renew(c)
    rec = job(j)
    check(rec["status"] == "AwaitingApproval" and rec["agent_id"] == agent_id, "job: %r" % rec)
    code, r = call("POST", "/api/v1/jobs/%s/approve" % j, "opB")
    check(code == 200, "approve: %d %r" % (code, r))
    check(job(j)["status"] == "AwaitingCSR", "job: %r" % job(j))


def listing_pages():
    code, page = call("GET", "/api/v1/approvals?per_page=2&sort=-created_at", "viewer")
    check(code == 200 and page["total"] >= 7 and len(page["data"]) == 2 and page["page"] == 1 and
          page["per_page"] == 2 and page["data"][0]["created_at"] >= page["data"][1]["created_at"], "page: %r" % page)
    code, page = call("GET", "/api/v1/approvals?state=rejected&sort=decided_at", "viewer")
    check(code == 200 and all(x["state"] == "rejected" for x in page["data"]) and page["total"] >= 2,
          "rejected: %r" % page)


root = make_root("certward-approvals-")
pg = cw = None
try:
    pg = Postgres(root, free_port())
    cw = Certward(root, pg.dsn)
    cw.start()
    api = Api(cw)
    case(setup)
    case(renewal_waits_for_approval)
    case(requester_cannot_decide)
    case(another_operator_approves)
    case(rejection_cancels)
    case(job_routes_decide_too)
    case(viewer_cannot_decide)
    case(hostile_input_is_refused)
    case(two_deciders_at_once)
    case(scheduler_jobs_and_cancelled_jobs)
    case(agent_job_resumes_awaiting_csr)
    case(listing_pages)
    RUN.stop_clean(cw)
finally:
    teardown(cw, pg, root)
RUN.finish()
