"""The verbs after ``create``: ``start``, ``state``, ``kill``, ``delete``, ``pause``, ``resume``, ``ps``.

Each loads the record, computes the status (state.py: pid + start time, exec.fifo, the freezer)
and refuses what that status does not allow, in runc's words — containerd and conmon match some of
them ("does not exist", "container not running", "no such process", "process already finished").
"""
from __future__ import annotations

import os
import select
import _signal as signal      # the constants; `signal` itself imports enum (~3 ms a verb)
import time

from .. import fastjson
from ..errors import ConfigError, ContainerError, MiniContainerError
from .state import destroy, status

_START_TIMEOUT = 30.0


def parse_signal(text: str) -> int:
    """"TERM", "SIGTERM", "15", "sigkill" → the number; anything else → runc's 'unknown signal'."""
    from ..signals import number
    n = number(text)
    if n is None:
        raise ConfigError(f'unknown signal "{text}"', hint="use a name such as TERM or KILL, or a number")
    return n


def start(root: str, cid: str) -> None:
    """Open exec.fifo for reading: the container's init, blocked opening it for writing, goes on and
    writes one byte; then the FIFO goes (status becomes running) and the poststart hooks run."""
    st, cg, s = status(root, cid)
    if s == "stopped":
        raise ContainerError("cannot start a container that has stopped")
    if s in ("running", "paused"):
        raise ContainerError("cannot start an already running container")
    if s == "creating":
        raise ContainerError("cannot start a container that is still being created")
    try:
        fd = os.open(st.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ContainerError("cannot start an already running container") from None
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    data = os.read(fd, 1)
                except BlockingIOError:
                    data = None
                if data:
                    break
                if data == b"":
                    if not st.alive():
                        raise ContainerError("container process is already dead")
                    time.sleep(0.005)       # EOF before any writer came: keep waiting
            if not st.alive():
                raise ContainerError("container process is already dead")
            if time.monotonic() > deadline:
                raise ContainerError("start: the container did not take the start signal "
                                     f"within {_START_TIMEOUT:.0f} s")
    finally:
        os.close(fd)
    try:
        os.unlink(st.fifo)
    except FileNotFoundError:
        pass
    hooks = st.data.get("hooks", {}).get("poststart")
    if hooks:
        from . import hooks as hookmod
        from .spec import Hook
        for w in hookmod.run("poststart", [Hook(h["path"], tuple(h["args"]), tuple(h["env"]), h["timeout"])
                                           for h in hooks], st.oci("running"), check=False):
            warn(w)


def warn(msg: str) -> None:
    from .log import log
    log("warning", msg)


def state(root: str, cid: str) -> dict:
    st, cg, s = status(root, cid)
    return st.oci(s)


def kill(root: str, cid: str, sig: str = "SIGTERM", all_: bool = False) -> None:
    signum = parse_signal(sig)
    st, cg, s = status(root, cid)
    if s in ("stopped", "creating"):
        raise ContainerError("container not running")
    if all_ and cg is not None and cg.exists():
        if signum == signal.SIGKILL and st.data.get("cgroup_owned", True):
            cg.kill()
            return
        for pid in cg.procs():
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
    else:
        try:
            os.kill(st.pid, signum)
        except ProcessLookupError:
            raise ContainerError("no such process") from None
    if s == "paused" and signum == signal.SIGKILL and cg is not None:
        cg.thaw()                             # a frozen task dies only once thawed


def delete(root: str, cid: str, force: bool = False) -> None:
    st, cg, s = status(root, cid)
    if s in ("running", "paused") and not force:
        raise ContainerError(f"cannot delete container {cid} that is not stopped: {s}",
                             hint="stop it first (kill), or use delete --force")
    if s == "creating" and not force:
        raise ContainerError(f"cannot delete container {cid} that is being created",
                             hint="use delete --force")
    if s == "paused" and cg is not None:
        try:
            cg.thaw()
        except MiniContainerError:
            pass
    destroy(st)
    hooks = st.data.get("hooks", {}).get("poststop")
    if hooks:
        from . import hooks as hookmod
        from .spec import Hook
        for w in hookmod.run("poststop", [Hook(h["path"], tuple(h["args"]), tuple(h["env"]), h["timeout"])
                                          for h in hooks], st.oci("stopped"), check=False):
            warn(w)


def pause(root: str, cid: str) -> None:
    st, cg, s = status(root, cid)
    if s != "running":
        raise ContainerError("container not running")
    cg.freeze()


def resume(root: str, cid: str) -> None:
    st, cg, s = status(root, cid)
    if s != "paused":
        raise ContainerError("container not paused")
    cg.thaw()


def ps(root: str, cid: str, fmt: str = "table") -> str:
    st, cg, s = status(root, cid)
    if s == "stopped":
        pids = []
    else:
        pids = cg.procs() if cg is not None and cg.exists() else [st.pid]
    if fmt == "json":
        return fastjson.dumps(pids)
    if fmt != "table":
        raise ConfigError(f"invalid format option {fmt!r}", hint="json or table")
    lines = ["PID    CMD"]
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            cmd = "?"
        lines.append(f"{pid:<6} {cmd}")
    return "\n".join(lines)
