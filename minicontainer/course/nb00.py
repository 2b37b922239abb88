"""Checks for notebook 00's exercises."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from . import ExerciseFailed, call_in_x, exercise

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


_BOX_NAMESPACES = ("uts", "ipc", "net")


def _hostname_in(pid: int) -> str:
    """The hostname process ``pid`` sees: join its UTS namespace in a child and ask there."""
    import socket

    from . import run_in_child
    from .. import syscalls as sc

    def inside():
        fd = os.open(f"/proc/{pid}/ns/uts", os.O_RDONLY)
        sc.setns(fd, sc.CLONE_NEWUTS)
        os.close(fd)
        return socket.gethostname()
    return run_in_child(inside)


def _box_problems(pid: int, x: int, name: str, workdir: str) -> list[str]:
    """What the kernel shows that is not yet a box; [] when it is one."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        caller = _links(x)
        theirs = _links(pid)
        cwd = os.readlink(f"/proc/{pid}/cwd")
        devices = [line.split(":")[0].strip() for line in Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]]
    except (FileNotFoundError, ProcessLookupError):
        return [f"process {pid} is gone: start one that keeps running (sleep), and return its pid"]
    if state == "Z":
        return [f"process {pid} has exited (a zombie): start one that keeps running (sleep)"]
    problems = []
    shared = [n for n in _BOX_NAMESPACES if theirs.get(n) == caller.get(n)]
    if shared:
        problems.append(f"process {pid} still shares {shared} with the process that called start_box "
                        f"(/proc/{pid}/ns/… equals /proc/{x}/ns/…)"
                        + (": a hostname set without a new uts namespace renames the machine"
                           if "uts" in shared else ""))
    if os.path.realpath(cwd) != os.path.realpath(workdir):
        problems.append(f"its working directory (/proc/{pid}/cwd) is {cwd}, expected {workdir}")
    if devices != ["lo"]:
        problems.append(f"/proc/{pid}/net/dev lists {devices[:6]}: a new net namespace has only lo")
    if "uts" not in shared:
        seen = _hostname_in(pid)
        if seen != name:
            problems.append(f"the hostname inside its uts namespace is {seen!r}, expected {name!r}")
    return problems


@exercise("00.3")
def check_start_box(start_box) -> str:
    """Build exercise: start_box(hostname, workdir) must leave a process running with new uts, ipc and
    net namespaces, the hostname set inside, and its working directory set. Graded from /proc only.

    The learner's function runs in a throwaway child X that has its own uts namespace first: a
    hostname set without a new namespace renames X's copy, not the machine, and the check says so.
    X kills and reaps what the function started, so nothing outlives the check."""
    import random
    import shutil
    import tempfile

    from .. import syscalls as sc

    host = os.uname().nodename
    name = f"box-{random.randrange(16**6):06x}"
    workdir = tempfile.mkdtemp(prefix="mc00-box-")
    try:
        x, pid, done = call_in_x(start_box, name, workdir, before=lambda: sc.unshare(sc.CLONE_NEWUTS))
        try:
            if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1 or not os.path.exists(f"/proc/{pid}"):
                raise ExerciseFailed(f"expected the pid of a running process, got {pid!r}")
            deadline = time.monotonic() + 3       # the process may still be on its way (unshare, sh, exec)
            while True:
                problems = _box_problems(pid, x, name, workdir)
                if not problems or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            if problems:
                raise ExerciseFailed("; ".join(problems))
        finally:
            done()
        if os.uname().nodename != host:
            raise ExerciseFailed(f"this machine's hostname changed to {os.uname().nodename!r}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return (f"process {pid}: new {'/'.join(_BOX_NAMESPACES)} namespaces, hostname {name}, cwd {workdir}, "
            f"only lo in its network; the notebook's hostname is still {host}")
