#!/usr/bin/env python3
"""Delivery that loses nothing, at the level of processes, through the CLI
only: `confab run` nodes killed with SIGKILL and restarted with the same
home lose no message that `confab send` accepted, and deliver none twice.

Traffic stays on this host: TCP on 127.0.0.1, beacons to 127.255.255.255
on a discovery port chosen at random for each test.

No fixed sleeps and no polling: every wait blocks on an event until a
deadline (a line a node writes to its log, a peer event through a node's
control socket, the messages handed over by `recv --follow`)."""
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

CONFAB = sys.argv.pop(1) if len(sys.argv) > 1 else "confab"
SCALE = float(os.environ.get("CONFAB_TEST_SCALE", "1"))



class Node:
    """One `confab run` process and its home."""

    def __init__(self, home, port):
        self.home = home
        self.port = port
        self.proc = None
        self.out = None
        self.log = home + ".log"

    def start(self):
        # Its output goes to the log through a pipe, so that the line that
        # says it is up can be waited for.
        self.out = harness.OutputPipe(self.log)
        try:
            self.proc = subprocess.Popen(
                [CONFAB, "--home", self.home, "run", "--bind", "127.0.0.1",
                 "--broadcast", "127.255.255.255", "--discovery-port",
                 str(self.port), "--beacon-interval", "200"],
                stdout=self.out.wfd, stderr=self.out.wfd)
        finally:
            self.out.spawned()
        self.wait_up()

    def wait_up(self):
        if not self.out.wait_for(RUNNING, 15 * SCALE):
            try:
                code = self.proc.wait(timeout=5 * SCALE)
            except subprocess.TimeoutExpired:
                raise AssertionError("the node did not come up:\n"
                                     + self.out.text()[-3000:])
            raise AssertionError("confab run exited: %d\n%s" % (
                code, self.out.text()[-3000:]))
        # Up means its control socket listens: it answers at once.
        p = self.cli("status")
        if p.returncode != 0:
            raise AssertionError("confab status: %s" % p.stderr)

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
        self.out.join(10 * SCALE)  # before another process shares the log

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
        self.out.join(10 * SCALE)


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
        shutil.rmtree(self.dir, ignore_errors=True)

    def state_is(self, node, peer_id, state):
        return any(p["id"] == peer_id and p["state"] == state
                   for p in node.json("peers"))

    def wait_linked(self):
        with harness.Watch(self.a.home, ("peer",), 20 * SCALE) as w:
            w.until("a and b to link",
                    lambda: self.state_is(self.a, self.b_id, "up"),
                    20 * SCALE)

    def stop_and_wait_down(self, node, peer, peer_id):
        """Stops peer and waits until node has it down. Subscribed before
        the stop, so that its "down" event cannot be missed: `peers` shows
        "connecting" instead of "down" while a re-dial is under way, and
        that comes and goes without an event."""
        with harness.Watch(node.home, ("peer",), 20 * SCALE) as w:
            peer.stop()
            w.until("the peer to become down",
                    lambda: w.last_state(peer_id) == "down" or
                    self.state_is(node, peer_id, "down"), 20 * SCALE)

    def send(self, i):
        p = self.a.cli("send", self.b_id[:16], str(i))
        self.assertEqual(p.returncode, 0, p.stderr)

    def collect(self, want, until):
        """Reads b's inbox until `want` messages came, checking each is the
        next number: exactly once, in order. One `recv --follow --count`
        waits for them in the node, and takes no more than `want`."""
        p = self.b.cli("--json", "recv", "--follow", "--count", str(want),
                       "--timeout", str(until * SCALE), timeout=until + 30)
        self.assertIn(p.returncode, (0, 4), p.stderr)  # 4: fewer in time
        got = []
        for m in (json.loads(l) for l in p.stdout.splitlines() if l.strip()):
            self.assertEqual(m["kind"], "unicast")
            self.assertEqual(int(m["body"]), len(got),
                             "out of order or twice")
            got.append(m["body"])
        self.assertEqual(len(got), want, p.stderr)
        # Nothing more turns up later.
        self.assertEqual(self.b.json("recv"), [])

    def test_sender_killed_with_a_thousand_queued(self):
        self.a.start()
        self.b.start()
        self.wait_linked()
        # b goes away; a accepts 1,000 messages for it (each `send`
        # answers once its message is durable), then dies hard.
        self.stop_and_wait_down(self.a, self.b, self.b_id)
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
