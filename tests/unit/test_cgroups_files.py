"""cgroups without the kernel: docker-style parsing, layout detection, and each backend's file-level
translation over a temporary directory tree that mimics cgroupfs (a new group directory gets the
control files the kernel would create). The real runs are in tests/integration/test_cgroups.py."""

import errno
import os
from pathlib import Path

import pytest

from minicontainer.cgroups import Cgroup, Limits, _files, detect_layout, parse_cpus, parse_memory, parse_pids
from minicontainer.cgroups.v1 import V1Backend
from minicontainer.cgroups.v2 import V2Backend
from minicontainer.cgroups.values import blkio_to_io_weight, shares_to_weight
from minicontainer.errors import CgroupError, ConfigError

# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize("text,expected", [("64m", 64 << 20), ("1g", 1 << 30), ("512k", 512 << 10),
                                           ("64M", 64 << 20), ("64mb", 64 << 20), ("10MiB", 10 << 20),
                                           ("1.5g", 3 << 29), (str(8 << 20), 8 << 20), (8 << 20, 8 << 20)])
def test_parse_memory(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("bad", ["abc", "", "-64m", "64x", "0", True, "m"])
def test_parse_memory_rejects(bad):
    with pytest.raises(ConfigError, match="--memory"):
        parse_memory(bad)


def test_parse_cpus_and_pids():
    assert parse_cpus("0.5") == 0.5
    assert parse_pids("20") == 20
    for bad in ("-1", "0", "abc", "nan", "inf", str((os.cpu_count() or 1) + 1)):
        with pytest.raises(ConfigError, match="--cpus"):
            parse_cpus(bad)
    for bad in ("0", "-1", "1.5", "x", 2.0):
        with pytest.raises(ConfigError, match="--pids-limit"):
            parse_pids(bad)


def test_limits_validate_on_construction():
    lim = Limits(memory="64m", cpus="0.5", pids="20")
    assert (lim.memory, lim.cpus, lim.pids, lim.cpu_quota_us) == (64 << 20, 0.5, 20, 50_000)
    assert lim.swap_total == 128 << 20            # docker: as much swap as memory
    assert Limits(memory="64m", memory_swap=-1).swap_total == -1
    assert lim.controllers() == {"memory", "cpu", "pids"}
    for kw in ({"memory": "abc"}, {"memory": "512k"}, {"memory_swap": "64m"}, {"memory": "64m", "memory_swap": "32m"},
               {"cpu_shares": 1}, {"blkio_weight": 5}, {"cpuset": "0-"}, {"cpuset": "9999"}):
        with pytest.raises(ConfigError):
            Limits(**kw)


def test_weight_conversions_match_runc():
    assert shares_to_weight(2) == 1 and shares_to_weight(262144) == 10000
    assert shares_to_weight(1024) == 39
    assert blkio_to_io_weight(10) == 1 and blkio_to_io_weight(1000) == 10000


# ---------------------------------------------------------------- layout

_V2 = "33 23 0:28 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
_V1 = ("30 24 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n"
       "31 30 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
       "32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
       "33 30 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n")
_HYBRID = _V1 + "34 30 0:30 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"


def test_detect_layouts():
    v2 = detect_layout(_V2)
    assert (v2.kind, v2.v2, v2.v1, v2.backend) == ("v2", "/sys/fs/cgroup", {}, "v2")
    v1 = detect_layout(_V1)
    assert v1.kind == "v1" and v1.backend == "v1"
    assert v1.v1 == {"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
                     "memory": "/sys/fs/cgroup/memory"}          # name=systemd is no controller
    hy = detect_layout(_HYBRID)
    assert (hy.kind, hy.backend, hy.v2) == ("hybrid", "v1", "/sys/fs/cgroup/unified")
    assert detect_layout("").kind == "none"
    assert detect_layout(_V2.replace("/sys/fs/cgroup ", "/a\\040b ")).v2 == "/a b"


# ---------------------------------------------------------------- fake cgroupfs

V2_FILES = {"cgroup.procs": "", "cgroup.controllers": "cpu cpuset io memory pids", "cgroup.subtree_control": "",
            "cgroup.freeze": "0", "cgroup.events": "populated 0\nfrozen 0\n", "cgroup.kill": "",
            "memory.max": "max", "memory.swap.max": "max", "cpu.max": "max 100000", "cpu.weight": "100",
            "pids.max": "max", "cpuset.cpus": "", "io.weight": "default 100",
            "cpu.stat": "usage_usec 1234\nuser_usec 1000\n", "memory.current": "4096", "memory.peak": "8192",
            "pids.current": "1", "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"}
V1_FILES = {"memory": {"memory.limit_in_bytes": "9223372036854771712", "memory.memsw.limit_in_bytes":
                       "9223372036854771712", "memory.usage_in_bytes": "4096", "memory.max_usage_in_bytes": "8192",
                       "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"},
            "cpu": {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1", "cpu.shares": "1024"},
            "cpuacct": {"cpuacct.usage": "5000000"},
            "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
            "pids": {"pids.max": "max", "pids.current": "1"},
            "freezer": {"freezer.state": "THAWED"}}


@pytest.fixture
def fake_fs(tmp_path, monkeypatch):
    """mkdir in the temp tree also creates the control files, as cgroupfs does."""
    real_mkdir = _files.mkdir

    def mkdir(path):
        made = real_mkdir(path)
        path = Path(path)                 # the backends pass strings (no pathlib on the OCI path)
        if made:
            files = V2_FILES if "v2" in path.parts else {**{"cgroup.procs": ""},
                                                         **V1_FILES[_hierarchy(path, tmp_path)]}
            for name, text in files.items():
                (path / name).write_text(text)
        return made

    monkeypatch.setattr(_files, "mkdir", mkdir)
    # rmdir on cgroupfs ignores control files; in a temp tree, remove them first
    real_rmdir = os.rmdir

    def rmdir(path):
        if os.path.isdir(path):
            for f in os.listdir(path):
                p = os.path.join(path, f)
                if os.path.isfile(p):
                    os.unlink(p)
        real_rmdir(path)
    monkeypatch.setattr(os, "rmdir", rmdir)
    return tmp_path


def _hierarchy(path, root):
    return path.relative_to(root / "v1").parts[0]


def _read(p):
    return p.read_text().strip()


def test_v2_translation(fake_fs):
    root = fake_fs / "v2"
    root.mkdir()
    for name in ("cgroup.controllers", "cgroup.subtree_control"):
        (root / name).write_text(V2_FILES[name])
    (root / "cgroup.subtree_control").write_text("memory")
    b = V2Backend(root)
    cg = Cgroup.create("web", Limits(memory="64m", memory_swap="96m", cpus=0.5, cpu_shares=1024, pids=20,
                                     cpuset="0", blkio_weight=500), backend=b)
    d = root / "minicontainer" / "web"
    # controllers enabled on the way down: the root got only the missing ones, our parent all of them
    assert _read(root / "cgroup.subtree_control") == "+cpu +cpuset +io +pids"
    assert _read(root / "minicontainer" / "cgroup.subtree_control") == "+cpu +cpuset +io +memory +pids"
    assert _read(d / "memory.max") == str(64 << 20)
    assert _read(d / "memory.swap.max") == str(32 << 20)       # v2: swap alone, not memory+swap
    assert _read(d / "cpu.max") == "50000 100000"
    assert _read(d / "cpu.weight") == "39"
    assert _read(d / "pids.max") == "20"
    assert _read(d / "cpuset.cpus") == "0"
    assert _read(d / "io.weight") == str(blkio_to_io_weight(500))
    cg.add(4242)
    assert _read(d / "cgroup.procs") == "4242"
    assert cg.stats() == {"cpu_usage_usec": 1234, "memory_current": 4096, "memory_peak": 8192,
                          "pids_current": 1, "oom_kills": 1}
    (d / "cgroup.events").write_text("populated 1\nfrozen 1\n")   # what the kernel reports once frozen
    cg.freeze()
    assert _read(d / "cgroup.freeze") == "1" and cg.frozen
    assert cg.file("memory.max") == d / "memory.max"
    (d / "cgroup.procs").write_text("")
    cg.delete()
    assert not (root / "minicontainer").exists()              # the parent goes with the last group


def test_v2_missing_controller_creates_nothing(fake_fs):
    root = fake_fs / "v2"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu pids")
    (root / "cgroup.subtree_control").write_text("")
    with pytest.raises(CgroupError, match="offers no memory controller"):
        Cgroup.create("web", Limits(memory="64m"), backend=V2Backend(root))
    assert sorted(os.listdir(root)) == ["cgroup.controllers", "cgroup.subtree_control"]


def _v1_tree(root, comount=False):
    mounts = {}
    for c in V1_FILES:
        m = root / "v1" / ("cpu,cpuacct" if comount and c in ("cpu", "cpuacct") else c)
        m.mkdir(parents=True, exist_ok=True)
        mounts[c] = str(m)
    (root / "v1" / "cpuset" / "cpuset.cpus").write_text("0-1\n")
    (root / "v1" / "cpuset" / "cpuset.mems").write_text("0\n")
    return V1Backend(mounts)


def test_v1_translation(fake_fs):
    b = _v1_tree(fake_fs)
    cg = Cgroup.create("web", Limits(memory="64m", cpus=0.5, cpu_shares=512, pids=20), backend=b)
    v1 = fake_fs / "v1"
    g = lambda c: v1 / c / "minicontainer" / "web"  # noqa: E731
    assert _read(g("memory") / "memory.limit_in_bytes") == str(64 << 20)
    assert _read(g("memory") / "memory.memsw.limit_in_bytes") == str(128 << 20)   # memory + swap
    assert _read(g("cpu") / "cpu.cfs_quota_us") == "50000"
    assert _read(g("cpu") / "cpu.cfs_period_us") == "100000"
    assert _read(g("cpu") / "cpu.shares") == "512"
    assert _read(g("pids") / "pids.max") == "20"
    # cpuset copied from the parent, at our parent's level and the group's, so a pid may join
    assert _read(v1 / "cpuset" / "minicontainer" / "cpuset.cpus") == "0-1"
    assert (_read(g("cpuset") / "cpuset.cpus"), _read(g("cpuset") / "cpuset.mems")) == ("0-1", "0")
    cg.add(4242)
    assert all(_read(g(c) / "cgroup.procs") == "4242" for c in V1_FILES)
    assert cg.stats() == {"cpu_usage_usec": 5000, "memory_current": 4096, "memory_peak": 8192,
                          "pids_current": 1, "oom_kills": 2}
    assert sorted(cg.dirs()) == sorted(V1_FILES)
    for c in V1_FILES:
        (g(c) / "cgroup.procs").write_text("")
    cg.delete()
    assert not any((v1 / c / "minicontainer").exists() for c in V1_FILES)


def test_v1_memsw_order_when_lowering(fake_fs):
    b = _v1_tree(fake_fs)
    writes = []
    real = _files.write

    def spy(path, value, **kw):
        writes.append(os.path.basename(path))
        return real(path, value, **kw)
    cg = Cgroup.create("web", Limits(memory="64m"), backend=b)
    import minicontainer.cgroups.v1 as v1mod
    v1mod.f.write = spy
    try:
        cg.set_limits(Limits(memory="32m"))          # lower: memory first, then memsw
        assert writes == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
        writes.clear()
        cg.set_limits(Limits(memory="128m"))         # raise: memsw first
        assert writes == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    finally:
        v1mod.f.write = real
    cg.delete()


def test_v1_comounted_cpu_cpuacct_is_one_directory(fake_fs):
    b = _v1_tree(fake_fs, comount=True)
    assert len(b.hierarchies()) == len(V1_FILES) - 1
    assert b.dir("web", "cpu") == b.dir("web", "cpuacct")


def test_v1_failure_half_way_removes_every_directory(fake_fs):
    b = _v1_tree(fake_fs)
    os.remove(fake_fs / "v1" / "cpuset" / "cpuset.mems")      # the parent copy will fail: ENOENT
    with pytest.raises(CgroupError, match="cpuset.mems: ENOENT"):
        Cgroup.create("web", backend=b)
    assert not any((fake_fs / "v1" / c / "minicontainer").exists() for c in V1_FILES)


def test_v2_touches_the_root_only_for_what_is_missing(fake_fs):
    root = fake_fs / "v2"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu cpuset io memory pids hugetlb")
    (root / "cgroup.subtree_control").write_text("cpu memory pids")
    before = (root / "cgroup.subtree_control").stat().st_mtime_ns
    cg = Cgroup.create("plain", backend=V2Backend(root))       # accounting only: all there already
    assert (root / "cgroup.subtree_control").stat().st_mtime_ns == before
    assert _read(root / "cgroup.subtree_control") == "cpu memory pids"
    cg.delete()
    with pytest.raises(ConfigError):                            # a bad name never reaches the tree
        Cgroup.create("a/b", backend=V2Backend(root))
    assert not (root / "minicontainer").exists()


def test_v2_our_parent_enables_every_offered_controller_best_effort(fake_fs, monkeypatch):
    # as runc: a container's group gets hugetlb, rdma, misc… files where the tree offers them;
    # one the kernel refuses is skipped, the wanted ones still come first and in one write
    root = fake_fs / "v2"
    root.mkdir()
    monkeypatch.setitem(V2_FILES, "cgroup.controllers", "cpu cpuset io memory pids hugetlb misc rdma")
    for name in ("cgroup.controllers", "cgroup.subtree_control"):
        (root / name).write_text(V2_FILES[name])
    writes, real_write = [], _files.write

    def write(path, value, **kw):
        if str(path).endswith("subtree_control"):
            writes.append((os.path.relpath(path, root), value))
            if value == "+misc":
                raise CgroupError("write '+misc' to", str(path), errno.EINVAL)
        return real_write(path, value, **kw)
    monkeypatch.setattr(_files, "write", write)
    Cgroup.create("web", None, backend=V2Backend(root)).delete()
    assert writes == [("cgroup.subtree_control", "+cpu +memory +pids"),
                      ("minicontainer/cgroup.subtree_control", "+cpu +cpuset +io +memory +pids"),
                      ("minicontainer/cgroup.subtree_control", "+hugetlb"),
                      ("minicontainer/cgroup.subtree_control", "+misc"),
                      ("minicontainer/cgroup.subtree_control", "+rdma")]
