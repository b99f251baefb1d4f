"""python3 -m confab: a tiny command line for quick checks, through the
package (the `confab` command is the real one). Exits with the confab
command's exit statuses."""
import argparse
import sys

from . import ConfabError, connect


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m confab",
                                description="quick checks of a running "
                                "confab node, through the Python package")
    p.add_argument("--home", help="the node's home (default: confab's own)")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("status", help="this node: id, name, peers, groups")
    sub.add_parser("peers", help="the known peers")
    s = sub.add_parser("send", help="a unicast; waits for the outcome")
    s.add_argument("peer")
    s.add_argument("text", nargs="+")
    s = sub.add_parser("recv", help="the unread messages")
    s.add_argument("--follow", action="store_true",
                   help="then each as it arrives")
    s = sub.add_parser("ping", help="a round trip to a peer")
    s.add_argument("peer")
    a = p.parse_args(argv)
    try:
        with connect(a.home) as node:
            if a.cmd == "status":
                st = node.status()
                print("%s %s: port %d, %d peers linked of %d known, "
                      "groups: %s, %d unread" % (
                          st.id.hex()[:8], st.name, st.port, st.peers,
                          st.known, " ".join(st.groups) or "-", st.inbox))
            elif a.cmd == "peers":
                for pr in node.peers():
                    print("%s  %-16s %-10s %s" % (pr.short, pr.name,
                                                  pr.state, pr.address))
            elif a.cmd == "send":
                r = node.send(a.peer, " ".join(a.text))
                print("%s: message %s" % (r.status, r.mid.hex()))
                return {"delivered": 0, "expired": 4}.get(r.status or "", 6)
            elif a.cmd == "recv":
                for m in node.messages(follow=a.follow):
                    print("%s (%s): %s" % (m.sender_name, m.kind, m.text),
                          flush=True)
            elif a.cmd == "ping":
                r = node.ping(a.peer)
                print("%s: %.3f ms" % (a.peer, r.rtt_us / 1000))
    except ConfabError as e:
        print("confab: %s" % e, file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
