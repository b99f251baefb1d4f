"""Job queue, the classic worker pool, with confab anycast: each job goes
to exactly one member of group "jobs" (the nearest), which answers by unicast.

  python3 jobs.py work [--home DIR]        # on each worker node
  python3 jobs.py submit N [--home DIR]    # N jobs: the primes below 1000*k
"""
import argparse

import confab

p = argparse.ArgumentParser(description="a job queue over confab anycast")
p.add_argument("mode", choices=["work", "submit"])
p.add_argument("n", nargs="?", type=int, default=4, help="submit: how many")
p.add_argument("--home", help="the node's home (default: confab's own)")
a = p.parse_args()
node = confab.connect(a.home)
if a.mode == "work":
    node.join("jobs")
    print("worker %s is waiting for jobs" % node.name, flush=True)
    for msg in node.messages():
        if msg.kind == "anycast" and msg.group == "jobs":
            primes = sum(all(k % d for d in range(2, int(k ** .5) + 1))
                         for k in range(2, int(msg.text) * 1000))
            node.send(msg.sender, "%s %d" % (msg.text, primes), wait=False)
            print("job %s done: %d primes" % (msg.text, primes), flush=True)
for k in range(1, a.n + 1):
    r = node.anycast("jobs", str(k))    # to one worker; raises if none is up
    print("job %d went to %s" % (k, node.peer(r.member).name if r.delivered
                                 else r.status), flush=True)
done = {}
for msg in node.messages(timeout=60):   # the answers, by unicast
    if msg.kind == "unicast":
        job, primes = msg.text.split()
        done[int(job)] = "%s (by %s)" % (primes, msg.sender_name)
    if len(done) == a.n:
        break
for job in sorted(done):
    print("primes below %d: %s" % (job * 1000, done[job]))
raise SystemExit(0 if len(done) == a.n else "jobs: some answers are missing")
