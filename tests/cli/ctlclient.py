"""A client of a node's control socket written from docs/PROTOCOL.md
(sections 1, 2 and 11) alone, with its own small msgpack codec: for tests
that need to see the protocol itself (which events come, and when), not
what the `confab` command makes of it."""
import os
import socket
import struct

MAX_FRAME = 65535


def pack(v):
    """msgpack for the types the control protocol uses."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if v < 0:
            raise ValueError("no negative ints in requests")
        if v < 0x80:
            return bytes([v])
        for tag, fmt, top in ((0xcc, ">B", 0xff), (0xcd, ">H", 0xffff),
                              (0xce, ">I", 0xffffffff),
                              (0xcf, ">Q", 0xffffffffffffffff)):
            if v <= top:
                return bytes([tag]) + struct.pack(fmt, v)
        raise ValueError("int too large")
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xa0 | len(b)]) + b
        if len(b) < 0x100:
            return b"\xd9" + bytes([len(b)]) + b
        if len(b) < 0x10000:
            return b"\xda" + struct.pack(">H", len(b)) + b
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(v, (bytes, bytearray)):
        if len(v) < 0x100:
            return b"\xc4" + bytes([len(v)]) + bytes(v)
        if len(v) < 0x10000:
            return b"\xc5" + struct.pack(">H", len(v)) + bytes(v)
        return b"\xc6" + struct.pack(">I", len(v)) + bytes(v)
    if isinstance(v, (list, tuple)):
        head = (bytes([0x90 | len(v)]) if len(v) < 16
                else b"\xdc" + struct.pack(">H", len(v)))
        return head + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        head = (bytes([0x80 | len(v)]) if len(v) < 16
                else b"\xde" + struct.pack(">H", len(v)))
        return head + b"".join(pack(k) + pack(x) for k, x in v.items())
    raise TypeError(type(v))


def unpack(b):
    v, end = _unpack(b, 0)
    if end != len(b):
        raise ValueError("trailing bytes")
    return v


def _unpack(b, i):
    t = b[i]
    i += 1
    if t < 0x80:
        return t, i
    if 0x80 <= t <= 0x8f:
        return _map(b, i, t & 0x0f)
    if 0x90 <= t <= 0x9f:
        return _array(b, i, t & 0x0f)
    if 0xa0 <= t <= 0xbf:
        n = t & 0x1f
        return b[i:i + n].decode(), i + n
    if t >= 0xe0:
        return t - 0x100, i
    if t == 0xc0:
        return None, i
    if t in (0xc2, 0xc3):
        return t == 0xc3, i
    sizes = {0xcc: ">B", 0xcd: ">H", 0xce: ">I", 0xcf: ">Q",
             0xd0: ">b", 0xd1: ">h", 0xd2: ">i", 0xd3: ">q"}
    if t in sizes:
        n = struct.calcsize(sizes[t])
        return struct.unpack(sizes[t], b[i:i + n])[0], i + n
    lens = {0xc4: ">B", 0xc5: ">H", 0xc6: ">I", 0xd9: ">B", 0xda: ">H",
            0xdb: ">I", 0xdc: ">H", 0xdd: ">I", 0xde: ">H", 0xdf: ">I"}
    if t in lens:
        k = struct.calcsize(lens[t])
        n = struct.unpack(lens[t], b[i:i + k])[0]
        i += k
        if t in (0xc4, 0xc5, 0xc6):
            return bytes(b[i:i + n]), i + n
        if t in (0xd9, 0xda, 0xdb):
            return b[i:i + n].decode(), i + n
        if t in (0xdc, 0xdd):
            return _array(b, i, n)
        return _map(b, i, n)
    raise ValueError("msgpack type 0x%02x is not used here" % t)


def _map(b, i, n):
    d = {}
    for _ in range(n):
        k, i = _unpack(b, i)
        d[k], i = _unpack(b, i)
    return d, i


def _array(b, i, n):
    a = []
    for _ in range(n):
        x, i = _unpack(b, i)
        a.append(x)
    return a, i


class Client:
    """One connection to <home>/control.sock."""

    def __init__(self, home, timeout):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(os.path.join(home, "control.sock"))
        self.buf = b""
        self.rid = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, msg):
        """Sends a request (a dict without rid); returns its rid."""
        self.rid += 1
        body = pack(dict(msg, rid=self.rid))
        out = b""
        # Frames of 65535 bytes say "more follows"; the last is shorter.
        while True:
            chunk, body = body[:MAX_FRAME], body[MAX_FRAME:]
            hdr = (b"\xc4" + bytes([len(chunk)]) if len(chunk) < 0x100
                   else b"\xc5" + struct.pack(">H", len(chunk)))
            out += hdr + chunk
            if len(chunk) < MAX_FRAME:
                break
        self.sock.sendall(out)
        return self.rid

    def _fill(self, n):
        while len(self.buf) < n:
            got = self.sock.recv(65536)
            if not got:
                raise EOFError("the node closed the control connection")
            self.buf += got

    def next(self):
        """The next reply or event, as a dict."""
        msg = b""
        while True:
            self._fill(1)
            if self.buf[0] == 0xc4:
                self._fill(2)
                n, k = self.buf[1], 2
            elif self.buf[0] == 0xc5:
                self._fill(3)
                n, k = struct.unpack(">H", self.buf[1:3])[0], 3
            else:
                raise ValueError("not a frame: 0x%02x" % self.buf[0])
            self._fill(k + n)
            msg += self.buf[k:k + n]
            self.buf = self.buf[k + n:]
            if n < MAX_FRAME:
                return unpack(msg)

    def call(self, msg):
        """Sends a request; returns (its reply, the events before it)."""
        rid = self.send(msg)
        events = []
        while True:
            m = self.next()
            if m.get("rid") == rid:
                return m, events
            if "ev" in m:
                events.append(m)
