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


def test_dev_links_are_runcs_with_core_where_the_kernel_has_kcore(monkeypatch):
    """The engine (rootfs._mount_dev) and the OCI runtime (oci/mounts._dev_links) make the same
    /dev links from rootfs.dev_links — runc's defaultSymlinks, /dev/core only where /proc/kcore
    exists (a Debian VM kernel has it, this CI host's has not: the VM run found the two differing)."""
    import os.path
    from minicontainer import rootfs
    real = os.path.exists
    for has in (True, False):
        monkeypatch.setattr(os.path, "exists", lambda p, has=has: has if p == "/proc/kcore" else real(p))
        links = dict(rootfs.dev_links())
        assert links.pop("fd") == "/proc/self/fd"
        assert [links.pop(n) for n in ("stdin", "stdout", "stderr")] == [f"/proc/self/fd/{i}" for i in range(3)]
        assert links == ({"core": "/proc/kcore"} if has else {})
