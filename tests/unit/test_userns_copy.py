"""--userns=remap's fallback where idmapped mounts are refused: a layer's chowned copy
(minicontainer/images/shifted.py) and the choice between the two (runtime/userns_layers.py's knob
and names). The copy test works on files in tmp_path only (no mount): it needs root for chown and
mknod, and is skipped without it."""

from __future__ import annotations

import os
import stat
import struct

import pytest

from minicontainer.errors import ConfigError
from minicontainer.images import shifted
from minicontainer.images.shifted import NOBODY, copy_shifted, shift, shift_acl, shift_fcaps
from minicontainer.runtime import userns_layers

SUB = 100000
IDMAP = {"uidMappings": [{"containerID": 0, "hostID": SUB, "size": 65536}],
         "gidMappings": [{"containerID": 0, "hostID": SUB + 7, "size": 65536}]}


def test_an_id_inside_the_range_is_shifted_by_its_start():
    m = IDMAP["uidMappings"]
    assert [shift(n, m) for n in (0, 1, 1000, 65535)] == [SUB, SUB + 1, SUB + 1000, SUB + 65535]


def test_an_id_outside_the_range_becomes_nobody_never_an_id_of_the_range():
    m = IDMAP["uidMappings"]
    # 65536 unshifted would be a host id below the range; SUB+500 left as it is would be uid 500
    # inside. Both become the overflow id, which the container does not map: 65534 inside.
    assert [shift(n, m) for n in (65536, SUB + 500, 2**32 - 2)] == [NOBODY] * 3


def test_several_mappings_follow_the_kernels_rule():
    m = [{"containerID": 0, "hostID": 500000, "size": 10}, {"containerID": 1000, "hostID": 600000, "size": 5}]
    assert [shift(n, m) for n in (0, 9, 10, 1000, 1004, 1005)] == [500000, 500009, NOBODY, 600000, 600004, NOBODY]


def _acl(*entries) -> bytes:
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, n) for t, p, n in entries)


def test_acl_user_and_group_entries_are_shifted_the_rest_kept():
    value = _acl((0x01, 7, 0xFFFFFFFF), (0x02, 5, 1000), (0x04, 5, 0xFFFFFFFF), (0x08, 4, 50),
                 (0x10, 7, 0xFFFFFFFF), (0x20, 0, 0xFFFFFFFF))
    out = shift_acl(value, IDMAP["uidMappings"], IDMAP["gidMappings"])
    assert out == _acl((0x01, 7, 0xFFFFFFFF), (0x02, 5, SUB + 1000), (0x04, 5, 0xFFFFFFFF),
                       (0x08, 4, SUB + 7 + 50), (0x10, 7, 0xFFFFFFFF), (0x20, 0, 0xFFFFFFFF))
    assert shift_acl(b"\x02\x00\x00\x00\x01", [], []) == b"\x02\x00\x00\x00\x01"     # not an ACL: as is


def test_file_capabilities_become_v3_owned_by_the_ranges_root():
    body = struct.pack("<IIII", 1 << 13, 0, 0, 0)                         # cap_net_raw permitted
    v2_eff = struct.pack("<I", 0x02000001) + body                          # +ep: the effective flag
    assert shift_fcaps(v2_eff, IDMAP["uidMappings"]) == struct.pack("<I", 0x03000001) + body + struct.pack("<I", SUB)
    v3 = struct.pack("<I", 0x03000000) + body
    assert shift_fcaps(v3 + struct.pack("<I", 0), IDMAP["uidMappings"]) == v3 + struct.pack("<I", SUB)
    assert shift_fcaps(v3 + struct.pack("<I", 1000), IDMAP["uidMappings"]) == v3 + struct.pack("<I", SUB + 1000)
    # a root outside the range: nobody's, which no remapped container is root of (ignored there)
    assert shift_fcaps(v3 + struct.pack("<I", 70000), IDMAP["uidMappings"]) == v3 + struct.pack("<I", NOBODY)
    for odd in (b"", b"\x00\x00\x00\x01" + bytes(8), struct.pack("<I", 0x03000000) + body):   # v1, v3 cut short
        assert shift_fcaps(odd, IDMAP["uidMappings"]) == odd


def test_the_knob_defaults_to_auto_and_refuses_other_values(monkeypatch):
    monkeypatch.delenv(userns_layers.KNOB, raising=False)
    assert userns_layers.wanted() == "auto"
    for v in ("copy", "idmap", "auto"):
        monkeypatch.setenv(userns_layers.KNOB, v)
        assert userns_layers.wanted() == v
    monkeypatch.setenv(userns_layers.KNOB, "chown")
    with pytest.raises(ConfigError, match="MINICONTAINER_USERNS_LAYERS='chown': not one of auto, idmap, copy"):
        userns_layers.wanted()


def test_the_copys_directory_names_the_maps_without_overlay_separators():
    name = userns_layers.range_name(IDMAP)
    assert name == f"0-{SUB}-65536.0-{SUB + 7}-65536"
    assert ":" not in name and "," not in name


@pytest.mark.skipif(os.geteuid() != 0, reason="chown and mknod need root")
def test_the_copy_keeps_everything_but_the_owners_which_it_shifts(tmp_path):
    src, dst = tmp_path / "layer", tmp_path / "copy"
    (src / "bin").mkdir(parents=True)
    (src / "opq").mkdir()
    os.setxattr(src / "opq", "trusted.overlay.opaque", b"y")
    (src / "bin" / "su").write_bytes(b"#!setuid")
    os.chown(src / "bin" / "su", 0, 0)
    os.chmod(src / "bin" / "su", 0o4755)
    (src / "bin" / "ping").write_bytes(b"ping")
    cap = bytes.fromhex("0000000200200000000000000000000000000000")     # v2, cap_net_raw permitted
    os.setxattr(src / "bin" / "ping", "security.capability", cap)
    os.link(src / "bin" / "su", src / "bin" / "su2")
    os.symlink("/etc/shadow", src / "link")                  # never followed
    os.lchown(src / "link", 1000, 1000)
    os.mknod(src / "gone", stat.S_IFCHR | 0o600, os.makedev(0, 0))      # a whiteout
    (src / "big").write_bytes(b"x")
    os.chown(src / "big", 70000, 5)                          # outside the range
    os.utime(src / "bin" / "ping", ns=(1, 1_000_000_000))
    os.chmod(src / "bin", 0o555)
    seen = []
    n = copy_shifted(src, dst, IDMAP, progress=lambda: seen.append(1))
    os.chmod(src / "bin", 0o755)
    assert n == 9 and len(seen) == 6                  # 3 directories, 6 other entries
    st = os.lstat(dst / "bin" / "su")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (SUB, SUB + 7, 0o4755)
    assert st.st_ino == os.lstat(dst / "bin" / "su2").st_ino and st.st_nlink == 2
    assert (dst / "bin" / "su").read_bytes() == b"#!setuid"
    # v3, rootid = the range's root: honoured in the container's user namespace (see shift_fcaps)
    v3 = b"\x00\x00\x00\x03" + cap[4:] + struct.pack("<I", SUB)
    assert os.getxattr(dst / "bin" / "ping", "security.capability") == v3
    assert os.lstat(dst / "bin" / "ping").st_mtime_ns == 1_000_000_000
    assert os.getxattr(dst / "opq", "trusted.overlay.opaque") == b"y"
    st = os.lstat(dst / "link")
    assert os.readlink(dst / "link") == "/etc/shadow" and (st.st_uid, st.st_gid) == (SUB + 1000, SUB + 7 + 1000)
    st = os.lstat(dst / "gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 and (st.st_uid, st.st_gid) == (SUB, SUB + 7)
    st = os.lstat(dst / "big")
    assert (st.st_uid, st.st_gid) == (NOBODY, SUB + 7 + 5)
    st = os.lstat(dst / "bin")
    assert stat.S_IMODE(st.st_mode) == 0o555 and st.st_uid == SUB
    assert os.lstat(dst).st_uid == SUB


def test_copy_never_follows_a_symlink_to_a_directory(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    src = tmp_path / "layer"
    src.mkdir()
    os.symlink(outside, src / "d")
    copy_shifted(src, tmp_path / "copy", IDMAP)
    assert os.path.islink(tmp_path / "copy" / "d") and sorted(os.listdir(tmp_path / "copy")) == ["d"]
    assert os.lstat(outside / "secret").st_uid == 0            # the target was never chowned
    assert shifted.NOBODY == 65534


def test_a_user_namespace_helpers_failure_is_one_line():
    """The helper's '!message' became a TypeError (NamespaceError takes op, path and errno), shown
    as 'a bug in minicontainer'; now the helper's own line."""
    from minicontainer.errors import ContainerError
    from minicontainer.runtime import userns
    r, w = os.pipe()
    os.write(w, b"!unshare: EPERM")
    try:
        with pytest.raises(ContainerError, match="create the container's user namespace: unshare: EPERM"):
            userns._expect(r, b"u")
    finally:
        os.close(r)
        os.close(w)


def test_a_peer_with_other_maps_is_not_joined():
    from minicontainer.errors import ContainerError
    from minicontainer.runtime import userns
    with pytest.raises(ContainerError, match=f"its uid_map is '0 0 4294967295', this container's is '0 {SUB} 65536'"):
        userns.same_maps(os.getpid(), IDMAP)            # this process: the host's own maps
