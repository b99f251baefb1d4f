#!/usr/bin/env python3
"""Discovery on every interface, IPv4 and IPv6 (issue #16), across network
namespaces made here and deleted afterwards, one `confab run` per host
namespace with its default discovery, driven through the command line as
test_netns.py does (whose helpers this reuses):

1. IPv6 only: three hosts on a bridge with no IPv4 address anywhere (not
   even 127.0.0.1 on lo; the control socket is a Unix socket): they find
   each other by the IPv6 beacon group, link over link-local addresses, and
   unicast, broadcast and shout work; a fourth node beside one of them, in
   the same namespace, links to all three. Then two nodes alone in one
   namespace (IPv6 only) find each other through the multicast loop.
2. Dual stack: the same three with IPv4 and IPv6 on the bridge: they hear
   each other's beacons twice (broadcast and multicast) and still open
   exactly one TCP connection per pair, and no duplicate link.
3. Two bridges: a hub with one interface on each links to a node on each;
   it does not tell either of them the other's link-local address (which
   they could not use: peers_addr_withheld). Again with the hub's second
   interface made only after it runs: it is followed without a restart.
4. --interface: the hub run with `--interface eth0` beacons on eth0 (a
   listener on that bridge hears IPv4 and IPv6 beacons) and not on eth1 (a
   listener on the other bridge, open all that time, hears none).

Addresses exist only inside the namespaces (fd47:<random>::/64, 10.47.x/24
and link-local). Namespaces are named cfb6-<pid>-*, and deleted also on
failure or on a signal. Without root or ip it exits 77 (skipped), or fails
with CONFAB_NETNS_REQUIRED=1.

usage: test_netns6.py CONFAB"""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_netns as tn  # noqa: E402
from test_netns import Failed, Skip, say  # noqa: E402

PREFIX = "cfb6-%d-" % os.getpid()
NS_RE = re.compile(r"^cfb6-(\d+)-\w+$")
GROUP6 = "ff02::636f:6e66:6162"
DISCOVERY_PORT = 47474


class Net6:
    """Switch namespaces with one bridge each, and host namespaces with a
    veth into them. Nothing is made in the host's own namespace."""

    def __init__(self, ip, ipv4):
        self.ip_cmd = ip
        self.ipv4 = ipv4
        self.made = []
        self.were_made = False
        self.ula = "fd47:%x:%x:" % (random.randint(0, 0xffff),
                                    random.randint(0, 0xffff))
        self.v4 = "10.%d" % random.randint(0, 255)
        self.count = 0
        self.lans = {}  # switch namespace -> its number (its subnets)

    ip = tn.Net.ip

    def ns(self, name):
        full = PREFIX + name
        p = self.ip("netns", "add", full, check=False)
        if p.returncode != 0:
            raise Skip("cannot make a network namespace (%s)" %
                       (p.stderr.strip() or "ip netns add failed"))
        self.made.append(full)
        self.were_made = True
        p = self.ip("link", "set", "lo", "up", ns=full, check=False)
        if p.returncode != 0:
            raise Skip("cannot run a command in a network namespace (%s)" %
                       (p.stderr.strip() or "ip -n failed"))
        # Addresses usable at once: no duplicate address detection.
        for k in ("all", "default"):
            self.sysctl(full, "net.ipv6.conf.%s.accept_dad=0" % k)
        if not self.ipv4:
            # No IPv4 at all: not even loopback's.
            self.ip("addr", "del", "127.0.0.1/8", "dev", "lo", ns=full,
                    check=False)
        return full

    def sysctl(self, ns, setting):
        p = subprocess.run([self.ip_cmd, "netns", "exec", ns, "sysctl", "-qw",
                            setting], capture_output=True, text=True,
                           timeout=30)
        if p.returncode != 0:
            raise Skip("cannot set %s in a namespace (%s)" % (
                setting, p.stderr.strip()))

    def bridge(self, name):
        sw = self.ns(name)
        p = self.ip("link", "add", "br0", "type", "bridge", ns=sw,
                    check=False)
        if p.returncode != 0:
            raise Skip("cannot make a bridge in a namespace (%s)" %
                       p.stderr.strip())
        self.ip("link", "set", "br0", "up", ns=sw)
        self.lans[sw] = len(self.lans)
        return sw

    def plug(self, sw, host, ifname, ula=True):
        """A veth from bridge sw to host (named ifname there), with a ULA
        (unless not ula: link-local only) and an IPv4 address on a
        dual-stack network, in subnets of that bridge's own; returns
        them."""
        self.count += 1
        port = "p%d" % self.count
        p = self.ip("link", "add", port, "type", "veth", "peer", "name",
                    ifname, "netns", host, ns=sw, check=False)
        if p.returncode != 0:
            raise Skip("cannot make a veth pair in a namespace (%s)" %
                       p.stderr.strip())
        self.ip("link", "set", port, "master", "br0", ns=sw)
        self.ip("link", "set", port, "up", ns=sw)
        lan = self.lans[sw]
        addrs = []
        if ula:
            addrs.append("%s%x::%d" % (self.ula, lan, self.count))
            self.ip("addr", "add", addrs[-1] + "/64", "dev", ifname, "nodad",
                    ns=host)
        if self.ipv4:
            addrs.append("%s.%d.%d" % (self.v4, lan, self.count))
            self.ip("addr", "add", addrs[-1] + "/24", "brd", "+", "dev",
                    ifname, ns=host)
        self.ip("link", "set", ifname, "up", ns=host)
        return addrs

    def link_local(self, host, ifname):
        out = self.ip("-6", "-o", "addr", "show", "dev", ifname, "scope",
                      "link", ns=host).stdout
        m = re.search(r"inet6 (fe80::[0-9a-f:]+)/", out)
        if not m:
            raise Failed("no link-local address on %s in %s" % (ifname, host))
        return m.group(1)

    def no_ipv4_anywhere(self):
        for ns in self.made:
            out = self.ip("-4", "-o", "addr", "show", ns=ns).stdout.strip()
            if out:
                raise Failed("an IPv4 address in %s: %s" % (ns, out))

    def teardown(self):
        names = set(self.made)
        p = self.ip("netns", "list", check=False)
        for line in p.stdout.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(PREFIX):
                names.add(name)
        left = []
        # Hosts first, then the switches.
        for name in sorted(names, key=lambda n: "-sw" in n):
            p = self.ip("netns", "del", name, check=False)
            if p.returncode != 0:
                left.append("%s (%s)" % (name, p.stderr.strip()))
        self.made = []
        return left


class Node6(tn.Node):
    def __init__(self, net, ns, name, tmp, addrs, args=()):
        self.net, self.i = net, 0
        self.ns = ns
        self.name = name
        self.home = os.path.join(tmp, name)
        self.log = os.path.join(tmp, name + ".log")
        self.addrs = set(addrs)  # every address peers may see it at
        self.addr = None
        self.args = list(args)
        self.proc = None
        self.err = None
        self.id = None

    def start(self):
        import harness
        self.err = harness.OutputPipe(self.log)
        try:
            self.proc = subprocess.Popen(
                self.cmd("run", "--name", self.name, "--beacon-interval",
                         "200", *self.args),
                stdin=subprocess.DEVNULL, stdout=self.err.wfd,
                stderr=self.err.wfd)
        finally:
            self.err.spawned()

    def counters(self):
        return self.json("status")[0]["counters"]


def join_network(n, like):
    """An identity for n, with the network key of node like."""
    p = subprocess.run([tn.CONFAB, "--home", n.home, "init", "--name",
                        n.name, "--json"], capture_output=True, text=True,
                       timeout=30)
    if p.returncode != 0:
        raise Failed("confab init: " + p.stderr)
    n.id = json.loads(p.stdout)["id"]
    shutil.copy(os.path.join(like.home, "network.key"), n.home)
    os.chmod(os.path.join(n.home, "network.key"), 0o600)


def host_of(address):
    """'[fe80::1%eth0]:4000' -> 'fe80::1', '10.0.0.1:4000' -> '10.0.0.1'."""
    host = address.rsplit(":", 1)[0]
    return host[1:-1].split("%")[0] if host.startswith("[") else host


def wait_linked(nodes, pairs, what, timeout=20):
    """Blocks (on the nodes' peer events) until each (a, b) of pairs has b
    up at a; checks that a sees b at one of b's addresses."""
    seen = {}

    def all_up():
        for a, b in pairs:
            seen[a.name] = st = a.states()
            if st.get(b.name) != "up":
                return False
        return True
    for n in nodes:
        n.wait_up()
    with tn.Events(nodes) as evs:
        evs.until(what, all_up, timeout=timeout, show=lambda: seen)
    for a, b in pairs:
        q = a.peers()[b.name]
        if q["id"] != b.id:
            raise Failed("%s sees %s with id %s, not %s" % (
                a.name, b.name, q["id"], b.id))
        if host_of(q["address"]) not in b.addrs:
            raise Failed("%s sees %s at %s, none of its addresses %s" % (
                a.name, b.name, q["address"], sorted(b.addrs)))


def all_pairs(nodes):
    return [(a, b) for a in nodes for b in nodes if a is not b]


def established(net, ns):
    out = subprocess.run([net.ip_cmd, "netns", "exec", ns, "ss", "-Htn",
                          "state", "established"], capture_output=True,
                         text=True, timeout=30).stdout
    return [l for l in out.splitlines() if l.strip()]


# ---- the scenarios -------------------------------------------------------


def three_on_a_bridge(ip, tmp, ipv4):
    net = Net6(ip, ipv4)
    nodes = []
    try:
        sw = net.bridge("sw")
        for i, name in enumerate(tn.NAMES):
            host = net.ns(name[0])
            addrs = net.plug(sw, host, "eth0")
            addrs.append(net.link_local(host, "eth0"))
            nodes.append(Node6(net, host, name, tmp, addrs))
        if not ipv4:
            net.no_ipv4_anywhere()
        kind = "dual-stack" if ipv4 else "IPv6-only (no IPv4 address)"
        say("network: three hosts on a %s bridge" % kind)
        tn.make_homes(nodes, tmp)
        for n in nodes:
            n.start()
        wait_linked(nodes, all_pairs(nodes),
                    "each node to see the other two up (%s)" % kind)
        for n in nodes:
            for q in n.peers().values():
                h = host_of(q["address"])
                if not ipv4 and ":" not in h:
                    raise Failed("%s sees a peer at %s on an IPv6-only "
                                 "network" % (n.name, q["address"]))
        say("discovery (%s): each node sees the other two up at their "
            "addresses: %s" % (kind, ", ".join(
                "%s->%s" % (n.name, q["address"]) for n in nodes[:1]
                for q in n.peers().values())))
        if ipv4:
            one_link_per_pair(net, nodes)
        else:
            tn.step_unicast(nodes)
            tn.step_broadcast(nodes)
            tn.step_shout(nodes)
            # A fourth node in alpha's namespace: it hears the others'
            # beacons and alpha's own through the multicast loop.
            d = Node6(net, nodes[0].ns, "delta", tmp, nodes[0].addrs)
            join_network(d, nodes[0])
            nodes.append(d)
            d.start()
            wait_linked(nodes, [(d, n) for n in nodes[:3]] +
                        [(n, d) for n in nodes[:3]],
                        "delta, beside alpha in one namespace, to link to "
                        "all three")
            say("a fourth node beside alpha in its namespace links to all "
                "three")
            net.no_ipv4_anywhere()
        return nodes, net, None
    except BaseException as e:
        return nodes, net, e


def one_namespace(ip, tmp):
    """Two nodes in one IPv6-only namespace, nobody else on the link: each
    hears the other's beacons only through the multicast loop."""
    net = Net6(ip, False)
    nodes = []
    try:
        sw = net.bridge("sw")
        host = net.ns("solo")
        addrs = net.plug(sw, host, "eth0", ula=False)
        addrs.append(net.link_local(host, "eth0"))
        nodes = [Node6(net, host, "one", tmp, addrs),
                 Node6(net, host, "two", tmp, addrs)]
        tn.make_homes(nodes, tmp)
        for n in nodes:
            n.start()
        wait_linked(nodes, all_pairs(nodes),
                    "two nodes in one namespace to link")
        if nodes[0].counters()["beacons6_received"] == 0:
            raise Failed("one linked without hearing an IPv6 beacon")
        say("one namespace: two nodes hear each other over the multicast "
            "loop and link (%s)" % nodes[0].peers()["two"]["address"])
        return nodes, net, None
    except BaseException as e:
        return nodes, net, e


def one_link_per_pair(net, nodes):
    """Every node has heard each other's beacons over both families, and
    there is one established TCP connection per pair, and no duplicate."""
    for n in nodes:
        st = n.counters()
        if not 0 < st["beacons6_received"] < st["beacons_received"]:
            raise Failed("%s has not heard beacons over both families "
                         "(%d over IPv6 of %d)" % (
                             n.name, st["beacons6_received"],
                             st["beacons_received"]))
        if st.get("duplicate_links", 0) != 0:
            raise Failed("%s counted %d duplicate links" % (
                n.name, st["duplicate_links"]))
        conns = established(net, n.ns)
        if len(conns) != 2:
            raise Failed("%s has %d established TCP connections, not 2 "
                         "(one per peer):\n%s" % (n.name, len(conns),
                                                  "\n".join(conns)))
    say("dual stack: beacons heard over IPv4 and IPv6, one TCP connection "
        "per pair (2 in each namespace), no duplicate link")


LISTENER = r"""
import socket, struct, sys, select, time
ifname, port, count, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s6.bind(("::", port))
idx = socket.if_nametoindex(ifname)
s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
              socket.inet_pton(socket.AF_INET6, sys.argv[5]) + struct.pack("@I", idx))
s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s4.bind(("0.0.0.0", port))
print("listening", flush=True)
got = {4: 0, 6: 0}
end = time.monotonic() + timeout
while got[4] < count or got[6] < count:
    left = end - time.monotonic()
    if left <= 0:
        break
    r, _, _ = select.select([s4, s6], [], [], left)
    for s in r:
        data, src = s.recvfrom(2048)
        fam = 6 if s is s6 else 4
        got[fam] += 1
        print("beacon v%d from %s (%d bytes)" % (fam, src[0], len(data)), flush=True)
print("done v4=%d v6=%d" % (got[4], got[6]), flush=True)
"""


def listener(net, ns, ifname, count, timeout):
    p = subprocess.Popen([net.ip_cmd, "netns", "exec", ns, "/usr/bin/python3",
                          "-c", LISTENER, ifname, str(DISCOVERY_PORT),
                          str(count), str(timeout), GROUP6],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    line = p.stdout.readline()
    if line.strip() != "listening":
        raise Failed("the listener in %s did not start: %s %s" % (
            ns, line, p.stderr.read()))
    return p


def two_bridges(ip, tmp, interface_only, late_eth1=False):
    """A hub on two bridges (eth0, eth1), a node on each: IPv6 with
    link-local addresses only, so that the two sides have nothing they
    could use of each other's. With interface_only (dual stack, with
    ULAs), the hub runs with --interface eth0 and the other bridge's host
    only listens. With late_eth1, the hub's eth1 is made only once the
    hub runs and has linked to left: it must join the group there and
    beacon on it without a restart."""
    net = Net6(ip, interface_only)
    ula = interface_only
    nodes = []
    try:
        sw0, sw1 = net.bridge("sw0"), net.bridge("sw1")
        hub = net.ns("hub")
        left, right = net.ns("left"), net.ns("right")
        hub_addrs = net.plug(sw0, hub, "eth0", ula)
        hub_addrs.append(net.link_local(hub, "eth0"))
        if not late_eth1:
            hub_addrs += net.plug(sw1, hub, "eth1", ula)
            hub_addrs.append(net.link_local(hub, "eth1"))
        l_addrs = net.plug(sw0, left, "eth0", ula) + [
            net.link_local(left, "eth0")]
        r_addrs = net.plug(sw1, right, "eth0", ula) + [
            net.link_local(right, "eth0")]
        if interface_only:
            return interface_check(net, tmp, hub, left, right, hub_addrs)
        h = Node6(net, hub, "hub", tmp, hub_addrs)
        a = Node6(net, left, "left", tmp, l_addrs)
        b = Node6(net, right, "right", tmp, r_addrs)
        nodes = [h, a, b]
        tn.make_homes(nodes, tmp)
        for n in nodes:
            n.start()
        if late_eth1:
            wait_linked(nodes, [(h, a), (a, h)], "the hub to link to left")
            if "right" in h.peers():
                raise Failed("the hub knows right before it has eth1")
            h.addrs.update(net.plug(sw1, hub, "eth1", ula))
            h.addrs.add(net.link_local(hub, "eth1"))
            say("interfaces that come: the hub linked to left; now it gets "
                "eth1, on right's bridge")
        wait_linked(nodes, [(h, a), (h, b), (a, h), (b, h)],
                    "the hub to link to a node on each bridge")
        say("two bridges: the hub links to left (%s) and right (%s)" % (
            h.peers()["left"]["address"], h.peers()["right"]["address"]))
        # left and right cannot reach each other: the hub must not tell
        # either the other's link-local address (on another link).
        with tn.Events(nodes) as evs:
            evs.until("the hub to withhold both link-local addresses",
                      lambda: h.counters()["peers_addr_withheld"] >= 2,
                      timeout=10, show=h.counters)
        for n in (a, b):
            far = "right" if n is a else "left"
            if far in n.peers():
                raise Failed("%s learned of %s (%s) from the hub" % (
                    n.name, far, n.peers()[far]))
        say("two bridges: the hub withheld each side's link-local address "
            "from the other (peers_addr_withheld %d); neither learned of "
            "the other" % h.counters()["peers_addr_withheld"])
        return nodes, net, None
    except BaseException as e:
        return nodes, net, e


def interface_check(net, tmp, hub, left, right, hub_addrs):
    h = Node6(net, hub, "hub", tmp, hub_addrs, ["--interface", "eth0"])
    nodes = [h]
    tn.make_homes(nodes, tmp)
    # Both listeners open before the hub starts: the far one hears all the
    # time the near one needs to hear 5 beacons of each family.
    far = listener(net, right, "eth0", 1, 60 * tn.SCALE)
    near = listener(net, left, "eth0", 5, 20 * tn.SCALE)
    try:
        h.start()
        h.wait_up()
        out, _ = near.communicate(timeout=30 * tn.SCALE)
        done = out.strip().splitlines()[-1]
        if done != "done v4=5 v6=5":
            raise Failed("the listener on eth0's bridge did not hear the "
                         "hub's beacons: %s" % out)
        far.send_signal(signal.SIGINT)
        out_far, _ = far.communicate(timeout=10)
        if "beacon" in out_far:
            raise Failed("the hub, run with --interface eth0, beaconed on "
                         "eth1:\n%s" % out_far)
        say("--interface eth0: 5 IPv4 and 5 IPv6 beacons heard on eth0's "
            "bridge, none on eth1's in that time")
        return nodes, net, None
    except BaseException as e:
        return nodes, net, e
    finally:
        for p in (near, far):
            if p.poll() is None:
                p.kill()
                p.wait()


def sweep_dead_runs(ip):
    p = subprocess.run([ip, "netns", "list"], capture_output=True, text=True,
                       timeout=30)
    for line in p.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = NS_RE.match(name)
        if not m or int(m.group(1)) == os.getpid():
            continue
        if os.path.exists("/proc/%s" % m.group(1)):
            continue
        if subprocess.run([ip, "netns", "pids", name], capture_output=True,
                          text=True, timeout=30).stdout.split():
            continue
        subprocess.run([ip, "netns", "del", name], capture_output=True,
                       timeout=30)
        say("deleted %s, left over by a run that was killed" % name)


def main():
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, tn.on_signal)
    failure = None
    scenarios = [
        ("IPv6 only", lambda ip, tmp: three_on_a_bridge(ip, tmp, False)),
        ("one namespace", one_namespace),
        ("dual stack", lambda ip, tmp: three_on_a_bridge(ip, tmp, True)),
        ("two bridges", lambda ip, tmp: two_bridges(ip, tmp, False)),
        ("--interface", lambda ip, tmp: two_bridges(ip, tmp, True)),
        ("an interface that comes",
         lambda ip, tmp: two_bridges(ip, tmp, False, True)),
    ]
    try:
        ip = tn.preflight()
        sweep_dead_runs(ip)
    except Skip as e:
        failure = ("skip", str(e))
    except Failed as e:
        failure = ("fail", str(e))
    for title, run in ([] if failure else scenarios):
        tmp = tempfile.mkdtemp(prefix="confab-netns6-")
        nodes, net, err = [], None, None
        try:
            nodes, net, err = run(ip, tmp)
        except BaseException as e:
            err = e
        finally:
            for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(s, signal.SIG_IGN)
            bad = tn.stop(nodes, isinstance(err, tn.Interrupted))
            left = net.teardown() if net is not None else []
            if err is not None and not isinstance(err, Skip):
                for n in nodes:
                    say("--- %s's log (last lines) ---\n%s" % (
                        n.name, "\n".join(n.log_text().splitlines()[-30:])))
            shutil.rmtree(tmp, ignore_errors=True)
            for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(s, tn.on_signal)
        if isinstance(err, Skip):
            failure = ("skip", str(err))
            break
        if err is not None:
            failure = ("fail", "%s: %s: %s" % (title, type(err).__name__,
                                               err))
            break
        if left:
            failure = ("fail", "namespaces not deleted: " + ", ".join(left))
            break
        if bad:
            failure = ("fail", "%s: %s" % (title, "\n".join(bad)))
            break
        say("%s: passed; its namespaces are deleted" % title)
    if failure is None:
        say("all IPv6 / multi-interface netns checks passed in %.1f s" % (
            time.monotonic() - tn.T0))
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
