"""Checks for notebook 02's exercises (cgroups). Groups made here are named ``nb02-check-…`` and are
removed (their processes killed) before the check returns, passed or not."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from . import ExerciseFailed, exercise

_PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"


def _expected_cgroup(pid: int, controller: str) -> str:
    """The reference answer: the v1 line listing ``controller``, else the v2 line (hierarchy 0)."""
    v2 = None
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        hid, ctrls, path = line.split(":", 2)
        if controller in ctrls.split(","):
            return path
        if hid == "0":
            v2 = path
    return v2


@exercise("02.1")
def check_cgroup_of(cgroup_of) -> str:
    from ..cgroups import Cgroup
    me = os.getpid()
    for ctrl in ("memory", "pids", "cpu"):
        got, want = cgroup_of(me, ctrl), _expected_cgroup(me, ctrl)
        if got != want:
            raise ExerciseFailed(f"cgroup_of({me}, {ctrl!r}) of this process: expected {want!r}, got {got!r}")
    with Cgroup.create("nb02-check-1") as cg:
        child = subprocess.Popen(["sleep", "30"])
        try:
            cg.add(child.pid)
            for ctrl in ("memory", "cpu"):
                got, want = cgroup_of(child.pid, ctrl), _expected_cgroup(child.pid, ctrl)
                if got != want:
                    raise ExerciseFailed(f"cgroup_of(child, {ctrl!r}) after cg.add(child): expected "
                                         f"{want!r}, got {got!r}")
                if not want.endswith("/nb02-check-1"):
                    raise ExerciseFailed(f"the reference path {want!r} does not name the group")
        finally:
            child.kill()
            child.wait()
    return f"memory/pids/cpu groups of this kernel and of a child moved to {want}"


@exercise("02.2")
def check_cpu_fraction(cpu_fraction) -> str:
    from ..cgroups import Cgroup, Limits
    busy = "import sys, time\nsys.stdin.read(1)\nt = time.monotonic()\nwhile time.monotonic() - t < 5: pass\n"
    with Cgroup.create("nb02-check-2", Limits(cpus=0.5)) as cg:
        idle = cpu_fraction(cg, 0.3)
        if idle is None or not (0 <= idle < 0.05):
            raise ExerciseFailed(f"an empty group uses no CPU: expected about 0.0, got {idle!r}")
        p = subprocess.Popen([_PY, "-c", busy], stdin=subprocess.PIPE)
        try:
            cg.add(p.pid)
            p.stdin.write(b"g")
            p.stdin.close()
            time.sleep(0.2)
            t0 = time.monotonic()
            got = cpu_fraction(cg, 0.5)     # not 1 s: CPU seconds not divided by wall time must fail
            took = time.monotonic() - t0
        finally:
            p.kill()
            p.wait()
    if not 0.4 <= took <= 1.5:
        raise ExerciseFailed(f"cpu_fraction(cg, 0.5) should watch for about 0.5 s, it took {took:.2f} s")
    if not isinstance(got, float) or not 0.38 <= got <= 0.62:
        raise ExerciseFailed(f"a busy loop under --cpus 0.5: expected about 0.5, got {got!r}")
    return f"idle group {idle:.2f} CPU, busy loop under --cpus 0.5 {got:.2f} CPU"


_HOG = ("import sys\nsys.stdin.read(1)\nheld = []\n"
        "for _ in range(64):\n    held.append(b'\\x01' * (8 << 20))\nprint('survived', flush=True)\n")


@exercise("02.3")
def check_limit_memory(limit_memory) -> str:
    """Build exercise: the learner writes the limit and moves the process in by hand; the grade is the
    kernel's OOM kill of a 512 MiB hog, counted in memory.events (v2) or memory.oom_control (v1)."""
    from ..cgroups import Cgroup
    limit = 48 << 20
    with Cgroup.create("nb02-check-3") as cg:
        dirs = cg.dirs()
        group = Path(dirs.get("memory") or dirs["unified"])
        v2 = (group / "memory.max").exists()
        events = group / ("memory.events" if v2 else "memory.oom_control")
        hog = subprocess.Popen([_PY, "-c", _HOG], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            limit_memory(str(group), limit, hog.pid)
            members = [int(p) for p in (group / "cgroup.procs").read_text().split()]
            if hog.pid not in members:
                raise ExerciseFailed(f"pid {hog.pid} is not in {group}/cgroup.procs (members: {members})")
            knob = group / ("memory.max" if v2 else "memory.limit_in_bytes")
            value = knob.read_text().strip()
            if value == "max" or int(value) > limit:
                raise ExerciseFailed(f"{knob.name} reads {value}: expected at most {limit}")
            hog.stdin.write(b"g"); hog.stdin.close()
            try:
                hog.wait(timeout=20)
            except subprocess.TimeoutExpired:
                raise ExerciseFailed("the 512 MiB hog neither finished nor died within 20 s") from None
            out = hog.stdout.read()
            kills = int(next((l.split()[1] for l in events.read_text().splitlines()
                              if l.startswith("oom_kill ")), "0"))
            if hog.returncode != -9 or kills < 1:
                swap = " (is swap limited too? memory.swap.max / memory.memsw.limit_in_bytes)" \
                    if b"survived" in out else ""
                raise ExerciseFailed(f"the hog should have been OOM-killed (SIGKILL, oom_kill ≥ 1 in "
                                     f"{events.name}); it ended with {hog.returncode}, oom_kill {kills}{swap}")
        finally:
            if hog.poll() is None:
                hog.kill()
            hog.wait()
    version = "v2 memory.events" if v2 else "v1 memory.oom_control"
    return f"a 512 MiB hog under {limit >> 20} MiB was OOM-killed: oom_kill {kills} in {version}"
