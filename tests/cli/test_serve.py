#!/usr/bin/env python3
"""`confab serve` and `confab request` between two `confab run` nodes,
through the command line only (docs/PROTOCOL.md section 14): the echo
server of every networking course (`confab serve echo --exec cat`), binary
bodies byte for byte, a body full of shell syntax that is echoed and never
run, a service that hangs, one that fails, one that prints without end,
and the requester in the service's environment.

Traffic stays on this host: TCP on 127.0.0.1, beacons to 127.255.255.255
on a discovery port chosen at random. No fixed sleeps: every wait blocks
on an event (a line of output, a group event) until a deadline."""
import json
import os
import random
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
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

    def start(self):
        self.out = harness.OutputPipe(self.home + ".log")
        try:
            self.proc = subprocess.Popen(
                [CONFAB, "--home", self.home, "run", "--bind", "127.0.0.1",
                 "--broadcast", "127.255.255.255", "--discovery-port",
                 str(self.port), "--beacon-interval", "200"],
                stdout=self.out.wfd, stderr=self.out.wfd)
        finally:
            self.out.spawned()
        if not self.out.wait_for(RUNNING, 15 * SCALE):
            raise AssertionError("the node did not come up:\n"
                                 + self.out.text()[-3000:])

    def run(self, *args, data=None, timeout=60):
        return subprocess.run([CONFAB, "--home", self.home, *args],
                              input=data, capture_output=True,
                              timeout=timeout * SCALE)

    def id(self):
        p = self.run("--json", "id")
        return json.loads(p.stdout)["id"]

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


class Serve(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="confab-serve-")
        port = random.randint(20000, 60000)
        cls.a = Node(os.path.join(cls.dir, "a"), port)
        cls.b = Node(os.path.join(cls.dir, "b"), port)
        cls.servers = []
        for n in (cls.a, cls.b):
            p = subprocess.run([CONFAB, "--home", n.home, "init"],
                               capture_output=True, text=True)
            assert p.returncode == 0, p.stderr
        cls.a.start()
        cls.b.start()
        cls.a_id = cls.a.id()
        cls.b_id = cls.b.id()
        cls.watch = harness.Watch(cls.a.home, ("peer", "group"),
                                  timeout=20 * SCALE)
        cls.serve("echo", "cat")
        cls.serve("slow", "sleep 60", "--timeout", "1")
        cls.serve("fail", "echo oops >&2; exit 3")
        cls.serve("flood", "yes")
        cls.serve("env", 'printf "%s|%s|%s" "$CONFAB_FROM" '
                         '"$CONFAB_FROM_ID" "$CONFAB_SERVICE"')
        # One run at a time: a second one at once would find the lock.
        cls.lock = os.path.join(cls.dir, "lock")
        cls.serve("one", "mkdir %s || exit 7; sleep 0.3; rmdir %s; cat"
                  % (cls.lock, cls.lock), "--jobs", "1")
        # A run that leaves a child behind: the timeout kills it too.
        cls.pidfile = os.path.join(cls.dir, "grandchild.pid")
        cls.serve("grand", "sleep 60 & echo $! > %s; wait" % cls.pidfile,
                  "--timeout", "1")
        # A knows every service of B once B's JOINs reached it.
        names = {"echo", "slow", "fail", "flood", "env", "one", "grand"}
        cls.watch.until(
            "B's services at A",
            lambda: names <= {e["group"] for e in cls.watch.seen
                              if e.get("ev") == "join"
                              and e["id"].hex() == cls.b_id}
            or cls.groups_at_a() >= names,
            30 * SCALE)

    @classmethod
    def groups_at_a(cls):
        p = cls.a.run("--json", "groups")
        got = set()
        for line in p.stdout.decode().splitlines():
            g = json.loads(line)
            if cls.b_id in [m if isinstance(m, str) else m.get("id")
                            for m in g.get("members", [])]:
                got.add(g["group"])
        return got

    @classmethod
    def serve(cls, name, command, *extra):
        out = harness.OutputPipe(os.path.join(cls.dir, "serve-" + name))
        try:
            proc = subprocess.Popen(
                [CONFAB, "--home", cls.b.home, "serve", name, "--exec",
                 command, *extra], stdout=out.wfd, stderr=out.wfd)
        finally:
            out.spawned()
        cls.servers.append((proc, out))
        assert out.wait_for("serving " + name, 10 * SCALE), out.text()

    @classmethod
    def tearDownClass(cls):
        bad = []
        for proc, out in cls.servers:
            proc.terminate()
            proc.wait(timeout=10 * SCALE)
            out.join(5 * SCALE)
            # Stopped by SIGTERM: exit 0, and clean under the sanitizers.
            if proc.returncode != 0 or "Sanitizer" in out.text():
                bad.append("serve exited %d:\n%s" % (proc.returncode,
                                                     out.text()[-3000:]))
        cls.watch.close()
        for n in (cls.a, cls.b):
            n.stop()
            if "Sanitizer" in n.out.text() or "runtime error" in n.out.text():
                bad.append("a node:\n" + n.out.text()[-3000:])
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert not bad, "\n".join(bad)

    def test_echo_text(self):
        p = self.a.run("request", "echo", "hello,", "world")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, b"hello, world")

    def test_echo_binary_file(self):
        body = bytes(range(256)) * 512 + os.urandom(70000)
        path = os.path.join(self.dir, "body.bin")
        with open(path, "wb") as f:
            f.write(body)
        p = self.a.run("request", "echo", "--file", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, body)
        # From standard input as well, to a peer named by id.
        p = self.a.run("request", "echo", "--file", "-", "--peer",
                       self.b_id[:12], data=body[:1000])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, body[:1000])

    def test_shell_syntax_is_echoed_not_run(self):
        canary_dir = os.path.join(self.dir, "canary-dir")
        canary_file = os.path.join(self.dir, "canary-file")
        os.mkdir(canary_dir)
        body = ("$(rm -rf %s) `touch %s` \"$(touch %s)\" '; touch %s; ' "
                "$HOME && touch %s || true\n" % (
                    canary_dir, canary_file, canary_file, canary_file,
                    canary_file)).encode()
        p = self.a.run("request", "echo", "--file", "-", data=body)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, body)
        # As words of TEXT too.
        p = self.a.run("request", "echo", "--", "$(touch %s)" % canary_file,
                       "'\"")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout,
                         ("$(touch %s) '\"" % canary_file).encode())
        self.assertTrue(os.path.isdir(canary_dir))
        self.assertFalse(os.path.exists(canary_file))

    def test_timeout(self):
        t0 = time.monotonic()
        p = self.a.run("request", "slow", "x", "--timeout", "20")
        self.assertEqual(p.returncode, 6, p.stderr)
        self.assertIn(b"ran over its time", p.stderr)
        self.assertLess(time.monotonic() - t0, 15 * SCALE)
        # The requester's own deadline: nothing in time is exit 4.
        p = self.a.run("request", "slow", "x", "--timeout", "0.3")
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertIn(b"no server of slow answered", p.stderr)

    def test_failure_reported(self):
        p = self.a.run("request", "fail", "x")
        self.assertEqual(p.returncode, 6, p.stderr)
        self.assertIn(b"exited with status 3", p.stderr)
        self.assertIn(b"oops", p.stderr)
        p = self.a.run("--json", "request", "fail", "x")
        self.assertEqual(p.returncode, 6)
        o = json.loads(p.stdout)
        self.assertEqual(o["status"], "error")
        self.assertIn("status 3", o["body"])

    def test_endless_output_cut(self):
        p = self.a.run("request", "flood", "x", "--timeout", "30")
        self.assertEqual(p.returncode, 6, p.stderr)
        self.assertIn(b"wrote more than", p.stderr)
        self.assertEqual(p.stdout, b"")

    def test_requester_in_environment(self):
        p = self.a.run("request", "env", "x")
        self.assertEqual(p.returncode, 0, p.stderr)
        name, rid, svc = p.stdout.decode().split("|")
        self.assertEqual(rid, self.a_id)
        self.assertEqual(svc, "env")
        self.assertTrue(name)

    def test_all_and_json(self):
        p = self.a.run("--json", "request", "echo", "--all", "hi")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = [json.loads(l) for l in p.stdout.decode().splitlines()]
        self.assertEqual(len(lines), 1)
        self.assertEqual(lines[0]["body"], "hi")
        self.assertEqual(lines[0]["from"], self.b_id)
        self.assertEqual(lines[0]["status"], "ok")

    def test_jobs_bound(self):
        procs = [subprocess.Popen(
            [CONFAB, "--home", self.a.home, "request", "one", "run%d" % i],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for i in range(3)]
        for i, p in enumerate(procs):
            out, err = p.communicate(timeout=30 * SCALE)
            self.assertEqual(p.returncode, 0, err)
            self.assertEqual(out, b"run%d" % i)

    def test_timeout_kills_process_group(self):
        p = self.a.run("request", "grand", "x")
        self.assertEqual(p.returncode, 6, p.stderr)
        self.assertIn(b"ran over its time", p.stderr)
        with open(self.pidfile) as f:
            pid = int(f.read())
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return  # gone already
        try:
            # Readable once it has exited (a zombie included).
            ready, _, _ = select.select([fd], [], [], 10 * SCALE)
            self.assertTrue(ready, "the grandchild still lives")
        finally:
            os.close(fd)

    def test_no_server(self):
        p = self.a.run("request", "nobody-serves-this", "x")
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn(b"confab serve nobody-serves-this", p.stderr)

    def test_usage(self):
        p = self.a.run("serve", "x")
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"--exec", p.stderr)
        for cmd in ("serve", "request"):
            p = self.a.run(cmd, "--help")
            self.assertEqual(p.returncode, 0)
            self.assertIn(b"Exit status", p.stdout)
            # Every option of --help is in the man page.
            man = open(os.path.join(os.path.dirname(__file__), "..", "..",
                                    "docs", "confab.1")).read()
            for opt in set(re.findall(rb"--[a-z]+", p.stdout)):
                self.assertIn(opt.decode().replace("-", "\\-"), man)


if __name__ == "__main__":
    unittest.main()
