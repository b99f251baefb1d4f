"""The package installed both ways, then used against a live node:
`pip install --no-build-isolation ./python` into a fresh venv made with
--system-site-packages (Debian's python3-msgpack serves its dependency;
pip runs with --no-index, so nothing is downloaded), and `meson install`
of the module directory into a DESTDIR. From each, the echo example runs
against a live node, and nothing is imported from the source tree."""
import os
import shutil
import subprocess

import pytest

from conftest import EXAMPLES, TOP, Lines, scaled, stop_process

BUILD = os.environ.get("CONFAB_BUILD_ROOT")


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=scaled(120), **kw)
    assert p.returncode == 0, "%s: exit %d\n%s%s" % (
        " ".join(cmd), p.returncode, p.stdout, p.stderr)
    return p


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1", **extra)
    return env


def echo_round_trip(python, net, env):
    """The echo example run by this python: a server on bravo, a question
    from alpha."""
    server = subprocess.Popen(
        [python, os.path.join(EXAMPLES, "echo.py"), "--home", net[1].home,
         "serve"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, env=env, cwd="/")
    out = Lines(server)
    try:
        out.wait_for(lambda l: "echo server bravo is up" in l, "the server")
        p = subprocess.run(
            [python, os.path.join(EXAMPLES, "echo.py"), "--home",
             net[0].home, "ask", "bravo", "from", "a", "venv"],
            capture_output=True, text=True, env=env, cwd="/",
            timeout=scaled(60))
        assert p.returncode == 0, p.stdout + p.stderr
        assert "bravo echoed 'from a venv' in " in p.stdout
        return p.stdout
    finally:
        stop_process(server)
        out.thread.join(scaled(10))


@pytest.fixture
def drained(net):
    for n in net.nodes[:2]:
        with n.connect() as c:
            c.recv()


def test_pip_install_into_a_venv(net, drained, tmp_path):
    # A copy: pip builds in the source directory it is given.
    src = tmp_path / "src"
    shutil.copytree(os.path.join(TOP, "python"), src,
                    ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                  "__pycache__"))
    venv = tmp_path / "venv"
    env = clean_env()
    run(["/usr/bin/python3", "-m", "venv", "--system-site-packages",
         str(venv)], env=env)
    py = str(venv / "bin" / "python")
    run([py, "-m", "pip", "install", "--no-build-isolation", "--no-index",
         str(src)], env=env, cwd=str(tmp_path))
    where = run([py, "-c", "import confab, os; "
                 "print(os.path.dirname(confab.__file__))"], env=env,
                cwd="/").stdout.strip()
    assert where.startswith(str(venv)), where
    assert os.path.exists(os.path.join(where, "py.typed"))
    show = run([py, "-m", "pip", "show", "confab"], env=env).stdout
    assert "Requires: msgpack" in show
    echo_round_trip(py, net, env)


def test_meson_install_module_dir(net, drained, tmp_path):
    assert BUILD, "CONFAB_BUILD_ROOT is the build directory (meson sets it)"
    dest = tmp_path / "dest"
    run(["meson", "install", "-C", BUILD, "--no-rebuild", "--destdir",
         str(dest), "--quiet"])
    found = [os.path.join(root) for root, dirs, files in os.walk(dest)
             if os.path.basename(root) == "confab" and "client.py" in files]
    assert len(found) == 1, found
    moddir = os.path.dirname(found[0])
    assert moddir.endswith("dist-packages") or moddir.endswith(
        "site-packages"), moddir
    assert os.path.exists(os.path.join(found[0], "py.typed"))
    env = clean_env(PYTHONPATH=moddir)
    where = run(["/usr/bin/python3", "-c", "import confab, os; "
                 "print(os.path.dirname(confab.__file__))"], env=env,
                cwd="/").stdout.strip()
    assert where == found[0]
    echo_round_trip("/usr/bin/python3", net, env)
