#!/usr/bin/env python3
"""Routing across two networks (docs/PROTOCOL.md section 13): two bridges
with no route between them, alpha on one, bravo on the other, relay on
both (two interfaces). Each node runs `confab run` with its default
discovery (beacons to every interface's broadcast address, so relay's go
to both bridges). alpha and bravo never link (no IP route between the
bridges), yet:

- each learns the other through relay: `confab peers --json` lists it as
  routed, via relay, 2 hops;
- `confab send` from alpha to bravo is delivered (once, from alpha);
  `confab recv` on bravo says it was relayed over 2 hops (text and JSON),
  and a message from relay says it came direct (hops 1); `confab send
  --wait` on alpha says "(relayed, 2 hops)" (JSON hops 2), on relay hops 1;
- `confab trace bravo` on alpha shows alpha -> relay -> bravo, with
  relay's and bravo's addresses and a round trip per hop;
- relay never holds the plaintext: a marker unique to the body appears in
  nothing relay decrypts (every link message relay decrypts is appended to
  a file, CONFAB_DEBUG_RX_DUMP), stores or logs, while bravo's store holds
  it (so the search works).

The network never touches the host's own namespace (as test_netns.py:
both ends of every veth pair are born inside namespaces, addresses exist
only inside); namespaces cfbrt-<pid>-{sw,a,r,b} are deleted afterwards,
also on failure or a signal. Needs root and ip; else exits 77 (skipped),
or fails with CONFAB_NETNS_REQUIRED=1.

usage: test_netns_route.py CONFAB"""
import os
import random
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_netns as tn  # noqa: E402  (its helpers; CONFAB from argv)
from test_netns import Failed, Skip, Interrupted, say  # noqa: E402

PREFIX = "cfbrt-%d-" % os.getpid()
ROUTE_WITHIN = 30  # seconds: beacons, links, then two rounds of adverts


class Net2:
    """A switch namespace with two bridges (br1, br2) and no address:
    nothing routes between them. alpha on br1, bravo on br2, relay on
    both."""

    def __init__(self, ip):
        self.ip_cmd = ip
        self.made = []
        self.were_made = False
        k = random.randint(0, 255)
        self.nets = ("10.%d.1" % k, "10.%d.2" % k)
        self.sw = PREFIX + "sw"
        self.hosts = {h: PREFIX + h for h in ("a", "r", "b")}

    ip = tn.Net.ip
    host_links = tn.Net.host_links

    def add_ns(self, name):
        self.ip("netns", "add", name)
        self.made.append(name)
        self.were_made = True
        self.ip("link", "set", "lo", "up", ns=name)

    def plug(self, host, port, dev, bridge, addr):
        ns = self.hosts[host]
        p = self.ip("link", "add", port, "type", "veth", "peer", "name", dev,
                    "netns", ns, ns=self.sw, check=False)
        if p.returncode != 0:
            raise Skip("cannot make a veth pair in a namespace (%s)" %
                       p.stderr.strip())
        self.ip("link", "set", port, "master", bridge, ns=self.sw)
        self.ip("link", "set", port, "up", ns=self.sw)
        self.ip("addr", "add", addr + "/24", "brd", "+", "dev", dev, ns=ns)
        self.ip("link", "set", dev, "up", ns=ns)

    def setup(self):
        before = self.host_links()
        p = self.ip("netns", "add", self.sw, check=False)
        if p.returncode != 0:
            raise Skip("cannot make a network namespace (%s)" %
                       (p.stderr.strip() or "ip netns add failed"))
        self.made.append(self.sw)
        self.were_made = True
        p = self.ip("link", "set", "lo", "up", ns=self.sw, check=False)
        if p.returncode != 0:
            raise Skip("cannot run a command in a network namespace (%s)" %
                       (p.stderr.strip() or "ip -n failed"))
        for br in ("br1", "br2"):
            p = self.ip("link", "add", br, "type", "bridge", ns=self.sw,
                        check=False)
            if p.returncode != 0:
                raise Skip("cannot make a bridge in a namespace (%s)" %
                           p.stderr.strip())
            self.ip("link", "set", br, "up", ns=self.sw)
        for h in ("a", "r", "b"):
            self.add_ns(self.hosts[h])
        self.plug("a", "p-a", "eth0", "br1", self.nets[0] + ".1")
        self.plug("r", "p-r1", "eth0", "br1", self.nets[0] + ".2")
        self.plug("r", "p-r2", "eth1", "br2", self.nets[1] + ".2")
        self.plug("b", "p-b", "eth0", "br2", self.nets[1] + ".3")
        if self.host_links() != before:
            raise Failed("the host's own interfaces changed")
        say("network: br1 %s.0/24 (alpha .1, relay .2), br2 %s.0/24 (relay "
            ".2, bravo .3), no route between them; the host's own "
            "interfaces untouched" % self.nets)

    def teardown(self):
        names = set(self.made)
        p = self.ip("netns", "list", check=False)
        for line in p.stdout.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(PREFIX):
                names.add(name)
        left = []
        for name in sorted(names, key=lambda n: n == self.sw):
            p = self.ip("netns", "del", name, check=False)
            if p.returncode != 0:
                left.append("%s (%s)" % (name, p.stderr.strip()))
        self.made = []
        return left


def make_node(net, host, name, addr, tmp):
    n = tn.Node.__new__(tn.Node)
    n.net, n.i, n.ns, n.name = net, 0, net.hosts[host], name
    n.home = os.path.join(tmp, name)
    n.log = os.path.join(tmp, name + ".log")
    n.addr, n.proc, n.err, n.id = addr, None, None, None
    return n


def wait_for(what, fn, timeout):
    """Asks fn (each call runs `confab`, which takes its own time) until
    it returns something true, or fails at the deadline."""
    deadline = time.monotonic() + timeout * tn.SCALE
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
    raise Failed("timed out after %g s waiting for %s (last: %r)" %
                 (timeout * tn.SCALE, what, last))


def step_routes(a, r, b):
    for n in (a, r, b):
        n.wait_up()

    def routed(x, y):
        rows = x.json("peers")
        if any(q["id"] == y.id and q["state"] == "up" for q in rows):
            raise Failed("%s linked %s directly: %r" % (x.name, y.name, rows))
        ups = [q for q in rows if q["id"] == r.id and q["state"] == "up"]
        via = [q for q in rows if q["id"] == y.id and
               q["state"] == "routed" and q.get("via") == r.id and
               q.get("hops") == 2]
        return (ups and via) and rows
    wait_for("alpha to reach bravo through relay", lambda: routed(a, b),
             ROUTE_WITHIN)
    wait_for("bravo to reach alpha through relay", lambda: routed(b, a),
             ROUTE_WITHIN)
    say("routes: alpha and bravo are not linked; each lists the other as "
        "routed via relay, 2 hops (peers --json)")


def step_send(a, b, marker):
    b.drain()
    text = "sealed for bravo only %s" % marker
    sent = a.json("send", b.id, text)
    mid = sent[0]["id"]
    got = b.recv_until(mid, "alpha's unicast at bravo, through relay")
    got += b.drain()
    mine = [m for m in got if m["id"] == mid]
    if len(mine) != 1:
        raise Failed("bravo received it %d times" % len(mine))
    m = mine[0]
    if (m["from"], m["kind"], m.get("body")) != (a.id, "unicast", text):
        raise Failed("bravo received %r" % m)
    if m.get("hops") != 2:
        raise Failed("recv --json on bravo: hops %r, not 2 (relayed): %r" %
                     (m.get("hops"), m))
    say("send: alpha -> bravo through relay, received once, from alpha, "
        "hops 2 (recv --json)")


def step_hops_shown(a, r, b):
    """`confab recv` says a message was relayed and over how many hops;
    a direct one says neither."""
    b.drain()
    a.ok("send", b.id, "relayed to bravo")
    p = b.ok("recv", "--count", "1", "--timeout", "%g" % (15 * tn.SCALE))
    if "(unicast, relayed, 2 hops): relayed to bravo" not in p.stdout:
        raise Failed("confab recv on bravo printed, for a message through "
                     "relay:\n" + p.stdout)
    r.ok("send", b.id, "direct to bravo")
    p = b.ok("recv", "--count", "1", "--timeout", "%g" % (15 * tn.SCALE))
    if "(unicast): direct to bravo" not in p.stdout:
        raise Failed("confab recv on bravo printed, for a message from a "
                     "linked peer:\n" + p.stdout)
    mid = r.json("send", b.id, "direct json")[0]["id"]
    got = [m for m in b.recv_until(mid, "relay's unicast at bravo")
           if m["id"] == mid]
    if len(got) != 1 or got[0].get("hops") != 1:
        raise Failed("recv --json on bravo, a direct message: %r" % got)
    say("recv: a relayed message shows \"(unicast, relayed, 2 hops)\", a "
        "direct one \"(unicast)\" and hops 1 in JSON")


def step_wait_hops(a, r, b):
    """`confab send --wait` says a delivered message was relayed and over
    how many hops (the links its acknowledgement crossed back); a direct
    one says neither, and hops 1 in JSON."""
    wait = "%g" % (15 * tn.SCALE)
    p = a.ok("send", b.id, "waited through relay", "--wait", wait)
    if "(relayed, 2 hops)" not in p.stdout:
        raise Failed("send --wait on alpha, through relay, printed:\n" +
                     p.stdout)
    j = a.json("send", b.id, "waited json", "--wait", wait)[0]
    if (j.get("status"), j.get("hops")) != ("delivered", 2):
        raise Failed("send --wait --json on alpha, through relay: %r" % j)
    p = r.ok("send", b.id, "waited direct", "--wait", wait)
    if "delivered to" not in p.stdout or "relayed" in p.stdout:
        raise Failed("send --wait on relay, direct, printed:\n" + p.stdout)
    j = r.json("send", b.id, "waited direct json", "--wait", wait)[0]
    if (j.get("status"), j.get("hops")) != ("delivered", 1):
        raise Failed("send --wait --json on relay, direct: %r" % j)
    b.drain()
    say("send --wait: through relay \"(relayed, 2 hops)\" and hops 2 in "
        "JSON; direct hops 1")


def step_trace(a, r, b):
    hops = a.json("trace", b.id)
    if len(hops) != 2:
        raise Failed("trace bravo on alpha: %r" % hops)
    h1, h2 = hops
    if (h1["hop"], h1["id"], h1["name"]) != (1, r.id, "relay") or \
            not h1["address"].startswith(r.addr + ":") or \
            not h1["rtt_us"]:
        raise Failed("trace hop 1: %r" % h1)
    if (h2["hop"], h2["id"], h2["name"]) != (2, b.id, "bravo") or \
            not h2["address"].startswith(b.addr + ":") or \
            not h2["rtt_us"]:
        raise Failed("trace hop 2: %r" % h2)
    human = a.ok("trace", b.id).stdout
    lines = [l for l in human.splitlines() if l.strip()]
    if len(lines) != 3 or "relay" not in lines[1] or \
            "bravo" not in lines[2]:
        raise Failed("confab trace bravo on alpha printed:\n" + human)
    say("trace: alpha -> relay (%s, %d us) -> bravo (%s, %d us)" % (
        h1["address"], h1["rtt_us"], h2["address"], h2["rtt_us"]))
    say("trace, as a person sees it:\n" + human.rstrip())


def files_under(d):
    for root, _, names in os.walk(d):
        for name in names:
            yield os.path.join(root, name)


def holds(path, marker):
    try:
        with open(path, "rb") as f:
            return marker.encode() in f.read()
    except OSError:
        return False


def step_relay_blind(r, b, dump, marker):
    if not os.path.exists(dump) or os.path.getsize(dump) == 0:
        raise Failed("relay's dump of what it decrypts is empty")
    seen = [p for p in [dump, r.log] + list(files_under(r.home))
            if holds(p, marker)]
    if seen:
        raise Failed("relay holds the plaintext in %r" % seen)
    if not any(holds(p, marker) for p in files_under(b.home)):
        raise Failed("the marker is not in bravo's store either: the "
                     "search proves nothing")
    say("relay: the body's marker is in none of the %d bytes relay "
        "decrypted, nor in its log or its home; bravo's store has it" %
        os.path.getsize(dump))


def main():
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, tn.on_signal)
    net, nodes, tmp, failure, hurry, bad = None, [], None, None, False, []
    try:
        ip = tn.preflight()
        net = Net2(ip)
        net.setup()
        tmp = tempfile.mkdtemp(prefix="confab-netns-route-")
        a = make_node(net, "a", "alpha", net.nets[0] + ".1", tmp)
        r = make_node(net, "r", "relay", net.nets[0] + ".2", tmp)
        b = make_node(net, "b", "bravo", net.nets[1] + ".3", tmp)
        nodes = [a, r, b]
        tn.make_homes(nodes, tmp)
        dump = os.path.join(tmp, "relay.decrypted")
        for n in nodes:
            if n is r:
                os.environ["CONFAB_DEBUG_RX_DUMP"] = dump
            n.start()
            os.environ.pop("CONFAB_DEBUG_RX_DUMP", None)
        marker = "MARKER-%032x" % random.getrandbits(128)
        step_routes(a, r, b)
        step_send(a, b, marker)
        step_hops_shown(a, r, b)
        step_wait_hops(a, r, b)
        step_trace(a, r, b)
        bad = tn.stop(nodes)  # all written, before the search
        step_relay_blind(r, b, dump, marker)
    except Skip as e:
        failure = ("skip", str(e))
    except Failed as e:
        failure = ("fail", str(e))
    except Interrupted as e:
        failure = ("fail", "interrupted by " + str(e))
        hurry = True
    except Exception as e:  # a bug of the test itself; still clean up
        failure = ("fail", "%s: %s" % (type(e).__name__, e))
    finally:
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        left = []
        if hurry and net is not None:
            left = net.teardown()
        bad += tn.stop(nodes, hurry)
        if net is not None:
            left += net.teardown()
        if failure is not None and failure[0] == "fail":
            for n in nodes:
                say("--- %s's log (last lines) ---\n%s" % (
                    n.name, "\n".join(n.log_text().splitlines()[-40:])))
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if left:
        failure = ("fail", (failure or ("", ""))[1] +
                   "\nnamespaces not deleted: " + ", ".join(left))
    if bad and (failure is None or failure[0] != "fail"):
        failure = ("fail", "\n".join(bad))
    if failure is None:
        say("all routing netns checks passed in %.1f s" %
            (time.monotonic() - tn.T0))
        return 0
    kind, msg = failure
    if kind == "skip":
        if os.environ.get("CONFAB_NETNS_REQUIRED") == "1":
            print("FAIL: the netns test is required here but cannot run: " +
                  msg)
            return 1
        print("SKIP: " + msg)
        return tn.SKIP
    print("FAIL: " + msg)
    return 1


if __name__ == "__main__":
    sys.exit(main())
