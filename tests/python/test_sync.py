"""The blocking API of the confab package against live nodes (alpha,
bravo, charlie, linked in a full mesh by the net fixture; more are added
where a test needs to stop one): every method, and the error paths: an
unknown peer or group, a peer that does not answer, a node that stops
while a call waits, a reply larger than one read."""
import os
import queue
import signal
import threading
import time

import pytest

import confab
from conftest import scaled, wait_until


@pytest.fixture
def abc(net):
    """Connections to the three nodes, with their inboxes emptied."""
    nodes = [n.connect() for n in net.nodes[:3]]
    for n in nodes:
        n.recv()
    yield nodes
    for n in nodes:
        n.close()


def test_id_and_status(net, abc):
    a = abc[0]
    assert a.id == net[0].id and a.name == "alpha"
    s = a.status()
    assert isinstance(s, confab.Status)
    assert (s.id, s.name, s.peers, s.inbox) == (net[0].id, "alpha", 2, 0)
    assert s.port > 0 and s.known >= 2
    assert isinstance(s.stats["msgs_sent"], int)


def test_peers(net, abc):
    peers = abc[0].peers()
    assert sorted(p.name for p in peers) == ["bravo", "charlie"]
    for p in peers:
        assert isinstance(p, confab.Peer)
        assert p.state == "up" and p.up
        assert p.address.startswith("127.0.0.1:")
        assert p.id in (net[1].id, net[2].id)
        assert p.hex == p.id.hex() and p.short == p.id.hex()[:8]


def test_peer_by_name_prefix_id_and_peer(net, abc):
    a = abc[0]
    b = net[1]
    for ref in ("bravo", b.id.hex()[:6], b.id.hex()[:8].upper(), b.id,
                a.peer("bravo")):
        assert a.peer(ref).id == b.id
    with pytest.raises(confab.UnknownPeer) as e:
        a.peer("nobody")
    assert "no peer is named 'nobody'" in str(e.value)
    assert "bravo" in str(e.value)  # the known peers are listed
    assert e.value.exit_status == 3


def test_send_waits_for_delivery(net, abc):
    a, b, _ = abc
    text = "grüße, 世界 ✓"
    r = a.send("bravo", text)
    assert isinstance(r, confab.SendResult)
    assert r.status == "delivered" and r.delivered and len(r.mid) == 16
    # Delivered means acknowledged: bravo has it now.
    (m,) = b.recv()
    assert isinstance(m, confab.Message)
    assert (m.mid, m.sender, m.sender_name, m.kind, m.group) == (
        r.mid, net[0].id, "alpha", "unicast", None)
    assert m.text == text and m.body == text.encode()
    assert m.ct == "text/plain"
    assert abs(m.ts / 1e6 - time.time()) < 600 and m.seq >= 1
    assert b.recv() == []  # read means read


def test_send_bytes_by_id_without_wait(net, abc):
    a, _, c = abc
    data = bytes(range(256)) * 10
    r = a.send(net[2].id, data, wait=False)
    assert r.status is None and len(r.mid) == 16
    m = next(c.messages(timeout=scaled(10)))
    assert (m.mid, m.body, m.ct) == (r.mid, data,
                                     "application/octet-stream")
    r = a.send(net[2].id.hex()[:10], b"{}", ct="application/json")
    (m,) = c.recv()
    assert (m.mid, m.ct) == (r.mid, "application/json")


def test_send_unknown_peer(abc):
    a = abc[0]
    with pytest.raises(confab.UnknownPeer) as e:
        a.send("nobody", "x")
    assert e.value.exit_status == 3
    # An id no peer has: the node itself says so.
    with pytest.raises(confab.UnknownPeer) as e:
        a.send(b"\x01" * 32, "x")
    assert (e.value.err, e.value.code, e.value.op) == (-3, "ESRCH", "send")
    assert "no known peer has id 0101010101010101" in e.value.msg
    with pytest.raises(confab.InvalidArgument):
        a.send(b"\x01" * 31, "x")


def test_broadcast(abc):
    a, b, c = abc
    r = a.broadcast("to all")
    assert isinstance(r, confab.BroadcastResult) and r.sent == 2
    for n in (b, c):
        m = next(n.messages(timeout=scaled(10)))
        assert (m.mid, m.kind, m.text) == (r.mid, "broadcast", "to all")


def test_join_shout_groups_leave(net, abc):
    a, b, c = abc
    b.join("#room")  # as the chat command writes it
    assert "room" in b.status().groups
    wait_until(a, "alpha to see bravo in room", lambda: any(
        g.name == "room" and net[1].id in g.members for g in a.groups()))
    g = next(g for g in a.groups() if g.name == "room")
    assert isinstance(g, confab.Group) and not g.joined
    assert next(g for g in b.groups() if g.name == "room").joined
    r = a.shout("room", "hi room")
    assert r.sent == 1
    m = next(b.messages(timeout=scaled(10)))
    assert (m.mid, m.kind, m.group, m.text) == (r.mid, "group", "room",
                                                "hi room")
    assert c.recv() == []
    b.leave("room")
    with pytest.raises(confab.UnknownGroup) as e:
        b.leave("room")
    assert e.value.exit_status == 3
    assert "not a member of group room" in str(e.value)
    with pytest.raises(confab.InvalidArgument) as e:
        b.join("")
    assert e.value.exit_status == 1


def test_anycast(net, abc):
    a, _, c = abc
    c.join("workers")
    wait_until(a, "alpha to see charlie in workers", lambda: any(
        g.name == "workers" and g.members == [net[2].id]
        for g in a.groups()))
    r = a.anycast("workers", "job 1")
    assert isinstance(r, confab.AnycastResult)
    assert (r.status, r.member, r.delivered) == ("delivered", net[2].id, True)
    (m,) = c.recv()
    assert (m.mid, m.kind, m.group, m.text) == (r.mid, "anycast", "workers",
                                                "job 1")
    c.leave("workers")
    with pytest.raises(confab.UnknownGroup) as e:
        a.anycast("nobody-here", "job")
    assert "no linked peer is a member of group nobody-here" in str(e.value)
    assert (e.value.code, e.value.exit_status) == ("ENOENT", 3)


def test_ping(net, abc):
    a = abc[0]
    p = a.ping("charlie", b"abc")
    assert isinstance(p, confab.PingResult)
    assert p.data == b"abc" and p.rtt_us > 0 and p.rtt == p.rtt_us / 1e6
    with pytest.raises(confab.InvalidArgument):
        a.ping("charlie", b"x" * 1025)
    with pytest.raises(confab.UnknownPeer):
        a.ping(b"\x02" * 32)


def test_messages_follow_and_idle_timeout(abc):
    a, b, _ = abc
    got = queue.Queue()

    def reader():
        try:
            for m in b.messages(timeout=scaled(10)):
                got.put(m.text)
                if m.text == "three":
                    break
        except Exception as e:
            got.put(e)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for text in ("one", "two", "three"):
            a.send("bravo", text)
            assert got.get(timeout=scaled(10)) == text
    finally:
        t.join(scaled(20))
    assert not t.is_alive()
    # A stream that ended takes nothing: a later message stays unread.
    assert list(b.messages(timeout=0.05)) == []
    a.send("bravo", "later")
    assert b.status().inbox == 1
    assert [m.text for m in b.messages(follow=False)] == ["later"]
    assert b.status().inbox == 0


def test_messages_hands_out_only_what_it_takes(abc):
    a, b, _ = abc
    for text in ("first", "second"):
        a.send("bravo", text)
    with b.messages() as ms:
        assert next(ms).text == "first"
    # "second" was not taken by the stream that stopped after one.
    assert b.status().inbox == 1
    assert [m.text for m in b.recv()] == ["second"]


class Interrupt(Exception):
    pass


def test_messages_interrupted_takes_nothing(abc):
    """Ctrl-C (here: a signal whose handler raises) while a stream waits
    for a message: the stream ends its follow, so a message that comes
    later stays unread instead of going to a stream nobody reads."""
    a, b, _ = abc

    def interrupt(signum, frame):
        raise Interrupt()
    old = signal.signal(signal.SIGALRM, interrupt)
    stream = b.messages()
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Interrupt):
            next(stream)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    a.send("bravo", "after the interrupt")
    assert b.status().inbox == 1
    assert [m.text for m in b.recv()] == ["after the interrupt"]


def test_events_iterator(net, abc):
    a, b, _ = abc
    with a.events(["group"], timeout=scaled(10)) as evs:
        b.join("evs")
        ev = next(iter(evs))
        assert ev == confab.GroupEvent(kind="join", id=net[1].id,
                                       name="bravo", group="evs")
        b.leave("evs")
        ev = next(iter(evs))
        assert (ev.kind, ev.group) == ("leave", "evs")
    with pytest.raises(confab.InvalidArgument):
        a.events(["msg"])


def test_subscribe_callback_and_peer_events(net, abc):
    a = abc[0]
    got = queue.Queue()
    sub = a.subscribe(got.put)
    try:
        d = net.add("delta")
        ev = got.get(timeout=scaled(20))
        while not (ev.kind == "peer" and ev.id == d.id):
            ev = got.get(timeout=scaled(20))
        assert isinstance(ev, confab.PeerEvent)
        assert (ev.name, ev.state, ev.reason) == ("delta", "up", None)
        d.stop()
        ev = got.get(timeout=scaled(30))
        while not (ev.kind == "peer" and ev.id == d.id):
            ev = got.get(timeout=scaled(30))
        assert (ev.state, ev.reason) == ("down", "bye")
    finally:
        sub.close()


def test_large_reply(net, abc):
    """Messages of 1 MiB, 3 MiB in one recv reply: frames of 65535 bytes
    and many reads; and a 5 MiB one through a follow."""
    a, b, _ = abc
    bodies = [os.urandom(1 << 20) for _ in range(3)]
    for body in bodies:
        assert a.send("bravo", body).delivered
    assert [m.body for m in b.recv()] == bodies
    big = os.urandom(5 << 20)
    got = queue.Queue()
    t = threading.Thread(target=lambda: got.put(
        next(b.messages(timeout=scaled(20))).body))
    t.start()
    a.send("bravo", big, wait=False)
    assert got.get(timeout=scaled(30)) == big
    t.join(scaled(10))


class Frozen:
    """A node stopped with SIGSTOP while linked: its link stays open, and
    nothing it should answer is answered. SIGCONT and stopped after."""

    def __init__(self, node):
        self.node = node
        os.kill(node.proc.pid, signal.SIGSTOP)
        node.frozen = True

    def close(self):
        os.kill(self.node.proc.pid, signal.SIGCONT)
        self.node.frozen = False
        self.node.stop()


@pytest.fixture
def frozen(net):
    f = Frozen(net.add("frozen%d" % len(net.nodes)))
    yield f.node
    f.close()


def test_ping_without_answer_times_out(abc, frozen):
    with pytest.raises(confab.Timeout) as e:
        abc[0].ping(frozen.id)
    # The node's own answer after 5 s, with its sentence.
    assert (e.value.code, e.value.exit_status, e.value.op) == (
        "ETIMEDOUT", 4, "ping")
    assert "no answer to the ping" in str(e.value)


def test_send_wait_without_outcome_times_out(abc, frozen):
    with pytest.raises(confab.Timeout) as e:
        abc[0].send(frozen.id, "are you there", timeout=0.5)
    assert "no outcome within 0.5 s; the message stays queued" in str(e.value)
    assert e.value.exit_status == 4
    # The connection is still good for the next call.
    assert abc[0].status().name == "alpha"


def test_node_stops_while_a_call_waits(net):
    """A send with wait to a peer that does not acknowledge (SIGSTOP)
    waits in the node; the node stops (SIGTERM): the call ends with
    ConnectionLost, not a hang. Through a raw Connection first, where an
    `id` request after the send proves the node is holding the send (it
    answers a connection's requests in order); then through Node.send,
    with the stop at whatever point the call has reached."""
    d = net.add("stopping%d" % len(net.nodes))
    d2 = net.add("stopping%d" % len(net.nodes))
    f = Frozen(net.add("frozen%d" % len(net.nodes)))
    try:
        with confab.Connection(d.home, scaled(20)) as conn:
            conn.send({"op": "send", "to": f.node.id, "body": b"x",
                       "wait": True})
            rid = conn.send({"op": "id"})
            reply = conn.next()  # the id's, not the send's: that one waits
            assert reply["rid"] == rid and reply["name"] == d.name
            d.stop()
            with pytest.raises(confab.ConnectionLost) as e:
                conn.next()
            assert "did it stop?" in str(e.value)
            assert e.value.exit_status == 2
        with pytest.raises(confab.NodeNotRunning):
            d.connect()
        stops_while_waiting(d2, f.node)
    finally:
        f.close()


def stops_while_waiting(d, frozen):
    node = d.connect()
    err = queue.Queue()

    def call():
        try:
            node.send(frozen.id, "never acknowledged", timeout=scaled(60))
            err.put(None)
        except Exception as e:
            err.put(e)

    t = threading.Thread(target=call)
    t.start()
    d.stop()
    e = err.get(timeout=scaled(20))
    t.join(scaled(10))
    assert isinstance(e, confab.ConnectionLost), repr(e)
    assert "did it stop?" in str(e) and e.exit_status == 2


def test_raw_connection(net):
    with confab.Connection(net[0].home, scaled(10)) as cl:
        reply, events = cl.call({"op": "id"})
        assert reply["ok"] is True and reply["id"] == net[0].id
        assert events == []
        reply, _ = cl.call({"op": "no-such-op"})
        assert (reply["ok"], reply["code"]) == (False, "ENOTSUP")


def test_python_m_confab(net, abc):
    """The tiny command line, `python3 -m confab`, with the confab
    command's exit statuses."""
    import subprocess
    import sys
    from conftest import TOP
    env = dict(os.environ, PYTHONPATH=os.path.join(TOP, "python"))

    def pm(*args):
        return subprocess.run([sys.executable, "-m", "confab", "--home",
                               net[0].home, *args], capture_output=True,
                              text=True, env=env, timeout=scaled(60))
    p = pm("status")
    assert p.returncode == 0 and "alpha: port " in p.stdout, p.stderr
    p = pm("peers")
    assert "bravo" in p.stdout and "charlie" in p.stdout
    p = pm("send", "bravo", "from", "python")
    assert p.returncode == 0 and p.stdout.startswith("delivered: message ")
    assert [m.text for m in abc[1].recv()] == ["from python"]
    p = pm("ping", "charlie")
    assert p.returncode == 0 and " ms" in p.stdout
    p = pm("send", "nobody", "x")
    assert p.returncode == 3 and "no peer is named 'nobody'" in p.stderr
    abc[2].send("alpha", "unread")
    p = pm("recv")
    assert p.returncode == 0 and "charlie (unicast): unread" in p.stdout
