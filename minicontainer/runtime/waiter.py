"""The one process of ours that stays while a detached container runs (notebook 06; bench/scaling.py).

A ``run -d`` container keeps the monitor on the host (containerd-shim's role in Docker: it records
the exit status, removes the cgroup and network, and the record with ``--rm``; monitor.py). It
starts as a fork of the runtime — a Python that has imported the whole package, whose pages are
charged to it once the runtime has exited. So once the container runs, it *execs* this file under a
bare interpreter (``python -I -S``: no site, only os and sys): exec keeps the pid (the record's
owner stays alive for ``gc``), the children (PID 1) and the parent-death signal, and drops the rest.
What remains is a bare interpreter's own ~2.6 MiB of private memory, and PID 1 (bench/README.md has
the measured totals per container).

    python -I -S waiter.py supervise PID1 JSON    # the monitor: wait for PID 1, then tear down

Only when PID 1 has ended does the monitor import the runtime (after the container's life, when its
cost no longer matters) to tear down exactly as a foreground run does (teardown.finish_detached).

One waiting process, not two. The runtime's intermediate process C (it unshares the namespaces
and forks PID 1, G: a new PID namespace applies to the next child only) used to stay too, as a
second bare interpreter, only to wait for G and pass on its status (bench/README.md, "Many
containers", has the figures before and after). Now the monitor ends C as soon as G is in its cgroup, before
the release (parked.Parked.hand_over), while it is a child subreaper (PR_SET_CHILD_SUBREAPER): the
kernel gives G to the monitor, which then waits for PID 1 itself. G's parent-death signal moves
with it: G sets it only once the monitor is its parent (standard_init._watch_monitor; set before,
C's exit would have fired it). The monitor was chosen to stay, not C: C lives in the container's
cgroup (charged to its memory and pids limits, frozen by ``pause``) and in its network namespace,
where the teardown (veth, rules) cannot run. Side effect: the container's cgroup now holds only its
own processes. Rejected alternatives:

- a smaller waiter: this one imports nothing beyond what ``python -I -S -c pass`` loads (os, sys
  and the interpreter's own frozen modules; ``signal`` alone would add enum's ~1 MiB of heap). Its
  ~2.6 MiB private are the interpreter's floor (1.1 MiB of the binary's data pages, dirtied at start
  by static objects' reference counts and relocations; ~1.3 MiB of heap and arenas): two of them
  could not go under 4 MiB per container.
  A waiter written in C: the runtime stays one language.
- no C at all (the monitor unshares the PID namespace and forks G itself): then the monitor, or G,
  must make the other namespaces, and the park (parked.py) is shared by foreground runs and the
  server's spare, which keep C; ending C after the park changes nothing they see.
- one waiter shared by several containers: a crash, an OOM kill or a bug in it would end (through
  the parent-death signal) or orphan every container it holds, and leave all their exit statuses
  unrecorded; one monitor per container keeps failures apart, as containerd-shim and conmon do.
"""

import os
import sys


def _wait(pid: int) -> int:
    """Wait for child ``pid``; its raw wait status."""
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except InterruptedError:
            continue


def supervise(pid1: int, job: str) -> None:
    status = _wait(pid1)
    import json                          # now the container has ended: the runtime may load
    sys.path[:] = json.loads(job)["path"]  # the runtime's own (site-packages: pyroute2)
    from minicontainer.runtime.teardown import finish_detached
    finish_detached(job, status)
    os._exit(0)


def argv(role: str, *args) -> list[str]:
    """The command line that turns the calling process into a waiter (for os.execv)."""
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), role, *map(str, args)]


def become(role: str, *args) -> None:
    """exec this file as ``role`` (the calling process becomes a bare interpreter, same pid); returns
    only if the exec failed, and then the caller simply goes on waiting itself."""
    # (no sys.stdout.flush(): in a notebook it is ipykernel's stream, whose thread a fork does not
    # have — it made C die before the network could be plugged in; we never print here anyway)
    try:
        os.execv(sys.executable, argv(role, *args))
    except Exception:                             # noqa: BLE001 — then we wait there, as before
        pass


if __name__ == "__main__":
    if sys.argv[1] == "supervise":
        supervise(int(sys.argv[2]), sys.argv[3])
