#!/usr/bin/env python3
"""`confab allow` and `confab deny`, driven through the command line: on
the home's file when no node runs (allow, list, deny, the exit codes, a
damaged file that keeps the node from starting, naming the line), and
through a running node, where a deny closes the link at once and the
denied node is refused when it comes back (counted in `confab status`).

Loopback only: links on 127.0.0.1, beacons to 127.255.255.255 on a random
port, a private network key of the test's own. No fixed sleeps: every
wait blocks on a node's events or log until a deadline."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

import harness
from harness import RUNNING

CONFAB = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else "confab"
SCALE = float(os.environ.get("CONFAB_TEST_SCALE", "1"))


def confab(home, *args, timeout=30):
    return subprocess.run([CONFAB, "--home", home, *args],
                          capture_output=True, text=True,
                          timeout=timeout * SCALE)


def node_id(home):
    return json.loads(confab(home, "id", "--json").stdout)["id"]


def start(home, name, port, log):
    out = harness.OutputPipe(log)
    try:
        proc = subprocess.Popen(
            [CONFAB, "--home", home, "run", "--name", name, "--bind",
             "127.0.0.1", "--broadcast", "127.255.255.255",
             "--discovery-port", str(port), "--beacon-interval", "200"],
            stdin=subprocess.DEVNULL, stdout=out.wfd, stderr=out.wfd)
    finally:
        out.spawned()
    return proc, out


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10 * SCALE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def peers_up(home):
    p = confab(home, "peers", "--json")
    if p.returncode != 0:
        return 0
    return sum(1 for l in p.stdout.splitlines()
               if l.strip() and json.loads(l)["state"] == "up")


def stat(home, key):
    p = confab(home, "status", "--json")
    return json.loads(p.stdout)["counters"][key] if p.returncode == 0 else 0


class Allow(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="confab-allow-")
        self.a = os.path.join(self.tmp, "a")
        self.b = os.path.join(self.tmp, "b")
        keyhome = os.path.join(self.tmp, "key")
        for h in (self.a, self.b):
            self.assertEqual(confab(h, "init").returncode, 0)
        self.assertEqual(
            confab(keyhome, "init", "--private-network").returncode, 0)
        for h in (self.a, self.b):
            shutil.copy(os.path.join(keyhome, "network.key"), h)
            os.chmod(os.path.join(h, "network.key"), 0o600)
        self.procs = []

    def tearDown(self):
        for proc, out in self.procs:
            stop(proc)
            out.join(10 * SCALE)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_allow_deny_on_the_file(self):
        bid = node_id(self.b)
        p = confab(self.a, "allow", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), {"list": False, "ids": []})
        p = confab(self.a, "allow", bid)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("allowed " + bid, p.stdout)
        p = confab(self.a, "allow", "--json")
        self.assertEqual(json.loads(p.stdout), {"list": True, "ids": [bid]})
        with open(os.path.join(self.a, "allow")) as f:
            self.assertIn(bid, f.read())
        # Not an id, or an id not listed.
        self.assertEqual(confab(self.a, "allow", bid[:10]).returncode, 1)
        self.assertEqual(confab(self.a, "deny").returncode, 1)
        other = node_id(self.a)
        p = confab(self.a, "deny", other)
        self.assertEqual(p.returncode, 3)
        self.assertIn("not on the allow-list", p.stderr)
        p = confab(self.a, "deny", bid)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("no node may join", p.stderr)
        self.assertIn("empty", confab(self.a, "allow").stdout)

    def test_damaged_file_keeps_the_node_from_starting(self):
        path = os.path.join(self.a, "allow")
        with open(path, "w") as f:
            f.write("# ok\n%s\nnot an id\n" % node_id(self.b))
        os.chmod(path, 0o600)
        p = confab(self.a, "allow")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("line 3", p.stderr)
        p = confab(self.a, "run", "--bind", "127.0.0.1", timeout=20)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("line 3", p.stderr)

    def test_deny_closes_the_link_of_a_running_node(self):
        port = random.randint(20000, 60000)
        bid = node_id(self.b)
        for h, n in ((self.a, "a"), (self.b, "b")):
            proc, out = start(h, n, port, os.path.join(self.tmp, n + ".log"))
            self.procs.append((proc, out))
        for proc, out in self.procs:
            self.assertTrue(out.wait_for(RUNNING, 15 * SCALE), out.text())
        with harness.Watch(self.a, timeout=20 * SCALE) as w:
            w.until("a and b linked", lambda: peers_up(self.a) == 1,
                    20 * SCALE)
            # Allowed: the link stays.
            p = confab(self.a, "allow", bid, "--json")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(json.loads(p.stdout),
                             {"id": bid, "allowed": True})
            self.assertEqual(peers_up(self.a), 1)
            # Denied: closed at once, and refused when it comes back.
            p = confab(self.a, "deny", bid)
            self.assertEqual(p.returncode, 0, p.stderr)
            w.until("b down", lambda: w.last_state(bid) == "down",
                    10 * SCALE)
        with harness.Watch(self.b, timeout=20 * SCALE) as w:
            w.until("b refused by a",
                    lambda: stat(self.a, "handshakes_not_allowed") >= 1,
                    20 * SCALE)
        self.assertEqual(peers_up(self.a), 0)
        with open(os.path.join(self.a, "allow")) as f:
            self.assertNotIn(bid, f.read())


if __name__ == "__main__":
    unittest.main()
