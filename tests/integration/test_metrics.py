#!/usr/bin/env python3
"""
test_metrics.py: GET /metrics (docs/api.md "Metrics") against the real
server: after known traffic the counters hold exact figures, the answer
parses as the Prometheus text format (every sample line, HELP and TYPE,
histogram buckets), no card number or id reaches a label, and who may
scrape follows `kopilka serve --metrics`.

Run: python3 tests/integration/test_metrics.py --kopilka build/kopilka [Class]
"""
import http.client
import os
import re
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Kopilka, LABOR, PARTS  # noqa: E402

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(r"^(%s)(\{(.*)\})? (\S+)$" % NAME)
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(,|$)')


def parse_labels(text):
    """Parses `a="x",b="y"` into a dict; raises ValueError when malformed."""
    out = {}
    pos = 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        if not m:
            raise ValueError("bad labels at %r" % text[pos:])
        if m.group(1) in out:
            raise ValueError("label %s twice" % m.group(1))
        out[m.group(1)] = m.group(2).replace('\\"', '"').replace("\\n", "\n").replace(
            "\\\\", "\\")
        pos = m.end()
        if m.group(3) == "" and pos != len(text):
            raise ValueError("labels end early: %r" % text)
    return out


def parse_exposition(text):
    """Parses the text format (version 0.0.4) strictly: every line is HELP,
    TYPE or a sample of a family whose TYPE came first; each family has one
    HELP and one TYPE; values are numbers; a histogram's buckets rise, end at
    +Inf, and +Inf equals _count, for each label set. Returns
    {family: {"type", "help", "samples": [(name, labels, value)]}}."""
    assert text.endswith("\n"), "the exposition ends with a newline"
    families = {}
    current = None
    for line in text.split("\n")[:-1]:
        assert line.strip() != "", "no empty lines"
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert re.fullmatch(NAME, name), line
            assert help_text, "HELP without text: %r" % line
            fam = families.setdefault(name, {"samples": []})
            assert "help" not in fam, "HELP twice for %s" % name
            fam["help"] = help_text
            continue
        if line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), line
            fam = families.setdefault(name, {"samples": []})
            assert "type" not in fam, "TYPE twice for %s" % name
            assert not fam["samples"], "TYPE after samples of %s" % name
            fam["type"] = typ
            current = name
            continue
        assert not line.startswith("#"), "unexpected comment %r" % line
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels, value = m.group(1), parse_labels(m.group(3) or ""), m.group(4)
        v = float(value)  # raises on a malformed number
        fam = families.get(current)
        assert fam is not None, "sample before any TYPE: %r" % line
        typ = fam["type"]
        if typ == "histogram":
            assert name in (current + "_bucket", current + "_sum", current + "_count"), line
        elif typ == "counter":
            assert name == current and name.endswith("_total"), line
            assert v >= 0, line
        else:
            assert name == current, line
        fam["samples"].append((name, labels, v))
    for name, fam in families.items():
        assert "type" in fam and "help" in fam, "%s lacks HELP or TYPE" % name
        assert name.startswith("kopilka_"), name
        if fam["type"] == "histogram":
            check_histogram(name, fam["samples"])
    return families


def check_histogram(name, samples):
    """Per label set (without le): buckets in rising le order with rising
    counts, the last +Inf, equal to _count; a _sum."""
    groups = {}
    for sname, labels, v in samples:
        rest = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
        g = groups.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if sname.endswith("_bucket"):
            assert "le" in labels, "%s bucket without le" % name
            g["buckets"].append((float(labels["le"]), v))
        elif sname.endswith("_sum"):
            g["sum"] = v
        else:
            g["count"] = v
    assert groups, "%s has no samples" % name
    for rest, g in groups.items():
        b = g["buckets"]
        assert b and g["sum"] is not None and g["count"] is not None, (name, rest)
        assert b[-1][0] == float("inf"), (name, rest, "last bucket is not +Inf")
        for (le0, c0), (le1, c1) in zip(b, b[1:]):
            assert le0 < le1, (name, rest, "le not rising")
            assert c0 <= c1, (name, rest, "bucket counts not cumulative")
        assert b[-1][1] == g["count"], (name, rest, "+Inf != _count")


def value(fams, family, sample=None, **labels):
    """The value of the sample `sample` (default: family) with exactly these
    labels; 0 when the series is absent (a counter not yet seen)."""
    sample = sample or family
    for name, lab, v in fams.get(family, {"samples": []})["samples"]:
        if name == sample and lab == labels:
            return v
    return 0


def purchase(card, receipt, amount=500000):
    return {"card": card, "receipt": receipt,
            "lines": [{"sku": "LAB-1", "category": LABOR, "amount": amount},
                      {"sku": "PART-1", "category": PARTS, "amount": 100000}]}


def luhn(payload):
    """payload with its Luhn check digit appended (a well-formed card number)."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return payload + str((10 - total % 10) % 10)


UNKNOWN_CARD = luhn("299999999999")


def scrape(port, host="127.0.0.1", method="GET"):
    """(status, content type, body text) of /metrics on a new connection."""
    c = http.client.HTTPConnection(host, port, timeout=10)
    try:
        c.request(method, "/metrics")
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode("utf-8")
    finally:
        c.close()


def outside_address():
    """This host's address on its first non-loopback interface, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.254", 9))  # no packet is sent
        addr = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if addr.startswith("127.") else addr


class MetricsAfterTraffic(unittest.TestCase):
    """Known traffic, then exact counters and a strictly valid exposition."""

    @classmethod
    def setUpClass(cls):
        cls.k = Kopilka(cards=3)
        cls.k.start()  # its readiness probe: one GET /v1/cards/x without a key (401)

    @classmethod
    def tearDownClass(cls):
        cls.k.close()

    def test_exact_counters_after_known_traffic(self):
        k = self.k
        # The scheduler's first run (at start) goes through the writer.
        deadline = time.monotonic() + 10
        while True:
            st, _, text = scrape(k.port)
            self.assertEqual(st, 200)
            fams = parse_exposition(text)
            if value(fams, "kopilka_scheduler_runs_total", job="tick", outcome="ok") >= 1:
                break
            self.assertLess(time.monotonic(), deadline, "the scheduler never ran")
            time.sleep(0.05)
        jobs_before = value(fams, "kopilka_writer_jobs_total")
        runs = "kopilka_scheduler_runs_total"
        runs_before = sum(v for _, _, v in fams[runs]["samples"])
        bytes_before = value(fams, "kopilka_oplog_written_bytes_total")

        n = 5
        for i in range(n):
            s, _ = k.call("POST", "/v1/purchases", purchase(k.cards[i % 3], "M-%d" % i))
            self.assertEqual(s, 201)
        s, _ = k.call("POST", "/v1/purchases", purchase(k.cards[0], "M-0"))  # a replay
        self.assertEqual(s, 200)
        s, _ = k.call("POST", "/v1/purchases", {"card": k.cards[0], "receipt": "M-bad",
                                                "lines": [{"sku": "x", "category": LABOR,
                                                           "amount": -5}]})
        self.assertEqual(s, 400)
        s, _ = k.call("POST", "/v1/purchases", purchase(k.cards[0], "M-nokey"), key=None)
        self.assertEqual(s, 401)
        s, _ = k.call("GET", "/v1/cards/" + k.cards[1])
        self.assertEqual(s, 200)
        s, _ = k.call("GET", "/v1/cards/" + UNKNOWN_CARD)
        self.assertEqual(s, 404)
        s, _ = k.call("GET", "/nowhere/4111111111111111")
        self.assertEqual(s, 404)
        s, _ = k.call("DELETE", "/v1/quote")
        self.assertEqual(s, 405)

        st, ctype, text = scrape(k.port)
        self.assertEqual(st, 200)
        self.assertEqual(ctype, CONTENT_TYPE)
        fams = parse_exposition(text)
        req = "kopilka_http_requests_total"
        self.assertEqual(value(fams, req, route="/v1/purchases", method="POST", status="201"), n)
        self.assertEqual(value(fams, req, route="/v1/purchases", method="POST", status="200"), 1)
        self.assertEqual(value(fams, req, route="/v1/purchases", method="POST", status="400"), 1)
        self.assertEqual(value(fams, req, route="/v1/purchases", method="POST", status="401"), 1)
        self.assertEqual(value(fams, req, route="/v1/cards/{}", method="GET", status="401"), 1)
        self.assertEqual(value(fams, req, route="/v1/cards/{}", method="GET", status="200"), 1)
        self.assertEqual(value(fams, req, route="/v1/cards/{}", method="GET", status="404"), 1)
        self.assertEqual(value(fams, req, route="other", method="GET", status="404"), 1)
        self.assertEqual(value(fams, req, route="/v1/quote", method="DELETE", status="405"), 1)
        # The scrapes before this one, each counted once answered.
        scrapes = value(fams, req, route="/metrics", method="GET", status="200")
        self.assertGreaterEqual(scrapes, 1)
        # Nothing else was asked.
        total = sum(v for _, _, v in fams[req]["samples"])
        self.assertEqual(total, n + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + scrapes)

        # Each route's latency histogram counts its requests.
        dur = "kopilka_http_request_duration_seconds"
        for route, count in (("/v1/purchases", 8), ("/v1/cards/{}", 3), ("other", 1),
                             ("/v1/quote", 1), ("/metrics", scrapes)):
            self.assertEqual(value(fams, dur, dur + "_count", route=route), count, route)
            self.assertGreater(value(fams, dur, dur + "_sum", route=route), 0, route)
        buckets = [float(lab["le"]) for name, lab, _ in fams[dur]["samples"]
                   if name == dur + "_bucket" and lab["route"] == "/v1/purchases"]
        self.assertEqual(buckets, [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                   0.5, 1, 2.5, 5, 10, float("inf")])

        # The writer: six purchases reached it (five new, one replay); the
        # keyring's "last used" flush may add one more job meanwhile, and
        # each scheduler run meanwhile (a slow, loaded machine) at most one.
        jobs = value(fams, "kopilka_writer_jobs_total")
        runs_during = sum(v for _, _, v in fams[runs]["samples"]) - runs_before
        self.assertGreaterEqual(jobs - jobs_before, 6)
        self.assertLessEqual(jobs - jobs_before, 7 + runs_during)
        g = "kopilka_writer_group_size"
        self.assertEqual(value(fams, g, g + "_sum"), jobs)
        self.assertEqual(value(fams, g, g + "_count"), value(fams, "kopilka_writer_groups_total"))
        self.assertEqual(value(fams, "kopilka_writer_queue_depth"), 0)
        self.assertGreater(value(fams, "kopilka_database_commits_total"), 0)
        if not harness.is_pg():  # SQLite's operation log and file
            self.assertGreater(value(fams, "kopilka_oplog_written_bytes_total"), bytes_before)
            self.assertGreater(value(fams, "kopilka_oplog_syncs_total"), 0)
            self.assertGreater(value(fams, "kopilka_oplog_size_bytes"), 0)
            self.assertGreater(value(fams, "kopilka_database_size_bytes"), 0)
        else:  # no file series that would read 0 for a database server
            for name in ("kopilka_oplog_size_bytes", "kopilka_database_size_bytes",
                         "kopilka_database_wal_size_bytes"):
                self.assertNotIn(name, fams)
        self.assertEqual(value(fams, "kopilka_storage_failed"), 0)
        self.assertEqual(value(fams, "kopilka_program_version"), 1)
        self.assertEqual(value(fams, "kopilka_office_queue_depth"), 0)
        self.assertGreaterEqual(value(fams, "kopilka_http_connections_open"), 1)
        self.assertEqual(value(fams, "kopilka_scheduler_runs_total", job="tick", outcome="ok"), 1)
        self.assertEqual(value(fams, "kopilka_scheduler_runs_total", job="tick",
                               outcome="error"), 0)
        version = subprocess.run([harness.binary(), "--version"], capture_output=True,
                                 text=True, check=True).stdout.split()[1]
        self.assertEqual(value(fams, "kopilka_build_info", version=version), 1)

        # No card number, id or raw path reaches the scrape.
        for secret in k.cards + [UNKNOWN_CARD, "4111111111111111", "nowhere", "M-0"]:
            self.assertNotIn(secret, text)

    def test_unknown_paths_fold_into_one_series(self):
        k = self.k
        _, _, text = scrape(k.port)
        before = value(parse_exposition(text), "kopilka_http_requests_total", route="other",
                       method="GET", status="404")
        for i in range(40):
            s, _ = k.call("GET", "/probe-%d/%d" % (i, 7000000 + i))
            self.assertEqual(s, 404)
        _, _, text = scrape(k.port)
        fams = parse_exposition(text)
        self.assertEqual(value(fams, "kopilka_http_requests_total", route="other",
                               method="GET", status="404"), before + 40)
        routes = {lab["route"] for _, lab, _ in fams["kopilka_http_requests_total"]["samples"]}
        self.assertTrue(all(r == "other" or r.startswith("/") for r in routes), routes)
        self.assertNotIn("7000001", text)
        self.assertNotIn("probe", text)

    def test_post_is_refused(self):
        st, ctype, text = scrape(self.k.port, method="POST")
        self.assertEqual(st, 405)
        self.assertEqual(ctype, "application/json")
        self.assertIn('"method_not_allowed"', text)


class MetricsConnections(unittest.TestCase):
    """Connections refused by the per-address limit and closed by the
    request deadline are counted."""

    def test_refused_and_timed_out_counted(self):
        k = Kopilka(cards=1)
        try:
            k.start(serve_args=["--connections-per-address", "3", "--request-timeout", "3"])
            # The readiness probe closed its connection; give the server a
            # moment to see it, then hold three idle ones (the limit).
            time.sleep(0.3)
            idle = [socket.create_connection(("127.0.0.1", k.port)) for _ in range(3)]
            # connect() returns once the kernel has the connection; the
            # server's threads count it when they accept it.
            time.sleep(0.3)
            try:
                extra = socket.create_connection(("127.0.0.1", k.port))
                extra.settimeout(5)
                self.assertIn(b" 503 ", extra.recv(4096).split(b"\r\n")[0] + b" ")
                extra.close()
                for s in idle:
                    s.settimeout(5)
                    self.assertEqual(s.recv(100), b"")  # closed by the deadline
            finally:
                for s in idle:
                    s.close()
            deadline = time.monotonic() + 5
            # One keep-alive connection for every scrape: the limit is 3 a
            # client address, and a closed scrape connection may not be
            # reaped yet when the next one comes (it would be refused).
            time.sleep(0.2)
            c = http.client.HTTPConnection("127.0.0.1", k.port, timeout=10)
            try:
                while True:
                    c.request("GET", "/metrics")
                    r = c.getresponse()
                    text = r.read().decode("utf-8")
                    self.assertEqual(r.status, 200, text)
                    fams = parse_exposition(text)
                    if (value(fams, "kopilka_http_connections_timed_out_total") >= 3
                            or time.monotonic() > deadline):
                        break
                    time.sleep(0.1)
            finally:
                c.close()
            self.assertEqual(value(fams, "kopilka_http_connections_refused_total"), 1)
            self.assertEqual(value(fams, "kopilka_http_connections_timed_out_total"), 3)
        finally:
            k.close()


class MetricsStorageFailure(unittest.TestCase):
    """Once storage fails (the files cannot grow: RLIMIT_FSIZE, as a full
    disk), kopilka_storage_failed is 1 and the 503s are counted."""

    def test_storage_failed_is_one_and_503s_counted(self):
        harness.sqlite_only(self, harness.FULL_DISK_IS_SQLITES)
        k = Kopilka(cards=8)
        try:
            k.start()
            _, _, text = scrape(k.port)
            self.assertEqual(value(parse_exposition(text), "kopilka_storage_failed"), 0)
            k.stop()
            sizes = [os.path.getsize(p) for p in (k.db, k.db + "-wal") if os.path.exists(p)]
            k.start(file_size_limit=max(sizes) + 256 * 1024)
            cl = k.client()
            created = refused = 0
            for i in range(20000):
                st, _ = cl.call("POST", "/v1/purchases", purchase(k.cards[i % 8], "SF-%d" % i))
                if st == 201:
                    created += 1
                else:
                    self.assertEqual(st, 503, cl.last_raw)
                    refused += 1
                    if refused == 3:
                        break
            cl.close()
            self.assertEqual(refused, 3, "the file-size limit was never reached")
            st, _, text = scrape(k.port)
            self.assertEqual(st, 200)
            fams = parse_exposition(text)
            self.assertEqual(value(fams, "kopilka_storage_failed"), 1)
            req = "kopilka_http_requests_total"
            self.assertEqual(value(fams, req, route="/v1/purchases", method="POST",
                                   status="503"), 3)
            self.assertEqual(value(fams, req, route="/v1/purchases", method="POST",
                                   status="201"), created)
        finally:
            k.close()


class MetricsAccess(unittest.TestCase):
    """--metrics local (default), on and off."""

    def _serve(self, metrics):
        """Starts a server on 0.0.0.0 (the harness binds loopback only)."""
        k = Kopilka(cards=0)
        port = harness.free_port()
        args = [harness.binary(), "serve", k.db, "--listen", "0.0.0.0:%d" % port,
                "--access-log", "off"]
        if metrics:
            args += ["--metrics", metrics]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=harness.cli_env(args))
        deadline = time.monotonic() + 10
        while True:
            try:
                scrape(port)
                break
            except OSError:
                self.assertLess(time.monotonic(), deadline, "server did not answer")
                time.sleep(0.05)
        return k, proc, port

    def _stop(self, k, proc):
        proc.terminate()
        proc.wait(timeout=10)
        k.close()

    def test_local_answers_loopback_and_refuses_others(self):
        outside = outside_address()
        k, proc, port = self._serve(None)
        try:
            st, _, _ = scrape(port)
            self.assertEqual(st, 200)
            if outside is None:
                self.skipTest("no non-loopback address on this host")
            st, ctype, text = scrape(port, host=outside)
            self.assertEqual(st, 403)
            self.assertEqual(ctype, "application/json")
            self.assertIn('"forbidden"', text)
            self.assertIn("--metrics on", text)
        finally:
            self._stop(k, proc)

    def test_on_answers_other_hosts(self):
        outside = outside_address()
        if outside is None:
            self.skipTest("no non-loopback address on this host")
        k, proc, port = self._serve("on")
        try:
            st, ctype, text = scrape(port, host=outside)
            self.assertEqual(st, 200)
            self.assertEqual(ctype, CONTENT_TYPE)
            parse_exposition(text)
        finally:
            self._stop(k, proc)

    def test_off_answers_404(self):
        k, proc, port = self._serve("off")
        try:
            st, ctype, text = scrape(port)
            self.assertEqual(st, 404)
            self.assertIn('"not_found"', text)
            self.assertIn("--metrics", text)
        finally:
            self._stop(k, proc)

    def test_bad_option_is_refused(self):
        k = Kopilka(cards=0)
        try:
            r = subprocess.run([harness.binary(), "serve", k.db, "--metrics", "yes"],
                               capture_output=True, text=True, timeout=10,
                               env=harness.cli_env([k.db]))
            self.assertEqual(r.returncode, 2)
            self.assertIn("--metrics must be local", r.stderr)
            self.assertIn("got yes", r.stderr)
        finally:
            k.close()


class ParserSelfTest(unittest.TestCase):
    """The parser above rejects what it must, so its passes mean something."""

    def test_rejects_bad_expositions(self):
        good = ("# HELP kopilka_x_total X.\n# TYPE kopilka_x_total counter\n"
                "kopilka_x_total{a=\"b\"} 3\n")
        parse_exposition(good)
        bad = [
            good.replace("# HELP kopilka_x_total X.\n", ""),                 # no HELP
            good.replace("} 3", "} three"),                                  # no number
            good.replace('{a="b"}', '{a=b}'),                                # bad label
            good + "kopilka_y 1\n",                                          # no TYPE
            ("# HELP kopilka_h H.\n# TYPE kopilka_h histogram\n"
             'kopilka_h_bucket{le="1"} 2\nkopilka_h_bucket{le="+Inf"} 1\n'
             "kopilka_h_sum 1\nkopilka_h_count 1\n"),                        # falls
            ("# HELP kopilka_h H.\n# TYPE kopilka_h histogram\n"
             'kopilka_h_bucket{le="1"} 1\nkopilka_h_bucket{le="+Inf"} 2\n'
             "kopilka_h_sum 1\nkopilka_h_count 3\n"),                        # +Inf != count
        ]
        for text in bad:
            with self.assertRaises((AssertionError, ValueError), msg=text):
                parse_exposition(text)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
