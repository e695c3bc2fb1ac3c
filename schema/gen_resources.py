#!/usr/bin/env python3
"""Generates the store operations of the REST resources from
schema/resources.json:

    gen_resources.py resources.json OUT.def OUT.json OUT.c

OUT.def   STORE_OP lines (see schema/store_ops.def), included at its end
OUT.json  the same operations as data, for the integration tests
OUT.c     the catalogue as C data for the api's checks (lib/resource.h)

Per resource R (table T), all called by the api only:

    R.list    $1 page, $2 per_page, $3 sort field or NULL, $4 descending
              ('true'/'false'), $5 filters as a JSON object or NULL
              -> {"data": [...], "total": n, "page": p, "per_page": pp}
    R.get     $1 id -> the object, or no row
    R.create  $1 the fields as a JSON object, then the audit parameters
              A = actor, actor type, actor role, request id, source
              address, SHA-256 of the request body (hex) -> the new object
    R.update  $1 id, $2 the fields to change as a JSON object, then A ->
              the object, or no row (fields absent from $2 keep their value)
    R.delete  $1 id, then A -> {"deleted": rows}

A change and its audit event are one statement (a data-modifying CTE): one
is never stored without the other.

Values travel as one bound JSON parameter, never spliced into SQL; the api
checks them against the same catalogue before calling. Sort keys are
matched against a fixed list inside the statement.
"""
import json
import re
import sys

TYPES = {"id", "string", "ref", "int", "bool", "timestamp", "object", "strings", "ints"}
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def fail(msg):
    sys.exit("gen_resources.py: " + msg)


def value_of(f, j):
    """SQL for field f's value in the JSON object j."""
    n, t = f["name"], f["type"]
    if t in ("id", "string", "ref"):
        return "(%s->>'%s')" % (j, n)
    if t == "int":
        return "(%s->>'%s')::bigint" % (j, n)
    if t == "bool":
        return "(%s->>'%s')::boolean" % (j, n)
    if t == "timestamp":
        return "(%s->>'%s')::timestamptz" % (j, n)
    if t == "object":
        return "(%s->'%s')" % (j, n)
    elem = "jsonb_array_elements_text(%s->'%s')" % (j, n)
    if t == "ints":
        elem = "(SELECT e::integer FROM %s e)" % elem
    return "CASE WHEN %s ? '%s' AND jsonb_typeof(%s->'%s') = 'array' THEN ARRAY(%s) END" % (
        j, n, j, n, elem if t == "ints" else "SELECT " + elem)


def check(res, names):
    if not NAME.match(res["name"]) or not NAME.match(res["table"]):
        fail("%s: bad resource or table name" % res["name"])
    seen = set()
    for f in res["fields"]:
        if not NAME.match(f["name"]) or f["name"] in seen:
            fail("%s.%s: bad or repeated field name" % (res["name"], f["name"]))
        seen.add(f["name"])
        if f["type"] not in TYPES:
            fail("%s.%s: unknown type %s" % (res["name"], f["name"], f["type"]))
        if f["type"] == "ref" and not NAME.match(f.get("ref", "")):
            fail("%s.%s: ref names no table" % (res["name"], f["name"]))
    if "id" not in seen:
        fail("%s: no id field" % res["name"])


def audit_cte(res, verb, k):
    """The audit event of a change whose new or removed rows are in CTE r;
    the audit parameters start at $k."""
    return ("a AS (INSERT INTO audit_events (actor, actor_type, actor_role, action, resource_type, "
            "resource_id, request_id, source_address, outcome, body_sha256) "
            "SELECT $%d, $%d, $%d, '%s.%s', '%s', r.id, $%d, $%d::inet, 'success', decode($%d, 'hex') FROM r)"
            % (k, k + 1, k + 2, res["name"], verb, res["name"], k + 3, k + 4, k + 5))


def ops_of(res):
    name, table, fields = res["name"], res["table"], res["fields"]
    obj = "json_build_object(%s)" % ", ".join("'%s', t.%s" % (f["name"], f["name"]) for f in fields)
    writable = [f for f in fields if not f.get("server")]
    sorts = [f["name"] for f in fields if f.get("sort")]
    filters = [f for f in fields if f.get("filter")]

    where = " AND ".join(
        "(NOT coalesce($5::jsonb, '{}') ? '%s' OR t.%s = %s)" % (f["name"], f["name"], value_of(f, "$5::jsonb"))
        for f in filters) or "true"
    order = ", ".join(
        "CASE WHEN $3 = '%s' AND NOT $4::boolean THEN t.%s END ASC, "
        "CASE WHEN $3 = '%s' AND $4::boolean THEN t.%s END DESC" % (s, s, s, s) for s in sorts)
    order = (order + ", " if order else "") + "t.id ASC"
    lst = ("SELECT json_build_object('data', coalesce((SELECT json_agg(x.o ORDER BY x.n) FROM "
           "(SELECT %s AS o, row_number() OVER (ORDER BY %s) AS n FROM %s t WHERE %s "
           "ORDER BY %s LIMIT $2::int OFFSET ($1::int - 1) * $2::int) x), '[]'::json), "
           "'total', (SELECT count(*) FROM %s t WHERE %s), 'page', $1::int, 'per_page', $2::int)"
           % (obj, order, table, where, order, table, where))

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
              "%s SELECT %s FROM r t" % (table, ", ".join(cols), ", ".join(vals), audit_cte(res, "create", 2), obj))
    sets = ", ".join("%s = CASE WHEN s.j ? '%s' THEN %s ELSE t.%s END"
                     % (f["name"], f["name"], value_of(f, "s.j"), f["name"])
                     for f in writable if f["name"] != "id")
    update = ("WITH r AS (UPDATE %s AS t SET %s FROM (SELECT $2::jsonb AS j) s WHERE t.id = $1 RETURNING t.*), "
              "%s SELECT %s FROM r t" % (table, sets, audit_cte(res, "update", 3), obj))
    delete = ("WITH r AS (DELETE FROM %s WHERE id = $1 RETURNING id), %s "
              "SELECT json_build_object('deleted', count(*)) FROM r" % (table, audit_cte(res, "delete", 2)))
    return [
        (name + ".list", 5, "VALUE", lst),
        (name + ".get", 1, "ROW", "SELECT %s FROM %s t WHERE t.id = $1" % (obj, table)),
        (name + ".create", 7, "ROW", create),
        (name + ".update", 8, "ROW", update),
        (name + ".delete", 7, "VALUE", delete),
    ]


FT = {"id": "FT_ID", "string": "FT_STRING", "ref": "FT_REF", "int": "FT_INT", "bool": "FT_BOOL",
      "timestamp": "FT_TIMESTAMP", "object": "FT_OBJECT", "strings": "FT_STRINGS", "ints": "FT_INTS"}
FF = {None: "FF_NONE", "email": "FF_EMAIL", "dns": "FF_DNS", "dns_wildcard": "FF_DNS_WILDCARD"}


def write_catalogue(out, resources):
    out.write("/* generated by schema/gen_resources.py from schema/resources.json: do not edit */\n"
              "#include \"resource.h\"\n\n")
    for res in resources:
        out.write("static const struct field_def fields_%s[] = {\n" % res["name"])
        for f in res["fields"]:
            if f.get("format") not in FF:
                fail("%s.%s: unknown format" % (res["name"], f["name"]))
            flags = [flag for key, flag in (("required", "FIELD_REQUIRED"), ("server", "FIELD_SERVER"),
                                            ("filter", "FIELD_FILTER"), ("sort", "FIELD_SORT")) if f.get(key)]
            if "default" in f or f["type"] == "id":
                flags.append("FIELD_NOT_NULL")
            out.write("\t{%s, %s, %s, %s, %dLL, %dLL},\n" % (
                c_string(f["name"]), FT[f["type"]], FF[f.get("format")], " | ".join(flags) or "0",
                f.get("min", 0), f.get("max", 0)))
        out.write("};\n\n")
    out.write("const struct resource_def resource_catalogue[] = {\n")
    for res in resources:
        out.write("\t{%s, %s, fields_%s, sizeof fields_%s / sizeof fields_%s[0]},\n" % (
            c_string(res["name"]), c_string(res["path"]), res["name"], res["name"], res["name"]))
    out.write("};\n\nconst size_t resource_catalogue_len = sizeof resource_catalogue / sizeof resource_catalogue[0];\n")


def c_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    if len(sys.argv) != 5:
        fail("usage: gen_resources.py resources.json OUT.def OUT.json OUT.c")
    with open(sys.argv[1]) as f:
        cat = json.load(f)
    names = {r["name"] for r in cat["resources"]}
    ops = []
    for res in cat["resources"]:
        check(res, names)
        ops += ops_of(res)
    with open(sys.argv[2], "w") as out:
        out.write("/* generated by schema/gen_resources.py from schema/resources.json: do not edit */\n")
        for name, n, result, sql in ops:
            out.write("STORE_OP(%s, R(API), %d, %s,\n\t %s)\n" % (c_string(name), n, result, c_string(sql)))
    with open(sys.argv[3], "w") as out:
        json.dump([{"name": o[0], "nparams": o[1], "result": o[2], "sql": o[3]} for o in ops], out, indent=1)
    with open(sys.argv[4], "w") as out:
        write_catalogue(out, cat["resources"])


main()
