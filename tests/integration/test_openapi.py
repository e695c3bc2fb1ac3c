"""schema/openapi.yaml against what certward serves and what it promises:

- the routes: every (method, path) of the api's route table (`certward-api
  --list-routes`) is in the document and every operation of the document is
  in the route table, with the same roles (`x-certward-roles`); each documented operation, asked over HTTPS with the
  admin key (ids that do not exist, bodies that are invalid, so nothing is
  written), is answered by its handler and not by the router's "no such
  route" or "method not allowed", with a status, media type and body the
  document gives for it; without a key, the operations that need one answer
  401 and the others do not; one record of each catalogued resource, made,
  read, listed and deleted, is answered as documented; an agent enrolled
  through the API reaches its own routes with its identity certificate
  (another agent's id: 403, an agent's API key: 401 on the routes for
  agents alone, a retired agent: 410), and a job goes through them from
  renew to its reported outcome, every answer as documented;
- the catalogue: every field of every resource of schema/resources.json is
  in the resource's schema here, with its type, bounds and read-only flag;
  the create body requires what the catalogue requires; the list takes the
  catalogue's filters and sort keys;
- the contract: which operations of the reference (certctl's OpenAPI
  description) certward serves, by the reference's tags, and which of the
  reference's response properties the served ones lack. The printed coverage
  must equal the block between the coverage markers of docs/api.md;
  `python3 tests/integration/test_openapi.py --write-coverage` rewrites that
  block (no build or server needed).

Served operations, for the contract, are those of schema/openapi.yaml: the
route check keeps them equal to the route table."""
import difflib
import http.client
import json
import os
import re
import ssl
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("CERTWARD_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
OURS = os.path.join(SRC, "schema", "openapi.yaml")
CATALOGUE = os.path.join(SRC, "schema", "resources.json")
DOCS = os.path.join(SRC, "docs", "api.md")
REFERENCE = os.environ.get("CERTWARD_REFERENCE_OPENAPI") or os.path.normpath(
    os.path.join(SRC, "..", "shared", "reference", "certctl-openapi.yaml"))
BEGIN, END = "<!-- coverage:begin -->", "<!-- coverage:end -->"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# the router's own answers (workers/api): a path it does not know, a method it
# does not route on a known path
ROUTER_DETAILS = {404: "no such route", 405: "method not allowed on this route"}
MISSING_ID = "openapi-probe-no-such-id"


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def load_reference():
    if not os.path.exists(REFERENCE):
        sys.exit("the reference is not at %s (set CERTWARD_REFERENCE_OPENAPI)" % REFERENCE)
    return load_yaml(REFERENCE)


def norm(path):
    """A path with its parameters unnamed: /a/{id}/b/{job_id} -> /a/{}/b/{}."""
    return re.sub(r"\{[^}/]*\}", "{}", path)


def operations(doc):
    """{(METHOD, normalized path): (path, operation)} of an OpenAPI document."""
    ops = {}
    for path, item in doc.get("paths", {}).items():
        for m, o in item.items():
            if m in METHODS:
                ops[(m.upper(), norm(path))] = (path, o)
    return ops


def resolve(doc, node, seen=None):
    """node with $ref followed (None when the reference points nowhere)."""
    seen = seen or set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if ref in seen or not ref.startswith("#/"):
            return None
        seen.add(ref)
        cur = doc
        for part in ref[2:].split("/"):
            cur = cur.get(part) if isinstance(cur, dict) else None
            if cur is None:
                return None
        node = cur
    return node


def flat(doc, schema, depth=0):
    """A schema with $ref, allOf and a nullable oneOf/anyOf merged into one
    dict (properties and required united, other keywords: first wins)."""
    schema = resolve(doc, schema)
    if not isinstance(schema, dict) or depth > 8:
        return {}
    out = {k: v for k, v in schema.items() if k not in ("allOf", "oneOf", "anyOf", "properties", "required")}
    props = dict(schema.get("properties", {}))
    required = set(schema.get("required", []))
    parts = list(schema.get("allOf", []))
    alts = [a for a in schema.get("oneOf", []) + schema.get("anyOf", []) if resolve(doc, a) != {"type": "null"}]
    if len(alts) == 1:
        parts.append(alts[0])
        if len(schema.get("oneOf", []) + schema.get("anyOf", [])) > 1:
            out["nullable"] = True
    for part in parts:
        sub = flat(doc, part, depth + 1)
        for k, v in sub.items():
            if k == "properties":
                for pk, pv in v.items():
                    props.setdefault(pk, pv)
            elif k == "required":
                required |= set(v)
            else:
                out.setdefault(k, v)
    if props:
        out["properties"] = props
    if required:
        out["required"] = sorted(required)
    return out


def types_of(s):
    t = s.get("type")
    types = set(t) if isinstance(t, list) else {t} if t else set()
    if s.get("nullable"):
        types.add("null")
    return types


def property_names(doc, schema, prefix="", depth=0):
    """Every property name of a response schema, nested objects as a.b and
    arrays of objects as a[].b."""
    s = flat(doc, schema)
    names = set()
    if depth > 3:
        return names
    for name, sub in s.get("properties", {}).items():
        names.add(prefix + name)
        fs = flat(doc, sub)
        if "array" in types_of(fs) and fs.get("items"):
            names |= property_names(doc, fs["items"], prefix + name + "[].", depth + 1)
        elif fs.get("properties"):
            names |= property_names(doc, fs, prefix + name + ".", depth + 1)
    return names


def success_schema(doc, op, prefer=None):
    """The JSON schema of the 2xx response `prefer` (a status) when it has
    one, else of the first 2xx response that has one, or None."""
    codes = sorted(op.get("responses", {}), key=lambda c: (str(c) != str(prefer), str(c)))
    for code in codes:
        if str(code).startswith("2"):
            resp = resolve(doc, op["responses"][code]) or {}
            for ctype, media in (resp.get("content") or {}).items():
                if "json" in ctype and media.get("schema"):
                    return media["schema"]
    return None


# ---- (b) the catalogue ----

VERBS = ["list", "get", "create", "update", "delete"]


def catalogue_resources(catalogue):
    """The catalogue's resources with borrowed fields filled in (a "fields"
    that names another resource, or a name among the fields) and verbs."""
    by_name = {r["name"]: r for r in catalogue["resources"]}
    out = []
    for res in catalogue["resources"]:
        spec = [res["fields"]] if isinstance(res["fields"], str) else res["fields"]
        fields = []
        for f in spec:
            fields += by_name[f]["fields"] if isinstance(f, str) else [f]
        out.append(dict(res, fields=fields, verbs=res.get("verbs", VERBS)))
    return out


def resource_schema(doc, ops, res):
    """The documented schema of one of res's records: GET item's answer, or
    the items of its list; for a resource without verbs (a request body
    only), the body of POST at its path."""
    if not res["verbs"]:
        post = ops.get(("POST", norm(res["path"])))
        body = (post[1].get("requestBody") or {}) if post else {}
        return body.get("content", {}).get("application/json", {}).get("schema")
    item = ops.get(("GET", norm(res["path"] + "/{id}")))
    if item and "get" in res["verbs"]:
        return success_schema(doc, item[1])
    lst = ops.get(("GET", norm(res["path"])))
    schema = success_schema(doc, lst[1]) if lst else None
    data = flat(doc, schema or {}).get("properties", {}).get("data")
    return flat(doc, data).get("items") if data else None


def catalogue_problems(ours, catalogue):
    problems = []
    ops = operations(ours)
    for res in catalogue_resources(catalogue):
        name, path = res["name"], res["path"]
        schema = resource_schema(ours, ops, res)
        if not schema:
            problems.append("%s: no record schema at GET %s" % (name, path))
            continue
        props = flat(ours, schema).get("properties", {})
        for f in res["fields"]:
            where = "%s.%s" % (name, f["name"])
            if f.get("hidden") or f.get("internal"):
                if f["name"] in props:
                    problems.append("%s: never shown, yet documented" % where)
            elif f["name"] not in props:
                problems.append("%s: not in the record schema of %s" % (where, path))
            else:
                problems += field_problems(ours, where, f, flat(ours, props[f["name"]]),
                                           writable=not res["verbs"] or "create" in res["verbs"]
                                           or "update" in res["verbs"])
        post = ops.get(("POST", norm(path)))
        if post and "create" in res["verbs"]:
            body = (post[1].get("requestBody") or {}).get("content", {}).get("application/json", {})
            req = set(flat(ours, body.get("schema", {})).get("required", []))
            want = {f["name"] for f in res["fields"] if f.get("required")}
            if req != want:
                problems.append("%s: POST %s requires %s, the catalogue %s" % (name, path, sorted(req), sorted(want)))
        lst = ops.get(("GET", norm(path)))
        if lst and "list" in res["verbs"]:
            params = {}
            for p in lst[1].get("parameters", []):
                p = resolve(ours, p)
                if p.get("in") == "query":
                    params[p["name"]] = p
            filters = {f["name"] for f in res["fields"] if f.get("filter") and not f.get("hidden")}
            got = set(params) - {"page", "per_page", "sort"}
            if got != filters:
                problems.append("%s: GET %s filters %s, the catalogue %s" % (name, path, sorted(got), sorted(filters)))
            sorts = [f["name"] for f in res["fields"] if f.get("sort")]
            want = {k for s in sorts for k in (s, "-" + s)}
            have = set(flat(ours, params.get("sort", {}).get("schema", {})).get("enum", []))
            if have != want:
                problems.append("%s: GET %s sort keys %s, the catalogue %s" % (name, path, sorted(have), sorted(want)))
    return problems


# catalogue type -> JSON type, and for arrays the items' type
TYPE_OF = {"id": "string", "string": "string", "ref": "string", "int": "integer", "bool": "boolean",
           "timestamp": "string", "object": "object", "map": "object", "enum": "string", "inet": "string",
           "cidr": "string", "strings": "array", "ints": "array", "enums": "array", "refs": "array",
           "key_rules": "array"}
ITEMS_OF = {"strings": "string", "ints": "integer", "enums": "string", "refs": "string", "key_rules": "object"}


def field_problems(doc, where, f, s, writable=True):
    """How field f's documentation s differs from the catalogue; read-only
    flags and input bounds only for a resource that takes bodies."""
    problems = []
    t, types = f["type"], types_of(s)
    if TYPE_OF[t] not in types:
        problems.append("%s: type %s, the catalogue %s" % (where, sorted(types), t))
    if t == "timestamp" and s.get("format") != "date-time":
        problems.append("%s: a timestamp without format date-time" % where)
    if t == "map" and types_of(flat(doc, s.get("additionalProperties") or {})) != {"string"}:
        problems.append("%s: a map whose values are not strings" % where)
    bounds = s
    if t in ITEMS_OF:
        bounds = flat(doc, s.get("items", {}))
        if ITEMS_OF[t] not in types_of(bounds):
            problems.append("%s: items are not %ss" % (where, ITEMS_OF[t]))
    if writable and bool(f.get("server")) != bool(s.get("readOnly")):
        problems.append("%s: readOnly %s, the catalogue's server flag %s" % (where, bool(s.get("readOnly")),
                                                                             bool(f.get("server"))))
    if f.get("format") == "email" and s.get("format") != "email":
        problems.append("%s: an e-mail address without format email" % where)
    if "values" in f and set(bounds.get("enum", [])) - {None} != set(f["values"]):
        problems.append("%s: enum %s, the catalogue %s" % (where, bounds.get("enum"), f["values"]))
    keys = ("minLength", "maxLength") if t in ("id", "string", "ref", "strings") else \
        ("minimum", "maximum") if t in ("int", "ints") else ()
    for key, cat in zip(keys, ("min", "max")):
        if writable and cat in f and bounds.get(key) != f[cat]:
            problems.append("%s: %s %s, the catalogue's %s %s" % (where, key, bounds.get(key), cat, f[cat]))
    return problems


# ---- (c) the contract ----

def coverage(ref, ours):
    """The coverage block of docs/api.md, as markdown."""
    ours_ops = operations(ours)
    groups, order = {}, [t["name"] for t in ref.get("tags", [])]
    for (method, npath), (path, op) in operations(ref).items():
        tag = (op.get("tags") or ["(untagged)"])[0]
        if tag not in order:
            order.append(tag)
        lacking = ""
        mine = ours_ops.get((method, npath))
        if mine:
            theirs = success_schema(ref, op)
            first = next((c for c in sorted(op.get("responses", {})) if str(c).startswith("2")), None)
            have = property_names(ours, success_schema(ours, mine[1], first) or {})
            want = property_names(ref, theirs) if theirs else set()
            lacking = ", ".join("`%s`" % n for n in sorted(want - have))
        groups.setdefault(tag, []).append((path, method, bool(mine), lacking))
    total = sum(len(v) for v in groups.values())
    served = sum(1 for v in groups.values() for r in v if r[2])
    lines = ["certward serves %d of %d reference operations." % (served, total), ""]
    for tag in order:
        rows = groups.get(tag)
        if not rows:
            continue
        lines += ["**%s**: %d of %d" % (tag, sum(1 for r in rows if r[2]), len(rows)), "",
                  "| operation | served | reference response properties it lacks |", "| --- | --- | --- |"]
        for path, method, ok, lacking in rows:
            lines.append("| `%s %s` | %s | %s |" % (method, path, "yes" if ok else "no", lacking))
        lines.append("")
    own = sorted((path, method) for (method, npath), (path, _) in ours_ops.items()
                 if (method, npath) not in operations(ref))
    if own:
        lines += ["**certward's own** (not in the reference): %d" % len(own), ""]
        lines += ["- `%s %s`" % (method, path) for path, method in own]
    return "\n".join(lines).rstrip("\n")


def docs_block(text):
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise AssertionError("docs/api.md needs one %s ... %s block" % (BEGIN, END))
    return text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip("\n")


def write_coverage():
    reference = load_reference()
    with open(DOCS) as f:
        text = f.read()
    docs_block(text)
    block = coverage(reference, load_yaml(OURS))
    new = text[:text.index(BEGIN) + len(BEGIN)] + "\n" + block + "\n" + text[text.index(END):]
    with open(DOCS, "w") as f:
        f.write(new)
    print(block.splitlines()[0])


# ---- (a) the routes ----

def served_routes(build):
    """{(METHOD, normalized path): roles} of the api's route table; roles is
    a set of role names, empty for a route that needs no key."""
    out = subprocess.run([os.path.join(build, "certward-api"), "--list-routes"], capture_output=True,
                         text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError("certward-api --list-routes failed (%d): %s" % (out.returncode, out.stderr.strip()))
    routes = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 3 or not parts[1].startswith("/") or parts[0].upper() != parts[0]:
            raise AssertionError("route table line not understood: %r" % line)
        roles = set() if parts[2] == "public" else {r.replace("(own)", "") for r in parts[2].split(",")}
        routes[(parts[0], norm(parts[1]))] = roles
    if not routes:
        raise AssertionError("certward-api --list-routes listed nothing")
    return routes


def answer_problems(doc, op, status, ctype, answer):
    """How an answer differs from what the document says of the operation:
    an undocumented status, another media type, a body outside the schema
    (checked when jsonschema is installed)."""
    resp = resolve(doc, op.get("responses", {}).get(str(status)))
    if resp is None:
        return ["status %d is not documented" % status]
    content = resp.get("content") or {}
    if not content:
        return []
    base = ctype.split(";")[0].strip()
    media = next((m for t, m in content.items() if t.split(";")[0].strip() == base), None)
    if media is None:
        return ["answered %s, documented %s" % (ctype or "no content type", ", ".join(content))]
    if "json" not in base or not media.get("schema"):
        return []
    try:
        import jsonschema
    except ImportError:
        return []
    schema = {"allOf": [media["schema"]], "components": doc.get("components", {})}
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(answer), key=str)
    return ["the body is not as documented: %s" % errors[0].message] if errors else []


def sample_value(doc, f, prop, created):
    """A valid value of catalogue field f (documented as prop) for a create,
    or KeyError when it refers to a record not made yet."""
    s, t = flat(doc, prop), f["type"]
    enum = [v for v in s.get("enum", []) if v is not None]
    if enum:
        return enum[0]
    if t == "ref":
        return created[f["ref"]]
    if t in ("id", "string"):
        v = {"email": "probe@example.com", "dns": "probe.example.com",
             "dns_wildcard": "probe.example.com"}.get(f.get("format"), "openapi-probe-" + f["name"])
        return v[:f.get("max", len(v))].ljust(f.get("min", 0), "x")
    return {"int": f.get("min", 1), "bool": True, "object": {}, "map": {}, "inet": "192.0.2.1",
            "cidr": "192.0.2.0/24"}.get(t, [])


def probe_target(path, op):
    """The path with ids that do not exist, and a body that is invalid."""
    def value(m):
        return "999999999999" if path.startswith("/api/v1/audit/") else MISSING_ID
    url = re.sub(r"\{[^}/]*\}", value, path)
    body = None
    if op.get("requestBody") is not None:
        body = json.dumps({"openapi_probe_unknown_member": True})
    return url, body


def main():
    if sys.argv[1:] == ["--write-coverage"]:
        write_coverage()
        return
    if sys.argv[1:]:
        sys.exit("usage: test_openapi.py [--write-coverage]")

    sys.path.insert(0, HERE)
    from harness import (BUILD, Api, Cases, Certward, Postgres, agent_token, check, enrol_agent, free_port, log,
                         make_csr, make_key, make_root, teardown, wait_for)

    # the reference lives beside the repository (../shared/reference), not
    # in it: without it the contract is not checked, and the run says so
    ours = load_yaml(OURS)
    ref = load_yaml(REFERENCE) if os.path.exists(REFERENCE) else None
    with open(CATALOGUE) as f:
        catalogue = json.load(f)
    state = {"cw": None, "pg": None}
    run = Cases(lambda: state["cw"])

    def document_is_sound():
        check(str(ours.get("openapi", "")).startswith("3.1"), "not an OpenAPI 3.1 document")
        problems = []
        for (method, npath), (path, op) in operations(ours).items():
            where = "%s %s" % (method, path)
            roles = op.get("x-certward-roles")
            if not isinstance(roles, list) or not set(roles) <= {"admin", "operator", "viewer", "agent"}:
                problems.append("%s: x-certward-roles %r" % (where, roles))
            elif op.get("security", ours.get("security")):
                if not roles:
                    problems.append("%s: needs a key, yet names no role" % where)
            elif roles:
                problems.append("%s: needs no key, yet names roles" % where)
            for code, resp in op.get("responses", {}).items():
                if resolve(ours, resp) is None:
                    problems.append("%s %s: a $ref that points nowhere" % (where, code))
            for p in op.get("parameters", []):
                if resolve(ours, p) is None:
                    problems.append("%s: a parameter $ref that points nowhere" % where)
            params = {resolve(ours, p).get("name") for p in op.get("parameters", []) if resolve(ours, p)}
            for name in re.findall(r"\{([^}/]*)\}", path):
                if name not in params:
                    problems.append("%s: path parameter %s is not described" % (where, name))
        try:  # a full check when the validator is installed
            from openapi_spec_validator import validate
        except ImportError:
            validate = None
        if validate:
            try:
                validate(ours)
            except Exception as e:  # noqa: BLE001 - any finding is a failure
                problems.append("openapi-spec-validator: %s" % str(e).splitlines()[0])
        check(not problems, "\n  ".join(["schema/openapi.yaml:"] + problems))

    def every_catalogue_field_documented():
        problems = catalogue_problems(ours, catalogue)
        check(not problems, "\n  ".join(["schema/openapi.yaml against schema/resources.json:"] + problems))

    def coverage_in_docs():
        if ref is None:
            log("SKIP the contract: the reference is not at %s (set CERTWARD_REFERENCE_OPENAPI)" % REFERENCE)
            return
        block = coverage(ref, ours)
        print(block)
        with open(DOCS) as f:
            have = docs_block(f.read())
        if have != block:
            diff = "\n".join(difflib.unified_diff(have.splitlines(), block.splitlines(), "docs/api.md",
                                                  "printed", lineterm="", n=1))
            raise AssertionError("the coverage in docs/api.md is not current (python3 "
                                 "tests/integration/test_openapi.py --write-coverage):\n" + diff)

    def routes_match_document():
        served = served_routes(BUILD)
        documented = operations(ours)
        problems = ["served, not in schema/openapi.yaml: %s %s" % r for r in sorted(set(served) - set(documented))]
        problems += ["in schema/openapi.yaml, not served: %s %s" % r for r in sorted(set(documented) - set(served))]
        for key in sorted(set(served) & set(documented)):
            roles = set(documented[key][1].get("x-certward-roles") or [])
            if roles != served[key]:
                problems.append("%s %s: x-certward-roles %s, the route table %s"
                                % (key[0], documented[key][0], sorted(roles), sorted(served[key]) or "public"))
        log("%d routes served, %d operations documented" % (len(served), len(documented)))
        check(not problems, "\n  ".join(["routes:"] + problems))

    def request(conn, method, url, key=None, body=None):
        headers = {"Host": "127.0.0.1"}
        if key:
            headers["Authorization"] = "Bearer " + key
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, url, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        return r.status, r.getheader("Content-Type", ""), parsed

    def router_answer(status, ctype, body):
        return (status in ROUTER_DETAILS and "problem+json" in ctype and isinstance(body, dict)
                and body.get("detail") == ROUTER_DETAILS[status])

    def connect():
        """A keep-alive HTTPS connection to the api and the bootstrap admin key."""
        cw = state["cw"]
        keyfile = os.path.join(cw.state, "admin-api-key")
        wait_for("bootstrap admin key", lambda: os.path.exists(keyfile), timeout=60)
        with open(keyfile) as f:
            admin = f.read().strip()
        ctx = ssl.create_default_context(cafile=os.path.join(cw.state, "tls", "api.crt"))
        ctx.check_hostname = False
        return http.client.HTTPSConnection("127.0.0.1", cw.api_port, context=ctx, timeout=30), admin

    def every_operation_reaches_its_handler():
        conn, admin = connect()
        wait_for("ready", lambda: request(conn, "GET", "/ready")[0] == 200, timeout=60)
        problems = []
        # the router's own answers look as this test expects
        for method, url in (("GET", "/api/v1/openapi-probe-no-such-collection"), ("PATCH", "/api/v1/teams")):
            st = request(conn, method, url, admin, "{}" if method == "PATCH" else None)
            if not router_answer(*st):
                problems.append("not the router's answer: %s %s -> %r" % (method, url, st))
        for (method, _), (path, op) in sorted(operations(ours).items(), key=lambda kv: (kv[1][0], kv[0][0])):
            url, body = probe_target(path, op)
            status, ctype, answer = request(conn, method, url, admin, body)
            what = "%s %s -> %d %s" % (method, url, status, json.dumps(answer)[:200] if answer else "")
            if router_answer(status, ctype, answer):
                problems.append("the router, not a handler, answered: " + what)
                continue
            problems += ["%s: %s" % (what, p) for p in answer_problems(ours, op, status, ctype, answer)]
            if status >= 500 and not (path == "/ready" and status == 503):
                problems.append("a server error: " + what)
            elif "admin" not in (op.get("x-certward-roles") or ["admin"]):
                if status != 403:
                    problems.append("not an admin's route, yet not 403: " + what)
            elif status in (401, 403):
                problems.append("the admin key was refused: " + what)
            elif status in (200, 201, 202, 204) and method != "GET" and path not in ("/api/v1/auth/check",):
                problems.append("a change was accepted although the probe should fail: " + what)
            # without a key: 401 exactly where the document asks for one
            status, ctype, answer = request(conn, method, url, None, body)
            needs_key = bool(op.get("security", ours.get("security")))
            if needs_key and status != 401:
                problems.append("no key, yet not 401: %s %s -> %d" % (method, url, status))
            elif needs_key:
                problems += ["%s %s without a key: %s" % (method, url, p)
                             for p in answer_problems(ours, op, status, ctype, answer)]
            if not needs_key and status == 401:
                problems.append("no key needed by the document, yet 401: %s %s" % (method, url))
        conn.close()
        check(not problems, "\n  ".join(["probes:"] + problems))

    def records_match_their_schemas():
        """One record of each catalogued resource, made with its required
        fields only (referenced records first): the answers of create, get,
        list and delete are as documented, members included; then renew,
        cancel, revoke and retire on them, and an API key's life. The
        records are deleted (certificates archived, the agent retired)
        afterwards."""
        conn, admin = connect()
        ops = operations(ours)
        problems, created, made = [], {}, []

        def call(method, path, url, body=None):
            status, ctype, answer = request(conn, method, url, admin, body)
            op = ops.get((method, norm(path.split("?")[0])))
            if op:
                problems.extend("%s %s -> %d: %s" % (method, url, status, p)
                                for p in answer_problems(ours, op[1], status, ctype, answer))
            return status, answer

        # a notification channel for the rules (made by workers/api/notify.c, not by the catalogue's
        # create); an Email channel without a password has no secrets to seal
        status, ch = call("POST", "/api/v1/notification-channels", "/api/v1/notification-channels", json.dumps(
            {"name": "openapi-probe", "type": "Email", "config": {"host": "127.0.0.1", "from": "a@example.com",
                                                                 "to": ["b@example.com"]}}))
        if status == 201 and isinstance(ch, dict):
            created["notification_channels"] = ch["id"]
        else:
            problems.append("notification_channels: create -> %d %s" % (status, ch))
        pending = [r for r in catalogue_resources(catalogue) if "create" in r["verbs"]]
        while pending:
            progress = False
            for res in list(pending):
                props = flat(ours, resource_schema(ours, ops, res) or {}).get("properties", {})
                try:
                    body = {f["name"]: sample_value(ours, f, props.get(f["name"], {}), created)
                            for f in res["fields"] if f.get("required")}
                except KeyError:
                    continue
                if res["name"] == "issuers":
                    # the first type, ACME, requires config members (docs/acme-client.md); Local none
                    body["type"] = "Local"
                pending.remove(res)
                progress = True
                status, answer = call("POST", res["path"], res["path"], json.dumps(body))
                if status != 201 or not isinstance(answer, dict):
                    problems.append("%s: create with %s -> %d %s" % (res["name"], body, status, answer))
                    continue
                created[res["name"]] = answer["id"]
                made.append(res)
                url = "%s/%s" % (res["path"], answer["id"])
                status, got = call("GET", res["path"] + "/{id}", url)
                check(status == 200 and isinstance(got, dict), "%s: get after create -> %d" % (url, status))
                unserved = sorted(set(props) - set(got))
                if unserved:
                    problems.append("GET %s: documented, not answered: %s" % (url, ", ".join(unserved)))
                call("GET", res["path"], res["path"])
            if not progress:
                problems.append("no record could be made of: %s" % ", ".join(r["name"] for r in pending))
                break
        def expect(method, path, want, body=None, **ids):
            status, answer = call(method, path, path.format(**ids), body)
            if status != want:
                problems.append("%s %s: %d, expected %d: %s" % (method, path.format(**ids), status, want, answer))
            return answer if isinstance(answer, dict) else {}

        # the actions on real records, while the agent still has a target
        cert, agent = created.get("managed_certificates"), created.get("agents")
        if cert:
            job = expect("POST", "/api/v1/certificates/{id}/renew", 202, id=cert).get("job_id")
            expect("POST", "/api/v1/certificates/{id}/renew", 409, id=cert)
            if job:
                expect("POST", "/api/v1/jobs/{id}/cancel", 200, id=job)
                expect("POST", "/api/v1/jobs/{id}/cancel", 409, id=job)
                expect("GET", "/api/v1/jobs/{id}", 200, id=job)
            expect("POST", "/api/v1/certificates/{id}/revoke", 200, json.dumps({"reason": "superseded"}), id=cert)
            expect("POST", "/api/v1/certificates/{id}/revoke", 409, id=cert)
        if agent and created.get("deployment_targets"):
            expect("DELETE", "/api/v1/agents/{id}", 409, id=agent)
        for res in reversed(made):
            if "delete" not in res["verbs"]:
                continue
            url = "%s/%s" % (res["path"], created[res["name"]])
            status, answer = call("DELETE", res["path"] + "/{id}", url)
            # an archived certificate still refers to its owner, team, ...: 409
            if status not in (204, 409):
                problems.append("DELETE %s -> %d %s" % (url, status, answer))
        if agent:
            expect("DELETE", "/api/v1/agents/{id}", 200, id=agent)
            expect("DELETE", "/api/v1/agents/{id}", 204, id=agent)
            expect("GET", "/api/v1/agents/retired", 200)
        # API keys, outside the catalogue: made, read, listed, revoked
        status, key = call("POST", "/api/v1/apikeys", "/api/v1/apikeys",
                           json.dumps({"name": "openapi-probe-viewer", "role": "viewer"}))
        if status == 201 and isinstance(key, dict):
            url = "/api/v1/apikeys/" + key["id"]
            status, got = call("GET", "/api/v1/apikeys/{id}", url)
            props = flat(ours, success_schema(ours, ops[("GET", norm("/api/v1/apikeys/{id}"))][1])).get("properties", {})
            if status != 200 or set(props) - set(got or {}):
                problems.append("GET %s -> %d, documented, not answered: %s" % (url, status, sorted(set(props) - set(got or {}))))
            call("GET", "/api/v1/apikeys", "/api/v1/apikeys")
            if call("DELETE", "/api/v1/apikeys/{id}", url)[0] != 204:
                problems.append("DELETE %s: not 204" % url)
        else:
            problems.append("POST /api/v1/apikeys -> %d %s" % (status, key))
        # the audit trail those changes wrote, as a list, an event and the chain feed
        events = expect("GET", "/api/v1/audit?per_page=5", 200).get("data") or [{}]
        if events[0].get("id"):
            expect("GET", "/api/v1/audit/{id}", 200, id=events[0]["id"])
        page = expect("GET", "/api/v1/audit/chain?limit=5", 200)
        if len(page.get("data", [])) != 5:
            problems.append("the chain feed gave %d events, asked for 5" % len(page.get("data", [])))
        conn.close()
        log("records made, read, listed and deleted: %s, apikeys" % ", ".join(r["name"] for r in made))
        check(not problems, "\n  ".join(["records:"] + problems))

    def agent_identity_reaches_its_own_routes():
        """An agent enrolled through the API (token, CSR, identity
        certificate) on the routes documented for the agent role, with its
        identity as the TLS client certificate and no key: its own id
        answers as documented (invalid bodies: the handler's 400, nothing
        written), another agent's id 403, an agent-role API key 401 on the
        routes for agents alone. Refused tokens get one answer and are
        audited; a revoked identity gets 401. A job's flow: renew gives the
        agent an AwaitingCSR job, its CSR is signed (202, then 409), the
        certificate picked up, the outcome reported (200, then 409). The
        heartbeat gives 200, then 410 once the agent is retired."""
        conn, admin = connect()
        cw = state["cw"]
        ops = operations(ours)
        agents_dir = os.path.join(state["root"], "agents")
        os.makedirs(agents_dir, exist_ok=True)
        api = Api(cw)
        problems = []

        def documented(method, path, status, ctype, answer, what):
            op = ops[(method, norm(path))][1]
            problems.extend("%s: %s" % (what, p) for p in answer_problems(ours, op, status, ctype, answer))

        def admin_call(method, path, url, body=None):
            status, ctype, answer = request(conn, method, url, admin, None if body is None else json.dumps(body))
            documented(method, path, status, ctype, answer, "%s %s -> %d" % (method, url, status))
            return status, answer

        # enrolment: the token's record and the identity as documented
        tok = agent_token(api, admin, "openapi-agent")
        documented("POST", "/api/v1/agent-tokens", 201, "application/json", tok, "POST /api/v1/agent-tokens")
        if tok.get("state") != "active" or "token" not in tok:
            problems.append("a new token: %r" % {k: v for k, v in tok.items() if k != "token"})
        key_file, csr = make_csr(agents_dir, "openapi-agent")
        status, ctype, ans = request(conn, "POST", "/api/v1/agents/enroll", None,
                                     json.dumps({"token": tok["token"], "csr_pem": csr}))
        documented("POST", "/api/v1/agents/enroll", status, ctype, ans, "enrolment -> %d" % status)
        check(status == 201, "enrolment: %d %r" % (status, ans))
        agent_id, crt = ans["agent_id"], os.path.join(agents_dir, "openapi-agent.crt")
        with open(crt, "w") as f:
            f.write(ans["certificate_pem"])
        if agent_id != tok["agent_id"] or ans.get("name") != "openapi-agent":
            problems.append("enrolled as %s (%s), the token's agent is %s" % (agent_id, ans.get("name"), tok["agent_id"]))
        other, other_crt, other_key, _ = enrol_agent(api, admin, "openapi-other", agents_dir)

        # a used, a malformed and an unknown token: one answer, each audited
        details = set()
        for token in (tok["token"], "openapi-probe-not-a-token", "cw_%s_%s" % ("0" * 12, "0" * 64)):
            status, ctype, answer = request(conn, "POST", "/api/v1/agents/enroll", None,
                                            json.dumps({"token": token, "csr_pem": csr}))
            documented("POST", "/api/v1/agents/enroll", status, ctype, answer, "a refused token -> %d" % status)
            if status != 401:
                problems.append("a refused token, not 401: %d %r" % (status, answer))
            details.add((answer or {}).get("detail"))
        if len(details) != 1:
            problems.append("refused tokens answered differently: %r" % sorted(map(str, details)))
        # refusals are audited without holding up the answer: give the events a moment
        def enrol_failures():
            return admin_call("GET", "/api/v1/audit", "/api/v1/audit?action=agents.enroll&outcome=failure")
        try:
            wait_for("three refusals audited", lambda: (enrol_failures()[1] or {}).get("total", 0) >= 3, timeout=10)
        except AssertionError:
            pass  # reported below with what the trail holds
        status, events = enrol_failures()
        if status != 200 or (events or {}).get("total", 0) < 3:
            problems.append("agents.enroll failures in the audit trail: %d %r" % (status, events))

        ctx = ssl.create_default_context(cafile=os.path.join(cw.state, "tls", "api.crt"))
        ctx.check_hostname = False
        ctx.load_cert_chain(crt, key_file)
        id_conn = [None]

        def as_agent(method, url, body=None):
            """A request with the identity certificate and no key (a new
            connection when the server closed the last one)."""
            for attempt in (0, 1):
                if id_conn[0] is None:
                    id_conn[0] = http.client.HTTPSConnection("127.0.0.1", cw.api_port, context=ctx, timeout=30)
                try:
                    return request(id_conn[0], method, url, None, body)
                except (http.client.HTTPException, OSError):
                    id_conn[0].close()
                    id_conn[0] = None
                    if attempt:
                        raise

        agent_key = make_key(state["pg"], "openapi-agent-key", "agent", ", agent_id", ", '%s'" % agent_id)
        probe = json.dumps({"openapi_probe_unknown_member": True})
        for (method, _), (path, op) in sorted(ops.items()):
            if "agent" not in (op.get("x-certward-roles") or []) or "{id}" not in path:
                continue
            alone = op.get("x-certward-roles") == ["agent"]
            body = probe if op.get("requestBody") else None

            def url_for(agent):
                return re.sub(r"\{[^}/]*\}", MISSING_ID, path.replace("{id}", agent))

            url = url_for(agent_id)
            status, ctype, answer = as_agent(method, url, body)
            what = "%s %s -> %d %s" % (method, url, status, json.dumps(answer)[:200] if answer else "")
            documented(method, path, status, ctype, answer, what)
            named = re.findall(r"\{([^}/]*)\}", path)
            if status >= 500 or status in (401, 403) or (status == 404 and named == ["id"]):
                problems.append("the agent's own route refused its identity: " + what)
            elif method != "GET" and status < 300:
                problems.append("a change was accepted although the probe should fail: " + what)
            for target in (other, MISSING_ID):
                status, ctype, answer = as_agent(method, url_for(target), body)
                what = "%s %s -> %d" % (method, url_for(target), status)
                documented(method, path, status, ctype, answer, what)
                if status != 403:
                    problems.append("another agent's route, not 403: " + what)
            status, ctype, answer = request(conn, method, url, agent_key, body)
            what = "%s %s with the agent's API key -> %d" % (method, url, status)
            documented(method, path, status, ctype, answer, what)
            if alone and status != 401:
                problems.append("a route for agents alone, not 401: " + what)
            elif not alone and status in (401, 403):
                problems.append("the agent's key refused: " + what)

        # where an agent key is taken, the identity is too
        status, ctype, answer = as_agent("GET", "/api/v1/auth/check")
        documented("GET", "/api/v1/auth/check", status, ctype, answer, "GET /api/v1/auth/check -> %d" % status)
        if status != 200 or (answer or {}).get("role") != "agent":
            problems.append("the identity on GET /api/v1/auth/check: %d %r" % (status, answer))

        # a job of the agent, through to its outcome
        def made(path, body):
            status, rec = admin_call("POST", path, path, body)
            check(status == 201, "POST %s: %d %r" % (path, status, rec))
            return rec["id"]
        cn = "openapi-agent-web.example.com"
        tgt = made("/api/v1/targets", {"name": "openapi-web", "type": "NGINX", "agent_id": agent_id})
        cert = made("/api/v1/certificates", {
            "name": "openapi-agent-web", "common_name": cn, "target_ids": [tgt],
            "owner_id": made("/api/v1/owners", {"name": "openapi-agent-owner"}),
            "team_id": made("/api/v1/teams", {"name": "openapi-agent-team"}),
            "issuer_id": made("/api/v1/issuers", {"name": "openapi-agent-local", "type": "Local"}),
            "renewal_policy_id": made("/api/v1/renewal-policies", {"name": "openapi-agent-policy", "max_retries": 3})})
        status, renewed = admin_call("POST", "/api/v1/certificates/{id}/renew", "/api/v1/certificates/%s/renew" % cert)
        check(status == 202, "renew: %d %r" % (status, renewed))
        job = renewed["job_id"]

        def agent_step(method, path, want, body=None, **ids):
            url = path.format(id=agent_id, **ids)
            status, ctype, answer = as_agent(method, url, None if body is None else json.dumps(body))
            documented(method, path, status, ctype, answer, "%s %s -> %d" % (method, url, status))
            if status != want:
                problems.append("%s %s: %d, expected %d: %s" % (method, url, status, want, answer))
            return answer if isinstance(answer, dict) else {}

        def job_in_work(want_status):
            work = agent_step("GET", "/api/v1/agents/{id}/work", 200)
            item = next((j for j in work.get("jobs", []) if j.get("id") == job), None)
            if not item or item.get("status") != want_status or item.get("certificate_id") != cert or \
                    [t.get("id") for t in item.get("targets", [])] != [tgt] or item.get("target_id") != tgt:
                problems.append("the job in the agent's work, expected %s: %r" % (want_status, work))
        job_in_work("AwaitingCSR")
        _, web_csr = make_csr(agents_dir, "openapi-agent-web", subject="/CN=" + cn)
        csr_body = {"job_id": job, "certificate_id": cert, "csr_pem": web_csr}
        issued = agent_step("POST", "/api/v1/agents/{id}/csr", 202, csr_body)
        agent_step("POST", "/api/v1/agents/{id}/csr", 409, csr_body)
        job_in_work("Running")
        picked = agent_step("GET", "/api/v1/agents/{id}/certificates/{cert_id}", 200, cert_id=cert)
        if not issued.get("serial") or picked.get("serial") != issued.get("serial"):
            problems.append("picked up %r, issued %r" % (picked.get("serial"), issued.get("serial")))
        report = {"status": "Completed", "serial": issued.get("serial") or "0"}
        agent_step("POST", "/api/v1/agents/{id}/jobs/{job_id}/status", 200, report, job_id=job)
        agent_step("POST", "/api/v1/agents/{id}/jobs/{job_id}/status", 409, report, job_id=job)
        status, got = admin_call("GET", "/api/v1/jobs/{id}", "/api/v1/jobs/" + job)
        if (got or {}).get("status") != "Completed":
            problems.append("the job after its report: %r" % got)

        # the other agent's identity, revoked: 401 from the next request on
        status, ids = admin_call("GET", "/api/v1/agents/{id}/identities", "/api/v1/agents/%s/identities" % other)
        data = (ids or {}).get("data") or [{}]
        if status != 200 or len(data) != 1 or not data[0].get("token_id") or data[0].get("revoked_at"):
            problems.append("the other agent's identities: %d %r" % (status, ids))
        revoke = "/api/v1/agents/{id}/identities/{identity_id}/revoke"
        for want in (200, 409):
            url = "/api/v1/agents/%s/identities/%s/revoke" % (other, data[0].get("id", MISSING_ID))
            status, answer = admin_call("POST", revoke, url, {"reason": "openapi probe"})
            if status != want:
                problems.append("POST %s: %d, expected %d: %s" % (url, status, want, answer))
        other_ctx = ssl.create_default_context(cafile=os.path.join(cw.state, "tls", "api.crt"))
        other_ctx.check_hostname = False
        other_ctx.load_cert_chain(other_crt, other_key)
        other_conn = http.client.HTTPSConnection("127.0.0.1", cw.api_port, context=other_ctx, timeout=30)
        url = "/api/v1/agents/%s/heartbeat" % other
        status, ctype, answer = request(other_conn, "POST", url, None, json.dumps({"version": "1.2.3"}))
        other_conn.close()
        documented("POST", "/api/v1/agents/{id}/heartbeat", status, ctype, answer, "POST %s -> %d" % (url, status))
        if status != 401:
            problems.append("a revoked identity's heartbeat: %d %r" % (status, answer))

        # a heartbeat with the host's addresses, then one after the agent was retired
        hb = {"version": "1.2.3", "ip_addresses": ["192.0.2.10", "2001:db8::1"]}
        agent_step("POST", "/api/v1/agents/{id}/heartbeat", 200, hb)
        status, rec = admin_call("GET", "/api/v1/agents/{id}", "/api/v1/agents/" + agent_id)
        if (rec or {}).get("ip_addresses") != hb["ip_addresses"] or rec.get("ip_address") != "192.0.2.10":
            problems.append("the agent after its heartbeat: %r" % rec)
        status, answer = admin_call("DELETE", "/api/v1/agents/{id}",
                                    "/api/v1/agents/%s?force=true&reason=openapi+probe" % agent_id)
        if status != 200:
            problems.append("retire: %d %r" % (status, answer))
        url = "/api/v1/agents/%s/heartbeat" % agent_id
        wait_for("410 for the retired agent's heartbeat",
                 lambda: as_agent("POST", url, json.dumps({"version": "1.2.3"}))[0] == 410, timeout=10)
        agent_step("POST", "/api/v1/agents/{id}/heartbeat", 410, {"version": "1.2.3"})
        if id_conn[0]:
            id_conn[0].close()
        conn.close()
        check(not problems, "\n  ".join(["agent identity:"] + problems))

    run.case(document_is_sound)
    run.case(every_catalogue_field_documented)
    run.case(coverage_in_docs)
    run.case(routes_match_document)

    root = state["root"] = make_root("certward-openapi-it-")
    pg = None
    try:
        pg = state["pg"] = Postgres(root, free_port())
        # the keyless probes are failed authentications: keep them under the limit
        cw = state["cw"] = Certward(root, pg.dsn, api_extra="  auth_failure_limit: 100000\n")
        cw.start()
        wait_for("all running", cw.all_running, timeout=90)
        run.case(every_operation_reaches_its_handler)
        run.case(records_match_their_schemas)
        run.case(agent_identity_reaches_its_own_routes)
        run.stop_clean(cw)
    finally:
        teardown(state["cw"], pg, root)
    run.finish()


if __name__ == "__main__":
    main()
