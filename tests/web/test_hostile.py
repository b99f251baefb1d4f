"""Hostile HTTP input against `confab testnet --web`: oversized headers, a
request line of 1 MiB, 1,000 idle connections, an event-stream client
that never reads. Each is met at its bound and counted (/metrics), the
page keeps answering other addresses, the nodes keep serving their peers
(no link goes down, every pattern still arrives), and the process's
memory stays bounded.

usage: test_hostile.py CONFAB"""
import os
import re
import resource
import socket
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import webtest  # noqa: E402

CONFAB = sys.argv[1]
SCALE = webtest.SCALE
NODES = 12
SSE_MAX = 16384
PATTERNS = ("unicast", "broadcast", "shout", "anycast")


def connect(port, src="127.0.0.1", rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((src, 0))
    s.settimeout(10 * SCALE)
    s.connect(("127.0.0.1", port))
    return s


def request(port, method, path, src="127.0.0.1", headers=""):
    """One request on its own connection; returns (status, body)."""
    s = connect(port, src)
    try:
        s.sendall(("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s"
                   "Connection: close\r\n\r\n" % (method, path, port,
                                                  headers)).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode(errors="replace")


def metric(port, name, src="127.0.0.2"):
    _, text = request(port, "GET", "/metrics", src)
    return sum(float(v) for v in re.findall(
        r"(?m)^confab_%s(?:\{[^}]*\})? ([0-9.e+]+)$" % name, text))


class Events:
    """A reading event-stream client (from 127.0.0.3): collects the step
    notes."""

    def __init__(self, port):
        self.s = connect(port, "127.0.0.3")
        self.s.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        self.buf = b""
        self.cond = threading.Condition()
        self.t = threading.Thread(target=self.read, daemon=True)
        self.t.start()

    def read(self):
        self.s.settimeout(None)
        while True:
            try:
                chunk = self.s.recv(65536)
            except OSError:
                chunk = b""
            with self.cond:
                self.buf += chunk
                self.cond.notify_all()
            if not chunk:
                return

    def count(self, what):
        with self.cond:
            return self.buf.count(what.encode())

    def wait_count(self, what, n, timeout):
        with self.cond:
            ok = self.cond.wait_for(
                lambda: self.buf.count(what.encode()) >= n, timeout)
            return ok

    def close(self):
        self.s.close()


class TestHostile(unittest.TestCase):
    def setUp(self):
        self.net = webtest.Testnet(CONFAB, "--nodes", str(NODES), "--seed",
                                   "21", "--step", "--timeout", "120",
                                   "--web-sse-max", str(SSE_MAX))
        self.addCleanup(self.stop_net)
        self.port = self.net.port
        self.ev = Events(self.port)
        self.addCleanup(self.ev.close)
        self.rounds = 0

    def stop_net(self):
        self.assertEqual(self.net.stop(), 0, self.net.out.text()[-3000:])

    def round(self, src="127.0.0.2"):
        """The four patterns, each asked for by a POST from src and waited
        for on the reading event stream: the nodes serve their peers."""
        for p in PATTERNS:
            want = self.ev.count('"pattern":"%s","state":"done"' % p) + 1
            status, _ = request(self.port, "POST", "/api/step", src,
                                "X-Confab: 1\r\n")
            self.assertEqual(status, 200)
            self.assertTrue(self.ev.wait_count(
                '"pattern":"%s","state":"done"' % p, want, 60 * SCALE),
                "%s arrived in time" % p)
        self.rounds += 1
        self.assertEqual(self.ev.count('"state":"late"'), 0,
                         "every message arrived")

    def test_hostile_http_keeps_the_network_serving(self):
        self.round()
        base_kib = self.net.rss_kib()

        # An event-stream client that never reads: its queue reaches the
        # bound and it is cut, while the patterns go on.
        slow = connect(self.port, "127.0.0.4", rcvbuf=1024)
        slow.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        for _ in range(200):
            self.round()
            if metric(self.port, "web_sse_cut_total") >= 1:
                break
        self.assertEqual(metric(self.port, "web_sse_cut_total"), 1)
        self.assertLessEqual(metric(self.port, "web_sse_queued_bytes"),
                             2 * SSE_MAX)
        slow.close()

        # Oversized headers, and a request line of 1 MiB: refused before
        # they are read whole, and counted.
        cut0 = metric(self.port, "web_conns_cut_total")
        s = connect(self.port)
        pad = "".join("X-Pad-%d: %s\r\n" % (i, "a" * 1000)
                      for i in range(64))
        try:
            s.sendall(("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" %
                       pad).encode())
            answer = s.recv(4096)
        except (BrokenPipeError, ConnectionResetError):
            answer = b""
        s.close()
        if answer:
            self.assertRegex(answer.split(b"\r\n")[0], rb" 4\d\d ")
        s = connect(self.port)
        try:
            s.sendall(b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\n\r\n")
            answer = s.recv(4096)
        except (BrokenPipeError, ConnectionResetError):
            answer = b""
        s.close()
        if answer:
            self.assertRegex(answer.split(b"\r\n")[0], rb" 4\d\d ")
        self.assertGreaterEqual(metric(self.port, "web_conns_cut_total"),
                                cut0 + 2)

        # 1,000 idle connections from one address: it gets its share, the
        # rest are refused and counted; another address is still served,
        # and so are the peers.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < 1200:
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (min(1200, hard), hard))
        idle = []
        try:
            for _ in range(1000):
                idle.append(connect(self.port, "127.0.0.5"))
            self.round(src="127.0.0.6")
            refused = metric(self.port, "web_conns_refused_total")
            self.assertGreaterEqual(refused, 1000 - 16)
            self.assertLessEqual(metric(self.port, "web_connections"), 64)
        finally:
            for s in idle:
                s.close()

        # No link went down through all of it, and memory stayed bounded.
        self.assertEqual(metric(self.port, "peers_up"), NODES * (NODES - 1))
        self.assertEqual(metric(self.port, "peer_up"), NODES * (NODES - 1))
        grown = self.net.rss_kib() - base_kib
        for m in ("web_sse_cut_total", "web_conns_cut_total",
                  "web_conns_refused_total", "web_requests_total"):
            print("%s %d" % (m, metric(self.port, m)), file=sys.stderr)
        print("rounds %d, RSS %d KiB, grew %d KiB" %
              (self.rounds, self.net.rss_kib(), grown), file=sys.stderr)
        self.assertLess(grown, 32 * 1024,
                        "RSS grew %d KiB under hostile HTTP" % grown)
        self.round()


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
