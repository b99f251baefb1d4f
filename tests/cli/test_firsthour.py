#!/usr/bin/env python3
"""The first hour with confab (issue #14), driven through the command line
as a new user would: the traps (an option value taken as text, "sent" for
a message only queued, init on an existing home, anycast's promise, a seed
JSON rounds, a host that cannot exist, a --peer that never answers), and
a node that explains itself (a wrong network key, what status shows).

Loopback only: links on 127.0.0.1, beacons to 127.255.255.255 on a random
port, private network keys of the test's own. No fixed sleeps: every wait
blocks on a node's events or log until a deadline."""
import json
import os
import signal
import socket
import subprocess
import sys
import unittest

import fhnodes
import harness
from fhnodes import SCALE

CONFAB = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else "confab"


class Traps(unittest.TestCase):
    def setUp(self):
        self.net = fhnodes.Net(CONFAB)

    def tearDown(self):
        self.net.close()

    def test_wait_value_not_a_number_is_an_error(self):
        h = self.net.home("a")
        for bad in ("5s", "abc", "0"):
            p = self.net.confab(h, "send", "bob", "x", "--wait", bad)
            self.assertEqual(p.returncode, 1, (bad, p.stderr))
            self.assertIn("--wait takes seconds", p.stderr)
            self.assertIn("'%s'" % bad, p.stderr)
            self.assertTrue(p.stderr.startswith("confab: "), p.stderr)
        p = self.net.confab(h, "send", "bob", "x", "--wait=abc")
        self.assertEqual(p.returncode, 1, p.stderr)
        # Other options with a value: a bad one is an error too.
        for args in (("ping", "bob", "--count", "x"),
                     ("recv", "--timeout", "soon"),
                     ("run", "--beacon-interval", "fast"),
                     ("testnet", "--nodes", "many")):
            p = self.net.confab(h, *args)
            self.assertEqual(p.returncode, 1, (args, p.stderr))
            self.assertTrue(p.stderr.startswith("confab: "), p.stderr)

    def test_send_to_a_down_peer_says_queued(self):
        a = self.net.node("alice").start()
        b = self.net.node("bob").start()
        with a.watch() as w:
            a.wait_state(w, b, "up")
            p = a.run("send", "bob", "while up")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("sent to bob", p.stdout)
            self.assertEqual(a.json("send", "bob", "up")[0]["status"], "sent")
            b.stop()
            a.wait_state(w, b, "down")
        p = a.run("send", "bob", "while down")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("queued for bob", p.stdout)
        self.assertNotIn("sent to", p.stdout)
        r = a.json("send", "bob", "down too")[0]
        self.assertEqual(r["status"], "queued")
        self.assertEqual(r["to"], b.id)

    def test_queue_lists_and_cancels(self):
        a = self.net.node("alice").start()
        b = self.net.node("bob").start()
        with a.watch() as w:
            a.wait_state(w, b, "up")
            b.stop()
            a.wait_state(w, b, "down")
        keep = a.json("send", "bob", "keep me")[0]["id"]
        drop = a.json("send", "bob", "drop me")[0]["id"]
        q = a.json("queue")
        self.assertEqual(sorted(m["id"] for m in q), sorted([keep, drop]))
        self.assertTrue(all(m["peer"] == b.id and m["peer_name"] == "bob"
                            for m in q))
        self.assertIn("drop", a.run("queue").stdout.replace(drop, "drop"))
        r = a.json("queue", "--cancel", drop)[0]
        self.assertEqual(r, {"id": drop, "status": "cancelled"})
        self.assertEqual([m["id"] for m in a.json("queue")], [keep])
        p = a.run("queue", "--cancel", drop)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no such message in the queue", p.stderr)
        self.assertEqual(a.run("queue", "--cancel", "xyz").returncode, 1)
        # bob back: the kept one arrives, the cancelled one never does.
        b.start()
        with a.watch() as w:
            w.until("the queue drained", lambda: a.json("queue") == [],
                    30 * SCALE)
        self.assertEqual([m["body"] for m in b.json("recv")], ["keep me"])

    def test_send_wait_json_has_latency(self):
        a = self.net.node("alice").start()
        b = self.net.node("bob").start()
        with a.watch() as w:
            a.wait_state(w, b, "up")
        r = a.json("send", "bob", "timed", "--wait", "10")[0]
        self.assertEqual(r["status"], "delivered")
        self.assertIsInstance(r["latency_ms"], float)
        self.assertGreater(r["latency_ms"], 0)

    def test_init_private_network_on_an_existing_home(self):
        h = os.path.join(self.net.tmp, "old")
        self.assertEqual(self.net.confab(h, "init").returncode, 0)
        before = json.loads(self.net.confab(h, "id", "--json").stdout)["id"]
        p = self.net.confab(h, "init", "--private-network", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        r = json.loads(p.stdout)
        self.assertEqual(r["id"], before)
        self.assertTrue(r["private_network"])
        self.assertTrue(r["existed"])
        self.assertTrue(os.path.exists(os.path.join(h, "network.key")))
        # No escaped slashes in the JSON (json-c's default).
        self.assertNotIn("\\/", p.stdout)
        self.assertIn(h, p.stdout)
        # A second key is refused: it would split the network.
        p = self.net.confab(h, "init", "--private-network")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("already has a private network key", p.stderr)
        # Nothing to add: still refused, as before.
        p = self.net.confab(h, "init")
        self.assertEqual(p.returncode, 6, p.stderr)

    def test_anycast_shows_a_failover(self):
        a = self.net.node("alice", "--anycast-timeout", "200").start()
        b = self.net.node("bob").start()
        c = self.net.node("carol").start()
        with a.watch() as w:
            for m in (b, c):
                a.wait_state(w, m, "up")
                self.assertEqual(m.run("join", "room").returncode, 0)
            w.until("both in #room", lambda: any(
                g["group"] == "room" and len(g["members"]) == 2
                for g in a.json("groups")), 20 * SCALE)
        # Neither member answers for a while: the job moves on.
        for m in (b, c):
            m.proc.send_signal(signal.SIGSTOP)
        try:
            job = subprocess.Popen([CONFAB, "--home", a.home, "anycast",
                                    "room", "job", "--json"],
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
            with a.watch() as w:
                w.until("a failover", lambda: a.json("status")[0]
                        ["counters"]["anycast_failovers"] >= 1, 20 * SCALE)
        finally:
            for m in (b, c):
                m.proc.send_signal(signal.SIGCONT)
        out, err = job.communicate(timeout=60 * SCALE)
        self.assertEqual(job.returncode, 0, err)
        r = json.loads(out)
        self.assertEqual(r["status"], "delivered")
        self.assertGreaterEqual(r["failovers"], 1)
        p = a.run("anycast", "room", "again")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("failover", p.stdout)

    def test_anycast_wording_is_at_least_once(self):
        p = self.net.confab(self.net.tmp, "anycast", "--help")
        self.assertIn("at-least-once", p.stdout)
        self.assertNotIn("exactly one", p.stdout)
        with open(os.path.join(os.path.dirname(__file__), "..", "..",
                               "docs", "confab.1")) as f:
            man = f.read()
        self.assertIn("at\\-least\\-once across the members", man)
        p = self.net.confab(self.net.tmp, "testnet", "--nodes", "3")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("at-least-once", p.stdout)
        self.assertNotIn("exactly one member", p.stdout)

    def test_testnet_seed_is_exact_in_json(self):
        big = "18446744073709551557"
        p = self.net.confab(self.net.tmp, "testnet", "--nodes", "2",
                            "--seed", big, "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["seed"], big)
        # A random seed is below 2^53, so exact as a number too.
        p = self.net.confab(self.net.tmp, "testnet", "--nodes", "2", "--json")
        self.assertLess(int(json.loads(p.stdout)["seed"]), 2 ** 53)

    def test_impossible_address_is_refused(self):
        h = self.net.home("a")
        p = self.net.confab(h, "run", "--no-discovery", "--bind",
                            "127.0.0.1", "--peer", "999.1.1.1:5")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("'999.1.1.1' is not an IPv4 address", p.stderr)

    def test_unreachable_peer_is_logged_at_info(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        a = self.net.node("a", "--peer", "127.0.0.1:%d" % port,
                          discovery=False).start()
        what = "static peer 127.0.0.1:%d: no link (1 attempt so far)" % port
        self.assertTrue(a.out.wait_for(what, 15 * SCALE), a.out.text())
        self.assertIn("confab info:", a.out.text())


class Consistency(unittest.TestCase):
    def setUp(self):
        self.net = fhnodes.Net(CONFAB)

    def tearDown(self):
        self.net.close()

    def test_errors_are_one_line_and_json_with_json(self):
        h = self.net.home("a")
        for args in (("run", "--no-discovery", "--peer", "999.1.1.1:5"),
                     ("run", "--no-discovery", "--bind", "192.0.2.1"),
                     ("send", "x", "y", "--wait", "soon"),
                     ("status",)):
            p = self.net.confab(h, *args)
            self.assertNotEqual(p.returncode, 0, args)
            lines = p.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, (args, p.stderr))
            self.assertTrue(lines[0].startswith("confab: "), p.stderr)
            p = self.net.confab(h, *args, "--json")
            err = json.loads(p.stdout.strip().splitlines()[-1])
            self.assertEqual("confab: " + err["error"],
                             p.stderr.strip().splitlines()[-1])

    def test_json_names_the_peer_alike(self):
        a = self.net.node("alice").start()
        b = self.net.node("bob").start()
        with a.watch() as w:
            a.wait_state(w, b, "up")
        self.assertEqual(b.run("join", "room").returncode, 0)
        with a.watch() as w:
            w.until("bob in #room", lambda: any(
                g["group"] == "room" and b.id in g["members"]
                for g in a.json("groups")), 20 * SCALE)
        s = a.json("send", "bob", "hi", "--wait", "10")[0]
        self.assertEqual((s["peer"], s["peer_name"]), (b.id, "bob"))
        r = b.json("recv")[0]
        self.assertEqual((r["peer"], r["peer_name"]), (a.id, "alice"))
        c = a.json("anycast", "room", "job")[0]
        self.assertEqual((c["peer"], c["peer_name"]), (b.id, "bob"))
        self.assertIn("latency_ms", c)
        pg = a.json("ping", "bob", "--count", "1")[0]
        self.assertEqual((pg["peer"], pg["peer_name"]), (b.id, "bob"))
        g = [g for g in a.json("groups") if g["group"] == "room"][0]
        self.assertEqual(g["member_names"], ["bob"])
        st = a.json("status")[0]
        self.assertEqual(st["unread"], st["inbox"])


class Gone(unittest.TestCase):
    def setUp(self):
        self.net = fhnodes.Net(CONFAB)

    def tearDown(self):
        self.net.close()

    def test_a_peer_down_too_long_is_given_up(self):
        a = self.net.node("alice", "--peer-forget", "300").start()
        b = self.net.node("bob").start()
        with a.watch() as w:
            a.wait_state(w, b, "up")
            b.stop()
            a.wait_state(w, b, "down")
        what = "(bob) down too long (peer_forget_ms): no more dials"
        self.assertTrue(a.out.wait_for(what, 15 * SCALE), a.out.text())
        self.assertEqual([p for p in a.json("peers") if p["id"] == b.id], [])
        self.assertNotIn("bob", a.run("peers").stdout)
        gone = [p for p in a.json("peers", "--all") if p["id"] == b.id]
        self.assertEqual(gone[0]["state"], "gone")
        self.assertEqual(a.json("status")[0]["counters"]["peers_gone"], 1)
        # Back: its beacon brings it back.
        b.start()
        with a.watch() as w:
            a.wait_state(w, b, "up")

    def test_forget(self):
        a = self.net.node("alice").start()
        b = self.net.node("bob").start()
        with a.watch() as w:
            a.wait_state(w, b, "up")
            p = a.run("forget", "bob")
            self.assertEqual(p.returncode, 6, p.stderr)  # linked: refused
            self.assertIn("confab deny", p.stderr)
            b.stop()
            a.wait_state(w, b, "down")
        r = a.json("forget", b.id[:8])[0]
        self.assertEqual((r["peer"], r["peer_name"], r["state"]),
                         (b.id, "bob", "gone"))
        self.assertIn("forgotten (confab forget)", a.out.text())
        self.assertEqual([p for p in a.json("peers") if p["id"] == b.id], [])
        p = a.run("forget", "nobody")
        self.assertEqual(p.returncode, 3, p.stderr)


class Monitor(unittest.TestCase):
    def setUp(self):
        self.net = fhnodes.Net(CONFAB)

    def tearDown(self):
        self.net.close()

    def test_monitor_streams_log_lines(self):
        a = self.net.node("alice").start()
        out = harness.OutputPipe()
        try:
            mon = subprocess.Popen([CONFAB, "--home", a.home, "monitor",
                                    "--json"], stdout=out.wfd,
                                   stderr=subprocess.DEVNULL)
        finally:
            out.spawned()
        try:
            # Subscribed once the node counts its connection and answers a
            # request made after it.
            with a.watch() as w:
                w.until("monitor connected",
                        lambda: a.json("status")[0]["counters"]["ctl_clients"]
                        >= 3, 10 * SCALE, poll=0.05)
            b = self.net.node("bob").start()
            self.assertTrue(out.wait_for("(bob) up", 15 * SCALE), out.text())
            logs = [json.loads(l) for l in out.text().splitlines()
                    if '"ev":"log"' in l]
            up = [e for e in logs if "(bob) up" in e["line"]]
            self.assertEqual(up[0]["level"], "info")
            self.assertIn("peer %s (bob) up" % b.id[:8], up[0]["line"])
        finally:
            mon.send_signal(signal.SIGINT)
            self.assertEqual(mon.wait(10 * SCALE), 130)
            out.join(10 * SCALE)


class Explains(unittest.TestCase):
    def setUp(self):
        self.net = fhnodes.Net(CONFAB)

    def tearDown(self):
        self.net.close()

    def test_wrong_network_key_is_said_and_shown(self):
        # alice sends no beacons: she hears eve only by eve's handshakes;
        # bob's beacons are what eve hears.
        a = self.net.node("alice", discovery=False).start()
        self.net.node("bob").start()
        port = a.json("status")[0]["port"]
        # eve: a private key of her own, made by init on her existing home.
        eve = self.net.node("eve", "--peer", "127.0.0.1:%d" % port,
                            "--other-network-warn", "1500", key=False)
        p = eve.run("init", "--private-network")
        self.assertEqual(p.returncode, 0, p.stderr)
        eve.start()
        what = "hearing beacons from nodes of another network"
        self.assertTrue(eve.out.wait_for(what, 15 * SCALE), eve.out.text())
        line = [l for l in eve.out.text().splitlines() if what in l][0]
        self.assertIn("confab warn:", line)
        self.assertIn("check the network key", line)
        # Once, not a line a beacon: more beacons came meanwhile.
        self.assertTrue(a.out.wait_for(
            "hearing handshakes from nodes of another network",
            15 * SCALE), a.out.text())
        self.assertEqual(eve.out.text().count(what), 1, eve.out.text())
        # Then periodically, with how many came meanwhile.
        self.assertTrue(eve.out.wait_for("more since the last warning",
                                         15 * SCALE), eve.out.text())
        self.assertEqual(eve.out.text().count(what), 2, eve.out.text())
        se, sa = eve.json("status")[0], a.json("status")[0]
        self.assertEqual(se["network"], "private")
        self.assertEqual(len(se["netkey_fp"]), 16)
        self.assertNotEqual(se["netkey_fp"], sa["netkey_fp"])
        self.assertGreater(se["counters"]["beacons_bad_tag"], 0)
        self.assertGreater(sa["counters"]["handshakes_refused_key"], 0)
        self.assertEqual(se["peers"], 0)
        for k in ("version", "uptime_ms", "bind", "discovery_port",
                  "discovery_targets", "allow_list"):
            self.assertIn(k, se)
        self.assertEqual(se["bind"], "127.0.0.1")
        self.assertEqual(se["discovery_port"], self.net.port)
        self.assertIn("127.255.255.255:%d" % self.net.port,
                      se["discovery_targets"])
        for k in ("beacons_own", "beacons_rate_limited",
                  "handshakes_timed_out", "links_refused_busy"):
            self.assertIn(k, se["counters"])
        text = eve.run("status").stdout
        self.assertIn("network private, key fingerprint " + se["netkey_fp"],
                      text)
        self.assertRegex(text, r"bad tag \(another network key\)")
        self.assertIn("links   on 127.0.0.1 port", text)
        self.assertIn("version ", text)
        self.assertIn("allow   any node with the network key", text)
        sys.stderr.write("\n--- eve's log ---\n%s--- eve's status ---\n%s"
                         % (eve.out.text(), text))


class Settings(unittest.TestCase):
    def setUp(self):
        self.net = fhnodes.Net(CONFAB)

    def tearDown(self):
        self.net.close()

    def write_config(self, home, text):
        with open(os.path.join(home, "config"), "w") as f:
            f.write(text)

    def test_timers_on_the_command_line_and_in_the_file(self):
        a = self.net.node("alice", "--ping-interval", "300",
                          "--anycast-timeout=700", "--name", "cmdline")
        self.write_config(a.home, "# timers\n"
                          "peer-timeout = 4000   # ms\n"
                          "ping-interval = 900\n"
                          "name = fromfile\n"
                          "max-message = 2000000\n"
                          "no-discovery = false\n")
        a.start()
        st = a.json("status")[0]
        self.assertEqual(st["ping_interval_ms"], 300)  # the command line wins
        self.assertEqual(st["anycast_timeout_ms"], 700)
        self.assertEqual(st["peer_timeout_ms"], 4000)  # from the file
        self.assertEqual(st["max_message"], 2000000)
        self.assertEqual(st["name"], "cmdline")
        a.stop()
        self.write_config(a.home, "name = fromfile\n")
        a.extra = []
        a.start()
        self.assertEqual(a.json("status")[0]["name"], "fromfile")
        self.assertIn("timers  ping 5000 ms", a.run("status").stdout)

    def test_bad_values_and_lines_are_named(self):
        h = self.net.home("a")
        p = self.net.confab(h, "run", "--peer-timeout", "soon")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("--peer-timeout takes milliseconds", p.stderr)
        cases = [
            ("ping-interval = 100\npeer-timeout = soon\n",
             "config line 2: peer-timeout takes milliseconds"),
            ("\n\nwhat = 1\n", "config line 3: unknown key 'what'"),
            ("name\n", "config line 1: expected 'key = value'"),
            ("name = a\x1bb\n", "config line 1: a control character"),
            ("x" * 2000 + "\n", "config line 1: over 1024 bytes"),
            ("max-message = 99999999999999\n", "config line 1: max-message"),
            ("no-discovery = perhaps\n", "config line 1: no-discovery is "
             "true or false"),
        ]
        for text, want in cases:
            self.write_config(h, text)
            p = self.net.confab(h, "run", "--no-discovery")
            self.assertNotEqual(p.returncode, 0, (text, p.stderr))
            self.assertIn(want, p.stderr)
            self.assertTrue(p.stderr.startswith("confab: "), p.stderr)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        with open(os.path.join(h, "config"), "wb") as f:
            f.write(b"name = x\0y\n")
        p = self.net.confab(h, "run")
        self.assertIn("a NUL byte", p.stderr)
        with open(os.path.join(h, "config"), "wb") as f:
            f.write(b"# big\n" * 20000)
        p = self.net.confab(h, "run")
        self.assertIn("over 64 KiB", p.stderr)
        # --no-config reads none, --config FILE another.
        p = self.net.confab(h, "run", "--config",
                            os.path.join(h, "missing"))
        self.assertIn("cannot read the configuration file", p.stderr)


class Systemd(unittest.TestCase):
    def setUp(self):
        self.net = fhnodes.Net(CONFAB)

    def tearDown(self):
        self.net.close()

    def test_journald_lines_have_priorities_and_no_time(self):
        a = self.net.node("alice", env={"JOURNAL_STREAM": "auto"}).start()
        eve = self.net.node("eve", key=False)
        self.assertEqual(eve.run("init", "--private-network").returncode, 0)
        eve.start()
        self.assertTrue(a.out.wait_for("<4>confab warn: hearing beacons",
                                       15 * SCALE), a.out.text())
        logs = [l for l in a.out.text().splitlines()
                if not l.startswith("confab: ")]
        self.assertTrue(logs)
        for l in logs:
            self.assertRegex(l, r"^<[3-7]>confab (error|warn|info|debug): ")
        self.assertIn("<6>confab info: node ", a.out.text())
        # Not under journald: a time of its own, no prefix.
        self.assertRegex(eve.out.text(),
                         r"(?m)^\d\d:\d\d:\d\d\.\d{3} confab info: ")
        self.assertNotIn("<6>", eve.out.text())

    def test_ready_and_stopping_are_notified(self):
        path = os.path.join(self.net.tmp, "notify")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.bind(path)
            s.settimeout(15 * SCALE)
            a = self.net.node("alice", env={"NOTIFY_SOCKET": path})
            a.start()
            msg = s.recv(4096).decode()
            self.assertIn("READY=1", msg.splitlines())
            self.assertIn("STATUS=node alice on port", msg)
            # Ready means the control socket answers.
            self.assertEqual(a.run("status").returncode, 0)
            a.stop()
            self.assertIn("STOPPING=1", s.recv(4096).decode().splitlines())
        finally:
            s.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
