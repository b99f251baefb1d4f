"""Chat room, the classic multi-client server, as a confab group: every
line you type is shouted (multicast) to the members of the room, and theirs
are printed. asyncio: one task prints, the other reads the keyboard.

  python3 chat.py ROOM [--home DIR]        # Ctrl-D leaves
"""
import argparse
import asyncio
import sys

import confab


async def main(room, home):
    node = await confab.aio.connect(home)
    await node.join(room)
    print("%s joined #%s; type lines, Ctrl-D to leave" % (node.name, room),
          flush=True)

    async def show():
        async for msg in node.messages():
            if msg.group == room:
                print("<%s> %s" % (msg.sender_name, msg.text), flush=True)
    shower = asyncio.create_task(show())
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        await node.shout(room, line.rstrip("\n"))
    await node.leave(room)
    shower.cancel()
    await node.close()

p = argparse.ArgumentParser(description="a chat room over a confab group")
p.add_argument("room", type=lambda r: r[1:] if r[:1] == "#" else r)
p.add_argument("--home", help="the node's home (default: confab's own)")
a = p.parse_args()
try:
    asyncio.run(main(a.room, a.home))
except confab.ConfabError as e:
    raise SystemExit("chat: %s (exit %d)" % (e, e.exit_status))
