"""The runtime's own /etc files of a container (etcfiles.py, issue 17 item 1): written in the
container's state directory, rewritten in place, and nothing but our regular file is ever written."""

from __future__ import annotations

import os

import pytest

from minicontainer import etcfiles
from minicontainer.errors import MiniContainerError

CID = "c" * 64


@pytest.fixture(autouse=True)
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICONTAINER_STATE_ROOT", str(tmp_path / "state"))
    (tmp_path / "state" / CID).mkdir(parents=True)
    return tmp_path / "state" / CID


def test_written_outside_the_root_and_readable_inside(state):
    binds = etcfiles.write(CID, {"/etc/hosts": "10.0.0.2\ta\n", "/etc/hostname": "a\n"})
    assert binds == {"/etc/hosts": str(state / "hosts"), "/etc/hostname": str(state / "hostname")}
    assert (state / "hosts").read_text() == "10.0.0.2\ta\n"
    assert oct((state / "hosts").stat().st_mode & 0o777) == "0o644"


def test_rewrite_keeps_the_inode_the_bind_mount_holds(state):
    etcfiles.write(CID, {"/etc/hosts": "a long first version of the file\n"})
    ino = (state / "hosts").stat().st_ino
    assert etcfiles.rewrite(CID, "/etc/hosts", "short\n") is True
    assert (state / "hosts").stat().st_ino == ino and (state / "hosts").read_text() == "short\n"
    assert etcfiles.rewrite(CID, "/etc/hosts", "short\n") is False       # unchanged: not written


def test_rewrite_of_a_missing_file_opens_nothing(state):
    assert etcfiles.rewrite(CID, "/etc/hosts", "x\n") is False
    assert not (state / "hosts").exists()


def test_never_a_symlink_nor_a_special_file(state, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (state / "hosts").symlink_to(victim)
    with pytest.raises(MiniContainerError):
        etcfiles.rewrite(CID, "/etc/hosts", "x\n")
    assert victim.read_text() == "keep\n"
    (state / "hosts").unlink()
    os.mkfifo(state / "hosts")                      # O_NONBLOCK: no hang; fstat: refused
    with pytest.raises(MiniContainerError, match="not a regular file"):
        etcfiles.rewrite(CID, "/etc/hosts", "x\n")
