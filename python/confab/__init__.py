"""confab for Python: drive a running confab node (``confab run``) through
its control socket (docs/PROTOCOL.md section 11).

    import confab
    node = confab.connect()                 # the default home's node
    print(node.peers())
    node.send("bob", "hello")               # waits for the outcome
    for msg in node.messages():             # unread, then as they come
        print(msg.sender_name, msg.text)

asyncio: ``node = await confab.aio.connect()``, the same methods awaited,
``async for msg in node.messages()``. The guide is docs/PYTHON.md."""
from . import aio
from ._proto import default_home, socket_path
from .client import (Connection, EventStream, MessageStream, Node, Request,
                     ServeStream, Subscription, connect)
from .errors import (AmbiguousPeer, ConfabError, ConnectionLost, Failed,
                     InvalidArgument, NodeNotRunning, NodeUnavailable,
                     NotFound, ProtocolError, Refused, Timeout, UnknownGroup,
                     UnknownPeer)
from .types import (AnycastResult, BroadcastResult, Event, Group, GroupEvent,
                    Message, Peer, PeerEvent, PingResult, Reply, Route,
                    SendResult, Status, TraceHop)

__version__ = "0.1.0"

__all__ = [
    "connect", "Node", "Connection", "MessageStream", "EventStream",
    "Subscription", "aio", "default_home", "socket_path",
    "ConfabError", "InvalidArgument", "NodeUnavailable", "NodeNotRunning",
    "ConnectionLost", "ProtocolError", "NotFound", "UnknownPeer",
    "AmbiguousPeer", "UnknownGroup", "Timeout", "Refused", "Failed",
    "Message", "Peer", "Status", "Group", "SendResult", "BroadcastResult",
    "AnycastResult", "PingResult", "PeerEvent", "GroupEvent", "Event",
    "Request", "ServeStream", "Reply", "Route", "TraceHop",
]
