#!/usr/bin/env python3
"""`meson install` into a temporary DESTDIR, then checks what a user of the
installed confab gets: the program, libconfab (shared and static), the
headers under include/confab/, confab.pc, the man page and the example
systemd user unit. A tiny C program is built against the installed header
and library through the installed confab.pc, once with the shared library
and once with the static one, and run. Needs no root: nothing is written
outside the temporary directory and the build directory's logs.

usage: test_install.py BUILD_DIR [--cflags FLAGS] [--testnet-header]

With --testnet-header it checks only that a program can include
<confab/testnet.h> as installed (the headers placed as meson install
places them).

The C compiler is $CC (meson's, set by tests/install/meson.build)."""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

PROGRAM = r"""
#include <confab/confab.h>

#include <errno.h>
#include <stdio.h>

int main(void)
{
    confab_config cfg;
    confab_config_init(&cfg);
    const char *e = confab_strerror(-ENOENT);
    if (e == NULL || e[0] == '\0') {
        fprintf(stderr, "confab_strerror gave nothing\n");
        return 1;
    }
    printf("confab_strerror(-ENOENT): %s\n", e);
    printf("linked and ran\n");
    return 0;
}
"""

TESTNET_PROGRAM = r"""
#include <confab/testnet.h>

int main(void)
{
    confab_testnet_config c;
    (void)c;
    return 0;
}
"""


class Failed(Exception):
    pass


def run(cmd, what, env=None, cwd=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd,
                       timeout=120)
    if p.returncode != 0:
        raise Failed("%s failed (exit %d): %s\n%s%s" % (
            what, p.returncode, " ".join(map(shlex.quote, cmd)), p.stdout,
            p.stderr))
    return p


def check(cond, msg):
    if not cond:
        raise Failed(msg)


def ok(msg):
    print("ok   " + msg, flush=True)


class Install:
    def __init__(self, build, destdir):
        self.build, self.dest = build, destdir
        opts = {o["name"]: o["value"] for o in json.loads(run(
            ["meson", "introspect", "--buildoptions", build],
            "meson introspect").stdout)}
        self.opts = opts
        self.version = json.loads(run(
            ["meson", "introspect", "--projectinfo", build],
            "meson introspect").stdout)["version"]
        self.prefix = opts["prefix"]

    def dir(self, opt):
        """The installed location, inside DESTDIR, of a directory option."""
        d = self.opts[opt]
        if not os.path.isabs(d):
            d = os.path.join(self.prefix, d)
        return self.dest + d

    def path(self, opt, *rest):
        return os.path.join(self.dir(opt), *rest)


def install(build, dest):
    run(["meson", "install", "-C", build, "--no-rebuild", "--destdir", dest,
         "--quiet"], "meson install")
    inst = Install(build, dest)
    # Every file meson says it installs is there.
    installed = json.loads(run(["meson", "introspect", "--installed", build],
                               "meson introspect").stdout)
    for src, dst in installed.items():
        check(os.path.lexists(dest + dst), "%s was not installed (as %s)" %
              (src, dst))
    ok("meson install --destdir: %d files" % len(installed))
    return inst


def check_files(inst):
    exe = inst.path("bindir", "confab")
    check(os.access(exe, os.X_OK), "no executable " + exe)
    p = run([exe, "--version"], "confab --version")
    check(inst.version in p.stdout, "confab --version says %r" % p.stdout)
    ok("bin/confab runs: " + p.stdout.strip())

    libdir = inst.dir("libdir")
    real = os.path.join(libdir, "libconfab.so." + inst.version)
    check(os.path.isfile(real) and not os.path.islink(real), "no " + real)
    for link, target in (("libconfab.so.0", "libconfab.so." + inst.version),
                         ("libconfab.so", "libconfab.so.0")):
        p = os.path.join(libdir, link)
        check(os.path.islink(p) and os.readlink(p) == target,
              "%s is not a link to %s" % (p, target))
    d = run(["readelf", "-d", real], "readelf").stdout
    check(re.search(r"\(SONAME\).*\[libconfab\.so\.0\]", d),
          "the soname of libconfab is not libconfab.so.0:\n" + d)
    syms = run(["nm", "-D", "--defined-only", real], "nm").stdout.split("\n")
    # Names carry their version node: confab_strerror@@CONFAB_0.
    names = [l.split()[-1].split("@")[0] for l in syms
             if len(l.split()) == 3]
    check(any(n == "confab_strerror" for n in names),
          "libconfab.so does not export confab_strerror")
    stray = [n for n in names if not n.startswith("confab_")
             and n != "CONFAB_0"]
    check(not stray, "libconfab.so exports more than confab_*: %s" %
          " ".join(stray[:20]))
    ok("lib: libconfab.so.%s (soname libconfab.so.0, %d symbols, all "
       "confab_*), the .so.0 and .so links" % (inst.version, len(names) - 1))

    static = os.path.join(libdir, "libconfab.a")
    check(os.path.isfile(static), "no " + static)
    members = run(["ar", "t", static], "ar").stdout.split()
    for m in ("node.c.o", "frame.c.o", "noise.c.o"):
        check(any(x.endswith(m) for x in members),
              "libconfab.a has no %s: %s" % (m, members))
    ok("lib: libconfab.a (%d objects of node/, wire/ and crypto/)" %
       len(members))

    for h in ("confab.h", "testnet.h"):
        p = inst.path("includedir", "confab", h)
        check(os.path.isfile(p), "no " + p)
    ok("include/confab/confab.h and testnet.h")

    pc = os.path.join(libdir, "pkgconfig", "confab.pc")
    check(os.path.isfile(pc), "no " + pc)
    with open(pc) as f:
        text = f.read()
    check(re.search(r"^Requires:.*\blibuv\b", text, re.M),
          "confab.pc does not require libuv:\n" + text)
    priv = re.search(r"^Requires\.private:(.*)$", text, re.M)
    check(priv and "libsodium" in priv.group(1) and "msgpack" in
          priv.group(1), "confab.pc: Requires.private lacks libsodium or "
          "msgpack:\n" + text)
    ok("confab.pc (Requires: libuv; Requires.private: libsodium, msgpack)")

    unit = os.path.join(inst.dest + inst.prefix, "lib", "systemd", "user",
                        "confab.service")
    check(os.path.isfile(unit), "no " + unit)
    with open(unit) as f:
        text = f.read()
    bindir = inst.dir("bindir")[len(inst.dest):]
    for line in ("ExecStart=%s/confab run" % bindir, "Restart=on-failure",
                 "WantedBy=default.target"):
        check(re.search("^" + re.escape(line) + "$", text, re.M),
              "confab.service has no line %r" % line)
    how = "read"
    if shutil.which("systemd-analyze"):
        # systemd's own reading of the unit, with ExecStart pointing at the
        # binary inside DESTDIR (verify checks that it is executable).
        vdir = os.path.join(os.path.dirname(inst.dest), "unit")
        os.makedirs(vdir, exist_ok=True)
        copy = os.path.join(vdir, "confab.service")
        with open(copy, "w") as f:
            f.write(text.replace("ExecStart=" + bindir, "ExecStart=" +
                                 inst.dir("bindir")))
        p = subprocess.run(["systemd-analyze", "verify", "--man=no", copy],
                           capture_output=True, text=True, timeout=60)
        complaints = [l for l in (p.stdout + p.stderr).splitlines()
                      if "confab.service" in l]
        check(not complaints, "systemd-analyze verify confab.service:\n" +
              "\n".join(complaints))
        if p.returncode == 0:
            how = "verified by systemd-analyze"
        else:  # systemd cannot run here (a container); not the unit's fault
            how = "systemd-analyze could not run: " + (
                p.stderr.strip().splitlines() or ["?"])[-1]
    ok("lib/systemd/user/confab.service (ExecStart=%s/confab run; %s)" %
       (bindir, how))


def check_man(inst):
    page = inst.path("mandir", "man1", "confab.1")
    check(os.path.isfile(page), "no " + page)
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
    if shutil.which("groff"):
        # -ww: every warning; a page that renders cleanly prints none.
        p = run(["groff", "-man", "-Tutf8", "-ww", "-z", page], "groff",
                env=env)
        check(p.stderr.strip() == "", "groff warns about confab.1:\n" +
              p.stderr)
    if shutil.which("man"):
        p = run(["man", "-l", page], "man -l", env=env)
        out = p.stdout
    elif shutil.which("groff"):
        out = run(["groff", "-man", "-Tutf8", page], "groff", env=env).stdout
    else:
        raise Failed("neither man nor groff is installed: apt-get install "
                     "man-db")
    plain = re.sub(r".\x08", "", out)
    for want in ("NAME", "confab", "SYNOPSIS", "EXIT STATUS"):
        check(want in plain, "the rendered man page has no %r:\n%s" %
              (want, plain[:2000]))
    ok("man page: %s renders (%d lines, no groff warnings)" % (
        page[len(inst.dest):], plain.count("\n")))


def pkg_config(inst, *args):
    env = dict(os.environ)
    env["PKG_CONFIG_PATH"] = os.pathsep.join(
        [os.path.join(inst.dir("libdir"), "pkgconfig")] +
        ([env["PKG_CONFIG_PATH"]] if env.get("PKG_CONFIG_PATH") else []))
    # The .pc says /usr/local/...; the files are under DESTDIR.
    env["PKG_CONFIG_SYSROOT_DIR"] = inst.dest
    return shlex.split(run(["pkg-config", *args, "confab"],
                           "pkg-config " + " ".join(args), env=env).stdout)


def compiler():
    return shlex.split(os.environ.get("CC") or "cc")


def check_build(inst, extra_cflags, work):
    v = pkg_config(inst, "--modversion")
    check(v == [inst.version], "pkg-config --modversion confab: %r" % v)
    cflags = pkg_config(inst, "--cflags")
    libs = pkg_config(inst, "--libs")
    static_libs = pkg_config(inst, "--static", "--libs")
    check(any(x.startswith("-L" + inst.dest) for x in libs),
          "pkg-config --libs confab does not point into DESTDIR: %r" % libs)
    src = os.path.join(work, "hello.c")
    with open(src, "w") as f:
        f.write(PROGRAM)
    cc = compiler()
    # ISO C11 with POSIX: <uv.h>, which confab.h includes, needs POSIX's
    # types (pthread_rwlock_t), which a strict -std=c11 alone hides.
    strict = ["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra",
              "-Werror", "-pedantic"]

    shared = os.path.join(work, "hello-shared")
    run(cc + strict + extra_cflags + cflags + [src, "-o", shared] + libs +
        extra_cflags, "compiling against the shared libconfab")
    needed = run(["readelf", "-d", shared], "readelf").stdout
    check("[libconfab.so.0]" in needed,
          "hello-shared does not need libconfab.so.0:\n" + needed)
    env = dict(os.environ, LD_LIBRARY_PATH=inst.dir("libdir"))
    p = run([shared], "running hello-shared", env=env)
    check("linked and ran" in p.stdout, p.stdout)
    ok("built with pkg-config --cflags --libs confab (%s), linked to "
       "libconfab.so.0, ran: %s" % (" ".join(cflags + libs),
                                    p.stdout.splitlines()[0]))

    # The static library: the same flags with --static, and libconfab.a
    # itself rather than the shared library the linker would prefer.
    check("-lconfab" in static_libs, "no -lconfab in %r" % static_libs)
    static_libs = ["-l:libconfab.a" if x == "-lconfab" else x
                   for x in static_libs]
    static = os.path.join(work, "hello-static")
    run(cc + strict + extra_cflags + cflags + [src, "-o", static] +
        static_libs + extra_cflags, "compiling against the static libconfab")
    needed = run(["readelf", "-d", static], "readelf").stdout
    check("libconfab" not in needed,
          "hello-static still needs a shared libconfab:\n" + needed)
    p = run([static], "running hello-static")
    check("linked and ran" in p.stdout, p.stdout)
    ok("built with pkg-config --static --libs confab and libconfab.a (%s), "
       "ran" % " ".join(static_libs))


def check_testnet_header(build, extra_cflags, work):
    """Places the installed headers as meson install would (without
    running it, so that it cannot race the other install test over the
    build directory's install log) and includes testnet.h the way a user
    of the installed library would."""
    inst = Install(build, os.path.join(work, "dest"))
    installed = json.loads(run(["meson", "introspect", "--installed", build],
                               "meson introspect").stdout)
    incdir = inst.dir("includedir")
    for src, dst in installed.items():
        if src.endswith(".h"):
            os.makedirs(os.path.dirname(inst.dest + dst), exist_ok=True)
            shutil.copy(src, inst.dest + dst)
    check(os.path.isfile(os.path.join(incdir, "confab", "testnet.h")),
          "testnet.h is not installed under include/confab/")
    src = os.path.join(work, "testnet.c")
    with open(src, "w") as f:
        f.write(TESTNET_PROGRAM)
    run(compiler() + ["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-Wall",
                      "-Wextra", "-Werror", "-c"] +
        extra_cflags + ["-I" + incdir, src, "-o",
                        os.path.join(work, "testnet.o")],
        "compiling a program that includes <confab/testnet.h> as installed")
    ok("<confab/testnet.h> compiles as installed")


def main():
    args = sys.argv[1:]
    testnet_only = "--testnet-header" in args
    args = [a for a in args if a != "--testnet-header"]
    extra = []
    if "--cflags" in args:
        i = args.index("--cflags")
        extra = shlex.split(args[i + 1])
        del args[i:i + 2]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    build = os.path.abspath(args[0])
    tmp = tempfile.mkdtemp(prefix="confab-install-")
    try:
        dest = os.path.join(tmp, "dest")
        work = os.path.join(tmp, "work")
        os.mkdir(work)
        if testnet_only:
            check_testnet_header(build, extra, work)
        else:
            inst = install(build, dest)
            check_files(inst)
            check_man(inst)
            check_build(inst, extra, work)
    except Failed as e:
        print("FAIL " + str(e), flush=True)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("all install checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
