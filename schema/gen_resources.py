#!/usr/bin/env python3
"""Generates the store operations of the REST resources from
schema/resources.json:

    gen_resources.py resources.json OUT.def OUT.json OUT.c

OUT.def   STORE_OP lines (see schema/store_ops.def), included at its end
OUT.json  the same operations as data, for the integration tests
OUT.c     the catalogue as C data for the api's checks (lib/resource.h)

Per resource R (table T), all called by the api only, for the verbs the
resource has ("verbs", default all five):

    R.list    $1 page, $2 per_page, $3 sort field or NULL, $4 descending
              ('true'/'false'), $5 filters as a JSON object or NULL
              -> {"data": [...], "total": n, "page": p, "per_page": pp}
              (a resource under another one, "parent", answers no row
              when that one does not exist). A LIST operation: the store
              binds $6, the total it already knows for these filters or
              NULL (then PostgreSQL counts), and reads the total back from
              the second column.
    R.get     $1 id -> the object, or no row
    R.create  $1 the fields as a JSON object, then the audit parameters
              A = actor, actor type, actor role, request id, source
              address, SHA-256 of the request body (hex) -> the new object
    R.update  $1 id, $2 the fields to change as a JSON object, then A ->
              the object, or no row (fields absent from $2 keep their value)
    R.delete  $1 id, then A -> {"deleted": rows}; with "delete": "archive"
              the row stays, marked Archived

A change and its audit event are one statement (a data-modifying CTE): one
is never stored without the other. So are the rows of a link table behind
a "refs" field (a certificate's target_ids).

Other resource keys: "issuance" (true: also R.create_issued, a record
created with its first certificate version, and R.create_ordered, a record
created with the job that orders it from an ACME CA; see ops_of), "list_where" (a condition on the rows a list shows,
e.g. agents not retired, on the resource's own table), "reads" (the tables
behind a resource whose "table" is a view), "read_roles" / "write_roles" (who may list/get
and create/update/delete; default admin, operator, viewer / admin). Field
keys beyond the catalogue's own: "column" (read from another column),
"hidden" (filters but is not shown), "internal" (written by the api
only, never shown), "secrets" (an object whose secret members the api
seals into the resource's "sealed" field), "values" (of an enum), "link" (the
table of a refs field). A resource's "fields" may name another resource
to borrow its fields.

Values travel as one bound JSON parameter, never spliced into SQL; the api
checks them against the same catalogue before calling. Sort keys are
matched against a fixed list inside the statement.

create and update are STORE_WRITE operations naming the tables they write,
so that the store's cache forgets only what they changed; list and get are
STORE_READ operations naming the tables their results
come from (the resource's table, or "reads" for a resource on a view, its
link tables, and its parent's table): the store may answer them, and a
list's total, from its cache until one of those tables changes
(workers/store/cache.h).
"""
import json
import re
import sys

TYPES = {"id", "string", "ref", "int", "bool", "timestamp", "object", "strings", "ints", "enum", "enums",
         "map", "key_rules", "inet", "cidr", "refs", "sealed"}
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
VERBS = ["list", "get", "create", "update", "delete"]
ROLES = ["admin", "operator", "viewer", "agent"]  # bit order of ROLE_* (workers/api/routes.h)


def fail(msg):
    sys.exit("gen_resources.py: " + msg)


def col(f):
    """The column (or SQL expression over row t) a field reads from."""
    return "t." + f.get("column", f["name"])


def value_of(f, j):
    """SQL for field f's value in the JSON object j."""
    n, t = f["name"], f["type"]
    if t in ("id", "string", "ref", "enum"):
        return "(%s->>'%s')" % (j, n)
    if t == "int":
        return "(%s->>'%s')::bigint" % (j, n)
    if t == "bool":
        return "(%s->>'%s')::boolean" % (j, n)
    if t == "timestamp":
        return "(%s->>'%s')::timestamptz" % (j, n)
    if t == "sealed":
        return "decode(%s->>'%s', 'hex')" % (j, n)
    if t in ("inet", "cidr"):
        return "(%s->>'%s')::%s" % (j, n, t)
    if t in ("object", "map", "key_rules"):
        return "(%s->'%s')" % (j, n)
    elem = "jsonb_array_elements_text(%s->'%s')" % (j, n)
    if t == "ints":
        elem = "(SELECT e::integer FROM %s e)" % elem
    return "CASE WHEN %s ? '%s' AND jsonb_typeof(%s->'%s') = 'array' THEN ARRAY(%s) END" % (
        j, n, j, n, elem if t == "ints" else "SELECT " + elem)


def resolve(res, by_name):
    """Fields given as the name of another resource stand for its fields."""
    spec = res["fields"]
    if isinstance(spec, str):
        spec = [spec]
    out = []
    for f in spec:
        if isinstance(f, str):
            if f not in by_name or isinstance(by_name[f]["fields"], str):
                fail("%s: fields of %s cannot be borrowed" % (res["name"], f))
            out += by_name[f]["fields"]
        else:
            out.append(f)
    res["fields"] = out


def check(res):
    if not NAME.match(res["name"]) or not NAME.match(res["table"]):
        fail("%s: bad resource or table name" % res["name"])
    seen = set()
    for f in res["fields"]:
        if not NAME.match(f["name"]) or f["name"] in seen:
            fail("%s.%s: bad or repeated field name" % (res["name"], f["name"]))
        seen.add(f["name"])
        if f["type"] not in TYPES:
            fail("%s.%s: unknown type %s" % (res["name"], f["name"], f["type"]))
        if f["type"] in ("ref", "refs") and not NAME.match(f.get("ref", "")):
            fail("%s.%s: ref names no table" % (res["name"], f["name"]))
        if f["type"] in ("enum", "enums") and not f.get("values"):
            fail("%s.%s: an enum without values" % (res["name"], f["name"]))
        if f["type"] == "refs" and (f.get("filter") or f.get("sort") or f.get("server")):
            fail("%s.%s: a link list cannot filter, sort or be server-owned" % (res["name"], f["name"]))
        if (f["type"] == "sealed") != bool(f.get("internal")) or (f.get("secrets") and f["type"] != "object"):
            fail("%s.%s: sealed fields are internal, secrets live in objects" % (res["name"], f["name"]))
    if "id" not in seen and res.get("verbs", VERBS):
        fail("%s: no id field" % res["name"])
    for v in res.get("verbs", VERBS):
        if v not in VERBS:
            fail("%s: unknown verb %s" % (res["name"], v))
    for r in res.get("read_roles", []) + res.get("write_roles", []):
        if r not in ROLES:
            fail("%s: unknown role %s" % (res["name"], r))
    par = res.get("parent")
    if par and ("{%s}" % par["param"] not in res["path"] or par["param"] not in seen):
        fail("%s: the parent parameter must be in the path and a field" % res["name"])
    if any(not NAME.match(t) for t in res.get("reads", [])):
        fail("%s: reads names a bad table" % res["name"])
    if res.get("delete") not in (None, "archive"):
        fail("%s: unknown delete mode" % res["name"])


def links(res):
    return [f for f in res["fields"] if f["type"] == "refs"]


def link_list(f, j=None):
    """A link field's ids: from the JSON object j when it carries them (the
    statement's own inserts are not visible to its other parts), else from
    the link table."""
    lk = f["link"]
    stored = "ARRAY(SELECT l.%s FROM %s l WHERE l.%s = t.id ORDER BY 1)" % (lk["other"], lk["table"], lk["self"])
    if j is None:
        return stored
    given = "ARRAY(SELECT DISTINCT e FROM jsonb_array_elements_text(%s->'%s') e ORDER BY 1)" % (j, f["name"])
    return "CASE WHEN %s ? '%s' THEN %s ELSE %s END" % (j, f["name"], given, stored)


def obj_of(res, j=None):
    parts = []
    for f in res["fields"]:
        if f.get("hidden") or f.get("internal"):
            continue
        parts.append("'%s', %s" % (f["name"], link_list(f, j) if f["type"] == "refs" else col(f)))
    return "json_build_object(%s)" % ", ".join(parts)


def audit_cte(res, verb, k):
    """The audit event of a change whose new or removed rows are in CTE r;
    the audit parameters start at $k."""
    return ("a AS (INSERT INTO audit_events (actor, actor_type, actor_role, action, resource_type, "
            "resource_id, request_id, source_address, outcome, body_sha256) "
            "SELECT $%d, $%d, $%d, '%s.%s', '%s', r.id, $%d, $%d::inet, 'success', decode($%d, 'hex') FROM r)"
            % (k, k + 1, k + 2, res["name"], verb, res["name"], k + 3, k + 4, k + 5))


def link_ctes(res, j, update):
    """Data-modifying CTEs keeping each link table in step with the ids sent."""
    out = []
    for i, f in enumerate(links(res)):
        lk, n = f["link"], f["name"]
        ids = "(SELECT e FROM jsonb_array_elements_text(%s->'%s') e)" % (j, n)
        if update:
            out.append("ld%d AS (DELETE FROM %s l USING r WHERE %s ? '%s' AND l.%s = r.id AND l.%s NOT IN %s)"
                       % (i, lk["table"], j, n, lk["self"], lk["other"], ids))
        out.append("li%d AS (INSERT INTO %s (%s, %s) SELECT DISTINCT r.id, e FROM r, "
                   "jsonb_array_elements_text(CASE WHEN jsonb_typeof(%s->'%s') = 'array' THEN %s->'%s' "
                   "ELSE '[]' END) e ON CONFLICT DO NOTHING)"
                   % (i, lk["table"], lk["self"], lk["other"], j, n, j, n))
    return "".join(c + ", " for c in out)


def ops_of(res):
    name, table, fields = res["name"], res["table"], res["fields"]
    verbs = res.get("verbs", VERBS)
    obj = obj_of(res)
    writable = [f for f in fields if not f.get("server") and f["type"] != "refs"]
    sorts = [f["name"] for f in fields if f.get("sort")]
    filters = [f for f in fields if f.get("filter")]

    where = " AND ".join(
        ["(NOT coalesce($5::jsonb, '{}') ? '%s' OR %s = %s)" % (f["name"], col(f), value_of(f, "$5::jsonb"))
         for f in filters] + ([res["list_where"]] if res.get("list_where") else [])) or "true"
    order = ", ".join(
        "CASE WHEN $3 = '%s' AND NOT $4::boolean THEN %s END ASC, "
        "CASE WHEN $3 = '%s' AND $4::boolean THEN %s END DESC" % (s, col(f), s, col(f))
        for s in sorts for f in fields if f["name"] == s)
    order = (order + ", " if order else "") + "t.id ASC"
    # the total: $6 when the store knows it, else counted (COALESCE does
    # not evaluate the count then); OFFSET 0 keeps the planner from copying
    # the count into both places that use it (counting twice)
    lst = ("SELECT json_build_object('data', coalesce((SELECT json_agg(x.o ORDER BY x.n) FROM "
           "(SELECT %s AS o, row_number() OVER (ORDER BY %s) AS n FROM %s t WHERE %s "
           "ORDER BY %s LIMIT $2::int OFFSET ($1::int - 1) * $2::int) x), '[]'::json), "
           "'total', c.total, 'page', $1::int, 'per_page', $2::int), c.total "
           "FROM (SELECT coalesce($6::bigint, (SELECT count(*) FROM %s t WHERE %s)) AS total OFFSET 0) c"
           % (obj, order, table, where, order, table, where))
    par = res.get("parent")
    if par:
        # a list under another resource: no row (404) when that one does not exist
        lst += " WHERE EXISTS (SELECT 1 FROM %s p WHERE p.id = $5::jsonb->>'%s')" % (par["table"], par["param"])

    cols, vals = [], []
    for f in writable:
        v = value_of(f, "s.j")
        if f["name"] == "id":
            v = "coalesce(%s, cw_new_id('%s'))" % (v, res["id_prefix"])
        elif "default" in f:
            v = "coalesce(%s, %s)" % (v, f["default"])
        cols.append(f["name"])
        vals.append(v)
    create = ("WITH r AS (INSERT INTO %s AS t (%s) SELECT %s FROM (SELECT $1::jsonb AS j) s RETURNING t.*), "
              "%s%s SELECT %s FROM r t" % (table, ", ".join(cols), ", ".join(vals), link_ctes(res, "$1::jsonb", False),
                                          audit_cte(res, "create", 2), obj_of(res, "$1::jsonb")))
    sets = ", ".join("%s = CASE WHEN s.j ? '%s' THEN %s ELSE t.%s END"
                     % (f["name"], f["name"], value_of(f, "s.j"), f["name"])
                     for f in writable if f["name"] != "id")
    update = ("WITH r AS (UPDATE %s AS t SET %s FROM (SELECT $2::jsonb AS j) s WHERE t.id = $1 RETURNING t.*), "
              "%s%s SELECT %s FROM r t" % (table, sets, link_ctes(res, "$2::jsonb", True),
                                          audit_cte(res, "update", 3), obj_of(res, "$2::jsonb")))
    if res.get("delete") == "archive":
        # archiving: the row stays; archiving again is no change and no event,
        # and still answers as done (the id exists)
        delete = ("WITH r AS (UPDATE %s AS t SET status = 'Archived', archived_at = now() "
                  "WHERE t.id = $1 AND t.archived_at IS NULL RETURNING t.id), %s "
                  "SELECT json_build_object('deleted', (SELECT count(*) FROM r) + "
                  "(SELECT count(*) FROM %s WHERE id = $1 AND archived_at IS NOT NULL))"
                  % (table, audit_cte(res, "archive", 2), table))
    else:
        delete = ("WITH r AS (DELETE FROM %s WHERE id = $1 RETURNING id), %s "
                  "SELECT json_build_object('deleted', count(*)) FROM r" % (table, audit_cte(res, "delete", 2)))
    ops = {}
    if res.get("issuance"):
        # a record created with the certificate the signer just signed for
        # it: the record (Active until not_after), its first version, the
        # serial registered for the issuer, and both audit events, in one
        # statement and one commit. A, then $8 serial (hex), $9/$10
        # not_before/not_after (Unix seconds), $11 SHA-256 fingerprint (hex),
        # $12 PEM chain, $13 CSR (PEM), $14 key algorithm, $15 key size,
        # $16 the key sealed by the signer (hex) when it made the key, or NULL
        # -> {"certificate": the record, "version": the version}
        ins_cols = cols + ["status", "expires_at", "last_renewal_at"]
        ins_vals = vals + ["'Active'", "to_timestamp($10::bigint)", "now()"]
        create_issued = (
            "WITH r AS (INSERT INTO %s AS t (%s) SELECT %s FROM (SELECT $1::jsonb AS j) s RETURNING t.*), %s%s, "
            "v AS (INSERT INTO certificate_versions (certificate_id, serial_number, not_before, not_after, "
            "fingerprint_sha256, pem_chain, csr_pem, key_algorithm, key_size) SELECT r.id, $8, "
            "to_timestamp($9::bigint), to_timestamp($10::bigint), $11, $12, $13, $14, $15::int FROM r RETURNING *), "
            "sn AS (INSERT INTO issued_serials (issuer_id, serial_number, certificate_version_id) "
            "SELECT r.issuer_id, v.serial_number, v.id FROM r, v), "
            "vk AS (INSERT INTO version_keys (certificate_version_id, sealed) "
            "SELECT v.id, decode($16, 'hex') FROM v WHERE $16::text IS NOT NULL), "
            "ie AS (INSERT INTO audit_events (actor, actor_type, actor_role, action, resource_type, resource_id, "
            "request_id, source_address, outcome, body_sha256, details) SELECT $2, $3, $4, 'certificate.issued', "
            "'%s', r.id, $5, $6::inet, 'success', decode($7, 'hex'), jsonb_build_object('serial_number', "
            "v.serial_number, 'issuer_id', r.issuer_id, 'not_after', v.not_after) FROM r, v) "
            "SELECT json_build_object('certificate', %s, 'version', json_build_object('id', v.id, "
            "'certificate_id', v.certificate_id, 'serial_number', v.serial_number, 'not_before', v.not_before, "
            "'not_after', v.not_after, 'fingerprint_sha256', v.fingerprint_sha256, 'key_algorithm', "
            "v.key_algorithm, 'key_size', v.key_size, 'created_at', v.created_at)) FROM r t, v"
            % (table, ", ".join(ins_cols), ", ".join(ins_vals), link_ctes(res, "$1::jsonb", False),
               audit_cte(res, "create", 2), name, obj_of(res, "$1::jsonb")))
        ops["create_issued"] = (name + ".create_issued", 16, "ROW", create_issued)
        # a record created with an Issuance job that orders its certificate
        # from an ACME CA (docs/acme-client.md): the record Pending, the job
        # with its own CSR ($8, PEM) and, when the signer made the key, the
        # key sealed ($9 hex, or NULL), both audit events, in one statement.
        # The job waits for approval when the profile or the renewal policy
        # asks for one (migration 0019). A, then $8, $9 -> {"certificate":
        # the record, "job": {"id", "status"}}
        create_ordered = (
            "WITH r AS (INSERT INTO %s AS t (%s) SELECT %s FROM (SELECT $1::jsonb AS j) s RETURNING t.*), %s%s, "
            "jb AS (INSERT INTO jobs (type, certificate_id, status, requested_by, csr_pem, sealed_key) "
            "SELECT 'Issuance', r.id, 'Pending', $2, $8, decode($9, 'hex') FROM r RETURNING id, status), "
            "je AS (INSERT INTO audit_events (actor, actor_type, actor_role, action, resource_type, resource_id, "
            "request_id, source_address, outcome, body_sha256, details) SELECT $2, $3, $4, 'certificate.ordered', "
            "'%s', r.id, $5, $6::inet, 'success', decode($7, 'hex'), jsonb_build_object('job_id', jb.id, "
            "'issuer_id', r.issuer_id, 'server_key', $9::text IS NOT NULL) FROM r, jb) "
            "SELECT json_build_object('certificate', %s, 'job', json_build_object('id', jb.id, 'status', "
            "jb.status)) FROM r t, jb"
            % (table, ", ".join(cols), ", ".join(vals), link_ctes(res, "$1::jsonb", False),
               audit_cte(res, "create", 2), name, obj_of(res, "$1::jsonb")))
        ops["create_ordered"] = (name + ".create_ordered", 9, "ROW", create_ordered)
    ops.update({
        "list": (name + ".list", 5, "LIST", lst),
        "get": (name + ".get", 1, "ROW", "SELECT %s FROM %s t WHERE t.id = $1" % (obj, table)),
        "create": (name + ".create", 7, "ROW", create),
        "update": (name + ".update", 8, "ROW", update),
        "delete": (name + ".delete", 7, "VALUE", delete),
    })
    # what a cached result comes from: a list under another resource also
    # answers whether that one exists
    reads = " ".join(res.get("reads", [table]) + [f["link"]["table"] for f in links(res)] +
                     ([par["table"]] if par else []))
    # what a create or an update writes: its table, its link tables and the
    # audit trail (no trigger writes elsewhere on insert or update; a
    # delete may cascade, so it counts as writing everything)
    writes = " ".join([table] + [f["link"]["table"] for f in links(res)] + ["audit_events", "audit_chain_head"])
    kind = {"list": ("R", reads), "get": ("R", reads), "create": ("W", writes), "update": ("W", writes)}
    out = [ops[v] + kind.get(v, ("O", None)) for v in VERBS if v in verbs]
    if "create_issued" in ops:
        out.append(ops["create_issued"] + ("W", writes + " certificate_versions issued_serials version_keys"))
        out.append(ops["create_ordered"] + ("W", writes + " jobs approval_requests"))
    # audit.failure_mode fail_open: the same change without its event, for
    # when the event cannot be written (rest.c retries with these, counted
    # and logged)
    for v in ("create", "update", "delete"):
        if v in verbs:
            op, n, result, sql = ops[v]
            out.append((op + "_unaudited", n, result, without_audit(sql, n)) + kind.get(v, ("O", None)))
    return out


def without_audit(sql, nparams):
    """sql without its audit CTE. The audit parameters stay, in a condition
    that always holds: PostgreSQL must see every parameter to type it, and
    both forms take the same parameters."""
    start = sql.index(", a AS (INSERT INTO audit_events")
    depth, i = 0, sql.index("(", start)
    while True:
        depth += {"(": 1, ")": -1}.get(sql[i], 0)
        i += 1
        if depth == 0:
            break
    body = sql[:start] + sql[i:]
    if not body.startswith("WITH "):
        fail("without_audit: not a WITH statement")
    cond = " AND ".join("($%d::text IS NULL OR true)" % k for k in range(nparams - 5, nparams + 1))
    return "WITH u AS (SELECT %s AS ok), %s" % (cond, body[len("WITH "):])


FT = {"id": "FT_ID", "string": "FT_STRING", "ref": "FT_REF", "int": "FT_INT", "bool": "FT_BOOL",
      "timestamp": "FT_TIMESTAMP", "object": "FT_OBJECT", "strings": "FT_STRINGS", "ints": "FT_INTS",
      "enum": "FT_ENUM", "enums": "FT_ENUMS", "map": "FT_MAP", "key_rules": "FT_KEY_RULES",
      "inet": "FT_INET", "cidr": "FT_CIDR", "refs": "FT_REFS", "sealed": "FT_SEALED"}
FF = {None: "FF_NONE", "email": "FF_EMAIL", "dns": "FF_DNS", "dns_wildcard": "FF_DNS_WILDCARD", "san": "FF_SAN",
      "ip": "FF_IP"}


def mask(names, default):
    return sum(1 << ROLES.index(r) for r in (names if names is not None else default))


def write_catalogue(out, resources):
    out.write("/* generated by schema/gen_resources.py from schema/resources.json: do not edit */\n"
              "#include \"resource.h\"\n\n")
    for res in resources:
        out.write("static const struct field_def fields_%s[] = {\n" % res["name"])
        for f in res["fields"]:
            if f.get("format") not in FF:
                fail("%s.%s: unknown format" % (res["name"], f["name"]))
            flags = [flag for key, flag in (("required", "FIELD_REQUIRED"), ("server", "FIELD_SERVER"),
                                            ("filter", "FIELD_FILTER"), ("sort", "FIELD_SORT"),
                                            ("hidden", "FIELD_HIDDEN"), ("internal", "FIELD_INTERNAL"),
                                            ("secrets", "FIELD_SECRETS")) if f.get(key)]
            if "default" in f or f["type"] == "id":
                flags.append("FIELD_NOT_NULL")
            values = c_string("|".join(f["values"])) if f.get("values") else "NULL"
            out.write("\t{%s, %s, %s, %s, %dLL, %dLL, %s},\n" % (
                c_string(f["name"]), FT[f["type"]], FF[f.get("format")], " | ".join(flags) or "0",
                f.get("min", 0), f.get("max", 0), values))
        out.write("};\n\n")
    out.write("const struct resource_def resource_catalogue[] = {\n")
    for res in resources:
        verbs = sum(1 << VERBS.index(v) for v in res.get("verbs", VERBS))
        out.write("\t{%s, %s, fields_%s, sizeof fields_%s / sizeof fields_%s[0], %#xu, %#xu, %#xu},\n" % (
            c_string(res["name"]), c_string(res["path"]), res["name"], res["name"], res["name"], verbs,
            mask(res.get("read_roles"), ["admin", "operator", "viewer"]), mask(res.get("write_roles"), ["admin"])))
    out.write("};\n\nconst size_t resource_catalogue_len = sizeof resource_catalogue / sizeof resource_catalogue[0];\n")


def c_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    if len(sys.argv) != 5:
        fail("usage: gen_resources.py resources.json OUT.def OUT.json OUT.c")
    with open(sys.argv[1]) as f:
        cat = json.load(f)
    by_name = {r["name"]: r for r in cat["resources"]}
    for res in cat["resources"]:
        resolve(res, by_name)
    ops = []
    for res in cat["resources"]:
        check(res)
        ops += ops_of(res)
    with open(sys.argv[2], "w") as out:
        out.write("/* generated by schema/gen_resources.py from schema/resources.json: do not edit */\n")
        for name, n, result, sql, kind, tables in ops:
            if kind == "R":
                out.write("STORE_READ(%s, R(API), %d, %s, %s,\n\t %s)\n"
                          % (c_string(name), n, result, c_string(tables), c_string(sql)))
            elif kind == "W":
                out.write("STORE_WRITE(%s, R(API), %d, %s, %s,\n\t %s)\n"
                          % (c_string(name), n, result, c_string(tables), c_string(sql)))
            else:
                out.write("STORE_OP(%s, R(API), %d, %s,\n\t %s)\n" % (c_string(name), n, result, c_string(sql)))
    with open(sys.argv[3], "w") as out:
        json.dump([{"name": o[0], "nparams": o[1], "result": o[2], "sql": o[3],
                    "reads": o[5] if o[4] == "R" else None, "writes": o[5] if o[4] == "W" else None} for o in ops],
                  out, indent=1)
    with open(sys.argv[4], "w") as out:
        write_catalogue(out, cat["resources"])


main()
