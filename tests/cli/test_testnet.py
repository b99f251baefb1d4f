#!/usr/bin/env python3
"""confab testnet, driven as a user would: the JSON summary has its keys,
a 50-node network loses and duplicates nothing, the human output tells the
story, and bad arguments are usage errors (exit 1)."""
import json
import subprocess
import sys
import unittest

CONFAB = sys.argv.pop(1) if len(sys.argv) > 1 else "confab"


def run(*args, timeout=120):
    return subprocess.run([CONFAB, *args], capture_output=True, text=True,
                          timeout=timeout)


class TestnetCli(unittest.TestCase):
    def test_fifty_nodes_json_nothing_lost(self):
        p = run("testnet", "--nodes", "50", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.strip().splitlines()
        self.assertEqual(len(lines), 1, "one JSON object, one line")
        s = json.loads(lines[0])
        for key in ("nodes", "mesh_ms", "sent", "delivered", "lost",
                    "duplicates", "p50_us", "p99_us"):
            self.assertIn(key, s)
        self.assertEqual(s["nodes"], 50)
        self.assertEqual(s["lost"], 0)
        self.assertEqual(s["duplicates"], 0)
        # 50 unicasts, a broadcast to 49, a shout to the 25 odd nodes and
        # one anycast.
        self.assertEqual(s["sent"], 125)
        self.assertEqual(s["delivered"], 125)
        self.assertGreater(s["mesh_ms"], 0)
        self.assertLessEqual(s["p50_us"], s["p99_us"])

    def test_same_seed_same_identities(self):
        a = run("testnet", "--nodes", "3", "--seed", "7")
        b = run("testnet", "--nodes", "3", "--seed", "7")
        self.assertEqual(a.returncode, 0, a.stderr)
        ids = lambda out: [l.split()[2] for l in out.splitlines()
                           if " id " in l and "listening" in l]
        self.assertEqual(len(ids(a.stdout)), 3)
        self.assertEqual(ids(a.stdout), ids(b.stdout))

    def test_human_output_tells_the_story(self):
        p = run("testnet")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("full mesh after", p.stdout)
        self.assertIn("every message arrived exactly once", p.stdout)
        self.assertIn("2 of 2 members got it", p.stdout)
        self.assertRegex(p.stdout, r"n[13] took it")
        self.assertNotIn("\033[", p.stdout, "no colour when not a terminal")

    def test_usage_errors(self):
        for args in (["testnet", "--nodes", "0"],
                     ["testnet", "--nodes", "many"],
                     ["testnet", "--frobnicate"],
                     ["testnet", "extra"],
                     ["no-such-command"]):
            p = run(*args)
            self.assertEqual(p.returncode, 1, args)
            self.assertTrue(p.stderr.startswith("confab: "), p.stderr)

    def test_help(self):
        p = run("testnet", "--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("usage: confab testnet", p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
