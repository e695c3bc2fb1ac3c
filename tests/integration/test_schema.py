"""The inventory and audit schema (migrations 0002, 0003) in a real
PostgreSQL, applied by `certwardd migrate`: tables, enum CHECKs, foreign keys,
unique names, row versions, soft-delete invariants, API key rules, and the
audit trail (append-only for every role, hash chain recomputed here from the
documented encoding, serialized concurrent inserts)."""
import hashlib
import ipaddress
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AS_ROOT, BUILD, SOURCE, Cases, Certward, Postgres, check, log, make_root, teardown

RUN = Cases(lambda: None)
case = RUN.case

TABLES = ["issued_serials", "teams", "owners", "issuers", "certificate_profiles", "renewal_policies", "agents",
          "deployment_targets", "agent_groups", "agent_group_members", "managed_certificates",
          "certificate_targets", "certificate_versions", "policy_rules", "policy_violations", "jobs",
          "notifications", "api_keys", "audit_events", "audit_chain_head"]
VERSIONED = ["teams", "owners", "issuers", "certificate_profiles", "renewal_policies", "agents",
             "deployment_targets", "agent_groups", "managed_certificates", "policy_rules", "jobs",
             "notifications"]

# (table, column, every allowed value, a refused value), as the reference spells them
ENUMS = [
    ("managed_certificates", "status", ["Pending", "Active", "Expiring", "Expired", "RenewalInProgress",
                                        "Failed", "Revoked", "Archived"], "active"),
    ("managed_certificates", "revocation_reason", ["unspecified", "keyCompromise", "caCompromise",
                                                   "affiliationChanged", "superseded", "cessationOfOperation",
                                                   "certificateHold", "privilegeWithdrawn"], "KeyCompromise"),
    ("issuers", "type", ["ACME", "GenericCA", "StepCA", "VaultPKI", "DigiCert", "Sectigo", "GoogleCAS",
                         "AWSACMPCA", "Entrust", "GlobalSign", "EJBCA"], "LocalCA"),
    ("deployment_targets", "type", ["NGINX", "Apache", "HAProxy", "Traefik", "Caddy", "Envoy", "Postfix",
                                    "Dovecot", "IIS", "F5", "SSH", "WinCertStore", "JavaKeystore",
                                    "KubernetesSecrets"], "nginx"),
    ("agents", "status", ["Online", "Offline", "Degraded"], "Retired"),
    ("jobs", "type", ["Issuance", "Renewal", "Deployment", "Validation"], "Revocation"),
    ("jobs", "status", ["Pending", "AwaitingCSR", "AwaitingApproval", "Running", "Completed", "Failed",
                        "Cancelled"], "Canceled"),
    ("policy_rules", "type", ["AllowedIssuers", "AllowedDomains", "RequiredMetadata", "AllowedEnvironments",
                              "RenewalLeadTime", "CertificateLifetime"], "ownership"),
    ("policy_rules", "severity", ["Warning", "Error", "Critical"], "Info"),
    ("policy_violations", "severity", ["Warning", "Error", "Critical"], "warning"),
    ("notifications", "type", ["ExpirationWarning", "RenewalSuccess", "RenewalFailure", "DeploymentSuccess",
                               "DeploymentFailure", "PolicyViolation", "Revocation"], "Expiration"),
    ("notifications", "channel", ["Email", "Webhook", "Slack"], "SMS"),
    ("notifications", "status", ["pending", "sent", "failed", "dead", "read"], "Sent"),
    ("certificate_versions", "key_algorithm", ["RSA", "ECDSA", "Ed25519"], "DSA"),
    ("api_keys", "role", ["admin", "operator", "viewer"], "root"),
    ("audit_events", "actor_type", ["User", "System", "Agent"], "user"),
    ("audit_events", "actor_role", ["admin", "operator", "viewer", "agent"], "superuser"),
    ("audit_events", "outcome", ["success", "failure", "denied"], "ok"),
]

FIXTURE = r"""
INSERT INTO teams (id, name) VALUES ('t-platform', 'Platform');
INSERT INTO owners (id, name, email, team_id) VALUES ('o-alice', 'Alice', 'alice@example.com', 't-platform');
INSERT INTO issuers (id, name, type, config, secret_config)
  VALUES ('iss-acme', 'ACME staging', 'ACME', '{"directory_url": "https://acme.example/dir"}', '\x00010203');
INSERT INTO certificate_profiles (id, name, allowed_key_algorithms, allowed_ekus)
  VALUES ('prof-tls', 'TLS server', '[{"algorithm": "ECDSA", "min_size": 256}, {"algorithm": "RSA"}]',
          '{serverAuth}');
INSERT INTO renewal_policies (id, name, max_retries) VALUES ('rp-default', 'default', 3);
INSERT INTO agents (id, name, hostname, ip_address) VALUES ('agent-web1', 'web1', 'web1.example.com', '10.0.0.5');
INSERT INTO deployment_targets (id, name, type, agent_id) VALUES ('tgt-web1', 'nginx', 'NGINX', 'agent-web1');
INSERT INTO agent_groups (id, name, match_ip_cidr) VALUES ('agrp-dc1', 'dc1', '10.0.0.0/8');
INSERT INTO agent_group_members (agent_group_id, agent_id) VALUES ('agrp-dc1', 'agent-web1');
INSERT INTO managed_certificates (id, name, common_name, sans, environment, owner_id, team_id, issuer_id,
                                  renewal_policy_id, certificate_profile_id, tags)
  VALUES ('mc-api-prod', 'api prod', 'api.example.com', '{api.example.com,*.api.example.com}', 'production',
          'o-alice', 't-platform', 'iss-acme', 'rp-default', 'prof-tls', '{"app": "api"}');
INSERT INTO certificate_targets (certificate_id, target_id) VALUES ('mc-api-prod', 'tgt-web1');
INSERT INTO certificate_versions (id, certificate_id, serial_number, not_before, not_after,
                                  fingerprint_sha256, pem_chain, key_algorithm, key_size)
  VALUES ('cv-1', 'mc-api-prod', '0a1b2c', now(), now() + interval '90 days', repeat('ab', 32),
          '-----BEGIN CERTIFICATE-----', 'ECDSA', 256);
INSERT INTO policy_rules (id, name, type, config) VALUES ('pol-envs', 'environments', 'AllowedEnvironments',
                                                          '{"allowed": ["production"]}');
INSERT INTO policy_violations (id, certificate_id, rule_id, message, severity)
  VALUES ('pv-1', 'mc-api-prod', 'pol-envs', 'environment not allowed', 'Error');
INSERT INTO jobs (id, type, certificate_id, target_id, agent_id)
  VALUES ('job-1', 'Deployment', 'mc-api-prod', 'tgt-web1', 'agent-web1');
INSERT INTO notifications (id, type, certificate_id, channel, recipient, message)
  VALUES ('notif-1', 'ExpirationWarning', 'mc-api-prod', 'Email', 'alice@example.com', 'expires soon');
INSERT INTO api_keys (id, name, role, salt, key_hash, key_prefix)
  VALUES ('key-admin', 'bootstrap', 'admin', '\x000102030405060708090a0b0c0d0e0f', sha256('\x00'), 'cwk_adm1');
"""

# a row of each enum's table to update: the WHERE clause
ROW_OF = {"managed_certificates": "id = 'mc-api-prod'", "issuers": "id = 'iss-acme'",
          "deployment_targets": "id = 'tgt-web1'", "agents": "id = 'agent-web1'", "jobs": "id = 'job-1'",
          "policy_rules": "id = 'pol-envs'", "policy_violations": "id = 'pv-1'",
          "notifications": "id = 'notif-1'", "certificate_versions": "id = 'cv-1'",
          "api_keys": "id = 'key-admin'"}

SQLSTATE = re.compile(r"ERROR:\s+([0-9A-Z]{5}):")


def run_psql(sql, superuser=False, timeout=60):
    """psql as the database owner (the role in store.dsn, which applied the
    migrations) or as the cluster's superuser; returns the CompletedProcess."""
    if superuser:
        cmd = [os.path.join(SOURCE, "contrib", "pg.sh"), "psql", pg.dir]
    else:
        cmd = (["runuser", "-u", "certward", "--"] if AS_ROOT else []) + ["psql", pg.dsn]
    cmd += ["-qAtX", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-c", sql]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def sql(text, superuser=False):
    out = run_psql(text, superuser)
    check(out.returncode == 0, "psql %r failed: %s" % (text[:300], out.stderr))
    return [l.split("|") for l in out.stdout.splitlines() if l]


def refused(text, state, superuser=False):
    """text must fail with SQLSTATE state (and change nothing: one transaction)."""
    out = run_psql(text, superuser)
    m = SQLSTATE.search(out.stderr)
    check(out.returncode != 0 and m and m.group(1) == state,
          "%r: expected SQLSTATE %s, got rc %d: %s" % (text[:300], state, out.returncode, out.stderr.strip()))
    return out.stderr


def one(text):
    return sql(text)[0][0]


# ---- the REST resources' store operations (schema/gen_resources.py) ----

with open(os.path.join(BUILD, "schema", "resource_ops.json")) as f:
    RESOURCE_OPS = {o["name"]: o for o in json.load(f)}


def literal(v):
    if v is None:
        return "NULL"
    if not isinstance(v, str):
        v = json.dumps(v)
    return "'" + v.replace("'", "''") + "'"


def op_sql(name, *params):
    """PREPARE the operation exactly as the store runs it (parameters of
    unspecified type, passed as text) and EXECUTE it once."""
    o = RESOURCE_OPS[name]
    check(len(params) == o["nparams"], "%s takes %d parameters" % (name, o["nparams"]))
    if o["result"] == "LIST":
        params += (None,)  # the total, as the store binds it when it does not know it
    args = "(%s)" % ", ".join(literal(p) for p in params) if params else ""
    return "PREPARE op AS %s; EXECUTE op%s;" % (o["sql"], args)


def op(name, *params):
    rows = sql(op_sql(name, *params))
    return json.loads(rows[0][0]) if rows else None


AUD = ("key-it", "User", "admin", "req-it", "127.0.0.1", hashlib.sha256(b"{}").hexdigest())


def store_op_sql(name):
    """A hand-written operation's statement exactly as schema/store_ops.def
    declares it (its C string literals joined)."""
    with open(os.path.join(SOURCE, "schema", "store_ops.def")) as f:
        text = f.read()
    m = re.search(r'STORE_(?:OP|READ)\("%s",[^\n]*\n((?:\s*"(?:[^"\\]|\\.)*"\s*)+)\)' % re.escape(name), text)
    check(m, "%s not in store_ops.def" % name)
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))).replace('\\"', '"')


def hand_op(name, *params):
    args = ", ".join(literal(p) for p in params)
    rows = sql("PREPARE hop AS %s; EXECUTE hop(%s);" % (store_op_sql(name), args))
    return json.loads(rows[0][0]) if rows else None


def issued_versions():
    """certificates.issued records a signed certificate in one statement:
    its version, its serial for the issuer, the certificate Active until its
    new expiry, and the audit event; a serial an issuer already used is
    refused (23505) and nothing of it is recorded."""
    sql("INSERT INTO managed_certificates (id, name, common_name, owner_id, team_id, issuer_id, renewal_policy_id) "
        "SELECT 'mc-issued', 'issued', 'issued.example.com', owner_id, team_id, issuer_id, renewal_policy_id "
        "FROM managed_certificates WHERE id = 'mc-api-prod'")
    issuer = one("SELECT issuer_id FROM managed_certificates WHERE id = 'mc-issued'")
    events = int(one("SELECT count(*) FROM audit_events WHERE action = 'certificate.issued'"))
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    v = hand_op("certificates.issued", "mc-issued", issuer, "7f00aa", "1790000000", "1797776000",
                "ab" * 32, pem, None, "ECDSA", "256", *AUD)
    check(v["certificate_id"] == "mc-issued" and v["serial_number"] == "7f00aa" and v["key_size"] == 256,
          "version: %r" % v)
    row = sql("SELECT status, expires_at = to_timestamp(1797776000), last_renewal_at IS NOT NULL "
              "FROM managed_certificates WHERE id = 'mc-issued'")[0]
    check(row == ["Active", "t", "t"], "certificate after issuance: %r" % row)
    check(one("SELECT certificate_version_id FROM issued_serials WHERE issuer_id = '%s' AND serial_number = '7f00aa'"
              % issuer) == v["id"], "serial not registered")
    check(int(one("SELECT count(*) FROM audit_events WHERE action = 'certificate.issued' "
                  "AND resource_id = 'mc-issued' AND details->>'serial_number' = '7f00aa'")) == events + 1,
          "no audit event")
    versions = one("SELECT count(*) FROM certificate_versions WHERE certificate_id = 'mc-issued'")
    refused("PREPARE hop AS %s; EXECUTE hop(%s);" % (store_op_sql("certificates.issued"), ", ".join(
        literal(p) for p in ("mc-issued", issuer, "7f00aa", "1790000000", "1797776000", "cd" * 32, pem, None,
                             "ECDSA", "256") + AUD)), "23505")
    check(one("SELECT count(*) FROM certificate_versions WHERE certificate_id = 'mc-issued'") == versions,
          "a refused serial left a version behind")
    check(int(one("SELECT count(*) FROM audit_events WHERE action = 'certificate.issued'")) == events + 1,
          "a refused serial left an audit event")


def resource_operations():
    """Each generated statement runs against the migrated schema: create with
    server-chosen and given ids, uniqueness and references refused with their
    SQLSTATEs, partial update, list pages, filters and sorting, delete; every
    change that happened has its audit event in the chain, and a refused one
    has none."""
    events_before = int(one("SELECT count(*) FROM audit_events"))
    check(all(n in RESOURCE_OPS for n in ("teams.list", "teams.get", "teams.create", "teams.update",
                                          "teams.delete", "owners.list")), "operations missing")
    base = op("teams.list", "1", "500", None, "false", None)["total"]
    a = op("teams.create", {"name": "platform-ops"}, *AUD)
    check(re.match(r"^t-[0-9a-f]{32}$", a["id"]) and a["description"] == "", "created %r" % a)
    b = op("teams.create", {"id": "00-sec", "name": "security", "description": "d"}, *AUD)
    check(b["id"] == "00-sec" and b["created_at"], "created %r" % b)
    refused(op_sql("teams.create", {"name": "security"}, *AUD), "23505")
    o = op("owners.create", {"name": "Ann", "email": "ann@example.com", "team_id": "00-sec"}, *AUD)
    check(o["team_id"] == "00-sec", "owner %r" % o)
    refused(op_sql("owners.create", {"name": "Bob", "team_id": "no-such-team"}, *AUD), "23503")
    page = op("teams.list", "1", "1", "id", "false", None)
    check(page["total"] == base + 2 and page["page"] == 1 and page["per_page"] == 1 and
          [t["id"] for t in page["data"]] == ["00-sec"], "page 1 by id: %r" % page)
    up = [t["id"] for t in op("teams.list", "1", "500", "name", "false", None)["data"]]
    down = [t["id"] for t in op("teams.list", "1", "500", "name", "true", None)["data"]]
    check(len(up) == base + 2 and down == up[::-1], "sorting by name: %r / %r" % (up, down))
    page = op("teams.list", str(base + 3), "1", None, "false", None)
    check(page["data"] == [] and page["total"] == base + 2, "beyond the end: %r" % page)
    page = op("teams.list", "1", "50", None, "false", {"name": "security"})
    check(page["total"] == 1 and page["data"][0]["id"] == "00-sec", "filtered: %r" % page)
    page = op("owners.list", "1", "50", None, "false", {"team_id": "00-sec"})
    check(page["total"] == 1, "owners by team: %r" % page)
    u = op("teams.update", "00-sec", {"description": "new"}, *AUD)
    check(u["name"] == "security" and u["description"] == "new" and u["updated_at"] >= b["updated_at"],
          "partial update: %r" % u)
    check(op("teams.update", "nope", {"description": "x"}, *AUD) is None, "update of a missing id")
    refused(op_sql("teams.delete", "00-sec", *AUD), "23503")  # an owner still refers to it
    sql(op_sql("owners.delete", o["id"], *AUD))
    sql(op_sql("teams.delete", "00-sec", *AUD))
    check(op("teams.get", "00-sec") is None and op("teams.get", a["id"])["name"] == "platform-ops",
          "get after delete")
    # hostile values stay values
    h = op("teams.create", {"name": "x'); DROP TABLE teams; --", "description": "$1 $2 \\"}, *AUD)
    check(op("teams.get", h["id"])["name"] == "x'); DROP TABLE teams; --", "the name was not stored as given")
    check(op("teams.delete", "nope", *AUD) == {"deleted": 0}, "delete of a missing id")
    changes = [r[0] for r in sql("SELECT action FROM audit_events ORDER BY id OFFSET %d" % events_before)]
    check(changes == ["teams.create", "teams.create", "owners.create", "teams.update", "owners.delete",
                      "teams.delete", "teams.create"], "audit events: %r" % changes)
    check(one("SELECT count(*) FROM audit_events WHERE request_id = 'req-it' AND actor = 'key-it' AND "
              "source_address = '127.0.0.1' AND body_sha256 = decode('%s', 'hex')" % AUD[5]) == str(len(changes)),
          "audit fields not recorded")
    verify_chain()


# ---- the migrations ----

def migrate_applies_all():
    out = subprocess.run([os.path.join(BUILD, "certwardd"), "migrate", "-c", cw.config],
                         capture_output=True, text=True, timeout=120)
    check(out.returncode == 0, "certwardd migrate: %r" % (out,))
    files = sorted(f for f in os.listdir(os.path.join(SOURCE, "migrations")) if f.endswith(".sql"))
    rows = sql("SELECT version, name FROM schema_migrations ORDER BY version")
    check([int(r[0]) for r in rows] == list(range(1, len(files) + 1)), "recorded: %r" % rows)
    for name in ("inventory", "auth_audit"):
        check(name in [r[1] for r in rows], "%s not recorded: %r" % (name, rows))
    sql(FIXTURE)


def every_table_exists():
    have = {r[0] for r in sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    missing = [t for t in TABLES if t not in have]
    check(not missing, "missing tables: %r" % missing)
    for t in VERSIONED:
        cols = {r[0]: r[1] for r in sql("SELECT column_name, data_type FROM information_schema.columns "
                                         "WHERE table_name = '%s'" % t)}
        check(cols.get("row_version") == "integer" and
              cols.get("updated_at") == cols.get("created_at") == "timestamp with time zone",
              "%s lacks created_at/updated_at/row_version: %r" % (t, cols))
        check(one("SELECT count(*) FROM pg_trigger WHERE tgrelid = '%s'::regclass AND tgname = '%s_touch'"
                  % (t, t)) == "1", "%s has no touch trigger" % t)
    # the store's cache hears of every change (0007_change_notify)
    silent = [r[0] for r in sql(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace "
        "AND c.relkind IN ('r', 'p') AND NOT EXISTS (SELECT 1 FROM pg_trigger g "
        "WHERE g.tgrelid = c.oid AND g.tgname = 'cw_table_changed')")]
    check(not silent, "tables whose changes are not announced: %r" % silent)
    check(one("SELECT count(*) FROM managed_certificates") == "1", "fixture not loaded")


def enum_checks():
    for table, col, good, bad in ENUMS:
        if table == "audit_events":
            def stmt(v):
                vals = {"actor_type": "'System'", "actor_role": "NULL", "outcome": "'success'"}
                vals[col] = "'%s'" % v
                return ("INSERT INTO audit_events (actor, actor_type, actor_role, action, resource_type, outcome) "
                        "VALUES ('it', %(actor_type)s, %(actor_role)s, 'enum.check', 'test', %(outcome)s)" % vals)
        elif table == "certificate_versions":
            # read-only history: try the values on inserted rows instead
            def stmt(v):
                return ("INSERT INTO certificate_versions (certificate_id, serial_number, not_before, not_after, "
                        "fingerprint_sha256, pem_chain, key_algorithm) VALUES ('mc-api-prod', '%s', now(), "
                        "now() + interval '1 day', repeat('cd', 32), 'pem', '%s')"
                        % (hashlib.md5(v.encode()).hexdigest()[:8], v))
        elif table == "jobs" and col == "status":
            # a job's status moves only along its state machine (migration 0018): each value on a new job
            def stmt(v):
                return "INSERT INTO jobs (type, certificate_id, status) VALUES ('Validation', 'mc-api-prod', '%s')" % v
        else:
            def stmt(v):
                extra = ""
                if table == "managed_certificates":
                    # keep the archived/revoked invariants while trying each value
                    extra = ", revoked_at = now(), archived_at = %s" % ("now()" if v == "Archived" else "NULL")
                return "UPDATE %s SET %s = '%s'%s WHERE %s" % (table, col, v, extra, ROW_OF[table])
        sql("BEGIN; " + "; ".join(stmt(v) for v in good) + "; ROLLBACK")
        refused(stmt(bad), "23514")
    log("  %d enum columns: every value accepted, a near miss refused" % len(ENUMS))
    # an array of enum values and a jsonb array of enum objects
    refused("UPDATE certificate_profiles SET allowed_ekus = '{serverAuth,anyUsage}' WHERE id = 'prof-tls'", "23514")
    refused("UPDATE certificate_profiles SET allowed_key_algorithms = '[{\"algorithm\": \"DSA\"}]' "
            "WHERE id = 'prof-tls'", "23514")
    refused("UPDATE certificate_profiles SET allowed_key_algorithms = '[{\"algorithm\": \"RSA\", "
            "\"min_size\": \"2048\"}]' WHERE id = 'prof-tls'", "23514")
    refused("UPDATE certificate_profiles SET allowed_key_algorithms = '{}' WHERE id = 'prof-tls'", "23514")
    # an agent key needs its agent, other keys have none
    refused("UPDATE api_keys SET role = 'agent' WHERE id = 'key-admin'", "23514")
    sql("BEGIN; UPDATE api_keys SET role = 'agent', agent_id = 'agent-web1' WHERE id = 'key-admin'; ROLLBACK")


def ids_and_value_checks():
    tid = one("INSERT INTO teams (name) VALUES ('generated id') RETURNING id")
    check(re.fullmatch(r"t-[0-9a-f]{32}", tid), "generated team id %r" % tid)
    check(re.fullmatch(r"mc-[0-9a-f]{32}", one("SELECT cw_new_id('mc')")), "cw_new_id")
    for bad in ("", "-leading-dash", "has space", "x" * 129, "slash/inside", "ü"):
        refused("INSERT INTO teams (id, name) VALUES ('%s', 'bad id %d')" % (bad, len(bad)), "23514")
    sql("INSERT INTO teams (id, name) VALUES ('%s', 'long id')" % ("x" * 128))
    # tags: an object of strings; sans: no NULL element
    for tags in ("[]", '"x"', '{"n": 1}', '{"a": {"b": "c"}}'):
        refused("UPDATE managed_certificates SET tags = '%s' WHERE id = 'mc-api-prod'" % tags, "23514")
    refused("UPDATE managed_certificates SET sans = ARRAY['a.example', NULL] WHERE id = 'mc-api-prod'", "23514")
    refused("UPDATE issuers SET config = '[1]' WHERE id = 'iss-acme'", "23514")
    # required fields
    refused("INSERT INTO managed_certificates (name, common_name, owner_id, team_id, issuer_id) "
            "VALUES ('x', 'x.example', 'o-alice', 't-platform', 'iss-acme')", "23502")
    refused("INSERT INTO renewal_policies (name) VALUES ('no max_retries')", "23502")
    # ranges from the reference
    refused("UPDATE renewal_policies SET renewal_window_days = 366 WHERE id = 'rp-default'", "23514")
    refused("UPDATE renewal_policies SET retry_interval_seconds = 59 WHERE id = 'rp-default'", "23514")
    refused("UPDATE renewal_policies SET alert_thresholds_days = '{30,400}' WHERE id = 'rp-default'", "23514")
    check(one("SELECT alert_thresholds_days FROM renewal_policies WHERE id = 'rp-default'") == "{30,14,7,0}",
          "alert_thresholds_days default")
    # fingerprints are lowercase hex; key hashes 32 bytes
    refused("INSERT INTO certificate_versions (certificate_id, serial_number, not_before, not_after, "
            "fingerprint_sha256, pem_chain) VALUES ('mc-api-prod', '01', now(), now() + interval '1 day', "
            "repeat('AB', 32), 'pem')", "23514")
    refused("UPDATE api_keys SET key_hash = '\\x00' WHERE id = 'key-admin'", "23514")


def foreign_keys():
    refused("INSERT INTO managed_certificates (name, common_name, owner_id, team_id, issuer_id, "
            "renewal_policy_id) VALUES ('x', 'x.example', 'o-nobody', 't-platform', 'iss-acme', 'rp-default')",
            "23503")
    refused("INSERT INTO deployment_targets (name, type, agent_id) VALUES ('x', 'NGINX', 'agent-nobody')", "23503")
    refused("INSERT INTO jobs (type, certificate_id) VALUES ('Renewal', 'mc-nothing')", "23503")
    refused("INSERT INTO api_keys (name, role, agent_id, salt, key_hash, key_prefix) VALUES ('a', 'agent', "
            "'agent-nobody', '\\x000102030405060708090a0b0c0d0e0f', sha256('\\x01'), 'cwk_agt1')", "23503")
    # ON DELETE RESTRICT: a team, issuer, renewal policy or target still in use stays
    for stmt in ("DELETE FROM teams WHERE id = 't-platform'", "DELETE FROM issuers WHERE id = 'iss-acme'",
                 "DELETE FROM renewal_policies WHERE id = 'rp-default'",
                 "DELETE FROM deployment_targets WHERE id = 'tgt-web1'",
                 "DELETE FROM agents WHERE id = 'agent-web1'"):
        refused(stmt, "23503")
    # deleting a policy deletes its violations; a group its membership rows
    sql("BEGIN; DELETE FROM policy_rules WHERE id = 'pol-envs'; DELETE FROM agent_groups WHERE id = 'agrp-dc1'; "
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM policy_violations) OR EXISTS (SELECT 1 FROM agent_group_members) "
        "THEN RAISE EXCEPTION 'not cascaded'; END IF; END $$; ROLLBACK")


def unique_names():
    for stmt in ("INSERT INTO teams (name) VALUES ('Platform')",
                 "INSERT INTO issuers (name, type) VALUES ('ACME staging', 'StepCA')",
                 "INSERT INTO renewal_policies (name, max_retries) VALUES ('default', 1)",
                 "INSERT INTO certificate_profiles (name) VALUES ('TLS server')",
                 "INSERT INTO policy_rules (name, type) VALUES ('environments', 'AllowedDomains')",
                 "INSERT INTO agent_groups (name) VALUES ('dc1')",
                 "INSERT INTO agents (name) VALUES ('web1')",
                 "INSERT INTO deployment_targets (name, type, agent_id) VALUES ('nginx', 'Apache', 'agent-web1')",
                 "INSERT INTO api_keys (name, role, salt, key_hash, key_prefix) VALUES ('bootstrap', 'viewer', "
                 "'\\x000102030405060708090a0b0c0d0e0f', sha256('\\x02'), 'cwk_view')",
                 "INSERT INTO teams (id, name) VALUES ('t-platform', 'Another')"):
        refused(stmt, "23505")
    # a retired agent's name may be used again
    sql("BEGIN; INSERT INTO agents (id, name) VALUES ('agent-old', 'old'); "
        "UPDATE agents SET retired_at = now() WHERE id = 'agent-old'; "
        "INSERT INTO agents (name) VALUES ('old'); ROLLBACK")


def row_version_and_updated_at():
    before = sql("SELECT row_version, updated_at, created_at FROM managed_certificates WHERE id = 'mc-api-prod'")[0]
    after = sql("UPDATE managed_certificates SET environment = 'staging', row_version = 42, "
                "created_at = now() - interval '1 year' WHERE id = 'mc-api-prod' "
                "RETURNING row_version, updated_at, created_at")[0]
    check(int(after[0]) == int(before[0]) + 1, "row_version %s -> %s" % (before[0], after[0]))
    check(after[1] > before[1] and after[2] == before[2], "timestamps %r -> %r" % (before, after))
    # optimistic concurrency: an update naming a stale version touches nothing
    check(sql("UPDATE managed_certificates SET environment = 'x' WHERE id = 'mc-api-prod' AND row_version = %s "
              "RETURNING id" % before[0]) == [], "stale row_version matched")
    for t in VERSIONED:
        v = sql("UPDATE %s SET updated_at = updated_at WHERE id = (SELECT min(id) FROM %s) "
                "RETURNING row_version" % (t, t))
        check(v and int(v[0][0]) >= 2, "%s: row_version after UPDATE %r" % (t, v))


def soft_delete_invariants():
    refused("UPDATE managed_certificates SET status = 'Archived' WHERE id = 'mc-api-prod'", "23514")
    refused("UPDATE managed_certificates SET archived_at = now() WHERE id = 'mc-api-prod'", "23514")
    refused("UPDATE managed_certificates SET status = 'Revoked' WHERE id = 'mc-api-prod'", "23514")
    refused("UPDATE managed_certificates SET revocation_reason = 'superseded' WHERE id = 'mc-api-prod'", "23514")
    sql("UPDATE managed_certificates SET status = 'Archived', archived_at = now() WHERE id = 'mc-api-prod'")
    refused("UPDATE agents SET retired_reason = 'gone' WHERE id = 'agent-web1'", "23514")
    sql("BEGIN; UPDATE agents SET retired_at = now(), retired_reason = 'decommissioned' "
        "WHERE id = 'agent-web1'; ROLLBACK")
    # versions are history
    refused("UPDATE certificate_versions SET pem_chain = 'x'", "42501")


# ---- the audit trail ----

def field(b):
    return b"\x00" if b is None else b"\x01" + len(b).to_bytes(4, "big") + b


def utf8(s):
    return None if s is None else s.encode("utf-8")


def audit_rows():
    out = run_psql("SELECT coalesce(json_agg(json_build_object('id', id, 'occurred_at', occurred_at, 'actor', actor, "
              "'actor_type', actor_type, 'actor_role', actor_role, 'action', action, "
              "'resource_type', resource_type, 'resource_id', resource_id, 'request_id', request_id, "
              "'source_address', host(source_address), 'outcome', outcome, "
              "'body_sha256', encode(body_sha256, 'hex'), 'details', details::text, "
              "'prev_hash', encode(prev_hash, 'hex'), 'hash', encode(hash, 'hex')) ORDER BY id), '[]') "
              "FROM audit_events")
    check(out.returncode == 0, "reading audit_events: %s" % out.stderr)
    return json.loads(out.stdout)


def expected_hash(prev, r):
    """The documented encoding (migrations/0003_auth_audit.sql), from the row's text."""
    t = datetime.fromisoformat(r["occurred_at"])
    delta = t - datetime(1970, 1, 1, tzinfo=timezone.utc)
    micros = (delta.days * 86400 + delta.seconds) * 1000000 + delta.microseconds
    addr = ipaddress.ip_address(r["source_address"]).packed if r["source_address"] else None
    body = bytes.fromhex(r["body_sha256"]) if r["body_sha256"] else None
    msg = prev + b"".join([
        field(r["id"].to_bytes(8, "big", signed=True)), field(micros.to_bytes(8, "big", signed=True)),
        field(utf8(r["actor"])), field(utf8(r["actor_type"])), field(utf8(r["actor_role"])),
        field(utf8(r["action"])), field(utf8(r["resource_type"])), field(utf8(r["resource_id"])),
        field(utf8(r["request_id"])), field(addr), field(utf8(r["outcome"])), field(body),
        field(utf8(r["details"]))])
    return hashlib.sha256(msg).digest()


def verify_chain():
    """Walks the chain: ids 1..N, links, recomputed hashes, the head. Returns N."""
    rows = audit_rows()
    prev = bytes(32)
    for i, r in enumerate(rows):
        check(r["id"] == i + 1, "ids not contiguous at %d: %r" % (i + 1, r["id"]))
        check(bytes.fromhex(r["prev_hash"]) == prev, "event %d: prev_hash does not link" % r["id"])
        h = expected_hash(prev, r)
        check(h.hex() == r["hash"], "event %d: hash %s, recomputed %s (%r)" % (r["id"], r["hash"], h.hex(), r))
        prev = h
    head = sql("SELECT last_id, encode(last_hash, 'hex') FROM audit_chain_head")
    check(head == [[str(len(rows)), prev.hex()]], "head %r, chain ends at %d %s" % (head, len(rows), prev.hex()))
    check(one("SELECT count(*) FROM audit_events WHERE hash <> audit_event_hash(prev_hash, audit_events.*)") == "0",
          "audit_event_hash() disagrees")
    return len(rows)


AUDIT_INSERT = ("INSERT INTO audit_events (actor, actor_type, actor_role, action, resource_type, resource_id, "
                "request_id, source_address, outcome, body_sha256, details) VALUES ")


def audit_chain_recomputed():
    sql(AUDIT_INSERT + "('apikey:bootstrap', 'User', 'admin', 'team.create', 'team', 't-platform', 'req-1', "
        "'192.0.2.7', 'success', sha256('{\"name\":\"Platform\"}'), '{\"status\": 201, \"name\": \"Platform\"}')")
    sql(AUDIT_INSERT + "('scheduler', 'System', NULL, 'certificate.renew', 'certificate', 'mc-api-prod', NULL, "
        "NULL, 'failure', NULL, '{}')")
    sql(AUDIT_INSERT + "('anonymous', 'User', NULL, 'auth.failed', 'api_key', NULL, 'req-\u00e9|3', "
        "'2001:db8::1', 'denied', NULL, '{\"reason\": \"unknown key\", \"n\": [1, 2.50, {\"z\": null}]}')")
    sql("INSERT INTO audit_events (occurred_at, actor, actor_type, action, resource_type, outcome) VALUES "
        "('1969-12-31 23:59:59.999999+00', 'clock', 'System', 'time.before_epoch', 'test', 'success')")
    check(verify_chain() >= 4, "chain too short")
    check(one("SELECT encode(prev_hash, 'hex') FROM audit_events WHERE id = 1") == "00" * 32,
          "the first event does not start from 32 zero bytes")


def supplied_hash_ignored():
    row = sql("INSERT INTO audit_events (actor, actor_type, action, resource_type, outcome, prev_hash, hash) "
              "VALUES ('forger', 'User', 'x', 'test', 'success', '\\xdead', sha256('bogus')) "
              "RETURNING id, encode(prev_hash, 'hex'), encode(hash, 'hex')")[0]
    check(row[1] != "dead" and row[2] != hashlib.sha256(b"bogus").hexdigest(), "supplied hashes kept: %r" % row)
    refused("INSERT INTO audit_events (id, actor, actor_type, action, resource_type, outcome) "
            "VALUES (1, 'forger', 'User', 'x', 'test', 'success')", "428C9")
    verify_chain()


def audit_append_only():
    for superuser in (False, True):
        for stmt in ("UPDATE audit_events SET actor = 'someone else' WHERE id = 1",
                     "UPDATE audit_events SET actor = actor WHERE false",
                     "DELETE FROM audit_events WHERE id = (SELECT max(id) FROM audit_events)",
                     "DELETE FROM audit_events", "TRUNCATE audit_events",
                     "UPDATE audit_chain_head SET last_id = 1", "DELETE FROM audit_chain_head",
                     "TRUNCATE audit_chain_head"):
            err = refused(stmt, "42501", superuser=superuser)
            check("append-only" in err or "audit_chain_head" in err, "%s: %s" % (stmt, err))
    grants = sql("SELECT privilege_type FROM information_schema.role_table_grants "
                 "WHERE table_name = 'audit_events' AND grantee = 'PUBLIC'")
    check(grants == [], "PUBLIC has privileges on audit_events: %r" % grants)
    verify_chain()


def concurrent_inserts_chain():
    """Two sessions insert 150 events each, one statement per transaction, at
    the same time: one unbroken chain of contiguous ids."""
    before = verify_chain()
    procs = []
    for s in ("a", "b"):
        script = "".join(AUDIT_INSERT + "('session-%s', 'System', NULL, 'it.concurrent', 'test', '%d', NULL, NULL, "
                         "'success', NULL, '{\"i\": %d}');\n" % (s, i, i) for i in range(150))
        cmd = (["runuser", "-u", "certward", "--"] if AS_ROOT else []) + \
            ["psql", pg.dsn, "-qAtX", "-v", "ON_ERROR_STOP=1"]
        procs.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
        procs[-1].stdin.write(script)
    for p in procs:
        p.stdin.close()
    for p in procs:
        check(p.wait(timeout=120) == 0, "a session failed: %s" % p.stderr.read())
    after = verify_chain()
    check(after == before + 300, "%d events before, %d after" % (before, after))
    order = [r[0] for r in sql("SELECT actor FROM audit_events WHERE action = 'it.concurrent' ORDER BY id")]
    switches = sum(1 for x, y in zip(order, order[1:]) if x != y)
    log("  %d events chained; the two sessions interleaved %d times" % (after, switches))


root = make_root("certward-schema-it-")
cw = None
pg = None
try:
    pg = Postgres(root, 15400 + os.getpid() % 400)
    os.makedirs(os.path.join(root, "main"), mode=0o755)
    cw = Certward(os.path.join(root, "main"), pg.dsn)  # for its configuration; `certwardd migrate` applies
    case(migrate_applies_all)
    case(every_table_exists)
    case(enum_checks)
    case(ids_and_value_checks)
    case(foreign_keys)
    case(unique_names)
    case(row_version_and_updated_at)
    case(soft_delete_invariants)
    case(audit_chain_recomputed)
    case(supplied_hash_ignored)
    case(audit_append_only)
    case(concurrent_inserts_chain)
    case(resource_operations)
    case(issued_versions)
finally:
    teardown(cw, pg, root)
RUN.finish()
