"""What the tests that run `confab run` processes share (tests/cli and
tests/netns): a node's output through a pipe, waited on line by line, and
a node's peer and group events through its control socket, waited on with
a deadline. Nothing here sleeps: every wait blocks on an event."""
import os
import sys
import threading
import time

# The confab Python package of this source tree (python/), for the control
# socket, when it is not on the path already (meson sets PYTHONPATH).
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             "..", "..", "python"))
import confab  # noqa: E402

# What `confab run` says once it is up (its control socket listens then).
RUNNING = "running; its id is"


class OutputPipe:
    """A process's stdout and stderr through a pipe: a thread reads it for
    the whole life of the process, so that it never blocks on a full pipe,
    copies each line to a log file (if given), and keeps the text, so that
    a test can wait for a line to come.

    Use: p = OutputPipe(log); Popen(..., stdout=p.wfd, stderr=p.wfd) inside
    try, p.spawned() in its finally."""

    def __init__(self, log=None):
        self.rfd, self.wfd = os.pipe()
        self.log = log
        self.cond = threading.Condition()
        self.buf = ""
        self.eof = False
        self.thread = None

    def spawned(self):
        """After Popen, whether or not it worked: the child has its copy of
        the write end."""
        os.close(self.wfd)
        self.thread = threading.Thread(target=self._copy, daemon=True)
        self.thread.start()

    def _copy(self):
        sink = open(self.log, "ab") if self.log else None
        try:
            with os.fdopen(self.rfd, "rb") as pipe:
                for line in pipe:
                    if sink is not None:
                        sink.write(line)
                        sink.flush()
                    with self.cond:
                        self.buf += line.decode(errors="replace")
                        self.cond.notify_all()
        finally:
            if sink is not None:
                sink.close()
            with self.cond:
                self.eof = True
                self.cond.notify_all()

    def text(self):
        with self.cond:
            return self.buf

    def wait_for(self, what, timeout):
        """Blocks until a line with `what` came (True), or the pipe ended
        or the deadline passed without one (False)."""
        with self.cond:
            self.cond.wait_for(lambda: what in self.buf or self.eof, timeout)
            return what in self.buf

    def join(self, timeout):
        """After the process ended: the rest is copied."""
        if self.thread is not None:
            self.thread.join(timeout)


class Watch:
    """A running node's events of the given kinds ("peer", "group"),
    through its control socket, subscribed to at once so that none that
    comes later is missed. Never "msg": those events take (mark read) the
    messages they carry. Timeouts are in seconds, already scaled."""

    def __init__(self, home, events=("peer", "group"), timeout=20):
        self.cl = confab.Connection(home, timeout)
        self.seen = []
        try:
            reply, _ = self.cl.call({"op": "subscribe",
                                     "events": list(events)})
        except BaseException:
            self.cl.close()
            raise
        if not reply.get("ok"):
            self.cl.close()
            raise AssertionError("subscribe on %s: %r" % (home, reply))

    def close(self):
        self.cl.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def last_state(self, peer_id):
        """The state the last peer event for peer_id (hex) said, or None."""
        for e in reversed(self.seen):
            if e.get("ev") == "peer" and e["id"].hex() == peer_id:
                return e["state"]
        return None

    def until(self, what, fn, timeout, poll=None):
        """Checks fn, and again after each event the node sends, until it
        returns something true; fails at the deadline. With poll (seconds)
        fn is also checked that often: for a change no event reports (a
        client connecting)."""
        end = time.monotonic() + timeout
        while True:
            last = fn()
            if last:
                return last
            left = end - time.monotonic()
            if left <= 0:
                break
            try:
                m = self.cl.next(left if poll is None else min(left, poll))
            except confab.Timeout:
                if poll is not None:
                    continue
                break
            if "ev" in m:
                self.seen.append(m)
        raise AssertionError("timed out waiting for %s (last: %r)"
                             % (what, last))
