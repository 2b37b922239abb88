"""The processes that stay while a detached container runs (notebook 06; bench/scaling.py).

A ``run -d`` container keeps two processes of ours on the host: the monitor (containerd-shim's role
in Docker: it records the exit status, removes the cgroup and network, and the record with ``--rm``;
monitor.py) and the intermediate process C (it made the namespaces; the container's PID 1 is its
child). Both start as forks of the runtime — a
Python that has imported the whole package, whose pages are charged to them once the runtime has
exited. So once the container runs, both *exec* this file under a bare interpreter (``python -I -S``:
no site, only os and _signal): exec keeps the pid (the record's owner stays alive for ``gc``), the
children (C is still the monitor's child, PID 1 still C's) and the parent-death signal, and drops
the rest. What remains is a bare interpreter's own ~2.6 MiB of private memory each (bench/README.md
has the measured totals per container).

    python -I -S waiter.py child PID1          # C: forward SIGTERM/SIGINT to PID 1, exit as it did
    python -I -S waiter.py supervise C JSON    # the monitor: wait for C, then tear down

Only when C has ended does the monitor import the runtime (after the container's life, when its
cost no longer matters) to tear down exactly as a foreground run does (teardown.finish_detached). For C to exec a host binary its root must stay the host's:
so G, not C, unshares the mount namespace (pivot_root moves the root of every process in the
namespace; the first try, with C in it, died with "No module named 'signal'"). A foreground run does
not do this: its runtime process waits anyway, and an exec'd interpreter would only add its start.
Rejected alternative: a waiter written in C — the runtime stays one language, and the interpreter's
own pages are file-backed, shared by every waiter.
"""

import os
import _signal as signal  # not `signal`: it imports enum (~1 MiB of heap for every waiter)
import sys


def _wait(pid: int) -> int:
    """Wait for child ``pid``; its raw wait status."""
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except InterruptedError:
            continue


def child(pid1: int) -> None:
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda sig, _f: os.kill(pid1, sig))
    status = _wait(pid1)
    # PID 1 has ended: now the package may load (errors is small: os and errno)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from minicontainer.errors import exit_code
    os._exit(exit_code(status))


def supervise(cpid: int, job: str) -> None:
    status = _wait(cpid)
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
    if sys.argv[1] == "child":
        child(int(sys.argv[2]))
    elif sys.argv[1] == "supervise":
        supervise(int(sys.argv[2]), sys.argv[3])
