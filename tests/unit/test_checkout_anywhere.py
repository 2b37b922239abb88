"""The unit tests pass wherever the checkout is: in a directory only its owner can enter (Debian's
home directories and mktemp -d are 0700) and in a path with a space.

Issue 14: `sudo make test` from a 0700 home failed 20 tests, because a test ran code as uid 65534
that read the checkout. So these copy the working tree (what is being tested, not HEAD: uncommitted
changes count) into such places, each with a venv of its own there (a venv's path is the checkout's
path: a blank in it matters to #! lines), and run tests/unit in them; the copy's package is the one
imported (the working directory comes first on sys.path), which the first step checks.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUARD = "MINICONTAINER_CHECKOUT_GUARD"      # set in the copies: they must not copy themselves again
_SKIP = shutil.ignore_patterns(".git", ".venv", "build", "__pycache__", "*.pyc", "*.egg-info",
                               ".pytest_cache", ".ipynb_checkpoints", ".vagrant")

pytestmark = pytest.mark.skipif(bool(os.environ.get(GUARD)), reason="already inside a copy")


def _copy_to(dest: Path) -> Path:
    shutil.copytree(ROOT, dest, ignore=_SKIP, symlinks=True)
    return dest


def _venv_in(checkout: Path) -> str:
    """A venv at checkout/.venv, as `make venv` makes it there (its python's path has the checkout's
    blanks in it), that borrows this one's packages instead of installing them again: a .pth line
    adds this venv's site-packages, whose own .pth files then count too."""
    venv = checkout / ".venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    ours = [p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix)]
    (theirs,) = venv.glob("lib/python*/site-packages")
    (theirs / "borrowed.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in ours))
    return str(venv / "bin" / "python")


def _start(checkout: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env[GUARD] = "1"
    env.pop("PYTHONPATH", None)
    code = ("import minicontainer, sys, pytest; "
            f"assert minicontainer.__file__.startswith({str(checkout)!r} + '/'), minicontainer.__file__; "
            "sys.exit(pytest.main(['tests/unit', '-q', '-p', 'no:cacheprovider']))")
    return subprocess.Popen([_venv_in(checkout), "-c", code], cwd=checkout, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_unit_tests_pass_in_a_0700_directory_and_a_path_with_a_space():
    top = Path(tempfile.mkdtemp(prefix="mc-checkout-"))
    runs: dict[Path, subprocess.Popen] = {}
    try:
        assert os.stat(top).st_mode & 0o777 == 0o700        # like a Debian home directory
        places = [top / "minicontainer", top / "my projects" / "mini container"]
        (top / "my projects").mkdir(mode=0o700)
        for p in places:                                    # both at once: 2 cores
            runs[p] = _start(_copy_to(p))
        results = {p: proc.communicate(timeout=600) for p, proc in runs.items()}
        for place, proc in runs.items():
            out = results[place][0]
            assert proc.returncode == 0, f"tests/unit in {place}:\n{out[-6000:]}"
            assert " passed" in out and " failed" not in out, out[-3000:]
    finally:
        for proc in runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(top)
