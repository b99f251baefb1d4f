"""Presence board, the classic UDP broadcast exercise, with confab
broadcast: each node announces its status to every linked peer at start and
whenever a peer comes up; the board shows each peer's last word and drops
a peer whose link goes down (peer events, through a callback).

  python3 presence.py [--status TEXT] [--home DIR]
"""
import argparse
import threading

import confab

p = argparse.ArgumentParser(description="a presence board over broadcast")
p.add_argument("--status", default="here")
p.add_argument("--home", help="the node's home (default: confab's own)")
a = p.parse_args()
node = confab.connect(a.home)
board, lock = {}, threading.Lock()


def show(name, text):
    with lock:
        board.pop(name, None) if text is None else board.update({name: text})
        print("board: " + " | ".join("%s: %s" % kv for kv in sorted(
            board.items())), flush=True)


def on_peer(ev):                    # called from the subscription's thread
    if ev.state == "up":
        node.broadcast(a.status)    # the newcomer learns ours
    else:
        show(ev.name, None)


node.subscribe(on_peer, kinds=["peer"])
node.broadcast(a.status)            # to every linked peer, once
for msg in node.messages():
    if msg.kind == "broadcast":
        show(msg.sender_name, msg.text)
