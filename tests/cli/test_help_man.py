#!/usr/bin/env python3
"""The man page and `--help` say the same: for every command `confab
--help` lists (so commands added later are covered too), every option in
`confab CMD --help` is in the man page's section for CMD (`.SS confab CMD
...`, up to the next section) and every option there is in the help;
every option the program's option tables accept is in some help; the
global options and every exit status (130 included) are in both; the man
page built (build/docs/confab.1) carries this build's version and a date.

No node runs: only --help and the files. A failure names each option
missing and where."""
import os
import re
import subprocess
import sys
import unittest

CONFAB = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else "confab"
MAN = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "..", "..", "docs", "confab.1")
SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

# An option: --long or -x, not inside a word (at-least-once, Ctrl-C).
OPT = re.compile(r"(?<![\w\\-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])")
# Every command has these; the global section documents them.
COMMON = {"--help", "--json", "-h"}


def run(*args):
    return subprocess.run([CONFAB, *args], capture_output=True, text=True,
                          timeout=30)


def man_text():
    with open(MAN, encoding="utf-8") as f:
        return f.read()


def unescape(roff):
    """Roff to the text a reader sees, enough for options: \\- is -,
    font changes go."""
    t = roff.replace("\\-", "-").replace("\\e", "\\")
    return re.sub(r"\\f[BIRP]", "", t)


def man_section(man, cmd):
    m = re.search(r"^\.SS confab " + re.escape(cmd) + r"(?:[ \t][^\n]*)?$"
                  r"(.*?)(?=^\.S[SH] )", man, re.M | re.S)
    return None if m is None else unescape(m.group(0))


def commands():
    top = run("--help").stdout
    block = top.split("commands:", 1)[1].split("global options", 1)[0]
    return re.findall(r"^  ([a-z][a-z-]*) ", block, re.M)


def options(text):
    return set(OPT.findall(text))


class HelpMan(unittest.TestCase):
    def setUp(self):
        self.man = man_text()

    def test_every_command_option_both_ways(self):
        cmds = commands()
        self.assertGreater(len(cmds), 10, cmds)
        problems = []
        for c in cmds:
            p = run(c, "--help")
            if p.returncode != 0 or not p.stdout.startswith("usage:"):
                problems.append("`confab %s --help` exits %d without a "
                                "usage text" % (c, p.returncode))
                continue
            sect = man_section(self.man, c)
            if sect is None:
                problems.append("the man page has no section "
                                "'.SS confab %s' (docs/confab.1, COMMANDS)"
                                % c)
                continue
            in_help = options(p.stdout) - COMMON
            in_man = options(sect) - COMMON
            for o in sorted(in_help - in_man):
                problems.append("%s is in `confab %s --help` but not in the "
                                "man page's section '.SS confab %s'"
                                % (o, c, c))
            for o in sorted(in_man - in_help):
                problems.append("%s is in the man page's section '.SS "
                                "confab %s' but not in `confab %s --help`"
                                % (o, c, c))
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    def test_every_accepted_option_is_in_a_help(self):
        helps = ""
        for c in commands():
            helps += run(c, "--help").stdout
        said = options(helps) | options(run("--help").stdout)
        problems = []
        said |= {"-h"}  # global: `confab --help` lists -h, --help
        cli = os.path.join(SRC, "cli")
        for name in sorted(os.listdir(cli)):
            if not name.endswith(".c"):
                continue
            with open(os.path.join(cli, name), encoding="utf-8") as f:
                src = f.read()
            for o in re.findall(r'\{"([a-z][a-z0-9-]*)",\s*'
                                r'(?:no|required|optional)_argument', src):
                if "--" + o not in said:
                    problems.append("--%s is accepted (cli/%s) but no "
                                    "`confab COMMAND --help` lists it"
                                    % (o, name))
            for shorts in re.findall(r'getopt_long\(argc, argv, "([^"]*)"',
                                     src):
                for ch in shorts.replace(":", "").lstrip("+-"):
                    if "-" + ch not in said:
                        problems.append("-%s is accepted (cli/%s) but no "
                                        "`confab COMMAND --help` lists it"
                                        % (ch, name))
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    def test_global_options_both_ways(self):
        top = run("--help").stdout
        glob = top.split("global options:", 1)[1]
        m = re.search(r"^\.SH GLOBAL OPTIONS$(.*?)(?=^\.SH )", self.man,
                      re.M | re.S)
        self.assertIsNotNone(m, "no GLOBAL OPTIONS section in the man page")
        in_man = options(unescape(m.group(1)))
        in_help = options(glob)
        self.assertEqual(sorted(in_help - in_man), [],
                         "in `confab --help` but not the man page's GLOBAL "
                         "OPTIONS")
        self.assertEqual(sorted(in_man - in_help), [],
                         "in the man page's GLOBAL OPTIONS but not "
                         "`confab --help`")

    def test_every_exit_status_in_both(self):
        with open(os.path.join(SRC, "cli", "cli.h"), encoding="utf-8") as f:
            hdr = f.read()
        codes = {int(v) for v in re.findall(r"^\s+CLI_\w+ = (\d+),", hdr,
                                            re.M)}
        codes |= {int(v) for v in re.findall(
            r"^#define CLI_\w+ (\d+)$", hdr, re.M)}
        self.assertIn(130, codes)
        m = re.search(r"^\.SH EXIT STATUS$(.*?)(?=^\.SH )", self.man,
                      re.M | re.S)
        self.assertIsNotNone(m, "no EXIT STATUS section in the man page")
        in_man = {int(v) for v in re.findall(r"^\.B (\d+)$", m.group(1),
                                             re.M)}
        top = run("--help").stdout
        problems = []
        for c in sorted(codes):
            if c not in in_man:
                problems.append("exit status %d (cli/cli.h) is not in the "
                                "man page's EXIT STATUS" % c)
            if not re.search(r"\b%d [a-z]" % c, top):
                problems.append("exit status %d (cli/cli.h) is not in "
                                "`confab --help`" % c)
        for c in sorted(in_man - codes):
            problems.append("exit status %d is in the man page but not in "
                            "cli/cli.h" % c)
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    def test_man_page_version_and_date_from_the_build(self):
        version = run("--version").stdout.split()[-1]
        th = re.search(r'^\.TH CONFAB 1 (\S+) "confab ([^"]+)"', self.man,
                       re.M)
        self.assertIsNotNone(th, "no .TH line with a version in " + MAN)
        self.assertRegex(th.group(1), r"^\d{4}-\d{2}-\d{2}$")
        self.assertEqual(th.group(2), version)


if __name__ == "__main__":
    unittest.main(verbosity=2)
