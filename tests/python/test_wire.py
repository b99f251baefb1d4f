"""The confab package without a node: frames in and out as
docs/PROTOCOL.md 11.1 gives them, bounds on what it reads, home and socket
resolution, peer names and id prefixes, the error classes; and against a
fake node (a Unix socket server in a thread, sending exactly the bytes a
test wants): replies spanning frames and reads, a node that closes
mid-frame or mid-call, one that sends too much, one that is not there."""
import asyncio
import errno
import os
import socket
import tempfile
import threading

import msgpack
import pytest

from conftest import scaled
import confab
from confab import _proto as P

# ---- frames ----------------------------------------------------------------


def test_encode_is_the_doc_example():
    # PROTOCOL.md 11.1, "ctl-id": the request {"op": "id", "rid": 1}.
    assert P.encode({"op": "id", "rid": 1}) == bytes.fromhex(
        "c40c82a26f70a26964a372696401")


def frames_of(data):
    """The (header, payload length) of each frame in data."""
    out, i = [], 0
    while i < len(data):
        if data[i] == 0xc4:
            n, h = data[i + 1], 2
        else:
            assert data[i] == 0xc5
            n, h = int.from_bytes(data[i + 1:i + 3], "big"), 3
        out.append((data[i:i + h].hex(), n))
        i += h + n
    return out


def padded(total):
    """A map whose msgpack encoding is exactly total bytes."""
    base = len(msgpack.packb({"ok": True, "pad": b""}, use_bin_type=True))
    n = total - base - 4  # a bin 32 header for big pads
    msg = {"ok": True, "pad": b"x" * n}
    while len(msgpack.packb(msg, use_bin_type=True)) < total:
        n += 1
        msg = {"ok": True, "pad": b"x" * n}
    while len(msgpack.packb(msg, use_bin_type=True)) > total:
        n -= 1
        msg = {"ok": True, "pad": b"x" * n}
    assert len(msgpack.packb(msg, use_bin_type=True)) == total
    return msg


def test_encode_70000_bytes_takes_two_frames():
    # PROTOCOL.md 11.1: "c5 ffff" and 65535 bytes, then "c5 1171" and 4465.
    assert frames_of(P.encode(padded(70000))) == [("c5ffff", 65535),
                                                   ("c51171", 4465)]


def test_encode_exactly_one_frame_full_ends_with_an_empty_frame():
    assert frames_of(P.encode(padded(65535))) == [("c5ffff", 65535),
                                                   ("c400", 0)]
    assert frames_of(P.encode(padded(65534))) == [("c5fffe", 65534)]


def test_decoder_one_byte_at_a_time_across_frames():
    msg = padded(3 * 65535 + 10)
    data = P.encode(msg)
    dec = P.Decoder()
    got = []
    for i in range(len(data)):
        dec.feed(data[i:i + 1])
        m = dec.next()
        if m is not None:
            got.append((i, m))
    assert len(got) == 1
    assert got[0][0] == len(data) - 1
    assert got[0][1] == msg


def test_decoder_two_messages_in_one_read():
    dec = P.Decoder()
    dec.feed(P.encode({"rid": 1, "ok": True}) + P.encode({"ev": "peer"}))
    assert dec.next() == {"rid": 1, "ok": True}
    assert dec.next() == {"ev": "peer"}
    assert dec.next() is None


def test_decoder_refuses_past_its_bound_before_the_bytes_come():
    dec = P.Decoder(max_message=100000)
    dec.feed(b"\xc5\xff\xff" + b"x" * 65535)
    assert dec.next() is None
    # The next header says 65535 more: over the bound, refused at once,
    # without waiting for (or holding) its payload.
    dec.feed(b"\xc5\xff\xff")
    with pytest.raises(confab.ProtocolError) as e:
        dec.next()
    assert e.value.code == "EMSGSIZE"
    assert e.value.exit_status == 2


@pytest.mark.parametrize("data, what", [
    (b"\xc6\x00\x00\x00\x01\x80", "bin 32 frame"),
    (b"\x82", "not a frame"),
    (b"\xc4\x02\x80\x80", "trailing bytes"),
    (b"\xc4\x01\x90", "an array, not a map"),
    (b"\xc4\x03\x81\x01\x02", "an int key"),
    (b"\xc4\x03\x81\xa1\xff", "bad UTF-8, cut short"),
    (b"\xc4\x05\xdf\xff\xff\xff\xff", "a map count larger than the bytes"),
])
def test_decoder_rejects(data, what):
    dec = P.Decoder()
    dec.feed(data)
    with pytest.raises(confab.ProtocolError):
        dec.next()
        raise AssertionError("accepted " + what)


# ---- where the node is ------------------------------------------------------


def test_default_home(monkeypatch):
    monkeypatch.setenv("CONFAB_HOME", "/x/ch")
    assert P.default_home() == "/x/ch"
    monkeypatch.delenv("CONFAB_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", "/x/data")
    assert P.default_home() == "/x/data/confab"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", "/x/me")
    assert P.default_home() == "/x/me/.local/share/confab"
    assert P.socket_path(None) == "/x/me/.local/share/confab/control.sock"
    assert P.socket_path("/h") == "/h/control.sock"
    assert P.socket_path("/h/other.sock") == "/h/other.sock"


def test_socket_path_too_long():
    with pytest.raises(confab.NodeUnavailable) as e:
        P.socket_path("/" + "d" * 200)
    assert "too long" in str(e.value)


def test_no_node_running(tmp_path):
    with pytest.raises(confab.NodeNotRunning) as e:
        confab.connect(str(tmp_path))
    assert "no node is running with home %s" % tmp_path in str(e.value)
    assert "confab run" in str(e.value)
    assert e.value.exit_status == 2
    assert e.value.code == "ENOENT"


def test_no_node_running_stale_socket(tmp_path):
    # A socket file left by a node that died: nobody listens.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(tmp_path / "control.sock"))
    s.close()
    with pytest.raises(confab.NodeNotRunning) as e:
        confab.connect(str(tmp_path))
    assert e.value.code == "ECONNREFUSED"
    assert "confab run" in str(e.value)


def test_no_node_running_async(tmp_path):
    with pytest.raises(confab.NodeNotRunning) as e:
        asyncio.run(confab.aio.connect(str(tmp_path)))
    assert "confab run" in str(e.value)


# ---- peers by name or id ------------------------------------------------------


def peer(hexid, name, state="up"):
    return confab.Peer(id=bytes.fromhex(hexid.ljust(64, "0")), name=name,
                       address="", state=state)


PEERS = [peer("abcd01", "alice"), peer("abcd02", "bob"),
         peer("ef", "carol"), peer("12", "bob2"), peer("99", "dup"),
         peer("98", "dup")]


def test_resolve_by_name_and_prefix():
    assert P.resolve(PEERS, "alice").name == "alice"
    assert P.resolve(PEERS, "abcd02").name == "bob"
    assert P.resolve(PEERS, "ABCD02").name == "bob"  # any case
    assert P.resolve(PEERS, "ef00").name == "carol"


@pytest.mark.parametrize("arg, cls, words", [
    ("abcd", confab.AmbiguousPeer, "ambiguous: 2 peers"),
    ("dup", confab.AmbiguousPeer, "ambiguous: 2 peers"),
    ("abc", confab.UnknownPeer, "at least 4 hex digits"),
    ("0000", confab.UnknownPeer, "no peer's id starts with it"),
    ("zed", confab.UnknownPeer, "no peer is named 'zed'"),
])
def test_resolve_fails(arg, cls, words):
    with pytest.raises(cls) as e:
        P.resolve(PEERS, arg)
    assert words in str(e.value)
    assert e.value.exit_status == 3


def test_resolve_with_no_peers():
    with pytest.raises(confab.UnknownPeer) as e:
        P.resolve([], "x")
    assert "knows no peers yet" in str(e.value)


# ---- errors ---------------------------------------------------------------------


@pytest.mark.parametrize("err, cls, status", [
    (errno.ESRCH, confab.UnknownPeer, 3),
    (errno.ENOENT, confab.UnknownGroup, 3),
    (errno.ETIMEDOUT, confab.Timeout, 4),
    (errno.EAGAIN, confab.Refused, 5),
    (errno.EMSGSIZE, confab.Refused, 5),
    (errno.ENOTCONN, confab.Refused, 5),
    (errno.ENOSPC, confab.Refused, 5),
    (errno.EINVAL, confab.InvalidArgument, 1),
    (errno.EIO, confab.Failed, 6),
    (errno.ENOTSUP, confab.Failed, 6),
])
def test_errors_map_as_the_command_exits(err, cls, status):
    # The same table as cli_exit_for() in cli/client.c and confab(1).
    e = confab.errors.error_from_reply(
        {"ok": False, "err": -err, "code": "E", "msg": "what to do"}, "x")
    assert type(e) is cls
    assert (e.exit_status, e.err, e.code, e.msg, str(e), e.op) == (
        status, -err, "E", "what to do", "what to do", "x")


def test_body_bounds():
    assert P.body_of("é", None) == (b"\xc3\xa9", "text/plain")
    assert P.body_of(b"\x00", None) == (b"\x00", "application/octet-stream")
    with pytest.raises(confab.Refused) as e:
        P.body_of(b"x" * (16 * 1024 * 1024 + 1), None)
    assert e.value.exit_status == 5
    with pytest.raises(confab.InvalidArgument):
        P.body_of(3, None)
    with pytest.raises(confab.InvalidArgument):
        P.check_group("g" * 65)
    assert P.check_group("#room") == "room"


# ---- against a fake node ----------------------------------------------------


class FakeNode:
    """A Unix socket server that answers the `id` request, then hands the
    connection (and the requests it read) to a test's script."""

    ID = bytes(range(32))

    def __init__(self, script):
        self.dir = tempfile.mkdtemp(prefix="confab-fake-")
        self.path = os.path.join(self.dir, "control.sock")
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(4)
        self.script = script
        self.error = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.srv.accept()
            with conn:
                conn.settimeout(scaled(20))
                self.dec = P.Decoder()
                self.conn = conn
                req = self.request()
                assert req["op"] == "id"
                self.reply(req, id=self.ID, name="fake")
                self.script(self)
        except Exception as e:  # shown by the test that waits on it
            self.error = e

    def request(self):
        while True:
            m = self.dec.next()
            if m is not None:
                return m
            got = self.conn.recv(65536)
            if not got:
                raise EOFError("the client closed")
            self.dec.feed(got)

    def reply(self, req, **fields):
        self.conn.sendall(P.encode(dict(fields, rid=req["rid"], ok=True)))

    def close(self):
        self.srv.close()
        self.thread.join(scaled(20))
        assert not self.thread.is_alive()
        os.unlink(self.path)
        os.rmdir(self.dir)
        if self.error is not None:
            raise self.error


def message_map(i, size):
    return {"mid": bytes([i]) * 16, "from": FakeNode.ID, "from_name": "fake",
            "kind": "unicast", "group": None, "seq": i, "ts": 1, "ct": None,
            "body": bytes([i]) * size}


def test_reply_spanning_frames_and_reads():
    """A recv reply of about 3 MiB: 48 frames, written in pieces of
    1000 bytes, so that the client must join many reads and frames."""
    sizes = (1 << 20, 1 << 20, 1 << 20, 7)

    def script(f):
        req = f.request()
        assert req["op"] == "recv"
        data = P.encode({"rid": req["rid"], "ok": True, "msgs": [
            message_map(i, n) for i, n in enumerate(sizes)]})
        assert len(data) > 3 * (1 << 20)
        for i in range(0, len(data), 1000):
            f.conn.sendall(data[i:i + 1000])
        f.request()  # until the client closes

    fake = FakeNode(script)
    try:
        with confab.connect(fake.path) as node:
            assert node.name == "fake" and node.id == FakeNode.ID
            msgs = node.recv()
            assert [len(m.body) for m in msgs] == list(sizes)
            assert all(m.body == bytes([i]) * sizes[i]
                       for i, m in enumerate(msgs))
    finally:
        with pytest.raises(EOFError):
            fake.close()


def test_node_closes_mid_frame():
    def script(f):
        req = f.request()
        data = P.encode({"rid": req["rid"], "ok": True, "pad": b"x" * 1000})
        f.conn.sendall(data[:500])  # then it goes away

    fake = FakeNode(script)
    try:
        node = confab.connect(fake.path)
        with pytest.raises(confab.ConnectionLost) as e:
            node.status()
        assert "closed the connection" in str(e.value)
        assert e.value.exit_status == 2
        # And it stays lost, at once, without a hang.
        with pytest.raises(confab.ConnectionLost):
            node.peers()
    finally:
        fake.close()


def test_node_closes_while_a_call_waits():
    def script(f):
        f.request()  # a send with wait: no answer, then the node stops

    fake = FakeNode(script)
    try:
        node = confab.connect(fake.path)
        with pytest.raises(confab.ConnectionLost):
            node.send(bytes(32), b"x", wait=True, timeout=scaled(20))
    finally:
        fake.close()


def test_no_answer_is_a_timeout():
    done = threading.Event()

    def script(f):
        f.request()
        done.wait(scaled(20))

    fake = FakeNode(script)
    try:
        node = confab.connect(fake.path, timeout=0.2)
        with pytest.raises(confab.Timeout) as e:
            node.status()
        assert e.value.exit_status == 4
        assert isinstance(e.value, TimeoutError)
    finally:
        done.set()
        fake.close()


def test_a_timed_read_keeps_the_socket_timeout():
    def script(f):
        f.reply(f.request(), ok=True)

    fake = FakeNode(script)
    try:
        conn = confab.Connection(fake.path, 7.0)
        reply, _ = conn.call({"op": "id"}, timeout=scaled(20))
        assert reply["name"] == "fake"
        reply, _ = conn.call({"op": "status"}, timeout=scaled(20))
        assert reply["ok"] is True
        assert conn.sock.gettimeout() == 7.0
        conn.close()
    finally:
        fake.close()


def test_a_reply_over_the_bound_closes():
    def script(f):
        req = f.request()
        try:  # the client may close as soon as it reads the length
            f.conn.sendall(P.encode({"rid": req["rid"], "ok": True,
                                     "pad": b"x" * 200000}))
        except (BrokenPipeError, ConnectionResetError):
            pass

    fake = FakeNode(script)
    try:
        conn = confab.Connection(fake.path, scaled(20), max_message=100000)
        reply, events = conn.call({"op": "id"})
        assert (reply["ok"], reply["name"], events) == (True, "fake", [])
        conn.send({"op": "status"})
        with pytest.raises(confab.ProtocolError):
            conn.next()
        with pytest.raises(confab.ProtocolError):  # the connection is done
            conn.next()
    finally:
        fake.close()


def test_async_reply_spanning_frames_and_node_closing():
    big = 300000

    def script(f):
        req = f.request()
        data = P.encode({"rid": req["rid"], "ok": True,
                         "msgs": [message_map(1, big)]})
        for i in range(0, len(data), 777):
            f.conn.sendall(data[i:i + 777])
        f.request()  # a second call: no answer; the node stops

    fake = FakeNode(script)

    async def go():
        node = await confab.aio.connect(fake.path)
        try:
            msgs = await node.recv()
            assert len(msgs) == 1 and msgs[0].body == b"\x01" * big
            with pytest.raises(confab.ConnectionLost):
                await node.status()
        finally:
            await node.close()

    try:
        asyncio.run(asyncio.wait_for(go(), scaled(30)))
    finally:
        fake.close()
