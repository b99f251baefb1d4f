#!/usr/bin/env python3
"""`confab chat` on a real terminal: tmux runs it in a pane of 100 x 30
on a server of the test's own, keys go in with send-keys, and the screen
is read back with capture-pane. Between running nodes on loopback (a
private network key, beacons to 127.255.255.255 on a random port):

- a line typed stays on screen as sent by this node, with the time and a
  mark (delivered, or queued while the peer is down);
- two peers with the same name are told apart by their short ids;
- an unknown command prints one clean line, and the prompt comes back on
  a line of its own;
- wide characters (CJK, emoji) keep the columns of `/peers` aligned.

The screen is read until it shows what is awaited or a deadline passes."""
import os
import re
import shutil
import subprocess
import sys
import time
import unicodedata
import unittest

import fhnodes
from fhnodes import SCALE

CONFAB = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else "confab"
TMUX = shutil.which("tmux")


def width(s):
    """Columns s takes on the terminal (as tmux and wcwidth count)."""
    w = 0
    for ch in s:
        if unicodedata.combining(ch):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


class ChatOnATerminal(unittest.TestCase):
    def setUp(self):
        # Not a skip: a skipped test would count as passing.
        self.assertIsNotNone(TMUX, "tmux is not installed: run "
                             "'scripts/dev deps', which installs it")
        self.net = fhnodes.Net(CONFAB)
        self.sock = os.path.join(self.net.tmp, "tmux.sock")
        self.alice = self.net.node("alice").start()
        self.bob = self.net.node("bob").start()
        self.bob2 = self.net.node("bob2").start()
        self.wide = self.net.node("漢字😀").start()
        with self.alice.watch() as w:
            for p in (self.bob, self.bob2, self.wide):
                self.alice.wait_state(w, p, "up")

    def tearDown(self):
        subprocess.run([TMUX, "-S", self.sock, "kill-server"],
                       capture_output=True)
        self.net.close()

    def tmux(self, *args):
        p = subprocess.run([TMUX, "-S", self.sock, *args],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def start_chat(self, target):
        env = "LANG=C.UTF-8 LC_ALL=C.UTF-8 NO_COLOR=1 TERM=screen"
        cmd = "env %s %s --home %s chat %s; echo chat-exit=$?; sleep 600" % (
            env, CONFAB, self.alice.home, target)
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x",
                  "100", "-y", "30", cmd)
        # (capture-pane drops the spaces that end a row: "bob> " is "bob>")
        return self.screen_until(
            lambda s: bool(s.strip()) and re.search(r"\S>$", s.splitlines()[-1]),
            "the prompt")

    def screen(self):
        out = self.tmux("capture-pane", "-p", "-t", "t")
        return out.rstrip("\n")

    def screen_until(self, pred, what, timeout=15):
        end = time.monotonic() + timeout * SCALE
        s = ""
        while time.monotonic() < end:
            s = self.screen()
            if pred(s):
                return s
            time.sleep(0.05)  # a terminal has no event to wait on
        self.fail("the screen never showed %s:\n%s" % (what, s))

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "t", *keys)

    def test_chat_screen(self):
        bob_sid = self.bob.id[:8]
        self.start_chat(bob_sid)
        # A line typed: shown as sent by this node, with time and a mark.
        self.keys("hello bob", "Enter")
        s = self.screen_until(
            lambda s: re.search(r"\[\d\d:\d\d:\d\d\] alice> hello bob +"
                                r"✓ delivered", s), "the own line delivered")
        self.assertNotIn("bob> hello bob", s)  # not under the peer's name
        self.assertIn("chatting with bob", s)
        # bob and bob2 are named differently, so no ids yet.
        self.bob.run("send", "alice", "no collision")
        s = self.screen_until(lambda s: "no collision" in s, "bob's line")
        self.assertRegex(s, r"\] bob \(unicast\): no collision")
        # A name taken twice: both shown with their short ids.
        self.bob2.stop()
        self.bob2.extra = ["--name", "bob"]
        self.bob2.start()
        with self.alice.watch() as w:
            self.alice.wait_state(w, self.bob2, "up")
        self.bob2.run("send", "alice", "from the other bob")
        self.bob.run("send", "alice", "from the first bob")
        s = self.screen_until(lambda s: "from the first bob" in s,
                              "both bobs")
        self.assertRegex(s, r"\] bob \(%s\) \(unicast\): from the other bob"
                         % self.bob2.id[:8])
        self.assertRegex(s, r"\] bob \(%s\) \(unicast\): from the first bob"
                         % bob_sid)
        # An unknown command: one clean line, the prompt on its own.
        self.keys("/nope", "Enter")
        s = self.screen_until(lambda s: "unknown command '/nope'" in s,
                              "the error")
        lines = s.splitlines()
        err = [i for i, l in enumerate(lines) if "unknown command" in l][0]
        self.assertTrue(lines[err].startswith("confab: unknown command"),
                        s)
        self.assertNotRegex(s, r"/nope\S*> ")
        self.assertRegex(lines[-1], r"^\S+>$")
        # Wide characters: /peers keeps its columns.
        self.keys("/peers", "Enter")
        s = self.screen_until(lambda s: "漢字😀" in s and "ADDRESS" in s,
                              "the peer list")
        rows = [l for l in s.splitlines()
                if re.match(r"^(ID  |[0-9a-f]{8}  )", l)]
        self.assertGreaterEqual(len(rows), 4, s)
        cols = set()
        for l in rows:
            m = re.search(r"  (STATE|up|down|known|connecting) ", l)
            self.assertIsNotNone(m, l)
            cols.add(width(l[:m.start()]))
        self.assertEqual(len(cols), 1, "STATE column at %s:\n%s"
                         % (sorted(cols), "\n".join(rows)))
        # A peer down: a line to it is queued, and says so.
        self.bob.stop()
        with self.alice.watch() as w:
            self.alice.wait_state(w, self.bob, "down")
        self.keys("later", "Enter")
        self.screen_until(
            lambda s: re.search(r"\[\d\d:\d\d:\d\d\] alice> later +"
                                r"… queued", s), "the queued line")
        self.keys("/quit", "Enter")
        self.screen_until(lambda s: "chat-exit=0" in s, "the chat's end")


if __name__ == "__main__":
    unittest.main(verbosity=2)
