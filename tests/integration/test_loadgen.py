"""
test_loadgen.py: keeps bench/loadgen (the benchmark's load generator, built
as the `loadgen` target) from rotting: its fixed-rate mode sends what it is
asked to at the pace asked (`--rate 200` for 2 s is 400 purchases, not
sooner), closed loop still prints the lines bench/run.sh, http_floor.sh and
scale_probe.sh parse, and a bad rate is refused. Against a real `kopilka
serve`; the figures themselves are bench/run.sh's business, not a test's.

    KOPILKA_LOADGEN=build/loadgen python3 test_loadgen.py --kopilka build/kopilka
"""
import os
import re
import subprocess
import time
import unittest

import harness


def loadgen_binary():
    path = os.environ.get("KOPILKA_LOADGEN") or os.path.join(harness.REPO, "build", "loadgen")
    if not os.access(path, os.X_OK):
        raise RuntimeError("loadgen not found at %s (set KOPILKA_LOADGEN)" % path)
    return path


def field(out, name):
    """The number after `name` on the line that starts with it."""
    m = re.search(r"^" + re.escape(name) + r"\s*([0-9.]+)", out, re.M)
    if m is None:
        raise AssertionError("no %r line in:\n%s" % (name, out))
    return float(m.group(1))


class Loadgen(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.k = harness.Kopilka(cards=20)
        cls.k.start()
        cls.cards = os.path.join(cls.k.dir, "loadgen-cards.txt")
        with open(cls.cards, "w") as f:
            f.write("\n".join(cls.k.cards) + "\n")

    @classmethod
    def tearDownClass(cls):
        cls.k.close()

    def run_loadgen(self, *args):
        cmd = [loadgen_binary(), "--port", str(self.k.port), "--key", self.k.key,
               "--cards", self.cards] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

    def test_rate_sends_what_is_due_at_its_pace(self):
        start = time.monotonic()
        r = self.run_loadgen("--rate", "200", "--seconds", "2", "--warmup", "0",
                             "--connections", "4", "--run-id", "rate200")
        elapsed = time.monotonic() - start
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = r.stdout
        # 200 a second for 2 s, the first due at once: exactly 400 due in the
        # window, each answered (the drain waits for the last ones).
        m = re.search(r"^answers in window: (\d+)  \(2xx: (\d+)\)", out, re.M)
        self.assertIsNotNone(m, out)
        self.assertEqual((int(m.group(1)), int(m.group(2))), (400, 400), out)
        self.assertEqual(field(out, "2xx whole run:"), 400, out)
        self.assertEqual(field(out, "purchases/s:"), 200, out)
        self.assertEqual(field(out, "errors:"), 0, out)
        self.assertRegex(out, r"late \(.*\): 0\n")
        # Paced, not as fast as possible: the last one is due at 1.995 s.
        self.assertGreaterEqual(elapsed, 1.99, out)
        self.assertRegex(out, r"latency ms: p50 [0-9.]+  p99 [0-9.]+  p99\.9 [0-9.]+  "
                              r"max [0-9.]+  \(from each purchase's due time\)")
        self.assertLessEqual(field(out, "p50 ms:"), field(out, "p99 ms:"))
        # The generator's own delay is reported apart, and is part of the latency.
        self.assertRegex(out, r"send lag ms: p50 [0-9.]+  p99 [0-9.]+  max [0-9.]+")
        self.assertLessEqual(field(out, "send lag ms: p50"), field(out, "p50 ms:"))

    def test_closed_loop_keeps_the_lines_scripts_parse(self):
        r = self.run_loadgen("--seconds", "1", "--warmup", "0.2", "--connections", "2",
                             "--run-id", "closed")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lines = r.stdout.splitlines()
        names = [line.split(":")[0] for line in lines[-5:]]
        self.assertEqual(names, ["purchases/s", "p50 ms", "p99 ms", "errors",
                                 "loadgen cpu us per answer"], r.stdout)
        self.assertGreater(field(r.stdout, "purchases/s:"), 0)
        self.assertEqual(field(r.stdout, "errors:"), 0, r.stdout)
        self.assertIn("(from each send)", r.stdout)

    def test_a_bad_rate_is_refused(self):
        for bad in ("0", "-5", "abc", "2000000"):
            r = self.run_loadgen("--rate", bad, "--seconds", "1")
            self.assertEqual(r.returncode, 2, bad)
            self.assertIn("--rate must be 0.1..1000000", r.stderr)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
