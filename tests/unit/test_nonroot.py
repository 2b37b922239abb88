"""Run as non-root, every command says in one line that it needs root, and how; no traceback."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from minicontainer import cli

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534


def _as_nobody(fn) -> tuple[int, str]:
    """Run fn() in a forked child with uid/gid nobody; return (exit code, what it printed)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            os.close(r)
            os.dup2(w, 1)
            os.dup2(w, 2)
            # pytest's capture replaced sys.stdout/sys.stderr with its own objects: point them at the pipe
            sys.stdout = open(1, "w", closefd=False)
            sys.stderr = open(2, "w", closefd=False)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            code = fn()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001
            import traceback
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out


def _verbs() -> list[str]:
    parser = cli.build_parser()
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            return sorted(action.choices)
    return []


@pytest.mark.parametrize("verb", _verbs() or ["(no verbs yet)"])
def test_cli_verbs_need_root_in_one_line(verb):
    if verb == "(no verbs yet)":
        pytest.skip("the CLI has no verbs")
    # the smallest arguments each verb accepts; the root check comes before anything else
    argv = {"run": ["run", "busybox", "true"], "create": ["create", "busybox"],
            "exec": ["exec", "x", "true"], "import": ["import", "/dev/null", "x"],
            "build": ["build", "-t", "x", "."], "commit": ["commit", "x", "y"],
            "tag": ["tag", "x", "y"], "save": ["save", "-o", "/dev/null", "x"]}.get(verb, [verb])
    for positional in ("start", "logs", "stop", "kill", "pause", "unpause", "rm", "inspect", "rmi",
                       "pull", "push", "login", "logout"):
        if verb == positional:
            argv = [verb, "x"]
    code, out = _as_nobody(lambda: cli.main(argv))
    lines = [l for l in out.splitlines() if l.strip()]
    assert code != 0
    assert len(lines) == 1, out
    assert "needs root" in lines[0] and "sudo" in lines[0]
    assert "Traceback" not in out


@pytest.mark.parametrize("target", ["lab", "test"])
@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
def test_make_targets_need_root_in_one_line(target):
    import tempfile
    work = Path(tempfile.mkdtemp(prefix="mc-nonroot-"))   # pytest's tmp_path is not readable by nobody
    try:
        shutil.copy(ROOT / "Makefile", work / "Makefile")
        os.chmod(work, 0o755)
        os.chmod(work / "Makefile", 0o644)
        # a make started by `make test` inherits MAKELEVEL and would print "make[1]: ***": the user's make is top level
        env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
        code, out = _as_nobody(lambda: subprocess.run(["make", "-s", "-C", str(work), target], env=env).returncode)
    finally:
        shutil.rmtree(work)
    lines = [l for l in out.splitlines() if l.strip() and not l.startswith("make: ***")]
    assert code != 0
    assert lines == [f"make {target} needs root: run 'sudo make {target}'"], out
