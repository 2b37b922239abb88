"""The monitor of a detached container (containerd-shim's role in Docker's split; notebook 06).

``run -d`` must return as soon as the container runs, yet someone must stay to wait for it: record
its exit status, remove its cgroup and network (and the record with ``--rm``). That is the monitor,
a process of its own (setsid, double-forked: the command's shell does not wait for it) whose stdout
and stderr — the container's — go to ``<state>/<id>/log`` (``minicontainer logs``). It starts the
container as a foreground ``run`` does (start_path.py) but ends the intermediate process C once PID 1
is in its cgroup and becomes PID 1's parent itself (parked.py), then, once the container runs, execs
a bare interpreter to wait (waiter.py: ~2.6 MiB instead of a whole runtime's pages, and one such
process per container, not two), and at the end calls the same teardown as everyone else
(teardown.finish_detached). The command waits for one line
from the monitor: ``ok``, or the error that stopped the start (then nothing is left).
"""

from __future__ import annotations

import os

from ..errors import ExecError, MiniContainerError, from_oserror
from . import state, teardown
from .config import ContainerConfig
from .container import create, take_parked
from .standard_init import close_inherited
from .start_path import start


def run_detached(cfg: ContainerConfig, rec: dict | None = None) -> dict:
    """``run -d`` (and ``start`` of a created container, ``rec``): the monitor (setsid) starts the
    container with its output to ``<state>/<id>/log``, waits for it and tears down after it.
    Returns once the container runs."""
    rec = rec or create(cfg)
    log = state.root() / rec["id"] / "log"
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        code = 125
        try:
            os.close(r)
            os.setsid()
            if os.fork():
                os._exit(0)
            # The caller's fds (its lock, its server connection) must not stay open for the
            # container's whole life. First let go of a server's spare (not ours to use from
            # here): its socket object then closes its own fd, not a number reused later.
            take_parked()
            close_inherited(w)
            try:
                try:
                    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                except OSError as exc:
                    raise from_oserror(exc, "open the container's log", log) from exc
                null = os.open(os.devnull, os.O_RDONLY)
                # Let go of the caller's terminal/pipes at once (else `$(minicontainer run -d …)` hangs).
                os.dup2(null, 0)
                os.dup2(fd, 1)
                os.dup2(fd, 2)

                def started(_rec):
                    os.write(w, b"ok\n")
                    os.close(w)
                start(rec, stdio=(null, fd, fd), on_started=started, detached=True)
                code = 0
            except MiniContainerError as exc:
                try:
                    os.write(w, f"{exc.exit_code} {exc}\n".encode())
                except OSError:
                    pass
        finally:
            os._exit(code)
    os.close(w)
    os.waitpid(pid, 0)
    # One line, not EOF: the container's intermediate process inherits the write end.
    data = b""
    while not data.endswith(b"\n") and (chunk := os.read(r, 4096)):
        data += chunk
    os.close(r)
    text = data.decode().strip()
    if text != "ok":
        code, _, msg = text.partition(" ")
        teardown.remove(rec)
        raise ExecError(msg or f"start container {rec['name']}: its monitor ended before it ran",
                        hint="see `minicontainer logs`" if not msg else None, exit_code=int(code) if code.isdigit() else 125)
    return state.read(rec["id"])

