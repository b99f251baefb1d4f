"""The four examples of python/examples, run as a user runs them, against
live nodes: the echo service (unicast request and reply), the chat room
(a group), the job queue (anycast to workers) and the presence board
(broadcast, and peer events through a callback). Each process's output is
waited on line by line with a deadline; each is stopped at the end."""
import os
import subprocess
import sys

import pytest

from conftest import EXAMPLES, TOP, Lines, scaled, stop_process, wait_until

ENV = dict(os.environ, PYTHONPATH=os.path.join(TOP, "python"),
           PYTHONUNBUFFERED="1")


class Example:
    """A running example: python3 examples/NAME ARGS."""

    def __init__(self, name, *args, stdin=subprocess.DEVNULL):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(EXAMPLES, name), *args],
            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env=ENV)
        self.out = Lines(self.proc)

    def wait_for(self, text, timeout=15, since=0):
        """The index of the first line from `since` on that has text."""
        return self.out.wait_for(lambda l: text in l, repr(text), timeout,
                                 since)

    def stop(self):
        if self.proc.stdin:
            self.proc.stdin.close()
        stop_process(self.proc)
        self.out.thread.join(scaled(10))


def run_example(name, *args, timeout=60):
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, name),
                           *args], capture_output=True, text=True, env=ENV,
                          timeout=scaled(timeout))


@pytest.fixture
def drained(net):
    """The nodes' inboxes emptied; their connections."""
    nodes = [n.connect() for n in net.nodes[:3]]
    for n in nodes:
        n.recv()
    yield nodes
    for n in nodes:
        n.close()


def test_examples_are_short():
    for name in ("echo.py", "chat.py", "jobs.py", "presence.py"):
        with open(os.path.join(EXAMPLES, name)) as f:
            assert len(f.read().splitlines()) < 40, name


def test_echo(net, drained):
    server = Example("echo.py", "--home", net[1].home, "serve")
    try:
        server.wait_for("echo server bravo is up")
        p = run_example("echo.py", "--home", net[0].home, "ask", "bravo",
                        "hello", "echo")
        assert p.returncode == 0, p.stderr
        assert "bravo echoed 'hello echo' in " in p.stdout
        server.wait_for("echoed 10 bytes to alpha")
        # By id prefix, as the confab command takes it.
        p = run_example("echo.py", "--home", net[2].home, "ask",
                        net[1].id.hex()[:6], "again")
        assert p.returncode == 0, p.stderr
        assert "bravo echoed 'again'" in p.stdout
    finally:
        server.stop()


def test_echo_errors(net, tmp_path, drained):
    p = run_example("echo.py", "--home", str(tmp_path), "serve")
    assert p.returncode == 1
    assert "no node is running with home %s" % tmp_path in p.stderr
    assert "confab run" in p.stderr and "(exit 2)" in p.stderr
    p = run_example("echo.py", "--home", net[0].home, "ask", "nobody", "x")
    assert p.returncode == 1
    assert "no peer is named 'nobody'" in p.stderr and "(exit 3)" in p.stderr


def test_chat(net, drained):
    a, b = drained[0], drained[1]
    bob = Example("chat.py", "--home", net[1].home, "lobby",
                  stdin=subprocess.PIPE)
    alice = None
    try:
        bob.wait_for("bravo joined #lobby")
        wait_until(a, "alpha to see bravo in lobby", lambda: any(
            g.name == "lobby" and net[1].id in g.members
            for g in a.groups()))
        alice = Example("chat.py", "--home", net[0].home, "#lobby",
                        stdin=subprocess.PIPE)
        alice.wait_for("alpha joined #lobby")
        wait_until(b, "bravo to see alpha in lobby", lambda: any(
            g.name == "lobby" and net[0].id in g.members
            for g in b.groups()))
        alice.proc.stdin.write("hello, lobby\n")
        alice.proc.stdin.flush()
        bob.wait_for("<alpha> hello, lobby")
        bob.proc.stdin.write("hi alpha\n")
        bob.proc.stdin.flush()
        alice.wait_for("<bravo> hi alpha")
        # Ctrl-D: it leaves the room and ends.
        alice.proc.stdin.close()
        assert alice.proc.wait(scaled(15)) == 0, alice.out.text()
        wait_until(b, "alpha to leave lobby", lambda: not any(
            g.name == "lobby" and net[0].id in g.members
            for g in b.groups()))
    finally:
        bob.stop()
        if alice is not None:
            alice.stop()


def test_jobs(net, drained):
    a = drained[0]
    workers = [Example("jobs.py", "--home", net[i].home, "work")
               for i in (1, 2)]
    try:
        for w, name in zip(workers, ("bravo", "charlie")):
            w.wait_for("worker %s is waiting for jobs" % name)
        wait_until(a, "two workers in jobs", lambda: any(
            g.name == "jobs" and len(g.members) == 2 for g in a.groups()))
        p = run_example("jobs.py", "--home", net[0].home, "submit", "4")
        assert p.returncode == 0, p.stdout + p.stderr
        for below, count in ((1000, 168), (2000, 303), (3000, 430),
                             (4000, 550)):
            assert "primes below %d: %d (by " % (below, count) in p.stdout
        assert p.stdout.count("went to ") == 4
    finally:
        for w in workers:
            w.stop()
        for n in drained[1:]:
            if "jobs" in n.status().groups:
                n.leave("jobs")


def test_jobs_without_workers(net, drained):
    p = run_example("jobs.py", "--home", net[0].home, "submit", "1")
    assert p.returncode != 0
    assert "no linked peer is a member of group jobs" in p.stderr


def test_presence(net, drained):
    alpha = Example("presence.py", "--home", net[0].home, "--status",
                    "on call")
    bravo = None
    delta = None
    try:
        bravo = Example("presence.py", "--home", net[1].home, "--status",
                        "at lunch")
        # Each learns the other's status: bravo from alpha's broadcast
        # (unread until it starts), alpha from bravo's.
        bravo.wait_for("alpha: on call")
        alpha.wait_for("bravo: at lunch")
        # A newcomer: alpha broadcasts again when it comes up, and drops
        # it from the board when its link goes down.
        d = net.add("delta%d" % len(net.nodes))
        delta = Example("presence.py", "--home", d.home, "--status", "new")
        delta.wait_for("alpha: on call")
        seen = alpha.wait_for("%s: new" % d.name)
        delta.stop()
        d.stop()
        alpha.out.wait_for(
            lambda l: l.startswith("board: ") and d.name not in l,
            "delta dropped from alpha's board", since=seen + 1)
    finally:
        for e in (alpha, bravo, delta):
            if e is not None:
                e.stop()
