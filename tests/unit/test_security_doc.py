#!/usr/bin/env python3
"""docs/SECURITY.md names the tests that hold each promise and bound: each
name must be a test that exists, so the page cannot claim a test that was
renamed or removed. Checks `test_*` names (a cmocka case or a Python test
method under tests/), `fuzz <t>` targets, and that every row of the Bounds
table names a counter and a test (or says why none)."""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
doc = (root / "docs" / "SECURITY.md").read_text()
sources = "\n".join(p.read_text(errors="replace")
                    for p in (root / "tests").rglob("*")
                    if p.suffix in (".c", ".py") and p.is_file())
defined = set(re.findall(r"\bvoid (test_\w+)\s*\(", sources))
defined |= set(re.findall(r"\bdef (test_\w+)\s*\(", sources))
files = {p.name for p in (root / "tests").rglob("*") if p.is_file()}

bad = []
for name in sorted(set(re.findall(r"`(test_\w+?)(?:\.py)?`", doc))):
    if name not in defined and name + ".py" not in files:
        bad.append(f"{name}: no such test under tests/")
for block in re.findall(r"fuzz ((?:`\w+`(?:, )?)+)", doc):
    for t in re.findall(r"`(\w+)`", block):
        if f"fuzz_{t}.c" not in files:
            bad.append(f"fuzz {t}: no tests/fuzz/fuzz_{t}.c")
bounds = doc[doc.index("## Bounds"):]
bounds = bounds[:bounds.index("\n## ", 3)] if "\n## " in bounds[3:] else bounds
for row in bounds.splitlines():
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    if not row.startswith("|") or len(cells) != 5 or cells[0] in ("resource", "---"):
        continue
    if not cells[4]:
        bad.append(f"Bounds row '{cells[0][:40]}': names no test")
checked = len(set(re.findall(r"`(test_\w+?)(?:\.py)?`", doc)))
if bad:
    print("docs/SECURITY.md:\n  " + "\n  ".join(bad))
    sys.exit(1)
print(f"docs/SECURITY.md: {checked} test names, all defined")
