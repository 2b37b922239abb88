"""Checks for notebook 01's exercises (namespaces)."""

from __future__ import annotations

import os
import random
import time

from . import ExerciseFailed, exercise, run_in_child


def _sleeper(**kw):
    from ..namespaces import spawn
    return spawn(["sleep", "30"], **kw)


@exercise("01.1")
def check_hostname_of(hostname_of) -> str:
    host = os.uname().nodename
    name = f"mc01-{random.randrange(16**6):06x}"
    with _sleeper(namespaces=["uts"], hostname=name) as proc:
        # run the learner's code in a child: a setns gone wrong must not move this notebook
        got = run_in_child(hostname_of, proc.pid)
        if got != name:
            raise ExerciseFailed(f"process {proc.pid} sees hostname {name!r}; hostname_of returned {got!r}")
        if os.uname().nodename != host:
            raise ExerciseFailed("the caller's own hostname changed: join the namespace in a child")
        mine = run_in_child(hostname_of, os.getpid())
        if mine != host:
            raise ExerciseFailed(f"for this notebook's own pid expected {host!r}, got {mine!r}")
    return f"read {name!r} from a process in its own UTS namespace, and {host!r} for this one"


@exercise("01.2")
def check_pid_inside(pid_inside) -> str:
    me = os.getpid()
    got = pid_inside(me)
    if got != me:
        raise ExerciseFailed(f"a process in the host's PID namespace has the same pid inside: expected {me}, got {got!r}")
    with _sleeper(namespaces=["pid"]) as proc:
        got = pid_inside(proc.pid)
        if got != 1:
            raise ExerciseFailed(f"host pid {proc.pid} is the first process of a new PID namespace: "
                                 f"expected 1, got {got!r}")
    return f"host pid {me} → {me}; the first process of a new PID namespace → 1"


@exercise("01.3")
def check_uid_outside(uid_outside) -> str:
    base = 100000 + random.randrange(1000) * 1000
    with _sleeper(namespaces=["user"], uid_map=f"0 {base} 1000\n5000 {base + 5000} 10") as proc:
        cases = {0: base, 5: base + 5, 999: base + 999, 1000: None, 5009: base + 5009, 5010: None}
        for inside, expected in cases.items():
            got = uid_outside(proc.pid, inside)
            if got != expected:
                raise ExerciseFailed(f"with uid_map '0 {base} 1000' + '5000 {base + 5000} 10', uid {inside} "
                                     f"inside is {expected} outside; uid_outside returned {got!r}")
    if uid_outside(os.getpid(), 1234) != 1234:
        raise ExerciseFailed("in the initial user namespace every uid maps to itself (uid_map '0 0 4294967295')")
    return f"{len(cases) + 1} uids translated through two map lines, unmapped ones → None"


def _mount_ids(pid: str | int = "self") -> set[str]:
    with open(f"/proc/{pid}/mountinfo") as f:
        return {line.split()[0] for line in f}


@exercise("01.4")
def check_isolated_child(isolated_child) -> str:
    """Build exercise: the learner's function, called in a throwaway child X of ours, must leave a
    process running in new UTS+PID+mount namespaces, with its own hostname and its own /proc, and
    return that process's pid (as X sees it). We grade only what the kernel shows in /proc; then X kills
    and reaps it, so nothing outlives the check."""
    import socket
    import time

    from . import call_in_x, run_in_child
    from .. import syscalls as sc

    name = f"mc01-ex{os.getpid() % 10000:04d}"
    host_mounts = _mount_ids()
    # X calls the learner's function, reports, waits for done(), then kills and reaps what it started
    done = None
    try:
        _x, pid, done = call_in_x(isolated_child, name)
        if not isinstance(pid, int) or pid <= 1 or not os.path.exists(f"/proc/{pid}"):
            raise ExerciseFailed(f"expected the host pid of a running process, got {pid!r}")
        time.sleep(0.1)
        mine = {n: os.readlink(f"/proc/self/ns/{n}") for n in ("uts", "pid", "mnt")}
        theirs = {n: os.readlink(f"/proc/{pid}/ns/{n}") for n in ("uts", "pid", "mnt")}
        same = [n for n in mine if mine[n] == theirs[n]]
        if same:
            raise ExerciseFailed(f"process {pid} still shares these namespaces with the notebook: {same}")
        nspid = next(l.split()[1:] for l in open(f"/proc/{pid}/status") if l.startswith("NSpid:"))
        if nspid[-1] != "1":
            raise ExerciseFailed(f"process {pid} should be PID 1 of its new PID namespace (fork after "
                                 f"unshare); its NSpid is {' '.join(nspid)}")

        def seen_hostname():
            fd = os.open(f"/proc/{pid}/ns/uts", os.O_RDONLY)
            sc.setns(fd, sc.CLONE_NEWUTS)
            os.close(fd)
            return socket.gethostname()
        got = run_in_child(seen_hostname)
        if got != name:
            raise ExerciseFailed(f"hostname inside: expected {name!r}, got {got!r}")
        procs = sorted(int(e) for e in os.listdir(f"/proc/{pid}/root/proc") if e.isdigit())
        if procs != [1]:
            raise ExerciseFailed(f"its /proc lists pids {procs[:8]}{'…' if len(procs) > 8 else ''}: mount a "
                                 f"new proc on /proc inside (only PID 1 should be there)")
        leaked = _mount_ids() - host_mounts
        if leaked:
            raise ExerciseFailed(f"{len(leaked)} mount(s) appeared in the notebook's mount table: make / "
                                 f"private (MS_REC|MS_PRIVATE) in the new mount namespace before mounting")
    finally:
        if done is not None:
            done()
        for mid in _mount_ids() - host_mounts:       # a leaked /proc: take it back off
            for line in open("/proc/self/mountinfo"):
                if line.split()[0] == mid:
                    try:
                        sc.umount2(line.split()[4], sc.MNT_DETACH)
                    except Exception:  # noqa: BLE001 - best effort, the check already failed
                        pass
    return f"PID 1 in new uts/pid/mnt namespaces, hostname {name}, its /proc lists only itself, no mount leaked"
