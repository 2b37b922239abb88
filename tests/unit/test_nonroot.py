"""Run as non-root, every command says in one line that it needs root, and how; no traceback.

What a real non-root user runs is the installed command: the launcher (client.launcher_text) in a
venv, importing the package from where it was installed. So that is what these tests run, as
uid/gid 65534 with no supplementary groups, from an install that user can read: a copy of the
package and a fresh venv in a world-readable temporary directory, launcher written by the same
template `make setup` uses. Rejected: forking this pytest process and calling ``cli.main`` after
setuid (the old way). That child can import only what this process already imported; whatever
else it needs is read from the checkout, which a 0700 home directory (Debian's default, also
mktemp -d) hides from uid 65534 -- 20 "No module named minicontainer.host" failures that say
nothing about what a user sees. Also rejected: keeping CAP_DAC_READ_SEARCH while dropping the uid --
a real user does not have it, so a command that reads a root-only file would pass here and fail
for them.

The venv has no third-party packages: a verb must say "needs root" before it imports anything
heavy (the light CLI import path), and a test that needed them would fail here, loudly.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from minicontainer import cli, client

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
_AS_NOBODY = os.geteuid() == 0


def _verbs() -> list[str]:
    parser = cli.build_parser()
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            return sorted(action.choices)
    return []


def _run_as_nobody(argv: list[str], **kw) -> subprocess.CompletedProcess:
    """Run argv as uid/gid 65534 (as root), or as ourselves (already non-root), from /."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/"}
    env.update(kw.pop("env", {}))
    ids = dict(user=NOBODY, group=NOBODY, extra_groups=[]) if _AS_NOBODY else {}
    return subprocess.run(argv, cwd="/", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=60, **ids, **kw)


def _install(top: Path) -> Path:
    """A world-readable install below ``top``: venv + copy of the package + the launcher."""
    venv, lib = top / "venv", top / "lib"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    shutil.copytree(ROOT / "minicontainer", lib / "minicontainer",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    command = venv / "bin" / "minicontainer"
    command.write_text(client.launcher_text(str(venv / "bin" / "python"), str(lib)))
    for dirpath, dirnames, filenames in os.walk(top):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                os.chmod(p, 0o755 if p == str(command) else 0o644)
    return command


@pytest.fixture(scope="module")
def installed():
    """(launcher, its directory): a readable install, removed afterwards."""
    top = Path(tempfile.mkdtemp(prefix="mc-nonroot-"))      # pytest's tmp_path may be unreadable
    try:
        os.chmod(top, 0o755)
        yield _install(top), top
    finally:
        shutil.rmtree(top)


def test_install_is_not_the_checkout(installed):
    """The command under test imports the copy, as the user, whatever the checkout's mode."""
    command, top = installed
    r = _run_as_nobody([str(command.parent / "python"), "-S", "-c",
                        f"import sys, os; sys.path.insert(0, {str(top / 'lib')!r}); "
                        "import minicontainer; print(os.getuid(), minicontainer.__file__)"])
    assert r.returncode == 0, r.stdout
    uid, path = r.stdout.split()
    assert int(uid) == (NOBODY if _AS_NOBODY else os.getuid())
    assert path.startswith(str(top))


@pytest.mark.parametrize("verb", _verbs() or ["(no verbs yet)"])
def test_cli_verbs_need_root_in_one_line(verb, installed):
    if verb == "(no verbs yet)":
        pytest.skip("the CLI has no verbs")
    command, _ = installed
    # the smallest arguments each verb accepts; the root check comes before anything else
    argv = {"run": ["run", "busybox", "true"], "create": ["create", "busybox"],
            "exec": ["exec", "x", "true"], "import": ["import", "/dev/null", "x"],
            "build": ["build", "-t", "x", "."], "commit": ["commit", "x", "y"],
            "tag": ["tag", "x", "y"], "save": ["save", "-o", "/dev/null", "x"],
            "network": ["network", "ls"]}.get(verb, [verb])
    for positional in ("start", "logs", "stop", "kill", "pause", "unpause", "rm", "inspect", "rmi",
                       "pull", "push", "login", "logout"):
        if verb == positional:
            argv = [verb, "x"]
    r = _run_as_nobody([str(command), *argv])
    out = r.stdout
    lines = [line for line in out.splitlines() if line.strip()]
    assert "Traceback" not in out
    assert len(lines) == 1, out
    assert "needs root" in lines[0] and "sudo" in lines[0], out
    assert r.returncode == 125, out        # docker's "the error is the runtime's own"


def test_unreadable_install_says_so_in_one_line():
    """A venv the user can run but a package only root can read (an editable install of a checkout
    in /root or a 0700 home): one line saying where and what to do, exit 126, no traceback."""
    if not _AS_NOBODY:
        pytest.skip("needs root to make an install only root can read")
    top = Path(tempfile.mkdtemp(prefix="mc-nonroot-"))
    try:
        os.chmod(top, 0o755)
        command = _install(top)
        os.chmod(top / "lib", 0o700)
        r = _run_as_nobody([str(command), "ps"])
    finally:
        shutil.rmtree(top)
    lines = [line for line in r.stdout.splitlines() if line.strip()]
    assert "Traceback" not in r.stdout
    assert len(lines) == 1, r.stdout
    assert lines[0].startswith("minicontainer: cannot import its package from ") and str(top / "lib") in lines[0]
    assert "sudo" in lines[0], r.stdout
    assert r.returncode == 126, r.stdout   # the shell's and docker's "cannot be invoked"


@pytest.mark.parametrize("target", ["lab", "test"])
@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
def test_make_targets_need_root_in_one_line(target):
    work = Path(tempfile.mkdtemp(prefix="mc-nonroot-"))   # pytest's tmp_path is not readable by nobody
    try:
        shutil.copy(ROOT / "Makefile", work / "Makefile")
        os.chmod(work, 0o755)
        os.chmod(work / "Makefile", 0o644)
        # a make started by `make test` inherits MAKELEVEL and would print "make[1]: ***": the user's
        # make is top level (_run_as_nobody's environment has neither)
        r = _run_as_nobody(["make", "-s", "-C", str(work), target])
    finally:
        shutil.rmtree(work)
    lines = [line for line in r.stdout.splitlines() if line.strip() and not line.startswith("make: ***")]
    assert r.returncode != 0
    assert lines == [f"make {target} needs root: run 'sudo make {target}'"], r.stdout
