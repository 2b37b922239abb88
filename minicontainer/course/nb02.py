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
