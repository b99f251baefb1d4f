"""Requests and replies through the Python package (docs/PYTHON.md,
docs/PROTOCOL.md section 14): a service served by a loop over
Node.serve(), asked with Node.request() by one peer, by the nearest
server, by all of them; errors and the requester's timeout."""
import threading

import pytest

import confab
from conftest import scaled, wait_until


def serve_in_thread(node, service, answer, stop):
    """Serves service on node with answer(request) until stop is set."""
    ready = threading.Event()

    def run():
        with node.serve(service, timeout=0.2) as s:
            ready.set()
            while not stop.is_set():
                r = s.get(0.2)
                if r is not None:
                    answer(r)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(scaled(10))
    return t


def members_are(a, service, ids):
    return lambda: any(g.name == service and set(g.members) == set(ids)
                       for g in a.groups())


def test_request_reply(net):
    a, b, c = (n.connect() for n in net.nodes[:3])
    stop = threading.Event()
    seen = []

    def echo(r):
        seen.append((r.sender, r.sender_name, r.service))
        r.reply(b"echo:" + r.body)

    def fail(r):
        r.error("it broke")

    threads = [serve_in_thread(b, "py-echo", echo, stop),
               serve_in_thread(c, "py-echo", echo, stop),
               serve_in_thread(c, "py-fail", fail, stop)]
    try:
        wait_until(a, "both servers at alpha",
                   members_are(a, "py-echo", [net[1].id, net[2].id]))
        (r,) = a.request("py-echo", "hi")
        assert isinstance(r, confab.Reply)
        assert r.ok and r.body == b"echo:hi" and r.text == "echo:hi"
        assert r.sender in (net[1].id, net[2].id)
        assert seen[-1] == (net[0].id, "alpha", "py-echo")

        (r,) = a.request("py-echo", b"\x00\xff", peer="charlie")
        assert (r.sender, r.body) == (net[2].id, b"echo:\x00\xff")

        rs = a.request("py-echo", "all?", all=True, timeout=5)
        assert sorted(x.sender for x in rs) == sorted([net[1].id, net[2].id])
        assert all(x.body == b"echo:all?" for x in rs)

        wait_until(a, "py-fail at alpha",
                   members_are(a, "py-fail", [net[2].id]))
        (r,) = a.request("py-fail", "x")
        assert (r.status, r.text, r.ok) == ("error", "it broke", False)

        with pytest.raises(confab.UnknownGroup) as e:
            a.request("py-nobody", "x")
        assert e.value.code == "ENOENT"
    finally:
        stop.set()
        for t in threads:
            t.join(scaled(10))
        for n in (a, b, c):
            n.close()


def test_request_times_out(net):
    a, b = (n.connect() for n in net.nodes[:2])
    try:
        with b.serve("py-silent") as s:
            wait_until(a, "py-silent at alpha",
                       members_are(a, "py-silent", [net[1].id]))
            with pytest.raises(confab.Timeout):
                a.request("py-silent", "x", timeout=0.3)
            r = s.get(scaled(5))
            assert r is not None and r.text == "x"
            # Its requester stopped waiting: the answer has nowhere to go.
            with pytest.raises(confab.NotFound):
                wait_until(a, "the request to expire at bravo", lambda:
                           b.status().stats["requests_expired_in"] >= 1)
                r.reply("late")
    finally:
        a.close()
        b.close()


def test_async_request(net):
    import asyncio
    a, b = (n.connect() for n in net.nodes[:2])
    stop = threading.Event()
    t = serve_in_thread(b, "py-aecho", lambda r: r.reply(r.body[::-1]), stop)
    try:
        wait_until(a, "py-aecho at alpha",
                   members_are(a, "py-aecho", [net[1].id]))

        async def ask():
            node = await confab.aio.connect(net[0].home)
            try:
                return await node.request("py-aecho", "abc", peer="bravo")
            finally:
                await node.close()

        (r,) = asyncio.run(ask())
        assert (r.sender, r.body, r.ok) == (net[1].id, b"cba", True)
    finally:
        stop.set()
        t.join(scaled(10))
        a.close()
        b.close()
