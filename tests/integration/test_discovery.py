"""Certificate discovery through real HTTPS against a real certwardd and
PostgreSQL: enrolled agents (identity certificates) post DiscoveryReports
of certificates made by the openssl CLI (a PEM leaf, a DER certificate, a
chain of two, one certificate at two paths, a duplicate); the server keeps
one row per certificate, agent and path, lists and filters them, counts
them by status, and lets operators claim and dismiss them; a second report
of the same certificates adds none and keeps their triage; a report of
5,000 certificates travels to the store in parts and is stored whole; every
bound of the report is crossed and nothing is written then; each change is
in the audit trail."""
import hashlib
import json
import os
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Api, Cases, Certward, Postgres, check, enrol_agent, free_port, make_key, make_root, psql,
                     teardown, wait_for)

RUN = Cases(lambda: cw)
case = RUN.case
K = {}
AG = {}     # name -> (agent id, Api with its identity)
CERTS = {}  # name -> {"pem", "fp"}
SEEN = {}


def count(table, where="true"):
    return int(psql(pg, "SELECT count(*) FROM %s WHERE %s" % (table, where)).strip())


def openssl(*args):
    out = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, timeout=60, cwd=work)
    check(out.returncode == 0, "openssl %s: %s" % (" ".join(args), out.stderr))
    return out.stdout


def make_certificates():
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "leaf.key", "-out", "leaf.pem", "-subj", "/CN=leaf.example.com",
            "-days", "30", "-addext", "subjectAltName=DNS:leaf.example.com,IP:192.0.2.7")
    openssl("req", "-x509", *ec, "-keyout", "der.key", "-out", "der.pem", "-subj", "/CN=der.example.com", "-days", "40")
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=Discovery Test CA", "-days", "90",
            "-addext", "basicConstraints=critical,CA:TRUE")
    openssl("req", "-new", *ec, "-keyout", "issued.key", "-out", "issued.csr", "-subj", "/CN=issued.example.com")
    openssl("x509", "-req", "-in", "issued.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "20",
            "-out", "issued.pem")
    for name in ("leaf", "der", "ca", "issued"):
        with open(os.path.join(work, name + ".pem")) as f:
            pem = f.read()
        CERTS[name] = {"pem": pem, "fp": hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()}


def entry(name, path, fmt="PEM", **kw):
    """A certificate of a report, as the agent sends it."""
    c = CERTS[name]
    e = {"fingerprint_sha256": c["fp"], "common_name": name + ".example.com", "sans": [name + ".example.com"],
         "serial_number": "0A1B", "issuer_dn": "CN=" + name, "subject_dn": "CN=" + name + ".example.com",
         "not_before": "2026-01-01T00:00:00Z", "not_after": "2027-01-01T00:00:00Z", "key_algorithm": "ECDSA",
         "key_size": 256, "is_ca": name == "ca", "pem_data": c["pem"], "source_path": path, "source_format": fmt}
    e.update(kw)
    return e


def first_report(agent):
    return {"agent_id": agent, "directories": ["/etc/ssl", "/srv/certs"],
            "certificates": [entry("leaf", "/etc/ssl/leaf.pem"), entry("leaf", "/etc/ssl/leaf.pem"),
                             entry("der", "/etc/ssl/server.der", "DER"),
                             entry("issued", "/etc/ssl/chain.pem"), entry("ca", "/etc/ssl/chain.pem"),
                             entry("leaf", "/srv/certs/copy.pem")],
            "errors": ["/etc/ssl/private: Permission denied", "/srv/certs/big.bin: larger than max_file_size"],
            "scan_duration_ms": 1234}


def report(name, body):
    agent, client = AG[name]
    return client.call("POST", "/api/v1/agents/%s/discoveries" % agent, None, body)


def listed(query, key="viewer"):
    code, page = api.call("GET", "/api/v1/discovered-certificates" + query, K[key])
    check(code == 200, "list %s: %d %r" % (query, code, page))
    return page


def setup():
    wait_for("ready", lambda: cw.all_running() and api.call("GET", "/ready")[0] == 200, timeout=90)
    for role in ("admin", "operator", "viewer"):
        K[role] = make_key(pg, "disc-" + role, role)
    for name in ("edge-a", "edge-b", "edge-c"):
        agent, crt, key, _ = enrol_agent(api, K["admin"], name, work)
        AG[name] = (agent, Api(cw, identity=(crt, key)))
    make_certificates()


def report_is_stored_once_per_path():
    a = AG["edge-a"][0]
    code, scan = report("edge-a", first_report(a))
    check(code == 202, "report: %d %r" % (code, scan))
    # five distinct certificates at their paths; the duplicate counted once
    check(scan["agent_id"] == a and scan["id"].startswith("dscan-") and scan["certificates_found"] == 5 and
          scan["certificates_new"] == 5 and scan["errors_count"] == 2 and scan["scan_duration_ms"] == 1234 and
          scan["directories"] == ["/etc/ssl", "/srv/certs"] and len(scan["errors"]) == 2 and
          scan["started_at"] and scan["completed_at"], "scan: %r" % scan)
    SEEN["scan1"] = scan["id"]
    check(count("discovered_certificates", "agent_id = '%s'" % a) == 5, "rows stored")
    check(count("discovery_uploads") == 0, "parts left behind")
    # the agent is the actor of its report's audit event
    rows = psql(pg, "SELECT actor_type, actor_role, details->>'certificates_new' FROM audit_events "
                    "WHERE action = 'discovery.report' AND resource_id = '%s'" % scan["id"]).split()
    check(rows == ["Agent|agent|5"], "audit: %r" % rows)


def lists_filters_and_reads():
    a, b = AG["edge-a"][0], AG["edge-b"][0]
    page = listed("?agent_id=" + a)
    check(page["total"] == 5 and all(c["agent_id"] == a and c["status"] == "Unmanaged" for c in page["data"]),
          "by agent: %r" % page)
    check(listed("?agent_id=" + b)["total"] == 0, "another agent's")
    check(listed("?status=Unmanaged&agent_id=" + a)["total"] == 5, "by status")
    both = listed("?fingerprint_sha256=" + CERTS["leaf"]["fp"])
    check(both["total"] == 2 and sorted(c["source_path"] for c in both["data"]) ==
          ["/etc/ssl/leaf.pem", "/srv/certs/copy.pem"], "one certificate at two paths: %r" % both)
    srt = listed("?sort=-not_after&agent_id=" + a, key="operator")
    check(len(srt["data"]) == 5, "sorted: %r" % srt)
    der = [c for c in page["data"] if c["source_format"] == "DER"]
    check(len(der) == 1 and der[0]["fingerprint_sha256"] == CERTS["der"]["fp"], "the DER one: %r" % der)
    ca = [c for c in page["data"] if c["fingerprint_sha256"] == CERTS["ca"]["fp"]]
    check(len(ca) == 1 and ca[0]["is_ca"] is True and ca[0]["source_path"] == "/etc/ssl/chain.pem", "the CA: %r" % ca)
    code, one = api.call("GET", "/api/v1/discovered-certificates/" + ca[0]["id"], K["viewer"])
    check(code == 200 and one == ca[0], "get: %d %r" % (code, one))
    check(one["pem_data"] == CERTS["ca"]["pem"] and one["serial_number"] == "0a1b" and
          one["discovery_scan_id"] == SEEN["scan1"] and one["managed_certificate_id"] is None and
          one["first_seen_at"] == one["last_seen_at"], "fields: %r" % one)
    SEEN["ids"] = {(c["fingerprint_sha256"], c["source_path"]): c["id"] for c in page["data"]}
    check(api.call("GET", "/api/v1/discovered-certificates/dcert-none", K["viewer"])[0] == 404, "unknown id")
    for q in ("?status=Bogus", "?color=red", "?sort=pem_data", "?per_page=501"):
        code, e = api.call("GET", "/api/v1/discovered-certificates" + q, K["viewer"])
        check(code == 400, "%s: %d %r" % (q, code, e))
    code, scans = api.call("GET", "/api/v1/discovery-scans?agent_id=" + a, K["viewer"])
    check(code == 200 and scans["total"] == 1 and scans["data"][0]["id"] == SEEN["scan1"], "scans: %r" % scans)
    # an agent's identity reads none of it; no key, nothing at all
    code, e = AG["edge-a"][1].call("GET", "/api/v1/discovered-certificates")
    check(code in (401, 403), "an agent listed them: %d %r" % (code, e))
    check(api.call("GET", "/api/v1/discovery-summary")[0] == 401, "summary without a key")


def claim_and_dismiss():
    t = api.call("POST", "/api/v1/teams", K["admin"], {"name": "disc-team"})[1]
    o = api.call("POST", "/api/v1/owners", K["admin"], {"name": "disc-owner", "team_id": t["id"]})[1]
    i = api.call("POST", "/api/v1/issuers", K["admin"], {"name": "disc-ca", "type": "Local"})[1]
    rp = api.call("POST", "/api/v1/renewal-policies", K["admin"], {"name": "disc-rp", "max_retries": 1})[1]
    code, mc = api.call("POST", "/api/v1/certificates", K["operator"], {
        "name": "leaf", "common_name": "leaf.example.com", "owner_id": o["id"], "team_id": t["id"],
        "issuer_id": i["id"], "renewal_policy_id": rp["id"]})
    check(code == 201, "managed certificate: %d %r" % (code, mc))
    SEEN["mc"] = mc["id"]
    leaf = SEEN["ids"][(CERTS["leaf"]["fp"], "/etc/ssl/leaf.pem")]
    der = SEEN["ids"][(CERTS["der"]["fp"], "/etc/ssl/server.der")]
    url = "/api/v1/discovered-certificates/%s/" % leaf
    for body, field in (({}, "managed_certificate_id"), ({"managed_certificate_id": 7}, "managed_certificate_id"),
                        ({"managed_certificate_id": "mc-x", "extra": 1}, "extra")):
        code, e = api.call("POST", url + "claim", K["operator"], body)
        check(code == 400 and e.get("field") == field, "claim %r: %d %r" % (body, code, e))
    code, e = api.call("POST", url + "claim", K["operator"], {"managed_certificate_id": "mc-none"})
    check(code == 422 and e.get("field") == "managed_certificate_id", "unknown managed certificate: %d %r" % (code, e))
    code, e = api.call("POST", "/api/v1/discovered-certificates/dcert-none/claim", K["operator"],
                       {"managed_certificate_id": mc["id"]})
    check(code == 404, "unknown discovered certificate: %d %r" % (code, e))
    check(api.call("POST", url + "claim", K["viewer"], {"managed_certificate_id": mc["id"]})[0] == 403, "a viewer claimed")
    code, e = AG["edge-a"][1].call("POST", url + "dismiss")
    check(code in (401, 403), "an agent dismissed: %d %r" % (code, e))
    before = count("audit_events", "action = 'discovered_certificates.claim'")
    code, r = api.call("POST", url + "claim", K["operator"], {"managed_certificate_id": mc["id"]})
    check(code == 200 and r["status"] == "claimed" and mc["id"] in r["message"], "claim: %d %r" % (code, r))
    code, got = api.call("GET", "/api/v1/discovered-certificates/" + leaf, K["viewer"])
    check(got["status"] == "Managed" and got["managed_certificate_id"] == mc["id"], "claimed: %r" % got)
    # again: nothing changes, no second event
    check(api.call("POST", url + "claim", K["admin"], {"managed_certificate_id": mc["id"]})[0] == 200, "claim again")
    check(count("audit_events", "action = 'discovered_certificates.claim' AND resource_id = '%s' AND "
                "details->>'managed_certificate_id' = '%s'" % (leaf, mc["id"])) == 1 and
          count("audit_events", "action = 'discovered_certificates.claim'") == before + 1, "claim events")
    durl = "/api/v1/discovered-certificates/%s/dismiss" % der
    code, r = api.call("POST", durl, K["operator"])
    check(code == 200 and r["status"] == "dismissed", "dismiss: %d %r" % (code, r))
    check(api.call("POST", durl, K["operator"], {})[0] == 200, "dismiss again")
    check(api.call("POST", durl, K["operator"], {"reason": "x"})[0] == 400, "dismiss takes no members")
    check(api.call("POST", "/api/v1/discovered-certificates/dcert-none/dismiss", K["operator"])[0] == 404,
          "dismiss nothing")
    check(count("audit_events", "action = 'discovered_certificates.dismiss' AND resource_id = '%s'" % der) == 1,
          "one dismiss event")
    check(listed("?status=Dismissed")["total"] == 1 and listed("?status=Managed")["total"] == 1, "by status")
    code, summary = api.call("GET", "/api/v1/discovery-summary", K["viewer"])
    check(code == 200 and summary == {"Unmanaged": 3, "Managed": 1, "Dismissed": 1}, "summary: %r" % summary)


def second_report_adds_nothing():
    a = AG["edge-a"][0]
    rows = count("discovered_certificates")
    time.sleep(0.05)
    code, scan = report("edge-a", first_report(a))
    check(code == 202 and scan["certificates_found"] == 5 and scan["certificates_new"] == 0 and
          scan["id"] != SEEN["scan1"], "second report: %d %r" % (code, scan))
    check(count("discovered_certificates") == rows, "rows added")
    page = listed("?agent_id=" + a)
    by = {(c["fingerprint_sha256"], c["source_path"]): c for c in page["data"]}
    check(by[(CERTS["der"]["fp"], "/etc/ssl/server.der")]["status"] == "Dismissed", "dismissal kept")
    leaf = by[(CERTS["leaf"]["fp"], "/etc/ssl/leaf.pem")]
    check(leaf["status"] == "Managed" and leaf["managed_certificate_id"] == SEEN["mc"], "claim kept: %r" % leaf)
    check(all(c["discovery_scan_id"] == scan["id"] and c["last_seen_at"] > c["first_seen_at"] for c in page["data"]),
          "seen again: %r" % page["data"])
    # the same certificates from another agent are that agent's rows
    code, other = report("edge-b", first_report(AG["edge-b"][0]))
    check(code == 202 and other["certificates_new"] == 5, "another agent: %d %r" % (code, other))
    code, scans = api.call("GET", "/api/v1/discovery-scans?sort=-started_at&agent_id=" + a, K["viewer"])
    check(code == 200 and [s["id"] for s in scans["data"]] == [scan["id"], SEEN["scan1"]], "scans: %r" % scans)
    check(count("audit_events", "action = 'discovery.report'") == 3, "report events")


def bounds_are_refused():
    a, b = AG["edge-a"][0], AG["edge-b"][0]
    base = first_report(a)
    scans, rows, events = count("discovery_scans"), count("discovered_certificates"), count("audit_events")

    def refused(body, field, status=400, who="edge-a"):
        code, e = report(who, body)
        check(code == status and (field is None or (isinstance(e, dict) and e.get("field") == field)),
              "%s: %d %r" % (field, code, e))

    def with_cert(**kw):
        return dict(base, certificates=[entry("leaf", "/etc/ssl/x.pem", **kw)])

    refused(dict(base, certificates=[{}] * 5001), "certificates")
    refused(dict(base, certificates={}), "certificates")
    refused({k: v for k, v in base.items() if k != "certificates"}, "certificates")
    refused(dict(base, errors=["/x: e"] * 1001), "errors")
    refused(dict(base, errors=["x" * 1025]), "errors")
    refused(dict(base, errors=["a\nb"]), "errors")
    refused(dict(base, directories=["/d%d" % i for i in range(33)]), "directories")
    refused(dict(base, directories=["relative/dir"]), "directories")
    refused(dict(base, scan_duration_ms=-1), "scan_duration_ms")
    refused(dict(base, scan_duration_ms="5"), "scan_duration_ms")
    refused(dict(base, agent_id=b), "agent_id")
    refused(dict(base, colour="blue"), "colour")
    refused(with_cert(fingerprint_sha256=CERTS["leaf"]["fp"].upper()), "certificates[0].fingerprint_sha256")
    refused(with_cert(fingerprint_sha256=CERTS["leaf"]["fp"][:63]), "certificates[0].fingerprint_sha256")
    refused(with_cert(fingerprint_sha256=CERTS["der"]["fp"]), "certificates[0].pem_data")
    refused(with_cert(pem_data="junk\n" + CERTS["leaf"]["pem"]), "certificates[0].pem_data")
    refused(with_cert(pem_data=CERTS["leaf"]["pem"] + CERTS["ca"]["pem"]), "certificates[0].pem_data")
    refused(with_cert(not_after="2027-02-30T00:00:00Z"), "certificates[0].not_after")
    refused(with_cert(source_path="etc/x.pem"), "certificates[0].source_path")
    refused(with_cert(source_path="/" + "x" * 2048), "certificates[0].source_path")
    refused(with_cert(source_format="P12"), "certificates[0].source_format")
    refused(with_cert(key_algorithm="DSA"), "certificates[0].key_algorithm")
    refused(with_cert(key_size=70000), "certificates[0].key_size")
    refused(with_cert(is_ca="yes"), "certificates[0].is_ca")
    refused(with_cert(serial_number="xyz"), "certificates[0].serial_number")
    refused(with_cert(sans=["a"] * 1001), "certificates[0].sans")
    refused(with_cert(sans=[""]), "certificates[0].sans")
    refused(with_cert(common_name="c" * 1025), "certificates[0].common_name")
    refused(with_cert(private_key="-----BEGIN PRIVATE KEY-----"), "certificates[0].private_key")
    refused(dict(base, certificates=[entry("leaf", "/x.pem", sans=[["deep"]])]), None)  # nested too deep
    refused("[]", None)
    refused("", None)
    # another agent's route: the router says no
    code, e = AG["edge-a"][1].call("POST", "/api/v1/agents/%s/discoveries" % b, None, dict(base, agent_id=b))
    check(code == 403, "another agent's route: %d %r" % (code, e))
    # keys are not identities: an admin key is refused on the agent's route
    code, e = api.call("POST", "/api/v1/agents/%s/discoveries" % a, K["admin"], base)
    check(code == 403, "an admin key: %d %r" % (code, e))
    check(count("discovery_scans") == scans and count("discovered_certificates") == rows, "something was written")
    check(count("audit_events", "action = 'discovery.report'") == 3 and count("audit_events") > events,
          "refusals are audited, reports are not")
    # a body over api.max_body (16 MiB here) is refused from its Content-Length
    check(oversize_status("edge-a", 17 << 20) == 413, "17 MiB not refused")


def oversize_status(name, length):
    """The status of a report announcing length bytes, read before any of
    them is sent (the api answers and closes)."""
    import socket
    agent, client = AG[name]
    ctx = ssl.create_default_context(cafile=os.path.join(cw.state, "tls", "api.crt"))
    ctx.check_hostname = False
    ctx.load_cert_chain(*client.identity)
    with socket.create_connection(("127.0.0.1", cw.api_port), timeout=30) as raw:
        with ctx.wrap_socket(raw) as s:
            s.sendall(("POST /api/v1/agents/%s/discoveries HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (agent, length)).encode())
            head = s.recv(4096).decode("latin-1")
    return int(head.split()[1])


def large_report_in_parts():
    """5,000 certificates (the bound) at distinct paths: the api sends them
    to the store in parts and the report is stored whole; a part left
    behind by an earlier report an hour ago is dropped."""
    c = AG["edge-c"][0]
    psql(pg, "INSERT INTO discovery_uploads (scan_id, agent_id, part, certificates, created_at) VALUES "
             "('dscan-stale', '%s', 0, '[{}]', now() - interval '2 hours')" % c)
    certs = [entry(("leaf", "der", "ca", "issued")[i % 4], "/var/lib/certs/%05d.pem" % i) for i in range(5000)]
    t0 = time.monotonic()
    code, scan = report("edge-c", {"agent_id": c, "directories": ["/var/lib/certs"], "certificates": certs})
    took = time.monotonic() - t0
    check(code == 202 and scan["certificates_found"] == 5000 and scan["certificates_new"] == 5000 and
          scan["errors_count"] == 0, "5000: %d %r" % (code, scan))
    check(count("discovered_certificates", "agent_id = '%s'" % c) == 5000, "rows")
    check(count("discovery_uploads") == 0, "parts left behind")
    with open(os.path.join(cw.logs, "api.log")) as f:
        line = [ln for ln in f if "discovery report stored" in ln and scan["id"] in ln]
    check(line and "parts=" in line[0] and " parts=1 " not in line[0], "not sent in parts: %r" % line)
    code, again = report("edge-c", {"agent_id": c, "directories": ["/var/lib/certs"], "certificates": certs})
    check(code == 202 and again["certificates_new"] == 0, "again: %d %r" % (code, again))
    check(listed("?agent_id=%s&per_page=500&page=10" % c)["total"] == 5000, "listed")
    from harness import log
    log("5000 certificates reported in %.1fs" % took)


def retired_agent_is_gone():
    b = AG["edge-b"][0]
    code, r = api.call("DELETE", "/api/v1/agents/%s?force=true&reason=decommissioned" % b, K["admin"])
    check(code == 200, "retire: %d %r" % (code, r))
    time.sleep(1.5)  # past the api's look at identities
    code, e = report("edge-b", first_report(b))
    check(code == 410, "a retired agent's report: %d %r" % (code, e))
    # what it found stays listed
    check(listed("?agent_id=" + b)["total"] == 5, "its certificates")


root = make_root("certward-discovery-")
work = os.path.join(root, "work")
os.makedirs(work)
pg = cw = None
try:
    pg = Postgres(root, free_port())
    cw = Certward(root, pg.dsn, api_extra="  max_body: 16m\n")
    cw.start()
    api = Api(cw)
    case(setup)
    case(report_is_stored_once_per_path)
    case(lists_filters_and_reads)
    case(claim_and_dismiss)
    case(second_report_adds_nothing)
    case(bounds_are_refused)
    case(large_report_in_parts)
    case(retired_agent_is_gone)
    RUN.stop_clean(cw)
finally:
    teardown(cw, pg, root)
RUN.finish()
