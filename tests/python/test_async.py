"""The asyncio API of the confab package (confab.aio) against live nodes:
every method awaited, calls from several tasks in flight on one
connection, `async for` over messages and events, a subscription with a
coroutine callback, and the error paths: no node running, an unknown peer
or group, a node that stops while a call waits, a reply larger than one
read. Each test runs in its own event loop, bounded by a deadline."""
import asyncio
import os
import signal

import pytest

import confab
from conftest import scaled, wait_until


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, scaled(timeout)))


async def opened(net, *idx):
    nodes = [await confab.aio.connect(net[i].home) for i in idx]
    for n in nodes:
        await n.recv()
    return nodes


async def closed(*nodes):
    for n in nodes:
        await n.close()


def test_id_status_peers_groups(net):
    async def go():
        (a,) = await opened(net, 0)
        try:
            assert isinstance(a, confab.aio.AsyncNode)
            assert (a.id, a.name) == (net[0].id, "alpha")
            s = await a.status()
            assert (s.name, s.peers) == ("alpha", 2)
            peers = await a.peers()
            assert sorted(p.name for p in peers) == ["bravo", "charlie"]
            assert (await a.peer(net[1].id.hex()[:5])).name == "bravo"
            assert isinstance(await a.groups(), list)
        finally:
            await closed(a)
    run(go())


def test_send_recv_and_many_in_flight(net):
    async def go():
        a, b = await opened(net, 0, 1)
        try:
            r = await a.send("bravo", "hello")
            assert r.delivered
            (m,) = await b.recv()
            assert (m.mid, m.text, m.sender_name) == (r.mid, "hello", "alpha")
            # Twenty calls in flight at once on one connection.
            rs = await asyncio.gather(*[a.send("bravo", "n%d" % i)
                                        for i in range(20)])
            assert all(r.delivered for r in rs)
            got = [m.text for m in await b.recv()]
            assert sorted(got) == sorted("n%d" % i for i in range(20))
            r = await a.send(net[1].id, b"\x00\x01", wait=False)
            assert r.status is None  # accepted; it arrives later
            async for m in b.messages(timeout=scaled(10)):
                break
            assert (m.body, m.ct) == (b"\x00\x01", "application/octet-stream")
        finally:
            await closed(a, b)
    run(go())


def test_unknown_peer_and_group(net):
    async def go():
        (a,) = await opened(net, 0)
        try:
            with pytest.raises(confab.UnknownPeer) as e:
                await a.send("nobody", "x")
            assert e.value.exit_status == 3
            with pytest.raises(confab.UnknownPeer) as e:
                await a.ping(b"\x03" * 32)
            assert e.value.code == "ESRCH"
            with pytest.raises(confab.UnknownGroup) as e:
                await a.anycast("nobody-here", "job")
            assert e.value.exit_status == 3
            with pytest.raises(confab.UnknownGroup):
                await a.leave("not-in-it")
            # The connection is still good after each error.
            assert (await a.status()).name == "alpha"
        finally:
            await closed(a)
    run(go())


def test_no_node_running(tmp_path):
    with pytest.raises(confab.NodeNotRunning) as e:
        run(confab.aio.connect(str(tmp_path)))
    assert "confab run" in str(e.value) and e.value.exit_status == 2


def test_broadcast_and_messages(net):
    async def go():
        a, b, c = await opened(net, 0, 1, 2)
        try:
            r = await a.broadcast("to all")
            assert r.sent == 2
            for n in (b, c):
                async for m in n.messages(timeout=scaled(10)):
                    assert (m.mid, m.kind) == (r.mid, "broadcast")
                    break
                else:
                    raise AssertionError("no broadcast")
        finally:
            await closed(a, b, c)
    run(go())


def test_join_shout_anycast_leave_and_events(net):
    async def go():
        a, b = await opened(net, 0, 1)
        sync_a = net[0].connect()
        try:
            async with a.events(["group"], timeout=scaled(10)) as evs:
                await b.join("aroom")
                ev = await evs.__anext__()
                assert ev == confab.GroupEvent("join", net[1].id, "bravo",
                                               "aroom")
            r = await a.shout("aroom", "hi")
            assert r.sent == 1
            r = await a.anycast("aroom", "job")
            assert (r.status, r.member) == ("delivered", net[1].id)
            texts = sorted(m.text for m in await b.recv())
            assert texts == ["hi", "job"]
            await b.leave("aroom")
            wait_until(sync_a, "bravo out of aroom", lambda: not any(
                g.name == "aroom" and g.members for g in sync_a.groups()))
        finally:
            sync_a.close()
            await closed(a, b)
    run(go())


def test_subscribe_coroutine_callback(net):
    async def go():
        (a,) = await opened(net, 0)
        (c,) = await opened(net, 2)
        got = asyncio.Queue()

        async def on_event(ev):
            await got.put(ev)
        sub = await a.subscribe(on_event, ["group"])
        try:
            await c.join("subs")
            ev = await asyncio.wait_for(got.get(), scaled(10))
            assert (ev.kind, ev.name, ev.group) == ("join", "charlie", "subs")
            await c.leave("subs")
            ev = await asyncio.wait_for(got.get(), scaled(10))
            assert (ev.kind, ev.group) == ("leave", "subs")
        finally:
            await sub.close()
            await closed(a, c)
    run(go())


def test_ping(net):
    async def go():
        (a,) = await opened(net, 0)
        try:
            p = await a.ping("bravo", b"data")
            assert p.data == b"data" and p.rtt_us > 0
        finally:
            await closed(a)
    run(go())


def test_messages_follow_hands_out_only_what_it_takes(net):
    async def go():
        a, b = await opened(net, 0, 1)
        try:
            async def later():
                for text in ("one", "two"):
                    await a.send("bravo", text)
            sender = asyncio.create_task(later())
            got = []
            async for m in b.messages():
                got.append(m.text)
                if len(got) == 2:
                    break
            await sender
            assert got == ["one", "two"]
            await a.send("bravo", "three")
            await a.send("bravo", "four")
            stream = b.messages()
            assert (await stream.__anext__()).text == "three"
            await stream.aclose()
            assert (await b.status()).inbox == 1
            assert [m.text async for m in b.messages(follow=False)] == [
                "four"]
        finally:
            await closed(a, b)
    run(go())


def test_a_waiting_stream_cancelled_loses_nothing(net):
    """A task waiting in `async for` is cancelled: the stream ends its
    follow, and a message that comes afterwards stays unread."""
    async def go():
        a, b = await opened(net, 0, 1)
        try:
            stream = b.messages()

            async def reader():
                async for m in stream:
                    raise AssertionError("got %r" % m)
            task = asyncio.create_task(reader())
            # Until the node has answered its recv: it follows now.
            while not (stream._conn is not None and stream._conn.rid == 1
                       and not stream._conn._waiters):
                await asyncio.sleep(0)
            task.cancel()
            # asyncio.wait, not wait_for: it cannot swallow the cancel.
            done, _ = await asyncio.wait({task}, timeout=scaled(10))
            assert task in done and task.cancelled()
            await a.send("bravo", "after")
            assert (await b.status()).inbox == 1
        finally:
            await closed(a, b)
    run(go())


def test_large_reply(net):
    async def go():
        a, b = await opened(net, 0, 1)
        try:
            bodies = [os.urandom(1 << 20) for _ in range(3)]
            for body in bodies:
                assert (await a.send("bravo", body)).delivered
            assert [m.body for m in await b.recv()] == bodies
        finally:
            await closed(a, b)
    run(go())


def test_node_stops_while_a_call_waits(net):
    """As in test_sync: a send with wait to a node that never acknowledges
    (SIGSTOP), and the sender's node stops (SIGTERM) meanwhile: the await
    ends with ConnectionLost, and so does a stream waiting for messages.
    A status call after the send, on the same connection, proves that the
    node is holding the send (it answers a connection's requests in
    order)."""
    d = net.add("astop%d" % len(net.nodes))
    f = net.add("afrozen%d" % len(net.nodes))
    os.kill(f.proc.pid, signal.SIGSTOP)
    f.frozen = True

    async def go():
        node = await confab.aio.connect(d.home)
        try:
            call = asyncio.create_task(node.send(f.id, "never acked",
                                                 timeout=scaled(60)))
            assert (await node.status()).name == d.name
            assert not call.done()
            stream = node.messages()
            waiting = asyncio.create_task(stream.__anext__())
            # Until the node has answered the stream's recv: it follows.
            while not (stream._conn is not None and stream._conn.rid == 1
                       and not stream._conn._waiters):
                await asyncio.sleep(0)
            d.stop()
            with pytest.raises(confab.ConnectionLost):
                await call
            with pytest.raises(confab.ConnectionLost):
                await waiting
            with pytest.raises(confab.ConnectionLost):
                await node.status()
        finally:
            await node.close()
    try:
        run(go())
    finally:
        os.kill(f.proc.pid, signal.SIGCONT)
        f.frozen = False
        f.stop()
