#!/usr/bin/env python3
"""fakes.py: the providers Kopilka's notifications talk to, on loopback, for
tests: an SMTP server (aiosmtpd, Debian's python3-aiosmtpd), an SMS HTTP
gateway that can fail, time out and rate-limit, and a webhook receiver that
verifies Standard Webhooks signatures with its own code, as a company's
receiver would.

As a program (one fake per process, until SIGTERM):
    python3 fakes.py smtp|sms|webhook --port-file F --log FILE
        [--mode ok|fail|timeout|ratelimit|permanent|gone|flaky N]
        [--count K] [--retry-after N] [--delay S] [--secret whsec_...]
        [--record full|envelope]
  F receives the port once the fake listens; FILE one JSON line per
  message or request received.

As a module: SmtpFake(), SmsFake(mode=...), WebhookFake(secret) with
start() (returns the port), stop(), received() and, for the HTTP fakes,
set_mode(). The HTTP fakes also take POST /_control {"mode": ..., "count":
..., "retry_after": ..., "delay": ...} and GET /_received at run time.

Nothing is deduplicated: every request is recorded with the id it carried,
so a test can count duplicates.
"""
import argparse
import base64
import email
import email.policy
import hashlib
import hmac
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("ok", "fail", "timeout", "ratelimit", "permanent", "gone", "flaky")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Recorder:
    """A thread-safe list of received things, optionally appended to a log."""

    def __init__(self, log=None):
        self._lock = threading.Lock()
        self._items = []
        self._log = log

    def add(self, item):
        with self._lock:
            self._items.append(item)
            if self._log:
                with open(self._log, "a", encoding="utf-8") as f:
                    f.write(json.dumps(item, ensure_ascii=False) + "\n")

    def items(self):
        with self._lock:
            return list(self._items)


# ------------------------------------------------------------------ SMTP

class SmtpFake:
    """An SMTP server. RCPT of an address starting with "reject" gets 550,
    "defer" gets 451; everything else is accepted and recorded with its
    envelope and the parsed message. With parse=False only the envelope,
    the Message-ID and the size are recorded: parsing every mail with the
    email package costs ~5 ms of CPU, so a load test (bench/notify_load.py)
    would measure the fake instead of the sender."""

    def __init__(self, log=None, parse=True):
        self.recorder = _Recorder(log)
        self.full = parse
        self.controller = None
        self.port = None

    def start(self):
        from aiosmtpd.controller import Controller  # python3-aiosmtpd

        fake = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if address.startswith("reject"):
                    return "550 5.1.1 no such user"
                if address.startswith("defer"):
                    return "451 4.3.0 try again later"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                raw = envelope.original_content or envelope.content
                if fake.full:
                    fake.recorder.add(fake.parse(envelope.mail_from, envelope.rcpt_tos, raw))
                else:
                    fake.recorder.add(fake.envelope(envelope.mail_from, envelope.rcpt_tos, raw))
                return "250 OK queued"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self.port

    @staticmethod
    def parse(mail_from, rcpt_tos, raw):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        types = [part.get_content_type() for part in msg.walk()]
        return {
            "mail_from": mail_from,
            "rcpt_tos": list(rcpt_tos),
            "subject": str(msg["subject"] or ""),
            "raw_subject": str(email.message_from_bytes(raw).get("subject", "")),
            "headers": {k.lower(): str(v) for k, v in msg.items()},
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
            "types": types,
        }

    @staticmethod
    def envelope(mail_from, rcpt_tos, raw):
        head = raw.split(b"\r\n\r\n", 1)[0]
        message_id = None
        for line in head.split(b"\r\n"):
            if line[:11].lower() == b"message-id:":
                message_id = line[11:].strip().decode("ascii", "replace")
        return {"mail_from": mail_from, "rcpt_tos": list(rcpt_tos),
                "headers": {"message-id": message_id}, "size": len(raw)}

    def stop(self):
        if self.controller:
            self.controller.stop()
            self.controller = None

    def received(self):
        return self.recorder.items()


# ------------------------------------------------------------ HTTP fakes

class _HttpFake:
    """An HTTP server on loopback whose answers follow a mode."""

    def __init__(self, mode="ok", count=1, retry_after=2, delay=5.0, log=None):
        self.recorder = _Recorder(log)
        self._lock = threading.Lock()
        self.set_mode(mode, count, retry_after, delay)
        self.server = None
        self.port = None

    def set_mode(self, mode, count=1, retry_after=2, delay=5.0):
        """ok: 200; fail: 500; timeout: answer after `delay` seconds;
        ratelimit: 429 + Retry-After for the first `count` requests, then ok;
        permanent: 400; gone: 410; flaky: 500 for the first `count`, then ok."""
        if mode not in MODES:
            raise ValueError("mode must be one of " + ", ".join(MODES))
        with self._lock:
            self.mode, self.count, self.retry_after, self.delay = mode, count, retry_after, delay
            self.seen_in_mode = 0

    def _status(self):
        with self._lock:
            self.seen_in_mode += 1
            n, mode = self.seen_in_mode, self.mode
            if mode == "ok":
                return 200, {}
            if mode == "fail":
                return 500, {}
            if mode == "permanent":
                return 400, {}
            if mode == "gone":
                return 410, {}
            if mode == "timeout":
                return "sleep", {}
            if mode == "ratelimit":
                if n <= self.count:
                    return 429, {"Retry-After": str(self.retry_after)}
                return 200, {}
            if mode == "flaky":
                return (500, {}) if n <= self.count else (200, {})
        return 500, {}

    def handle(self, request):  # overridden: returns (record, ok_body)
        raise NotImplementedError

    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self, status, body=b"", headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/_received":
                    return self._answer(200, json.dumps(fake.received()).encode())
                self._serve(b"")

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path == "/_control":
                    c = json.loads(body)
                    try:
                        fake.set_mode(c.get("mode", "ok"), c.get("count", 1),
                                      c.get("retry_after", 2), c.get("delay", 5.0))
                    except ValueError as e:
                        return self._answer(400, json.dumps({"error": str(e)}).encode())
                    return self._answer(200, b"{}")
                self._serve(body)

            def _serve(self, body):
                request = {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode("utf-8", "replace"),
                    "at": time.time(),
                }
                status, extra = fake._status()
                record, ok_body = fake.handle(request)
                record["answered"] = status
                fake.recorder.add(record)
                if status == "sleep":
                    time.sleep(fake.delay)
                    status = 200
                if isinstance(record.get("refuse"), int) and status == 200:
                    status = record["refuse"]
                self._answer(status, ok_body if status == 200 else b'{"status":"ERROR"}', extra)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.port

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def received(self):
        return self.recorder.items()


class SmsFake(_HttpFake):
    """An SMS gateway: records the request (query, form or JSON fields) and
    answers {"status": "OK", "id": "gw-<n>"} when its mode lets it."""

    def handle(self, request):
        parsed = urllib.parse.urlsplit(request["path"])
        request["query"] = dict(urllib.parse.parse_qsl(parsed.query))
        ctype = request["headers"].get("content-type", "")
        request["fields"] = {}
        if "json" in ctype:
            try:
                request["fields"] = json.loads(request["body"])
            except ValueError:
                request["fields"] = None
        elif request["body"]:
            request["fields"] = dict(urllib.parse.parse_qsl(request["body"]))
        fields = request["fields"] or {}
        request["id"] = fields.get("id") or request["query"].get("id")
        n = len(self.recorder.items()) + 1
        return request, json.dumps({"status": "OK", "id": "gw-%d" % n}).encode()


def verify_standard_webhook(secret, headers, body, now=None, tolerance=300):
    """The receiver's check, per the Standard Webhooks spec: the three
    headers present, the timestamp within `tolerance` seconds of now, and
    one of the space-separated "v1,<base64>" signatures equal (in constant
    time) to HMAC-SHA256(base64-decoded secret after "whsec_",
    "<id>.<timestamp>.<raw body>"). Returns (ok, reason)."""
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sigs = headers.get("webhook-signature")
    if not msg_id or not ts or not sigs:
        return False, "missing header"
    try:
        ts_int = int(ts)
    except ValueError:
        return False, "bad timestamp"
    now = time.time() if now is None else now
    if abs(now - ts_int) > tolerance:
        return False, "timestamp out of tolerance"
    if not secret.startswith("whsec_"):
        return False, "bad secret"
    key = base64.b64decode(secret[len("whsec_"):])
    signed = msg_id.encode() + b"." + ts.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for sig in sigs.split(" "):
        version, _, value = sig.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True, "ok"
    return False, "no matching signature"


class WebhookFake(_HttpFake):
    """A company's webhook receiver: verifies each delivery's signature
    (answering 401 to a bad one, whatever the mode) and records it with
    valid true/false."""

    def __init__(self, secret, tolerance=300, **kw):
        super().__init__(**kw)
        self.secret = secret
        self.tolerance = tolerance

    def handle(self, request):
        ok, reason = verify_standard_webhook(self.secret, request["headers"],
                                             request["body"].encode("utf-8"),
                                             tolerance=self.tolerance)
        request["valid"] = ok
        request["reason"] = reason
        request["id"] = request["headers"].get("webhook-id")
        if not ok:
            request["refuse"] = 401
        return request, b"{}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kind", choices=("smtp", "sms", "webhook"))
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--mode", default="ok", choices=MODES)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--retry-after", type=int, default=2)
    ap.add_argument("--delay", type=float, default=5.0)
    ap.add_argument("--secret", default="")
    ap.add_argument("--record", default="full", choices=("full", "envelope"),
                    help="smtp: record each parsed mail, or only its envelope and "
                         "Message-ID (for load)")
    ap.add_argument("n", nargs="?", type=int, help="with --mode flaky: how many fail")
    a = ap.parse_args()
    count = a.n if (a.mode == "flaky" and a.n is not None) else a.count
    if a.kind == "smtp":
        fake = SmtpFake(log=a.log, parse=a.record == "full")
    elif a.kind == "sms":
        fake = SmsFake(mode=a.mode, count=count, retry_after=a.retry_after, delay=a.delay,
                       log=a.log)
    else:
        if not a.secret:
            ap.error("webhook needs --secret whsec_...")
        fake = WebhookFake(a.secret, mode=a.mode, count=count, retry_after=a.retry_after,
                           delay=a.delay, log=a.log)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    port = fake.start()
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, a.port_file)
    stop.wait()
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
