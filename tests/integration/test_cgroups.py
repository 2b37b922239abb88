"""cgroups on this host's real hierarchy (v1/hybrid here, v2 in the classroom VM): issue 4's acceptance.

Every group is named ``mccg-…`` and lives below our parent; the autouse leak check fails a test that
leaves one behind. Workloads are small /usr/bin/python3 children that wait on stdin until they have been
moved into the group, so everything they do is charged to it.
"""

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from minicontainer import cgroups
from minicontainer.cgroups import Cgroup, Limits, detect_layout, list_groups
from minicontainer.cgroups.v2 import V2Backend
from minicontainer.errors import CgroupError, ConfigError, NotFoundError

PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
LAYOUT = detect_layout()
pytestmark = pytest.mark.skipif(LAYOUT.kind == "none", reason="no cgroup file system mounted")


def _backends():
    out = [pytest.param(None, id=f"default-{LAYOUT.backend}")]
    if LAYOUT.kind == "hybrid":   # the nearly empty v2 tree beside v1: no controllers, but the core works
        out.append(pytest.param(LAYOUT.v2, id="v2-unified"))
    return out


def _backend(v2root):
    return V2Backend(v2root) if v2root else cgroups.default_backend()


@contextmanager
def started_in(cg, code: str):
    """A python child that joins ``cg`` before it runs ``code``."""
    p = subprocess.Popen([PY, "-c", "import sys; sys.stdin.read(1)\n" + code], stdin=subprocess.PIPE)
    try:
        cg.add(p.pid)
        p.stdin.write(b"g")
        p.stdin.close()
        yield p
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()


BUSY = "import time\nt = time.monotonic()\nwhile time.monotonic() - t < {secs}: pass\n"


def test_layout_found_in_mountinfo():
    text = Path("/proc/self/mountinfo").read_text()
    assert LAYOUT.kind in ("v1", "v2", "hybrid")
    for point in list(LAYOUT.v1.values()) + [LAYOUT.v2]:
        if point:
            assert f" {point} " in text and os.path.isdir(point)


def test_memory_limit_oom_kills_inside_the_group():
    with Cgroup.create("mccg-oom", Limits(memory="32m", memory_swap="32m")) as cg:
        with started_in(cg, "x = b'x' * (64 << 20)\nprint('survived')") as p:
            assert p.wait(timeout=30) == -signal.SIGKILL
        st = cg.stats()
        assert st["oom_kills"] >= 1, st
        assert st["memory_peak"] <= 32 << 20, st
    assert "mccg-oom" not in list_groups()


def test_cpus_half_caps_a_busy_loop():
    with Cgroup.create("mccg-cpu", Limits(cpus=0.5)) as cg:
        t0 = time.monotonic()
        with started_in(cg, BUSY.format(secs=2)) as p:
            assert p.wait(timeout=30) == 0
        wall = time.monotonic() - t0
        cpu = cg.stats()["cpu_usage_usec"] / 1e6
        assert 0.2 * wall <= cpu <= 0.6 * wall, f"cpu {cpu:.2f} s in {wall:.2f} s wall"


def test_fork_bomb_stops_at_pids_max():
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    with Cgroup.create("mccg-pids", Limits(pids=20, cpus=1)) as cg:
        with started_in(cg, bomb):
            seen = []
            t = time.monotonic()
            while time.monotonic() - t < 1.0:
                seen.append(cg.stats()["pids_current"])
                time.sleep(0.01)
            refused = cg.file("pids.events").read_text()
            cg.kill()
        assert max(seen) == 20, seen         # it reached the limit and never went past it
        events = dict(line.split() for line in refused.splitlines())
        assert int(events["max"]) > 0, refused         # the kernel refused forks ("max N")
        assert cg.procs() == []


def test_frozen_process_accrues_no_cpu_and_carries_on():
    with Cgroup.create("mccg-frz") as cg:
        with started_in(cg, BUSY.format(secs=30)) as p:
            time.sleep(0.3)
            cg.freeze()
            assert cg.frozen
            a = cg.stats()["cpu_usage_usec"]
            time.sleep(0.5)
            b = cg.stats()["cpu_usage_usec"]
            assert b - a < 5_000, f"frozen process ran {b - a} µs"
            cg.thaw()
            assert not cg.frozen
            time.sleep(0.3)
            c = cg.stats()["cpu_usage_usec"]
            assert c - b > 30_000, f"thawed process ran only {c - b} µs"
            assert p.poll() is None
            cg.kill()
            assert p.wait(timeout=5) == -signal.SIGKILL


@pytest.mark.parametrize("v2root", _backends())
def test_core_lifecycle(v2root):
    """create, add, procs, freeze/thaw, kill, delete — on v2 via cgroup.freeze and cgroup.kill."""
    backend = _backend(v2root)
    cg = Cgroup.create("mccg-core", backend=backend)
    try:
        assert Cgroup.open("mccg-core", backend=backend).name == "mccg-core"
        assert "mccg-core" in list_groups(backend)
        with started_in(cg, BUSY.format(secs=30)) as p:
            assert cg.procs() == [p.pid]
            assert f"{cg.file('cgroup.procs').parent}" in "".join(
                str(d) for d in cg.dirs().values())
            cg.freeze()
            assert cg.frozen
            a = cg.stats()["cpu_usage_usec"]
            time.sleep(0.3)
            assert cg.stats()["cpu_usage_usec"] - a < 5_000
            cg.thaw()
            assert not cg.frozen
            cg.kill()
            assert p.wait(timeout=5) == -signal.SIGKILL
            assert cg.procs() == []
    finally:
        cg.delete()
    cg.delete()                       # idempotent
    assert not cg.exists()
    assert "mccg-core" not in list_groups(backend)
    with pytest.raises(NotFoundError):
        Cgroup.open("mccg-core", backend=backend)


def test_context_manager_kills_what_is_left():
    with Cgroup.create("mccg-ctx") as cg:
        p = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"])
        cg.add(p.pid)
    assert p.wait(timeout=5) == -signal.SIGKILL
    assert "mccg-ctx" not in list_groups()


def test_delete_without_waiting():
    """`delete(wait=False)` removes an empty group at once and refuses a busy one at once (the
    runtime's clean-up after a container's PID 1 ended, which then kills what is left)."""
    from minicontainer.runtime.process import _cleanup_cgroup
    cg = Cgroup.create("mccg-nowait")
    p = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"])
    try:
        cg.add(p.pid)
        t = time.monotonic()
        with pytest.raises(CgroupError, match="EBUSY"):
            cg.delete(wait=False)
        assert time.monotonic() - t < 1 and p.poll() is None
        _cleanup_cgroup(cg, ended=True)             # busy after all: killed, then removed
        assert p.wait(timeout=5) == -signal.SIGKILL
        assert "mccg-nowait" not in list_groups()
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
        cg.destroy()
    cg = Cgroup.create("mccg-nowait")
    cg.delete(wait=False)
    assert "mccg-nowait" not in list_groups()


@pytest.mark.parametrize("kwargs", [{"memory": "abc"}, {"cpus": -1}, {"pids": 0}, {"cpus": "lots"},
                                    {"memory": "64m", "memory_swap": "32m"}, {"cpuset": "0-999"}])
def test_bad_limits_create_nothing(kwargs):
    before = list_groups()
    with pytest.raises(ConfigError):
        Cgroup.create("mccg-bad", Limits(**kwargs))
    assert list_groups() == before


@pytest.mark.parametrize("name", ["a/b", "../escape", "", ".", "x" * 200])
def test_bad_names_create_nothing(name):
    before = list_groups()
    with pytest.raises(ConfigError, match="cgroup name"):
        Cgroup.create(name, Limits(memory="64m"))
    assert list_groups() == before


def test_kernel_refusal_rolls_back(monkeypatch):
    """A write the kernel refuses half-way through leaves no directory in any hierarchy."""
    from minicontainer.cgroups import _files
    real = _files.write

    def refuse_pids(path, value, **kw):
        if Path(path).name == "pids.max":
            raise CgroupError("write to", str(path), 22, hint="refused by the test")
        return real(path, value, **kw)
    monkeypatch.setattr(_files, "write", refuse_pids)
    with pytest.raises(CgroupError, match="pids.max: EINVAL"):
        Cgroup.create("mccg-rb", Limits(memory="64m", pids=5))
    assert "mccg-rb" not in list_groups()


def test_existing_name_is_a_clear_error():
    with Cgroup.create("mccg-dup"):
        with pytest.raises(CgroupError, match="EEXIST"):
            Cgroup.create("mccg-dup")
        assert list_groups().count("mccg-dup") == 1


@pytest.mark.parametrize("v2root", _backends())
def test_kill_takes_the_children_too(v2root):
    """kill() ends every process in the group, also the ones its first process forked."""
    forker = ("import os, time\nfor _ in range(8):\n    if os.fork() == 0:\n        time.sleep(60)\n"
              "        os._exit(0)\ntime.sleep(60)\n")
    with Cgroup.create("mccg-kill", backend=_backend(v2root)) as cg:
        with started_in(cg, forker) as p:
            f_deadline = time.monotonic() + 5
            while len(cg.procs()) < 9 and time.monotonic() < f_deadline:
                time.sleep(0.01)
            pids = cg.procs()
            assert len(pids) == 9, pids
            cg.kill()
            assert p.wait(timeout=5) == -signal.SIGKILL
            assert cg.procs() == []
            for pid in pids:          # gone, or a zombie waiting for init to reap it
                try:
                    state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
                except (FileNotFoundError, ProcessLookupError):   # reaped before, or between open and read
                    continue
                assert state in ("Z", "X"), (pid, state)


def test_a_limit_the_kernel_refuses_leaves_nothing():
    """blkio weights need BFQ/CFQ: on a disk without it the kernel has no file; either way no half-made group."""
    try:
        with Cgroup.create("mccg-io", Limits(blkio_weight=500)) as cg:
            assert cg.exists()
    except CgroupError as exc:
        assert "weight" in str(exc) and exc.errno_name in ("ENOENT", "EINVAL", "EOPNOTSUPP"), exc
    assert "mccg-io" not in list_groups()


@pytest.mark.skipif(LAYOUT.backend != "v1", reason="v1 only: a group spread over several hierarchies")
def test_half_made_group_is_refused_and_still_destroyable():
    """Crash leftovers: the group exists in one hierarchy only. create() refuses it (EEXIST) without
    touching it; open().destroy() (what `gc` does) removes it."""
    b = cgroups.default_backend()
    one = b.hierarchies()[-1] / b.parent_name / "mccg-half"
    one.parent.mkdir(exist_ok=True)
    one.mkdir()
    try:
        with pytest.raises(CgroupError, match="EEXIST"):
            Cgroup.create("mccg-half")
        assert one.is_dir() and "mccg-half" in list_groups()   # untouched by the refusal
        Cgroup.open("mccg-half").destroy()
        assert "mccg-half" not in list_groups()
    finally:
        if one.exists():
            one.rmdir()
        try:
            one.parent.rmdir()
        except OSError:
            pass
