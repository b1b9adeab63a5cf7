#!/usr/bin/env python3
"""
notify_load.py: does the outbox keep up? Drives purchases of registered
customers (each with a phone and an e-mail, so each purchase makes an SMS
and an e-mail) at a fixed rate against `kopilka serve --notify`, with the
loopback fakes (tests/integration/fakes.py, each in a process of its own)
as fast providers, samples GET /metrics twice a second, and prints:

    purchases/s              achieved rate of answered purchases
    messages delivered/s     sent while the load ran, and until drained
    outbox max depth         pending messages + events not yet dispatched
    outbox max age s         oldest pending message or event
    drained after s          from the last purchase to an empty outbox

Run through bench/notify_load.sh (it builds the Release binary). Standard
library only (and Debian's python3-aiosmtpd for the SMTP fake).
"""
import argparse
import http.client
import os
import re
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402

FAKES = os.path.join(HERE, "..", "tests", "integration", "fakes.py")


def start_fake(directory, kind, *extra):
    port_file = os.path.join(directory, kind + ".port")
    proc = subprocess.Popen([sys.executable, FAKES, kind, "--port-file", port_file,
                             "--log", os.path.join(directory, kind + ".log")] + list(extra),
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not os.path.exists(port_file):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the %s fake did not start" % kind)
        time.sleep(0.05)
    with open(port_file) as f:
        return proc, int(f.read())


def metrics(port):
    """The outbox's series from GET /metrics: {name or name{labels}: value}."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
    finally:
        c.close()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(kopilka_outbox_\w+)(\{[^}]*\})? (\S+)$", line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def depth_age(m):
    pending = sum(v for k, v in m.items()
                  if k.startswith("kopilka_outbox_messages{") and 'state="pending"' in k)
    depth = pending + m.get("kopilka_outbox_events_pending", 0)
    age = max(m.get("kopilka_outbox_oldest_pending_message_age_seconds", 0),
              m.get("kopilka_outbox_oldest_pending_event_age_seconds", 0))
    return depth, age


def cpu_seconds(pid):
    """CPU seconds (user + system) of process pid, by thread name:
    {name: seconds}, from /proc (Linux)."""
    out = {}
    hz = os.sysconf("SC_CLK_TCK")
    task = "/proc/%d/task" % pid
    for tid in os.listdir(task):
        try:
            with open(os.path.join(task, tid, "comm")) as f:
                name = f.read().strip()
            with open(os.path.join(task, tid, "stat")) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = out.get(name, 0) + (int(fields[11]) + int(fields[12])) / hz
    return out


def cpu_total(pid):
    return sum(cpu_seconds(pid).values())


def sent(m):
    return sum(v for k, v in m.items() if k.startswith("kopilka_outbox_sent_total"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--kopilka", required=True)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--rate", type=float, default=10000 / 60.0, help="purchases a second")
    ap.add_argument("--customers", type=int, default=500)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--no-notify", action="store_true",
                    help="the same load on a server without --notify (the till path's baseline)")
    a = ap.parse_args()
    harness._binary_from_argv = a.kopilka
    import test_notify  # the program with a notifications section

    k = harness.Kopilka(cards=a.customers)
    procs = []
    try:
        harness.run_cli(["program", "load", k.db, test_notify.program_file(k.dir)])
        # The SMTP fake records envelopes only: parsing each mail would make
        # the fake, not Kopilka, the bottleneck (one core at ~170 mails/s).
        smtp, smtp_port = start_fake(k.dir, "smtp", "--record", "envelope")
        sms, sms_port = start_fake(k.dir, "sms")
        procs += [smtp, sms]
        config = harness.notify_config(k.dir, smtp_port=smtp_port, sms_port=sms_port,
                                       sms_rate=0, email_rate=0)
        # Unlimited rates: the fakes are the fast provider.
        k.start(serve_args=([] if a.no_notify else ["--notify", config]) + ["--access-log", "off"])
        for i, card in enumerate(k.cards):
            s, body = k.call("POST", "/v1/customers",
                             {"card": card, "full_name": "Bench Customer %d" % i,
                              "phone": "+7916%07d" % i, "email": "c%d@example.com" % i,
                              "consent": test_notify.CONSENT})
            if s != 201:
                raise RuntimeError("registration %d: %d %r" % (i, s, body))
        # Let the welcomes go first, so the figures are the purchases'.
        deadline = time.monotonic() + 120
        while not a.no_notify and depth_age(metrics(k.port))[0] > 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        base_sent = sent(metrics(k.port))

        total = int(a.seconds * a.rate)
        lock = threading.Lock()
        state = {"next": 0, "ok": 0, "errors": 0}
        latencies = []  # seconds a purchase took, send to answer
        t0 = time.monotonic() + 0.5

        def till(n):
            c = harness.Client(k.port, k.key)
            while True:
                with lock:
                    i = state["next"]
                    state["next"] += 1
                if i >= total:
                    break
                due = t0 + i / a.rate
                d = due - time.monotonic()
                if d > 0:
                    time.sleep(d)
                card = k.cards[i % len(k.cards)]
                started = time.monotonic()
                s, _ = c.call("POST", "/v1/purchases",
                              {"card": card, "receipt": "NL-%d" % i,
                               "lines": [{"sku": "svc", "category": harness.LABOR,
                                          "amount": 10000 + i % 1000}]})
                took = time.monotonic() - started
                with lock:
                    state["ok" if s == 201 else "errors"] += 1
                    latencies.append(took)
            c.close()

        cpu0 = {"server": cpu_seconds(k.proc.pid), "smtp fake": cpu_total(smtp.pid),
                "sms fake": cpu_total(sms.pid), "load generator": os.times()}
        samples = []
        stop = threading.Event()

        def sampler():
            while not stop.is_set():
                m = metrics(k.port)
                samples.append((time.monotonic(), depth_age(m), sent(m) - base_sent))
                stop.wait(0.5)

        sampler_thread = threading.Thread(target=sampler)
        sampler_thread.start()
        tills = [threading.Thread(target=till, args=(n,)) for n in range(a.threads)]
        for t in tills:
            t.start()
        for t in tills:
            t.join()
        t_end = time.monotonic()
        sent_at_end = sent(metrics(k.port)) - base_sent
        expected = 0 if a.no_notify else 2 * state["ok"]
        drained = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            m = metrics(k.port)
            if depth_age(m)[0] == 0 and sent(m) - base_sent >= expected:
                drained = time.monotonic() - t_end
                break
            time.sleep(0.2)
        stop.set()
        sampler_thread.join()
        t_drained = time.monotonic()
        server_cpu = cpu_seconds(k.proc.pid)
        me = os.times()
        cpu = {"smtp fake": cpu_total(smtp.pid) - cpu0["smtp fake"],
               "sms fake": cpu_total(sms.pid) - cpu0["sms fake"],
               "load generator": (me.user + me.system) - (cpu0["load generator"].user
                                                          + cpu0["load generator"].system)}
        final_sent = sent(metrics(k.port)) - base_sent
        window = t_end - t0
        print("purchases: %d in %.1f s (target %.1f/s), errors %d"
              % (state["ok"], window, a.rate, state["errors"]))
        print("purchases/s: %.1f" % (state["ok"] / window))
        latencies.sort()
        if latencies:
            pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
            print("purchase latency ms: p50 %.2f  p99 %.2f  max %.2f (%s)"
                  % (pick(0.5), pick(0.99), latencies[-1] * 1000,
                     "without --notify" if a.no_notify else "with --notify"))
        print("messages delivered/s (during load): %.1f" % (sent_at_end / window))
        print("messages delivered: %d of %d expected (SMS + e-mail per purchase)"
              % (final_sent, expected))
        print("messages delivered/s (load + drain): %.1f" % (final_sent / (t_drained - t0)))
        print("outbox max depth: %d" % max((s[1][0] for s in samples), default=0))
        print("outbox max age s: %d" % max((s[1][1] for s in samples), default=0))
        print("drained after s: %s" % ("%.1f" % drained if drained is not None else "NOT DRAINED"))
        # Where the time went, from the first purchase to the drain: the
        # server by thread (kp-email, kp-sms: delivery workers; kp-dispatch;
        # the writer), the fakes, this script.
        span = t_drained - t0
        busy = {n: v - cpu0["server"].get(n, 0) for n, v in server_cpu.items()}
        print("cpu s over %.1f s (%d cores): server %.1f (%s); %s"
              % (span, os.cpu_count(), sum(busy.values()),
                 ", ".join("%s %.1f" % (n, v) for n, v in sorted(busy.items(), key=lambda x: -x[1])
                           if v >= 0.1),
                 "; ".join("%s %.1f" % kv for kv in cpu.items())))
        print("load average at the end: %s" % " ".join("%.2f" % x for x in os.getloadavg()))
        return 0 if drained is not None and state["errors"] == 0 else 1
    finally:
        k.close()
        for p in procs:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    sys.exit(main())
