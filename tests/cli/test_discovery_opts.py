#!/usr/bin/env python3
"""`confab run --advertise` and `--interface`, driven through the command
line: values that are not an address peers can dial, or not an interface
name, keep the node from starting with a message that says what to do;
and a node that listens on 127.0.0.3 only, whose beacons come from
127.0.0.1, is dialed at the address it advertises (without the beacon
field, the other would try 127.0.0.1 and be refused).

Loopback only: beacons to 127.255.255.255 on a random port, a private
network key of the test's own. Waits block on a node's log or events until
a deadline, never a fixed sleep."""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

import confab as confab_py
import harness
from harness import RUNNING

CONFAB = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else "confab"
SCALE = float(os.environ.get("CONFAB_TEST_SCALE", "1"))


def confab(home, *args, timeout=30):
    return subprocess.run([CONFAB, "--home", home, *args],
                          capture_output=True, text=True,
                          timeout=timeout * SCALE)


def free_port(host):
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class DiscoveryOptions(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="confab-discopts-")
        self.procs = []
        key = os.path.join(self.tmp, "key")
        p = confab(key, "init", "--private-network")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.homes = []
        for name in ("one", "two"):
            home = os.path.join(self.tmp, name)
            p = confab(home, "init", "--name", name)
            self.assertEqual(p.returncode, 0, p.stderr)
            shutil.copy(os.path.join(key, "network.key"), home)
            os.chmod(os.path.join(home, "network.key"), 0o600)
            self.homes.append(home)

    def tearDown(self):
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10 * SCALE)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, home, *args):
        out = harness.OutputPipe(os.path.join(home, "log"))
        try:
            proc = subprocess.Popen(
                [CONFAB, "--home", home, "run", "--broadcast",
                 "127.255.255.255", "--discovery-port", str(self.dport),
                 "--beacon-interval", "200", *args],
                stdin=subprocess.DEVNULL, stdout=out.wfd, stderr=out.wfd)
        finally:
            out.spawned()
        self.procs.append((proc, out))
        if not out.wait_for(RUNNING, 15 * SCALE):
            self.fail("the node did not come up: %s" % open(
                os.path.join(home, "log")).read())
        return proc

    def test_bad_values_refused_with_advice(self):
        home = self.homes[0]
        for value, says in (("ff02::1", "cannot be dialed"),
                            ("0.0.0.0", "cannot be dialed"),
                            ("fe80::1", "cannot be dialed"),
                            ("[fd00::1", "is not ADDR"),
                            ("127.0.0.9:0", "is not ADDR"),
                            ("host.example", "is not ADDR")):
            p = confab(home, "run", "--no-discovery", "--bind", "127.0.0.1",
                       "--advertise", value)
            self.assertNotEqual(p.returncode, 0, value)
            self.assertIn("advertise address '%s' %s" % (value, says),
                          p.stderr)
        p = confab(home, "run", "--no-discovery", "--bind", "127.0.0.1",
                   "--interface", "x" * 16)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("`ip link` lists them", p.stderr)

    def test_dialed_at_the_advertised_address(self):
        self.advertised(advertiser_dials=False)

    def test_advertised_address_kept_when_it_dials(self):
        self.advertised(advertiser_dials=True)

    def advertised(self, advertiser_dials):
        """A node on 127.0.0.3 only, advertising it, and another: the
        other must know it at 127.0.0.3, whether it dialed there (the
        smaller id dials, PROTOCOL.md 9.2) or was dialed from it (its
        connection comes from 127.0.0.1, not where it accepts links)."""
        self.dport = random.randint(20000, 60000)
        ids = [json.loads(confab(h, "id", "--json").stdout)["id"]
               for h in self.homes]
        small, large = (0, 1) if ids[0] < ids[1] else (1, 0)
        advertiser, other = (small, large) if advertiser_dials else (
            large, small)
        port = free_port("127.0.0.3")
        adv = ("--bind", "127.0.0.3", "--port", str(port), "--advertise",
               "127.0.0.3:%d" % port)
        if advertiser_dials:
            # The other first: it hears the advertiser's first beacon
            # before the advertiser hears of it and dials.
            self.start(self.homes[other], "--bind", "127.0.0.1")
            self.start(self.homes[advertiser], *adv)
        else:
            self.start(self.homes[advertiser], *adv)
            self.start(self.homes[other], "--bind", "127.0.0.1")
        want = "127.0.0.3:%d" % port
        cl = confab_py.Connection(self.homes[other], 10 * SCALE)
        try:
            reply, _ = cl.call({"op": "subscribe", "events": ["peer"]})
            self.assertTrue(reply.get("ok"), reply)
            while True:
                up = [q for q in self.peers(self.homes[other])
                      if q["state"] == "up"]
                if up:
                    break
                cl.next()  # the next peer event, or a timeout error
        finally:
            cl.close()
        self.assertEqual(up[0]["id"], ids[advertiser])
        self.assertEqual(up[0]["address"], want)

    def peers(self, home):
        return [json.loads(l) for l in confab(home, "peers", "--json")
                .stdout.splitlines() if l.strip()]


if __name__ == "__main__":
    unittest.main()
