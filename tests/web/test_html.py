"""`confab testnet --html FILE` writes one self-contained HTML file (the
network as an inline SVG, no script, nothing fetched) that opens in
headless Chromium and shows the same network: its node and link counts.

usage: test_html.py CONFAB OUTDIR"""
import os
import re
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cdp  # noqa: E402

CONFAB, OUTDIR = sys.argv[1], sys.argv[2]
SCALE = cdp.SCALE


class TestHtml(unittest.TestCase):
    def test_report_shows_the_network(self):
        nodes = 7
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "report.html")
            p = subprocess.run([CONFAB, "testnet", "--nodes", str(nodes),
                                "--seed", "9", "--html", path],
                               capture_output=True, text=True,
                               timeout=120 * SCALE)
            self.assertEqual(p.returncode, 0, p.stderr)
            html = open(path, encoding="utf-8").read()
            # Self-contained: no script, no reference to anything outside.
            self.assertNotIn("<script", html)
            self.assertIsNone(re.search(r"(src|href)\s*=", html))
            self.assertEqual(re.findall(r"https?://[^\"' ]+", html),
                             ["http://www.w3.org/2000/svg"])
            b = cdp.Browser()
            try:
                b.goto("file://" + path)
                b.wait("document.readyState === 'complete' && "
                       "document.querySelector('svg#net') !== null", 30,
                       "the report to load")
                links = nodes * (nodes - 1) // 2
                self.assertEqual(b.eval(
                    "document.querySelectorAll('svg#net .node').length"),
                    nodes)
                self.assertEqual(b.eval(
                    "document.querySelectorAll('svg#net line.link').length"),
                    links)
                self.assertEqual(b.eval(
                    "[...document.querySelectorAll('svg#net .node')]"
                    ".map(n => n.dataset.name).sort()"),
                    sorted("n%d" % i for i in range(nodes)))
                # The odd nodes are drawn in the group.
                self.assertEqual(b.eval(
                    "document.querySelectorAll('svg#net .node circle.ring')"
                    ".length"), nodes // 2)
                text = b.eval("document.getElementById('report').innerText")
                self.assertIn("messages sent 17, delivered 17, lost 0", text)
                # Drawn, not just present: the SVG has a size on screen.
                self.assertGreater(b.eval(
                    "document.getElementById('net').getBoundingClientRect()"
                    ".width"), 300)
                b.screenshot(os.path.join(OUTDIR, "web-report.png"))
            finally:
                b.quit()


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
