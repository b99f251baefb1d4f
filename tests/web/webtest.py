"""What the web tests share: `confab testnet --web` on 127.0.0.1 port 0,
its address read from what it says, and a clean stop."""
import os
import re
import signal
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
import harness  # noqa: E402

SCALE = float(os.environ.get("CONFAB_TEST_SCALE", "1"))
URL = re.compile(r"the page is at (http://127\.0\.0\.1:\d+)/")


class Testnet:
    """confab testnet --web=127.0.0.1:0 and the given arguments."""

    def __init__(self, confab, *args):
        self.out = harness.OutputPipe()
        try:
            self.proc = subprocess.Popen(
                [confab, "testnet", "--web=127.0.0.1:0"] + list(args),
                stdin=subprocess.DEVNULL, stdout=self.out.wfd,
                stderr=self.out.wfd)
        finally:
            self.out.spawned()
        if not self.out.wait_for("the page is at", 60 * SCALE):
            self.stop()
            raise AssertionError("testnet did not serve the page:\n" +
                                 self.out.text())
        self.url = URL.search(self.out.text()).group(1)
        self.port = int(self.url.rsplit(":", 1)[1])

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        """SIGTERM, as Ctrl-C would; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30 * SCALE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.out.join(5)
        return rc
