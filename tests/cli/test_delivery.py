#!/usr/bin/env python3
"""Delivery that loses nothing, at the level of processes, through the CLI
only: `confab run` nodes killed with SIGKILL and restarted with the same
home lose no message that `confab send` accepted, and deliver none twice.

Traffic stays on this host: TCP on 127.0.0.1, beacons to 127.255.255.255
on a discovery port chosen at random for each test."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

CONFAB = sys.argv.pop(1) if len(sys.argv) > 1 else "confab"
SCALE = float(os.environ.get("CONFAB_TEST_SCALE", "1"))


def deadline(seconds):
    return time.monotonic() + seconds * SCALE


class Node:
    """One `confab run` process and its home."""

    def __init__(self, home, port):
        self.home = home
        self.port = port
        self.proc = None
        self.log = open(os.path.join(home + ".log"), "ab")

    def start(self):
        self.proc = subprocess.Popen(
            [CONFAB, "--home", self.home, "run", "--bind", "127.0.0.1",
             "--broadcast", "127.255.255.255", "--discovery-port",
             str(self.port), "--beacon-interval", "200"],
            stdout=self.log, stderr=self.log)
        self.wait_up()

    def wait_up(self):
        end = deadline(15)
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError("confab run exited: %d" %
                                     self.proc.returncode)
            if self.cli("status").returncode == 0:
                return
            time.sleep(0.02)  # polling a process that starts; not a test sleep
        raise AssertionError("the node did not come up")

    def cli(self, *args, timeout=30):
        return subprocess.run([CONFAB, "--home", self.home, *args],
                              capture_output=True, text=True,
                              timeout=timeout * SCALE)

    def json(self, *args):
        p = self.cli("--json", *args)
        if p.returncode != 0:
            raise AssertionError("confab %s: %s" % (args, p.stderr))
        return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]

    def id(self):
        return self.json("id")[0]["id"]

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self):
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10 * SCALE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class DeliveryAcrossCrashes(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="confab-delivery-")
        port = random.randint(20000, 60000)
        self.a = Node(os.path.join(self.dir, "a"), port)
        self.b = Node(os.path.join(self.dir, "b"), port)
        for n in (self.a, self.b):
            p = subprocess.run([CONFAB, "--home", n.home, "init"],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
        self.b_id = self.b.id()

    def tearDown(self):
        for n in (self.a, self.b):
            n.stop()
            n.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def wait_linked(self):
        end = deadline(20)
        while time.monotonic() < end:
            peers = self.a.json("peers")
            if any(p["id"] == self.b_id and p["state"] == "up"
                   for p in peers):
                return
            time.sleep(0.05)
        self.fail("a and b did not link")

    def wait_state(self, node, peer_id, state):
        end = deadline(20)
        while time.monotonic() < end:
            if any(p["id"] == peer_id and p["state"] == state
                   for p in node.json("peers")):
                return
            time.sleep(0.05)
        self.fail("the peer did not become %s" % state)

    def send(self, i):
        p = self.a.cli("send", self.b_id[:16], str(i))
        self.assertEqual(p.returncode, 0, p.stderr)

    def collect(self, want, until):
        """Reads b's inbox until `want` messages came, checking each is the
        next number: exactly once, in order."""
        got = []
        end = deadline(until)
        while len(got) < want and time.monotonic() < end:
            for m in self.b.json("recv"):
                self.assertEqual(m["kind"], "unicast")
                self.assertEqual(int(m["body"]), len(got),
                                 "out of order or twice")
                got.append(m["body"])
            if len(got) < want:
                time.sleep(0.05)
        self.assertEqual(len(got), want)
        # Nothing more turns up later.
        self.assertEqual(self.b.json("recv"), [])

    def test_sender_killed_with_a_thousand_queued(self):
        self.a.start()
        self.b.start()
        self.wait_linked()
        # b goes away; a accepts 1,000 messages for it (each `send`
        # answers once its message is durable), then dies hard.
        self.b.stop()
        self.wait_state(self.a, self.b_id, "down")
        for i in range(1000):
            self.send(i)
        status = self.a.json("status")[0]
        self.assertGreaterEqual(status["counters"].get("msgs_sent", 0), 0)
        self.a.kill9()
        # Both come back: a's outbox was in its store.
        self.a.start()
        self.b.start()
        self.collect(1000, 60)

    def test_receiver_killed_while_receiving(self):
        self.a.start()
        self.b.start()
        self.wait_linked()
        # a sends 1,000; b dies hard part way through receiving them.
        killed = False
        for i in range(1000):
            self.send(i)
            if not killed and i == 400:
                self.b.kill9()
                killed = True
        self.assertTrue(killed)
        self.b.start()
        self.collect(1000, 60)


if __name__ == "__main__":
    unittest.main(verbosity=2)
