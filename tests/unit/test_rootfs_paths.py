"""Unit tests for minicontainer.rootfs parsing and symlink-safe resolution (notebook 03)."""

import os

import pytest

from minicontainer import rootfs
from minicontainer.errors import ConfigError, NotFoundError, RootfsError


def test_parse_volume(tmp_path):
    v = rootfs.parse_volume(f"{tmp_path}:/data:ro")
    assert v == rootfs.Volume(str(tmp_path.resolve()), "/data", True)
    assert rootfs.parse_volume(f"{tmp_path}:/d/").readonly is False


@pytest.mark.parametrize("spec", ["x", "/a:", ":/b", "rel:/b", "/tmp:rel", "/tmp:/b:rx", "/tmp:/", "/a:/b:ro:x"])
def test_parse_volume_bad(spec):
    with pytest.raises(ConfigError):
        rootfs.parse_volume(spec)


def test_parse_volume_missing_source(tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        rootfs.parse_volume(f"{tmp_path}/nope:/d")


def test_open_in_root_refuses_symlinks_and_dotdot(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink("/etc", tmp_path / "link")
    fd = rootfs.open_in_root(str(tmp_path), "/real/new/dir", create="dir")
    os.close(fd)
    assert (tmp_path / "real/new/dir").is_dir()
    with pytest.raises(RootfsError, match="symlink"):
        rootfs.open_in_root(str(tmp_path), "/link/passwd")
    with pytest.raises(RootfsError, match=r"'\.\.'"):
        rootfs.open_in_root(str(tmp_path), "/real/../../etc")
    assert not os.path.exists("/etc/passwd/x")
