"""Hostile image archives: each is refused with an error naming the layer and the entry, and no file
appears outside the extraction root (nor does a half-unpacked layer stay in the store)."""

import gzip
import hashlib
import io
import json
import os
import tarfile

import pytest

from minicontainer.errors import ImageError
from minicontainer.images import ImageStore, is_whiteout
from minicontainer.images.importer import import_archive


def _member(name, kind=tarfile.REGTYPE, data=b"", linkname="", mode=0o644, **kw):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mode = kind, linkname, mode
    ti.size = len(data)
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti, data


def _layer(members, gz=False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for ti, data in members:
            t.addfile(ti, io.BytesIO(data) if data else None)
    raw = buf.getvalue()
    return gzip.compress(raw, 1) if gz else raw


def _docker_save(path, layers):
    """A docker-save archive: manifest.json, config, one ``<n>/layer.tar`` per layer."""
    cfg = json.dumps({"config": {"Cmd": ["/bin/sh"]}, "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    with tarfile.open(path, "w") as t:
        def add(name, data):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        add("config.json", cfg)
        names = []
        for i, data in enumerate(layers):
            names.append(f"{i}/layer.tar")
            add(names[-1], data)
        add("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["evil:1"],
                                          "Layers": names}]).encode())
    return path


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICONTAINER_DATA_ROOT", str(tmp_path / "data"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host secret\n")
    return tmp_path, ImageStore(), outside


def _files_outside(tmp_path):
    """Every path under tmp_path that is not in the store (extraction root) — must not change."""
    out = set()
    for dirpath, dirnames, files in os.walk(tmp_path):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) != str(tmp_path / "data")]
        out.update(os.path.join(dirpath, n) for n in [*dirnames, *files])
    return out


def _cases(outside):
    o = str(outside)
    up = "../" * 12 + o.lstrip("/")          # climbs past any extraction root, lands in outside
    return {
        "absolute path": ([_member(f"{o}/pwned", data=b"x")], "absolute path"),
        "dot-dot escape": ([_member(f"{up}/pwned", data=b"x")], r"contains '\.\.'"),
        "dot-dot in the middle": ([_member("etc/../../pwned", data=b"x")], r"contains '\.\.'"),
        "write through absolute symlink": ([_member("evil", tarfile.SYMTYPE, linkname=o),
                                            _member("evil/pwned", data=b"x")],
                                           "written through the symlink 'evil'.*outside the layer"),
        "write through relative symlink": ([_member("d", tarfile.DIRTYPE, mode=0o755),
                                            _member("d/up", tarfile.SYMTYPE, linkname="../" * 12 + o.lstrip("/")),
                                            _member("d/up/pwned", data=b"x")],
                                           "written through the symlink 'd/up'.*outside the layer"),
        "hard link to an absolute path": ([_member("hl", tarfile.LNKTYPE, linkname=f"{o}/secret")],
                                          "absolute path"),
        "hard link with dot-dot": ([_member("hl", tarfile.LNKTYPE, linkname=f"{up}/secret")], r"'\.\.'"),
        "hard link through a symlink": ([_member("s", tarfile.SYMTYPE, linkname=o),
                                         _member("hl", tarfile.LNKTYPE, linkname="s/secret")],
                                        "through the symlink 's'"),
        "whiteout naming ..": ([_member("etc/.wh...", data=b"")], "whiteout names '..'"),
        "tar bomb (size)": ([_member("zeros", data=b"\0" * (3 << 20))], "exceeds 1048576 bytes"),
        "tar bomb (entries)": ([_member(f"f{i}", data=b"") for i in range(200)], "more than 100 entries"),
    }


CASES = list(_cases("/x"))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("gz", [False, True], ids=["tar", "gzip"])
def test_malicious_archive_is_refused(env, case, gz):
    tmp_path, store, outside = env
    members, match = _cases(outside)[case]
    good = _layer([_member("ok", data=b"fine")], gz)
    arch = _docker_save(tmp_path / "evil.tar", [good, _layer(members, gz)])
    before = _files_outside(tmp_path)
    with pytest.raises(ImageError, match=match) as exc:
        import_archive(arch, "mcim-evil", store=store, max_bytes=1 << 20, max_entries=100)
    msg = str(exc.value)
    assert msg.startswith("layer 2/2 ") and "entry '" in msg                 # names layer and entry
    assert _files_outside(tmp_path) == before                                # nothing outside the root
    assert (outside / "secret").read_text() == "host secret\n"
    assert os.stat(outside / "secret").st_nlink == 1                         # no hard link made to it
    assert not any((store.root / "tmp").iterdir())                           # no half-unpacked layer
    assert store.images() == []


def test_layer_over_symlink_replaces_it_not_its_target(env):
    """A file entry named like an earlier symlink replaces the link; it never writes through it."""
    tmp_path, store, outside = env
    arch = _docker_save(tmp_path / "a.tar", [_layer([
        _member("link", tarfile.SYMTYPE, linkname=f"{outside}/secret"),
        _member("link", data=b"layer content\n"),
        _member("etc/.wh.gone"), _member("etc/.wh..wh..opq"),
        _member("bin/su", data=b"#!", mode=0o4755),
        _member("abs", tarfile.SYMTYPE, linkname="/bin/busybox"),
    ])])
    img = import_archive(arch, "mcim-ok", store=store)
    top = img.lowerdirs[0]
    assert (outside / "secret").read_text() == "host secret\n"
    assert open(f"{top}/link").read() == "layer content\n"
    assert is_whiteout(f"{top}/etc/gone")
    assert os.getxattr(f"{top}/etc", "trusted.overlay.opaque") == b"y"
    assert os.stat(f"{top}/bin/su").st_mode & 0o7777 == 0o4755              # setuid kept (real images have it)
    assert os.readlink(f"{top}/abs") == "/bin/busybox"                      # absolute symlink kept
    assert img.layers[0] == hashlib.sha256(_layer([
        _member("link", tarfile.SYMTYPE, linkname=f"{outside}/secret"),
        _member("link", data=b"layer content\n"),
        _member("etc/.wh.gone"), _member("etc/.wh..wh..opq"),
        _member("bin/su", data=b"#!", mode=0o4755),
        _member("abs", tarfile.SYMTYPE, linkname="/bin/busybox")])).hexdigest()


@pytest.mark.parametrize("gz", [False, True], ids=["tar", "gzip"])
def test_device_nodes_are_skipped_with_one_warning(env, gz, capfd):
    """Real root file systems (debootstrap, umoci) carry /dev/console and the like: the image imports,
    the nodes are left out (the runtime gives each container its /dev), one warning line says so."""
    tmp_path, store, outside = env
    arch = _docker_save(tmp_path / "dev.tar", [_layer([
        _member("dev", tarfile.DIRTYPE, mode=0o755),
        _member("dev/console", tarfile.CHRTYPE, devmajor=5, devminor=1, mode=0o600),
        _member("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0),
        _member("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666),
        _member("dev/zero", tarfile.CHRTYPE, devmajor=1, devminor=5, mode=0o666),
        _member("etc/os-release", data=b"ID=test\n"),
    ], gz)])
    img = import_archive(arch, "with-devices", store=store)
    top = img.lowerdirs[0]
    assert os.listdir(os.path.join(top, "dev")) == []
    assert open(os.path.join(top, "etc/os-release")).read() == "ID=test\n"
    err = [ln for ln in capfd.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "warning" in err[0] and "skipped 4 device nodes" in err[0], err
    assert "/dev/console (5:1)" in err[0] and "1 more" in err[0]
