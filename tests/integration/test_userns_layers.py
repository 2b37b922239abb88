"""Issue 16's fallback: where idmapped mounts are refused, a remapped container's layers are a
chowned copy, cached per range next to each layer (runtime/userns_layers.py, images/shifted.py).
Forced here with MINICONTAINER_USERNS_LAYERS=copy, on this host's store (which takes idmapped
mounts: the probe's own answer is checked too). Observed as a user would: owners inside, the copy's
owners and its reuse on the host, `rmi` and `gc` removing what they must.

Private roots and copies of /etc/subuid and /etc/subgid (test_userns_remap.make_env); the
throwaway images are commits of busybox, never the shared busybox image itself."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from minicontainer.images import ImageStore
from minicontainer.runtime import userns_layers
from tests.integration.test_runtime_cli import _nothing_left, mc
from tests.integration.test_userns_remap import make_env


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = make_env(tmp_path_factory.mktemp("mcuserns-copy"), MINICONTAINER_USERNS_LAYERS="copy")
    yield env
    mc(env, "gc")


def _idmap(env) -> dict:
    s, g = int(env["SUB"]), int(env["SUBG"])
    return {"uidMappings": [{"containerID": 0, "hostID": s, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": g, "size": 65536}]}


def _store(env) -> ImageStore:
    return ImageStore(env["MINICONTAINER_DATA_ROOT"])


def _copy(env, ref: str, index: int = 0) -> Path:
    """The copy of image ``ref``'s layer ``index`` (bottom first) for the env's range."""
    st = _store(env)
    return userns_layers.copy_dir(st, st.get(ref).layers[index], _idmap(env))


def _image(env, name: str, script: str) -> None:
    """A throwaway image: busybox + one layer written by ``script`` (a host-mode container)."""
    p = mc(env, "run", "--name", f"{name}-src", "--network", "none", "busybox", "sh", "-c", script)
    assert p.returncode == 0, p.stderr
    mc(env, "commit", f"{name}-src", name, check=0)
    mc(env, "rm", f"{name}-src", check=0)


def test_the_copy_shows_the_images_files_as_roots_and_is_the_ranges_on_the_host(env):
    s, g = int(env["SUB"]), int(env["SUBG"])
    p = mc(env, "run", "--name", "uc1", "--network", "none", "--userns=remap", "busybox", "sh", "-c",
           "stat -c %u:%g /bin/busybox; stat -c %u / /bin /etc /root | sort -u; "
           "touch /bin/new && echo x >> /etc/passwd && echo hi > /f && echo wrote; ls -ln /bin/new | awk '{print $3}'")
    try:
        assert p.returncode == 0, (p.stdout, p.stderr)
        assert p.stdout.split() == ["0:0", "0", "wrote", "0"], p.stdout
        rec = json.loads(mc(env, "inspect", "uc1", check=0).stdout)
        gd = rec["GraphDriver"]["Data"]
        assert gd["UsernsLayers"] == "copy" and gd["UpperDir"] == rec["upperdir"], gd
        assert {Path(d).parent.name for d in gd["LowerDir"].split(":")} == {"userns"}, gd   # the copies
        upper = Path(rec["upperdir"])
        own = {n: (os.lstat(upper / n).st_uid, os.lstat(upper / n).st_gid) for n in ("bin", "bin/new", "etc/passwd", "f")}
        assert own == {n: (s, g) for n in own}, own            # copied up from the copy: the range's
    finally:
        mc(env, "rm", "-f", "uc1")
    copy = _copy(env, "busybox")
    st = os.lstat(copy / "bin" / "busybox")
    orig = os.lstat(Path(_store(env).get("busybox").lowerdirs[0]) / "bin" / "busybox")
    assert (st.st_uid, st.st_gid, st.st_mode, st.st_size) == (s, g, orig.st_mode, orig.st_size)
    assert (orig.st_uid, orig.st_gid) == (0, 0)                 # the layer itself is untouched
    assert oct(os.stat(copy.parent).st_mode & 0o777) == "0o700"
    assert oct(os.stat(copy.parent.parent).st_mode & 0o777) == "0o700"
    _nothing_left(env)


def test_a_file_capability_works_for_a_non_root_user_both_ways(env):
    """ping's way (cap_net_raw+ep on the binary): the copy keeps it (chown drops file capabilities,
    so they are set after the owner) in the form the idmapped mount shows — owned by the range's root."""
    _image(env, "uc-caps", "mkdir /capbin && cp /bin/busybox /capbin/cat")
    layer = next(Path(d) for d in _store(env).get("uc-caps").lowerdirs if Path(d, "capbin").is_dir())
    v2 = (0x02000001).to_bytes(4, "little") + (1 << 13).to_bytes(4, "little") + bytes(12)   # +ep
    os.setxattr(layer / "capbin" / "cat", "security.capability", v2)
    try:
        for mode in ("copy", "idmap"):
            p = mc(dict(env, MINICONTAINER_USERNS_LAYERS=mode), "run", "--rm", "--network", "none",
                   "--userns=remap", "--user", "1000", "uc-caps", "/capbin/cat", "/proc/self/status")
            assert p.returncode == 0, (mode, p.stderr)
            eff = [ln.split()[1] for ln in p.stdout.splitlines() if ln.startswith("CapEff:")]
            assert eff == ["0000000000002000"], (mode, eff)             # CAP_NET_RAW, from the file
        copy = next(c for c in (_copy(env, "uc-caps", i) for i in range(2)) if (c / "capbin").is_dir())
        v3 = os.getxattr(copy / "capbin" / "cat", "security.capability")
        assert v3[:4] == (0x03000001).to_bytes(4, "little") and v3[4:20] == v2[4:]
        assert int.from_bytes(v3[20:], "little") == int(env["SUB"])
    finally:
        mc(env, "rmi", "uc-caps", check=0)
    _nothing_left(env)


def test_a_second_run_reuses_the_copy(env):
    mc(env, "run", "--rm", "--network", "none", "--userns=remap", "busybox", "true", check=0)
    copy = _copy(env, "busybox")
    before = [(os.lstat(p).st_ino, os.lstat(p).st_mtime_ns, os.lstat(p).st_ctime_ns)
              for p in (copy, copy / "bin" / "busybox")]
    p = mc(env, "run", "--rm", "--network", "none", "--userns=remap", "busybox", "stat", "-c", "%u", "/bin/busybox")
    assert p.returncode == 0 and p.stdout == "0\n", (p.stdout, p.stderr)
    after = [(os.lstat(p).st_ino, os.lstat(p).st_mtime_ns, os.lstat(p).st_ctime_ns)
             for p in (copy, copy / "bin" / "busybox")]
    assert after == before
    _nothing_left(env)


def test_rmi_removes_the_copies_of_layers_no_image_uses_any_more(env):
    _image(env, "uc-img", "echo x > /marker && chmod 4755 /marker && mkdir /d && chown 7:8 /d")
    out = mc(env, "run", "--rm", "--network", "none", "--userns=remap", "uc-img", "sh", "-c",
             "cat /marker; stat -c '%u %a' /marker /d").stdout.split("\n")
    assert out[:3] == ["x", "0 4755", "7 755"], out          # setuid kept; 7 inside is SUB+7 on disk
    mine, shared = _copy(env, "uc-img", 1), _copy(env, "uc-img", 0)
    assert os.lstat(mine / "d").st_uid == int(env["SUB"]) + 7
    assert mine.is_dir() and shared == _copy(env, "busybox")
    mc(env, "rmi", "uc-img", check=0)
    assert not mine.exists() and not mine.parent.parent.exists()      # with its layer
    assert shared.is_dir()                                    # busybox's: busybox still uses it
    _nothing_left(env)


def test_an_interrupted_copy_is_removed_by_gc_and_built_again(env):
    _image(env, "uc-int", "seq 1 50 | while read i; do echo $i > /f$i; done")
    tmp = Path(env["MINICONTAINER_DATA_ROOT"], "tmp")
    p = mc(dict(env, MINICONTAINER_TEST_DIE_AT="userns-copy"), "run", "--rm", "--network", "none",
           "--userns=remap", "uc-int", "true")
    assert p.returncode == -9, (p.stdout, p.stderr)
    left = [d for d in tmp.iterdir() if d.name.startswith("userns-")]
    assert len(left) == 1 and list(left[0].iterdir()), left      # half a copy, in the scratch dir
    copy = _copy(env, "uc-int", 1)
    assert not copy.exists()                                      # never a half copy in place
    out = mc(env, "gc", check=0).stdout
    assert f"removed scratch {left[0].name}" in out, out
    assert not left[0].exists()
    _nothing_left(env)
    p = mc(env, "run", "--rm", "--network", "none", "--userns=remap", "uc-int", "cat", "/f50")
    assert p.returncode == 0 and p.stdout == "50\n", (p.stdout, p.stderr)
    assert len(os.listdir(copy)) == len(os.listdir(_store(env).layer_dir(_store(env).get("uc-int").layers[1])))
    mc(env, "rmi", "uc-int", check=0)
    _nothing_left(env)


def test_auto_probes_once_and_keeps_the_answer_with_the_kernel_release(env):
    """Without the knob the probe decides; this host's ext4 takes idmapped mounts: no copy is made."""
    auto = dict(env)
    auto.pop("MINICONTAINER_USERNS_LAYERS")
    data = Path(env["MINICONTAINER_DATA_ROOT"])
    (data / userns_layers.PROBE_FILE).unlink(missing_ok=True)
    _image(env, "uc-auto", "true > /auto")
    p = mc(auto, "run", "--name", "uc-a", "--network", "none", "--userns=remap", "uc-auto", "stat", "-c", "%u", "/auto")
    assert p.returncode == 0 and p.stdout == "0\n", (p.stdout, p.stderr)
    gd = json.loads(mc(env, "inspect", "uc-a").stdout)["GraphDriver"]["Data"]
    mc(env, "rm", "uc-a")
    assert gd["UsernsLayers"] == "idmap" and "/userns/" not in gd["LowerDir"], gd
    answer = json.loads((data / userns_layers.PROBE_FILE).read_text())
    assert answer == {"kernel": os.uname().release, "idmap": True, "why": ""}, answer
    assert stat.S_IMODE(os.stat(data / userns_layers.PROBE_FILE).st_mode) == 0o600
    assert not _copy(env, "uc-auto", 1).exists()
    # a refusal recorded for this kernel is believed (no probe again): the copy is used
    (data / userns_layers.PROBE_FILE).write_text(json.dumps({"kernel": os.uname().release, "idmap": False, "why": "x"}))
    mc(auto, "run", "--rm", "--network", "none", "--userns=remap", "uc-auto", "true", check=0)
    assert _copy(env, "uc-auto", 1).is_dir()
    (data / userns_layers.PROBE_FILE).unlink()
    mc(env, "rmi", "uc-auto", check=0)
    bad = mc(dict(env, MINICONTAINER_USERNS_LAYERS="chown"), "run", "--rm", "--network", "none",
             "--userns=remap", "busybox", "true")
    assert bad.returncode == 125 and "MINICONTAINER_USERNS_LAYERS='chown'" in bad.stderr
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    _nothing_left(env)
