"""What the tests of the confab Python package share: live `confab run`
nodes, started by the test on loopback only (links on 127.0.0.1, beacons
to 127.255.255.255 on a random discovery port, a private network key of
the test's own, so that two runs on one host never meet), and waits that
block on an event (a peer or group event, a line a process prints) until
a deadline, never a fixed sleep.

The confab program is $CONFAB (tests/python/meson.build sets it); the
package is imported from python/ in this source tree."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "python"))
sys.path.insert(0, os.path.join(TOP, "tests", "cli"))

import confab  # noqa: E402
import harness  # noqa: E402

CONFAB = os.environ.get("CONFAB", "confab")
# Sanitizer builds run slower; every deadline scales with this.
SCALE = float(os.environ.get("CONFAB_TEST_SCALE", "1"))
EXAMPLES = os.path.join(TOP, "python", "examples")


def scaled(seconds):
    return seconds * SCALE


def run_confab(home, *args, timeout=30):
    p = subprocess.run([CONFAB, "--home", home, *args], capture_output=True,
                       text=True, timeout=scaled(timeout))
    if p.returncode != 0:
        raise AssertionError("confab %s: exit %d\n%s" % (
            " ".join(args), p.returncode, p.stderr))
    return p


def stop_process(proc, timeout=10):
    """SIGTERM, then SIGKILL after a deadline; always reaps."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class LiveNode:
    """One `confab run` process and its home."""

    def __init__(self, home, name, port):
        self.home, self.name, self.port = home, name, port
        self.proc = None
        self.out = None
        self.frozen = False  # stopped with SIGSTOP by a test
        self.log = home + ".log"
        self.id = bytes.fromhex(
            json.loads(run_confab(home, "id", "--json").stdout)["id"])

    def start(self):
        self.out = harness.OutputPipe(self.log)
        try:
            self.proc = subprocess.Popen(
                [CONFAB, "--home", self.home, "run", "--name", self.name,
                 "--bind", "127.0.0.1", "--broadcast", "127.255.255.255",
                 "--discovery-port", str(self.port),
                 "--beacon-interval", "200"],
                stdin=subprocess.DEVNULL, stdout=self.out.wfd,
                stderr=self.out.wfd)
        finally:
            self.out.spawned()
        if not self.out.wait_for(harness.RUNNING, scaled(15)):
            raise AssertionError("%s did not come up (exit %r):\n%s" % (
                self.name, self.proc.poll(), self.out.text()[-3000:]))

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc)
            self.out.join(scaled(10))

    def connect(self, **kw):
        return confab.connect(self.home, **kw)


class Net:
    """Live nodes on one private network of their own, linked in a full
    mesh before the tests begin."""

    def __init__(self, names):
        self.tmp = tempfile.mkdtemp(prefix="confab-py-")
        self.port = random.randint(20000, 60000)
        self.nodes = []
        keyhome = os.path.join(self.tmp, "key")
        run_confab(keyhome, "init", "--private-network")
        self.key = os.path.join(keyhome, "network.key")
        for n in names:
            self.nodes.append(self.make(n))

    def make(self, name):
        """A node of this network, not started."""
        home = os.path.join(self.tmp, name)
        run_confab(home, "init", "--name", name)
        shutil.copy(self.key, home)
        os.chmod(os.path.join(home, "network.key"), 0o600)
        return LiveNode(home, name, self.port)

    def add(self, name):
        """Starts one more node and waits until it and the running ones
        are linked; stop() stops it with the others."""
        node = self.make(name)
        running = [m for m in self.nodes if m.proc and m.proc.poll() is None
                   and not m.frozen]
        self.nodes.append(node)
        node.start()
        self.wait_peers_up(node, running)
        for m in running:
            self.wait_peers_up(m, [node])
        return node

    def start(self):
        for n in self.nodes:
            n.start()
        for n in self.nodes:
            self.wait_peers_up(n, [m for m in self.nodes if m is not n])

    def wait_peers_up(self, node, others, timeout=20):
        want = {m.id for m in others}
        with node.connect() as c:
            wait_until(c, "%s to see %d peers up" % (node.name, len(want)),
                       lambda: want <= {p.id for p in c.peers() if p.up},
                       timeout)

    def stop(self):
        bad = []
        for n in self.nodes:
            if n.proc is None:
                continue
            n.stop()
            with open(n.log, errors="replace") as f:
                log = f.read()
            if (n.proc.returncode not in (0, -signal.SIGKILL)
                    or "Sanitizer" in log or "runtime error:" in log):
                bad.append("%s exited %d:\n%s" % (n.name, n.proc.returncode,
                                                  log[-3000:]))
        shutil.rmtree(self.tmp, ignore_errors=True)
        if bad:
            raise AssertionError("\n".join(bad))

    def __getitem__(self, i):
        return self.nodes[i]


def wait_until(node, what, fn, timeout=10):
    """Checks fn, and again after each peer or group event of node (a
    confab.Node), until it returns something true; fails at the deadline.
    Subscribes first, so that no change after the first check is
    missed."""
    deadline = time.monotonic() + scaled(timeout)
    with node.events() as evs:
        while True:
            last = fn()
            if last:
                return last
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for %s (last: %r)"
                                     % (what, last))
            evs.get(left)


@pytest.fixture(scope="module")
def net():
    n = Net(("alpha", "bravo", "charlie"))
    try:
        n.start()
        yield n
    finally:
        n.stop()


class Lines:
    """A process's stdout, line by line, read by a thread, so a test can
    wait for a line with a deadline."""

    def __init__(self, proc):
        self.proc = proc
        self.cond = threading.Condition()
        self.lines = []
        self.eof = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_for(self, pred, what, timeout=15, since=0):
        """The index of the first line from line `since` on for which
        pred holds; fails at the deadline or at the end of the output."""
        def hit():
            return next((i for i in range(since, len(self.lines))
                         if pred(self.lines[i])), None)
        with self.cond:
            ok = self.cond.wait_for(lambda: hit() is not None or self.eof,
                                    scaled(timeout))
            i = hit()
            if i is None:
                raise AssertionError("timed out waiting for %s (%s); "
                                     "printed so far:\n%s" % (
                                         what, "ended" if ok else "deadline",
                                         "\n".join(self.lines)))
            return i

    def text(self):
        with self.cond:
            return "\n".join(self.lines)
