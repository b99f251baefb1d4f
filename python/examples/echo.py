"""Echo service, the first socket exercise, over confab unicast: the server
answers each message with a unicast of the same bytes back to its sender.

  python3 echo.py serve [--home DIR]           # on one node: answer forever
  python3 echo.py ask PEER TEXT [--home DIR]   # on another: one round trip
"""
import argparse
import time

import confab

p = argparse.ArgumentParser(description="an echo service over unicast")
p.add_argument("--home", help="the node's home (default: confab's own)")
p.add_argument("mode", choices=["serve", "ask"])
p.add_argument("peer", nargs="?", help="ask: the server's name or id prefix")
p.add_argument("text", nargs="*", help="ask: what to send")
a = p.parse_args()
try:
    node = confab.connect(a.home)
    if a.mode == "serve":
        print("echo server %s is up" % node.name, flush=True)
        for msg in node.messages():                 # each request as it comes
            node.send(msg.sender, msg.body, ct=msg.ct, wait=False)
            print("echoed %d bytes to %s" % (len(msg.body), msg.sender_name),
                  flush=True)
    server = node.peer(a.peer)                      # by name or id, as confab
    t0 = time.monotonic()
    node.send(server, " ".join(a.text))             # returns once delivered
    for msg in node.messages(timeout=10):           # the answer, or give up
        if msg.sender == server.id:
            print("%s echoed %r in %.1f ms" % (
                server.name, msg.text, (time.monotonic() - t0) * 1000))
            break
    else:
        raise SystemExit("echo: no answer from %s within 10 s" % server.name)
except confab.ConfabError as e:                     # e.g. no node running
    raise SystemExit("echo: %s (exit %d)" % (e, e.exit_status))
