"""/metrics of a live `confab run --web` node: valid for Prometheus
(`promtool check metrics`), every counter of `confab status` in it under
its stable name, per-peer round trip and bytes; the page's /state; the
read-only default; and `confab monitor --json` streaming the control
socket's traffic events.

usage: test_metrics.py CONFAB"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
import harness  # noqa: E402

CONFAB = sys.argv[1]
SCALE = float(os.environ.get("CONFAB_TEST_SCALE", "1"))
WEB = re.compile(r"web page at (http://127\.0\.0\.1:\d+)/")
PORT = re.compile(r"links on port (\d+)")


class Node:
    def __init__(self, home, name, *args):
        self.home = home
        self.out = harness.OutputPipe()
        try:
            self.proc = subprocess.Popen(
                [CONFAB, "--home", home, "run", "--name", name,
                 "--no-discovery"] + list(args),
                stdin=subprocess.DEVNULL, stdout=self.out.wfd,
                stderr=self.out.wfd)
        finally:
            self.out.spawned()
        if not self.out.wait_for(harness.RUNNING, 20 * SCALE):
            self.stop()
            raise AssertionError("%s did not start:\n%s" %
                                 (name, self.out.text()))
        self.port = int(PORT.search(self.out.text()).group(1))
        m = WEB.search(self.out.text())
        self.url = m.group(1) if m else None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=30 * SCALE)
        self.out.join(5)
        return rc


def get(url, headers=None, method="GET"):
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10 * SCALE) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class TestMetrics(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="confab-web-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.a = Node(os.path.join(self.tmp, "a"), "a", "--web=127.0.0.1:0")
        self.addCleanup(self.a.stop)
        self.b = Node(os.path.join(self.tmp, "b"), "b", "--peer",
                      "127.0.0.1:%d" % self.a.port)
        self.addCleanup(self.b.stop)
        with harness.Watch(self.a.home, timeout=10 * SCALE) as w:
            w.until("a linked to b",
                    lambda: w.last_state(self.b_id()) == "up",
                    20 * SCALE)

    def b_id(self):
        p = subprocess.run([CONFAB, "--home", self.b.home, "id"],
                           capture_output=True, text=True)
        return p.stdout.split()[0]

    def test_metrics_valid_and_complete(self):
        # A round trip measured, so the per-peer gauge has a sample.
        subprocess.run([CONFAB, "--home", self.a.home, "ping", "b", "-c",
                        "1"], capture_output=True, timeout=20 * SCALE)
        status, text = get(self.a.url + "/metrics")
        self.assertEqual(status, 200)
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool: run scripts/dev deps")
        p = subprocess.run([promtool, "check", "metrics"], input=text,
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # Every counter `confab status` shows, under its stable name.
        st = subprocess.run([CONFAB, "--home", self.a.home, "--json",
                             "status"], capture_output=True, text=True)
        stats = json.loads(st.stdout)["counters"]
        self.assertGreater(len(stats), 10)
        for k in stats:
            self.assertRegex(text, r"(?m)^confab_%s(_total)?\{node=\"a\"\} "
                             % re.escape(k), k)
        self.assertRegex(text, r"(?m)^# TYPE confab_msgs_sent_total counter$")
        self.assertRegex(text, r"(?m)^# TYPE confab_peers_up gauge$")
        self.assertRegex(text, r"(?m)^confab_peers_up\{node=\"a\"\} 1$")
        m = re.search(r'(?m)^confab_peer_rtt_seconds\{node="a",peer="[0-9a-f]'
                      r'{16}",peer_name="b"\} ([0-9.]+)$', text)
        self.assertIsNotNone(m, "a's round trip to b")
        self.assertGreater(float(m.group(1)), 0)
        self.assertRegex(text, r'(?m)^confab_peer_bytes_sent_total\{node="a"'
                               r',.*peer_name="b"\} [1-9]')
        for q in ("peer_queued_bytes", "inbox_msgs", "outbox_msgs",
                  "web_sse_queued_bytes", "web_conns_refused_total"):
            self.assertRegex(text, r"(?m)^# HELP confab_%s " % q)

    def test_state_and_read_only(self):
        status, body = get(self.a.url + "/state")
        self.assertEqual(status, 200)
        s = json.loads(body)
        self.assertEqual(sorted(n["name"] for n in s["network"]["nodes"]),
                         ["a", "b"])
        self.assertEqual(len(s["network"]["links"]), 1)
        self.assertFalse(s["allow_send"])
        status, _ = get(self.a.url + "/api/send?kind=broadcast&body=x",
                        {"X-Confab": "1"}, "POST")
        self.assertEqual(status, 403, "the page is read-only by default")
        status, _ = get(self.a.url + "/", {"Host": "attacker.example"})
        self.assertEqual(status, 421, "a host name is refused (rebinding)")
        status, page = get(self.a.url + "/")
        self.assertEqual(status, 200)
        self.assertIn('<script src="/app.js">', page)
        self.assertNotRegex(page, r"https?://")

    def test_page_sends_only_when_allowed(self):
        c = Node(os.path.join(self.tmp, "c"), "c", "--web=127.0.0.1:0",
                 "--web-allow-send", "--peer", "127.0.0.1:%d" % self.a.port)
        try:
            with harness.Watch(self.a.home, ("peer", "traffic"),
                               10 * SCALE) as w:
                w.until("c linked to a", lambda: any(
                    e.get("ev") == "peer" and e.get("name") == "c" and
                    e.get("state") == "up" for e in w.seen), 20 * SCALE)
                url = c.url + "/api/send?kind=broadcast&body=from%20the%20page"
                status, _ = get(url, {}, "POST")
                self.assertEqual(status, 403, "no X-Confab: not the page")
                status, body = get(url, {"X-Confab": "1"}, "POST")
                self.assertEqual((status, body), (200, "sent\n"))
                m = w.until("the page's broadcast at a", lambda: [
                    e for e in w.seen if e.get("ev") == "traffic" and
                    e.get("what") == "msg"], 20 * SCALE)
                self.assertEqual(m[0]["kind"], "broadcast")
                self.assertEqual(m[0]["len"], len("from the page"))
            status, s = get(c.url + "/state")
            self.assertTrue(json.loads(s)["allow_send"])
        finally:
            self.assertEqual(c.stop(), 0)

    def test_monitor_streams_traffic(self):
        mon = subprocess.Popen([CONFAB, "--home", self.b.home, "--json",
                                "monitor", "--count", "1"],
                               stdout=subprocess.PIPE, text=True)
        try:
            # monitor says nothing once subscribed: a broadcast each turn
            # until it prints one keeps this free of a race.
            with harness.Watch(self.b.home, ("traffic",),
                               10 * SCALE) as w:
                subprocess.run([CONFAB, "--home", self.a.home, "broadcast",
                                "hello"], capture_output=True)
                w.until("b's traffic event",
                        lambda: any(e.get("what") == "msg"
                                    for e in w.seen), 20 * SCALE)
            deadline = time.monotonic() + 30 * SCALE
            while mon.poll() is None and time.monotonic() < deadline:
                subprocess.run([CONFAB, "--home", self.a.home, "broadcast",
                                "hello"], capture_output=True)
                try:
                    mon.wait(timeout=0.5 * SCALE)
                except subprocess.TimeoutExpired:
                    pass
            line = json.loads(mon.stdout.readline())
        finally:
            if mon.poll() is None:
                mon.kill()
            mon.wait()
            mon.stdout.close()
        self.assertEqual(mon.returncode, 0)
        self.assertEqual(line["ev"], "traffic")
        self.assertEqual(line["what"], "msg")
        self.assertEqual(line["kind"], "broadcast")
        self.assertEqual(line["len"], 5)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
