#!/usr/bin/env python3
"""Several machines: three network namespaces on a bridge, one
`confab run` in each with its default discovery (beacons to the broadcast
address of the namespace's own interface), driven only through the command
line inside each namespace: discovery, unicast, broadcast and a group
shout across them; then one namespace's link goes down and the other two
see that node down; the link comes back and it rejoins.

No fixed sleeps and no polling: every wait blocks on an event until a
deadline: a node's line "running; its id is" on its stderr (through a
pipe), its peer and group events (subscribed to through its control
socket, <home>/control.sock: a pathname Unix socket, reachable from here
although the node runs in another network namespace), or a message handed
over by `confab recv --follow --count 1`.

The network never touches the host's own namespace. A "switch" namespace
holds the bridge; each host namespace is joined to it by a veth pair made
with one end in the switch namespace and the other in the host namespace
(`ip -n SWITCH link add ... peer ... netns HOST`), so neither end is ever
in the host's namespace, and the addresses (10.47.N.0/24, N random per run)
exist only inside. The namespaces are named cfbns-<pid>-{sw,a,b,c}, so
parallel runs never collide, and are deleted afterwards, also on failure
or on a signal.

Needs root and ip (iproute2). Without them, or where namespaces cannot be
made (an unprivileged container), it prints why on one line and exits 77,
meson's "skipped"; with CONFAB_NETNS_REQUIRED=1 (-Dnetns_tests=enabled)
that is a failure instead.

usage: test_netns.py CONFAB"""
import json
import os
import queue
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

# The node harness of the command-line tests (tests/cli), and the confab
# Python package (python/) for the control socket.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "cli"))
import harness  # noqa: E402
import confab  # noqa: E402
from harness import RUNNING  # noqa: E402

SKIP = 77
CONFAB = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
# Sanitizer builds run slower; every deadline scales with this.
SCALE = float(os.environ.get("CONFAB_TEST_SCALE", "1"))
NAMES = ("alpha", "bravo", "charlie")
HOSTS = ("a", "b", "c")
PREFIX = "cfbns-%d-" % os.getpid()
NS_RE = re.compile(r"^cfbns-(\d+)-(sw|a|b|c)$")
# The node's default silence before a peer is declared down is 15 s.
DOWN_WITHIN = 30
# A lost peer is re-dialed with a backoff of up to 30 s (redial_max_ms).
REJOIN_WITHIN = 45
T0 = time.monotonic()


class Skip(Exception):
    pass


class Failed(Exception):
    pass


def say(msg):
    print("[%6.1fs] %s" % (time.monotonic() - T0, msg), flush=True)


def json_lines(text):
    return [json.loads(l) for l in text.splitlines() if l.strip()]


class Events:
    """The peer and group events of several running nodes, through their
    control sockets: subscribed to on each at once (so that none that comes
    later is missed), read by one thread per node into one queue, each
    stamped with the time it arrived. Not "msg" events: those would take
    (mark read) messages."""

    def __init__(self, nodes, timeout=10):
        self.q = queue.Queue()
        self.closing = False
        self.conns = []  # (node name, client, reader thread)
        try:
            for n in nodes:
                cl = confab.Connection(n.home, timeout * SCALE)
                self.conns.append((n.name, cl, None))
                reply, early = cl.call({"op": "subscribe",
                                        "events": ["peer", "group"]})
                if not reply.get("ok"):
                    raise Failed("subscribe on %s: %r" % (n.name, reply))
                now = time.monotonic()
                for ev in early:
                    self.q.put((now, n.name, ev))
                cl.sock.settimeout(None)  # the reader blocks until closed
                th = threading.Thread(target=self._read, args=(n.name, cl),
                                      daemon=True)
                self.conns[-1] = (n.name, cl, th)
                th.start()
        except BaseException:
            self.close()
            raise

    def _read(self, name, cl):
        try:
            while True:
                ev = cl.next()
                self.q.put((time.monotonic(), name, ev))
        except Exception as e:  # EOF or an error: the end of this reader
            self.q.put((time.monotonic(), name, e))

    def close(self):
        self.closing = True
        for _, cl, th in self.conns:
            try:
                cl.sock.shutdown(socket.SHUT_RDWR)  # wakes its reader
            except OSError:
                pass
            if th is not None:
                th.join(10 * SCALE)
            cl.close()
        self.conns = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def next(self, deadline):
        """The next event as (time it came, node name, event), blocking
        until one comes; None at the deadline (time.monotonic())."""
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            at, name, ev = self.q.get(timeout=left)
        except queue.Empty:
            return None
        if isinstance(ev, Exception):
            raise Failed("the control connection to %s ended: %s: %s" %
                         (name, type(ev).__name__, ev))
        return at, name, ev

    def until(self, what, fn, timeout, show=None):
        """Checks fn, and again after each event any of the nodes sends,
        until it returns something true; fails at the deadline, saying
        what fn last returned (or what show() says, if given)."""
        deadline = time.monotonic() + timeout * SCALE
        while True:
            last = fn()
            if last:
                return last
            # fn is checked again after each event, and at least twice a
            # second: a counter can change with no event that says so.
            wake = min(deadline, time.monotonic() + 0.5)
            if self.next(wake) is None and time.monotonic() >= deadline:
                raise Failed("timed out after %g s waiting for %s (last: %r)"
                             % (timeout * SCALE, what,
                                show() if show else last))


# ---- the network -------------------------------------------------------


class Net:
    """The switch and the host namespaces, and everything in them."""

    def __init__(self, ip):
        self.ip_cmd = ip
        self.made = []  # namespaces made, in order
        self.were_made = False
        self.subnet = "10.47.%d" % random.randint(0, 255)
        self.sw = PREFIX + "sw"
        self.hosts = [PREFIX + h for h in HOSTS]

    def ip(self, *args, ns=None, check=True):
        cmd = [self.ip_cmd] + (["-n", ns] if ns else []) + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if check and p.returncode != 0:
            raise Failed("%s: exit %d: %s" % (" ".join(cmd), p.returncode,
                                             p.stderr.strip()))
        return p

    def add_ns(self, name):
        self.ip("netns", "add", name)
        self.made.append(name)
        self.were_made = True
        self.ip("link", "set", "lo", "up", ns=name)

    def host_links(self):
        """The interfaces of the host's own namespace, to show that the
        test leaves them alone."""
        return sorted(re.findall(r"^\d+: ([^:@]+)", self.ip(
            "-o", "link", "show").stdout, re.M))

    def addr(self, i):
        return "%s.%d" % (self.subnet, i + 1)

    def setup(self):
        before = self.host_links()
        p = self.ip("netns", "add", self.sw, check=False)
        if p.returncode != 0:
            raise Skip("cannot make a network namespace (%s)" %
                       (p.stderr.strip() or "ip netns add failed"))
        self.made.append(self.sw)
        self.were_made = True
        # The first command inside a namespace: where ip cannot enter one
        # (a chroot whose / is not a mount point: "mount --make-rslave /"
        # fails), namespaces cannot be used here at all.
        p = self.ip("link", "set", "lo", "up", ns=self.sw, check=False)
        if p.returncode != 0:
            raise Skip("cannot run a command in a network namespace (%s)" %
                       (p.stderr.strip() or "ip -n failed"))
        p = self.ip("link", "add", "br0", "type", "bridge", ns=self.sw,
                    check=False)
        if p.returncode != 0:
            raise Skip("cannot make a bridge in a namespace (%s)" %
                       p.stderr.strip())
        self.ip("link", "set", "br0", "up", ns=self.sw)
        for i, host in enumerate(self.hosts):
            self.add_ns(host)
            port = "p-" + HOSTS[i]
            # Both ends are born inside namespaces: the switch's end in the
            # switch, the host's end (eth0) in the host namespace.
            p = self.ip("link", "add", port, "type", "veth", "peer", "name",
                        "eth0", "netns", host, ns=self.sw, check=False)
            if p.returncode != 0:
                raise Skip("cannot make a veth pair in a namespace (%s)" %
                           p.stderr.strip())
            self.ip("link", "set", port, "master", "br0", ns=self.sw)
            self.ip("link", "set", port, "up", ns=self.sw)
            self.ip("addr", "add", self.addr(i) + "/24", "brd", "+", "dev",
                    "eth0", ns=host)
            self.ip("link", "set", "eth0", "up", ns=host)
        after = self.host_links()
        if after != before:
            raise Failed("the host's own interfaces changed: %r -> %r" %
                         (before, after))
        say("network: %s (bridge br0 in %s), hosts %s at %s.1-3/24; the "
            "host's own interfaces untouched" % (
                ", ".join(self.made), self.sw, ", ".join(self.hosts),
                self.subnet))

    def link(self, i, state):
        """Takes host i's interface down or up, inside its namespace."""
        self.ip("link", "set", "eth0", state, ns=self.hosts[i])

    def teardown(self):
        """Deletes every namespace of this run: the ones made, and any
        other with this run's prefix (a half-made one)."""
        names = set(self.made)
        p = self.ip("netns", "list", check=False)
        for line in p.stdout.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(PREFIX):
                names.add(name)
        # Hosts first, then the switch: each host's veth pair goes with it.
        left = []
        for name in sorted(names, key=lambda n: n == self.sw):
            p = self.ip("netns", "del", name, check=False)
            if p.returncode != 0:
                left.append("%s (%s)" % (name, p.stderr.strip()))
        self.made = []
        return left


def sweep_dead_runs(ip):
    """Deletes the namespaces of earlier runs of this test that were killed
    before they could clean up: names of this test's pattern whose process
    is gone and that hold no process. Leaves anything else alone."""
    p = subprocess.run([ip, "netns", "list"], capture_output=True, text=True,
                       timeout=30)
    for line in p.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = NS_RE.match(name)
        if not m or int(m.group(1)) == os.getpid():
            continue
        if os.path.exists("/proc/%s" % m.group(1)):
            continue
        pids = subprocess.run([ip, "netns", "pids", name], capture_output=True,
                              text=True, timeout=30).stdout.split()
        if pids:
            say("left alone: %s, from a dead run, still holds processes %s" %
                (name, " ".join(pids)))
            continue
        subprocess.run([ip, "netns", "del", name], capture_output=True,
                       timeout=30)
        say("deleted %s, left over by a run that was killed" % name)


# ---- the nodes -----------------------------------------------------------


class Node:
    def __init__(self, net, i, tmp):
        self.net, self.i = net, i
        self.ns = net.hosts[i]
        self.name = NAMES[i]
        self.home = os.path.join(tmp, self.name)
        self.log = os.path.join(tmp, self.name + ".log")
        self.addr = net.addr(i)
        self.proc = None
        self.err = None
        self.id = None

    def cmd(self, *args):
        return [self.net.ip_cmd, "netns", "exec", self.ns, CONFAB, "--home",
                self.home, *args]

    def run(self, *args, timeout=30, input=None):
        return subprocess.run(self.cmd(*args), capture_output=True, text=True,
                              input=input, timeout=timeout * SCALE)

    def ok(self, *args, **kw):
        p = self.run(*args, **kw)
        if p.returncode != 0:
            raise Failed("confab %s on %s: exit %d\n%s" % (
                " ".join(args), self.name, p.returncode, p.stderr))
        return p

    def json(self, *args, **kw):
        return json_lines(self.ok(*args, "--json", **kw).stdout)

    def start(self):
        """Starts `confab run`; its output goes to the log file through a
        pipe (harness.OutputPipe). wait_up waits for it to be up."""
        # `ip netns exec` execs confab itself: proc is the node.
        self.err = harness.OutputPipe(self.log)
        try:
            self.proc = subprocess.Popen(
                self.cmd("run", "--name", self.name, "--beacon-interval",
                         "200"),
                stdin=subprocess.DEVNULL, stdout=self.err.wfd,
                stderr=self.err.wfd)
        finally:
            self.err.spawned()

    def wait_up(self, timeout=15):
        """Blocks until the node says it runs (its control socket listens
        then); fails if it ends first or at the deadline."""
        if not self.err.wait_for(RUNNING, timeout * SCALE):
            raise Failed("%s did not come up within %g s (exit %r)" % (
                self.name, timeout * SCALE, self.proc.poll()))

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def peers(self):
        """{name: peer} as `confab peers --json` shows them."""
        return {q["name"]: q for q in self.json("peers")}

    def states(self):
        return {k: v["state"] for k, v in self.peers().items()}

    def drain(self):
        return self.json("recv")

    def recv_until(self, mid, what, timeout=15):
        """Reads messages, one `recv --follow --count 1` at a time (each
        waits in the node for one, and takes no more), until the one with
        id mid is among them; returns all read; fails at the deadline."""
        got = []
        deadline = time.monotonic() + timeout * SCALE
        while not any(m["id"] == mid for m in got):
            left = deadline - time.monotonic()
            if left < 0.01:
                raise Failed("timed out after %g s waiting for %s (got: %r)"
                             % (timeout * SCALE, what, got))
            p = self.run("recv", "--follow", "--count", "1", "--timeout",
                         "%.3f" % left, "--json", timeout=left / SCALE + 15)
            if p.returncode == 4:
                raise Failed("timed out after %g s waiting for %s (got: %r)"
                             % (timeout * SCALE, what,
                                got + json_lines(p.stdout)))
            if p.returncode != 0:
                raise Failed("confab recv on %s: exit %d\n%s" % (
                    self.name, p.returncode, p.stderr))
            got.extend(json_lines(p.stdout))
        return got


def peer_events(evs, t, want, state, deadline, what):
    """Reads the peer events of evs until, for each (node name, peer id) of
    want, the last one says state; returns {(node name, peer id): (seconds
    after t it came, reason)}. A peer event of any other pair fails: in these
    steps only charlie's links change. Group events are let pass (the
    leaves of the last group can still be on their way)."""
    last = {}
    while not (len(last) == len(want) and
               all(ev["state"] == state for _, ev in last.values())):
        got = evs.next(deadline)
        if got is None:
            raise Failed("timed out after %g s waiting for %s (the last peer "
                         "events of the pairs: %r)" % (
                             deadline - t, what,
                             {k: (round(at - t, 2), ev["state"],
                                  ev.get("reason"))
                              for k, (at, ev) in last.items()}))
        at, name, ev = got
        if ev.get("ev") != "peer":
            continue
        pid = ev["id"].hex() if isinstance(ev.get("id"), bytes) else None
        if (name, pid) not in want:
            raise Failed("%s got a peer event of %s (%s) while waiting for "
                         "%s: %r" % (name, ev.get("name"), pid, what, ev))
        last[(name, pid)] = (at, ev)
    return {k: (at - t, ev.get("reason")) for k, (at, ev) in last.items()}


def make_homes(nodes, tmp):
    """Each node gets an identity and a private network key of this run's
    own: only these three can link with each other."""
    keyhome = os.path.join(tmp, "key")
    p = subprocess.run([CONFAB, "--home", keyhome, "init",
                        "--private-network"], capture_output=True, text=True,
                       timeout=30)
    if p.returncode != 0:
        raise Failed("confab init --private-network: " + p.stderr)
    for n in nodes:
        p = subprocess.run([CONFAB, "--home", n.home, "init", "--name",
                            n.name, "--json"], capture_output=True, text=True,
                           timeout=30)
        if p.returncode != 0:
            raise Failed("confab init: " + p.stderr)
        n.id = json.loads(p.stdout)["id"]
        shutil.copy(os.path.join(keyhome, "network.key"), n.home)
        os.chmod(os.path.join(n.home, "network.key"), 0o600)
    shutil.rmtree(keyhome)


def stop(nodes, hurry=False):
    """SIGTERM to every node, then waits (SIGKILL after a deadline).
    Returns the complaints: a node that exited badly or with a sanitizer
    report."""
    for n in nodes:
        if n.proc is not None and n.proc.poll() is None:
            n.proc.send_signal(signal.SIGTERM)
    bad = []
    for n in nodes:
        if n.proc is None:
            continue
        try:
            n.proc.wait(2 if hurry else 10 * SCALE)
        except subprocess.TimeoutExpired:
            n.proc.kill()
            n.proc.wait()
            bad.append("%s did not stop on SIGTERM" % n.name)
        if n.err is not None:
            n.err.join(2 if hurry else 10 * SCALE)  # all it wrote is logged
        log = n.log_text()
        if (n.proc.returncode != 0 or "Sanitizer" in log
                or "runtime error:" in log):
            bad.append("%s exited %d:\n%s" % (n.name, n.proc.returncode,
                                               log[-3000:]))
    return bad


# ---- the steps -------------------------------------------------------------


def step_discovery(nodes, net):
    for n in nodes:
        n.wait_up()

    seen = {}

    def all_up():
        for n in nodes:
            seen[n.name] = st = n.states()
            if not all(st.get(m.name) == "up" for m in nodes if m is not n):
                return False
        return True
    with Events(nodes) as evs:
        evs.until("each node to see the other two up", all_up, timeout=20,
                  show=lambda: seen)
    for n in nodes:
        for name, q in n.peers().items():
            other = next(m for m in nodes if m.name == name)
            if q["id"] != other.id:
                raise Failed("%s sees %s with id %s, not %s" % (
                    n.name, name, q["id"], other.id))
            host = q["address"].rsplit(":", 1)[0]
            if host != other.addr:
                raise Failed("%s sees %s at %s, not on its veth (%s)" % (
                    n.name, name, q["address"], other.addr))
    say("discovery: each node sees the other two up, at their %s.x "
        "addresses" % net.subnet)


def step_unicast(nodes):
    for src, dst in ((0, 1), (1, 2), (2, 0)):
        a, b = nodes[src], nodes[dst]
        b.drain()
        text = "from %s to %s across the bridge ✓" % (a.name, b.name)
        sent = a.json("send", b.name, text)
        mid = sent[0]["id"]
        if sent[0]["to"] != b.id:
            raise Failed("send to %s went to %s" % (b.name, sent[0]["to"]))
        got = b.recv_until(mid, "the unicast at " + b.name)
        got += b.drain()
        mine = [m for m in got if m["id"] == mid]
        if len(mine) != 1:
            raise Failed("%s received the unicast %d times" % (b.name,
                                                               len(mine)))
        m = mine[0]
        want = (a.id, a.name, "unicast", None, text)
        have = (m["from"], m["from_name"], m["kind"], m["group"],
                m.get("body"))
        if have != want:
            raise Failed("%s received %r, not %r" % (b.name, have, want))
    say("unicast: alpha -> bravo -> charlie -> alpha, each received once "
        "(recv --json)")


def step_broadcast(nodes):
    for n in nodes:
        n.drain()
    r = nodes[1].json("broadcast", "to every namespace")[0]
    if r.get("sent") != 2:
        raise Failed("broadcast from bravo: %r" % r)
    for n in (nodes[0], nodes[2]):
        got = n.recv_until(r["id"], "the broadcast at " + n.name)
        got += n.drain()
        mine = [m for m in got if m["id"] == r["id"]]
        if len(mine) != 1 or mine[0]["kind"] != "broadcast" or \
                mine[0]["body"] != "to every namespace" or \
                mine[0]["from"] != nodes[1].id:
            raise Failed("the broadcast at %s: %r" % (n.name, mine))
    say("broadcast: from bravo, received once by alpha and by charlie")


def step_shout(nodes):
    g = "ns%d" % random.randint(0, 1 << 30)
    a, b, c = nodes
    for n in nodes:
        n.drain()

    def members():
        for x in a.json("groups"):
            if x["group"] == g:
                return sorted(x["members"])
        return None
    with Events([a]) as evs:
        b.ok("join", g)
        c.ok("join", g)
        evs.until("alpha to see bravo and charlie in %s" % g,
                  lambda: members() == sorted([b.id, c.id]), timeout=15)
    r = a.json("shout", g, "to the group, across namespaces")[0]
    if r.get("sent") != 2:
        raise Failed("shout from alpha: %r" % r)
    for n in (b, c):
        got = n.recv_until(r["id"], "the shout at " + n.name)
        m = next(x for x in got if x["id"] == r["id"])
        if (m["kind"], m["group"], m["from"]) != ("group", g, a.id):
            raise Failed("the shout at %s: %r" % (n.name, m))
    # A member's shout reaches the other member, and not alpha.
    a.drain()
    r = c.json("shout", g, "members only")[0]
    got = b.recv_until(r["id"], "charlie's shout at bravo")
    if next(x for x in got if x["id"] == r["id"])["group"] != g:
        raise Failed("charlie's shout at bravo: %r" % got)
    if any(x["id"] == r["id"] for x in a.drain()):
        raise Failed("alpha, not a member of %s, received its shout" % g)
    b.ok("leave", g)
    c.ok("leave", g)
    say("shout: alpha to %s reached bravo and charlie; charlie's reached "
        "bravo and not alpha" % g)


def step_link_down(nodes, net):
    a, b, c = nodes
    for n in nodes:
        n.drain()
    # A lost peer shows "down" only until the first re-dial ("connecting"
    # from then on, which has no event): so the "down" events themselves,
    # subscribed to before the link goes, and when each came.
    want = {(a.name, c.id), (b.name, c.id), (c.name, a.id), (c.name, b.id)}
    with Events(nodes) as evs:
        t = time.monotonic()
        net.link(2, "down")
        say("link: eth0 down in %s (charlie)" % net.hosts[2])
        seen = peer_events(evs, t, want, "down", t + DOWN_WITHIN * SCALE,
                           "alpha and bravo to see charlie down, and "
                           "charlie them")
    say("down: alpha saw charlie down after %.1f s, bravo after %.1f s, "
        "charlie both after %.1f s (peer timeout 15 s)" % (
            seen[(a.name, c.id)][0], seen[(b.name, c.id)][0],
            max(seen[(c.name, a.id)][0], seen[(c.name, b.id)][0])))
    say("down: reasons: alpha's charlie %s, bravo's charlie %s, charlie's "
        "alpha %s and bravo %s" % (
            seen[(a.name, c.id)][1], seen[(b.name, c.id)][1],
            seen[(c.name, a.id)][1], seen[(c.name, b.id)][1]))
    # alpha and bravo still talk.
    r = a.json("send", "bravo", "charlie is gone")[0]
    b.recv_until(r["id"], "alpha's unicast at bravo while charlie is down")
    # Sent while charlie is away: the outbox keeps it until charlie is back.
    return a.json("send", "charlie", "kept while you were away")[0]["id"]


def step_link_up(nodes, net, kept):
    a, b, c = nodes
    want = {(a.name, c.id), (b.name, c.id), (c.name, a.id), (c.name, b.id)}
    with Events(nodes) as evs:
        t = time.monotonic()
        net.link(2, "up")
        say("link: eth0 up in %s (charlie)" % net.hosts[2])
        seen = peer_events(evs, t, want, "up", t + REJOIN_WITHIN * SCALE,
                           "charlie to rejoin (up at alpha and bravo, and "
                           "both up at charlie)")
    # What the events said, `confab peers` says too.
    for n, others in ((a, [c]), (b, [c]), (c, [a, b])):
        st = n.states()
        if any(st.get(m.name) != "up" for m in others):
            raise Failed("after the up events, %s's peers: %r" % (n.name, st))
    say("rejoined: up at alpha after %.1f s, at bravo after %.1f s; charlie "
        "sees both after %.1f s" % (
            seen[(a.name, c.id)][0], seen[(b.name, c.id)][0],
            max(seen[(c.name, a.id)][0], seen[(c.name, b.id)][0])))
    got = c.recv_until(kept, "the unicast sent while charlie was down",
                       timeout=20)
    m = next(x for x in got if x["id"] == kept)
    if m["body"] != "kept while you were away" or m["from"] != a.id:
        raise Failed("the kept unicast at charlie: %r" % m)
    r = c.json("send", "bravo", "back again")[0]
    b.recv_until(r["id"], "charlie's unicast at bravo after the rejoin")
    say("after the rejoin: the unicast sent while charlie was down "
        "arrived; charlie -> bravo works")


# ---- main ------------------------------------------------------------------


class Interrupted(BaseException):
    pass


def on_signal(signum, frame):
    raise Interrupted("signal %d" % signum)


def find_ip():
    ip = shutil.which("ip")
    if ip is None:
        for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin"):
            if os.access(os.path.join(d, "ip"), os.X_OK):
                return os.path.join(d, "ip")
    return ip


def preflight():
    if CONFAB is None or not os.access(CONFAB, os.X_OK):
        raise Failed("usage: test_netns.py CONFAB (the confab binary)")
    if not sys.platform.startswith("linux"):
        raise Skip("network namespaces are Linux only")
    if os.geteuid() != 0:
        raise Skip("making network namespaces needs root (CI runs this "
                   "test as root)")
    ip = find_ip()
    if ip is None:
        raise Skip("the ip command is missing (apt-get install iproute2)")
    p = subprocess.run([ip, "netns", "list"], capture_output=True, text=True,
                       timeout=30)
    if p.returncode != 0:
        raise Skip("ip netns does not work here (%s)" % p.stderr.strip())
    return ip


def main():
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    net = None
    nodes = []
    tmp = None
    failure = None
    hurry = False
    try:
        ip = preflight()
        sweep_dead_runs(ip)
        net = Net(ip)
        net.setup()
        tmp = tempfile.mkdtemp(prefix="confab-netns-")
        nodes = [Node(net, i, tmp) for i in range(3)]
        make_homes(nodes, tmp)
        for n in nodes:
            n.start()
        step_discovery(nodes, net)
        step_unicast(nodes)
        step_broadcast(nodes)
        step_shout(nodes)
        kept = step_link_down(nodes, net)
        step_link_up(nodes, net, kept)
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
        # Ignore further signals while cleaning up: the namespaces must go.
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        left = []
        if hurry and net is not None:
            left = net.teardown()  # first, in case a SIGKILL follows
        bad = stop(nodes, hurry)
        if net is not None:
            left += net.teardown()
        if failure is not None and failure[0] == "fail":
            for n in nodes:
                say("--- %s's log (last lines) ---\n%s" % (
                    n.name, "\n".join(n.log_text().splitlines()[-40:])))
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if left:
        failure = failure or ("fail", "")
        failure = ("fail", failure[1] + "\nnamespaces not deleted: " +
                   ", ".join(left))
    elif net is not None and net.were_made:
        say("cleanup: the namespaces of this run are deleted")
    if bad and (failure is None or failure[0] != "fail"):
        failure = ("fail", "\n".join(bad))
    if failure is None:
        say("all netns checks passed in %.1f s" % (time.monotonic() - T0))
        return 0
    kind, msg = failure
    if kind == "skip":
        if os.environ.get("CONFAB_NETNS_REQUIRED") == "1":
            print("FAIL: the netns test is required here "
                  "(-Dnetns_tests=enabled) but cannot run: " + msg)
            return 1
        print("SKIP: " + msg)
        return SKIP
    print("FAIL: " + msg)
    return 1


if __name__ == "__main__":
    sys.exit(main())
