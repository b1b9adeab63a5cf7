"""
harness.py: runs a real `kopilka serve` for the black-box tests.

A test makes a Kopilka() (a fresh database in a temporary directory, loaded
with the seed 004 case 1 program, one terminal key and a batch of cards),
calls start(), talks HTTP through call() or a keep-alive Client, and calls
close() at the end (SIGTERM, then SIGKILL after 5 s; the directory is removed).

Where things come from:
  - the binary: `--kopilka PATH` on the command line (take_argv() strips it
    before unittest sees argv), else $KOPILKA_BIN, else build/kopilka of the
    repository;
  - the program file: $KOPILKA_EXAMPLES/autoservice-case1.json, else
    ../../examples/autoservice-case1.json relative to this file.

With $KOPILKA_OPENAPI_RECORD=FILE set (off by default), every answer a
Client receives is appended to FILE as one JSON line {method, path, status,
content_type, body} for tests/integration/test_openapi.py to check against
docs/openapi.json. With $KOPILKA_OPENAPI_RECORD_FRESH=1 too (CTest's SQLite
entries), take_argv() empties FILE first, so it holds this run's answers
only (the variable is then dropped: suites a suite starts append).

The backend: $KOPILKA_TEST_STORE unset or "sqlite" = a file in the
temporary directory; "pg" = PostgreSQL: each Kopilka() creates a database
of its own (CREATE DATABASE kp_<pid>_<n>, dropped at close()) on the cluster
$KOPILKA_TEST_PG names (a base URL, see scripts/pg.sh), `db` is its
postgresql:// location, and its PII key file (KOPILKA_KEY_FILE, which a
PostgreSQL location needs) is in the temporary directory; run_cli(),
cli_env() and start() give every command the key file of the location it
names. A test about SQLite's files says so with sqlite_only(reason). The
database under a store is reached with query() and execute() (sqlite3, or
psql on PostgreSQL).

Standard library only.
"""
import atexit
import http.client
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
PROGRAM_NAME = "autoservice-case1.json"

# Categories of the seed 004 case 1 program (the benchmark's load generator
# and the PostgreSQL peer use the same names).
LABOR = "labor"
PARTS = "parts"

_binary_from_argv = None

# Sentinel for call(): "the server's own terminal key".
DEFAULT_KEY = object()


def store_kind():
    """"sqlite" or "pg", from $KOPILKA_TEST_STORE (unset = sqlite); any
    other value raises, so a typo never tests SQLite in PostgreSQL's name."""
    kind = os.environ.get("KOPILKA_TEST_STORE") or "sqlite"
    if kind not in ("sqlite", "pg"):
        raise RuntimeError("KOPILKA_TEST_STORE=%s: expected sqlite or pg" % kind)
    return kind


def is_pg():
    """True when the tests run on PostgreSQL (KOPILKA_TEST_STORE=pg)."""
    return store_kind() == "pg"


def sqlite_only(test, reason):
    """In a unittest.TestCase: skips `test` on PostgreSQL, saying `reason`
    (what about SQLite's files it checks)."""
    if is_pg():
        test.skipTest("SQLite only: " + reason)


# Why a full disk (start(file_size_limit=...)) is tested on SQLite alone.
FULL_DISK_IS_SQLITES = ("the file-size limit applies to the files the server writes, "
                        "SQLite's; PostgreSQL's are its own server's")


class DatabaseError(Exception):
    """A statement the database refused (query(), execute())."""


def pg_base():
    """The cluster's base URL, $KOPILKA_TEST_PG; raises when it is unset."""
    base = os.environ.get("KOPILKA_TEST_PG")
    if not base:
        raise RuntimeError("KOPILKA_TEST_STORE=pg needs KOPILKA_TEST_PG, the base URL of a "
                           "cluster (scripts/pg.sh start prints one)")
    return base.rstrip("/")


def psql(url, sql, *more, timeout=60):
    """Runs `sql` (then each of `more`, each on its own, as CREATE DATABASE
    must be) with psql on `url`, stopping at the first error; returns the
    unaligned output. Raises DatabaseError with PostgreSQL's message."""
    args = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url]
    for statement in (sql,) + more:
        args += ["-c", statement]
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    if p.returncode != 0:
        raise DatabaseError("psql %s: %s" % (sql[:200], p.stderr.strip()))
    return p.stdout


def _pg_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return "'\\x%s'::bytea" % bytes(v).hex()
    return "'" + str(v).replace("'", "''") + "'"


def _pg_bind(sql, params):
    """`sql` with each `?` replaced by the next parameter as a literal."""
    parts = sql.split("?")
    if len(parts) - 1 != len(params):
        raise ValueError("%d parameters for %d placeholders in %s"
                         % (len(params), len(parts) - 1, sql))
    out = [parts[0]]
    for v, rest in zip(params, parts[1:]):
        out += [_pg_literal(v), rest]
    return "".join(out)


# PostgreSQL locations of live Kopilka() instances -> their key files.
_key_files = {}
_pg_serial = 0


def cli_env(args, env=None):
    """The environment for running kopilka with `args`: os.environ (or
    `env`), plus on PostgreSQL KOPILKA_KEY_FILE of the first argument that
    is the location of a live Kopilka()."""
    out = dict(os.environ if env is None else env)
    for a in args:
        key_file = _key_files.get(str(a))
        if key_file is not None:
            out["KOPILKA_KEY_FILE"] = key_file
            break
    return out


def take_argv(argv=None):
    """Removes `--kopilka PATH` / `--kopilka=PATH` from argv (sys.argv by
    default) and remembers the path. Returns the argv left."""
    global _binary_from_argv
    if argv is None:
        argv = sys.argv
    out = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--kopilka" and i + 1 < len(argv):
            _binary_from_argv = argv[i + 1]
            i += 2
            continue
        if a.startswith("--kopilka="):
            _binary_from_argv = a.split("=", 1)[1]
            i += 1
            continue
        out.append(a)
        i += 1
    argv[:] = out
    record = os.environ.get("KOPILKA_OPENAPI_RECORD")
    if record and os.environ.pop("KOPILKA_OPENAPI_RECORD_FRESH", None) == "1":
        os.makedirs(os.path.dirname(os.path.abspath(record)), exist_ok=True)
        with open(record, "w", encoding="utf-8"):
            pass
    return argv


def binary():
    """The kopilka binary to test: `--kopilka PATH`, else $KOPILKA_BIN, else
    the repository's build/kopilka. Raises RuntimeError when it is missing."""
    given = _binary_from_argv or os.environ.get("KOPILKA_BIN")
    path = os.path.abspath(given) if given else os.path.join(REPO, "build", "kopilka")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise RuntimeError("kopilka binary not found or not executable: %s "
                           "(pass --kopilka PATH or set KOPILKA_BIN)" % path)
    return path


def program_file(name=PROGRAM_NAME):
    """Path of examples/NAME (default autoservice-case1.json); raises
    RuntimeError if missing."""
    base = os.environ.get("KOPILKA_EXAMPLES") or os.path.join(HERE, "..", "..", "examples")
    path = os.path.abspath(os.path.join(base, name))
    if not os.path.isfile(path):
        raise RuntimeError("program file not found: %s (set KOPILKA_EXAMPLES)" % path)
    return path


def program_pending_days():
    """Days before earned points become spendable, as the program file says
    (0 when it names no pending period). Tests space their `at` instants by
    more than this so a burn is never refused for that reason."""
    try:
        with open(program_file(), "rb") as f:
            doc = json.load(f)
    except (OSError, ValueError, RuntimeError):
        return 0
    best = 0
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                if "pending" in k and isinstance(v, int) and not isinstance(v, bool):
                    best = max(best, v)
                elif isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(node, list):
            stack.extend(node)
    return best


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(args, timeout=60, check=True):
    """Runs `kopilka ARGS...`; returns the CompletedProcess (text mode)."""
    cmd = [binary()] + [str(a) for a in args]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, env=cli_env(cmd))
    if check and p.returncode != 0:
        raise RuntimeError("%s exited %d\nstdout: %s\nstderr: %s"
                           % (" ".join(cmd), p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
    return p


def _record(method, path, status, content_type, body):
    """Appends one answer to $KOPILKA_OPENAPI_RECORD, when it is set."""
    name = os.environ.get("KOPILKA_OPENAPI_RECORD")
    if not name:
        return
    line = json.dumps({"method": method, "path": path, "status": status,
                       "content_type": content_type, "body": body}) + "\n"
    # One write(2) with O_APPEND: threads' lines never interleave.
    fd = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def _decode(raw):
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def send_raw(port, head, body, timeout=20):
    """Sends head+body on a fresh socket, stopping early if the server answers
    (it may refuse a body before reading all of it, and close). Returns
    (status, json or None); the answer is recorded like call()'s."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(head)
        view = memoryview(body)
        sent = 0
        while sent < len(view):
            r, _, _ = select.select([s], [], [], 0)
            if r:
                break
            try:
                sent += s.send(view[sent:sent + 65536])
            except (BrokenPipeError, ConnectionResetError):
                break
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                hdr, _, rest = data.partition(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length:\s*(\d+)", hdr)
                if m and len(rest) >= int(m.group(1)):
                    break
    finally:
        s.close()
    if not data.startswith(b"HTTP/1."):
        raise AssertionError("no HTTP answer: %r" % data[:200])
    status = int(data.split(b" ", 2)[1])
    hdr, _, rest = data.partition(b"\r\n\r\n")
    m = re.search(rb"(?im)^content-type:\s*([^\r\n]*)", hdr)
    parsed = _decode(rest)
    request = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    _record(request[0], request[1], status, m.group(1).decode("latin-1") if m else None, parsed)
    return status, parsed


class Client:
    """One keep-alive HTTP/1.1 connection to the server. Not thread-safe:
    give each thread its own. `last_raw` keeps the last answer's bytes."""

    def __init__(self, port, key, timeout=30):
        self.port = port
        self.key = key
        self.timeout = timeout
        self.conn = None
        self.used = False
        self.last_raw = b""
        self.last_headers = {}

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _connect(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        self.used = False

    def call(self, method, path, body=None, key=DEFAULT_KEY, headers=None):
        """Sends one request; returns (status, parsed JSON or None).
        body: a dict/list (sent as JSON), bytes/str (sent as is) or None.
        key: DEFAULT_KEY = this client's key; None = no Authorization header."""
        if isinstance(body, (dict, list)):
            payload = json.dumps(body).encode("utf-8")
        elif isinstance(body, str):
            payload = body.encode("utf-8")
        else:
            payload = body
        h = {}
        if payload is not None:
            h["Content-Type"] = "application/json"
        k = self.key if key is DEFAULT_KEY else key
        if k is not None:
            h["Authorization"] = "Bearer " + k
        if headers:
            h.update(headers)
        for attempt in (0, 1):
            if self.conn is None:
                self._connect()
            reused = self.used
            try:
                self.conn.request(method, path, body=payload, headers=h)
                resp = self.conn.getresponse()
                raw = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                # The server may close an idle keep-alive connection; a fresh
                # connection gets one more try. Every POST here carries its
                # receipt, so a retry can never count twice.
                if reused and attempt == 0:
                    continue
                raise
            except Exception:
                self.close()
                raise
            self.used = True
            self.last_raw = raw
            self.last_headers = dict(resp.getheaders())
            if resp.will_close:
                self.close()
            _record(method, path, resp.status, resp.getheader("Content-Type"), _decode(raw))
            return resp.status, _decode(raw)
        raise AssertionError("unreachable")


# Fixture templates. A new Kopilka() is `init`, `terminal add` and `cards
# issue`: three processes (migrations on PostgreSQL) that give the same
# database every time for the same program, store, card count and
# KOPILKA_* environment. The first one of a test process is kept as a
# template (a copy of the SQLite files; a PostgreSQL database made with
# CREATE DATABASE ... TEMPLATE) and the next ones are copies of it, with
# the same terminal key, card numbers and key file. Templates are removed
# when the process exits. KOPILKA_TEST_FRESH_FIXTURES=1 makes every one
# from scratch.
_templates = {}
_templates_lock = threading.Lock()
_template_serial = 0


def _fixture_key(program, store, cards):
    if os.environ.get("KOPILKA_TEST_FRESH_FIXTURES") == "1":
        return None
    try:
        with open(program_file(program), "rb") as f:
            text = f.read()
    except (OSError, RuntimeError):
        return None
    env = tuple(sorted((k, v) for k, v in os.environ.items()
                       if k.startswith("KOPILKA_") and k != "KOPILKA_OPENAPI_RECORD"))
    return (store_kind(), program, text, store, cards, env)


def _fixture_keep(k, program, store, cards):
    """Keeps k's fresh database as the template of its kind (the first one)."""
    global _template_serial
    key = _fixture_key(program, store, cards)
    if key is None:
        return
    with _templates_lock:
        if key in _templates:
            return
        _template_serial += 1
        folder = tempfile.mkdtemp(prefix="kopilka-tmpl-")
        pg_name = None
        if k.pg_name is not None:
            pg_name = "kpt_%d_%d" % (os.getpid(), _template_serial)
            psql(pg_base() + "/postgres", "DROP DATABASE IF EXISTS %s" % pg_name,
                 "CREATE DATABASE %s TEMPLATE %s" % (pg_name, k.pg_name))
            shutil.copy2(k.key_file, os.path.join(folder, "kopilka.key"))
        else:
            for name in os.listdir(k.dir):
                if name.startswith("kopilka.db") and not name.endswith("-shm"):
                    shutil.copy2(os.path.join(k.dir, name), os.path.join(folder, name))
        _templates[key] = (folder, pg_name, k.key, list(k.cards))


def _fixture_clone(k, program, store, cards):
    """Makes k's database a copy of its kind's template; returns (terminal
    key, cards), or None when there is no template yet."""
    key = _fixture_key(program, store, cards)
    if key is None:
        return None
    with _templates_lock:
        t = _templates.get(key)
    if t is None:
        return None
    folder, pg_name, api_key, card_list = t
    if k.pg_name is not None:
        psql(pg_base() + "/postgres", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % k.pg_name,
             "CREATE DATABASE %s TEMPLATE %s" % (k.pg_name, pg_name))
        shutil.copy2(os.path.join(folder, "kopilka.key"), k.key_file)
    else:
        for name in os.listdir(folder):
            shutil.copy2(os.path.join(folder, name), os.path.join(k.dir, name))
    return api_key, list(card_list)


def _templates_drop():
    for folder, pg_name, _, _ in _templates.values():
        shutil.rmtree(folder, ignore_errors=True)
        if pg_name is not None:
            try:
                psql(pg_base() + "/postgres", "DROP DATABASE IF EXISTS %s" % pg_name)
            except (DatabaseError, OSError, RuntimeError, subprocess.SubprocessError):
                pass


atexit.register(_templates_drop)


class Kopilka:
    """A database and (after start()) a server on a free port.

    Attributes: dir, db (the location: a file in dir, or a postgresql://
    URL), key (terminal of store "main"), cards (issued numbers), port, log
    (the server's stdout+stderr file), key_file (the PII key file)."""

    def __init__(self, cards=10, store="main", program=PROGRAM_NAME):
        self.dir = tempfile.mkdtemp(prefix="kopilka-it-")
        self.proc = None
        self.clock = None  # the --now of every start (set_clock)
        self.port = None
        self.log = os.path.join(self.dir, "serve.log")
        self._client = None
        self._lock = threading.Lock()
        self.pg_name = None
        try:
            if is_pg():
                global _pg_serial
                _pg_serial += 1
                self.pg_name = "kp_%d_%d" % (os.getpid(), _pg_serial)
                # A database a crashed run left under this name goes first.
                psql(pg_base() + "/postgres",
                     "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.pg_name,
                     "CREATE DATABASE " + self.pg_name)
                self.db = pg_base() + "/" + self.pg_name
                self.key_file = os.path.join(self.dir, "kopilka.key")
                _key_files[self.db] = self.key_file
            else:
                self.db = os.path.join(self.dir, "kopilka.db")
                self.key_file = self.db + ".key"
            made = _fixture_clone(self, program, store, cards)
            if made is None:
                run_cli(["init", self.db, "--program", program_file(program)])
                self.key = self.terminal_add(store)
                self.cards = self.issue_cards(cards) if cards else []
                _fixture_keep(self, program, store, cards)
            else:
                self.key, self.cards = made
        except Exception:
            self._drop()
            raise

    # --- CLI -----------------------------------------------------------
    def terminal_add(self, store):
        """Adds a terminal of `store`; returns its API key (the one line printed)."""
        out = run_cli(["terminal", "add", self.db, "--store", store]).stdout
        lines = [l.strip() for l in out.splitlines() if l.strip()]
        if len(lines) != 1:
            raise RuntimeError("terminal add printed %r, expected one key line" % out)
        return lines[0]

    def issue_cards(self, count):
        """Issues `count` cards; returns their numbers."""
        out = run_cli(["cards", "issue", self.db, "--count", count]).stdout
        cards = [l.strip() for l in out.splitlines() if l.strip()]
        if len(cards) != count:
            raise RuntimeError("cards issue printed %d numbers, expected %d" % (len(cards), count))
        return cards

    def verify(self):
        """Runs `kopilka verify DB`; returns the CompletedProcess (never raises on status)."""
        return run_cli(["verify", self.db], timeout=120, check=False)

    # --- server --------------------------------------------------------
    def cli(self, *args, check=True):
        """Runs `kopilka ARGS...` with this database where DB is written;
        returns the CompletedProcess."""
        return run_cli([self.db if a == "DB" else a for a in args], check=check)

    def start(self, timeout=10.0, serve_args=(), file_size_limit=None):
        """Starts `kopilka serve` on a free port and waits until it answers
        HTTP. serve_args: more options (`--now`, `--tick`). file_size_limit:
        bytes no file of the server may grow past (RLIMIT_FSIZE), to make
        its writes fail as on a full disk."""
        assert self.proc is None, "server already running"
        serve_args = [str(a) for a in serve_args]
        if getattr(self, "clock", None) and "--now" not in serve_args:
            serve_args += ["--now", self.clock]
        self.serve_args = tuple(serve_args)
        self.port = free_port()
        logf = open(self.log, "ab")
        try:
            limit = None
            if file_size_limit is not None:
                def limit():
                    resource.setrlimit(resource.RLIMIT_FSIZE,
                                       (file_size_limit, file_size_limit))
            self.proc = subprocess.Popen(
                [binary(), "serve", self.db, "--listen", "127.0.0.1:%d" % self.port]
                + [str(a) for a in serve_args],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                preexec_fn=limit, env=cli_env([self.db]))
        finally:
            logf.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise RuntimeError("kopilka serve exited with %d before answering\n%s"
                                   % (rc, self.log_tail()))
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/v1/cards/x")
                c.getresponse().read()
                c.close()
                break
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("kopilka serve did not answer within %.0f s\n%s"
                                       % (timeout, self.log_tail()))
                time.sleep(0.05)
        self._client = Client(self.port, self.key)
        return self

    def set_clock(self, when):
        """Makes the server's time `when` (RFC 3339) from now on: (re)starts
        it with `--now when`, its other options kept, unless it already runs
        at that instant; later start() calls keep that time. A till's `at`
        must lie within the program's clock window of the server's time, so
        a test that replays a dated story moves the server's clock with it
        instead of back-dating requests."""
        if self.clock == when and self.alive():
            return
        args = list(getattr(self, "serve_args", ()))
        if "--now" in args:
            i = args.index("--now")
            del args[i:i + 2]
        self.clock = when
        if self.proc is not None:
            self.stop()
        self.start(serve_args=args)

    def stop(self):
        """SIGTERM, then SIGKILL after 5 s. Returns the exit status (None if not running)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.proc is None:
            return None
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode

    def kill9(self):
        """Kills the server with SIGKILL at once (a crash)."""
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        p.kill()
        p.wait()
        if self._client is not None:
            self._client.close()
            self._client = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def close(self):
        """Stops the server and removes the directory (and, on PostgreSQL,
        the database)."""
        try:
            self.stop()
        finally:
            self._drop()

    @classmethod
    def existing(cls, location, key, key_file=None):
        """A Kopilka on a database made elsewhere (the target of `kopilka
        migrate`), with `key` as its terminal key and, for a PostgreSQL
        location, `key_file` given to every command and server on it. It has
        no cards of its own; close() stops its server and leaves the
        database."""
        k = object.__new__(cls)
        k.dir = tempfile.mkdtemp(prefix="kopilka-it-")
        k.db, k.key, k.key_file, k.cards = location, key, key_file, []
        k.proc = k.port = k._client = k.clock = None
        k.log = os.path.join(k.dir, "serve.log")
        k._lock = threading.Lock()
        k.pg_name = None
        k._key_entry = key_file is not None and location not in _key_files
        if k._key_entry:
            _key_files[location] = key_file
        return k

    def another_server(self):
        """A second Kopilka on this one's database (several servers on one
        PostgreSQL database): the same db, key, cards and key file, a server,
        port and log of its own. Its close() stops its server and leaves the
        database to this one."""
        k = object.__new__(type(self))
        k.__dict__.update(self.__dict__)
        k.dir = tempfile.mkdtemp(prefix="kopilka-it-")
        k.log = os.path.join(k.dir, "serve.log")
        k.proc = k.port = k._client = None
        k._lock = threading.Lock()
        k.pg_name = None
        k._key_entry = False
        return k

    def _drop(self):
        if getattr(self, "_key_entry", False):
            _key_files.pop(self.db, None)
        try:
            if self.pg_name is not None:
                _key_files.pop(getattr(self, "db", None), None)
                # FORCE: a server killed by a test may leave a connection
                # PostgreSQL has not noticed yet.
                psql(pg_base() + "/postgres", "DROP DATABASE IF EXISTS %s WITH (FORCE)"
                     % self.pg_name)
                self.pg_name = None
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- the database under the store -----------------------------------
    def on_pg(self):
        """Whether this store's location is a PostgreSQL one (its database
        made by this Kopilka or, for existing() and another_server(), not)."""
        return self.db.startswith(("postgresql://", "postgres://"))

    def query(self, sql, params=()):
        """Rows (tuples) of one SELECT on the store's database, on a
        connection of its own; `?` marks a parameter. Integers come back as
        int, text as str, on both backends (a BLOB as bytes on SQLite, as
        "\\x..." text on PostgreSQL)."""
        if not self.on_pg():
            db = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=10)
            try:
                return [tuple(r) for r in db.execute(sql, params).fetchall()]
            except sqlite3.Error as e:
                raise DatabaseError("%s: %s" % (sql, e))
            finally:
                db.close()
        out = psql(self.db, "SELECT coalesce(json_agg(q), '[]') FROM ("
                   + _pg_bind(sql, params) + ") q")
        # Each row is a JSON object in column order; its values are the row.
        return json.loads(out, object_pairs_hook=lambda pairs: tuple(v for _, v in pairs))

    def holds_text(self, text):
        """Whether `text` is anywhere in what the store keeps: the SQLite
        file (its journal checkpointed into it first), or any row of any
        of the PostgreSQL database's tables, read as text."""
        if not self.on_pg():
            self.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            with open(self.db, "rb") as f:
                return text.encode("utf-8") in f.read()
        return self.query(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND "
            "strpos(query_to_xml(format('SELECT * FROM %I.%I', schemaname, tablename), "
            "true, false, '')::text, ?) > 0", (text,)) != [(0,)]

    def execute(self, sql, params=()):
        """Runs statements (`;` between them; with params, one statement)
        on the store's database in one transaction. Raises DatabaseError
        when the database refuses, e.g. an append-only guard."""
        if not self.on_pg():
            db = sqlite3.connect(self.db, timeout=10)
            try:
                if params:
                    db.execute(sql, params)
                else:
                    db.executescript(sql)
                db.commit()
            except sqlite3.Error as e:
                raise DatabaseError("%s: %s" % (sql, e))
            finally:
                db.close()
            return
        psql(self.db, "BEGIN; %s; COMMIT" % _pg_bind(sql, params))

    def log_tail(self, n=4000):
        try:
            with open(self.log, "rb") as f:
                data = f.read()
            return data[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    # --- HTTP ----------------------------------------------------------
    def client(self, key=None):
        """A new keep-alive connection (one per thread); key defaults to self.key."""
        return Client(self.port, key if key is not None else self.key)

    def call(self, method, path, body=None, key=DEFAULT_KEY, headers=None):
        """(status, parsed JSON) over the main keep-alive connection.
        key: DEFAULT_KEY = the "main" terminal; None = no Authorization header."""
        with self._lock:
            if self._client is None:
                self._client = Client(self.port, self.key)
            if key is DEFAULT_KEY:
                key = self.key
            return self._client.call(method, path, body, key, headers)

    def last_raw(self):
        return self._client.last_raw if self._client else b""

    def staff_token(self, login, password):
        """POST /v1/admin/login; raises unless 200, returns the session token."""
        status, body = self.call("POST", "/v1/admin/login",
                                 {"login": login, "password": password}, key=None)
        if status != 200 or not isinstance(body, dict):
            raise AssertionError("login of %s -> %s %r" % (login, status, self.last_raw()))
        return body["token"]

    def card(self, number):
        """GET /v1/cards/NUMBER; asserts 200 and returns the card object."""
        status, body = self.call("GET", "/v1/cards/" + number)
        if status != 200 or not isinstance(body, dict):
            raise AssertionError("GET /v1/cards/%s -> %s %r" % (number, status, self.last_raw()))
        return body


def notify_config(directory, smtp_port=None, sms_port=None, sms_rate=None, email_rate=None,
                  webhook_rate=None, timeout=5, retry=None, webhooks=True, name="notify.json"):
    """Writes a `--notify FILE` channels file (docs/notifications.md,
    "Channels") into directory for the loopback fakes (fakes.py): e-mail to
    the SMTP fake on smtp_port, SMS to the gateway fake on sms_port (the
    generic JSON profile; success when "status" is "OK", the provider's id
    in "id"); a channel without a port is left out. Rates are per second (0
    = unlimited, None = the channel's default); retry is a dict of the "retry" object (max_attempts,
    base_seconds, max_seconds). Returns the file's path."""
    doc = {"webhooks": {"enabled": webhooks, "timeout_seconds": timeout}}
    if webhook_rate is not None:
        doc["webhooks"]["rate_per_second"] = webhook_rate
    if smtp_port:
        doc["email"] = {"url": "smtp://127.0.0.1:%d" % smtp_port, "starttls": "off",
                        "from": "Kopilka <noreply@example.com>", "timeout_seconds": timeout}
        if email_rate is not None:
            doc["email"]["rate_per_second"] = email_rate
    if sms_port:
        doc["sms"] = {"profile": "generic", "url": "http://127.0.0.1:%d/send" % sms_port,
                      "success": {"field": "status", "value": "OK"},
                      "provider_id_field": "id", "sender": "Kopilka",
                      "timeout_seconds": timeout}
        if sms_rate is not None:
            doc["sms"]["rate_per_second"] = sms_rate
    if retry:
        doc["retry"] = retry
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    return path
