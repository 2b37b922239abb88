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
