"""Shared by tests/integration/test_oci_*.py: a busybox bundle and the command line of minicontainer-oci."""
from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: the runtime under test (MINICONTAINER_OCI_BIN: another build of it, e.g. a merge being checked)
OCI = os.environ.get("MINICONTAINER_OCI_BIN", str(ROOT / ".venv" / "bin" / "minicontainer-oci"))
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable


def command() -> list[str]:
    return [OCI] if os.path.exists(OCI) else [PY, "-m", "minicontainer.oci.cli"]


def has_security() -> bool:
    """Does the runtime under test apply capabilities and seccomp (minicontainer.security)?"""
    try:
        out = subprocess.run(command() + ["features"], capture_output=True, text=True, timeout=30).stdout
        return bool(json.loads(out)["linux"]["seccomp"]["enabled"])
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
        return False


def make_bundle(path: Path, args, *, terminal=False, **linux) -> Path:
    """A bundle at ``path``: busybox's root file system and `minicontainer-oci spec`'s config."""
    from minicontainer.busybox import build_rootfs
    from minicontainer.oci.spec import example
    path.mkdir(parents=True, exist_ok=True)
    if not (path / "rootfs").exists():
        build_rootfs(path / "rootfs")
    cfg = example(args=tuple(args), terminal=terminal)
    cfg["linux"].update(linux)
    write_config(path, cfg)
    return path


def config(bundle: Path) -> dict:
    return json.loads((bundle / "config.json").read_text())


def write_config(bundle: Path, cfg: dict) -> None:
    (bundle / "config.json").write_text(json.dumps(cfg, indent=1))


def oci(env, *args, timeout=30, stdout=None, stderr=None, input=None):
    """Run the runtime; the container inherits ``stdout``/``stderr`` (files), as under conmon."""
    kw = dict(env=env, timeout=timeout, cwd=ROOT)
    if stdout is None:
        kw.update(capture_output=True)
        return subprocess.run(command() + list(args), text=True, input=input, **kw)
    # not a pipe: the container inherits it, and reading a pipe to its end would wait for the container
    import tempfile
    with tempfile.TemporaryFile("w+") as err:
        p = subprocess.run(command() + list(args), stdin=subprocess.DEVNULL, stdout=stdout,
                           stderr=stderr or err, text=True, **kw)
        err.seek(0)
        p.stderr = err.read()
    return p


def state(env, cid) -> dict:
    p = oci(env, "state", cid)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def wait_status(env, cid, status, timeout=10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        s = state(env, cid)
        if s["status"] == status or time.monotonic() > deadline:
            return s
        time.sleep(0.02)


_libc = ctypes.CDLL(None, use_errno=True)


class Subreaper:
    """Make this test process a subreaper for a while, as conmon and containerd-shim are: the
    container's process becomes our child when the runtime's middle process exits, and we reap it."""

    def __enter__(self):
        _libc.prctl(36, 1, 0, 0, 0)
        return self

    def __exit__(self, *exc):
        _libc.prctl(36, 0, 0, 0, 0)

    @staticmethod
    def wait(pid: int, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.01)
        raise TimeoutError(f"pid {pid} still running")


def one_line_error(p) -> str:
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode != 0, p
    assert len(lines) == 1, p.stderr
    assert "level=error" in lines[0] and "Traceback" not in p.stderr
    return lines[0]


def cgroup_dirs(rel: str) -> list[str]:
    """Where a group ``rel`` (below each hierarchy's root) would be, that exist."""
    from minicontainer.cgroups import detect_layout
    lay = detect_layout()
    roots = set(lay.v1.values()) if lay.backend == "v1" else {lay.v2}
    return [os.path.join(r, rel) for r in roots if os.path.isdir(os.path.join(r, rel))]
