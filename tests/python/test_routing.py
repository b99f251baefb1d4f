"""Routes and trace through the Python package (docs/PROTOCOL.md sections
11 and 13): live `confab run` nodes in a line alpha - bravo - charlie,
where alpha and charlie have no link and reach each other only through
bravo. Node.routes(), Node.trace() (blocking and asyncio), the hop count
of a received message and of a delivered send.

The line, as tests/bench/bench_route.c makes it: discovery is off; bravo
listens on 127.0.0.1 and dials no one; alpha (127.0.0.2) and charlie
(127.0.0.3) each dial bravo. Bravo's PEERS tell each about the other at
the address its link to bravo came from (127.0.0.1) with its listening
port, where nothing listens, so their dials to each other are refused and
they are never linked."""
import asyncio
import os
import subprocess
import time

import pytest

import confab
import harness
from conftest import Net, scaled


def start(node, bind, peer=None):
    """Starts node with discovery off, bound to bind, dialing peer."""
    args = [harness_confab(), "--home", node.home, "run", "--name", node.name,
            "--bind", bind, "--no-discovery"]
    if peer is not None:
        args += ["--peer", peer]
    node.out = harness.OutputPipe(node.log)
    try:
        node.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=node.out.wfd, stderr=node.out.wfd)
    finally:
        node.out.spawned()
    if not node.out.wait_for(harness.RUNNING, scaled(15)):
        raise AssertionError("%s did not come up (exit %r):\n%s" % (
            node.name, node.proc.poll(), node.out.text()[-3000:]))


def harness_confab():
    return os.environ.get("CONFAB", "confab")


def poll(what, fn, timeout=20):
    """fn() until it returns something true, or fails at the deadline.
    The node sends no event when a route changes, so this asks again
    every 50 ms; the deadline, not the interval, bounds the wait."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s (last: %r)"
                                 % (what, last))
        time.sleep(0.05)


def route_to(node, dst):
    return next((r for r in node.routes() if r.dst == dst), None)


@pytest.fixture(scope="module")
def line():
    net = Net(("alpha", "bravo", "charlie"))
    a, b, c = net.nodes
    try:
        start(b, "127.0.0.1")
        with b.connect() as bn:
            hub = "127.0.0.1:%d" % bn.status().port
        start(a, "127.0.0.2", hub)
        start(c, "127.0.0.3", hub)
        with a.connect() as an, c.connect() as cn:
            # Each end reaches the other in 2 hops through bravo.
            for n, other in ((an, c), (cn, a)):
                poll("a route of 2 hops to %s" % other.name,
                     lambda n=n, other=other: (
                         lambda r: r is not None and r.metric == 2)(
                         route_to(n, other.id)))
        yield net
    finally:
        net.stop()


def not_linked(node, other):
    return all(not (p.id == other.id and p.up) for p in node.peers())


def test_routes_on_a_line(line):
    a, b, c = line.nodes
    with a.connect() as an:
        rs = an.routes()
        assert all(isinstance(r, confab.Route) for r in rs)
        to_c = route_to(an, c.id)
        assert to_c.via == b.id and to_c.metric == 2 and to_c.reachable
        assert to_c.seq % 2 == 0  # issued by charlie, not broken
        assert to_c.short == c.id.hex()[:8] and to_c.hex == c.id.hex()
        to_b = route_to(an, b.id)
        assert to_b.via == b.id and to_b.metric == 1
        assert not_linked(an, c)
        assert a.id not in {r.dst for r in rs}  # not itself


def test_send_and_recv_show_hops(line):
    a, b, c = line.nodes
    with a.connect() as an, c.connect() as cn, b.connect() as bn:
        cn.recv()
        bn.recv()
        r = an.send(c.id, "through bravo", timeout=scaled(30))
        assert r.delivered and r.hops == 2 and r.relayed
        r = an.send(b.id, "straight to bravo", timeout=scaled(30))
        assert r.delivered and r.hops == 1 and not r.relayed
        # Without wait the outcome, and so the hops, are not known yet.
        r = an.send(c.id, "no wait", wait=False)
        assert r.status is None and r.hops is None

        got = []
        for m in cn.messages(timeout=scaled(20)):
            got.append(m)
            if len(got) == 2:
                break
        assert [m.text for m in got] == ["through bravo", "no wait"]
        assert all(m.sender == a.id and m.hops == 2 and m.relayed
                   for m in got)
        (m,) = bn.recv()
        assert m.text == "straight to bravo" and m.hops == 1
        assert not m.relayed
        assert not_linked(an, c)


def test_trace_shows_the_path(line):
    a, b, c = line.nodes
    with a.connect() as an, b.connect() as bn, c.connect() as cn:
        bport, cport = bn.status().port, cn.status().port
        hops = an.trace(c.id)
        assert [h.hop for h in hops] == [1, 2]
        assert all(isinstance(h, confab.TraceHop) and h.answered
                   for h in hops)
        assert [(h.id, h.name) for h in hops] == [(b.id, "bravo"),
                                                  (c.id, "charlie")]
        # Where each heard the probe: its end of the link, with the port
        # it accepts links on (charlie's link to bravo leaves from
        # 127.0.0.1: its dial is not bound to its listening address).
        assert hops[0].address == "127.0.0.1:%d" % bport
        assert hops[1].address == "127.0.0.1:%d" % cport
        assert all(h.rtt_us > 0 and h.rtt == h.rtt_us / 1e6 for h in hops)
        assert hops[1].short == c.id.hex()[:8]

        (h,) = an.trace(b.id)  # a linked peer: one hop
        assert h.answered and h.id == b.id and h.hop == 1

        with pytest.raises(confab.UnknownPeer):
            an.trace(bytes(range(32)))  # no link, no route


def test_async_routes_and_trace(line):
    a, b, c = line.nodes

    async def main():
        an = await confab.aio.connect(a.home)
        try:
            rs = await an.routes()
            r = next(r for r in rs if r.dst == c.id)
            hops = await an.trace(c.id)
            sent = await an.send(c.id, "async through bravo",
                                 timeout=scaled(30))
            return r, hops, sent
        finally:
            await an.close()

    r, hops, sent = asyncio.run(main())
    assert r.via == b.id and r.metric == 2
    assert [h.id for h in hops] == [b.id, c.id]
    assert sent.delivered and sent.hops == 2
    with c.connect() as cn:
        msgs = poll("the async message at charlie", cn.recv)
        assert [(m.text, m.hops) for m in msgs] == [("async through bravo", 2)]
