"""``exec --process FILE ID``: one more process in a running container (``docker exec``,
``podman exec``, ``ctr task exec``).

The runtime puts a forked child into the container's cgroup, the child joins every namespace of the
container's first process that differs from its own (nsenter's order, namespaces.enter) and forks
once more (a PID namespace takes only children); that grandchild chdirs, gets a terminal if asked,
applies the process's security settings and execs. With ``--detach`` the runtime and the middle
child exit once it runs (the shim/conmon, subreapers, inherit it and wait for it); without, the
middle child waits and the runtime exits with the program's status, as ``runc exec`` does.
Seccomp: the container's profile (kept in the record at create) applies to exec'd processes too;
so does its AppArmor profile, unless the process names its own (``process.apparmorProfile``, runc's rule).
"""
from __future__ import annotations

import os
import socket
import time

from ..errors import ContainerError, exit_code
from . import _security, init, spec as specmod, state as statemod
from .create import Context, _console, _recv
from .state import status

_TIMEOUT = 30.0


def exec_process(root: str, cid: str, process_file: str, *, pid_file: str | None = None,
                 detach: bool = False, console_socket: str | None = None, tty: bool | None = None,
                 preserve_fds: int = 0) -> int:
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
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ctx = Context(pid=st.pid, process=proc, prepared=prepared, console=console, detach=detach,
                  preserve_fds=preserve_fds)
    c = os.fork()
    if c == 0:
        parent.close()
        init.exec_stage1(ctx, child)                 # never returns
    child.close()
    if console is not None:
        console.close()
    pid = 0
    try:
        if cg is not None and cg.exists():
            cg.add(c)
        if not detach:
            # the signals to forward wait (blocked, pending) from here until forwarding is in place:
            # the process may run, and its caller signal us, before we know its pid
            import signal
            forwarded = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                         signal.SIGUSR2)
            signal.pthread_sigmask(signal.SIG_BLOCK, forwarded)
        init.send(parent, "go")
        deadline = time.monotonic() + _TIMEOUT
        while True:
            kind, value = _recv(parent, deadline)
            if kind == "pid":
                pid = value
            elif kind == "ready":
                break
            elif kind == "error":
                raise value
            else:
                raise ContainerError("exec: the process ended before it was ready")
    except BaseException:
        parent.close()
        if pid:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        os.waitpid(c, 0)
        raise
    parent.close()
    if pid_file:
        statemod.write_pid_file(pid_file, pid)
    if not detach:
        # runc exec forwards the signals it gets to the process (a ^C, a `kill` of the runtime)
        def forward(sig, _frame):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        for sig in forwarded:
            signal.signal(sig, forward)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, forwarded)     # one that came meanwhile: now
    while True:
        try:
            status_ = os.waitpid(c, 0)[1]
            break
        except InterruptedError:
            continue
    return 0 if detach else exit_code(status_)
