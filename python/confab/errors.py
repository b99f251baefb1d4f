"""The exceptions of the confab package.

Every one is a ConfabError and carries what the node said (``err``: a
negative errno, ``code``: its name such as ``"ENOENT"``, ``msg``: a sentence
for a person) and ``exit_status``: the exit status the ``confab`` command
gives for the same failure (docs/confab.1, EXIT STATUS), so a script can
exit with it. The classes follow those statuses: 1 InvalidArgument,
2 NodeUnavailable, 3 NotFound, 4 Timeout, 5 Refused, 6 Failed."""
from __future__ import annotations

import errno as _errno
from typing import Optional

__all__ = [
    "ConfabError", "InvalidArgument", "NodeUnavailable", "NodeNotRunning",
    "ConnectionLost", "ProtocolError", "NotFound", "UnknownPeer",
    "AmbiguousPeer", "UnknownGroup", "Timeout", "Refused", "Failed",
    "error_from_reply",
]


class ConfabError(Exception):
    """A request failed. ``str(e)`` is the node's sentence (``msg``)."""

    exit_status = 6

    def __init__(self, msg: str, *, err: Optional[int] = None,
                 code: Optional[str] = None, op: Optional[str] = None):
        super().__init__(msg)
        self.msg = msg
        self.err = err
        self.code = code
        self.op = op

    def __repr__(self) -> str:
        return "%s(%r, err=%r, code=%r, op=%r)" % (
            type(self).__name__, self.msg, self.err, self.code, self.op)


class InvalidArgument(ConfabError, ValueError):
    """A malformed argument (EINVAL): the command's usage error, exit 1."""

    exit_status = 1


class NodeUnavailable(ConfabError):
    """The node cannot be used: exit 2."""

    exit_status = 2


class NodeNotRunning(NodeUnavailable):
    """No node is running with this home (its control socket is missing
    or refuses connections)."""


class ConnectionLost(NodeUnavailable, ConnectionError):
    """The node closed the control connection, for instance because it
    stopped while a call was waiting."""


class ProtocolError(NodeUnavailable):
    """The node sent something that is not a control message
    (docs/PROTOCOL.md section 11), or one over the size bound."""


class NotFound(ConfabError, LookupError):
    """An unknown or ambiguous peer, or an unknown group: exit 3."""

    exit_status = 3


class UnknownPeer(NotFound):
    """No peer has this name or id (ESRCH)."""


class AmbiguousPeer(UnknownPeer):
    """Several peers have this name or id prefix; ``candidates`` lists
    them."""

    def __init__(self, msg: str, candidates: list, **kw):
        super().__init__(msg, **kw)
        self.candidates = candidates


class UnknownGroup(NotFound):
    """No linked peer is a member of the group, or this node is not in
    the group it leaves (ENOENT)."""


class Timeout(ConfabError, TimeoutError):
    """No answer or outcome in time: exit 4."""

    exit_status = 4


class Refused(ConfabError):
    """Refused: the queue is full, the message is too large, the peer is
    not linked now, or not permitted: exit 5."""

    exit_status = 5


class Failed(ConfabError):
    """Any other failure: exit 6."""

    exit_status = 6


# The errno of an error reply to its class: the same table as the confab
# command's cli_exit_for() (cli/client.c).
_BY_ERRNO = {
    _errno.ESRCH: UnknownPeer,
    _errno.ENOENT: UnknownGroup,
    _errno.ETIMEDOUT: Timeout,
    _errno.EAGAIN: Refused,
    _errno.EMSGSIZE: Refused,
    _errno.EACCES: Refused,
    _errno.EPERM: Refused,
    _errno.ENOSPC: Refused,
    _errno.ENOTCONN: Refused,
    _errno.EINVAL: InvalidArgument,
}


def error_from_reply(reply: dict, op: Optional[str] = None) -> ConfabError:
    """The exception for a reply with ok false."""
    err = reply.get("err")
    if not isinstance(err, int) or isinstance(err, bool):
        err = -_errno.EIO
    code = reply.get("code")
    if not isinstance(code, str):
        code = _errno.errorcode.get(-err, "E?")
    msg = reply.get("msg")
    if not isinstance(msg, str) or not msg:
        msg = "the node refused the request (error %d, %s)" % (err, code)
    cls = _BY_ERRNO.get(-err, Failed)
    if cls is UnknownGroup and op in ("send", "ping"):
        cls = UnknownPeer
    return cls(msg, err=err, code=code, op=op)
