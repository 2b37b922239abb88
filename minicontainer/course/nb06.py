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


_WORKLOAD = ["/bin/sh", "-c", 'for i in 1 2 3; do sh -c "sleep 0.1 &"; done; sleep 1.2; exit 3']


def _zombie_children(ppid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if fields.get("State", "").strip().startswith("Z") and fields.get("PPid", "").strip() == str(ppid):
            out.append(int(entry))
    return out


@exercise("06.3")
def check_init(init) -> str:
    """Build exercise: the learner's init(argv) runs as PID 1 of a new PID namespace. A shell there
    leaves three orphans (re-parented to PID 1) that exit at once, then sleeps and exits 3. Graded by
    the kernel: while the shell still runs, we count PID 1's zombie children in /proc (must be 0); then
    init must return the shell's exit code."""
    import pickle
    import select
    import time
    from .. import syscalls as sc

    r, w = os.pipe()
    x = os.fork()
    if x == 0:
        try:
            os.close(r)
            sc.unshare(sc.CLONE_NEWPID)
            go_r, go_w = os.pipe()   # PID 1 starts once its pid is on the pipe: "P<pid>\n" comes first
            y = os.fork()
            if y == 0:                                   # PID 1 of the new namespace
                try:
                    os.close(go_w)
                    os.read(go_r, 1)                     # EOF: the line is written
                    try:
                        payload = ("ok", init(list(_WORKLOAD)))
                    except BaseException as exc:  # noqa: BLE001 - goes back to the checker
                        try:
                            pickle.dumps(exc)
                            payload = ("err", exc)
                        except Exception:  # noqa: BLE001
                            payload = ("err", RuntimeError(repr(exc)))
                    os.write(w, b"R" + pickle.dumps(payload))
                finally:
                    os._exit(0)
            os.close(go_r)
            os.write(w, b"P%d\n" % y)
            os.close(go_w)
            os.waitpid(y, 0)
        finally:
            os._exit(0)
    os.close(w)
    buf = b""
    try:
        while b"\n" not in buf:
            chunk = os.read(r, 64)
            if not chunk:
                raise ExerciseFailed("the namespace's PID 1 could not be started")
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        pid1 = int(line[1:])
        time.sleep(0.7)                  # the orphans exited at ~0.1 s; the shell sleeps until 1.2 s
        zombies = _zombie_children(pid1) if not buf else []
        deadline = time.monotonic() + 15
        while True:
            ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise ExerciseFailed("init did not return within 15 s of the shell's exit")
            chunk = os.read(r, 65536)
            if not chunk:
                break
            buf += chunk
    finally:
        try:
            os.kill(x, signal.SIGKILL) if not buf else None
        except OSError:
            pass
        os.waitpid(x, 0)
        os.close(r)
    if not buf.startswith(b"R"):
        raise ExerciseFailed("PID 1 died without an answer")
    kind, value = pickle.loads(buf[1:])
    if kind == "err":
        raise value
    if zombies:
        raise ExerciseFailed(f"{len(zombies)} zombie(s) under PID 1 while the shell was still running: "
                             f"reap every child (waitpid(-1)), not only the one you started")
    if value != 3:
        raise ExerciseFailed(f"the shell exited 3; init returned {value!r}")
    return "no zombie under PID 1 while the shell ran (3 orphans reaped), its exit code 3 returned"
