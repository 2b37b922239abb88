"""File modes under the data and state roots (issue 17 item 2, Docker's CVE-2021-41091 fix): after a
run with a secret in its environment, a detached run, a build and an import, nothing the runtime
wrote may be readable or traversable by other host users — roots and their directories 0700/0710,
records 0600. A path counts only if other users can reach it (every directory above it o+x): image
files keep their own modes behind a closed directory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.integration.hostile_helpers import (detached, docker_save, drop_roots, layer_tar, make_roots, mc,
                                                tar_member)


def open_to_others(top: Path) -> list[str]:
    """Paths below (and including) ``top`` that a user other than owner and group can read or
    traverse, reaching them through directories it may traverse."""
    found = []

    def visit(p: Path):
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode):
            return
        if st.st_mode & 0o004 or (stat.S_ISDIR(st.st_mode) and st.st_mode & 0o001):
            found.append(f"{oct(st.st_mode & 0o7777)} {p}")
        if stat.S_ISDIR(st.st_mode) and st.st_mode & 0o001:
            for c in sorted(p.iterdir()):
                visit(c)
    if top.exists():
        visit(top)
    return found


def test_nothing_the_runtime_writes_is_open_to_other_users(tmp_path):
    env, base = make_roots()
    try:
        mc(env, "run", "--name", "modes-secret", "--network", "none", "-e", "DB_PASSWORD=x", "busybox",
           "true", check=0)
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        (ctx / "f").write_text("built\n")
        (ctx / "Containerfile").write_text("FROM busybox\nCOPY f /f\n")
        mc(env, "build", "-t", "modes-built:1", str(ctx), check=0, timeout=60)
        arc = docker_save(tmp_path / "img.tar", [layer_tar([tar_member("imported", b"x")])])
        mc(env, "import", str(arc), "modes-imported:1", check=0)
        with detached(env, "modes-d", "--network", "none", "busybox", "sleep", "30"):
            state, data = Path(env["MINICONTAINER_STATE_ROOT"]), Path(env["MINICONTAINER_DATA_ROOT"])
            records = sorted(state.glob("*/state.json"))
            # the runtime's own entries are closed even behind a closed directory: a layer's record
            # and the layer's directory (the image's files inside it keep their modes)
            own = records + sorted(data.glob("layers/*/layer.json")) + sorted(data.glob("layers/*/diff"))
            loose = {str(r): oct(r.stat().st_mode & 0o777) for r in own if r.stat().st_mode & 0o077}
            opened = open_to_others(state) + open_to_others(data)
        mc(env, "rm", "-f", "modes-secret", check=0)
    finally:
        drop_roots(env, base)
    assert len(records) == 2
    assert not loose and not opened, (f"records and layers not closed: {loose}\nopen to other users:\n  "
                                      + "\n  ".join(opened[:20]))


def test_roots_an_older_version_left_open_are_tightened():
    """Roots made 0755 by an older version (and a record it wrote 0644) are closed the next time a
    command opens them: nothing below a root depends on other users' bits."""
    env, base = make_roots()
    try:
        state, data = Path(env["MINICONTAINER_STATE_ROOT"]), Path(env["MINICONTAINER_DATA_ROOT"])
        for d in (state, data):
            d.mkdir(mode=0o755)
            d.chmod(0o755)
        mc(env, "run", "--rm", "--network", "none", "busybox", "true", check=0)
        mc(env, "ps", "-a", check=0)
        modes = {str(d): oct(d.stat().st_mode & 0o777) for d in (state, data)}
    finally:
        drop_roots(env, base)
    assert modes == {str(state): "0o700", str(data): "0o700"}, modes


def test_a_served_command_with_an_open_umask_writes_private_files(tmp_path):
    """A served command's worker takes the caller's umask (0000 here): the runtime's own files stay
    0600/0700 all the same (created with their mode, not by the umask's grace)."""
    env, base = make_roots()
    served = dict(env)
    served.pop("MINICONTAINER_NO_SERVER")
    try:
        assert "listening on" in mc(served, "serve", "-d", check=0).stdout
        try:
            mc(served, "run", "-d", "--name", "modes-umask", "--network", "none", "-e", "K=v", "busybox",
               "sleep", "30", check=0, preexec_fn=lambda: os.umask(0))
            opened = (open_to_others(Path(env["MINICONTAINER_STATE_ROOT"]))
                      + open_to_others(Path(env["MINICONTAINER_DATA_ROOT"])))
            rec = next(Path(env["MINICONTAINER_STATE_ROOT"]).glob("*/state.json"))
            mode = rec.stat().st_mode & 0o777
        finally:
            mc(served, "rm", "-f", "modes-umask", timeout=60)
            mc(served, "serve", "--stop", timeout=60)
    finally:
        drop_roots(env, base)
    assert not opened and mode == 0o600, (opened, oct(mode))
