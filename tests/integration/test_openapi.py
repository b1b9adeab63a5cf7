"""
test_openapi.py: docs/openapi.json (served at GET /v1/openapi.json) against
the server's code and its real answers.

  Document   the description itself: every $ref resolves; every route of
             the server's route tables (parsed from src/server/*.c) is
             described and every described route is in them; the served
             document is the file; no described route answers "no such
             route" (404) or 405.
  Flows      a flow through every route, its successes and its errors, with
             the harness's recorder on ($KOPILKA_OPENAPI_RECORD): every
             answer is checked against the response schema of its (route,
             method, status). An answer whose status the route does not
             describe fails; so does a request body the server accepted
             that its request schema refuses. Then the description is
             broken on purpose and the same answers must fail (the check
             can fail).
  Suites     with $KOPILKA_OPENAPI_ANSWERS=DIR (CTest
             integration_openapi_suites, which runs after the other SQLite
             entries): checks every answer the other integration suites
             received in their own CTest entries, which record them to
             DIR/<entry>.jsonl; a suite whose recording is missing or older
             than the binary (run alone, or with -R) is run here, recorded.
  Recorded   with $KOPILKA_OPENAPI_CHECK=FILE: checks a recording made by
             running other suites with $KOPILKA_OPENAPI_RECORD=FILE.

The JSON-schema check is written here (standard library only): type,
nullable, enum, required, properties, additionalProperties, items,
minItems/maxItems, minimum/maximum, oneOf, anyOf, $ref.

    python3 test_openapi.py --kopilka build/kopilka [unittest options]
"""
import copy
import glob
import json
import os
import re
import subprocess
import sys
import time
import unittest
import urllib.parse

import harness
from test_people import CONSENT, CUSTOMERS_SECTION, PASSWORD

DOC_PATH = os.path.join(harness.REPO, "docs", "openapi.json")
SERVER_SRC = os.path.join(harness.REPO, "src", "server")
METHODS = ("get", "post", "put", "patch", "delete")


def load_doc():
    with open(DOC_PATH, encoding="utf-8") as f:
        return json.load(f)


# --------------------------------------------------------------------------
# A small JSON-schema validator (the OpenAPI 3.0 subset the document uses)

def resolve(doc, ref):
    """The object a local $ref ("#/a/b") names; KeyError when it names none."""
    if not ref.startswith("#/"):
        raise KeyError("only local references are used: %s" % ref)
    node = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def validate(doc, schema, value, where="$"):
    """The list of problems of value against schema (empty when it conforms)."""
    if "$ref" in schema:
        return validate(doc, resolve(doc, schema["$ref"]), value, where)
    if value is None:
        if schema.get("nullable") or not schema:  # OpenAPI 3.0: null needs nullable
            return []
        return ["%s: is null, which the schema does not allow" % where]
    problems = []
    t = schema.get("type")
    if t is not None and not TYPES[t](value):
        return ["%s: is %s, the schema says %s" % (where, type(value).__name__, t)]
    if "enum" in schema and value not in schema["enum"]:
        problems.append("%s: %r is not one of %s" % (where, value, schema["enum"]))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append("%s: %r is below %r" % (where, value, schema["minimum"]))
        if "maximum" in schema and value > schema["maximum"]:
            problems.append("%s: %r is above %r" % (where, value, schema["maximum"]))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                problems.append("%s: lacks the required %r" % (where, name))
        extra = schema.get("additionalProperties", True)
        for name, v in value.items():
            if name in props:
                problems += validate(doc, props[name], v, "%s.%s" % (where, name))
            elif extra is False:
                problems.append("%s: has %r, which the schema does not describe" % (where, name))
            elif isinstance(extra, dict):
                problems += validate(doc, extra, v, "%s.%s" % (where, name))
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            problems.append("%s: fewer than %d items" % (where, schema["minItems"]))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            problems.append("%s: more than %d items" % (where, schema["maxItems"]))
        if "items" in schema:
            for i, v in enumerate(value):
                problems += validate(doc, schema["items"], v, "%s[%d]" % (where, i))
    if "oneOf" in schema:
        n = sum(1 for s in schema["oneOf"] if not validate(doc, s, value, where))
        if n != 1:
            problems.append("%s: matches %d of oneOf's schemas, not exactly 1" % (where, n))
    if "anyOf" in schema:
        if all(validate(doc, s, value, where) for s in schema["anyOf"]):
            problems.append("%s: matches none of anyOf's schemas" % where)
    return problems


def template_regex(template, rest=False):
    """A template's regex; with rest (x-kopilka-rest) its last parameter
    takes the rest of the path, slashes and all."""
    text = re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(template))
    if rest:
        text = text[:text.rindex("[^/]+")] + ".+" + text[text.rindex("[^/]+") + 5:]
    return re.compile("^" + text + "$")


def find_path(doc, path):
    """The template of doc's paths that path (no query) matches, literal
    segments before parameters and a whole segment before the rest of the
    path; None when none does."""
    hits = [t for t, item in doc["paths"].items()
            if template_regex(t, item.get("x-kopilka-rest", False)).match(path)]
    hits.sort(key=lambda t: (doc["paths"][t].get("x-kopilka-rest", False), t.count("{"),
                             -len(t)))
    return hits[0] if hits else None


def check_answer(doc, method, path, status, content_type, body):
    """Problems of one answer against doc: an undescribed route must be 404,
    an undescribed method of a route 405, a described one a described
    status with a body of its schema."""
    # What the server sees: the path without its query, percent-decoded,
    # up to a NUL (MHD hands the URL over as a C string).
    path = urllib.parse.unquote(path.split("?", 1)[0]).split("\0", 1)[0]
    what = "%s %s -> %d" % (method, path, status)
    error = doc["components"]["schemas"]["Error"]
    template = find_path(doc, path)
    if template is not None and doc["paths"][template].get("x-kopilka-any-method"):
        method = "GET"  # /live, /ready, /health answer every method alike
    if template is None or method.lower() not in doc["paths"][template]:
        expected = 404 if template is None else 405
        if status != expected:
            return ["%s: the route is not described, so only %d is expected" % (what, expected)]
        return ["%s: %s" % (what, p) for p in validate(doc, error, body)]
    op = doc["paths"][template][method.lower()]
    answer = op["responses"].get(str(status))
    if answer is None:
        return ["%s: status %d is not described for %s %s (described: %s)"
                % (what, status, method, template, ", ".join(sorted(op["responses"])))]
    if "$ref" in answer:
        answer = resolve(doc, answer["$ref"])
    content = answer.get("content", {})
    base = (content_type or "").split(";")[0].strip()
    if base not in content:
        return ["%s: content type %r is not described (described: %s)"
                % (what, content_type, ", ".join(content))]
    if base != "application/json":
        return []
    if body is None:
        return ["%s: the body is not JSON" % what]
    return ["%s: %s" % (what, p) for p in validate(doc, content[base]["schema"], body)]


def check_recording(doc, lines):
    problems = []
    for line in lines:
        problems += check_answer(doc, line["method"], line["path"], line["status"],
                                 line["content_type"], line["body"])
    return problems


def server_routes():
    """{(METHOD, path with {} for each parameter)} from the route tables of
    src/server/*.c, and the set of paths compared with strcmp(url, ...)."""
    routes, paths = set(), set()
    for name in sorted(glob.glob(os.path.join(SERVER_SRC, "*.c"))):
        with open(name, encoding="utf-8") as f:
            text = f.read()
        for m in re.finditer(r'\{"(GET|POST|PUT|PATCH|DELETE)", "(/[^"]*)"', text):
            routes.add((m.group(1), m.group(2)))
        table = re.search(r"post_routes\[\] = \{(.*?)\};", text, re.S)
        if table:
            for m in re.finditer(r'\{"(/[^"]*)",', table.group(1)):
                routes.add(("POST", m.group(1)))
        if re.search(r'strncmp\(url, "/v1/cards/", 10\) == 0;', text):
            routes.add(("GET", "/v1/cards/{}"))
        for m in re.finditer(r'strcmp\(url, "(/[^"]*)"\) [!=]= 0', text):
            paths.add(m.group(1))
        table = re.search(r"\*const pages\[\] = \{(.*?)\};", text, re.S)  # http_pages.c
        if table:
            for m in re.finditer(r'"(/[^"]*)"', table.group(1)):
                routes.add(("GET", m.group(1)))
    return routes, paths


def doc_routes(doc):
    return {(m.upper(), re.sub(r"\{[^}]*\}", "{}", p))
            for p, item in doc["paths"].items() for m in METHODS if m in item}


def all_refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from all_refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from all_refs(v)


def sample_path(template):
    return re.sub(r"\{[^}]*\}", "1", template)


# --------------------------------------------------------------------------
class Document(unittest.TestCase):

    def setUp(self):
        self.doc = load_doc()

    def test_every_ref_resolves(self):
        refs = list(all_refs(self.doc))
        self.assertGreater(len(refs), 100)
        for r in refs:
            try:
                resolve(self.doc, r)
            except KeyError:
                self.fail("$ref %s names nothing" % r)
        self.assertEqual(self.doc["openapi"], "3.0.3")
        self.assertEqual(set(self.doc["components"]["securitySchemes"]),
                         {"terminal", "staff", "customer"})

    def test_every_route_of_the_server_is_described_and_nothing_else(self):
        routes, paths = server_routes()
        self.assertGreater(len(routes), 40)
        described = doc_routes(self.doc)
        self.assertEqual(sorted(routes - described), [], "routes of the server not described")
        extra = {r for r in described - routes if r[1] not in paths}
        self.assertEqual(sorted(extra), [], "described routes the server's tables lack")
        described_paths = {p for _, p in described}
        self.assertEqual(sorted(paths - described_paths), [], "paths of the server not described")

    def test_the_error_codes_are_the_error_table_of_docs_api_md(self):
        with open(os.path.join(harness.REPO, "docs", "api.md"), encoding="utf-8") as f:
            api = f.read()
        table = api[api.index("## Errors"):api.index("## Request ids")]
        codes = set(re.findall(r"^\| \d{3} \| `([a-z_]+)`(?:, `([a-z_]+)`)?", table, re.M))
        codes = {c for pair in codes for c in pair if c}
        enum = self.doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"][
            "code"]["enum"]
        self.assertEqual(sorted(codes), sorted(enum))

    def test_the_validator_refuses_what_does_not_conform(self):
        # The check itself can fail: each broken answer is caught.
        card = {"$ref": "#/components/schemas/Card"}
        ok = {"card": "1", "state": "active", "registered": True, "balance": 0, "available": 0,
              "pending": 0, "debt": 0, "purchases": 0, "spend": 0, "lots": [], "history": [],
              "tier": None}
        self.assertEqual(validate(self.doc, card, ok), [])
        for broken in ({"balance": "0"}, {"state": "lost"}, {"lots": [{"kind": 1}]},
                       {"registered": 1}, {"tier": {"name": 5}}):
            bad = dict(ok, **broken)
            self.assertNotEqual(validate(self.doc, card, bad), [], broken)
        bad = dict(ok)
        del bad["balance"]
        self.assertNotEqual(validate(self.doc, card, bad), [])
        err = {"error": {"code": "nope", "message": "x"}}
        self.assertEqual(len(check_answer(self.doc, "GET", "/v1/cards/1", 404,
                                          "application/json", err)), 1)
        self.assertEqual(len(check_answer(self.doc, "GET", "/v1/cards/1", 418,
                                          "application/json", err)), 1)
        self.assertEqual(check_answer(self.doc, "GET", "/v1/nope", 404, "application/json",
                                      {"error": {"code": "not_found", "message": "x"}}), [])


class Served(unittest.TestCase):

    def setUp(self):
        self.k = harness.Kopilka(cards=1)
        self.addCleanup(self.k.close)
        self.k.start()
        self.doc = load_doc()

    def test_get_v1_openapi_json_is_the_file_without_credentials(self):
        s, served = self.k.call("GET", "/v1/openapi.json", key=None)
        self.assertEqual(s, 200)
        self.assertEqual(self.k._client.last_headers.get("Content-Type"), "application/json")
        self.assertEqual(served, self.doc)
        s, a = self.k.call("POST", "/v1/openapi.json", {}, key=None)
        self.assertEqual((s, a["error"]["code"]), (405, "method_not_allowed"))

    def test_no_described_route_answers_no_such_route_or_405(self):
        # Without credentials: an unknown route is 404 before any check of
        # them, so 401 (or the route's own answer) shows the route exists.
        for template, item in sorted(self.doc["paths"].items()):
            for method in METHODS:
                if method not in item:
                    continue
                body = {} if method in ("post", "patch") else None
                s, a = self.k.call(method.upper(), sample_path(template), body, key=None)
                what = "%s %s -> %d %r" % (method.upper(), template, s, a)
                self.assertNotEqual(s, 405, what)
                if s == 404:
                    self.assertNotIn("no such route", a["error"]["message"], what)
                self.assertIn(str(s), item[method]["responses"], what)


# --------------------------------------------------------------------------
LINE = {"sku": "OIL", "category": harness.LABOR, "amount": 100000}


def flow_program(directory):
    """The harness's program with customers, phone at the till and a
    survey event the till and the back office may send."""
    with open(harness.program_file(), "rb") as f:
        doc = json.load(f)
    doc["customers"] = CUSTOMERS_SECTION
    doc.setdefault("till", {})["identify_by_phone"] = True
    doc["event_sources"] = [{"type": "survey", "from": ["till", "back_office"]}]
    doc["rules"].append({"id": "survey-100", "kind": "grant", "on": "survey", "points": 100})
    doc["partners"] = [{"code": "wash", "name": "Car wash", "stores": ["WASH-*"]},
                       {"code": "bank", "name": "Bank", "bank": {"cashback_percent": "1"}}]
    doc["rules"].append({"id": "wash-5", "kind": "earn_percent", "percent": 5,
                         "partner": "wash"})
    path = os.path.join(directory, "program-openapi.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


class Flows(unittest.TestCase):

    def setUp(self):
        self.doc = load_doc()
        self.k = harness.Kopilka(cards=12)
        self.addCleanup(self.k.close)
        harness.run_cli(["program", "load", self.k.db, flow_program(self.k.dir)])
        pw = os.path.join(self.k.dir, "password")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        for login, role in (("root", "admin"), ("aud", "auditor")):
            harness.run_cli(["staff", "add", self.k.db, "--login", login, "--role", role,
                             "--password-file", pw])
        for login, partner in (("washer", "wash"), ("banker", "bank")):
            harness.run_cli(["staff", "add", self.k.db, "--login", login, "--role", "partner",
                             "--partner", partner, "--password-file", pw])
        self.sent = []  # (method, path, body) of every request answered 2xx
        self.record = os.path.join(self.k.dir, "answers.jsonl")
        old = os.environ.get("KOPILKA_OPENAPI_RECORD")
        os.environ["KOPILKA_OPENAPI_RECORD"] = self.record
        self.addCleanup(self.restore_env, old)
        # E-mail and SMS to a port nobody listens on (messages stay pending,
        # their texts readable through the messages route); SMS replies on.
        closed = harness.free_port()
        notify = harness.notify_config(self.k.dir, smtp_port=closed, sms_port=closed, timeout=2)
        with open(notify) as f:
            doc = json.load(f)
        doc["sms"]["inbound_token"] = "inbound-token"
        doc["public_url"] = "https://loyalty.example"
        with open(notify, "w") as f:
            json.dump(doc, f)
        self.k.start(serve_args=["--notify", notify])

    @staticmethod
    def restore_env(old):
        if old is None:
            os.environ.pop("KOPILKA_OPENAPI_RECORD", None)
        else:
            os.environ["KOPILKA_OPENAPI_RECORD"] = old

    def call(self, expect, method, path, body=None, key=harness.DEFAULT_KEY):
        s, a = self.k.call(method, path, body, key=key)
        self.assertEqual(s, expect, "%s %s: %r" % (method, path, self.k.last_raw()[:400]))
        if 200 <= s < 300:
            self.sent.append((method, path, body))
        return a

    def check_requests(self, doc):
        """Problems of the bodies the server accepted against the request
        schemas: a body it took must be one the description allows."""
        problems = []
        for method, path, body in self.sent:
            template = find_path(doc, path.split("?")[0])
            op = doc["paths"][template].get(method.lower(), {})
            schema = op.get("requestBody", {}).get("content", {}).get("application/json")
            if schema is None:
                if isinstance(body, dict) and body:
                    problems.append("%s %s: a body was taken, none is described" % (method, path))
                continue
            if body is None:
                if op["requestBody"].get("required"):
                    problems.append("%s %s: taken without the required body" % (method, path))
                continue
            problems += ["%s %s request: %s" % (method, path, p)
                         for p in validate(doc, schema["schema"], body)]
        return problems

    def staff(self, expect, method, path, body=None):
        return self.call(expect, method, path, body, key=self.admin)

    def run_flows(self):
        k, c = self.k, self.k.cards
        for p in ("/live", "/ready", "/health", "/v1/openapi.json", "/", "/till", "/office"):
            self.call(200, "GET", p, key=None)
        self.call(405, "PUT", "/v1/openapi.json", {}, key=None)
        self.call(200, "GET", "/metrics", key=None)  # loopback: --metrics local serves it
        self.call(405, "POST", "/metrics", {}, key=None)
        self.call(404, "GET", "/v1/nope", key=None)
        # --- staff
        self.admin = self.call(200, "POST", "/v1/admin/login",
                               {"login": "root", "password": PASSWORD}, key=None)["token"]
        aud = self.call(200, "POST", "/v1/admin/login",
                        {"login": "aud", "password": PASSWORD}, key=None)["token"]
        self.call(401, "POST", "/v1/admin/login", {"login": "root", "password": "wrong wrong"},
                  key=None)
        self.call(400, "POST", "/v1/admin/login", "{", key=None)
        self.staff(200, "GET", "/v1/admin/me")
        self.staff(200, "GET", "/v1/admin/staff")
        olga = self.staff(201, "POST", "/v1/admin/staff",
                          {"login": "olga", "role": "call_centre", "password": PASSWORD})
        self.staff(409, "POST", "/v1/admin/staff",
                   {"login": "olga", "role": "call_centre", "password": PASSWORD})
        self.staff(400, "POST", "/v1/admin/staff", {"login": "p", "role": "boss",
                                                    "password": PASSWORD})
        self.staff(200, "PATCH", "/v1/admin/staff/%d" % olga["id"], {"active": False})
        self.staff(404, "PATCH", "/v1/admin/staff/999999", {"active": False})
        self.call(403, "POST", "/v1/admin/staff", {"login": "x", "role": "cashier",
                                                   "password": PASSWORD}, key=aud)
        self.call(403, "GET", "/v1/admin/me")  # a terminal key on a staff route
        self.call(200, "POST", "/v1/admin/logout", key=aud)
        self.call(401, "GET", "/v1/admin/me", key=aud)
        # --- the till
        q = {"card": c[0], "lines": [LINE]}
        self.call(200, "POST", "/v1/quote", q)
        self.call(400, "POST", "/v1/quote", {"card": c[0], "lines": []})
        self.call(400, "POST", "/v1/quote", "{")
        self.call(404, "POST", "/v1/quote", {"card": "NOPE-1", "lines": [LINE]})
        self.call(405, "GET", "/v1/quote")
        self.call(401, "POST", "/v1/quote", q, key="kp_nope")
        # The server may answer 413 and close before the body is all sent:
        # a raw socket reads that answer (recorded like call()'s).
        body = b"x" * (1024 * 1024 + 10)
        head = ("POST /v1/quote HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\nConnection: close\r\n\r\n"
                % (self.k.key, len(body))).encode()
        s, a = harness.send_raw(self.k.port, head, body)
        self.assertEqual((s, a["error"]["code"]), (413, "too_large"))
        p = {"card": c[0], "receipt": "R1", "lines": [LINE]}
        self.call(201, "POST", "/v1/purchases", p)
        self.call(200, "POST", "/v1/purchases", p)
        self.call(409, "POST", "/v1/purchases", dict(p, burn=5))
        self.call(201, "POST", "/v1/purchases", {"card": c[0], "receipt": "R2",
                                                 "lines": [LINE, dict(LINE, sku="B")]})
        self.call(201, "POST", "/v1/returns", {"card": c[0], "receipt": "RET1",
                                               "original_receipt": "R1"})
        self.call(200, "POST", "/v1/returns", {"card": c[0], "receipt": "RET1",
                                               "original_receipt": "R1"})
        self.call(201, "POST", "/v1/returns", {"card": c[0], "receipt": "RET2",
                                               "original_receipt": "R2",
                                               "lines": [{"sku": "B", "qty": 1}]})
        self.call(404, "POST", "/v1/returns", {"card": c[0], "receipt": "RET3",
                                               "original_receipt": "NONE"})
        self.call(200, "GET", "/v1/cards/" + c[0])
        self.call(404, "GET", "/v1/cards/NOPE-1")
        ev = {"id": "ev1", "card": c[0], "type": "survey"}
        self.call(201, "POST", "/v1/events", ev)
        self.call(200, "POST", "/v1/events", ev)
        self.call(409, "POST", "/v1/events", dict(ev, value=5))
        self.call(201, "POST", "/v1/events", {"id": "ev2", "card": c[0], "type": "survey"},
                  key=self.admin)
        self.call(403, "POST", "/v1/events", {"id": "ev3", "card": c[0], "type": "mileage"})
        self.call(400, "POST", "/v1/events", {"id": "ev4", "card": c[0]})
        for pic in ("barcode.svg", "barcode.png", "qr.svg", "qr.png"):
            self.call(200, "GET", "/v1/cards/%s/%s" % (c[0], pic))
            self.call(200, "GET", "/v1/cards/%s/%s" % (c[0], pic), key=self.admin)
        self.call(404, "GET", "/v1/cards/NOPE-1/qr.svg")
        self.call(400, "GET", "/v1/cards/2000000000017/qr.svg")
        # --- customers
        reg = {"card": c[1], "full_name": "Owner One", "phone": "+380500000001",
               "consent": CONSENT, "email": "one@example.com", "birthday": "1985-04-12",
               "attributes": {"car_model": "Kia Rio", "mileage": 12000}}
        one = self.call(201, "POST", "/v1/customers", reg)
        self.call(409, "POST", "/v1/customers", reg)
        self.call(400, "POST", "/v1/customers", {"card": c[2], "full_name": "",
                                                 "phone": "12", "consent": CONSENT})
        two = self.staff(201, "POST", "/v1/customers",
                         {"card": c[2], "full_name": "Member Two", "phone": "+380500000002",
                          "consent": CONSENT})
        self.call(409, "POST", "/v1/customers",
                  {"card": c[3], "full_name": "Three", "phone": "+380500000002",
                   "consent": CONSENT})
        self.call(200, "POST", "/v1/identify", {"phone": "+380500000001"})
        self.call(200, "POST", "/v1/identify", {"card": c[1]})
        self.call(404, "POST", "/v1/identify", {"phone": "+380509999999"})
        self.call(200, "POST", "/v1/quote", {"phone": "+380500000001", "lines": [LINE]})
        self.staff(200, "POST", "/v1/admin/customers/search", {"phone": "+380 50 000 00 01"})
        self.staff(200, "POST", "/v1/admin/customers/search", {"name": "owner"})
        self.staff(400, "POST", "/v1/admin/customers/search", {})
        self.staff(200, "GET", "/v1/admin/customers/%d" % one["id"])
        self.staff(404, "GET", "/v1/admin/customers/999999")
        self.staff(200, "PATCH", "/v1/admin/customers/%d" % one["id"],
                   {"email": None, "attributes": {"mileage": 13000}})
        self.staff(400, "PATCH", "/v1/admin/customers/%d" % one["id"], {"birthday": "2999-01-01"})
        self.staff(200, "POST", "/v1/admin/customers/%d/cards" % one["id"], {"card": c[4]})
        self.staff(409, "POST", "/v1/admin/customers/%d/cards" % two["id"], {"card": c[4]})
        self.staff(200, "GET", "/v1/admin/customers/%d/history" % one["id"])
        self.staff(404, "GET", "/v1/admin/customers/999999/history")
        # --- adjustments, families, transfers
        adj = {"card": c[1], "points": 3000, "reason": "test", "key": "ADJ1"}
        self.staff(201, "POST", "/v1/admin/adjustments", adj)
        self.staff(200, "POST", "/v1/admin/adjustments", adj)
        self.staff(409, "POST", "/v1/admin/adjustments", dict(adj, points=5))
        self.staff(400, "POST", "/v1/admin/adjustments", dict(adj, points=0, key="ADJ2"))
        self.staff(404, "POST", "/v1/admin/adjustments", dict(adj, card="NOPE-1", key="ADJ3"))
        # --- program versions
        lst = self.staff(200, "GET", "/v1/admin/programs?limit=10")
        self.staff(400, "GET", "/v1/admin/programs?limit=0")
        current = self.staff(200, "GET", "/v1/admin/programs/%d" % lst["running"])["program"]
        self.staff(404, "GET", "/v1/admin/programs/999999")
        self.staff(200, "POST", "/v1/admin/programs/validate", {"program": current})
        self.staff(400, "POST", "/v1/admin/programs/validate",
                   {"program": dict(current, rounding="x", minor_per_point=0)})
        self.staff(200, "POST", "/v1/admin/programs/diff", {"program": dict(current, name="x")})
        self.staff(404, "POST", "/v1/admin/programs/diff", {"program": current, "against": 999999})
        self.staff(200, "POST", "/v1/admin/programs/sandbox",
                   {"card": c[1], "burn": 10, "lines": [LINE], "store": "main"})
        self.staff(200, "POST", "/v1/admin/programs/sandbox",
                   {"balance": 100, "lines": [LINE], "program": current})
        self.staff(400, "POST", "/v1/admin/programs/sandbox", {"balance": 1, "lines": []})
        tomorrow = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))
        later = self.staff(201, "POST", "/v1/admin/programs",
                           {"program": current, "name": "tomorrow", "activates_at": tomorrow})
        self.staff(409, "POST", "/v1/admin/programs", {"program": current})
        self.staff(400, "POST", "/v1/admin/programs",
                   {"program": current, "activates_at": "2000-01-01T00:00:00Z"})
        self.staff(200, "POST", "/v1/admin/programs/%d/cancel" % later["version"])
        self.staff(409, "POST", "/v1/admin/programs/%d/cancel" % later["version"])
        self.staff(201, "POST", "/v1/admin/programs", {"program": current, "name": "again"})
        # --- simulations
        sim = self.staff(202, "POST", "/v1/admin/simulations",
                         {"program": current, "baseline": current, "redemption": 0.5})
        self.staff(400, "POST", "/v1/admin/simulations", {"program": current, "redemption": 2})
        for _ in range(600):
            got = self.staff(200, "GET", "/v1/admin/simulations/" + sim["id"])
            if got["state"] != "running":
                break
            time.sleep(0.05)
        self.assertEqual(got["state"], "done")
        self.staff(404, "GET", "/v1/admin/simulations/nope")
        fam = self.staff(201, "POST", "/v1/admin/families", {"owner": one["id"]})
        self.staff(404, "POST", "/v1/admin/families", {"owner": 999999})
        self.staff(200, "GET", "/v1/admin/families/%d" % fam["id"])
        self.staff(404, "GET", "/v1/admin/families/999999")
        members = "/v1/admin/families/%d/members" % fam["id"]
        self.staff(201, "POST", members, {"customer": two["id"], "may_spend": False})
        self.staff(409, "POST", members, {"customer": two["id"], "may_spend": False})
        self.staff(200, "PATCH", "%s/%d" % (members, two["id"]), {"may_spend": True})
        self.staff(400, "PATCH", "%s/%d" % (members, two["id"]), {"may_spend": "yes"})
        self.staff(200, "GET", "/v1/admin/families/%d" % fam["id"])
        self.staff(200, "POST", "%s/%d/leave" % (members, two["id"]))
        self.staff(404, "POST", "%s/%d/leave" % (members, two["id"]))
        tr = {"from_card": c[1], "to_card": c[2], "points": 500, "key": "G1"}
        self.staff(201, "POST", "/v1/transfers", tr)
        self.staff(200, "POST", "/v1/transfers", tr)
        self.staff(409, "POST", "/v1/transfers", dict(tr, points=7))
        self.staff(400, "POST", "/v1/transfers", dict(tr, points=5001, key="G2"))
        # --- cards
        batch = self.staff(201, "POST", "/v1/admin/card-batches", {"name": "b1", "count": 3})
        self.staff(409, "POST", "/v1/admin/card-batches", {"name": "b1", "count": 3})
        self.staff(400, "POST", "/v1/admin/card-batches", {"name": "b2", "count": 0})
        self.staff(200, "GET", "/v1/admin/card-batches/%d/cards.csv" % batch["batch"]["id"])
        self.staff(404, "GET", "/v1/admin/card-batches/999999/cards.csv")
        self.staff(200, "GET", "/v1/admin/cards/" + c[1])
        self.staff(404, "GET", "/v1/admin/cards/NOPE-1")
        self.staff(200, "POST", "/v1/admin/cards/%s/block" % c[5], {"reason": "lost"})
        self.staff(400, "POST", "/v1/admin/cards/%s/block" % c[6], {})
        self.staff(200, "POST", "/v1/admin/cards/%s/unblock" % c[5], {})
        self.staff(200, "POST", "/v1/admin/cards/%s/block" % c[2], {"reason": "stolen"})
        self.staff(200, "POST", "/v1/admin/cards/%s/replace" % c[2],
                   {"reason": "stolen", "new_card": batch["cards"][0]})
        self.staff(409, "POST", "/v1/admin/cards/%s/replace" % c[2], {"reason": "again"})
        self.staff(200, "POST", "/v1/admin/cards/%s/discount" % c[1], {"percent": "7.5"})
        self.staff(400, "POST", "/v1/admin/cards/%s/discount" % c[1], {"percent": "101"})
        self.staff(404, "POST", "/v1/admin/cards/NOPE-1/discount", {"percent": 5})
        self.call(200, "GET", "/v1/cards/" + c[1])
        self.staff(200, "DELETE", "/v1/admin/cards/%s/discount" % c[1])
        # --- terminals
        self.staff(200, "GET", "/v1/admin/terminals")
        self.staff(200, "GET", "/v1/admin/terminals?after=0&limit=1")
        self.staff(400, "GET", "/v1/admin/terminals?limit=0")
        t = self.staff(201, "POST", "/v1/admin/terminals", {"store": "kiosk"})
        self.staff(400, "POST", "/v1/admin/terminals", {"store": 5})
        self.staff(200, "POST", "/v1/admin/terminals/%d/rotate" % t["id"])
        self.staff(200, "POST", "/v1/admin/terminals/%d/revoke" % t["id"])
        self.staff(409, "POST", "/v1/admin/terminals/%d/revoke" % t["id"])
        self.staff(404, "POST", "/v1/admin/terminals/999999/rotate")
        # --- audit and exports
        self.staff(200, "GET", "/v1/admin/audit?limit=1000")
        self.staff(400, "GET", "/v1/admin/audit?limit=5000")
        self.staff(200, "GET", "/v1/admin/audit?order=desc&action=card.&limit=2")
        self.staff(400, "GET", "/v1/admin/audit?from=yesterday")
        # --- the dashboard and imports
        self.staff(200, "GET", "/v1/admin/dashboard?from=2026-01-01&to=2026-12-31")
        self.staff(200, "GET", "/v1/admin/dashboard?store=main")
        self.staff(400, "GET", "/v1/admin/dashboard?from=2020-01-01&to=2026-12-31")
        self.staff(200, "GET", "/v1/admin/reports/points?from=2026-01-01&to=2026-12-31")
        self.staff(200, "GET", "/v1/admin/reports/points?store=main&format=csv")
        self.staff(400, "GET", "/v1/admin/reports/points?format=xml")
        self.staff(200, "GET", "/v1/admin/reports/members?from=2026-01-01&to=2026-12-31")
        self.staff(200, "GET", "/v1/admin/reports/members?store=main&tier=gold&format=csv")
        self.staff(400, "GET", "/v1/admin/reports/members?format=xml")
        # --- prize draws (docs/marketing.md): one past, one still open
        draw = {"name": "OAS draw", "from": "2020-01-01T00:00:00Z", "to": "2020-02-01T00:00:00Z",
                "rule": {"kind": "spend", "per_minor": 1000}, "prizes": [{"name": "Mug", "count": 1}]}
        past = self.staff(201, "POST", "/v1/admin/draws", draw)
        future = self.staff(201, "POST", "/v1/admin/draws",
                            dict(draw, to="2099-01-01T00:00:00Z", rule={"kind": "visit"}))
        self.staff(400, "POST", "/v1/admin/draws", dict(draw, rule={"kind": "lottery"}))
        self.staff(200, "GET", "/v1/admin/draws")
        self.staff(400, "GET", "/v1/admin/draws?before=x")
        self.call(200, "GET", "/v1/draws/%d" % future["id"], key=None)
        self.staff(200, "POST", "/v1/admin/draws/%d/close" % past["id"])
        self.staff(409, "POST", "/v1/admin/draws/%d/close" % future["id"])
        self.staff(404, "POST", "/v1/admin/draws/999999/close")
        self.call(200, "GET", "/v1/draws/%d" % past["id"], key=None)
        self.call(404, "GET", "/v1/draws/999999", key=None)
        # --- coalition settlement (docs/coalition.md): a past month closed, twice
        self.staff(200, "GET", "/v1/admin/settlement/periods")
        self.staff(200, "GET", "/v1/admin/settlement/periods/2020-01")
        self.staff(400, "GET", "/v1/admin/settlement/periods/2020-13")
        self.staff(409, "POST", "/v1/admin/settlement/periods/2099-01/close")
        closed = self.staff(201, "POST", "/v1/admin/settlement/periods/2020-01/close")
        self.staff(200, "POST", "/v1/admin/settlement/periods/2020-01/close")
        self.staff(400, "POST", "/v1/admin/settlement/periods/x/close")
        self.staff(200, "GET", "/v1/admin/settlement/periods/2020-01?format=csv")
        self.staff(200, "GET", "/v1/admin/settlement/periods/2020-01?format=csv&part=matrix")
        self.staff(404, "GET", "/v1/admin/settlement/periods/2019-12")
        self.staff(200, "GET", "/v1/admin/settlement/statements/%d" % closed["first_number"])
        self.staff(200, "GET", "/v1/admin/settlement/statements/%d?format=csv"
                   % closed["first_number"])
        self.staff(404, "GET", "/v1/admin/settlement/statements/999999")
        self.staff(200, "GET", "/v1/admin/reports/customers?from=2026-01-01&to=2026-12-31")
        self.staff(200, "GET", "/v1/admin/reports/customers?store=main&window=3&format=csv")
        self.staff(400, "GET", "/v1/admin/reports/customers?window=25")
        # --- a partner's staff (docs/api.md "Partners")
        wash = self.call(200, "POST", "/v1/admin/login",
                         {"login": "washer", "password": PASSWORD}, key=None)["token"]
        self.call(200, "GET", "/v1/partner/me", key=wash)
        self.call(200, "GET", "/v1/partner/operations?from=2026-01-01&limit=10", key=wash)
        self.call(400, "GET", "/v1/partner/operations?limit=0", key=wash)
        self.call(200, "GET", "/v1/partner/rules", key=wash)
        mine = self.call(200, "GET", "/v1/partner/statements", key=wash)["statements"]
        self.assertEqual([x["party"] for x in mine], ["wash"])  # of 2020-01, closed above
        self.call(200, "GET", "/v1/partner/statements/%d" % mine[0]["number"], key=wash)
        self.call(404, "GET", "/v1/partner/statements/%d" % closed["first_number"], key=wash)
        self.call(400, "GET", "/v1/partner/statements?before=x", key=wash)
        self.call(403, "GET", "/v1/admin/staff", key=wash)
        self.staff(403, "GET", "/v1/partner/me")
        self.staff(201, "POST", "/v1/admin/staff", {"login": "wash2", "role": "partner",
                                                    "partner": "wash", "password": PASSWORD})
        self.staff(400, "POST", "/v1/admin/staff", {"login": "wash3", "role": "partner",
                                                    "password": PASSWORD})
        bank = self.call(200, "POST", "/v1/admin/login",
                         {"login": "banker", "password": PASSWORD}, key=None)["token"]
        txns = {"transactions": [{"id": "T-1", "at": "2026-05-20T10:00:00Z", "card": c[0],
                                  "amount": 150000, "currency": "RUB", "merchant": "Cafe"}]}
        self.call(201, "POST", "/v1/partner/card-transactions", txns, key=bank)
        self.call(200, "POST", "/v1/partner/card-transactions", txns, key=bank)
        self.call(403, "POST", "/v1/partner/card-transactions", txns, key=wash)
        self.call(400, "POST", "/v1/partner/card-transactions", {"transactions": []}, key=bank)
        self.staff(200, "POST", "/v1/admin/imports?kind=cards&dry_run=1", "number\nOAS-1\n")
        self.staff(200, "POST", "/v1/admin/imports?kind=cards", "number\nOAS-1\n")
        self.staff(400, "POST", "/v1/admin/imports?kind=cards", "number,state\nOAS-2,lost\n")
        self.staff(400, "POST", "/v1/admin/imports?kind=people", "number\nOAS-3\n")
        # --- login limits: a login's sixth failure in 15 minutes
        for _ in range(5):
            self.call(401, "POST", "/v1/admin/login", {"login": "nobody", "password": "x"},
                      key=None)
        self.call(429, "POST", "/v1/admin/login", {"login": "nobody", "password": "x"},
                  key=None)
        self.staff(200, "GET", "/v1/admin/export/customers.csv")
        self.staff(200, "GET", "/v1/admin/export/balances.csv")
        self.notify_flows()
        self.self_flows()
        self.marketing_flows()
        # --- erase
        self.staff(400, "POST", "/v1/admin/customers/%d/erase" % two["id"], {})
        self.staff(200, "POST", "/v1/admin/customers/%d/erase" % two["id"], {"reason": "asked"})
        self.staff(200, "GET", "/v1/admin/customers/%d" % two["id"])
        # --- every described operation: without credentials, and a method it lacks
        for template, item in sorted(self.doc["paths"].items()):
            for method in METHODS:
                if method in item and item[method].get("security"):
                    s, _ = k.call(method.upper(), sample_path(template), None, key=None)
                    self.assertEqual(s, 401, "%s %s" % (method, template))
            if "put" not in item and not item.get("x-kopilka-any-method"):
                s, _ = k.call("PUT", sample_path(template), {}, key=None)
                self.assertEqual(s, 405, "PUT %s" % template)
        self.staff(200, "POST", "/v1/admin/logout")

    def marketing_flows(self):
        # --- segments and campaigns (docs/marketing.md)
        seg = self.staff(201, "POST", "/v1/admin/segments",
                         {"name": "OAS all", "filter": {"period": {"days": 30},
                                                        "spend": {"min": 0}}})
        self.staff(400, "POST", "/v1/admin/segments", {"name": "OAS bad", "filter": {"x": 1}})
        self.staff(200, "GET", "/v1/admin/segments")
        self.staff(200, "POST", "/v1/admin/segments/preview", {"filter": {"consent": "any"}})
        self.staff(400, "POST", "/v1/admin/segments/preview", {"filter": {"spend": {"min": "x"}}})
        self.staff(200, "GET", "/v1/admin/segments/%d" % seg["id"])
        self.staff(404, "GET", "/v1/admin/segments/999999")
        self.staff(200, "PATCH", "/v1/admin/segments/%d" % seg["id"], {"filter": {}})
        self.staff(404, "PATCH", "/v1/admin/segments/999999", {"filter": {}})
        tmp = self.staff(201, "POST", "/v1/admin/segments", {"name": "OAS tmp", "filter": {}})
        self.staff(200, "DELETE", "/v1/admin/segments/%d" % tmp["id"])
        self.staff(404, "DELETE", "/v1/admin/segments/%d" % tmp["id"])
        body = {"name": "OAS", "segment": seg["id"],
                "grant": {"kind": "premium", "points": 10, "validity_days": 30},
                "budget": 100, "control_share": 0.1,
                "message": {"subject": {"en": "Hi"}, "text": {"en": "Hi {{first_name}}"}}}
        c = self.staff(201, "POST", "/v1/admin/campaigns", body)
        self.staff(400, "POST", "/v1/admin/campaigns", {"name": "OAS", "segment": 999999})
        self.staff(200, "GET", "/v1/admin/campaigns")
        self.staff(200, "GET", "/v1/admin/campaigns/%d" % c["id"])
        self.staff(404, "GET", "/v1/admin/campaigns/999999")
        self.staff(200, "PATCH", "/v1/admin/campaigns/%d" % c["id"], {"budget": 200})
        self.staff(400, "PATCH", "/v1/admin/campaigns/%d" % c["id"], {"control_share": 2})
        self.staff(200, "POST", "/v1/admin/campaigns/%d/preview" % c["id"])
        self.staff(404, "POST", "/v1/admin/campaigns/999999/preview")
        self.staff(200, "POST", "/v1/admin/campaigns/%d/start" % c["id"], {})
        self.staff(409, "POST", "/v1/admin/campaigns/%d/start" % c["id"], {})
        self.staff(200, "GET", "/v1/admin/campaigns/%d/results" % c["id"])
        self.staff(400, "GET", "/v1/admin/campaigns/%d/results?window_days=0" % c["id"])
        c2 = self.staff(201, "POST", "/v1/admin/campaigns", dict(body, name="OAS 2"))
        self.staff(200, "POST", "/v1/admin/campaigns/%d/cancel" % c2["id"])
        self.staff(409, "POST", "/v1/admin/campaigns/%d/cancel" % c2["id"])

    def wait_messages(self, query, kind):
        for _ in range(200):
            s, a = self.k.call("GET", "/v1/admin/messages?" + query, key=self.admin)
            # A webhook's first attempt is listed before it is written
            # (id null, derived from its event): wait for the row.
            got = [m for m in a["messages"] if m["kind"] == kind and m["id"] is not None]
            if got:
                return got
            time.sleep(0.1)
        self.fail("no %s message for %s" % (kind, query))

    def notify_flows(self):
        k, c = self.k, self.k.cards
        # --- webhook endpoints
        ep = self.staff(201, "POST", "/v1/admin/webhooks",
                        {"url": "http://127.0.0.1:9/hook", "kinds": ["earned", "burnt"]})
        self.staff(400, "POST", "/v1/admin/webhooks", {"url": "ftp://x.example/"})
        self.staff(200, "GET", "/v1/admin/webhooks")
        self.staff(200, "GET", "/v1/admin/webhooks/%d" % ep["id"])
        self.staff(404, "GET", "/v1/admin/webhooks/999999")
        self.staff(200, "PATCH", "/v1/admin/webhooks/%d" % ep["id"], {"description": "CRM"})
        self.staff(400, "PATCH", "/v1/admin/webhooks/%d" % ep["id"], {"kinds": ["nope"]})
        self.staff(200, "POST", "/v1/admin/webhooks/%d/rotate" % ep["id"])
        self.staff(404, "POST", "/v1/admin/webhooks/999999/rotate")
        # --- messages: a purchase's webhook delivery (nobody listens: pending)
        self.call(201, "POST", "/v1/purchases", {"card": c[0], "receipt": "RN1", "lines": [LINE]})
        hook = self.wait_messages("channel=webhook", "earned")[0]
        self.staff(400, "GET", "/v1/admin/messages?state=zombie")
        self.staff(200, "GET", "/v1/admin/messages/%d" % hook["id"])
        self.staff(404, "GET", "/v1/admin/messages/999999")
        k.execute("UPDATE messages SET state = 2, last_error = 'refused' WHERE id = ?",
                  (hook["id"],))
        self.staff(200, "POST", "/v1/admin/messages/%d/retry" % hook["id"])
        self.staff(404, "POST", "/v1/admin/messages/999999/retry")
        # --- templates
        self.staff(200, "GET", "/v1/admin/templates")
        self.staff(200, "GET", "/v1/admin/templates/earned/sms/en")
        self.staff(400, "GET", "/v1/admin/templates/nope/sms/en")
        self.staff(400, "PUT", "/v1/admin/templates/earned/sms/en", {"text": "{{balanse}}"})
        self.staff(200, "PUT", "/v1/admin/templates/earned/sms/en",
                   {"text": "+{{earned}}, balance {{balance}}"})
        self.staff(200, "POST", "/v1/admin/templates/earned/sms/en/preview")
        self.staff(200, "POST", "/v1/admin/templates/earned/email/en/preview",
                   {"subject": "S", "text": "T {{balance}}", "html": "<p>{{balance}}</p>"})
        self.staff(400, "POST", "/v1/admin/templates/earned/sms/en/preview", {"text": "{{#x}}"})
        self.staff(200, "DELETE", "/v1/admin/templates/earned/sms/en")
        self.staff(404, "DELETE", "/v1/admin/templates/earned/sms/en")
        # --- a customer's preferences, a campaign, the unsubscribe link
        me = self.call(201, "POST", "/v1/customers",
                       {"card": c[7], "full_name": "Notify Me", "phone": "+380500000007",
                        "email": "n@example.com", "consent": CONSENT})
        prefs = "/v1/customers/%d/notifications" % me["id"]
        self.staff(200, "GET", prefs)
        self.staff(404, "GET", "/v1/customers/999999/notifications")
        self.staff(200, "PUT", prefs, {"language": "en", "utc_offset": "+02:00",
                                       "marketing": ["email", "sms"],
                                       "marketing_consent": {"given": True, "version": "m1"}})
        self.staff(400, "PUT", prefs, {"utc_offset": "2"})
        camp = {"name": "spring", "customers": [me["id"]], "subject": {"en": "Spring"},
                "text": {"en": "Hello {{first_name}}"}}
        self.staff(202, "POST", "/v1/admin/campaigns", camp)
        self.staff(400, "POST", "/v1/admin/campaigns", dict(camp, text={"en": "{{x}}"}))
        mail = self.wait_messages("customer=%d&channel=email" % me["id"], "campaign")[0]
        opened = self.staff(200, "GET", "/v1/admin/messages/%d" % mail["id"])
        token = re.split(r"/v1/unsubscribe[/?](?:token=)?", opened["content"]["unsubscribe_url"])[1]
        self.call(200, "GET", "/v1/unsubscribe/" + token, key=None)
        self.call(404, "GET", "/v1/unsubscribe/nope", key=None)
        self.call(400, "POST", "/v1/unsubscribe/" + token, "x=y", key=None)
        self.call(200, "POST", "/v1/unsubscribe/" + token, "List-Unsubscribe=One-Click", key=None)
        # --- SMS replies
        self.call(200, "POST", "/v1/sms/inbound?token=inbound-token",
                  {"from": "+380500000007", "text": "STOP"}, key=None)
        self.call(401, "POST", "/v1/sms/inbound", {"from": "+380500000007", "text": "STOP"},
                  key=None)
        # --- the cabinet's login
        self.call(202, "POST", "/v1/login/code", {"phone": "+380500000007"}, key=None)
        self.call(429, "POST", "/v1/login/code", {"phone": "+380500000007"}, key=None)
        self.call(400, "POST", "/v1/login/code", {"phone": "1"}, key=None)
        sms = self.wait_messages("customer=%d&channel=sms" % me["id"], "login_code")[0]
        text = self.staff(200, "GET", "/v1/admin/messages/%d" % sms["id"])["content"]["text"]
        code = re.search(r"\b(\d{6})\b", text).group(1)
        self.call(401, "POST", "/v1/login", {"phone": "+380500000007", "code": "000000"
                                             if code != "000000" else "111111"}, key=None)
        self.call(400, "POST", "/v1/login", {"phone": "+380500000007"}, key=None)
        sess = self.call(200, "POST", "/v1/login", {"phone": "+380500000007", "code": code},
                         key=None)
        self.call(200, "GET", "/v1/me", key=sess["token"])
        self.call(403, "GET", "/v1/me", key=self.admin)
        self.call(200, "POST", "/v1/logout", key=sess["token"])
        self.call(401, "POST", "/v1/logout", key=sess["token"])

    def sms_code(self, phone):
        """The code of the newest login_code SMS to phone, opened by the admin."""
        for _ in range(200):
            s, a = self.k.call("GET", "/v1/admin/messages?channel=sms&limit=100", key=self.admin)
            for m in a["messages"]:
                if m["kind"] != "login_code":
                    continue
                s, full = self.k.call("GET", "/v1/admin/messages/%d" % m["id"], key=self.admin)
                if full["content"] and full["content"]["to"] == phone:
                    return re.search(r"\b(\d{6})\b", full["content"]["text"]).group(1)
            time.sleep(0.1)
        self.fail("no login code to " + phone)

    def self_flows(self):
        """The customer's own API (http_self.c), each route's success and
        errors."""
        c = self.k.cards
        # --- sign-up
        self.call(202, "POST", "/v1/login/code", {"phone": "+380500000008", "purpose": "signup"},
                  key=None)
        self.call(400, "POST", "/v1/login/code", {"phone": "+380500000018", "purpose": "x"},
                  key=None)
        code = self.sms_code("+380500000008")
        form = {"phone": "+380500000008", "code": code, "card": c[8], "full_name": "Self Signed",
                "email": "self@example.com",
                "consent": {"rules": True, "marketing": True, "version": "2026-01"}}
        self.call(401, "POST", "/v1/signup", dict(form, code="000000" if code != "000000"
                                                  else "111111"), key=None)
        self.call(400, "POST", "/v1/signup", dict(form, consent={"rules": False,
                                                                 "version": "2026-01"}), key=None)
        self.call(404, "POST", "/v1/signup", dict(form, card="NOPE-1"), key=None)
        sess = self.call(201, "POST", "/v1/signup", form, key=None)
        a, me = sess["token"], sess["customer"]
        other = self.call(201, "POST", "/v1/customers",
                          {"card": c[9], "full_name": "Other Self", "phone": "+380500000009",
                           "consent": CONSENT})
        self.call(202, "POST", "/v1/login/code", {"phone": "+380500000009"}, key=None)
        code = self.sms_code("+380500000009")
        b = self.call(200, "POST", "/v1/login", {"phone": "+380500000009", "code": code},
                      key=None)["token"]
        self.staff(201, "POST", "/v1/admin/adjustments",
                   {"card": c[8], "points": 600, "reason": "gift", "key": "SELF-1"})
        self.call(201, "POST", "/v1/purchases", {"card": c[8], "receipt": "SELF-P1",
                                                 "lines": [LINE]})
        # --- history, own data, preferences
        self.call(200, "GET", "/v1/me/history", key=a)
        self.call(200, "GET", "/v1/me/history?limit=1", key=a)
        self.call(400, "GET", "/v1/me/history?limit=0", key=a)
        self.call(403, "GET", "/v1/me/history", key=self.admin)
        self.call(200, "GET", "/v1/me/draws", key=a)
        self.call(403, "GET", "/v1/me/draws", key=self.admin)
        self.call(200, "PATCH", "/v1/me", {"full_name": "Self Signed Two",
                                           "birthday": "1990-01-02"}, key=a)
        self.call(400, "PATCH", "/v1/me", {"phone": "+380500000099"}, key=a)
        self.call(200, "PUT", "/v1/me/notifications", {"language": "en", "marketing": ["sms"]},
                  key=a)
        self.call(400, "PUT", "/v1/me/notifications", {"utc_offset": "2"}, key=a)
        # --- cards
        for pic in ("barcode.svg", "qr.svg"):
            self.call(200, "GET", "/v1/me/cards/%s/%s" % (c[8], pic), key=a)
            self.call(404, "GET", "/v1/me/cards/%s/%s" % (c[9], pic), key=a)
        # --- family
        self.call(404, "GET", "/v1/me/family", key=a)
        self.call(201, "POST", "/v1/me/family", key=a)
        self.call(409, "POST", "/v1/me/family", key=a)
        self.call(200, "GET", "/v1/me/family", key=a)
        inv = self.call(201, "POST", "/v1/me/family/invitations", {"phone": "+380500000009"},
                        key=a)
        self.call(200, "POST", "/v1/me/family/invitations", {"phone": "+380500000009"}, key=a)
        self.call(400, "POST", "/v1/me/family/invitations", {"phone": "12"}, key=a)
        self.call(200, "GET", "/v1/me/family/invitations", key=a)
        self.call(200, "GET", "/v1/me/family/invitations", key=b)
        self.call(404, "POST", "/v1/me/family/invitations/%d/accept" % inv["id"], key=a)
        self.call(200, "POST", "/v1/me/family/invitations/%d/decline" % inv["id"], key=b)
        self.call(409, "POST", "/v1/me/family/invitations/%d/decline" % inv["id"], key=b)
        inv = self.call(201, "POST", "/v1/me/family/invitations", {"phone": "+380500000009"},
                        key=a)
        self.call(200, "POST", "/v1/me/family/invitations/%d/accept" % inv["id"], key=b)
        member = "/v1/me/family/members/%d" % other["id"]
        self.call(200, "PATCH", member, {"may_spend": True}, key=a)
        self.call(403, "PATCH", member, {"may_spend": True}, key=b)
        self.call(403, "POST", "/v1/me/family/members/%d/remove" % me, key=b)
        self.call(200, "POST", member + "/remove", key=b)
        # --- transfers, a lost card, the export, erasure
        t = {"to_phone": "+380500000009", "points": 100, "key": "SELF-T1"}
        self.call(201, "POST", "/v1/me/transfers", t, key=a)
        self.call(200, "POST", "/v1/me/transfers", t, key=a)
        self.call(400, "POST", "/v1/me/transfers", dict(t, points=0, key="SELF-T2"), key=a)
        self.call(200, "POST", "/v1/me/cards/%s/block" % c[9], {}, key=b)
        self.call(404, "POST", "/v1/me/cards/%s/block" % c[8], {}, key=b)
        self.call(200, "GET", "/v1/me/export", key=a)
        self.call(400, "POST", "/v1/me/erase", {"confirm": "no"}, key=b)
        self.call(200, "POST", "/v1/me/erase", {"confirm": "ERASE"}, key=b)
        self.call(401, "GET", "/v1/me/export", key=b)
        self.catalog_flows(a, c[8])

    def catalog_flows(self, me, card):
        """The rewards catalog (http_catalog.c): each route's success and
        errors; `me` is a customer's session holding `card`."""
        k, c = self.k, self.k.cards
        self.staff(400, "POST", "/v1/admin/catalog/items", {"name": "Mug", "price": 0})
        mug = self.staff(201, "POST", "/v1/admin/catalog/items",
                         {"name": "Mug", "price": 10, "copay": 500, "description": "red"})
        wash = self.staff(201, "POST", "/v1/admin/catalog/items",
                          {"name": "Wash", "price": 999999, "unlimited": True})
        self.staff(200, "PATCH", "/v1/admin/catalog/items/%d" % mug["id"], {"price": 20})
        self.staff(404, "PATCH", "/v1/admin/catalog/items/999999", {"price": 20})
        stock = "/v1/admin/catalog/items/%d/stock" % mug["id"]
        self.staff(200, "PUT", stock, {"stock": [{"store": "main", "qty": 3}]})
        self.staff(400, "PUT", stock, {"stock": []})
        image = "/v1/admin/catalog/items/%d/image" % mug["id"]
        png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
        for body, ctype, expect in ((png, "image/png", 200), (png, "image/gif", 400)):
            s, _ = k.call("PUT", image, body, key=self.admin, headers={"Content-Type": ctype})
            self.assertEqual(s, expect, k.last_raw()[:400])
        path = "/v1/catalog/items/%d/image" % mug["id"]
        self.call(200, "GET", path, key=None)
        self.call(404, "GET", "/v1/catalog/items/%d/image" % wash["id"], key=None)
        self.call(200, "GET", "/v1/catalog")
        self.staff(200, "GET", "/v1/catalog?all=1")
        self.call(403, "GET", "/v1/catalog", key=me)
        # The till orders for a card; the refusals of stock and points.
        self.staff(201, "POST", "/v1/admin/adjustments",
                   {"card": c[0], "points": 500, "reason": "gift", "key": "CAT-1"})
        o = self.call(201, "POST", "/v1/orders", {"card": c[0], "item_id": mug["id"], "key": "O1"})
        self.call(200, "POST", "/v1/orders", {"card": c[0], "item_id": mug["id"], "key": "O1"})
        self.call(409, "POST", "/v1/orders", {"card": c[0], "item_id": mug["id"], "qty": 5,
                                              "key": "O2"})
        self.call(422, "POST", "/v1/orders", {"card": c[0], "item_id": wash["id"], "key": "O3"})
        self.call(200, "GET", "/v1/orders?card=" + c[0])
        self.staff(200, "GET", "/v1/orders?state=ordered")
        self.call(400, "GET", "/v1/orders?state=lost")
        self.staff(200, "POST", "/v1/orders/%d/ready" % o["id"])
        self.staff(409, "POST", "/v1/orders/%d/ready" % o["id"])
        self.call(200, "POST", "/v1/orders/%d/hand-over" % o["id"])
        self.call(409, "POST", "/v1/orders/%d/hand-over" % o["id"])
        o = self.call(201, "POST", "/v1/orders", {"card": c[0], "item_id": mug["id"], "key": "O4"})
        self.call(200, "POST", "/v1/orders/%d/cancel" % o["id"])
        self.call(409, "POST", "/v1/orders/%d/cancel" % o["id"])
        # The customer's own.
        self.call(200, "GET", "/v1/me/catalog", key=me)
        self.call(404, "POST", "/v1/me/orders", {"card": c[0], "item_id": mug["id"],
                                                 "store": "main", "key": "M1"}, key=me)
        mine = self.call(201, "POST", "/v1/me/orders", {"card": card, "item_id": mug["id"],
                                                        "store": "main", "key": "M1"}, key=me)
        self.call(200, "GET", "/v1/me/orders", key=me)
        self.call(400, "GET", "/v1/me/orders?limit=0", key=me)
        self.call(200, "POST", "/v1/me/orders/%d/cancel" % mine["id"], key=me)
        self.call(409, "POST", "/v1/me/orders/%d/cancel" % mine["id"], key=me)

    def recorded(self):
        with open(self.record, encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    def test_every_answer_of_every_route_conforms(self):
        self.run_flows()
        lines = self.recorded()
        self.assertGreater(len(lines), 200)
        problems = check_recording(self.doc, lines)
        self.assertEqual(problems, [], "\n".join(problems[:40]))
        self.assertGreater(len(self.sent), 60)
        problems = self.check_requests(self.doc)
        self.assertEqual(problems, [], "\n".join(problems[:40]))
        # Every described operation was answered with a success and an error.
        seen = {}
        for line in lines:
            t = find_path(self.doc, line["path"].split("?")[0])
            if t is not None:
                seen.setdefault((line["method"].lower(), t), set()).add(line["status"])
        for template, item in self.doc["paths"].items():
            for method in METHODS:
                if method not in item:
                    continue
                got = seen.get((method, template), set())
                self.assertTrue(any(200 <= s < 300 for s in got), "%s %s: %s"
                                % (method, template, sorted(got)))
                if item[method].get("security"):
                    self.assertTrue(any(s >= 400 for s in got), "%s %s" % (method, template))
        # The check fails when the description is wrong: the same answers
        # against a broken copy.
        broken = copy.deepcopy(self.doc)
        broken["components"]["schemas"]["Card"]["properties"]["balance"] = {"type": "string"}
        self.assertTrue(any("balance" in p for p in check_recording(broken, lines)))
        broken = copy.deepcopy(self.doc)
        del broken["components"]["schemas"]["PurchaseRequest"]["properties"]["receipt"]
        self.assertTrue(any("'receipt'" in p for p in self.check_requests(broken)))
        broken = copy.deepcopy(self.doc)
        del broken["paths"]["/v1/purchases"]["post"]["responses"]["409"]
        self.assertTrue(any("status 409 is not described" in p
                            for p in check_recording(broken, lines)))
        broken = copy.deepcopy(self.doc)
        broken["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"][
            "enum"].remove("unknown_card")
        self.assertTrue(any("unknown_card" in p for p in check_recording(broken, lines)))


def check_file(test, name):
    doc = load_doc()
    with open(name, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f if line.strip()]
    problems = check_recording(doc, lines)
    test.assertEqual(problems, [], "%d answers, %d problems:\n%s"
                     % (len(lines), len(problems), "\n".join(problems[:60])))
    return lines


# The suites whose answers Suites records (test_openapi.py's own are Flows').
SUITES = ("test_pos.py", "test_rules.py", "test_people.py", "test_ops.py", "test_keys.py",
          "test_till.py", "test_durability.py", "test_caps.py", "test_phone.py",
          "test_cards.py", "test_self.py", "test_programs.py", "test_office_extras.py",
          "test_campaigns.py", "test_catalog.py", "test_draws.py", "test_reports.py",
          "test_members_report.py", "test_customers_report.py", "test_cabinet_me.py",
          "test_metrics.py", "test_notify.py", "test_notify_routes.py", "test_sales.py",
          "test_sales_receipts.py", "test_simulate.py", "test_webhooks.py",
          "test_catalog_notify.py", "test_segments_rfm.py", "test_scheduler_campaigns.py",
          "test_settlement.py", "test_partners.py", "test_currencies.py")


class Recorded(unittest.TestCase):
    """Checks a recording of other suites: KOPILKA_OPENAPI_RECORD=FILE while
    they run, then KOPILKA_OPENAPI_CHECK=FILE for this class."""

    def test_a_recording_of_other_suites_conforms(self):
        name = os.environ.get("KOPILKA_OPENAPI_CHECK")
        if not name:
            self.skipTest("set KOPILKA_OPENAPI_CHECK=FILE (a recording) to check it")
        check_file(self, name)


class Suites(unittest.TestCase):
    """With KOPILKA_OPENAPI_ANSWERS=DIR (its own CTest entry,
    integration_openapi_suites): checks every answer the other integration
    suites got, as their CTest entries recorded them in DIR/<entry>.jsonl
    (tests/CMakeLists.txt); a suite without a recording as new as the
    binary is run here with the recorder on."""

    def test_every_answer_of_the_integration_suites_conforms(self):
        folder = os.environ.get("KOPILKA_OPENAPI_ANSWERS")
        if not folder:
            self.skipTest("set KOPILKA_OPENAPI_ANSWERS=DIR (the suites' recordings) to check them")
        listed = os.environ.get("KOPILKA_OPENAPI_SUITE_LIST")
        if listed is not None:
            self.assertEqual(sorted("test_%s.py" % x for x in listed.split(",")), sorted(SUITES),
                             "tests/CMakeLists.txt's openapi_recorded must list SUITES")
        built = os.stat(harness.binary()).st_mtime
        total = 0
        for suite in SUITES:
            record = os.path.join(folder, "integration_%s.jsonl" % suite[len("test_"):-3])
            fresh = os.path.exists(record) and os.stat(record).st_mtime >= built
            if not fresh or os.path.getsize(record) == 0:
                env = dict(os.environ, KOPILKA_OPENAPI_RECORD=record,
                           KOPILKA_OPENAPI_RECORD_FRESH="1")
                p = subprocess.run([sys.executable, os.path.join(harness.HERE, suite),
                                    "--kopilka", harness.binary()], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   timeout=1200)
                self.assertEqual(p.returncode, 0, "%s failed:\n%s" % (suite, p.stdout[-3000:]))
            lines = check_file(self, record)
            self.assertGreater(len(lines), 5, "%s recorded too few answers" % suite)
            total += len(lines)
        self.assertGreater(total, 10000)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
