#!/usr/bin/python3
"""Runs one pytest file of tests/python for meson: run.py FILE CONFAB.

Passes only when pytest passes, ran at least one test, and skipped none
(a test that did not run is not counted as passing); pytest's exit status
5, "no tests collected", fails too. Needs Debian's python3 (this file's
interpreter is the one meson gives it, /usr/bin/python3), which sees
python3-pytest and python3-msgpack."""
import os
import sys

import pytest


class Guard:
    def __init__(self):
        self.passed = 0
        self.skipped = []

    def pytest_runtest_logreport(self, report):
        if report.skipped:
            self.skipped.append(report.nodeid)
        elif report.when == "call" and report.passed:
            self.passed += 1


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: run.py TEST_FILE CONFAB")
    os.environ["CONFAB"] = os.path.abspath(sys.argv[2])
    sys.dont_write_bytecode = True
    guard = Guard()
    rc = pytest.main([sys.argv[1], "-p", "no:cacheprovider", "-v", "-rfEs",
                      "--tb=short"], plugins=[guard])
    if rc == 0 and guard.skipped:
        print("run.py: skipped, so not passed: %s" % ", ".join(guard.skipped))
        rc = 1
    if rc == 0 and guard.passed == 0:
        print("run.py: no test ran")
        rc = 1
    if rc == 5:
        print("run.py: pytest collected no tests")
    sys.exit(1 if rc != 0 else 0)


if __name__ == "__main__":
    main()
