"""The asyncio client: ``node = await confab.aio.connect()``; every method
of confab.Node as a coroutine, ``async for msg in node.messages()`` and
``async for ev in node.events()``. Calls from several tasks may be in
flight at once on one connection: replies find their callers by rid."""
from __future__ import annotations

import asyncio
import collections
import errno
import os
from typing import (Any, Callable, Deque, Dict,
                    List, Optional, Sequence, Tuple, Union)

from . import _proto as P
from .errors import ConfabError, ConnectionLost, Timeout, error_from_reply
from .types import (AnycastResult, BroadcastResult, Event, Group, Message,
                    Peer, PingResult, Reply, Route, SendResult, Status,
                    TraceHop)

__all__ = ["connect", "AsyncNode", "AsyncConnection", "AsyncMessageStream",
           "AsyncEventStream", "AsyncSubscription"]

Home = Union[str, "os.PathLike[str]", None]


def _timeout(what: str = "the node did not answer in time") -> Timeout:
    return Timeout(what, code="ETIMEDOUT", err=-errno.ETIMEDOUT)


class AsyncConnection:
    """One connection to a node's control socket, raw (dicts), for
    asyncio. A reader task hands each reply to the call waiting for its
    rid and queues events (at most max_events; past that the connection
    is closed with ProtocolError rather than grow without bound).

    Timeouts are timers on plain futures, not asyncio.wait_for: before
    Python 3.12, wait_for can swallow a task's cancellation when the
    reply comes at the same moment, and a cancelled reader must stop."""

    def __init__(self, path: str, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, max_message: int,
                 max_events: int):
        self.path = path
        self._reader = reader
        self._writer = writer
        self._dec = P.Decoder(max_message)
        self._waiters: Dict[int, "asyncio.Future[Dict[str, Any]]"] = {}
        self._events: Deque[Dict[str, Any]] = collections.deque()
        self._event_waiter: "Optional[asyncio.Future[None]]" = None
        self._max_events = max_events
        self._dead: Optional[ConfabError] = None
        self.rid = 0
        self._task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, home: Home = None, *,
                   max_message: int = P.MAX_CONTROL_MSG,
                   max_events: int = 100000) -> "AsyncConnection":
        path = P.socket_path(home)
        try:
            reader, writer = await asyncio.open_unix_connection(path)
        except OSError as e:
            raise P.connect_error(path, e) from None
        return cls(path, reader, writer, max_message, max_events)

    async def _read(self) -> None:
        err: ConfabError
        try:
            while True:
                got = await self._reader.read(65536)
                if not got:
                    break
                self._dec.feed(got)
                while True:
                    m = self._dec.next()
                    if m is None:
                        break
                    self._dispatch(m)
            err = ConnectionLost(P.lost_message(self.path),
                                 code="ECONNRESET", err=-errno.ECONNRESET)
        except ConfabError as e:
            err = e
        except OSError:
            err = ConnectionLost(P.lost_message(self.path),
                                 code="ECONNRESET", err=-errno.ECONNRESET)
        except asyncio.CancelledError:
            err = ConnectionLost("the connection was closed",
                                 code="ECONNABORTED",
                                 err=-errno.ECONNABORTED)
        self._fail(err)

    def _wake(self) -> None:
        w = self._event_waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _dispatch(self, m: Dict[str, Any]) -> None:
        rid = m.get("rid")
        if "ev" in m and rid is None:
            if len(self._events) >= self._max_events:
                raise P.ProtocolError(
                    "more than %d events unread; closing the connection"
                    % self._max_events, code="ENOBUFS",
                    err=-errno.ENOBUFS)
            self._events.append(m)
            self._wake()
            return
        fut = self._waiters.pop(rid, None) if isinstance(rid, int) else None
        if fut is not None and not fut.done():
            fut.set_result(m)

    def _fail(self, err: ConfabError) -> None:
        if self._dead is None:
            self._dead = err
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(self._dead)
        self._waiters.clear()
        self._wake()
        self._writer.close()

    async def send(self, msg: Dict[str, Any]
                   ) -> Tuple[int, "asyncio.Future[Dict[str, Any]]"]:
        """Sends a request; returns its rid and the future of its reply."""
        if self._dead is not None:
            raise self._dead
        self.rid += 1
        rid = self.rid
        fut = asyncio.get_running_loop().create_future()
        self._waiters[rid] = fut
        self._writer.write(P.encode(dict(msg, rid=rid)))
        try:
            await self._writer.drain()
        except OSError:
            self._waiters.pop(rid, None)
            raise ConnectionLost(P.lost_message(self.path),
                                 code="ECONNRESET",
                                 err=-errno.ECONNRESET) from None
        return rid, fut

    async def call(self, msg: Dict[str, Any],
                   timeout: Optional[float] = None) -> Dict[str, Any]:
        """Sends a request and returns its reply (ok true or not); raises
        Timeout after timeout seconds, ConnectionLost if the node goes."""
        rid, fut = await self.send(msg)
        timer = None
        if timeout is not None:
            timer = asyncio.get_running_loop().call_later(
                timeout, lambda: fut.done() or fut.set_exception(_timeout()))
        try:
            return await fut
        finally:
            if timer is not None:
                timer.cancel()
            self._waiters.pop(rid, None)

    async def next_event(self, timeout: Optional[float] = None
                         ) -> Optional[Dict[str, Any]]:
        """The next event, None after timeout seconds without one; raises
        the connection's end (ConnectionLost...) once none is left."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._events:
            if self._dead is not None:
                raise self._dead
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return None
            w = self._event_waiter = loop.create_future()
            timer = None if left is None else loop.call_later(
                left, lambda: w.done() or w.set_result(None))
            try:
                await w
            finally:
                self._event_waiter = None
                if timer is not None:
                    timer.cancel()
        return self._events.popleft()

    def pending_events(self) -> List[Dict[str, Any]]:
        """The events queued now, taken."""
        out = list(self._events)
        self._events.clear()
        return out

    async def close(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError:
            pass


async def connect(home: Home = None, *, timeout: float = P.REPLY_TIMEOUT
                  ) -> "AsyncNode":
    """As confab.connect(), for asyncio: ``node = await connect()``."""
    node = AsyncNode(home, timeout)
    await node._open()
    return node


class AsyncNode:
    """A running node, for asyncio. Made by confab.aio.connect(); the
    methods are those of confab.Node, as coroutines."""

    def __init__(self, home: Home, timeout: float):
        self.home = home
        self.timeout = timeout
        self.path = P.socket_path(home)
        self._conn: Optional[AsyncConnection] = None
        self._pending: Deque[Message] = collections.deque()
        self._id = b""
        self._name = ""

    async def _open(self) -> None:
        self._conn = await AsyncConnection.open(self.path)
        try:
            self._id, self._name = P.ident(await self.call("id"))
        except BaseException:
            await self._conn.close()
            raise

    @property
    def id(self) -> bytes:
        return self._id

    @property
    def name(self) -> str:
        return self._name

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()

    async def __aenter__(self) -> "AsyncNode":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return "<confab.aio.AsyncNode %s %s at %s>" % (
            self._id.hex()[:8], self._name, self.path)

    async def call(self, op: str, timeout: Optional[float] = None,
                   **fields: Any) -> Dict[str, Any]:
        assert self._conn is not None
        reply = await self._conn.call(
            dict(fields, op=op), self.timeout if timeout is None else timeout)
        if reply.get("ok") is not True:
            raise error_from_reply(reply, op)
        return reply

    async def status(self) -> Status:
        return P.status(await self.call("status"))

    async def peers(self) -> List[Peer]:
        return P.peers(await self.call("peers"))

    async def peer(self, ref: P.PeerRef) -> Peer:
        known = await self.peers()
        pid = P.direct_id(ref)
        if pid is None:
            return P.resolve(known, str(ref))
        for p in known:
            if p.id == pid:
                return p
        raise P.UnknownPeer("no known peer has id %s" % pid.hex(),
                            code="ESRCH", err=-errno.ESRCH)

    async def _to(self, ref: P.PeerRef) -> bytes:
        pid = P.direct_id(ref)
        if pid is not None:
            return pid
        return P.resolve(await self.peers(), str(ref)).id

    async def groups(self) -> List[Group]:
        return P.groups(await self.call("groups"))

    async def join(self, group: str) -> None:
        await self.call("join", group=P.check_group(group))

    async def leave(self, group: str) -> None:
        await self.call("leave", group=P.check_group(group))

    async def send(self, peer: P.PeerRef, data: P.Data, *, wait: bool = True,
                   timeout: float = P.SEND_WAIT, ct: Optional[str] = None,
                   ttl: Optional[float] = None) -> SendResult:
        to = await self._to(peer)
        body, ctype = P.body_of(data, ct)
        req: Dict[str, Any] = {"to": to, "body": body, "ct": ctype}
        if wait:
            req["wait"] = True
        if ttl is not None:
            req["ttl_ms"] = max(1, int(ttl * 1000))
        try:
            return P.send_result(await self.call(
                "send", timeout if wait else self.timeout, **req))
        except Timeout as e:
            if wait and e.op is None:
                raise Timeout("no outcome within %.1f s; the message stays "
                              "queued in the node" % timeout,
                              code="ETIMEDOUT", err=-errno.ETIMEDOUT,
                              op="send") from None
            raise

    async def broadcast(self, data: P.Data, *, ct: Optional[str] = None
                        ) -> BroadcastResult:
        body, ctype = P.body_of(data, ct)
        return P.broadcast_result(await self.call("broadcast", body=body,
                                                  ct=ctype))

    async def shout(self, group: str, data: P.Data, *,
                    ct: Optional[str] = None) -> BroadcastResult:
        body, ctype = P.body_of(data, ct)
        return P.broadcast_result(await self.call(
            "shout", group=P.check_group(group), body=body, ct=ctype))

    async def anycast(self, group: str, data: P.Data, *,
                      ct: Optional[str] = None,
                      timeout: float = P.ANYCAST_WAIT) -> AnycastResult:
        body, ctype = P.body_of(data, ct)
        return P.anycast_result(await self.call(
            "anycast", timeout, group=P.check_group(group), body=body,
            ct=ctype))

    async def request(self, service: str, data: P.Data, *,
                      peer: Optional[P.PeerRef] = None, all: bool = False,
                      timeout: float = 10.0,
                      try_timeout: Optional[float] = None) -> List[Reply]:
        """As confab.Node.request(): the replies that came in time."""
        body, _ = P.body_of(data, None)
        msg: Dict[str, Any] = {"op": "request",
                               "service": P.check_group(service),
                               "body": body, "timeout_ms": int(timeout * 1000)}
        if peer is not None:
            msg["peer"] = await self._to(peer)
        if all:
            msg["all"] = True
        if try_timeout is not None:
            msg["try_ms"] = int(try_timeout * 1000)
        conn = await AsyncConnection.open(self.path)
        try:
            reply = await conn.call(msg, self.timeout)
            if reply.get("ok") is not True:
                raise error_from_reply(reply, "request")
            replies: List[Reply] = []
            while True:
                m = await conn.next_event(timeout + 5.0)
                if m is None:
                    raise Timeout("the node did not end the request",
                                  code="ETIMEDOUT", err=-errno.ETIMEDOUT)
                if m.get("req") != reply["rid"]:
                    continue
                if m["ev"] == "reply":
                    replies.append(Reply(m["from"], m["from_name"],
                                         m["status"], m["body"]))
                elif m["ev"] == "done":
                    if not replies:
                        raise Timeout("no server of %s answered within %g s"
                                      % (service, timeout),
                                      code="ETIMEDOUT", err=-errno.ETIMEDOUT)
                    return replies
        finally:
            await conn.close()

    async def routes(self) -> List[Route]:
        """The route table (Node.routes())."""
        return P.routes(await self.call("routes"))

    async def trace(self, peer: P.PeerRef, *, timeout: float = P.TRACE_WAIT
                    ) -> List[TraceHop]:
        """The path to peer, one TraceHop per hop (Node.trace())."""
        return P.trace(await self.call("trace", timeout,
                                       to=await self._to(peer)))

    async def ping(self, peer: P.PeerRef, data: bytes = b"", *,
                   timeout: float = P.PING_WAIT) -> PingResult:
        if len(data) > P.MAX_PING_DATA:
            raise P.InvalidArgument("ping data is at most %d bytes"
                                    % P.MAX_PING_DATA, code="EINVAL",
                                    err=-errno.EINVAL)
        return P.ping_result(await self.call(
            "ping", timeout, to=await self._to(peer), data=bytes(data)))

    async def recv(self, max: Optional[int] = None) -> List[Message]:
        out: List[Message] = []
        while self._pending and (max is None or len(out) < max):
            out.append(self._pending.popleft())
        want = None if max is None else max - len(out)
        if want == 0:
            return out
        fields = {} if want is None else {"max": want}
        return out + P.messages(await self.call("recv", **fields))

    def messages(self, follow: bool = True, *,
                 timeout: Optional[float] = None) -> "AsyncMessageStream":
        """``async for msg in node.messages()``: as Node.messages()."""
        return AsyncMessageStream(self, follow, timeout)

    def events(self, kinds: Sequence[str] = P.EVENT_KINDS, *,
               timeout: Optional[float] = None) -> "AsyncEventStream":
        """``async with node.events() as evs: async for ev in evs``."""
        return AsyncEventStream(self, kinds, timeout)

    async def subscribe(self, callback: Callable[[Event], Any],
                        kinds: Sequence[str] = P.EVENT_KINDS
                        ) -> "AsyncSubscription":
        """Calls callback(event) (a function or a coroutine function) for
        each event, from a task, until the subscription is closed."""
        stream = self.events(kinds)
        await stream.start()
        return AsyncSubscription(stream, callback)


class AsyncMessageStream:
    """Async iterator of Message; see confab.MessageStream."""

    def __init__(self, node: AsyncNode, follow: bool,
                 timeout: Optional[float]):
        self._node = node
        self._follow = follow
        self._timeout = timeout
        self._conn: Optional[AsyncConnection] = None
        self._following = False
        self._done = False

    def __aiter__(self) -> "AsyncMessageStream":
        return self

    async def __aenter__(self) -> "AsyncMessageStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def __anext__(self) -> Message:
        if self._done:
            raise StopAsyncIteration
        if self._node._pending:
            return self._node._pending.popleft()
        if not self._follow:
            msgs = P.messages(await self._node.call("recv", max=1))
            if not msgs:
                self._done = True
                raise StopAsyncIteration
            return msgs[0]
        if self._conn is None:
            self._conn = await AsyncConnection.open(self._node.path)
        try:
            m = await self._take()
        except asyncio.CancelledError:
            await self.aclose()
            raise
        if m is None:
            await self.aclose()
            raise StopAsyncIteration
        return m

    async def _take(self) -> Optional[Message]:
        conn = self._conn
        assert conn is not None
        self._following = True
        reply = await conn.call({"op": "recv", "max": 1, "follow": True},
                                self._node.timeout)
        if reply.get("ok") is not True:
            raise error_from_reply(reply, "recv")
        msgs = P.messages(reply)
        if msgs:
            self._following = False
            return msgs[0]
        loop = asyncio.get_running_loop()
        deadline = None if self._timeout is None else (
            loop.time() + self._timeout)
        while True:
            left = None if deadline is None else max(
                0.0, deadline - loop.time())
            ev = await conn.next_event(left)
            if ev is None:
                return await self._unfollow()
            if ev.get("ev") == "msg":
                self._following = False
                return P.message(ev.get("msg"))

    async def _unfollow(self) -> Optional[Message]:
        conn = self._conn
        self._following = False
        if conn is None:
            return None
        await conn.call({"op": "unfollow"}, self._node.timeout)
        got = [P.message(e.get("msg")) for e in conn.pending_events()
               if e.get("ev") == "msg"]
        self._node._pending.extend(got[1:])
        return got[0] if got else None

    async def aclose(self) -> None:
        """Stops; a message taken meanwhile goes back to the node object."""
        self._done = True
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if self._following:
                self._conn = conn
                m = await asyncio.shield(self._unfollow())
                if m is not None:
                    self._node._pending.appendleft(m)
        except (ConfabError, asyncio.CancelledError):
            pass
        finally:
            self._conn = None
            await conn.close()


class AsyncEventStream:
    """Async iterator of PeerEvent and GroupEvent, on a connection of its
    own, subscribed when first used (or by ``async with``)."""

    def __init__(self, node: AsyncNode, kinds: Sequence[str],
                 timeout: Optional[float]):
        self._kinds = P.check_events(kinds)
        self._node = node
        self._timeout = timeout
        self._conn: Optional[AsyncConnection] = None

    async def start(self) -> None:
        if self._conn is not None:
            return
        conn = await AsyncConnection.open(self._node.path)
        try:
            reply = await conn.call({"op": "subscribe",
                                     "events": self._kinds},
                                    self._node.timeout)
            if reply.get("ok") is not True:
                raise error_from_reply(reply, "subscribe")
        except BaseException:
            await conn.close()
            raise
        self._conn = conn

    async def get(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event, or None after timeout seconds without one."""
        await self.start()
        assert self._conn is not None
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            left = None if deadline is None else max(
                0.0, deadline - loop.time())
            m = await self._conn.next_event(left)
            if m is None:
                return None
            ev = P.event(m)
            if ev is not None:
                return ev

    def __aiter__(self) -> "AsyncEventStream":
        return self

    async def __anext__(self) -> Event:
        ev = await self.get(self._timeout)
        if ev is None:
            raise StopAsyncIteration
        return ev

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def __aenter__(self) -> "AsyncEventStream":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


class AsyncSubscription:
    """A task calling a callback for each event (AsyncNode.subscribe())."""

    def __init__(self, stream: AsyncEventStream,
                 callback: Callable[[Event], Any]):
        self._stream = stream
        self._callback = callback
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        async for ev in self._stream:
            r = self._callback(ev)
            if asyncio.iscoroutine(r):
                await r

    async def close(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except (asyncio.CancelledError, ConfabError):
            pass
        await self._stream.aclose()

    async def __aenter__(self) -> "AsyncSubscription":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
