"""The embedded busybox image is built offline from the host's static busybox."""

import os
import shutil

import pytest

from minicontainer import busybox
from minicontainer.errors import ImageError

HAVE_BUSYBOX = any(os.path.isfile(p) for p in busybox.CANDIDATES)


@pytest.mark.skipif(not HAVE_BUSYBOX, reason="busybox-static is not installed")
def test_static_busybox_found_and_dynamic_binaries_refused():
    bb = busybox.find_busybox()
    assert busybox.is_static(bb)
    assert not busybox.is_static(shutil.which("ls") and __import__("pathlib").Path(shutil.which("ls")))


@pytest.mark.skipif(not HAVE_BUSYBOX, reason="busybox-static is not installed")
def test_build_rootfs_has_the_directories_and_applets_a_container_needs(tmp_path):
    root = busybox.build_rootfs(tmp_path / "rootfs")
    for d in ("bin", "dev", "etc", "proc", "sys", "tmp", "usr", "lib"):
        assert (root / d).is_dir(), d
    assert os.readlink(root / "bin/sh") == "busybox"            # relative: same inside and outside
    assert (root / "usr/sbin/httpd").resolve() == (root / "bin/busybox").resolve()
    assert (root / "etc/passwd").read_text().startswith("root:x:0:0:")
    assert oct((root / "tmp").stat().st_mode & 0o7777) == "0o1777"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".busybox-")], "temporary dir left"


@pytest.mark.skipif(not HAVE_BUSYBOX, reason="busybox-static is not installed")
def test_build_rootfs_refuses_a_non_empty_destination(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep").write_text("mine")
    with pytest.raises(ImageError, match="not empty"):
        busybox.build_rootfs(tmp_path / "x")
    assert (tmp_path / "x" / "keep").read_text() == "mine"


def test_missing_busybox_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(busybox, "CANDIDATES", (str(tmp_path / "nope"),))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ImageError) as info:
        busybox.find_busybox()
    assert "busybox-static" in str(info.value)
