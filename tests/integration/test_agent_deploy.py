"""certward-agent end to end, as an operator runs it: enrolled with a
one-time token, then `certward-agent run` against a real certwardd, with
a real nginx and a real haproxy started here on loopback ports as its
deployment targets. The agent makes the key, sends the CSR, deploys, and
`openssl s_client` sees the new serial; a broken nginx configuration fails
validation, the old certificate is put back and still served, and the job
is Failed with nginx's output; an agent killed between receiving the
certificate and reporting finishes the job after a restart; one that loses the server backs off and
carries on once it is back; discovery
finds the certificates of a scanned directory (PEM, DER, a chain) and not
a key; the agent renews its identity before it expires; a retired agent
exits 0 at its next heartbeat."""
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, Api, Cases, Certward, Nginx, Postgres, agent_token, check, free_port, log, make_key,
                     make_root, psql, self_signed, served_serial, teardown, wait_for)

RUN = Cases(lambda: cw)
case = RUN.case
S = {}
AGENT = os.path.join(BUILD, "certward-agent")
HOOKS = os.environ.get("CERTWARD_TEST_HOOKS") == "1"


def openssl(*args, stdin=None):
    return subprocess.run(["openssl"] + list(args), capture_output=True, text=True, timeout=60, input=stdin)


def norm(serial):
    return (serial or "").lower().lstrip("0")


def adm(method, path, body=None):
    return api.call(method, path, S["admin"], body)


def start_nginx():
    S["nginx"] = n = Nginx(S["dir"])
    S["nginx_port"], S["nginx_conf"], S["nginx_conf_text"] = n.port, n.conf, n.text


def start_haproxy():
    d = S["dir"]
    pem = os.path.join(d, "certs", "haproxy.pem")
    self_signed(os.path.join(d, "certs", "hp.crt"), os.path.join(d, "certs", "hp.key"), "old-lb.example.internal")
    with open(pem, "w") as f:
        f.write(open(os.path.join(d, "certs", "hp.crt")).read() + open(os.path.join(d, "certs", "hp.key")).read())
    os.chmod(pem, 0o600)
    S["haproxy_port"] = free_port()
    cfg = os.path.join(d, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("global\n  pidfile %s/haproxy.pid\ndefaults\n  mode http\n  timeout connect 5s\n"
                "  timeout client 5s\n  timeout server 5s\nfrontend fe\n  bind 127.0.0.1:%d ssl crt %s\n"
                "  http-request return status 200 content-type text/plain string ok\n"
                % (d, S["haproxy_port"], pem))
    S["haproxy_cfg"] = cfg
    r = subprocess.run(["haproxy", "-W", "-D", "-f", cfg, "-p", os.path.join(d, "haproxy.pid")], capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 0, "haproxy: %s" % r.stderr)
    wait_for("haproxy serving", lambda: served_serial(S["haproxy_port"], "lb.example.internal"), timeout=20)


def stop_servers():
    d = S.get("dir")
    if not d:
        return
    if S.get("nginx"):
        S["nginx"].stop()
    pidfile = os.path.join(d, "haproxy.pid")
    if os.path.exists(pidfile):
        subprocess.run(["pkill", "-TERM", "-F", pidfile], capture_output=True, timeout=30)


def write_agent_config():
    d = S["dir"]
    nginx_prefix = os.path.join(d, "nginx")
    scan = os.path.join(d, "scan")
    os.makedirs(scan, exist_ok=True)
    cfg = os.path.join(d, "agent.yml")
    with open(cfg, "w") as f:
        f.write("""server: https://127.0.0.1:%(api)d
cacert: %(cacert)s
state_dir: %(state)s
heartbeat_interval: 1s
poll_interval: 1s
log_level: debug
allowed_paths: [%(d)s/certs]
discovery:
  directories: [%(scan)s]
  interval: 2s
targets:
  - name: web
    type: nginx
    target_id: %(t_nginx)s
    cert_path: %(d)s/certs/web.crt
    key_path: %(d)s/certs/web.key
    validate: [nginx, -t, -c, %(nconf)s, -p, %(np)s]
    reload: [nginx, -s, reload, -c, %(nconf)s, -p, %(np)s]
    verify: {address: "127.0.0.1:%(nport)d", server_name: web.example.internal, timeout: 10s}
  - name: lb
    type: haproxy
    target_id: %(t_hap)s
    pem_path: %(d)s/certs/haproxy.pem
    validate: [haproxy, -c, -f, %(hcfg)s]
    reload: [pkill, -USR2, -F, %(d)s/haproxy.pid]
    verify: {address: "127.0.0.1:%(hport)d", server_name: lb.example.internal, timeout: 10s}
""" % {"api": cw.api_port, "cacert": os.path.join(cw.state, "tls", "api.crt"), "state": S["agent_state"],
       "d": d, "scan": scan, "t_nginx": S["t_nginx"], "t_hap": S["t_hap"], "nconf": S["nginx_conf"],
       "np": nginx_prefix, "nport": S["nginx_port"], "hcfg": S["haproxy_cfg"], "hport": S["haproxy_port"]})
    S["agent_cfg"] = cfg


def start_agent(env_extra=None):
    log_path = os.path.join(S["dir"], "agent.log")
    out = open(log_path, "a")
    env = dict(os.environ, **(env_extra or {}))
    proc = subprocess.Popen([AGENT, "run", "--config", S["agent_cfg"]], stdout=out, stderr=subprocess.STDOUT, env=env)
    S["agent"] = proc
    return proc


def agent_log():
    try:
        return open(os.path.join(S["dir"], "agent.log")).read()[-4000:]
    except OSError:
        return ""


def stop_agent():
    p = S.get("agent")
    if p and p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError("the agent did not stop on SIGTERM")


def setup():
    wait_for("ready", lambda: cw.all_running() and api.call("GET", "/ready")[0] == 200, timeout=90)
    S["admin"] = make_key(pg, "deploy-admin", "admin")
    S["dir"] = os.path.join(cw.root, "host")
    S["agent_state"] = os.path.join(S["dir"], "agent-state")
    os.makedirs(S["dir"], exist_ok=True)
    start_nginx()
    start_haproxy()


def enrol():
    tok = agent_token(api, S["admin"], "edge01.example.internal")
    token_file = os.path.join(S["dir"], "edge01.token")
    with open(token_file, "w") as f:
        f.write(tok["token"] + "\n")
    os.chmod(token_file, 0o600)
    cmd = [AGENT, "enroll", "--server", "https://127.0.0.1:%d" % cw.api_port, "--token-file", token_file,
           "--cacert", os.path.join(cw.state, "tls", "api.crt"), "--state-dir", S["agent_state"]]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and tok["agent_id"] in r.stdout, "enroll: %r" % r)
    check(tok["token"] not in r.stdout + r.stderr, "the token was printed")
    keys = [os.path.join(S["agent_state"], f) for f in os.listdir(S["agent_state"]) if f.endswith(".key")]
    check(keys and all(os.stat(k).st_mode & 0o777 == 0o600 for k in keys), "identity key mode: %r" % keys)
    S["agent_id"] = tok["agent_id"]
    # the same token again: refused, and the refusal is in the audit trail
    r = subprocess.run(cmd[:-2] + ["--state-dir", os.path.join(S["dir"], "other-state")], capture_output=True,
                       text=True, timeout=60)
    check(r.returncode != 0 and "not valid" in r.stderr, "a second enrolment: %r" % r)
    wait_for("the refusal audited",
             lambda: int(psql(pg, "SELECT count(*) FROM audit_events WHERE action = 'agents.enroll' AND "
                                  "outcome = 'failure' AND details->>'reason' = 'used'").strip()) == 1, timeout=10)
    # the server's side of the deployment: targets, a certificate on both
    team = adm("POST", "/api/v1/teams", {"name": "edge"})[1]["id"]
    owner = adm("POST", "/api/v1/owners", {"name": "edge", "email": "edge@example.com", "team_id": team})[1]["id"]
    iss = adm("POST", "/api/v1/issuers", {"name": "edge-local", "type": "Local"})[1]["id"]
    # no retries: a failed deployment is final at once (a retry would wait for the policy's backoff)
    rp = adm("POST", "/api/v1/renewal-policies", {"name": "edge-rp", "max_retries": 0})[1]["id"]
    prof = adm("POST", "/api/v1/profiles", {"name": "edge-web", "allowed_ekus": ["serverAuth"],
                                            "allowed_key_algorithms": [{"algorithm": "ECDSA", "min_size": 256}]})[1]["id"]
    S["t_nginx"] = adm("POST", "/api/v1/targets", {"name": "web", "type": "NGINX", "agent_id": S["agent_id"]})[1]["id"]
    S["t_hap"] = adm("POST", "/api/v1/targets", {"name": "lb", "type": "HAProxy", "agent_id": S["agent_id"]})[1]["id"]
    code, mc = adm("POST", "/api/v1/certificates", {
        "name": "edge-web", "common_name": "web.example.internal",
        "sans": ["web.example.internal", "lb.example.internal"], "owner_id": owner, "team_id": team,
        "issuer_id": iss, "renewal_policy_id": rp, "certificate_profile_id": prof,
        "target_ids": [S["t_nginx"], S["t_hap"]]})
    check(code == 201, "certificate: %r" % ((code, mc),))
    S["mc"] = mc["id"]
    write_agent_config()


def renew_and_wait(final=("Completed", "Failed"), timeout=60):
    code, r = adm("POST", "/api/v1/certificates/%s/renew" % S["mc"])
    check(code == 202, "renew: %r" % ((code, r),))
    job = r["job_id"]
    wait_for("job %s finished" % job, lambda: adm("GET", "/api/v1/jobs/" + job)[1]["status"] in final,
             timeout=timeout)
    return adm("GET", "/api/v1/jobs/" + job)[1]


def deploys_to_nginx_and_haproxy():
    start_agent()
    wait_for("heartbeat", lambda: adm("GET", "/api/v1/agents/" + S["agent_id"])[1]["status"] == "Online", timeout=30)
    ag = adm("GET", "/api/v1/agents/" + S["agent_id"])[1]
    check(ag["hostname"] and ag["os"] and ag["version"], "heartbeat metadata: %r" % ag)
    job = renew_and_wait()
    check(job["status"] == "Completed", "job: %r\n%s" % (job, agent_log()))
    serial = norm(psql(pg, "SELECT deployed_serial FROM jobs WHERE id = '%s'" % job["id"]).strip())
    check(serial and served_serial(S["nginx_port"], "web.example.internal") == serial,
          "nginx serves %r, deployed %r" % (served_serial(S["nginx_port"], "web.example.internal"), serial))
    check(served_serial(S["haproxy_port"], "lb.example.internal") == serial, "haproxy serves another serial")
    key = os.path.join(S["dir"], "certs", "web.key")
    check(os.stat(key).st_mode & 0o777 == 0o600, "the key's mode was not kept")
    S["serial"] = serial


def broken_configuration_rolls_back():
    with open(S["nginx_conf"], "a") as f:
        f.write("this_is_not_a_directive;\n")
    before = served_serial(S["nginx_port"], "web.example.internal")
    crt_before = open(os.path.join(S["dir"], "certs", "web.crt")).read()
    job = renew_and_wait()
    check(job["status"] == "Failed" and "this_is_not_a_directive" in (job.get("last_error") or ""),
          "job: %r\n%s" % (job, agent_log()))
    check(served_serial(S["nginx_port"], "web.example.internal") == before, "nginx serves something new")
    check(open(os.path.join(S["dir"], "certs", "web.crt")).read() == crt_before, "the old certificate is not back")
    with open(S["nginx_conf"], "w") as f:
        f.write(S["nginx_conf_text"])


def killed_agent_finishes_after_restart():
    if not HOOKS:
        log("SKIP killed_agent_finishes_after_restart: needs -Dtest_hooks=true")
        return
    stop_agent()
    proc = start_agent({"CERTWARD_AGENT_CRASH_AT": "received"})
    code, r = adm("POST", "/api/v1/certificates/%s/renew" % S["mc"])
    check(code == 202, "renew: %r" % ((code, r),))
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        raise AssertionError("the agent did not die at the hook\n" + agent_log())
    check(proc.returncode == -signal.SIGKILL, "agent exit: %r" % proc.returncode)
    check(adm("GET", "/api/v1/jobs/" + r["job_id"])[1]["status"] == "Running", "job after the crash")
    start_agent()
    wait_for("the job completes after the restart",
             lambda: adm("GET", "/api/v1/jobs/" + r["job_id"])[1]["status"] in ("Completed", "Failed"), timeout=60)
    job = adm("GET", "/api/v1/jobs/" + r["job_id"])[1]
    serial = norm(psql(pg, "SELECT deployed_serial FROM jobs WHERE id = '%s'" % job["id"]).strip())
    check(job["status"] == "Completed" and served_serial(S["nginx_port"], "web.example.internal") == serial and
          serial != S["serial"], "after restart: %r serial %r\n%s" % (job, serial, agent_log()))


def survives_a_server_outage():
    """certwardd stopped under a running agent: its calls fail, it backs off
    and retries without exiting, and once certwardd is back the next job is
    deployed as before."""
    proc = S["agent"]
    before = agent_log().count("api unreachable")
    check(cw.stop() == 0, "certwardd did not stop cleanly")
    wait_for("the agent notices", lambda: agent_log().count("api unreachable") > before + 1, timeout=30)
    check(proc.poll() is None, "the agent exited while the api was away:\n" + agent_log())
    cw.start()
    wait_for("all running again", lambda: cw.all_running() and api.call("GET", "/ready")[0] == 200, timeout=90)
    job = renew_and_wait()
    serial = norm(psql(pg, "SELECT deployed_serial FROM jobs WHERE id = '%s'" % job["id"]).strip())
    check(job["status"] == "Completed" and served_serial(S["nginx_port"], "web.example.internal") == serial,
          "after the outage: %r\n%s" % (job, agent_log()))


def discovery_finds_certificates_not_keys():
    scan = os.path.join(S["dir"], "scan")
    self_signed(os.path.join(scan, "a.pem"), os.path.join(scan, "a.key"), "found-a.example.internal")
    self_signed(os.path.join(S["dir"], "b.pem"), os.path.join(S["dir"], "b.key"), "found-b.example.internal")
    openssl("x509", "-in", os.path.join(S["dir"], "b.pem"), "-outform", "DER", "-out", os.path.join(scan, "b.der"))
    self_signed(os.path.join(S["dir"], "c1.pem"), os.path.join(S["dir"], "c1.key"), "chain-1.example.internal")
    self_signed(os.path.join(S["dir"], "c2.pem"), os.path.join(S["dir"], "c2.key"), "chain-2.example.internal")
    with open(os.path.join(scan, "chain.pem"), "w") as f:
        f.write(open(os.path.join(S["dir"], "c1.pem")).read() + open(os.path.join(S["dir"], "c2.pem")).read())

    def found():
        code, r = adm("GET", "/api/v1/discovered-certificates?agent_id=%s&per_page=100" % S["agent_id"])
        return {c["common_name"]: c for c in r.get("data", [])} if code == 200 else {}

    want = {"found-a.example.internal", "found-b.example.internal", "chain-1.example.internal",
            "chain-2.example.internal"}
    wait_for("discovery", lambda: want <= set(found()), timeout=60)
    got = found()
    check(got["found-b.example.internal"]["source_format"] == "DER", "DER: %r" % got["found-b.example.internal"])
    check(all(not c["source_path"].endswith(".key") for c in got.values()), "a key file was reported")
    check("PRIVATE KEY" not in psql(pg, "SELECT string_agg(pem_data, '') FROM discovered_certificates"),
          "key material stored")


def identity_renewed_before_expiry():
    """The identity lives 60 s here (signer.agent_identity_lifetime): the
    agent renews it over mTLS once a third is left, and goes on with the new
    one; the old one stays valid until it expires, the one before is revoked."""
    def identities():
        return adm("GET", "/api/v1/agents/%s/identities" % S["agent_id"])[1]["data"]

    wait_for("the agent renews its identity", lambda: len(identities()) >= 2, timeout=60)
    ids = identities()
    check(ids[0]["revoked_at"] is None and ids[0]["token_id"] is None, "renewed identity: %r" % ids[0])
    renewed_at = time.time()
    wait_for("a heartbeat with the new identity",
             lambda: int(psql(pg, "SELECT count(*) FROM agents WHERE id = '%s' AND last_heartbeat_at > "
                                  "to_timestamp(%f)" % (S["agent_id"], renewed_at + 1)).strip()) == 1, timeout=20)
    check(int(psql(pg, "SELECT count(*) FROM audit_events WHERE action = 'agents.identity_renew' AND "
                       "resource_id = '%s'" % S["agent_id"]).strip()) >= 1, "renewal audited")


def retired_agent_exits_zero():
    proc = S["agent"]
    check(adm("DELETE", "/api/v1/agents/%s?force=true&reason=decommissioned" % S["agent_id"])[0] == 200, "retire")
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        raise AssertionError("the retired agent kept running\n" + agent_log())
    check(proc.returncode == 0 and "retired" in agent_log(), "exit %r\n%s" % (proc.returncode, agent_log()))


if not shutil.which("nginx") or not shutil.which("haproxy"):
    print("nginx and haproxy are needed (contrib/install-deps.sh installs them)")
    sys.exit(1)
root = make_root("certward-agent-deploy-")
pg = cw = None
try:
    pg = Postgres(root, free_port())
    cw = Certward(root, pg.dsn, extra="signer:\n  agent_identity_lifetime: 60s\n")
    cw.start()
    api = Api(cw)
    case(setup)
    case(enrol)
    case(deploys_to_nginx_and_haproxy)
    case(broken_configuration_rolls_back)
    case(killed_agent_finishes_after_restart)
    case(survives_a_server_outage)
    case(discovery_finds_certificates_not_keys)
    case(identity_renewed_before_expiry)
    case(retired_agent_exits_zero)
    stop_agent()
    RUN.stop_clean(cw)
finally:
    try:
        stop_agent()
    except AssertionError:
        pass
    stop_servers()
    teardown(cw, pg, root)
RUN.finish()
