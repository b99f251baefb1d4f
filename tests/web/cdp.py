"""A small client of the Chrome DevTools Protocol, over a WebSocket, in
Python's standard library only, to drive Debian's headless Chromium in the
web tests: start it, open a page, evaluate JavaScript, take screenshots.
Only loopback: Chromium listens on 127.0.0.1, every request it would make
elsewhere goes to a proxy that is not there, and its background
networking (updates, metrics, safe browsing) is off."""
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

SCALE = float(os.environ.get("CONFAB_TEST_SCALE", "1"))


def chromium_path():
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p:
            return p
    return None


class WebSocket:
    """RFC 6455, client side, text frames: enough for the DevTools
    protocol."""

    def __init__(self, host, port, path, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" % (path, host, port, key))
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the browser closed the WebSocket")
            head += chunk
        head, self.rest = head.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise ConnectionError("no WebSocket upgrade: %r" % head[:200])

    def _read(self, n):
        while len(self.rest) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("the browser closed the WebSocket")
            self.rest += chunk
        out, self.rest = self.rest[:n], self.rest[n:]
        return out

    def send(self, text):
        data = text.encode()
        head = bytes([0x81])
        n = len(data)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(head + mask + body)

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            if b1 & 0x80:
                mask = self._read(4)
                data = bytes(b ^ mask[i % 4] for i, b in
                             enumerate(self._read(n)))
            else:
                data = self._read(n)
            op = b0 & 0x0F
            if op == 0x8:
                raise ConnectionError("the browser closed the WebSocket")
            if op in (0x9, 0xA):
                continue  # ping, pong: DevTools sends none we must answer
            message += data
            if b0 & 0x80:
                return message.decode()

    def close(self):
        self.sock.close()


class Browser:
    """Headless Chromium with one page, driven by DevTools."""

    def __init__(self, width=1280, height=900):
        exe = chromium_path()
        if exe is None:
            raise RuntimeError("chromium is not installed: run scripts/dev "
                               "deps")
        self.dir = tempfile.mkdtemp(prefix="confab-chromium-")
        args = [exe, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--user-data-dir=" + self.dir,
                "--window-size=%d,%d" % (width, height),
                "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-extensions", "--disable-default-apps",
                "--disable-domain-reliability", "--no-pings",
                "--metrics-recording-only", "--mute-audio",
                "--disable-features=Translate,OptimizationHints,"
                "MediaRouter,DialMediaRouteProvider,AutofillServerCommunication",
                # Anything not loopback goes to a proxy that is not there.
                "--proxy-server=http://127.0.0.1:9",
                "about:blank"]
        self.log = open(os.path.join(self.dir, "chromium.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        port_file = os.path.join(self.dir, "DevToolsActivePort")
        deadline = time.monotonic() + 30 * SCALE
        lines = []
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("chromium exited: " + self.log_text())
            if os.path.exists(port_file):
                with open(port_file) as f:
                    lines = f.read().split()
                if len(lines) >= 2:
                    break
            time.sleep(0.05)  # polling a file Chromium writes, bounded
        if len(lines) < 2:
            self.quit()
            raise RuntimeError("chromium did not start its DevTools server")
        self.ws = WebSocket("127.0.0.1", int(lines[0]), lines[1],
                            30 * SCALE)
        self.next_id = 0
        target = self.call("Target.createTarget", {"url": "about:blank"})
        att = self.call("Target.attachToTarget",
                        {"targetId": target["targetId"], "flatten": True})
        self.session = att["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Runtime.enable", session=True)

    def log_text(self):
        self.log.flush()
        with open(os.path.join(self.dir, "chromium.log"), "rb") as f:
            return f.read().decode(errors="replace")[-2000:]

    def call(self, method, params=None, session=False):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError("%s: %s" % (method, reply["error"]))
                return reply.get("result", {})

    def goto(self, url):
        self.call("Page.navigate", {"url": url}, session=True)

    def eval(self, expr):
        r = self.call("Runtime.evaluate",
                      {"expression": expr, "returnByValue": True,
                       "awaitPromise": True}, session=True)
        if "exceptionDetails" in r:
            raise RuntimeError("JavaScript failed: %s: %s" %
                               (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def wait(self, expr, timeout, what):
        """Evaluates expr until it is true (returns its value) or the
        deadline passes (raises, saying what it waited for)."""
        deadline = time.monotonic() + timeout * SCALE
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.eval(expr)
            except RuntimeError as e:  # the page is still loading
                last = e
            if last and not isinstance(last, RuntimeError):
                return last
            time.sleep(0.05)  # the page changes on its own; poll it
        raise AssertionError("timed out waiting for %s (last: %r)" %
                             (what, last))

    def screenshot(self, path):
        r = self.call("Page.captureScreenshot", {"format": "png"},
                      session=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))

    def quit(self):
        try:
            if hasattr(self, "ws"):
                self.call("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10 * SCALE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
