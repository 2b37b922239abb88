"""Checks for notebook 06's exercises (the runtime: exit codes and the cell-friendly API)."""

from __future__ import annotations

import os
import signal

from . import ExerciseFailed, exercise


@exercise("06.1")
def check_docker_exit_code(docker_exit_code) -> str:
    """Real children: one exits 3, one is killed by SIGKILL, one by SIGTERM; compare with docker's codes."""
    cases = [("exit 3", 3), ("SIGKILL", 137), ("SIGTERM", 143), ("exit 0", 0)]
    for what, want in cases:
        pid = os.fork()
        if pid == 0:
            try:
                if what.startswith("SIG"):
                    os.kill(os.getpid(), getattr(signal, what))
            finally:
                os._exit(int(what.split()[1]) if what.startswith("exit") else 1)
        _, status = os.waitpid(pid, 0)
        got = docker_exit_code(status)
        if got != want:
            raise ExerciseFailed(f"child that did {what}: expected {want}, got {got!r}")
    return "exit N → N, signal N → 128+N, as docker"


@exercise("06.2")
def check_hostname_seen(hostname_seen) -> str:
    """The learner's function runs a container with --hostname and returns what `hostname` prints."""
    got = hostname_seen("mcrt-ex062")
    if got != "mcrt-ex062":
        raise ExerciseFailed(f"expected 'mcrt-ex062', got {got!r}")
    from minicontainer.runtime import state
    left = [r["name"] for r in state.all_records()]
    if left:
        raise ExerciseFailed(f"containers left behind: {left} (use rm=True)")
    return "the container saw its own hostname and left no record"
