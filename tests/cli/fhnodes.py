"""Nodes for the first-hour tests (tests/cli/test_firsthour.py and
test_chat_tmux.py): `confab run` processes on loopback, a private network
key of the test's own, beacons to 127.255.255.255 on a random port. No
fixed sleeps: every wait blocks on a log line or a node event."""
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile

import harness
from harness import RUNNING

SCALE = float(os.environ.get("CONFAB_TEST_SCALE", "1"))


class Net:
    """A temporary directory of homes sharing one private network key and
    one random discovery port."""

    def __init__(self, confab_exe, prefix="confab-fh-"):
        self.exe = confab_exe
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.port = random.randint(20000, 60000)
        keyhome = os.path.join(self.tmp, "key")
        p = self.confab(keyhome, "init", "--private-network")
        assert p.returncode == 0, p.stderr
        self.key = os.path.join(keyhome, "network.key")
        self.nodes = []

    def confab(self, home, *args, timeout=30, **kw):
        return subprocess.run([self.exe, "--home", home, *args],
                              capture_output=True, text=True,
                              timeout=timeout * SCALE, **kw)

    def home(self, name, key=True):
        h = os.path.join(self.tmp, name)
        p = self.confab(h, "init", "--name", name)
        assert p.returncode == 0, p.stderr
        if key:
            shutil.copy(self.key, os.path.join(h, "network.key"))
            os.chmod(os.path.join(h, "network.key"), 0o600)
        return h

    def node(self, name, *extra, key=True, discovery=True, env=None):
        n = Node(self, self.home(name, key), name, extra, discovery, env)
        self.nodes.append(n)
        return n

    def close(self):
        for n in self.nodes:
            n.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Node:
    def __init__(self, net, home, name, extra, discovery, env):
        self.net, self.home, self.name = net, home, name
        self.extra, self.discovery, self.env = list(extra), discovery, env
        self.proc = None
        self.out = None
        self.id = json.loads(self.run("id", "--json").stdout)["id"]

    def argv(self):
        a = [self.net.exe, "--home", self.home, "run", "--bind", "127.0.0.1"]
        if self.discovery:
            a += ["--broadcast", "127.255.255.255", "--discovery-port",
                  str(self.net.port), "--beacon-interval", "200"]
        else:
            a += ["--no-discovery"]
        return a + self.extra

    def start(self, wait=True):
        self.out = harness.OutputPipe(
            os.path.join(self.net.tmp, self.name + ".log"))
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        env.pop("NOTIFY_SOCKET", None)
        if self.env:
            env.update(self.env)
        if env.get("JOURNAL_STREAM") == "auto":
            # As journald does: the stream stderr is, as DEVICE:INODE.
            st = os.fstat(self.out.wfd)
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        try:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                         stdout=self.out.wfd,
                                         stderr=self.out.wfd, env=env)
        finally:
            self.out.spawned()
        if wait and not self.out.wait_for(RUNNING, 15 * SCALE):
            raise AssertionError("%s did not come up (exit %r):\n%s" % (
                self.name, self.proc.poll(), self.out.text()[-3000:]))
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10 * SCALE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.out is not None:
            self.out.join(10 * SCALE)

    def run(self, *args, **kw):
        return self.net.confab(self.home, *args, **kw)

    def json(self, *args):
        p = self.run(*args, "--json")
        assert p.returncode == 0, "confab %s: exit %d\n%s" % (
            " ".join(args), p.returncode, p.stderr)
        return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]

    def watch(self):
        return harness.Watch(self.home, timeout=20 * SCALE)

    def wait_state(self, watch, other, state, timeout=20):
        watch.until("%s sees %s %s" % (self.name, other.name, state),
                    lambda: watch.last_state(other.id) == state or
                    any(p["id"] == other.id and p["state"] == state
                        for p in self.json("peers")),
                    timeout * SCALE)
