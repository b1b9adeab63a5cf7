"""
test_deploy.py: the deployment files of deploy/ (docs/deploy.md) tested as
shipped:

  - deploy/nginx/kopilka.conf run by a real nginx (Debian's package), as a
    non-daemon process with its own prefix in a temporary directory, on
    loopback ports, with a self-signed certificate made here by openssl, in
    front of a real `kopilka serve` started with the unit's options; spoken
    to over HTTPS with Python's ssl and that certificate as the only CA;
  - deploy/kopilka.service and the backup unit and timer: `systemd-analyze
    verify` and `security` when present, the key settings parsed, and the
    unit's own ExecStart line run against a fresh database;
  - deploy/kopilka-backup.sh: backups of a served database, verified,
    rotated.

The nginx file is the shipped one: NGINX_SUBSTITUTIONS below replaces a few
exact strings (ports, upstream address, certificate and log paths), each of
which must occur exactly once, and a small nginx.conf of the test includes
the result. A class skips (with the reason) only when nginx or openssl
cannot be run at all; scripts/deps.sh installs both.

    python3 test_deploy.py --kopilka build/kopilka [unittest options]
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import tempfile
import time
import unittest
import warnings

import harness
from harness import LABOR, PARTS

DEPLOY = os.path.join(harness.REPO, "deploy")
NGINX_CONF = os.path.join(DEPLOY, "nginx", "kopilka.conf")
UNIT = os.path.join(DEPLOY, "kopilka.service")
BACKUP_UNIT = os.path.join(DEPLOY, "kopilka-backup.service")
BACKUP_TIMER = os.path.join(DEPLOY, "kopilka-backup.timer")
BACKUP_SCRIPT = os.path.join(DEPLOY, "kopilka-backup.sh")
BODY_MAX = 1024 * 1024  # KP_BODY_MAX


def nginx_binary():
    for path in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if path and os.access(path, os.X_OK):
            return path
    return None


def parse_unit(path):
    """{section: {key: [values in order]}} of a systemd unit file."""
    out = {}
    section = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                section = out.setdefault(line[1:-1], {})
                continue
            key, _, value = line.partition("=")
            section.setdefault(key.strip(), []).append(value.strip())
    return out


def unit_serve_args():
    """The options of the unit's `kopilka serve` other than DB and --listen."""
    argv = parse_unit(UNIT)["Service"]["ExecStart"][-1].split()
    assert argv[1] == "serve", argv
    rest = argv[3:]
    i = rest.index("--listen")
    del rest[i:i + 2]
    return rest


def nginx_substitutions(tls_port, http_port, upstream_port, cert, key, logs):
    """(shipped string, test string) pairs: what test_deploy.py changes in
    deploy/nginx/kopilka.conf, each string found exactly once. IPv6 listens
    go (the test host may have no IPv6)."""
    return [
        ("listen 443 ssl http2;", "listen 127.0.0.1:%d ssl http2;" % tls_port),
        ("listen [::]:443 ssl http2;", "# (no IPv6 listen in the test)"),
        ("listen 80;", "listen 127.0.0.1:%d;" % http_port),
        ("listen [::]:80;", "# (no IPv6 listen in the test)"),
        ("server 127.0.0.1:8080;", "server 127.0.0.1:%d;" % upstream_port),
        ("ssl_certificate /etc/ssl/kopilka/fullchain.pem;", "ssl_certificate %s;" % cert),
        ("ssl_certificate_key /etc/ssl/kopilka/privkey.pem;", "ssl_certificate_key %s;" % key),
    ] + [
        # Both server blocks log to the same files: replaced everywhere.
        ("/var/log/nginx/kopilka-access.log", os.path.join(logs, "access.log")),
        ("/var/log/nginx/kopilka-error.log", os.path.join(logs, "error.log")),
    ]


def make_certificate(directory):
    """A self-signed RSA certificate for localhost and 127.0.0.1; returns
    (cert path, key path). Raises unittest.SkipTest without openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise unittest.SkipTest("openssl is not installed (scripts/deps.sh installs it)")
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return cert, key


class Nginx:
    """The shipped configuration run by a real nginx in DIRECTORY, proxying
    to 127.0.0.1:UPSTREAM_PORT."""

    def __init__(self, directory, upstream_port):
        self.nginx = nginx_binary()
        if self.nginx is None:
            raise unittest.SkipTest("nginx is not installed (scripts/deps.sh installs it)")
        self.dir = directory
        self.cert, self.key = make_certificate(directory)
        self.tls_port = harness.free_port()
        self.http_port = harness.free_port()
        self.logs = os.path.join(directory, "logs")
        os.makedirs(self.logs)
        with open(NGINX_CONF) as f:
            text = f.read()
        for old, new in nginx_substitutions(self.tls_port, self.http_port, upstream_port,
                                            self.cert, self.key, self.logs):
            count = text.count(old)
            if old.startswith("/var/log/"):
                assert count >= 1, "%s names no %r" % (NGINX_CONF, old)
            else:
                assert count == 1, "%s holds %r %d times, the test expects it once" % (
                    NGINX_CONF, old, count)
            text = text.replace(old, new)
        site = os.path.join(directory, "kopilka.conf")
        with open(site, "w") as f:
            f.write(text)
        temp = os.path.join(directory, "temp")
        os.makedirs(temp)
        # Run as root (as in CI), nginx's workers would switch to "nobody",
        # who cannot enter this 0700 directory: keep them as the caller.
        user = "user root root;\n" if os.geteuid() == 0 else ""
        self.conf = os.path.join(directory, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write("daemon off;\nmaster_process on;\nworker_processes 1;\n%s"
                    "pid %s/nginx.pid;\nerror_log %s/error.log warn;\n"
                    "events { worker_connections 1024; }\n"
                    "http {\n  default_type application/octet-stream;\n"
                    "  client_body_temp_path %s/body;\n  proxy_temp_path %s/proxy;\n"
                    "  fastcgi_temp_path %s/fastcgi;\n  uwsgi_temp_path %s/uwsgi;\n"
                    "  scgi_temp_path %s/scgi;\n  include %s;\n}\n"
                    % (user, directory, self.logs, temp, temp, temp, temp, temp, site))
        self.proc = None

    def start(self):
        test = subprocess.run([self.nginx, "-t", "-p", self.dir, "-e", os.path.join(self.logs, "error.log"),
                               "-c", self.conf], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
        if test.returncode != 0:
            raise AssertionError("nginx -t refused the configuration:\n" + test.stdout)
        self.proc = subprocess.Popen([self.nginx, "-p", self.dir, "-e",
                                      os.path.join(self.logs, "error.log"), "-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("nginx exited with %d\n%s" % (self.proc.returncode,
                                                                  self.error_log()))
            try:
                socket.create_connection(("127.0.0.1", self.tls_port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("nginx did not listen within 10 s\n" + self.error_log())
                time.sleep(0.05)

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGQUIT)  # graceful
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def error_log(self):
        try:
            with open(os.path.join(self.logs, "error.log")) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def access_lines(self):
        with open(os.path.join(self.logs, "access.log")) as f:
            return [json.loads(line) for line in f if line.strip()]

    def context(self, minimum=None, maximum=None, ciphers=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.cert)
        if ciphers:
            ctx.set_ciphers(ciphers)
        with warnings.catch_warnings():  # TLS 1.0 and 1.1 are deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            if minimum:
                ctx.minimum_version = minimum
            if maximum:
                ctx.maximum_version = maximum
        return ctx

    def https(self, ctx=None):
        return http.client.HTTPSConnection("localhost", self.tls_port, timeout=30,
                                           context=ctx or self.context())

    def call(self, method, path, body=None, key=None, headers=None, conn=None):
        """(status, parsed JSON or None, headers) of one request over HTTPS."""
        h = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if key:
            h["Authorization"] = "Bearer " + key
        own = conn is None
        c = conn or self.https()
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            raw = r.read()
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            return r.status, parsed, {k.lower(): v for k, v in r.getheaders()}
        finally:
            if own:
                c.close()


def purchase(card, receipt):
    return {"card": card, "receipt": receipt,
            "lines": [{"sku": "service", "category": LABOR, "amount": 500000},
                      {"sku": "filter", "category": PARTS, "amount": 200000}]}


class Stack:
    """A kopilka server (with the unit's options and `more` ones) behind the
    shipped nginx configuration."""

    def __init__(self, more=()):
        self.k = harness.Kopilka(cards=5)
        self.dir = tempfile.mkdtemp(prefix="kopilka-nginx-")
        os.chmod(self.dir, 0o700)
        try:
            self.k.start(serve_args=unit_serve_args() + list(more))
            self.nginx = Nginx(self.dir, self.k.port)
            self.nginx.start()
        except BaseException:
            self.close()
            raise

    def close(self):
        try:
            if getattr(self, "nginx", None):
                self.nginx.stop()
        finally:
            self.k.close()
            shutil.rmtree(self.dir, ignore_errors=True)


class Proxy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack()
        cls.k = cls.stack.k
        cls.n = cls.stack.nginx

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    def test_purchase_201_then_its_replay_200_with_the_request_id(self):
        card = self.k.cards[0]
        s, a, h = self.n.call("POST", "/v1/purchases", purchase(card, "NGX-1"), key=self.k.key,
                              headers={"X-Request-Id": "till-7.r1"})
        self.assertEqual(s, 201, a)
        self.assertEqual(h["x-request-id"], "till-7.r1")
        self.assertGreater(a["earned"], 0)
        self.assertEqual(a["balance"], a["balance_before"] + a["earned"])
        s2, a2, h2 = self.n.call("POST", "/v1/purchases", purchase(card, "NGX-1"),
                                 key=self.k.key, headers={"X-Request-Id": "till-7.r2"})
        self.assertEqual(s2, 200, a2)
        self.assertIs(a2["replayed"], True)
        self.assertEqual((a2["earned"], a2["balance"]), (a["earned"], a["balance"]))
        self.assertEqual(h2["x-request-id"], "till-7.r2")
        # Earned once.
        self.assertEqual(self.k.card(card)["balance"], a["balance"])
        # HSTS on every answer.
        self.assertEqual(h["strict-transport-security"], "max-age=63072000")

    def test_request_id_set_by_the_proxy_when_missing_or_unusable(self):
        s, _, h = self.n.call("GET", "/v1/cards/" + self.k.cards[1], key=self.k.key)
        self.assertEqual(s, 200)
        self.assertRegex(h["x-request-id"], r"^[0-9a-f]{32}$")  # nginx's $request_id
        bad = "x" * 65  # over the server's 64 bytes
        s, _, h2 = self.n.call("GET", "/v1/cards/" + self.k.cards[1], key=self.k.key,
                               headers={"X-Request-Id": bad})
        self.assertEqual(s, 200)
        self.assertRegex(h2["x-request-id"], r"^[0-9a-f]{32}$")
        self.assertNotEqual(h2["x-request-id"], h["x-request-id"])
        # The same id in nginx's access log and in the server's; no card
        # number in nginx's.
        rid = h["x-request-id"]
        deadline = time.monotonic() + 5
        while True:
            ours = [l for l in self.n.access_lines() if l["request_id"] == rid]
            if ours or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(len(ours), 1, self.n.access_lines())
        self.assertEqual((ours[0]["method"], ours[0]["route"], ours[0]["status"]),
                         ("GET", "/v1/cards/{}", 200))
        with open(os.path.join(self.n.logs, "access.log")) as f:
            self.assertNotIn(self.k.cards[1], f.read())
        server = [json.loads(l) for l in self.k.log_tail(100000).splitlines()
                  if l.startswith("{") and rid in l]
        self.assertEqual([(l["route"], l["status"]) for l in server], [("/v1/cards/{}", 200)])

    def test_body_over_one_mib_refused_413_and_one_mib_reaches_the_server(self):
        s, a, _ = self.n.call("POST", "/v1/purchases", b" " * (BODY_MAX + 1), key=self.k.key,
                              headers={"Content-Type": "application/json",
                                       "X-Request-Id": "too-large-1"})
        self.assertEqual(s, 413)
        self.assertEqual(a, {"error": {"code": "too_large", "message":
                                       "the body is over the limit of 1048576 bytes"}})
        # nginx refused it: the server never saw that request.
        self.k.call("GET", "/live")  # one more line in its log after it
        self.assertNotIn("too-large-1", self.k.log_tail(1000000))
        # Exactly the limit passes nginx; the server reads it (blanks are
        # no JSON object: 400 bad_json, from the server).
        s, a, _ = self.n.call("POST", "/v1/purchases", b" " * BODY_MAX, key=self.k.key,
                              headers={"Content-Type": "application/json"})
        self.assertEqual((s, a["error"]["code"]), (400, "bad_json"), a)

    def test_imports_take_32_mib_and_logins_count_the_address_nginx_gives(self):
        pw = os.path.join(self.stack.dir, "password")
        with open(pw, "w") as f:
            f.write("correct horse battery\n")
        harness.run_cli(["staff", "add", self.k.db, "--login", "u_deploy", "--role", "admin",
                         "--password-file", pw])
        s, a, _ = self.n.call("POST", "/v1/admin/login",
                              {"login": "u_deploy", "password": "correct horse battery"})
        self.assertEqual(s, 200, a)
        token = a["token"]
        # A file past 1 MiB reaches the import route (a dry run: nothing written).
        text = "number,state,block_reason\n" + "".join(
            "NGX-%05d,issued,%s\n" % (i, "r" * 240) for i in range(5000))
        self.assertGreater(len(text), BODY_MAX)
        s, a, _ = self.n.call("POST", "/v1/admin/imports?kind=cards&dry_run=1", text.encode(),
                              key=token, headers={"Content-Type": "text/csv"})
        self.assertEqual((s, a and a.get("inserted")), (200, 5000), a)
        # Past 32 MiB nginx refuses it on its Content-Length, in the server's words.
        conn = self.n.https()
        try:
            conn.putrequest("POST", "/v1/admin/imports?kind=cards")
            conn.putheader("Authorization", "Bearer " + token)
            conn.putheader("Content-Length", str(32 * 1024 * 1024 + 1))
            conn.endheaders()
            r = conn.getresponse()
            self.assertEqual(r.status, 413)
            self.assertEqual(json.loads(r.read()), {"error": {"code": "too_large", "message":
                             "the body is over the limit of 33554432 bytes"}})
        finally:
            conn.close()
        # The unit trusts the proxy: the address is the one nginx appends,
        # whatever a client claims before it. Twenty failures from this
        # client, each claiming another address, and its logins are refused.
        for i in range(20):
            s, _, _ = self.n.call("POST", "/v1/admin/login",
                                  {"login": "u_deploy", "password": "wrong %d" % i} if i < 4 else
                                  {"login": "ghost%d" % i, "password": "wrong"},
                                  headers={"X-Forwarded-For": "203.0.113.%d" % i})
            self.assertEqual(s, 401)
        s, a, h = self.n.call("POST", "/v1/admin/login",
                              {"login": "u_deploy", "password": "correct horse battery"},
                              headers={"X-Forwarded-For": "203.0.113.200"})
        self.assertEqual((s, a["error"]["code"]), (429, "rate_limited"), a)
        self.assertIn("from this address", a["error"]["message"])
        self.assertGreater(int(h["retry-after"]), 0)

    def test_the_servers_own_errors_pass_through(self):
        s, a, _ = self.n.call("GET", "/v1/cards/" + self.k.cards[3])
        self.assertEqual((s, a["error"]["code"]), (401, "unauthorized"))
        s, a, _ = self.n.call("GET", "/v1/no-such-route", key=self.k.key)
        self.assertEqual((s, a["error"]["code"]), (404, "not_found"))

    def test_health_routes_through_the_proxy(self):
        for route in ("/live", "/ready", "/health"):
            s, a, _ = self.n.call("GET", route)
            self.assertEqual((s, a), (200, {"status": "ok", "problems": []}), route)

    def test_metrics_not_served_through_the_proxy(self):
        s, a, _ = self.n.call("GET", "/metrics")
        self.assertEqual((s, a["error"]["code"]), (403, "forbidden"))
        self.assertIn("scrape http://127.0.0.1:8080/metrics", a["error"]["message"])

    def test_tls_1_0_and_1_1_refused_1_2_and_1_3_accepted(self):
        for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            # SECLEVEL=0 lets this client offer the old versions at all, so
            # the refusal is the server's.
            ctx = self.n.context(minimum=version, maximum=version, ciphers="DEFAULT:@SECLEVEL=0")
            with self.assertRaises(ssl.SSLError, msg=str(version)) as cm:
                self.n.call("GET", "/live", conn=self.n.https(ctx))
            self.assertIn("ALERT_PROTOCOL_VERSION", cm.exception.reason or str(cm.exception),
                          str(version))
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = self.n.context(minimum=version, maximum=version)
            c = self.n.https(ctx)
            s, _, _ = self.n.call("GET", "/live", conn=c)
            self.assertEqual(s, 200)
            self.assertEqual(c.sock.version(), {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                                ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version])
            c.close()
        # TLS 1.2 with a CBC suite only: not in the intermediate profile.
        ctx = self.n.context(maximum=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-RSA-AES128-SHA")
        with self.assertRaises(ssl.SSLError) as cm:
            self.n.call("GET", "/live", conn=self.n.https(ctx))
        self.assertIn("HANDSHAKE_FAILURE", cm.exception.reason or str(cm.exception))

    def test_plain_http_redirected_to_https(self):
        c = http.client.HTTPConnection("127.0.0.1", self.n.http_port, timeout=10)
        c.request("GET", "/v1/cards/x", headers={"Host": "kopilka.example.com"})
        r = c.getresponse()
        r.read()
        c.close()
        self.assertEqual((r.status, r.getheader("Location")),
                         (301, "https://kopilka.example.com/v1/cards/x"))

    def test_upstream_connections_kept_alive(self):
        """20 requests over 20 client connections reuse the proxy's idle
        connections to the server: no connection to the server is closed
        (none in TIME_WAIT), one or two stay open."""
        port = self.k.port

        def sockets(state):
            found = set()
            for name in ("/proc/net/tcp", "/proc/net/tcp6"):
                try:
                    with open(name) as f:
                        rows = f.read().splitlines()[1:]
                except OSError:
                    continue
                for row in rows:
                    cols = row.split()
                    local, remote, st = cols[1], cols[2], cols[3]
                    if st == state and port in (int(local.split(":")[1], 16),
                                                int(remote.split(":")[1], 16)):
                        found.add((local, remote))
            return found

        # Only nginx's connections to the server from here on: the test's
        # own direct one (if an earlier test opened it) is closed first.
        if self.k._client is not None:
            self.k._client.close()
        self.n.call("GET", "/live")  # one connection to the server opened
        time.sleep(0.3)
        before = sockets("06")  # TIME_WAIT
        for i in range(20):
            s, _, _ = self.n.call("GET", "/v1/cards/" + self.k.cards[2], key=self.k.key)
            self.assertEqual(s, 200)
        self.assertEqual(sockets("06") - before, set())
        established = sockets("01")  # both ends of each open connection
        self.assertLessEqual(len(established), 4, established)
        self.assertGreaterEqual(len(established), 2, established)


class ProxyServerDown(unittest.TestCase):
    """nginx in front of an address where nothing listens."""

    def test_no_server_answers_503_unavailable(self):
        directory = tempfile.mkdtemp(prefix="kopilka-nginx-")
        try:
            n = Nginx(directory, harness.free_port())
            n.start()
            try:
                s, a, _ = n.call("POST", "/v1/purchases", purchase("1", "R-1"), key="k")
            finally:
                n.stop()
            self.assertEqual((s, a["error"]["code"]), (503, "unavailable"))
            self.assertIn("send the same request again", a["error"]["message"])
        finally:
            shutil.rmtree(directory, ignore_errors=True)


class ProxyIdleUpstream(unittest.TestCase):
    """The server closes a connection that sends no request within
    --request-timeout; nginx must not lose the next purchase on it."""

    def test_purchase_after_the_server_closed_idle_connections(self):
        stack = Stack(more=["--request-timeout", "1"])
        try:
            n, k = stack.nginx, stack.k
            s, _, _ = n.call("POST", "/v1/purchases", purchase(k.cards[0], "IDLE-1"), key=k.key)
            self.assertEqual(s, 201)
            time.sleep(2.5)  # the server has closed nginx's idle connection
            s, a, _ = n.call("POST", "/v1/purchases", purchase(k.cards[0], "IDLE-2"), key=k.key)
            self.assertEqual(s, 201, a)
        finally:
            stack.close()


class UnitFile(unittest.TestCase):
    def installed_copies(self, directory):
        """The units with their programs' paths pointing into this tree,
        so that `systemd-analyze verify` finds them executable."""
        out = []
        for path, old, new in ((UNIT, "/usr/local/bin/kopilka", harness.binary()),
                               (BACKUP_UNIT, "/usr/local/lib/kopilka/kopilka-backup.sh",
                                BACKUP_SCRIPT),
                               (BACKUP_TIMER, None, None)):
            with open(path) as f:
                text = f.read()
            if old:
                self.assertIn(old, text)
                text = text.replace(old, new)
            dest = os.path.join(directory, os.path.basename(path))
            with open(dest, "w") as f:
                f.write(text)
            out.append(dest)
        return out

    def test_systemd_analyze_verify(self):
        tool = shutil.which("systemd-analyze")
        if tool is None:
            self.skipTest("systemd-analyze is not installed; test_key_settings checks the file")
        with tempfile.TemporaryDirectory() as d:
            for unit in self.installed_copies(d):
                p = subprocess.run([tool, "verify", unit], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
                # verify exits 0 on unknown keys too: any word is a failure.
                self.assertEqual((p.returncode, p.stdout), (0, ""), unit)

    def test_systemd_analyze_security_exposure(self):
        tool = shutil.which("systemd-analyze")
        if tool is None:
            self.skipTest("systemd-analyze is not installed")
        for unit in (UNIT, BACKUP_UNIT):
            p = subprocess.run([tool, "security", "--offline=true", unit],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", p.stdout)
            self.assertIsNotNone(m, p.stdout[-2000:])
            self.assertLessEqual(float(m.group(1)), 2.0, p.stdout[-3000:])

    def test_key_settings(self):
        s = parse_unit(UNIT)["Service"]
        one = {k: v[-1] for k, v in s.items()}
        for key, value in (("User", "kopilka"), ("StateDirectory", "kopilka"),
                           ("StateDirectoryMode", "0700"),
                           ("WorkingDirectory", "/var/lib/kopilka"),
                           ("Restart", "on-failure"), ("KillSignal", "SIGTERM"),
                           ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                           ("ReadWritePaths", "/var/lib/kopilka"), ("PrivateTmp", "yes"),
                           ("ProtectHome", "yes"), ("CapabilityBoundingSet", ""),
                           ("UMask", "0077"), ("StandardError", "journal"),
                           ("LogRateLimitIntervalSec", "0")):
            self.assertEqual(one.get(key), value, key)
        argv = one["ExecStart"].split()
        self.assertEqual(argv[:5], ["/usr/local/bin/kopilka", "serve",
                                    "/var/lib/kopilka/kopilka.db", "--listen", "127.0.0.1:8080"])
        # The server drains for at most 5 s (ANSWER_WAIT_S) before its last
        # commit: the stop timeout leaves room.
        self.assertRegex(one["TimeoutStopSec"], r"^[0-9]+s$")
        self.assertGreaterEqual(int(one["TimeoutStopSec"][:-1]), 30)
        # 2048 connections plus the files.
        self.assertGreater(int(one["LimitNOFILE"]), 2048 + 64)
        # No --access-log option: the default, stderr, that is the journal.
        self.assertNotIn("--access-log", argv)
        # Behind nginx every connection is 127.0.0.1's.
        self.assertEqual(argv[argv.index("--connections-per-address") + 1], "2048")
        # ... so the login limits per address read X-Forwarded-For, which nginx sets.
        self.assertIn("--trust-proxy", argv)
        timer = parse_unit(BACKUP_TIMER)["Timer"]
        self.assertEqual(timer["Persistent"], ["true"])
        self.assertTrue(timer["OnCalendar"][0].startswith("*-*-* "))

    def test_the_unit_command_line_serves_and_stops_on_sigterm(self):
        """ExecStart as written, with the binary and the database of the
        test, and a free port for 127.0.0.1:8080."""
        k = harness.Kopilka(cards=1)
        try:
            argv = parse_unit(UNIT)["Service"]["ExecStart"][-1].split()
            port = harness.free_port()
            argv = [harness.binary() if a == "/usr/local/bin/kopilka" else
                    k.db if a == "/var/lib/kopilka/kopilka.db" else
                    "127.0.0.1:%d" % port if a == "127.0.0.1:8080" else a for a in argv]
            log = open(k.log, "ab")
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, cwd=k.dir)
            log.close()
            try:
                deadline = time.monotonic() + 10
                while True:
                    try:
                        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                        c.request("GET", "/ready")
                        r = c.getresponse()
                        status = r.status
                        r.read()
                        c.close()
                        break
                    except OSError:
                        self.assertIsNone(p.poll(), k.log_tail())
                        self.assertLess(time.monotonic(), deadline, k.log_tail())
                        time.sleep(0.05)
                self.assertEqual(status, 200)
                # The start line is printed once the listener runs, so a
                # /ready may be answered (and logged) a moment before it.
                deadline = time.monotonic() + 5
                while ("at most 2048 connections an address" not in k.log_tail()
                       and time.monotonic() < deadline):
                    time.sleep(0.05)
                self.assertIn("at most 2048 connections an address", k.log_tail())
            finally:
                p.send_signal(signal.SIGTERM)
                rc = p.wait(timeout=60)
            self.assertEqual(rc, 0, k.log_tail())
            self.assertIn("kopilka: stopping (signal 15)", k.log_tail())
        finally:
            k.close()


class BackupScript(unittest.TestCase):
    def run_script(self, *args):
        env = dict(os.environ, KOPILKA=harness.binary())
        return subprocess.run(["sh", BACKUP_SCRIPT] + [str(a) for a in args], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=120)

    def test_backups_of_a_served_database_verified_and_rotated(self):
        k = harness.Kopilka(cards=2)
        out = tempfile.mkdtemp(prefix="kopilka-backups-")
        try:
            k.start()
            made = []
            for i in range(3):
                s, _ = k.call("POST", "/v1/purchases", purchase(k.cards[0], "BK-%d" % i))
                self.assertEqual(s, 201)
                p = self.run_script(k.db, out, 2)
                self.assertEqual(p.returncode, 0, p.stderr)
                made.append(re.search(r"wrote (\S+\.db) and", p.stdout).group(1))
                time.sleep(1.1)  # names are by the second
            names = sorted(os.listdir(out))
            want = sorted([os.path.basename(m) for m in made[1:]] +
                          [os.path.basename(m) + ".key" for m in made[1:]])
            self.assertEqual(names, want)
            self.assertIn("removed %s (more than 2 backups)" % made[0], p.stdout)
            for m in made[1:]:
                self.assertEqual(os.stat(m + ".key").st_mode & 0o777, 0o600)
                self.assertEqual(os.stat(m).st_mode & 0o077, 0)
                v = harness.run_cli(["verify", m], check=False)
                self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
            # Each backup holds the purchases acknowledged before it began.
            for n, m in enumerate(made[1:], start=2):
                db = sqlite3.connect(m)
                try:
                    got = [r[0] for r in db.execute(
                        "SELECT receipt FROM ops WHERE receipt LIKE 'BK-%' ORDER BY receipt")]
                finally:
                    db.close()
                self.assertEqual(got, ["BK-%d" % i for i in range(n)], m)
        finally:
            k.close()
            shutil.rmtree(out, ignore_errors=True)

    def test_bad_arguments_and_a_failed_backup_keep_older_backups(self):
        p = self.run_script("db")
        self.assertEqual((p.returncode, p.stderr),
                         (2, "usage: kopilka-backup.sh DB DIR [KEEP]\n"))
        p = self.run_script("db", "dir", "0")
        self.assertEqual((p.returncode, p.stderr), (2, "kopilka-backup.sh: KEEP must be a "
                                                        "whole number from 1, got '0'\n"))
        out = tempfile.mkdtemp(prefix="kopilka-backups-")
        try:
            with open(os.path.join(out, "kopilka-20260101T000000Z.db"), "w") as f:
                f.write("an older backup")
            p = self.run_script(os.path.join(out, "missing.db"), out, 1)
            self.assertEqual(p.returncode, 1)
            self.assertIn("older backups kept", p.stderr)
            self.assertEqual(os.listdir(out), ["kopilka-20260101T000000Z.db"])
        finally:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
