"""Checks for notebook 00's exercises."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from . import ExerciseFailed, exercise

_PROCESS_NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")


def _links(pid: int) -> dict[str, str]:
    return {n: os.readlink(f"/proc/{pid}/ns/{n}") for n in _PROCESS_NAMESPACES
            if os.path.exists(f"/proc/{pid}/ns/{n}")}


@exercise("00.1")
def check_shared_namespaces(shared_namespaces) -> str:
    me = os.getpid()
    everything = set(_links(me))
    got = shared_namespaces(me, me)
    if set(got) != everything:
        raise ExerciseFailed(f"a process shares every namespace with itself: expected {sorted(everything)}, "
                             f"got {sorted(got) if got is not None else got}")
    child = subprocess.Popen(["unshare", "--uts", "--ipc", "--net", "sleep", "30"])
    try:
        for _ in range(100):          # wait until unshare has exec'd sleep in its new namespaces
            if _links(child.pid)["uts"] != _links(me)["uts"]:
                break
            time.sleep(0.01)
        a, b = _links(me), _links(child.pid)
        expected = {n for n in a if a[n] == b.get(n)}
        got = shared_namespaces(me, child.pid)
        if set(got) != expected:
            raise ExerciseFailed(f"for a child made with `unshare --uts --ipc --net`: expected "
                                 f"{sorted(expected)}, got {sorted(got)}")
        if {"pid_for_children", "time_for_children"} & set(got):
            raise ExerciseFailed("pid_for_children/time_for_children are not namespaces of the process")
    finally:
        child.kill()
        child.wait()
    return f"shares {sorted(expected)} with an unshare --uts --ipc --net child"


_V2_ONLY = """\
23 29 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
29 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
33 23 0:28 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""
_V1_COMOUNT = """\
25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
32 30 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
"""
_HYBRID = _V1_COMOUNT + (
    "33 30 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:12 - cgroup2 cgroup2 rw\n")
_NONE = "25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
# a tricky one: a *directory* named cgroup2 on an ext4 mount is not a cgroup mount
_TRICKY = _NONE + "40 25 8:1 /srv /mnt/cgroup2 rw,relatime shared:1 - ext4 /dev/sda1 rw\n"


@exercise("00.2")
def check_cgroup_layout(cgroup_layout) -> str:
    cases = {"Ubuntu 24.04 (v2 only)": (_V2_ONLY, "v2"), "old CentOS (v1, co-mounted)": (_V1_COMOUNT, "v1"),
             "Ubuntu 20.04 (hybrid)": (_HYBRID, "hybrid"), "a chroot without cgroups": (_NONE, "none"),
             "a directory named cgroup2": (_TRICKY, "none")}
    from minicontainer.cgroups import detect_layout
    cases["this host"] = (Path("/proc/self/mountinfo").read_text(), detect_layout().kind)
    for label, (text, expected) in cases.items():
        got = cgroup_layout(text)
        if got != expected:
            raise ExerciseFailed(f"{label}: expected {expected!r}, got {got!r}")
    return f"{len(cases)} mount tables classified, this host: {cases['this host'][1]}"
