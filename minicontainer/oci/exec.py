"""``exec --process FILE ID``: one more process in a running container (``docker exec``,
``podman exec``, ``ctr task exec``) — and the engine's ``minicontainer exec``, which calls
:func:`run` in-process with a Process made from its flags (runtime/exec.py): one exec path.

The runtime puts a forked child C into the container's cgroup; C joins every namespace of the
container's first process that differs from its own (the user namespace last), enters the working
directory, takes the process's confinement (capabilities, seccomp, no_new_privs, ids, AppArmor) and
forks G (a PID namespace takes only children); G gets its stdio and a terminal if asked, finds the
program in the container's PATH and execs (init.py says why confined before the fork). With
``--detach`` the runtime and C exit once it runs (the shim/conmon, subreapers, inherit it and wait
for it); without, C waits and the runtime exits with the program's status, as ``runc exec`` does.
Seccomp: the container's profile (kept in the record at create) applies to exec'd processes too;
so does its AppArmor profile, unless the process names its own (``process.apparmorProfile``, runc's rule).
"""
from __future__ import annotations

import os
# the C modules: `socket` and `signal` wrap them in enums, and `threading` is not needed to find
# out whether we run in the main thread (exec's path: bench/README.md)
import _signal as signal
import _socket as socket
import time

from ..errors import ContainerError, exit_code
from . import init

_TIMEOUT = 30.0


def exec_process(root: str, cid: str, process_file: str, *, pid_file: str | None = None,
                 detach: bool = False, console_socket: str | None = None, tty: bool | None = None,
                 preserve_fds: int = 0) -> int:
    """``minicontainer-oci exec``: the process file read and checked, the container's state, then
    :func:`run`."""
    from . import _security, spec as specmod
    from .create import _console
    from .state import status, write_pid_file
    proc = specmod.load_process(process_file)
    if tty is not None and tty != proc.terminal:
        proc = specmod.Process(**{**{n: getattr(proc, n) for n in proc.__record_fields__}, "terminal": tty})
    st, cg, s = status(root, cid)
    if s != "running":
        raise ContainerError(f"cannot exec in a {s} container" if s in ("stopped", "paused", "created")
                             else "container not running")
    prepared = _security.prepare(_security.process_security(proc, st.data.get("seccomp"),
                                                            st.data.get("apparmor") or ""))
    console = _console(console_socket) if proc.terminal else None
    return run(st.pid, cg, proc, prepared, console=console, detach=detach, preserve_fds=preserve_fds,
               on_pid=(lambda pid: write_pid_file(pid_file, pid)) if pid_file else None)


def run(pid: int, cg, proc, prepared, *, console=None, stdio=None, detach: bool = False,
        preserve_fds: int = 0, on_pid=None, on_ready=None) -> int:
    """Run ``proc`` (a spec.Process) in the container whose first process is ``pid`` and whose
    cgroup is ``cg``, confined by ``prepared`` (security.Prepared); the program's exit status (its
    docker code), or 0 at once with ``detach``. The in-process entry point: the engine's ``exec``
    (runtime/exec.py) calls it with its own Process and settings, so both exec the same way.
    ``console``: a connected Unix socket for the terminal's master (closed here); ``stdio``: the
    process's fds 0-2 (default: ours); ``on_ready()``: called once the program is about to run
    (the engine relays the terminal from then on); ``on_pid(pid)``: the program's pid on the host,
    then (``--pid-file``). Errors: the exception of the stage that failed,
    with docker's 126/127 for a program that cannot be run or found."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ctx = init.Context(pid=pid, process=proc, prepared=prepared, console=console, detach=detach,
                  preserve_fds=preserve_fds, stdio=stdio)
    c = os.fork()
    if c == 0:
        parent.close()
        init.exec_stage1(ctx, child)                 # never returns
    child.close()
    if console is not None:
        console.close()
    gpid = 0
    forwarded = ()
    try:
        if cg is not None and cg.exists():
            cg.add(c)
        if not detach and _main_thread():
            # the signals to forward wait (blocked, pending) from here until forwarding is in place:
            # the process may run, and its caller signal us, before we know its pid
            forwarded = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                         signal.SIGUSR2)
            signal.pthread_sigmask(signal.SIG_BLOCK, forwarded)
        init.send(parent, "go")
        deadline = time.monotonic() + _TIMEOUT
        while True:
            kind, value = init.recv_until(parent, deadline, "exec")
            if kind == "pid":
                gpid = value
            elif kind == "ready":
                break
            elif kind == "error":
                raise value
            else:
                raise ContainerError("exec: the process ended before it was ready")
    except BaseException:
        parent.close()
        _end(gpid)
        os.waitpid(c, 0)
        if forwarded:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, forwarded)
        raise
    parent.close()
    if on_pid is not None:
        on_pid(gpid)
    old = {}
    if forwarded:
        # runc exec forwards the signals it gets to the process (a ^C, a `kill` of the runtime)
        def forward(sig, _frame):
            try:
                os.kill(gpid, sig)
            except ProcessLookupError:
                pass
        old = {sig: signal.signal(sig, forward) for sig in forwarded}
        signal.pthread_sigmask(signal.SIG_UNBLOCK, forwarded)     # one that came meanwhile: now
    try:
        if on_ready is not None:
            try:
                on_ready()
            except BaseException:
                _end(gpid)                       # nobody will relay its terminal: end it
                raise
        while True:
            try:
                status_ = os.waitpid(c, 0)[1]
                break
            except InterruptedError:
                continue
    finally:
        for sig, h in old.items():               # an in-process caller gets its handlers back
            if h is not None:                    # (None: one not set from Python; left as it is)
                signal.signal(sig, h)
    return 0 if detach else exit_code(status_)


def _main_thread() -> bool:
    """Can signal handlers be set here? Only Python's main thread may (a notebook's worker thread
    may not). Without `threading` imported there is no other thread of Python's making."""
    import sys
    threading = sys.modules.get("threading")
    return threading is None or threading.current_thread() is threading.main_thread()


def _end(gpid: int) -> None:
    if gpid:
        try:
            os.kill(gpid, 9)
        except ProcessLookupError:
            pass
