"""The blocking client: confab.connect() and the Node it returns, the
message and event streams, and Connection, the raw protocol for programs
that want to see the control messages themselves."""
from __future__ import annotations

import collections
import errno
import os
import socket
import threading
import time
from typing import (Any, Callable, Deque, Dict, Iterator, List, Optional,
                    Sequence, Tuple, Union)

from . import _proto as P
from .errors import (ConfabError, ConnectionLost, Timeout,
                     error_from_reply)
from .types import (AnycastResult, BroadcastResult, Event, Group, Message,
                    Peer, PingResult, Reply, Route, SendResult, Status,
                    TraceHop)

__all__ = ["connect", "Node", "Connection", "MessageStream", "EventStream",
           "Subscription", "Request", "ServeStream"]

_KEEP = object()  # "leave the socket's timeout as it is"
Home = Union[str, "os.PathLike[str]", None]


class Connection:
    """One connection to a node's control socket, speaking the protocol
    as it is (docs/PROTOCOL.md section 11): requests and replies are
    dicts, bin is bytes, str is str.

    timeout (seconds, None: none) bounds each read; max_message bounds a
    whole incoming message (over it: ProtocolError, and the connection is
    closed). Not for use by several threads at once."""

    def __init__(self, home: Home = None, timeout: Optional[float] = 10.0,
                 *, max_message: int = P.MAX_CONTROL_MSG):
        self.path = P.socket_path(home)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(self.path)
        except OSError as e:
            self.sock.close()
            raise P.connect_error(self.path, e) from None
        self.rid = 0
        self._dec = P.Decoder(max_message)
        self._dead: Optional[ConfabError] = None

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _lost(self, e: Optional[BaseException] = None) -> ConfabError:
        if isinstance(e, ConfabError):
            self._dead = e
        else:
            self._dead = ConnectionLost(P.lost_message(self.path),
                                        code="ECONNRESET",
                                        err=-errno.ECONNRESET)
        self.sock.close()
        return self._dead

    def send(self, msg: Dict[str, Any]) -> int:
        """Sends a request (a dict without rid); returns its rid."""
        if self._dead is not None:
            raise self._dead
        self.rid += 1
        data = P.encode(dict(msg, rid=self.rid))
        try:
            self.sock.sendall(data)
        except socket.timeout:
            raise self._lost(Timeout(
                "the node did not take the request in time", code="ETIMEDOUT",
                err=-errno.ETIMEDOUT)) from None
        except OSError as e:
            raise self._lost(e) from None
        return self.rid

    def next(self, timeout: Any = _KEEP) -> Dict[str, Any]:
        """The next reply or event. Waits at most timeout seconds (None:
        with no limit; not given: the socket's timeout) and raises
        confab.Timeout then (the connection stays usable); raises
        ConnectionLost when the node closes the connection and
        ProtocolError when it sends something broken."""
        if self._dead is not None:
            raise self._dead
        if timeout is _KEEP:
            return self._next(None, False)
        # A timeout for this read only: the socket's own comes back after.
        before = self.sock.gettimeout()
        try:
            return self._next(None if timeout is None
                              else time.monotonic() + timeout, True)
        finally:
            if self._dead is None:
                try:
                    self.sock.settimeout(before)
                except OSError:
                    pass  # closed meanwhile by close() from another thread

    def _next(self, deadline: Optional[float], timed: bool
              ) -> Dict[str, Any]:
        while True:
            try:
                m = self._dec.next()
            except ConfabError as e:
                raise self._lost(e) from None
            if m is not None:
                return m
            if timed:
                left = None if deadline is None else max(
                    0.0, deadline - time.monotonic())
                if left == 0.0:
                    raise Timeout("the node did not answer in time",
                                  code="ETIMEDOUT", err=-errno.ETIMEDOUT)
                self.sock.settimeout(left)
            try:
                got = self.sock.recv(65536)
            except socket.timeout:
                raise Timeout("the node did not answer in time",
                              code="ETIMEDOUT", err=-errno.ETIMEDOUT) from None
            except OSError as e:
                raise self._lost(e) from None
            if not got:
                raise self._lost()
            self._dec.feed(got)

    def call(self, msg: Dict[str, Any], timeout: Any = _KEEP
             ) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
        """Sends a request; returns (its reply, the events that came
        before it). The reply may have ok false: nothing is raised for
        that here. timeout bounds the whole wait."""
        rid = self.send(msg)
        deadline = None
        if timeout is not _KEEP and timeout is not None:
            deadline = time.monotonic() + timeout
        events = []
        while True:
            left: Any = timeout
            if deadline is not None:
                left = max(0.0, deadline - time.monotonic())
            m = self.next(left)
            if m.get("rid") == rid:
                return m, events
            if "ev" in m:
                events.append(m)


def connect(home: Home = None, *, timeout: float = P.REPLY_TIMEOUT
            ) -> "Node":
    """Connects to the node running with this home directory (None: the
    confab command's default, $CONFAB_HOME, $XDG_DATA_HOME/confab or
    ~/.local/share/confab), or to the control socket at this path.

    Raises NodeNotRunning when no node runs there (start one with
    `confab run`). timeout is how long a call waits for its reply."""
    return Node(home, timeout=timeout)


class Node:
    """A running node, driven through its control socket. Every method is
    one request; a Node may be shared by threads (their calls take turns
    on its one connection); messages() and events() open connections of
    their own, so a loop over them may call the Node freely."""

    def __init__(self, home: Home = None, *, timeout: float = P.REPLY_TIMEOUT):
        self.timeout = timeout
        self.home = home
        self._conn = Connection(home, timeout)
        self.path = self._conn.path
        self._lock = threading.Lock()
        # Messages taken from the node (marked read) but not yet handed
        # out: by a stream closed early. The next recv or stream has them.
        self._pending: Deque[Message] = collections.deque()
        try:
            self._id, self._name = P.ident(self.call("id"))
        except BaseException:
            self._conn.close()
            raise

    @property
    def id(self) -> bytes:
        """This node's id (32 bytes); .hex() gives the 64 hex digits."""
        return self._id

    @property
    def name(self) -> str:
        return self._name

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Node":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<confab.Node %s %s at %s>" % (self._id.hex()[:8],
                                               self._name, self.path)

    def _connection(self) -> Connection:
        return Connection(self.home if self.home is not None else self.path,
                          self.timeout)

    def call(self, op: str, timeout: Optional[float] = None,
             **fields: Any) -> Dict[str, Any]:
        """One request by its op name and fields; returns the reply (ok
        true) or raises the ConfabError for it."""
        with self._lock:
            reply, _ = self._conn.call(
                dict(fields, op=op),
                self.timeout if timeout is None else timeout)
        if reply.get("ok") is not True:
            raise error_from_reply(reply, op)
        return reply

    # ---- the node and its peers ------------------------------------------

    def status(self) -> Status:
        return P.status(self.call("status"))

    def peers(self) -> List[Peer]:
        """The peers this node knows, linked or not."""
        return P.peers(self.call("peers"))

    def peer(self, ref: P.PeerRef) -> Peer:
        """A peer by name, by at least 4 hex digits of its id, or by its
        id; raises UnknownPeer (or AmbiguousPeer)."""
        known = self.peers()
        pid = P.direct_id(ref)
        if pid is None:
            return P.resolve(known, str(ref))
        for p in known:
            if p.id == pid:
                return p
        raise P.UnknownPeer("no known peer has id %s" % pid.hex(),
                            code="ESRCH", err=-errno.ESRCH)

    def _to(self, ref: P.PeerRef) -> bytes:
        pid = P.direct_id(ref)
        if pid is not None:
            return pid
        return P.resolve(self.peers(), str(ref)).id

    # ---- routes (docs/PROTOCOL.md section 13) ------------------------------

    def routes(self) -> List[Route]:
        """The route table: every node this one knows a route to, with
        the linked peer it goes through (``via``) and its hops
        (``metric``; 16 is unreachable). Nodes reached only through others
        are those with a reachable route and no link (``confab peers``
        lists them as "reachable through others")."""
        return P.routes(self.call("routes"))

    def trace(self, peer: P.PeerRef, *, timeout: float = P.TRACE_WAIT
              ) -> List[TraceHop]:
        """The path a message to peer takes, as ``confab trace`` shows
        it: one TraceHop per hop, in order; the last is the peer itself
        when it answered. Raises UnknownPeer when there is neither a link
        nor a route to it."""
        return P.trace(self.call("trace", timeout, to=self._to(peer)))

    def groups(self) -> List[Group]:
        return P.groups(self.call("groups"))

    def join(self, group: str) -> None:
        self.call("join", group=P.check_group(group))

    def leave(self, group: str) -> None:
        """Raises UnknownGroup when this node is not in the group."""
        self.call("leave", group=P.check_group(group))

    # ---- sending -----------------------------------------------------------

    def send(self, peer: P.PeerRef, data: P.Data, *, wait: bool = True,
             timeout: float = P.SEND_WAIT, ct: Optional[str] = None,
             ttl: Optional[float] = None) -> SendResult:
        """A unicast to one peer (a name, hex digits of its id, its id or
        a Peer). str is sent as text/plain, bytes as
        application/octet-stream (ct overrides). With wait, returns once
        the outcome is known: status delivered, expired or failed; raises
        Timeout after timeout seconds without one (the message stays
        queued in the node). Without wait, returns once the node accepted
        it. ttl: seconds it may wait for the peer (the node's default is
        24 hours)."""
        to = self._to(peer)
        body, ctype = P.body_of(data, ct)
        req: Dict[str, Any] = {"to": to, "body": body, "ct": ctype}
        if wait:
            req["wait"] = True
        if ttl is not None:
            req["ttl_ms"] = max(1, int(ttl * 1000))
        try:
            return P.send_result(self.call(
                "send", timeout if wait else self.timeout, **req))
        except Timeout as e:
            if wait and e.code == "ETIMEDOUT" and e.err == -errno.ETIMEDOUT \
                    and e.op is None:
                raise Timeout("no outcome within %.1f s; the message stays "
                              "queued in the node" % timeout,
                              code="ETIMEDOUT", err=-errno.ETIMEDOUT,
                              op="send") from None
            raise

    def broadcast(self, data: P.Data, *, ct: Optional[str] = None
                  ) -> BroadcastResult:
        """To every linked peer, once, best effort; .sent says to how
        many."""
        body, ctype = P.body_of(data, ct)
        return P.broadcast_result(self.call("broadcast", body=body, ct=ctype))

    def shout(self, group: str, data: P.Data, *, ct: Optional[str] = None
              ) -> BroadcastResult:
        """To every linked member of group (multicast), best effort; this
        node need not be a member."""
        body, ctype = P.body_of(data, ct)
        return P.broadcast_result(self.call(
            "shout", group=P.check_group(group), body=body, ct=ctype))

    def anycast(self, group: str, data: P.Data, *, ct: Optional[str] = None,
                timeout: float = P.ANYCAST_WAIT) -> AnycastResult:
        """To exactly one member of group, the nearest, failing over to
        the next; returns the outcome (status delivered with member, or
        failed). Raises UnknownGroup when no linked peer is a member."""
        body, ctype = P.body_of(data, ct)
        return P.anycast_result(self.call(
            "anycast", timeout, group=P.check_group(group), body=body,
            ct=ctype))

    def ping(self, peer: P.PeerRef, data: bytes = b"", *,
             timeout: float = P.PING_WAIT) -> PingResult:
        """A PING over the link; the node answers Timeout after 5 s
        without a PONG."""
        if len(data) > P.MAX_PING_DATA:
            raise P.InvalidArgument("ping data is at most %d bytes"
                                    % P.MAX_PING_DATA, code="EINVAL",
                                    err=-errno.EINVAL)
        return P.ping_result(self.call("ping", timeout, to=self._to(peer),
                                       data=bytes(data)))

    # ---- requests and replies (docs/PROTOCOL.md section 14) ---------------

    def request(self, service: str, data: P.Data, *,
                peer: Optional[P.PeerRef] = None, all: bool = False,
                timeout: float = 10.0, try_timeout: Optional[float] = None
                ) -> List[Reply]:
        """Asks service (the nodes that serve() it) and returns the
        replies that came within timeout seconds: one, from the nearest
        server (the next one is asked when it does not answer within
        try_timeout), or from peer only; with all, one from each server
        that answered. Raises Timeout when none came, UnknownGroup when no
        linked node serves it."""
        body, _ = P.body_of(data, None)
        msg: Dict[str, Any] = {"op": "request",
                               "service": P.check_group(service),
                               "body": body, "timeout_ms": int(timeout * 1000)}
        if peer is not None:
            msg["peer"] = self._to(peer)
        if all:
            msg["all"] = True
        if try_timeout is not None:
            msg["try_ms"] = int(try_timeout * 1000)
        with self._connection() as conn:
            reply, _ = conn.call(msg, self.timeout)
            if reply.get("ok") is not True:
                raise error_from_reply(reply, "request")
            rid = reply["rid"]
            replies = []
            end = time.monotonic() + timeout + 5.0
            while True:
                m = conn.next(max(0.0, end - time.monotonic()))
                if "ev" not in m or m.get("req") != rid:
                    continue
                if m["ev"] == "reply":
                    replies.append(Reply(m["from"], m["from_name"],
                                         m["status"], m["body"]))
                elif m["ev"] == "done":
                    if not replies:
                        raise Timeout("no server of %s answered within "
                                      "%g s" % (service, timeout),
                                      code="ETIMEDOUT", err=-errno.ETIMEDOUT)
                    return replies

    def serve(self, service: str, *, timeout: Optional[float] = None
              ) -> "ServeStream":
        """Serves service: joins the group of that name and returns the
        requests for it as they come (iterate; answer each with
        .reply(data) or .error(text)). The service ends when the stream is
        closed."""
        return ServeStream(self, P.check_group(service), timeout)

    # ---- receiving ---------------------------------------------------------

    def recv(self, max: Optional[int] = None) -> List[Message]:
        """The unread messages, oldest first (at most max), without
        waiting; they are marked read."""
        out: List[Message] = []
        while self._pending and (max is None or len(out) < max):
            out.append(self._pending.popleft())
        want = None if max is None else max - len(out)
        if want == 0:
            return out
        fields = {} if want is None else {"max": want}
        return out + P.messages(self.call("recv", **fields))

    def messages(self, follow: bool = True, *,
                 timeout: Optional[float] = None) -> "MessageStream":
        """The messages, as an iterator: the unread ones, then (with
        follow) each as it arrives. A message is marked read only when
        the iterator hands it out. With timeout, the iteration ends after
        that many seconds without a message."""
        return MessageStream(self, follow, timeout)

    def events(self, kinds: Sequence[str] = P.EVENT_KINDS, *,
               timeout: Optional[float] = None) -> "EventStream":
        """Peer events (up, down) and group events (join, leave) from now
        on, as an iterator of PeerEvent and GroupEvent; with timeout, it
        ends after that many seconds without one."""
        return EventStream(self, kinds, timeout)

    def subscribe(self, callback: Callable[[Event], Any],
                  kinds: Sequence[str] = P.EVENT_KINDS, *,
                  on_error: Optional[Callable[[BaseException], Any]] = None
                  ) -> "Subscription":
        """Calls callback(event) for each peer and group event, from a
        thread of its own, until the Subscription is closed (or the node
        stops: then on_error(ConnectionLost))."""
        return Subscription(self.events(kinds), callback, on_error)


class MessageStream:
    """Iterator of Message (Node.messages()). It takes one message at a
    time from the node (a recv with max 1, following when none is unread),
    so nothing is marked read that it did not hand out; close() (or the
    end of a with block) hands back to the Node any message taken while
    it stopped."""

    def __init__(self, node: Node, follow: bool, timeout: Optional[float]):
        self._node = node
        self._follow = follow
        self._timeout = timeout
        self._conn: Optional[Connection] = None
        self._following = False
        self._done = False

    def __iter__(self) -> "MessageStream":
        return self

    def __enter__(self) -> "MessageStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __next__(self) -> Message:
        if self._done:
            raise StopIteration
        if self._node._pending:
            return self._node._pending.popleft()
        if not self._follow:
            got = self._node.call("recv", max=1)
            msgs = P.messages(got)
            if not msgs:
                self._done = True
                raise StopIteration
            return msgs[0]
        if self._conn is None:
            self._conn = self._node._connection()
        try:
            m = self._take()
        except BaseException:
            # Interrupted while following (Ctrl-C, the node gone): end the
            # follow, so that nothing is marked read for a dead stream.
            self.close()
            raise
        if m is None:
            self.close()
            raise StopIteration
        return m

    def _take(self) -> Optional[Message]:
        conn = self._conn
        assert conn is not None
        self._following = True
        reply, early = conn.call({"op": "recv", "max": 1, "follow": True},
                                 self._node.timeout)
        # None come before the reply (no follow is on), but none is lost.
        self._node._pending.extend(P.message(e.get("msg")) for e in early
                                   if e.get("ev") == "msg")
        if reply.get("ok") is not True:
            raise error_from_reply(reply, "recv")
        msgs = P.messages(reply)
        if msgs:
            self._following = False
            return msgs[0]
        deadline = None if self._timeout is None else (
            time.monotonic() + self._timeout)
        while True:
            left = None if deadline is None else max(
                0.0, deadline - time.monotonic())
            try:
                ev = conn.next(left)
            except Timeout:
                return self._unfollow()
            if ev.get("ev") == "msg":
                self._following = False
                return P.message(ev.get("msg"))

    def _unfollow(self) -> Optional[Message]:
        """Ends a follow; a message the node sent before it ends is
        returned (it is marked read)."""
        conn = self._conn
        self._following = False
        if conn is None:
            return None
        _, events = conn.call({"op": "unfollow"}, self._node.timeout)
        got = [P.message(e.get("msg")) for e in events
               if e.get("ev") == "msg"]
        self._node._pending.extend(got[1:])
        return got[0] if got else None

    def close(self) -> None:
        """Stops; any message taken meanwhile goes back to the Node."""
        self._done = True
        if self._conn is None:
            return
        try:
            if self._following:
                m = self._unfollow()
                if m is not None:
                    self._node._pending.appendleft(m)
        except ConfabError:
            pass  # the node went away: there is nothing to hand back
        finally:
            self._conn.close()
            self._conn = None


class EventStream:
    """Iterator of PeerEvent and GroupEvent (Node.events()), on a
    connection of its own subscribed at once, so no later event is
    missed."""

    def __init__(self, node: Node, kinds: Sequence[str],
                 timeout: Optional[float]):
        ks = P.check_events(kinds)
        self._timeout = timeout
        self._conn = node._connection()
        try:
            reply, _ = self._conn.call({"op": "subscribe", "events": ks},
                                       node.timeout)
            if reply.get("ok") is not True:
                raise error_from_reply(reply, "subscribe")
        except BaseException:
            self._conn.close()
            raise

    def get(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event, or None after timeout seconds (None: waits
        without a limit) without one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(
                0.0, deadline - time.monotonic())
            try:
                m = self._conn.next(left)
            except Timeout:
                return None
            ev = P.event(m)
            if ev is not None:
                return ev

    def __iter__(self) -> Iterator[Event]:
        while True:
            ev = self.get(self._timeout)
            if ev is None:
                return
            yield ev

    def close(self) -> None:
        try:
            self._conn.sock.shutdown(socket.SHUT_RDWR)  # wakes a reader
        except OSError:
            pass
        self._conn.close()

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Subscription:
    """A thread that calls a callback for each event (Node.subscribe())."""

    def __init__(self, stream: EventStream, callback: Callable[[Event], Any],
                 on_error: Optional[Callable[[BaseException], Any]]):
        self._stream = stream
        self._callback = callback
        self._on_error = on_error
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="confab-subscription")
        self._thread.start()

    def _run(self) -> None:
        try:
            for ev in self._stream:
                self._callback(ev)
        except BaseException as e:
            if not self._closed and self._on_error is not None:
                self._on_error(e)

    def close(self, timeout: Optional[float] = 10.0) -> None:
        """Stops the thread and waits for it (not from the callback)."""
        self._closed = True
        self._stream.close()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Request:
    """A request for a service this program serves (ServeStream)."""

    def __init__(self, stream: "ServeStream", m: Dict[str, Any]):
        self._stream = stream
        self.handle: int = m["handle"]
        self.service: str = m["service"]
        self.sender: bytes = m["from"]
        self.sender_name: str = m["from_name"]
        self.body: bytes = m["body"]
        self.wait_ms: int = m["wait_ms"]
        self.max_reply: int = m["max_reply"]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def reply(self, data: P.Data) -> None:
        """Answers it (once). Raises NotFound when its requester stopped
        waiting, Refused when data is over what the requester takes."""
        body, _ = P.body_of(data, None)
        self._stream._answer(self.handle, body, False)

    def error(self, text: str) -> None:
        """Answers it with an error: text says what went wrong."""
        self._stream._answer(self.handle, text.encode(), True)


class ServeStream:
    """The requests for one service, on a connection of their own."""

    def __init__(self, node: Node, service: str, timeout: Optional[float]):
        self.service = service
        self.timeout = timeout
        self._conn = node._connection()
        self._queue: Deque[Dict[str, Any]] = collections.deque()
        try:
            reply, evs = self._conn.call({"op": "serve", "service": service},
                                         node.timeout)
        except BaseException:
            self._conn.close()
            raise
        if reply.get("ok") is not True:
            self._conn.close()
            raise error_from_reply(reply, "serve")
        self._queue.extend(evs)

    def _answer(self, handle: int, body: bytes, error: bool) -> None:
        reply, evs = self._conn.call({"op": "reply", "handle": handle,
                                      "body": body, "error": error},
                                     self.timeout)
        self._queue.extend(evs)
        if reply.get("ok") is not True:
            raise error_from_reply(reply, "reply")

    def get(self, timeout: Optional[float] = None) -> Optional[Request]:
        """The next request, or None after timeout seconds."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            while self._queue:
                m = self._queue.popleft()
                if m.get("ev") == "request":
                    return Request(self, m)
            left = None if end is None else max(0.0, end - time.monotonic())
            try:
                self._queue.append(self._conn.next(left))
            except Timeout:
                return None

    def __iter__(self) -> Iterator[Request]:
        while True:
            r = self.get(self.timeout)
            if r is None:
                return
            yield r

    def close(self) -> None:
        """Ends the service (the node answers what is left unanswered)."""
        self._conn.close()

    def __enter__(self) -> "ServeStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
