"""What the node's replies and events hold, as typed dataclasses.

Ids are ``bytes``: a node id is 32 bytes (its X25519 public key), a
message id 16. People see a node id as 64 lowercase hex digits and a short
id as its first 8; the ``hex`` and ``short`` properties give those."""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Union

__all__ = [
    "Message", "Peer", "Status", "Group", "SendResult", "BroadcastResult",
    "AnycastResult", "PingResult", "PeerEvent", "GroupEvent", "Event",
    "Route", "TraceHop",
]


@dataclass(frozen=True)
class Message:
    """A message this node received (docs/PROTOCOL.md 11.2, a message
    map). ``kind`` is ``unicast``, ``broadcast``, ``group`` or
    ``anycast``; ``group`` is set for the last two; ``ts`` is the sender's
    clock in microseconds since 1970; ``ct`` the content type, if any;
    ``hops`` the links it crossed: 1 from a linked peer, more when relayed
    by other nodes (routing, docs/PROTOCOL.md section 13)."""

    mid: bytes
    sender: bytes
    sender_name: str
    kind: str
    group: Optional[str]
    seq: int
    ts: int
    ct: Optional[str]
    body: bytes
    hops: int = 1

    @property
    def relayed(self) -> bool:
        """It came through other nodes, not over a link from its sender."""
        return self.hops > 1

    @property
    def text(self) -> str:
        """The body as text (UTF-8; invalid bytes become U+FFFD)."""
        return self.body.decode("utf-8", errors="replace")

    @property
    def sender_hex(self) -> str:
        return self.sender.hex()

    @property
    def time(self) -> _dt.datetime:
        """When it was sent, by the sender's clock (UTC)."""
        return _dt.datetime.fromtimestamp(self.ts / 1e6, _dt.timezone.utc)


@dataclass(frozen=True)
class Peer:
    """A peer this node knows. ``state`` is ``known``, ``connecting``,
    ``up`` or ``down``; ``address`` is ``""`` when unknown; ``queued`` is
    in bytes."""

    id: bytes
    name: str
    address: str
    state: str
    rtt_us: int = 0
    outbound: bool = False
    msgs_sent: int = 0
    msgs_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    queued: int = 0

    @property
    def hex(self) -> str:
        return self.id.hex()

    @property
    def short(self) -> str:
        return self.id.hex()[:8]

    @property
    def up(self) -> bool:
        return self.state == "up"


@dataclass(frozen=True)
class Status:
    """The node: its id and name, listening port, linked and known peers,
    its groups, its counters (``stats``) and unread messages (``inbox``)."""

    id: bytes
    name: str
    port: int
    peers: int
    known: int
    groups: List[str]
    stats: Dict[str, int] = field(default_factory=dict)
    inbox: int = 0


@dataclass(frozen=True)
class Group:
    """A group the node knows of: its linked members, and whether this
    node is one (``joined``)."""

    name: str
    members: List[bytes]
    joined: bool


@dataclass(frozen=True)
class SendResult:
    """A unicast's message id, and with ``wait`` its outcome: ``sent``,
    ``delivered``, ``expired`` or ``failed`` (None without wait). When
    delivered, ``hops`` is how many links the acknowledgement crossed
    back: 1 over a direct link, 2 or more through relays (None when the
    node does not say, or the message was not delivered)."""

    mid: bytes
    status: Optional[str] = None
    hops: Optional[int] = None

    @property
    def delivered(self) -> bool:
        return self.status == "delivered"

    @property
    def relayed(self) -> bool:
        """Delivered through other nodes (routing), not over a link."""
        return self.hops is not None and self.hops > 1


@dataclass(frozen=True)
class BroadcastResult:
    """A broadcast's or shout's message id, and how many peers (members)
    it was queued for."""

    mid: bytes
    sent: int


@dataclass(frozen=True)
class AnycastResult:
    """An anycast's outcome: ``delivered`` (to ``member``) or ``failed``."""

    mid: bytes
    status: str
    member: Optional[bytes] = None

    @property
    def delivered(self) -> bool:
        return self.status == "delivered"


@dataclass(frozen=True)
class PingResult:
    """A PONG: the round trip and the data it echoed."""

    rtt_us: int
    data: bytes

    @property
    def rtt(self) -> float:
        """The round trip in seconds."""
        return self.rtt_us / 1e6


@dataclass(frozen=True)
class PeerEvent:
    """A peer came up or went down (``state``); for down, ``reason`` is
    ``bye``, ``closed``, ``timeout``, ``protocol`` or ``stopping``."""

    id: bytes
    name: str
    state: str
    reason: Optional[str] = None
    kind: str = "peer"


@dataclass(frozen=True)
class GroupEvent:
    """A peer joined or left a group (``kind`` is ``join`` or ``leave``)."""

    kind: str
    id: bytes
    name: str
    group: str


Event = Union[PeerEvent, GroupEvent]


@dataclass(frozen=True)
class Reply:
    """One answer to a request (docs/PROTOCOL.md section 14): from
    ``sender``; ``status`` is ``ok`` (``body`` is the answer), ``error``
    (the service failed: ``body`` says how), ``busy``, ``no_service`` or
    ``too_large``."""

    sender: bytes
    sender_name: str
    status: str
    body: bytes

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")



@dataclass(frozen=True)
class Route:
    """One destination of the node's route table (docs/PROTOCOL.md
    section 13): ``dst`` is reached through the linked peer ``via`` (all
    zero when unreachable) in ``metric`` hops (16: unreachable), under the
    destination's sequence number ``seq``; ``name`` is ``""`` if
    unknown."""

    dst: bytes
    name: str
    via: bytes
    metric: int
    seq: int

    INFINITY = 16

    @property
    def reachable(self) -> bool:
        return self.metric < Route.INFINITY

    @property
    def hex(self) -> str:
        return self.dst.hex()

    @property
    def short(self) -> str:
        return self.dst.hex()[:8]


@dataclass(frozen=True)
class TraceHop:
    """One hop of a trace (``confab trace``), in order from ``hop`` 1,
    the first link. When ``answered``: the node at that hop (``id``,
    ``name``), where it heard the probe (``address``, with the port it
    accepts links on) and the round trip to it; a hop that did not answer
    within the node's 3 s has ``answered`` False."""

    hop: int
    answered: bool
    id: Optional[bytes]
    name: str
    address: str
    rtt_us: int

    @property
    def rtt(self) -> float:
        """The round trip in seconds."""
        return self.rtt_us / 1e6

    @property
    def short(self) -> str:
        return self.id.hex()[:8] if self.id else ""
