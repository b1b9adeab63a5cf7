"""
test_draws.py: prize draws anyone can verify (docs/marketing.md "Prize
draws", docs/api.md "Prize draws") against a real `kopilka serve`, on SQLite
and PostgreSQL (integration_draws and its _pg twin):

  - a draw created by the back office publishes its commitment at once
    (GET /v1/draws/{id}, no credentials), which never changes;
  - purchases and a return in and out of the period, at two stores; closing
    before the period's end is refused on `to`; after it the entries are
    exactly those worked out by hand, the seed matches the commitment, and
    the winners are those this file's own implementation of the documented
    procedure draws from the published data;
  - `kopilka draw verify FILE` says "verified" (exit 0); one entry's count
    or the seed changed in the file is refused (exit 1) naming what does
    not match;
  - a second close (HTTP or `kopilka draw close`) answers the same result;
  - the winner sees the prize in the cabinet (GET /v1/me/draws), a
    customer with no entry sees none;
  - a store's draw: other stores' purchases left out, a partial return
    taking its amount back;
  - refusals: a cashier (403 naming draw.manage), a bad rule (400 on
    rule.per_minor); `kopilka draw create|list` for operators.

    python3 test_draws.py --kopilka build/kopilka [unittest options]
"""
import hashlib
import hmac
import json
import os
import threading
import unittest

import harness
from harness import LABOR
from test_people import PASSWORD
from test_self import SelfTestCase

SEPTEMBER = "2026-09-10T09:00:00Z"
OCTOBER = "2026-10-02T09:00:00Z"


def reference_winners(d):
    """The procedure of docs/marketing.md, written again from the text:
    the winners of a published draw `d` as [(slot, prize, id)]."""
    entries = [(e["id"], e["count"]) for e in d["entries"]]
    digest = hashlib.sha256("".join("%s:%d\n" % e for e in entries).encode()).hexdigest()
    seed = bytes.fromhex(d["seed"])
    left, total, out, k = list(entries), sum(c for _, c in entries), [], 0
    for prize in d["prizes"]:
        for _ in range(prize["count"]):
            if total:
                j = 0
                while True:
                    msg = "kopilka-draw-v1/%s/%d/%d" % (digest, k, j)
                    x = int.from_bytes(hmac.new(seed, msg.encode(), hashlib.sha256).digest()[:8],
                                       "big")
                    if x < 2**64 - 2**64 % total:
                        break
                    j += 1
                r = x % total
                for i, (pid, c) in enumerate(left):
                    if r < c:
                        break
                    r -= c
                out.append((k, prize["name"], pid))
                total -= c
                del left[i]
            k += 1
    return out


class Draws(SelfTestCase):

    def setUp(self):
        super().setUp()
        pw = os.path.join(self.k.dir, "password")
        for role in ("cashier", "marketer"):
            harness.run_cli(["staff", "add", self.k.db, "--login", "u_" + role, "--role", role,
                             "--password-file", pw])

    def as_role(self, role, method, path, body=None):
        s, a = self.k.call("POST", "/v1/admin/login", {"login": "u_" + role,
                                                       "password": PASSWORD}, key=None)
        self.assertEqual(s, 200, self.k.last_raw())
        return self.k.call(method, path, body, key=a["token"])

    def public(self, draw_id):
        s, d = self.k.call("GET", "/v1/draws/%d" % draw_id, key=None)
        self.assertEqual(s, 200, self.k.last_raw())
        return d

    def verify_file(self, doc):
        path = os.path.join(self.k.dir, "draw.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        return self.k.cli("draw", "verify", path, check=False)

    def test_create_buy_close_publish_verify(self):
        self.k.set_clock(SEPTEMBER)
        self._admin = None
        c = self.k.cards
        north = self.k.terminal_add("north")
        spec = {"name": "Autumn draw", "from": "2026-09-01T00:00:00Z",
                "to": "2026-10-01T00:00:00Z",
                "rule": {"kind": "spend", "per_minor": 10000},
                "prizes": [{"name": "Winter tyres", "count": 1}, {"name": "Car wash", "count": 2}]}
        s, a = self.as_role("cashier", "POST", "/v1/admin/draws", spec)
        self.assertEqual(s, 403)
        self.assertIn("draw.manage", a["error"]["message"])
        s, a = self.as_role("marketer", "POST", "/v1/admin/draws",
                            dict(spec, rule={"kind": "spend", "per_minor": 0}))
        self.assertEqual((s, a["error"]["field"]), (400, "rule.per_minor"), self.k.last_raw())
        s, a = self.as_role("marketer", "POST", "/v1/admin/draws", dict(spec, prizes=[]))
        self.assertEqual((s, a["error"]["field"]), (400, "prizes"), self.k.last_raw())
        s, draw = self.as_role("marketer", "POST", "/v1/admin/draws", spec)
        self.assertEqual(s, 201, self.k.last_raw())
        did, commitment = draw["id"], draw["commitment"]
        self.assertRegex(commitment, "^[0-9a-f]{64}$")
        self.assertEqual(draw["state"], "open")
        pub = self.public(did)
        self.assertEqual((pub["commitment"], pub["state"], pub["name"]),
                         (commitment, "open", "Autumn draw"))
        self.assertNotIn("seed", pub)
        self.assertNotIn("sealed_seed", json.dumps(pub))

        # Customer 0: 35 000 + 7 000 at north = 4 entries. Customer 1:
        # 12 000 = 1. Customer 2: 30 000 returned whole = 0. Customer 3:
        # 9 999 = 0. (Minor units; one entry per 10 000.)
        ids = [self.register(c[i], "+38050123000%d" % i) for i in range(4)]
        self.buy(c[0], "A1", 35000)
        s, _ = self.k.call("POST", "/v1/purchases", {
            "card": c[0], "receipt": "N1",
            "lines": [{"sku": "x", "category": LABOR, "amount": 7000}]}, key=north)
        self.assertEqual(s, 201, self.k.last_raw())
        self.buy(c[1], "B1", 12000)
        self.buy(c[2], "C1", 30000)
        s, _ = self.k.call("POST", "/v1/returns", {"card": c[2], "receipt": "CR1",
                                                   "original_receipt": "C1"})
        self.assertEqual(s, 201, self.k.last_raw())
        self.buy(c[3], "D1", 9999)
        s, a = self.as_role("marketer", "POST", "/v1/admin/draws/%d/close" % did)
        self.assertEqual((s, a["error"]["field"]), (409, "to"), self.k.last_raw())

        # October: a purchase after the period does not count.
        self.k.set_clock(OCTOBER)
        self._admin = None
        self.buy(c[1], "B2", 50000)
        # Four closes at once: the entries are read on readers, frozen
        # through the writer once; every answer is that one result.
        token = self.as_role("marketer", "POST", "/v1/admin/login",
                             {"login": "u_marketer", "password": PASSWORD})[1]["token"]
        answers = []

        def close_once():
            cl = self.k.client()
            answers.append(cl.call("POST", "/v1/admin/draws/%d/close" % did, None, key=token))
            cl.close()
        threads = [threading.Thread(target=close_once) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual([a[0] for a in answers], [200] * 4, answers)
        self.assertTrue(all(a[1] == answers[0][1] for a in answers))
        self.assertEqual(self.k.query("SELECT count(*) FROM audit WHERE action = 'draw.close'"),
                         [(1,)])
        s, closed = self.as_role("marketer", "POST", "/v1/admin/draws/%d/close" % did)
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertEqual(closed, answers[0][1])
        self.assertEqual(closed["state"], "closed")
        self.assertEqual(closed["commitment"], commitment)
        self.assertEqual(hashlib.sha256(bytes.fromhex(closed["seed"])).hexdigest(), commitment)
        self.assertEqual(sorted(e["count"] for e in closed["entries"]), [1, 4])
        self.assertEqual(closed["total_entries"], 5)
        self.assertEqual([e["id"] for e in closed["entries"]],
                         sorted(e["id"] for e in closed["entries"]))
        # Two participants, three prizes: both win, the last slot is empty.
        self.assertEqual([(w["slot"], w["prize"], w["id"]) for w in closed["winners"]],
                         reference_winners(closed))
        self.assertEqual(len(closed["winners"]), 2)
        self.assertEqual(self.public(did), closed)

        # Anyone verifies it from the file alone.
        p = self.verify_file(closed)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "verified"), p.stderr)
        tampered = json.loads(json.dumps(closed))
        tampered["entries"][0]["count"] += 1
        p = self.verify_file(tampered)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("total_entries", p.stdout)
        self.assertIn("entries_digest", p.stdout)
        tampered = json.loads(json.dumps(closed))
        tampered["seed"] = ("0" if closed["seed"][0] != "0" else "1") + closed["seed"][1:]
        p = self.verify_file(tampered)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("commitment", p.stdout)
        tampered = json.loads(json.dumps(closed))
        tampered["winners"][0]["id"], tampered["winners"][1]["id"] = (
            tampered["winners"][1]["id"], tampered["winners"][0]["id"])
        p = self.verify_file(tampered)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("winners: slot 0", p.stdout)

        # A second close, by HTTP or the command line: the same result.
        s, again = self.as_role("marketer", "POST", "/v1/admin/draws/%d/close" % did)
        self.assertEqual((s, again), (200, closed))
        p = self.k.cli("draw", "close", "DB", str(did))
        self.assertEqual(json.loads(p.stdout), closed)
        self.assertIn("closed already", p.stderr)

        # The cabinet: customer 0 won a prize (both participants did),
        # customer 3 has no entry.
        mine = self.me(self.session("+380501230000"), "GET", "/v1/me/draws", expect=200)[1]
        d0 = [d for d in mine["draws"] if d["id"] == did][0]
        self.assertEqual(d0["me"]["entries"], 4)
        won = {w["id"]: w["prize"] for w in closed["winners"]}
        self.assertEqual(d0["me"]["prize"], won[d0["me"]["id"]])
        mine = self.me(self.session("+380501230003"), "GET", "/v1/me/draws", expect=200)[1]
        self.assertIsNone([d for d in mine["draws"] if d["id"] == did][0]["me"])
        self.assertTrue(ids)

    def test_store_filter_and_a_partial_return(self):
        self.k.set_clock(SEPTEMBER)
        self._admin = None
        c = self.k.cards
        north = self.k.terminal_add("north")
        d = self.staff("POST", "/v1/admin/draws", {
            "name": "North", "from": "2026-09-01T00:00:00Z", "to": "2026-10-01T00:00:00Z",
            "rule": {"kind": "spend", "per_minor": 5000, "store": "north"},
            "prizes": [{"name": "Mug", "count": 1}]}, expect=201)
        self.assertEqual(d["rule"], {"kind": "spend", "per_minor": 5000, "store": "north",
                                     "tier": None})
        for i in range(3):
            self.register(c[i], "+38050123002%d" % i)
        two = [{"sku": "A", "category": LABOR, "amount": 6000},
               {"sku": "B", "category": LABOR, "amount": 6000}]
        # Customer 0 at north: 12 000, then B returned: 6 000 left = 1 entry.
        s, _ = self.k.call("POST", "/v1/purchases", {"card": c[0], "receipt": "N1",
                                                     "lines": two}, key=north)
        self.assertEqual(s, 201, self.k.last_raw())
        s, _ = self.k.call("POST", "/v1/returns", {"card": c[0], "receipt": "NR1",
                                                   "original_receipt": "N1",
                                                   "lines": [{"sku": "B"}]}, key=north)
        self.assertEqual(s, 201, self.k.last_raw())
        # Customer 1 at main only: nothing. Customer 2 at north: 10 000 = 2.
        self.buy(c[1], "M1", 50000)
        s, _ = self.k.call("POST", "/v1/purchases", {
            "card": c[2], "receipt": "N2",
            "lines": [{"sku": "A", "category": LABOR, "amount": 10000}]}, key=north)
        self.assertEqual(s, 201, self.k.last_raw())
        self.k.set_clock(OCTOBER)
        self._admin = None
        closed = self.staff("POST", "/v1/admin/draws/%d/close" % d["id"])
        self.assertEqual(sorted(e["count"] for e in closed["entries"]), [1, 2])
        self.assertEqual(closed["total_entries"], 3)
        self.assertEqual([(w["slot"], w["prize"], w["id"]) for w in closed["winners"]],
                         reference_winners(closed))

    def test_cli_create_list_visits(self):
        self.k.set_clock(SEPTEMBER)
        self._admin = None
        p = self.k.cli("draw", "create", "DB", "--name", "Visits", "--from",
                       "2026-09-01T00:00:00Z", "--to", "2026-09-30T00:00:00Z", "--rule", "visit",
                       "--prize", "Oil change:1")
        d = json.loads(p.stdout)
        self.assertEqual((d["rule"]["kind"], d["state"]), ("visit", "open"))
        c = self.k.cards
        self.register(c[0], "+380501230010")
        self.register(c[1], "+380501230011")
        self.buy(c[0], "V1", 100)
        self.buy(c[0], "V2", 100)
        self.buy(c[1], "V3", 100)
        p = self.k.cli("draw", "close", "DB", str(d["id"]))
        closed = json.loads(p.stdout)
        self.assertEqual(sorted(e["count"] for e in closed["entries"]), [1, 2])
        self.assertEqual([(w["slot"], w["prize"], w["id"]) for w in closed["winners"]],
                         reference_winners(closed))
        p = self.k.cli("draw", "list", "DB")
        self.assertIn("%d\tclosed\t" % d["id"], p.stdout)
        self.assertIn(d["commitment"], p.stdout)
        p = self.k.cli("draw", "create", "DB", "--name", "Bad", "--from", "2026-09-01T00:00:00Z",
                       "--to", "2026-08-01T00:00:00Z", "--prize", "X:1", "--per-minor", "5",
                       check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("to:", p.stderr)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
