"""minicontainer.private: the runtime's own files are created 0600/0700 whatever the umask (a served
command's worker takes the caller's umask), never through a symlink, and an open root is tightened."""

from __future__ import annotations

import os
import stat

import pytest

from minicontainer import private


@pytest.fixture
def open_umask():
    old = os.umask(0)
    yield
    os.umask(old)


def mode(p) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def test_make_dir_is_0700_below_its_root_and_0755_above(tmp_path, open_umask):
    root = tmp_path / "above" / "root"
    private.make_dir(root / "a" / "b", root=root)
    assert [mode(p) for p in (tmp_path / "above", root, root / "a", root / "a" / "b")] == \
        [0o755, 0o700, 0o700, 0o700]


def test_write_is_0600_atomic_and_leaves_no_temp_file(tmp_path, open_umask):
    f = tmp_path / "state.json"
    private.write(f, "one")
    private.write(f, b"two")
    assert (f.read_text(), mode(f), os.listdir(tmp_path)) == ("two", 0o600, ["state.json"])


def test_write_does_not_follow_a_planted_temp_symlink(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    os.symlink(victim, tmp_path / f".state.json.tmp{os.getpid()}")
    with pytest.raises(OSError):
        private.write(tmp_path / "state.json", "x")
    assert victim.read_text() == "keep"


def test_an_open_root_is_tightened_once(tmp_path):
    root = tmp_path / "old-root"
    root.mkdir()
    root.chmod(0o755)
    private.make_dir(root / "c1", root=root)
    assert (mode(root), mode(root / "c1")) == (0o700, 0o700)


def test_a_directory_outside_our_roots_keeps_its_mode(tmp_path, monkeypatch):
    """An OCI --root that containerd made is containerd's: created 0700 if missing, never chmod'ed."""
    monkeypatch.setenv("MINICONTAINER_STATE_ROOT", str(tmp_path / "state"))
    monkeypatch.setenv("MINICONTAINER_DATA_ROOT", str(tmp_path / "data"))
    theirs = tmp_path / "containerd-root"
    theirs.mkdir()
    theirs.chmod(0o711)
    private.make_dir(theirs)
    private.make_dir(tmp_path / "new-root")
    assert (mode(theirs), mode(tmp_path / "new-root")) == (0o711, 0o700)


def test_what_an_older_version_left_open_below_a_root_is_closed_once(tmp_path):
    """Found on this machine: the roots were 0700 but names/, images/ and images/<id>.json that an
    older version made stayed 0755/0644, and so did a layer's layer.json and diff directory. The
    runtime's own entries are closed once; a layer's files (the image's) keep their modes."""
    root = tmp_path / "old-data"
    for d in (root / "images", root / "layers" / "l1" / "diff" / "bin"):
        d.mkdir(parents=True)
        d.chmod(0o755)
    root.chmod(0o700)                        # already tightened by an earlier version of this code
    for f, m in (("images/x.json", 0o644), ("layers/l1/layer.json", 0o644), ("layers/l1/diff/bin/sh", 0o755)):
        (root / f).write_text("")
        (root / f).chmod(m)
    private.make_dir(root / "containers", root=root)
    assert {p: mode(root / p) for p in ("images", "images/x.json", "layers", "layers/l1", "layers/l1/layer.json",
                                         "layers/l1/diff", "layers/l1/diff/bin", "layers/l1/diff/bin/sh")} == {
        "images": 0o700, "images/x.json": 0o600, "layers": 0o700, "layers/l1": 0o700,
        "layers/l1/layer.json": 0o600, "layers/l1/diff": 0o700,
        "layers/l1/diff/bin": 0o755, "layers/l1/diff/bin/sh": 0o755}
    assert (root / private.MARK).exists()


def test_a_root_marked_by_the_first_version_is_closed_again(tmp_path, monkeypatch):
    """The first mark (an empty file) predates the layers' own entries: such a root is closed
    again, once, and then carries the current mark."""
    root = tmp_path / "marked-data"
    (root / "layers" / "l1" / "diff").mkdir(parents=True, mode=0o755)
    (root / "layers" / "l1" / "diff").chmod(0o755)
    (root / "layers" / "l1" / "layer.json").write_text("{}")
    (root / "layers" / "l1" / "layer.json").chmod(0o644)
    root.chmod(0o700)
    (root / private.MARK).write_text("")
    private.make_dir(root / "containers", root=root)
    assert (mode(root / "layers/l1/layer.json"), mode(root / "layers/l1/diff")) == (0o600, 0o700)
    monkeypatch.setattr(private, "_tightened", set())          # a later process: nothing left to do
    (root / "layers" / "l1" / "layer.json").chmod(0o644)
    private.make_dir(root / "containers", root=root)
    assert mode(root / "layers/l1/layer.json") == 0o644
