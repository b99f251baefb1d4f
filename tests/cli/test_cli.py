#!/usr/bin/env python3
"""The confab command against three running nodes, driven only through
the command line, as a person or a script would: peers, send and recv
(--json, unicode text, a binary file), send --wait, broadcast, groups
(join, shout, anycast), ping, status, recv --follow, chat through a pipe,
the exit codes, and that another user cannot use the control socket.

Everything stays on loopback: links on 127.0.0.1, beacons to
127.255.255.255 on a random discovery port, and a private network key of
the test's own, so that two runs on one host never meet. No fixed sleeps
and no polling: every wait blocks on an event until a deadline (a peer or
group event of a node, through its control socket; a message handed over
by `recv --follow`; a line a node writes to its log)."""
import base64
import json
import os
import pwd
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import harness
from harness import RUNNING
from confab import Connection  # after harness: it puts python/ on the path

CONFAB = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else "confab"
# Sanitizer builds run slower; every deadline scales with this.
SCALE = float(os.environ.get("CONFAB_TEST_SCALE", "1"))
NAMES = ("alpha", "bravo", "charlie")


def confab(home, *args, timeout=30, input=None, **kw):
    return subprocess.run([CONFAB, "--home", home, *args],
                          capture_output=True, text=True, input=input,
                          timeout=timeout * SCALE, **kw)


# What `confab run` writes to stderr once it is up (cli/run.c): its control
# socket is listening by then.


def wait_state(node, what, fn, timeout=10):
    """Waits until fn (a check of peers or groups) holds: subscribes to
    node's peer and group events first, then checks fn again each time one
    comes (a change of peers or groups comes with one)."""
    with harness.Watch(node.home, timeout=timeout * SCALE) as w:
        return w.until(what, fn, timeout * SCALE)


def json_lines(text):
    return [json.loads(l) for l in text.splitlines() if l.strip()]


def stop(proc, timeout=10):
    """SIGTERM, then SIGKILL after a deadline; always reaps, and closes
    the pipes."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout * SCALE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for f in (proc.stdin, proc.stdout, proc.stderr):
        if f is not None and not f.closed:
            try:
                f.close()
            except OSError:
                pass


class Node:
    def __init__(self, home, name):
        self.home, self.name = home, name
        self.proc = None
        self.err = None
        self.log = os.path.join(os.path.dirname(home), name + ".log")
        ident = json.loads(confab(home, "id", "--json").stdout)
        self.id = ident["id"]

    def start(self, *extra):
        """Starts `confab run`; its output goes to the log file through a
        pipe (harness.OutputPipe). wait_up waits for it to be up."""
        self.err = harness.OutputPipe(self.log)
        try:
            self.proc = subprocess.Popen(
                [CONFAB, "--home", self.home, "run", "--name", self.name,
                 "--bind", "127.0.0.1", *extra],
                stdin=subprocess.DEVNULL, stdout=self.err.wfd,
                stderr=self.err.wfd)
        finally:
            self.err.spawned()

    def wait_up(self, timeout=15):
        if not self.err.wait_for(RUNNING, timeout * SCALE):
            raise AssertionError("%s did not come up (exit %r):\n%s" % (
                self.name, self.proc.poll(), self.err.text()[-3000:]))

    def stop(self):
        stop(self.proc)
        self.err.join(10 * SCALE)  # all it wrote is in the log

    def run(self, *args, **kw):
        return confab(self.home, *args, **kw)

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def ok(self, *args, **kw):
        p = self.run(*args, **kw)
        if p.returncode != 0:
            raise AssertionError("confab %s on %s: exit %d\n%s" % (
                " ".join(args), self.name, p.returncode, p.stderr))
        return p

    def json(self, *args, **kw):
        return json_lines(self.ok(*args, "--json", **kw).stdout)

    def drain(self):
        """Reads (and so marks read) every unread message."""
        return self.json("recv")

    def recv_until(self, pred, what, timeout=10):
        """Reads messages, one `recv --follow --count 1` at a time (each
        waits in the node for one, and takes no more), until those read so
        far satisfy pred; fails at the deadline."""
        got = []
        deadline = time.monotonic() + timeout * SCALE
        while not pred(got):
            left = deadline - time.monotonic()
            if left < 0.01:
                raise AssertionError("timed out waiting for %s (got: %r)"
                                     % (what, got))
            p = self.run("recv", "--follow", "--count", "1", "--timeout",
                         "%.3f" % left, "--json", timeout=left / SCALE + 15)
            if p.returncode == 4:
                raise AssertionError("timed out waiting for %s (got: %r)"
                                     % (what, got + json_lines(p.stdout)))
            if p.returncode != 0:
                raise AssertionError("confab recv on %s: exit %d\n%s" % (
                    self.name, p.returncode, p.stderr))
            got.extend(json_lines(p.stdout))
        return got


def make_homes(tmp):
    """Makes the three homes. Identities are random; making a few hundred
    finds, by the birthday bound, two whose ids share their first 4 hex
    digits, which the ambiguous-prefix test needs. Returns the homes and
    that shared prefix (None if the search gave up)."""
    pool = os.path.join(tmp, "pool")
    os.mkdir(pool)
    seen = {}
    pair = None
    for i in range(3000):
        home = os.path.join(pool, str(i))
        p = confab(home, "init", "--json")
        if p.returncode != 0:
            raise AssertionError("confab init: " + p.stderr)
        prefix = json.loads(p.stdout)["id"][:4]
        if prefix in seen:
            pair = (seen[prefix], home, prefix)
            break
        seen[prefix] = home
    homes = [os.path.join(tmp, n) for n in NAMES]
    if pair is not None:
        others = [h for h in seen.values() if h != pair[0]]
        if not others:  # the second identity already matched the first
            others = [os.path.join(pool, "extra")]
            confab(others[0], "init")
        sources = (others[0], pair[0], pair[1])
    else:
        sources = list(seen.values())[:3]
    for src, dst in zip(sources, homes):
        os.rename(src, dst)
    shutil.rmtree(pool)
    # A private network of the test's own: every home gets one key.
    keyhome = os.path.join(tmp, "key")
    p = confab(keyhome, "init", "--private-network")
    if p.returncode != 0:
        raise AssertionError("confab init --private-network: " + p.stderr)
    for h in homes:
        shutil.copy(os.path.join(keyhome, "network.key"), h)
        os.chmod(os.path.join(h, "network.key"), 0o600)
    shutil.rmtree(keyhome)
    return homes, (pair[2] if pair else None)


class ThreeNodes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="confab-cli-")
        cls.port = random.randint(20000, 60000)
        cls.nodes = []
        try:
            homes, cls.shared_prefix = make_homes(cls.tmp)
            cls.nodes = [Node(h, n) for h, n in zip(homes, NAMES)]
            for n in cls.nodes:
                n.start("--broadcast", "127.255.255.255",
                        "--discovery-port", str(cls.port),
                        "--beacon-interval", "200")
            for n in cls.nodes:
                n.wait_up()
            for n in cls.nodes:
                wait_state(n, "%s to see 2 peers up" % n.name,
                           lambda n=n: cls.peers_up(n) == 2, timeout=20)
        except BaseException:
            cls.tearDownClass()
            raise
        cls.a, cls.b, cls.c = cls.nodes

    @classmethod
    def tearDownClass(cls):
        bad = []
        for n in cls.nodes:
            if n.proc is None:
                continue
            n.stop()
            log = n.log_text()
            # A node stops cleanly on SIGTERM, without a sanitizer report.
            if (n.proc.returncode != 0 or "Sanitizer" in log
                    or "runtime error:" in log):
                bad.append("%s exited %d:\n%s" % (n.name, n.proc.returncode,
                                                  log[-3000:]))
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if bad:
            raise AssertionError("\n".join(bad))

    @staticmethod
    def peers_up(node):
        p = node.run("peers", "--json")
        if p.returncode != 0:
            return 0
        return sum(1 for q in json_lines(p.stdout) if q["state"] == "up")

    def node_by_id(self, hexid):
        return next(n for n in self.nodes if n.id == hexid)

    # ---- peers and status ----------------------------------------------

    def test_peers_json(self):
        for n in self.nodes:
            peers = n.json("peers")
            self.assertEqual(len(peers), 2)
            others = {m.id: m for m in self.nodes if m is not n}
            for p in peers:
                self.assertEqual(set(p), {"id", "name", "address", "state",
                                          "rtt_us"})
                self.assertIn(p["id"], others)
                self.assertEqual(p["name"], others[p["id"]].name)
                self.assertEqual(p["state"], "up")
                self.assertRegex(p["address"], r"^127\.0\.0\.1:\d+$")
                self.assertIsInstance(p["rtt_us"], int)

    def test_peers_table(self):
        p = self.a.ok("peers")
        lines = p.stdout.splitlines()
        self.assertRegex(lines[0], r"^ID\s+NAME\s+STATE\s+ADDRESS\s+RTT$")
        self.assertEqual(len(lines), 3)
        self.assertIn(self.b.id[:8], p.stdout)
        self.assertIn("charlie", p.stdout)
        self.assertNotIn("\033[", p.stdout, "no colour when not a terminal")
        # The columns line up: each state starts where STATE does.
        col = lines[0].index("STATE")
        for line in lines[1:]:
            self.assertEqual(line[col:col + 2], "up")

    def test_status_json(self):
        s = self.a.json("status")
        self.assertEqual(len(s), 1)
        s = s[0]
        for key in ("id", "name", "port", "peers", "groups", "counters",
                    "known", "inbox"):
            self.assertIn(key, s)
        self.assertEqual(s["id"], self.a.id)
        self.assertEqual(s["name"], "alpha")
        self.assertEqual(s["peers"], 2)
        self.assertGreater(s["port"], 0)
        self.assertIsInstance(s["groups"], list)
        self.assertIn("msgs_sent", s["counters"])
        # --json also works before the command.
        p = confab(self.a.home, "--json", "status")
        self.assertEqual(json.loads(p.stdout)["id"], self.a.id)

    # ---- unicast ---------------------------------------------------------

    def test_send_recv_json(self):
        self.b.drain()
        text = "grüße, 世界 ✓ — line\nand a second"
        before = time.time()
        sent = self.a.json("send", "bravo", text)
        self.assertEqual(len(sent), 1)
        mid = sent[0]["id"]
        self.assertRegex(mid, r"^[0-9a-f]{32}$")
        self.assertEqual(sent[0]["to"], self.b.id)
        got = self.b.recv_until(lambda g: any(m["id"] == mid for m in g),
                                "the message at bravo")
        m = next(m for m in got if m["id"] == mid)
        self.assertEqual(m["from"], self.a.id)
        self.assertEqual(m["from_name"], "alpha")
        self.assertEqual(m["kind"], "unicast")
        self.assertIsNone(m["group"])
        self.assertEqual(m["body"], text)
        self.assertNotIn("body_base64", m)
        self.assertEqual(m["ct"], "text/plain")
        self.assertIsInstance(m["seq"], int)
        # ts: the sender's clock, microseconds since 1970.
        self.assertLess(abs(m["ts"] / 1e6 - before), 60)
        # Read means read: a second recv has nothing.
        self.assertEqual([x for x in self.b.drain() if x["id"] == mid], [])

    def test_send_binary_file_by_id_prefix(self):
        self.c.drain()
        data = b"\xff\xfe\x00\x01" + bytes(range(256)) * 40
        path = os.path.join(self.tmp, "blob.bin")
        with open(path, "wb") as f:
            f.write(data)
        sent = self.a.json("send", self.c.id[:10].upper(), "--file", path)
        mid = sent[0]["id"]
        self.assertEqual(sent[0]["to"], self.c.id)
        got = self.c.recv_until(lambda g: any(m["id"] == mid for m in g),
                                "the file at charlie")
        m = next(m for m in got if m["id"] == mid)
        self.assertNotIn("body", m)
        self.assertEqual(base64.b64decode(m["body_base64"]), data)
        self.assertEqual(m["ct"], "application/octet-stream")

    def test_send_wait(self):
        self.b.drain()
        r = self.a.json("send", "bravo", "waited for", "--wait", "10")
        self.assertIn(r[0]["status"], ("delivered", "sent"))
        p = self.a.ok("send", "bravo", "waited too", "--wait")
        self.assertRegex(p.stdout, r"^(delivered|sent) to bravo \(%s\)"
                         % self.b.id[:8])
        self.b.recv_until(lambda g: len(g) >= 2, "both at bravo")

    def test_recv_human(self):
        self.b.drain()
        self.a.ok("send", "bravo", "for", "a person")
        # It waits for the message, and takes that one only.
        p = self.b.ok("recv", "--follow", "--count", "1", "--timeout",
                      str(10 * SCALE)).stdout
        self.assertRegex(p, r"^\[\d\d:\d\d:\d\d\] alpha \(unicast\): "
                            r"for a person\n$")

    def test_recv_follow(self):
        self.c.drain()
        follow = subprocess.Popen(
            [CONFAB, "--home", self.c.home, "recv", "--follow", "--count",
             "2", "--timeout", "10", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            self.a.ok("send", "charlie", "first")
            line = follow.stdout.readline()  # ends at the deadline at worst
            self.assertEqual(json.loads(line)["body"], "first")
            # The recv is following now: this one comes as an event.
            self.b.ok("send", "charlie", "second")
            out, err = follow.communicate(timeout=15 * SCALE)
            self.assertEqual(follow.returncode, 0, err)
            msgs = json_lines(out)
            self.assertEqual([m["body"] for m in msgs], ["second"])
            self.assertEqual(msgs[0]["from_name"], "bravo")
        finally:
            stop(follow)

    def test_follow_with_max_takes_no_more(self):
        """A recv that follows with max takes max messages in all: one
        that comes after is left unread, not handed over unasked (and so
        lost to a client that stopped reading). Through the control socket
        itself, to see every event the node sends."""
        self.c.drain()
        with Connection(self.c.home, 20 * SCALE) as cl:
            reply, _ = cl.call({"op": "recv", "follow": True, "max": 1})
            self.assertTrue(reply["ok"], reply)
            self.assertEqual(reply["msgs"], [])
            # Delivered (acknowledged) means the node has handed each to
            # its followers already.
            for body in ("one", "two"):
                r = self.a.json("send", "charlie", body, "--wait", "10")
                self.assertEqual(r[0]["status"], "delivered")
            reply, events = cl.call({"op": "recv", "max": 10})
            self.assertTrue(reply["ok"], reply)
            self.assertEqual([e["msg"]["body"] for e in events
                              if e["ev"] == "msg"], [b"one"])
            self.assertEqual([m["body"] for m in reply["msgs"]], [b"two"])

    def test_unfollow_stops_taking(self):
        """After unfollow a client gets no more msg events, and a message
        that comes later stays unread: how `recv --timeout` and `chat` end
        without marking read a message they never print."""
        self.c.drain()
        with Connection(self.c.home, 20 * SCALE) as cl:
            reply, _ = cl.call({"op": "recv", "follow": True})
            self.assertTrue(reply["ok"], reply)
            r = self.a.json("send", "charlie", "followed", "--wait", "10")
            self.assertEqual(r[0]["status"], "delivered")
            reply, events = cl.call({"op": "unfollow"})
            self.assertTrue(reply["ok"], reply)
            self.assertEqual([e["msg"]["body"] for e in events
                              if e["ev"] == "msg"], [b"followed"])
            r = self.a.json("send", "charlie", "after", "--wait", "10")
            self.assertEqual(r[0]["status"], "delivered")
            reply, events = cl.call({"op": "recv"})
            self.assertEqual([e for e in events if e["ev"] == "msg"], [])
            self.assertEqual([m["body"] for m in reply["msgs"]], [b"after"])

    def test_recv_timeout_with_nothing(self):
        self.a.drain()
        t0 = time.monotonic()
        p = self.a.run("recv", "--timeout", "0.5")
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertGreaterEqual(time.monotonic() - t0, 0.5)
        p = self.a.run("recv", "--follow", "--count", "1", "--timeout", "0.3")
        self.assertEqual(p.returncode, 4, p.stderr)

    # ---- broadcast and groups ---------------------------------------------

    def test_broadcast_reaches_both_once(self):
        for n in self.nodes:
            n.drain()
        r = self.a.json("broadcast", "to everyone")
        self.assertEqual(r[0]["sent"], 2)
        mid = r[0]["id"]
        for n in (self.b, self.c):
            got = n.recv_until(lambda g: any(m["id"] == mid for m in g),
                               "the broadcast at " + n.name)
            got += n.drain()
            mine = [m for m in got if m["id"] == mid]
            self.assertEqual(len(mine), 1)
            self.assertEqual(mine[0]["kind"], "broadcast")
            self.assertEqual(mine[0]["body"], "to everyone")
        self.assertEqual([m for m in self.a.drain() if m["id"] == mid], [])

    def test_groups_shout_anycast(self):
        g = "g%d" % random.randint(0, 1 << 30)
        for n in self.nodes:
            n.drain()
        self.assertEqual(self.b.json("join", g),
                         [{"group": g, "member": True}])
        self.c.ok("join", "#" + g)

        def members():
            for x in self.a.json("groups"):
                if x["group"] == g:
                    return sorted(x["members"])
            return None
        wait_state(self.a, "alpha to see both members",
                   lambda: members() == sorted([self.b.id, self.c.id]))
        mine = [x for x in self.b.json("groups") if x["group"] == g][0]
        self.assertTrue(mine["self"])
        self.assertEqual(mine["members"], [self.c.id])
        self.assertIn("#" + g, self.a.ok("groups").stdout)

        r = self.a.json("shout", g, "to the group")[0]
        self.assertEqual(r["sent"], 2)
        for n in (self.b, self.c):
            got = n.recv_until(lambda m: any(x["id"] == r["id"] for x in m),
                               "the shout at " + n.name)
            m = next(x for x in got if x["id"] == r["id"])
            self.assertEqual((m["kind"], m["group"]), ("group", g))

        r = self.a.json("anycast", g, "to one member")[0]
        self.assertEqual(r["status"], "delivered")
        self.assertIn(r["member"], (self.b.id, self.c.id))
        taker = self.node_by_id(r["member"])
        self.assertEqual(r["member_name"], taker.name)
        got = taker.recv_until(lambda m: any(x["id"] == r["id"] for x in m),
                               "the anycast at " + taker.name)
        m = next(x for x in got if x["id"] == r["id"])
        self.assertEqual((m["kind"], m["group"]), ("anycast", g))
        p = self.a.ok("anycast", g, "again")
        self.assertRegex(p.stdout, r"^delivered to (bravo|charlie) ")

        self.b.ok("leave", g)
        self.c.ok("leave", g)
        wait_state(self.a, "the group to empty",
                   lambda: members() in (None, []))
        p = self.a.run("anycast", g, "nobody is there")
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("no linked peer is a member", p.stderr)
        p = self.b.run("leave", g)
        self.assertEqual(p.returncode, 3, "leaving a group twice")

    # ---- ping --------------------------------------------------------------

    def test_ping(self):
        p = self.a.ok("ping", "bravo", "--count", "2", "--interval", "0.1")
        self.assertRegex(p.stdout, r"64 bytes from bravo \(%s\): seq=1 "
                         r"time=[\d.]+ ms" % self.b.id[:8])
        self.assertIn("seq=2", p.stdout)
        self.assertRegex(p.stdout, r"2 sent, 2 received, 0% lost; rtt "
                         r"min/avg/max = [\d.]+/[\d.]+/[\d.]+ ms")
        lines = self.a.json("ping", "charlie", "--count", "2", "--interval",
                            "0.1")
        self.assertEqual([l.get("seq") for l in lines[:2]], [1, 2])
        self.assertEqual(lines[2]["received"], 2)
        self.assertGreater(lines[0]["rtt_us"], 0)

    # ---- chat ----------------------------------------------------------------

    def test_chat_with_a_peer_through_a_pipe(self):
        for n in self.nodes:
            n.drain()
        # Unread before the chat starts: the chat shows it first.
        # Delivered means acknowledged, which alpha does once the message
        # is in its inbox.
        r = self.b.json("send", "alpha", "while nobody read", "--wait",
                        str(10 * SCALE))
        self.assertEqual(r[0]["status"], "delivered")
        self.assertEqual(self.a.json("status")[0]["inbox"], 1)
        chat = subprocess.Popen(
            [CONFAB, "--home", self.a.home, "chat", "bravo"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        lines = queue.Queue()
        reader = threading.Thread(
            target=lambda: [lines.put(l) for l in chat.stdout], daemon=True)
        reader.start()
        try:
            chat.stdin.write("hello from chat\nsecond line ✓\n")
            chat.stdin.flush()
            got = self.b.recv_until(lambda g: len(g) >= 2, "the chat lines")
            self.assertEqual([m["body"] for m in got[:2]],
                             ["hello from chat", "second line ✓"])
            self.assertTrue(all(m["from_name"] == "alpha" for m in got))
            # What alpha receives now goes to the chat, not the inbox.
            self.c.ok("send", "alpha", "into the chat")
            deadline = time.monotonic() + 10 * SCALE
            seen = ""
            while "into the chat" not in seen:
                left = deadline - time.monotonic()
                self.assertGreater(left, 0, "chat printed: " + seen)
                try:
                    seen += lines.get(timeout=left)
                except queue.Empty:
                    pass
            self.assertRegex(seen, r"\] bravo \(unicast\): while nobody "
                             r"read\n(.*\n)*.*\] charlie \(unicast\): into the "
                             r"chat")
            chat.stdin.close()  # the end of input ends the chat
            self.assertEqual(chat.wait(10 * SCALE), 0, chat.stderr.read())
        finally:
            stop(chat)

    def test_chat_with_a_group_through_a_pipe(self):
        g = "chat%d" % random.randint(0, 1 << 30)
        self.b.drain()
        self.b.ok("join", g)
        wait_state(self.a, "alpha to see bravo in the group",
                   lambda: any(x["group"] == g and self.b.id in x["members"]
                               for x in self.a.json("groups")))
        p = self.a.run("chat", "#" + g, input="to the group\n/quit\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        got = self.b.recv_until(lambda m: len(m) >= 1, "the group line")
        self.assertEqual((got[0]["kind"], got[0]["group"], got[0]["body"]),
                         ("group", g, "to the group"))
        # chat joined the group for itself, and left it at the end.
        self.assertNotIn(g, self.a.json("status")[0]["groups"])
        self.b.ok("leave", g)

    # ---- exit codes ------------------------------------------------------------

    def test_bad_arguments_exit_1(self):
        for args in (["send"], ["send", "bravo"],
                     ["send", "bravo", "x", "--file", "/dev/null"],
                     ["recv", "--count", "x"], ["recv", "--timeout", "-1"],
                     ["ping", "bravo", "--count", "0"], ["peers", "extra"],
                     ["join"], ["groups", "--frobnicate"], ["chat", "a", "b"],
                     ["frobnicate"], ["--frobnicate"]):
            p = self.a.run(*args)
            self.assertEqual(p.returncode, 1, args)
            self.assertTrue(p.stderr.startswith("confab: "), p.stderr)

    def test_unknown_peer_exit_3(self):
        p = self.a.run("send", "nobody-by-this-name", "hi")
        self.assertEqual(p.returncode, 3)
        self.assertIn("no peer is named 'nobody-by-this-name'", p.stderr)
        for n in (self.b, self.c):  # the candidates are listed
            self.assertIn(n.id[:8], p.stderr)
            self.assertIn(n.name, p.stderr)
        self.assertEqual(self.a.run("ping", "abc", "--count", "1").returncode,
                         3, "3 hex digits are too few for a prefix")

    def test_ambiguous_prefix_exit_3(self):
        prefix = self.shared_prefix
        if prefix is None:
            self.skipTest("no two of the identities made share 4 hex digits")
        self.assertTrue(self.b.id.startswith(prefix))
        self.assertTrue(self.c.id.startswith(prefix))
        p = self.a.run("send", prefix, "hi")
        self.assertEqual(p.returncode, 3)
        self.assertIn("ambiguous", p.stderr)
        self.assertIn(self.b.id[:8], p.stderr)
        self.assertIn(self.c.id[:8], p.stderr)
        # One more digit than they share settles it.
        n = len(os.path.commonprefix([self.b.id, self.c.id])) + 1
        r = self.a.json("send", self.b.id[:n], "settled")
        self.assertEqual(r[0]["to"], self.b.id)

    def test_stopped_node_exit_2(self):
        home = os.path.join(self.tmp, "stopped")
        self.assertEqual(confab(home, "init").returncode, 0)
        p = confab(home, "status")
        self.assertEqual(p.returncode, 2)
        self.assertIn("no node is running", p.stderr)
        err = harness.OutputPipe()
        try:
            node = subprocess.Popen(
                [CONFAB, "--home", home, "run", "--bind", "127.0.0.1",
                 "--no-discovery"], stdout=subprocess.DEVNULL,
                stderr=err.wfd)
        finally:
            err.spawned()
        try:
            self.assertTrue(err.wait_for(RUNNING, 10 * SCALE),
                            "the extra node did not come up (exit %r):\n%s"
                            % (node.poll(), err.text()))
            # Up means its control socket listens: it answers at once.
            self.assertEqual(confab(home, "status").returncode, 0)
        finally:
            stop(node)
            err.join(10 * SCALE)
        self.assertEqual(node.returncode, 0)
        for args in (["status"], ["peers"], ["send", "bravo", "hi"],
                     ["recv"], ["chat"]):
            p = confab(home, *args, input="")
            self.assertEqual(p.returncode, 2, args)
            self.assertIn("no node is running", p.stderr)

    def test_file_too_large_exit_5(self):
        path = os.path.join(self.tmp, "big.bin")
        with open(path, "wb") as f:
            f.truncate((16 << 20) + 1)
        p = self.a.run("send", "bravo", "--file", path)
        self.assertEqual(p.returncode, 5, p.stderr)
        self.assertIn("at most", p.stderr)

    # ---- another user ------------------------------------------------------------

    def test_other_user_cannot_use_the_socket(self):
        if os.geteuid() != 0:
            self.skipTest("needs root, to run a client as user nobody")
        nobody = pwd.getpwnam("nobody")
        # A copy of the binary that nobody may run, wherever the build is.
        bindir = tempfile.mkdtemp(prefix="confab-bin-")
        home = self.a.home
        sock = os.path.join(home, "control.sock")
        mode_home = os.stat(home).st_mode & 0o777
        mode_sock = os.stat(sock).st_mode & 0o777
        mode_tmp = os.stat(self.tmp).st_mode & 0o777
        try:
            os.chmod(self.tmp, 0o711)  # so that nobody may reach the home
            os.chmod(bindir, 0o755)
            exe = os.path.join(bindir, "confab")
            shutil.copy(CONFAB, exe)
            os.chmod(exe, 0o755)

            def as_nobody():
                os.setgroups([])
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)

            def client():
                return subprocess.run(
                    [exe, "--home", home, "status"], capture_output=True,
                    text=True, timeout=30 * SCALE, preexec_fn=as_nobody,
                    cwd="/")
            # The home is 0700: the socket cannot even be reached.
            self.assertEqual(mode_home, 0o700)
            p = client()
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("only the user who runs the node", p.stderr)
            # Open the way to the socket itself: the node refuses the
            # connection by its peer credentials.
            os.chmod(home, 0o711)
            os.chmod(sock, 0o666)
            p = client()
            self.assertIn(p.returncode, (2, 6), p.stderr)
            self.assertIn("refused", p.stderr)
            self.assertNotIn('"id"', p.stdout)
            # The node logs the refusal before it closes the connection,
            # so the line is in alpha's pipe once the client has ended;
            # this waits only for the thread that copies it to the log.
            refusal = "refused a control connection from another user"
            self.assertTrue(self.a.err.wait_for(refusal, 10 * SCALE),
                            self.a.err.text()[-3000:])
            self.assertIn(refusal, self.a.log_text())
        finally:
            os.chmod(home, mode_home)
            os.chmod(sock, mode_sock)
            os.chmod(self.tmp, mode_tmp)
            shutil.rmtree(bindir, ignore_errors=True)
        self.assertEqual(self.a.run("status").returncode, 0)

    # ---- help ---------------------------------------------------------------------

    def test_help(self):
        p = confab(self.a.home, "--help")
        self.assertEqual(p.returncode, 0)
        cmds = ("init", "id", "run", "status", "peers", "send", "broadcast",
                "join", "leave", "groups", "shout", "anycast", "recv",
                "chat", "ping", "allow", "deny", "testnet", "trace")
        for c in cmds:
            self.assertRegex(p.stdout, r"\n  %s " % c)
            h = confab(self.a.home, c, "--help")
            self.assertEqual(h.returncode, 0, c)
            self.assertTrue(h.stdout.startswith("usage: confab " + c), c)


if __name__ == "__main__":
    unittest.main(verbosity=2)
