"""The control protocol without I/O (docs/PROTOCOL.md section 11): where
the socket is, frames in and out, requests built, replies and events turned
into the dataclasses of confab.types, peers resolved by name or id. The
blocking client (confab.client) and the asyncio one (confab.aio) share it
and differ only in how they move bytes."""
from __future__ import annotations

import errno
import os
import stat
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import msgpack

from .errors import (AmbiguousPeer, InvalidArgument, NodeNotRunning,
                     NodeUnavailable, ProtocolError, Refused, UnknownPeer)
from .types import (AnycastResult, BroadcastResult, Event, Group, GroupEvent,
                    Message, Peer, PeerEvent, PingResult, Route, SendResult,
                    Status, TraceHop)

# 11.1: a frame of exactly this many bytes says that another follows.
MAX_FRAME = 65535
# The largest control message this client accepts: a recv reply holds up to
# 32 MiB of bodies, and one message body is at most 16 MiB; the confab
# command allows 64 MiB (cli/client.c MAX_CONTROL_MSG).
MAX_CONTROL_MSG = 64 << 20
# The largest message body a node takes (CONFAB_DEFAULT_MAX_MESSAGE).
MAX_BODY = 16 << 20
MAX_GROUP = 64      # bytes of a group name (CONFAB_MAX_GROUP)
MAX_CT = 128        # bytes of a content type (CONFAB_MAX_CT)
MAX_PING_DATA = 1024
ID_BYTES = 32
MIN_PREFIX = 4      # hex digits of an id prefix, as the confab command
# How long a call waits for its reply (seconds), as the confab command.
REPLY_TIMEOUT = 10.0
SEND_WAIT = 30.0    # send --wait
ANYCAST_WAIT = 120.0
PING_WAIT = 10.0    # the node itself answers ETIMEDOUT after 5 s
TRACE_WAIT = 10.0   # the node itself answers after 3 s at most
RECV_MAX = 10000    # messages in one recv reply (the node's own bound)
EVENT_KINDS = ("peer", "group")

PeerRef = Union[str, bytes, bytearray, Peer]
Data = Union[str, bytes, bytearray, memoryview]


# ---- where the node is ----------------------------------------------------

def default_home() -> str:
    """The home the confab command uses: $CONFAB_HOME, else
    $XDG_DATA_HOME/confab, else ~/.local/share/confab."""
    h = os.environ.get("CONFAB_HOME")
    if h:
        return h
    h = os.environ.get("XDG_DATA_HOME")
    if h:
        return os.path.join(h, "confab")
    h = os.environ.get("HOME") or os.path.expanduser("~")
    if not h or h == "~":
        raise NodeUnavailable("no home directory: give home=, or set "
                              "CONFAB_HOME", code="ENOENT",
                              err=-errno.ENOENT)
    return os.path.join(h, ".local", "share", "confab")


def socket_path(home: Union[str, "os.PathLike[str]", None]) -> str:
    """The control socket of a home directory (None: the default one), or
    home itself when it names the socket (a socket file, or a path ending
    in .sock)."""
    h = os.fspath(home) if home is not None else default_home()
    try:
        is_sock = stat.S_ISSOCK(os.stat(h).st_mode)
    except OSError:
        is_sock = False
    path = h if is_sock or h.endswith(".sock") else os.path.join(
        h, "control.sock")
    if len(os.fsencode(path)) >= 108:
        raise NodeUnavailable(
            "the control socket's path %s is too long for a Unix socket; "
            "use a shorter home" % path, code="ENAMETOOLONG",
            err=-errno.ENAMETOOLONG)
    return path


def connect_error(path: str, e: OSError) -> NodeUnavailable:
    """What a failed connect() means, said as the confab command says it."""
    home = os.path.dirname(path)
    code = errno.errorcode.get(e.errno or errno.EIO, "EIO")
    err = -(e.errno or errno.EIO)
    if e.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTDIR):
        return NodeNotRunning(
            "no node is running with home %s; start one with 'confab run' "
            "(or give the right home)" % home, err=err, code=code)
    if e.errno in (errno.EACCES, errno.EPERM):
        return NodeUnavailable(
            "cannot reach the node's control socket %s: %s; only the user "
            "who runs the node may use it" % (path, e.strerror),
            err=err, code=code)
    return NodeUnavailable("cannot reach the node's control socket %s: %s"
                           % (path, e.strerror), err=err, code=code)


def lost_message(path: str) -> str:
    """Why a connection ended, as the confab command says it: a node
    closes at once a connection from another user (SO_PEERCRED)."""
    try:
        uid = os.stat(path).st_uid
    except OSError:
        uid = os.geteuid()
    if uid != os.geteuid():
        return ("the node refused this connection: its control socket %s "
                "belongs to uid %d, and only the user who runs the node may "
                "use it" % (path, uid))
    return ("the node closed the connection; did it stop? "
            "('confab status' tells)")


# ---- frames (11.1) ----------------------------------------------------------

def encode(msg: Dict[str, Any]) -> bytes:
    """A control message as the frames that carry it."""
    body = msgpack.packb(msg, use_bin_type=True)
    out = []
    off = 0
    while True:
        chunk = body[off:off + MAX_FRAME]
        off += len(chunk)
        n = len(chunk)
        out.append(bytes((0xc4, n)) if n < 0x100
                   else bytes((0xc5, n >> 8, n & 0xff)))
        out.append(chunk)
        if n < MAX_FRAME:
            return b"".join(out)


class Decoder:
    """Control messages out of a byte stream: feed() what was read, then
    next() until it returns None. It holds at most one frame and the
    parts of one message, and refuses (ProtocolError) a message over
    max_message bytes as soon as a frame header says it would be, so a
    length from the other side is never trusted with memory."""

    def __init__(self, max_message: int = MAX_CONTROL_MSG):
        self.max_message = max_message
        self._buf = bytearray()
        self._parts: List[bytes] = []
        self._len = 0

    def feed(self, data: bytes) -> None:
        self._buf += data

    def pending(self) -> int:
        """Bytes held of a message not yet whole."""
        return len(self._buf) + self._len

    def next(self) -> Optional[Dict[str, Any]]:
        buf = self._buf
        while buf:
            if buf[0] == 0xc4:
                if len(buf) < 2:
                    return None
                hl, n = 2, buf[1]
            elif buf[0] == 0xc5:
                if len(buf) < 3:
                    return None
                hl, n = 3, (buf[1] << 8) | buf[2]
            else:
                raise ProtocolError(
                    "the node sent a broken message (a frame starts with "
                    "0x%02x, not bin 8 or bin 16)" % buf[0],
                    code="EPROTO", err=-errno.EPROTO)
            if n > self.max_message - self._len:
                raise ProtocolError(
                    "the node sent a message over %d bytes, the bound of "
                    "this client" % self.max_message,
                    code="EMSGSIZE", err=-errno.EMSGSIZE)
            if len(buf) - hl < n:
                return None
            self._parts.append(bytes(buf[hl:hl + n]))
            self._len += n
            del buf[:hl + n]
            if n < MAX_FRAME:
                body = b"".join(self._parts)
                self._parts, self._len = [], 0
                return decode(body)
        return None


def decode(body: bytes) -> Dict[str, Any]:
    """One control message: a map with str keys, nothing after it."""
    try:
        m = msgpack.unpackb(body, raw=False, strict_map_key=True,
                            use_list=True)
    except Exception as e:  # msgpack's own errors, bad UTF-8, extra data
        raise ProtocolError("the node sent a broken message (%s)" % e,
                            code="EPROTO", err=-errno.EPROTO) from None
    if not isinstance(m, dict) or not all(isinstance(k, str) for k in m):
        raise ProtocolError("the node sent a control message that is not "
                            "a map with str keys", code="EPROTO",
                            err=-errno.EPROTO)
    return m


# ---- fields of replies and events -------------------------------------------

def _bad(what: str) -> ProtocolError:
    return ProtocolError("the node sent a malformed %s" % what,
                         code="EPROTO", err=-errno.EPROTO)


def _get(m: Dict[str, Any], key: str, typ: Any, what: str,
         default: Any = ..., size: Optional[int] = None) -> Any:
    v = m.get(key, default)
    if v is ...:
        raise _bad("%s (no %s)" % (what, key))
    if v is default and default is not ...:
        return v
    if typ is int and (isinstance(v, bool) or not isinstance(v, int)):
        raise _bad("%s (%s is not an integer)" % (what, key))
    if not isinstance(v, typ):
        raise _bad("%s (%s has the wrong type)" % (what, key))
    if size is not None and len(v) != size:
        raise _bad("%s (%s is %d bytes, not %d)" % (what, key, len(v), size))
    return v


def message(m: Any) -> Message:
    what = "message"
    if not isinstance(m, dict):
        raise _bad(what)
    return Message(
        mid=_get(m, "mid", bytes, what, size=16),
        sender=_get(m, "from", bytes, what, size=ID_BYTES),
        sender_name=_get(m, "from_name", str, what),
        kind=_get(m, "kind", str, what),
        group=_get(m, "group", str, what, None),
        seq=_get(m, "seq", int, what, 0),
        ts=_get(m, "ts", int, what, 0),
        ct=_get(m, "ct", str, what, None),
        body=_get(m, "body", bytes, what),
        hops=_get(m, "hops", int, what, 1))


def messages(reply: Dict[str, Any]) -> List[Message]:
    return [message(x) for x in _get(reply, "msgs", list, "recv reply")]


def peer(m: Any) -> Peer:
    what = "peer list"
    if not isinstance(m, dict):
        raise _bad(what)
    return Peer(
        id=_get(m, "id", bytes, what, size=ID_BYTES),
        name=_get(m, "name", str, what),
        address=_get(m, "address", str, what, ""),
        state=_get(m, "state", str, what),
        rtt_us=_get(m, "rtt_us", int, what, 0),
        outbound=_get(m, "outbound", bool, what, False),
        msgs_sent=_get(m, "msgs_sent", int, what, 0),
        msgs_received=_get(m, "msgs_received", int, what, 0),
        bytes_sent=_get(m, "bytes_sent", int, what, 0),
        bytes_received=_get(m, "bytes_received", int, what, 0),
        queued=_get(m, "queued", int, what, 0))


def peers(reply: Dict[str, Any]) -> List[Peer]:
    return [peer(x) for x in _get(reply, "peers", list, "peer list")]


def status(r: Dict[str, Any]) -> Status:
    what = "status reply"
    groups = _get(r, "groups", list, what, [])
    stats = _get(r, "stats", dict, what, {})
    if not all(isinstance(g, str) for g in groups) or not all(
            isinstance(v, int) for v in stats.values()):
        raise _bad(what)
    return Status(id=_get(r, "id", bytes, what, size=ID_BYTES),
                  name=_get(r, "name", str, what),
                  port=_get(r, "port", int, what, 0),
                  peers=_get(r, "peers", int, what, 0),
                  known=_get(r, "known", int, what, 0),
                  groups=list(groups), stats=dict(stats),
                  inbox=_get(r, "inbox", int, what, 0))


def groups(reply: Dict[str, Any]) -> List[Group]:
    what = "group list"
    out = []
    for g in _get(reply, "groups", list, what):
        if not isinstance(g, dict):
            raise _bad(what)
        members = _get(g, "members", list, what)
        if not all(isinstance(x, bytes) and len(x) == ID_BYTES
                   for x in members):
            raise _bad(what)
        out.append(Group(name=_get(g, "group", str, what),
                         members=list(members),
                         joined=_get(g, "self", bool, what, False)))
    return out


def ident(reply: Dict[str, Any]) -> Tuple[bytes, str]:
    return (_get(reply, "id", bytes, "id reply", size=ID_BYTES),
            _get(reply, "name", str, "id reply"))


def send_result(reply: Dict[str, Any]) -> SendResult:
    return SendResult(mid=_get(reply, "mid", bytes, "send reply", size=16),
                      status=_get(reply, "status", str, "send reply", None),
                      hops=_get(reply, "hops", int, "send reply", None))


def route(m: Any) -> Route:
    what = "route table"
    if not isinstance(m, dict):
        raise _bad(what)
    return Route(dst=_get(m, "dst", bytes, what, size=ID_BYTES),
                 name=_get(m, "name", str, what, ""),
                 via=_get(m, "via", bytes, what, size=ID_BYTES),
                 metric=_get(m, "metric", int, what),
                 seq=_get(m, "seq", int, what, 0))


def routes(reply: Dict[str, Any]) -> List[Route]:
    return [route(x) for x in _get(reply, "routes", list, "routes reply")]


def trace_hop(m: Any) -> TraceHop:
    what = "trace reply"
    if not isinstance(m, dict):
        raise _bad(what)
    answered = _get(m, "answered", bool, what, False)
    return TraceHop(hop=_get(m, "hop", int, what),
                    answered=answered,
                    id=_get(m, "id", bytes, what, None, size=ID_BYTES)
                    if answered else None,
                    name=_get(m, "name", str, what, ""),
                    address=_get(m, "address", str, what, ""),
                    rtt_us=_get(m, "rtt_us", int, what, 0))


def trace(reply: Dict[str, Any]) -> List[TraceHop]:
    return [trace_hop(x) for x in _get(reply, "hops", list, "trace reply")]


def broadcast_result(reply: Dict[str, Any]) -> BroadcastResult:
    return BroadcastResult(
        mid=_get(reply, "mid", bytes, "reply", size=16),
        sent=_get(reply, "sent", int, "reply", 0))


def anycast_result(reply: Dict[str, Any]) -> AnycastResult:
    return AnycastResult(
        mid=_get(reply, "mid", bytes, "anycast reply", size=16),
        status=_get(reply, "status", str, "anycast reply"),
        member=_get(reply, "member", bytes, "anycast reply", None,
                    size=ID_BYTES))


def ping_result(reply: Dict[str, Any]) -> PingResult:
    return PingResult(rtt_us=_get(reply, "rtt_us", int, "ping reply"),
                      data=_get(reply, "data", bytes, "ping reply", b""))


def event(m: Dict[str, Any]) -> Optional[Event]:
    """A peer or group event; None for an event of another kind (a client
    ignores what it does not know)."""
    ev = m.get("ev")
    if ev == "peer":
        return PeerEvent(id=_get(m, "id", bytes, "peer event", size=ID_BYTES),
                         name=_get(m, "name", str, "peer event", ""),
                         state=_get(m, "state", str, "peer event"),
                         reason=_get(m, "reason", str, "peer event", None))
    if ev in ("join", "leave"):
        return GroupEvent(kind=ev,
                          id=_get(m, "id", bytes, "group event",
                                  size=ID_BYTES),
                          name=_get(m, "name", str, "group event", ""),
                          group=_get(m, "group", str, "group event"))
    return None


# ---- requests ----------------------------------------------------------------

def body_of(data: Data, ct: Optional[str]) -> Tuple[bytes, str]:
    """A message body and its content type: text is sent as UTF-8
    text/plain, bytes as application/octet-stream, as the confab command
    does; ct overrides."""
    if isinstance(data, str):
        body, kind = data.encode("utf-8"), "text/plain"
    elif isinstance(data, (bytes, bytearray, memoryview)):
        body, kind = bytes(data), "application/octet-stream"
    else:
        raise InvalidArgument("a message is str or bytes, not %s"
                              % type(data).__name__, code="EINVAL",
                              err=-errno.EINVAL)
    if len(body) > MAX_BODY:
        raise Refused("the message is %d bytes; a message is at most %d "
                      "bytes (16 MiB)" % (len(body), MAX_BODY),
                      code="EMSGSIZE", err=-errno.EMSGSIZE)
    if ct is None:
        ct = kind
    if not isinstance(ct, str) or len(ct.encode("utf-8")) > MAX_CT:
        raise InvalidArgument("a content type is a str of at most %d bytes"
                              % MAX_CT, code="EINVAL", err=-errno.EINVAL)
    return body, ct


def check_group(group: str) -> str:
    """A group name; "#room" is "room", as the confab command takes it."""
    if isinstance(group, str) and group.startswith("#") and len(group) > 1:
        group = group[1:]
    if not isinstance(group, str) or not 1 <= len(
            group.encode("utf-8")) <= MAX_GROUP:
        raise InvalidArgument("a group name is 1 to %d bytes" % MAX_GROUP,
                              code="EINVAL", err=-errno.EINVAL)
    return group


def check_events(kinds: Sequence[str]) -> List[str]:
    ks = list(kinds)
    if not ks or any(k not in EVENT_KINDS for k in ks):
        raise InvalidArgument("the event kinds are %s, not %r"
                              % (" and ".join(EVENT_KINDS), kinds),
                              code="EINVAL", err=-errno.EINVAL)
    return ks


def direct_id(ref: PeerRef) -> Optional[bytes]:
    """The id of a peer given as one (32 bytes, or a Peer); None when ref
    is a name or hex digits to look up."""
    if isinstance(ref, Peer):
        return ref.id
    if isinstance(ref, (bytes, bytearray)):
        if len(ref) != ID_BYTES:
            raise InvalidArgument("a node id is %d bytes, not %d"
                                  % (ID_BYTES, len(ref)), code="EINVAL",
                                  err=-errno.EINVAL)
        return bytes(ref)
    if not isinstance(ref, str) or not ref:
        raise InvalidArgument("a peer is a name, hex digits of its id, its "
                              "id (bytes) or a Peer, not %r" % (ref,),
                              code="EINVAL", err=-errno.EINVAL)
    return None


def resolve(known: List[Peer], arg: str) -> Peer:
    """A peer by name, or by at least 4 hex digits of the start of its id,
    exactly as the confab command resolves PEER (cli/peers.c)."""
    by_name = [p for p in known if p.name == arg]
    if len(by_name) == 1:
        return by_name[0]
    low = arg.lower()
    is_hex = 0 < len(arg) <= 2 * ID_BYTES and all(
        c in "0123456789abcdef" for c in low)
    by_hex: List[Peer] = []
    if not by_name and is_hex and len(arg) >= MIN_PREFIX:
        by_hex = [p for p in known if p.hex.startswith(low)]
        if len(by_hex) == 1:
            return by_hex[0]
    if len(by_name) > 1 or len(by_hex) > 1:
        many = by_name if len(by_name) > 1 else by_hex
        raise AmbiguousPeer(
            "'%s' is ambiguous: %d peers match (%s); give more hex digits "
            "of the id" % (arg, len(many), ", ".join(
                "%s %s" % (p.short, p.name) for p in many[:20])),
            many, code="ESRCH", err=-errno.ESRCH)
    if is_hex and len(arg) < MIN_PREFIX:
        why = ("no peer is named '%s', and an id prefix needs at least %d "
               "hex digits" % (arg, MIN_PREFIX))
    elif is_hex:
        why = "no peer is named '%s', and no peer's id starts with it" % arg
    else:
        why = "no peer is named '%s'" % arg
    if known:
        why += "; the known peers: " + ", ".join(
            "%s %s (%s)" % (p.short, p.name, p.state) for p in known[:20])
    else:
        why += ("; this node knows no peers yet (node.peers() lists them "
                "once they are found)")
    raise UnknownPeer(why, code="ESRCH", err=-errno.ESRCH)
