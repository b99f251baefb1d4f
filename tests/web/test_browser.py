"""Headless Chromium against `confab testnet --web --step` on 127.0.0.1:
the page draws the network, a click sends each of the four patterns, and
the DOM says which nodes got each: every node for the unicasts (one from
its neighbour), every other node for the broadcast, exactly the group's
members for the shout, exactly one member for the anycast. Screenshots go
to the build directory.

usage: test_browser.py CONFAB OUTDIR [NODES]"""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cdp  # noqa: E402
import webtest  # noqa: E402

CONFAB, OUTDIR = sys.argv[1], sys.argv[2]
NODES = int(sys.argv[3]) if len(sys.argv) > 3 else 5

GOT = ("[...document.querySelectorAll('.node')].filter(n => "
       "(n.dataset.got || '').split(' ').includes('%s'))"
       ".map(n => n.dataset.name).sort()")

# The page lights a node for 2.5 s after its packet lands, then lets it go
# dark, and a redraw (after a reload of /state) draws every node anew. So
# "all receivers lit" is a moment that a slow machine may never have: the
# first receivers go dark before the last light up (seen with 50 nodes at
# a load of 10 to 14). The test records instead each node that lights up,
# as it happens, from before the click: window.litSeen[kind] is the set of
# names that were lit with that kind at some moment.
WATCH_LIT = """
window.litSeen = window.litSeen || {};
if (!window.litWatch) {
  const seen = (n) => {
    for (const c of n.classList || [])
      if (c.startsWith('lit-') && n.dataset && n.dataset.name)
        (window.litSeen[c.slice(4)] = window.litSeen[c.slice(4)] ||
         new Set()).add(n.dataset.name);
  };
  window.litWatch = new MutationObserver((ms) => ms.forEach((m) => {
    seen(m.target);
    m.addedNodes.forEach((a) => { seen(a);
      if (a.querySelectorAll) a.querySelectorAll('.node').forEach(seen); });
  }));
  window.litWatch.observe(document.body,
                          {subtree: true, childList: true, attributes: true,
                           attributeFilter: ['class']});
}
true
"""
LIT = "[...(window.litSeen['%s'] || [])].sort()"

# A full mesh of NODES in one process takes longer the more links it has:
# 50 nodes (1225 links) took 33 s at a load of 18, 2 s on a quiet machine.
MESH_S = 60 + NODES


def names(nums):
    return sorted("n%d" % i for i in nums)


class TestBrowser(unittest.TestCase):
    def setUp(self):
        # The testnet's own deadline (the mesh, each pattern's messages)
        # scales as the test's do (CONFAB_TEST_SCALE: 4 under sanitizers).
        self.net = webtest.Testnet(CONFAB, "--nodes", str(NODES), "--seed",
                                   "15", "--step", "--timeout",
                                   str(int(120 * webtest.SCALE)))
        self.addCleanup(self.stop_net)
        self.browser = cdp.Browser()
        self.addCleanup(self.browser.quit)

    def stop_net(self):
        self.assertEqual(self.net.stop(), 0, self.net.out.text()[-3000:])

    def step(self, pattern):
        b = self.browser
        b.eval(WATCH_LIT)
        b.eval("document.getElementById('next').click()")
        b.wait("(document.getElementById('step').dataset.done || '')"
               ".split(' ').includes('%s')" % pattern, 60,
               "the %s pattern to arrive" % pattern)
        return b.eval(GOT % pattern)

    def test_patterns_light_the_right_nodes(self):
        b = self.browser
        links = NODES * (NODES - 1) // 2
        b.goto(self.net.url + "/")
        b.wait("document.getElementById('net').dataset.nodes === '%d' && "
               "document.getElementById('net').dataset.links === '%d' && "
               "document.getElementById('conn').dataset.state === 'live'" %
               (NODES, links), MESH_S, "the full mesh drawn, events live")
        self.assertFalse(b.eval("document.getElementById('stepbox').hidden"))
        # Each node is drawn once, as a circle with its name.
        self.assertEqual(b.eval("[...document.querySelectorAll('.node')]"
                                ".map(n => n.dataset.name).sort()"),
                         names(range(NODES)))

        self.assertEqual(self.step("unicast"), names(range(NODES)))

        got = self.step("broadcast")
        # Mid-broadcast: the packets fly from n0, the nodes light up.
        b.screenshot(os.path.join(OUTDIR, "web-%d-broadcast.png" % NODES))
        self.assertEqual(got, names(range(1, NODES)), "all but the sender")
        self.assertIn("broadcast", b.eval(
            "document.querySelector('.node[data-name=n0]').dataset.sent"))
        b.wait("(window.litSeen['broadcast'] || new Set()).size === %d"
               % (NODES - 1), 10, "every receiver lit")
        self.assertEqual(b.eval(LIT % "broadcast"), names(range(1, NODES)))
        b.screenshot(os.path.join(OUTDIR,
                                  "web-%d-broadcast-lit.png" % NODES))
        if NODES < 3:
            return

        members = names(range(1, NODES, 2))
        self.assertEqual(self.step("shout"), members,
                         "exactly the members of the group")
        # The page shows who is in the group (rings drawn from /state).
        b.wait("[...document.querySelectorAll('.node')].filter(n => "
               "n.dataset.groups === 'demo').length === %d" % len(members),
               10, "the members drawn with their group")

        got = self.step("anycast")
        self.assertEqual(len(got), 1, "exactly one member took it: %r" % got)
        self.assertIn(got[0], members)
        b.screenshot(os.path.join(OUTDIR, "web-%d-anycast.png" % NODES))


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
