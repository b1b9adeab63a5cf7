"""
test_ops.py: black-box tests of running Kopilka: the access log and the
request id, slow clients (the request deadline and the per-address limit),
`kopilka backup` of a database being served, a second `kopilka demo`, and
the command line's help, version, argument checks and password prompt.

    python3 test_ops.py --kopilka build/kopilka [unittest options]

Every test starts its own database (harness.Kopilka). Sockets stay on
loopback; the slow-client test opens a bounded number of connections from
127.0.0.2 (also loopback on Linux) and stops by itself.
"""
import http.client
import json
import os
import pty
import re
import select
import signal
import socket
import stat
import subprocess
import threading
import time
import unittest

import harness
from harness import LABOR, PARTS

CARD_RE = re.compile(r"\b\d{13}\b")


def purchase(card, receipt, amount=500000):
    return {"card": card, "receipt": receipt,
            "lines": [{"sku": "LAB-1", "category": LABOR, "amount": amount},
                      {"sku": "PART-1", "category": PARTS, "amount": 100000}]}


def access_lines(text):
    """The access log's request lines in text (JSON objects with a route)."""
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            doc = json.loads(line)
            if "route" in doc:
                out.append(doc)
    return out


def read_log(k):
    with open(k.log, "r", encoding="utf-8", errors="replace") as f:
        return f.read()


def wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class AccessLog(unittest.TestCase):
    def setUp(self):
        self.k = harness.Kopilka(cards=2)

    def tearDown(self):
        self.k.close()

    def test_each_request_is_one_json_line_with_route_status_store_and_id(self):
        self.k.start()
        card = self.k.cards[0]
        s, _ = self.k.call("POST", "/v1/purchases", purchase(card, "R-1"),
                           headers={"X-Request-Id": "till-7.r1"})
        self.assertEqual(s, 201, self.k.last_raw())
        s, _ = self.k.call("GET", "/v1/cards/" + card)
        self.assertEqual(s, 200)
        s, _ = self.k.call("GET", "/v1/admin/customers/17/history", key=None)
        self.assertEqual(s, 401)
        s, _ = self.k.call("POST", "/v1/customers",
                           {"card": card, "phone": "+79161234567", "name": "Ivan Petrov"})
        self.assertTrue(wait_for(lambda: len(access_lines(read_log(self.k))) >= 5, 5))
        text = read_log(self.k)
        lines = access_lines(text)
        mine = [l for l in lines if l["route"] != "/v1/cards/{}" or l["status"] != 401]
        # The harness's readiness probe (GET /v1/cards/x, 401) comes first.
        self.assertEqual(lines[0]["route"], "/v1/cards/{}")
        self.assertEqual(lines[0]["status"], 401)
        p, c, h = mine[0], mine[1], mine[2]
        self.assertEqual(set(p), {"time", "method", "route", "status", "latency_us", "store",
                                  "request_id"})
        self.assertEqual((p["method"], p["route"], p["status"], p["store"], p["request_id"]),
                         ("POST", "/v1/purchases", 201, "main", "till-7.r1"))
        self.assertRegex(p["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        self.assertIsInstance(p["latency_us"], int)
        self.assertGreaterEqual(p["latency_us"], 0)
        self.assertEqual((c["method"], c["route"], c["status"], c["store"]),
                         ("GET", "/v1/cards/{}", 200, "main"))
        self.assertRegex(c["request_id"], r"^[0-9a-f]{16}$")
        self.assertEqual((h["route"], h["status"], h["store"]),
                         ("/v1/admin/customers/{}/history", 401, ""))
        # Never a card number, a phone or a name in the log.
        self.assertNotIn(card, text)
        self.assertNotIn("9161234567", text)
        self.assertNotIn("Petrov", text)
        self.assertIsNone(CARD_RE.search("\n".join(json.dumps(l) for l in lines)))

    def test_request_id_is_echoed_or_made(self):
        self.k.start()
        c = self.k.client()
        s, _ = c.call("GET", "/health", headers={"X-Request-Id": "abc-123"})
        self.assertEqual(s, 200)
        self.assertEqual(c.last_headers.get("X-Request-Id"), "abc-123")
        made = set()
        for bad in ("has space", "x" * 65, "semi;colon", None):
            h = {"X-Request-Id": bad} if bad is not None else None
            s, _ = c.call("GET", "/health", headers=h)
            self.assertEqual(s, 200)
            rid = c.last_headers.get("X-Request-Id")
            self.assertRegex(rid or "", r"^[0-9a-f]{16}$", bad)
            made.add(rid)
        self.assertEqual(len(made), 4)  # a new id for each request
        s, _ = c.call("GET", "/health", headers={"X-Request-Id": "y" * 64})
        self.assertEqual(c.last_headers.get("X-Request-Id"), "y" * 64)
        c.close()

    def test_access_log_off_and_to_a_file(self):
        self.k.start(serve_args=["--access-log", "off"])
        self.assertEqual(self.k.call("GET", "/health")[0], 200)
        self.k.stop()
        self.assertEqual(access_lines(read_log(self.k)), [])
        path = os.path.join(self.k.dir, "access.jsonl")
        self.k.start(serve_args=["--access-log", path])
        self.assertEqual(self.k.call("GET", "/health", headers={"X-Request-Id": "f1"})[0], 200)
        self.k.stop()
        with open(path, encoding="utf-8") as f:
            lines = access_lines(f.read())
        self.assertEqual([(l["route"], l["status"], l["request_id"]) for l in lines[-1:]],
                         [("/health", 200, "f1")])
        self.assertEqual(access_lines(read_log(self.k)), [])

    def test_access_log_target_that_cannot_be_opened_stops_serve(self):
        p = harness.run_cli(["serve", self.k.db, "--listen", "127.0.0.1:%d" % harness.free_port(),
                             "--access-log", "/nonexistent-dir/x.log"], check=False, timeout=20)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--access-log: cannot open /nonexistent-dir/x.log", p.stderr)


class SlowClients(unittest.TestCase):
    def setUp(self):
        self.k = harness.Kopilka(cards=2)

    def tearDown(self):
        self.k.close()

    def connect_from(self, source):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((source, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", self.k.port))
        return s

    def test_tricklers_are_refused_past_the_limit_and_closed_at_the_deadline(self):
        try:
            probe = socket.socket()
            probe.bind(("127.0.0.2", 0))
            probe.close()
        except OSError:
            self.skipTest("127.0.0.2 is not a loopback address here")
        limit, extra = 20, 30
        self.k.start(serve_args=["--request-timeout", "2", "--connections-per-address",
                                 str(limit)])
        socks = []
        try:
            for _ in range(limit + extra):
                s = self.connect_from("127.0.0.2")
                s.sendall(b"POST /v1/purchases HTTP/1.1\r\nHost: x\r\n")
                socks.append(s)
            # The ones past the limit are answered 503 at once and closed.
            refused = []
            for s in socks:
                r, _, _ = select.select([s], [], [], 0.5 if len(refused) < extra else 0)
                if r:
                    data = s.recv(4096)
                    if data:
                        refused.append(data)
            self.assertEqual(len(refused), extra)
            head, _, body = refused[0].partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 503 "), head)
            err = json.loads(body)["error"]
            self.assertEqual(err["code"], "too_many_connections")
            self.assertIn("20 connections open", err["message"])
            self.assertIn("--connections-per-address", err["message"])
            # A till on another address is served at once meanwhile.
            t0 = time.monotonic()
            c = self.k.client()
            s, _ = c.call("POST", "/v1/purchases", purchase(self.k.cards[0], "R-slow"))
            self.assertEqual(s, 201, c.last_raw)
            self.assertLess(time.monotonic() - t0, 1.0)
            c.close()
            # The held ones keep trickling, and are closed at their deadline
            # (2 s after they opened), not kept for MHD's idle timeout.
            held = socks[:limit]
            t0 = time.monotonic()
            open_ = set(range(len(held)))
            while open_ and time.monotonic() - t0 < 6:
                for i in list(open_):
                    try:
                        held[i].sendall(b"X-Slow: 1\r\n")
                        r, _, _ = select.select([held[i]], [], [], 0)
                        if r and held[i].recv(4096) == b"":
                            open_.discard(i)
                    except OSError:
                        open_.discard(i)
                time.sleep(0.2)
            self.assertEqual(open_, set(), "connections still open after 6 s")
            self.assertLess(time.monotonic() - t0, 4.5)
        finally:
            for s in socks:
                s.close()
        log = read_log(self.k)
        self.assertIn('"event":"connection_refused"', log)
        self.assertIn('"event":"request_timeout"', log)
        # The address may connect again once its connections are gone.
        s = self.connect_from("127.0.0.2")
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 200 "))
        s.close()

    def test_default_limit_allows_a_hundred_keepalive_connections_from_one_address(self):
        self.k.start()
        clients = [self.k.client() for _ in range(100)]
        try:
            for c in clients:
                self.assertEqual(c.call("GET", "/health")[0], 200)
            for c in clients:  # each still open and reused
                self.assertEqual(c.call("GET", "/health")[0], 200)
        finally:
            for c in clients:
                c.close()

    def test_limits_are_checked_options(self):
        for opt, value, allowed in (("--request-timeout", "0", "from 1 to 3600"),
                                    ("--idle-timeout", "x", "from 1 to 86400"),
                                    ("--connections-per-address", "5000", "from 1 to 2048")):
            p = harness.run_cli(["serve", self.k.db, opt, value], check=False)
            self.assertEqual(p.returncode, 2, opt)
            self.assertIn("kopilka serve: %s must be a whole number %s, got %s"
                          % (opt, allowed, value), p.stderr)


class Backup(unittest.TestCase):
    SQLITE_ONLY = "`kopilka backup` copies an SQLite file (PostgreSQL's is pg_dump)"

    def setUp(self):
        self.k = harness.Kopilka(cards=20)

    def tearDown(self):
        self.k.close()

    def test_backup_of_a_postgresql_database_is_refused_for_pg_dump(self):
        if not harness.is_pg():
            self.skipTest("PostgreSQL only: SQLite's backup is tested below")
        out = os.path.join(self.k.dir, "copy.db")
        p = harness.run_cli(["backup", self.k.db, out], check=False)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("pg_dump", p.stderr)
        self.assertFalse(os.path.exists(out))

    def test_backup_while_serving_holds_every_acknowledged_purchase(self):
        harness.sqlite_only(self, self.SQLITE_ONLY)
        self.k.start()
        acknowledged = {}
        stop = threading.Event()
        errors = []

        def till(n):
            c = self.k.client()
            i = 0
            while not stop.is_set():
                body = purchase(self.k.cards[n], "R-%d-%d" % (n, i))
                try:
                    s, a = c.call("POST", "/v1/purchases", body)
                except Exception as ex:  # noqa: BLE001 - reported below
                    errors.append(repr(ex))
                    return
                if s != 201:
                    errors.append("%s %r" % (s, c.last_raw))
                    return
                acknowledged[body["receipt"]] = (time.monotonic(), body, a)
                i += 1
            c.close()

        threads = [threading.Thread(target=till, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        started = time.monotonic()
        out = os.path.join(self.k.dir, "copy.db")
        p = harness.run_cli(["backup", self.k.db, out], check=False, timeout=120)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        print("\nbackup under load: %s" % p.stderr.strip())
        self.assertIn("backup %s -> %s (key file copied too)" % (self.k.db, out), p.stdout)
        self.assertIn("%s: ok" % out, p.stdout)
        before = {r: v for r, v in acknowledged.items() if v[0] < started}
        self.assertGreater(len(before), 10)
        # The key file beside the copy, the same key, readable by its owner only.
        with open(self.k.db + ".key", "rb") as a, open(out + ".key", "rb") as b:
            self.assertEqual(a.read(), b.read())
        self.assertEqual(stat.S_IMODE(os.stat(out + ".key").st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o600)
        self.assertFalse(os.path.exists(out + ".oplog-0"))
        self.k.stop()
        v = harness.run_cli(["verify", out], check=False)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # Serve the copy: every purchase acknowledged before the backup began
        # is there (sending it again replays the first answer).
        copy = harness.Kopilka.__new__(harness.Kopilka)
        copy.__dict__.update(self.k.__dict__)
        copy.db, copy.proc, copy._client = out, None, None
        copy.log = os.path.join(self.k.dir, "copy.log")
        copy.start()
        try:
            c = copy.client()
            for receipt, (_, body, answer) in sorted(before.items()):
                s, a = c.call("POST", "/v1/purchases", body)
                self.assertEqual(s, 200, "%s: %r" % (receipt, c.last_raw))
                self.assertIs(a.pop("replayed"), True)
                self.assertEqual(a, answer)
            c.close()
        finally:
            copy.stop()

    def test_backup_refuses_an_existing_out_and_bad_arguments(self):
        harness.sqlite_only(self, self.SQLITE_ONLY)
        out = os.path.join(self.k.dir, "exists.db")
        with open(out, "w") as f:
            f.write("keep me")
        p = harness.run_cli(["backup", self.k.db, out], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("OUT: %s already exists; a backup never overwrites a file" % out, p.stderr)
        with open(out) as f:
            self.assertEqual(f.read(), "keep me")
        p = harness.run_cli(["backup", self.k.db], check=False)
        self.assertEqual(p.returncode, 2)
        p = harness.run_cli(["backup", os.path.join(self.k.dir, "none.db"),
                             os.path.join(self.k.dir, "o.db")], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("DB:", p.stderr)
        self.assertIn("does not exist", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.k.dir, "o.db")))


class Demo(unittest.TestCase):
    def setUp(self):
        harness.sqlite_only(self, "`kopilka demo` makes an SQLite file whatever the backend "
                                  "under test")
        self.dir = harness.tempfile.mkdtemp(prefix="kopilka-demo-")
        self.db = os.path.join(self.dir, "demo.db")

    def tearDown(self):
        harness.shutil.rmtree(self.dir, ignore_errors=True)

    def run_demo(self):
        """Runs `kopilka demo` until it serves; returns (printed text, port)
        and leaves self.proc running."""
        port = harness.free_port()
        self.proc = subprocess.Popen(
            [harness.binary(), "demo", "--db", self.db, "--listen", "127.0.0.1:%d" % port],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        text = ""
        deadline = time.monotonic() + 20
        while "/v1/cards/" not in text and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            text += line
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        return text, port

    def stop_demo(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)
        self.proc.stdout.close()

    def try_printed_curl(self, text, port):
        m = re.search(r"curl -s http://127\.0\.0\.1:%d/v1/purchases -H 'Authorization: Bearer "
                      r"([^']+)' -d '([^']+)'" % port, text)
        self.assertIsNotNone(m, text)
        key, body = m.group(1), json.loads(m.group(2))
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("POST", "/v1/purchases", body=json.dumps(body),
                  headers={"Authorization": "Bearer " + key})
        r = c.getresponse()
        answer = json.loads(r.read())
        c.close()
        return key, body, r.status, answer

    def test_second_run_reuses_the_database_key_and_cards_with_a_new_receipt(self):
        text1, port1 = self.run_demo()
        try:
            key1, body1, s1, a1 = self.try_printed_curl(text1, port1)
        finally:
            self.stop_demo()
        self.assertEqual(s1, 201, a1)
        self.assertIn("(new)", text1)
        state = self.db + ".demo"
        self.assertEqual(stat.S_IMODE(os.stat(state).st_mode), 0o600)
        text2, port2 = self.run_demo()
        try:
            key2, body2, s2, a2 = self.try_printed_curl(text2, port2)
        finally:
            self.stop_demo()
        self.assertIn("(reused)", text2)
        self.assertEqual(key2, key1)
        self.assertEqual(body2["card"], body1["card"])
        self.assertNotEqual(body2["receipt"], body1["receipt"])
        self.assertEqual(s2, 201, a2)  # a new purchase, not a replay of the first
        self.assertNotIn("replayed", a2)
        self.assertEqual(a2["balance_before"], a1["balance"])
        # Still one terminal and five cards: the balances export lists 5.
        out = os.path.join(self.dir, "balances.csv")
        harness.run_cli(["export", self.db, "--balances", out])
        with open(out) as f:
            rows = [l for l in f.read().splitlines()[1:] if l.strip()]
        self.assertEqual(len(rows), 5)


class CommandLine(unittest.TestCase):
    TWO_WORD = ("program load", "terminal add", "cards issue", "cards export", "staff add",
                "discount set", "discount clear", "birthday set")

    def test_each_two_word_command_prints_its_own_help(self):
        for name in self.TWO_WORD:
            p = harness.run_cli(name.split() + ["--help"], check=False)
            self.assertEqual(p.returncode, 0, name)
            self.assertTrue(p.stdout.startswith("Usage: kopilka %s " % name), (name, p.stdout))
        p = harness.run_cli(["cards", "--help"], check=False)
        self.assertEqual(p.returncode, 0)
        self.assertIn("kopilka cards issue DB", p.stdout)
        self.assertIn("kopilka cards export DB", p.stdout)
        p = harness.run_cli(["cards", "shuffle"], check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn('kopilka cards: unknown subcommand "shuffle"', p.stderr)

    def test_version(self):
        p = harness.run_cli(["--version"], check=False)
        self.assertEqual((p.returncode, p.stdout), (0, "kopilka 0.1.0\n"))

    def test_extra_arguments_and_unknown_options_are_refused(self):
        k = harness.Kopilka(cards=0)
        try:
            cases = [
                (["verify", k.db, "extra"], 'kopilka verify: unexpected argument "extra"'),
                (["program", "load", k.db, harness.program_file(), "more"],
                 'kopilka program load: unexpected argument "more"'),
                (["jobs", k.db, "--limit", "3", "x"], 'kopilka jobs: unexpected argument "x"'),
                (["cards", "issue", k.db, "--count", "1", "--color", "red"],
                 "kopilka cards issue: unknown option --color"),
                (["terminal", "add", k.db, "--store"],
                 "kopilka terminal add: option --store needs a value"),
                (["demo", "extra"], 'kopilka demo: unexpected argument "extra"'),
            ]
            for args, message in cases:
                p = harness.run_cli(args, check=False)
                self.assertEqual(p.returncode, 2, args)
                self.assertIn(message, p.stderr)
                self.assertIn("usage: kopilka ", p.stderr)
            self.assertEqual(harness.run_cli(["verify", k.db], check=False).returncode, 0)
        finally:
            k.close()

    def test_staff_add_asks_for_the_password_without_echo(self):
        k = harness.Kopilka(cards=0)
        try:
            password = "correct-horse-42"
            pid, fd = pty.fork()
            if pid == 0:
                os.execve(harness.binary(), [harness.binary(), "staff", "add", k.db,
                                             "--login", "anna", "--role", "manager"],
                          harness.cli_env([k.db]))
            seen = b""

            def read_until(marker, timeout=20):
                nonlocal seen
                deadline = time.monotonic() + timeout
                while marker not in seen and time.monotonic() < deadline:
                    r, _, _ = select.select([fd], [], [], 0.2)
                    if r:
                        try:
                            chunk = os.read(fd, 4096)
                        except OSError:
                            break
                        if not chunk:
                            break
                        seen += chunk
                return marker in seen

            self.assertTrue(read_until(b"Password: "), seen)
            os.write(fd, password.encode() + b"\n")
            self.assertTrue(read_until(b"Repeat the password: "), seen)
            os.write(fd, password.encode() + b"\n")
            self.assertTrue(read_until(b"(manager)"), seen)
            read_until(b"\x00", timeout=2)
            _, status = os.waitpid(pid, 0)
            os.close(fd)
            self.assertEqual(os.waitstatus_to_exitcode(status), 0, seen)
            self.assertNotIn(password.encode(), seen)
            self.assertIn(b"staff 1: anna (manager)", seen)
        finally:
            k.close()


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
