"""Shared by the hostile tests (issue 17): the command as a user calls it, private roots a host user
other than root could reach (so the tests can try as one), archives, bounded waits."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_BIN = ROOT / ".venv" / "bin" / "minicontainer"
MC = [str(_BIN)] if _BIN.exists() else [sys.executable, "-m", "minicontainer.cli"]
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable


def make_roots() -> tuple[dict, Path]:
    """Private state/data roots below a fresh 0755 directory of /tmp: what the runtime creates there
    decides alone whether other host users can reach it (pytest's own tmp dirs are 0700)."""
    base = Path(tempfile.mkdtemp(prefix="mc-hostile-", dir="/tmp"))
    base.chmod(0o755)
    env = dict(os.environ, MINICONTAINER_STATE_ROOT=str(base / "state"),
               MINICONTAINER_DATA_ROOT=str(base / "data"), MINICONTAINER_NO_SERVER="1")
    return env, base


def drop_roots(env: dict, base: Path) -> None:
    mc(env, "gc", timeout=60)
    shutil.rmtree(base, ignore_errors=True)


def mc(env, *args, timeout=30, check=None, **kw) -> subprocess.CompletedProcess:
    """The installed command; a hang becomes TimeoutExpired (subprocess.run kills what it started)."""
    p = subprocess.run([*MC, *args], env=env, capture_output=True, text=True, timeout=timeout,
                       cwd=ROOT, **kw)
    if check is not None:
        assert p.returncode == check, (p.returncode, p.stdout, p.stderr)
    return p


def one_line_125(p: subprocess.CompletedProcess, *words: str) -> None:
    """Docker's answer to bad input: exit 125, exactly one line on stderr, no traceback."""
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == 125, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    for w in words:
        assert w in p.stderr, (w, p.stderr)


def records(env) -> list[Path]:
    state = Path(env["MINICONTAINER_STATE_ROOT"])
    return [d for d in state.iterdir() if len(d.name) == 64] if state.exists() else []


def nothing_left(env) -> None:
    layers = Path(env["MINICONTAINER_DATA_ROOT"], "containers")
    assert records(env) == [], records(env)
    assert not layers.exists() or list(layers.iterdir()) == [], list(layers.iterdir())


def store_contents(env) -> tuple[set, set]:
    """(image records, layer ids) of the private image store."""
    d = Path(env["MINICONTAINER_DATA_ROOT"])
    imgs = {p.name for p in (d / "images").glob("*.json")} if (d / "images").is_dir() else set()
    layers = {p.name for p in (d / "layers").iterdir()} if (d / "layers").is_dir() else set()
    return imgs, layers


@contextlib.contextmanager
def detached(env, name, *args):
    """A ``run -d`` container named ``name`` (extra run options, image and command in ``args``),
    force-removed afterwards."""
    mc(env, "run", "-d", "--name", name, *args, check=0)
    try:
        yield name
    finally:
        mc(env, "rm", "-f", name, timeout=60)


def wait_for(cond, timeout=10.0, step=0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return False


def tar_member(name, data=b"", kind=tarfile.REGTYPE, linkname="", mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mode, ti.size = kind, linkname, mode, len(data)
    return ti, data


def layer_tar(members) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for ti, data in members:
            t.addfile(ti, io.BytesIO(data) if data else None)
    return buf.getvalue()


def docker_save(path, layers: list, *, config=None, manifest=None, raw_members=()) -> Path:
    """A docker-save archive: ``layers`` are bytes of layer tars (``<n>/layer.tar``); ``config`` the
    image config JSON value; ``manifest`` replaces manifest.json's value; ``raw_members`` are extra
    (TarInfo, data) entries written as they are (symlinks, loops)."""
    if config is None:
        config = {"config": {"Cmd": ["/bin/sh"]}, "rootfs": {"type": "layers", "diff_ids": []}}
    with tarfile.open(path, "w") as t:
        def add(name, data):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        add("config.json", json.dumps(config).encode())
        names = []
        for i, data in enumerate(layers):
            names.append(f"{i}/layer.tar")
            add(names[-1], data)
        for ti, data in raw_members:
            t.addfile(ti, io.BytesIO(data) if data else None)
        if manifest is None:
            manifest = [{"Config": "config.json", "RepoTags": ["hostile:1"], "Layers": names}]
        add("manifest.json", json.dumps(manifest).encode())
    return Path(path)
