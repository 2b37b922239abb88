"""Solutions to notebook 01's exercises. Each block is self-contained (its own imports)."""

# %% Exercise 01.1
import os
import socket

from minicontainer import syscalls


def hostname_of(pid: int) -> str:
    """The hostname process ``pid`` sees. The checker calls this in a forked child, so joining
    the process's UTS namespace here moves only that child, never the notebook."""
    fd = os.open(f"/proc/{pid}/ns/uts", os.O_RDONLY)
    try:
        syscalls.setns(fd, syscalls.CLONE_NEWUTS)
    finally:
        os.close(fd)
    return socket.gethostname()


# %% Exercise 01.2
from pathlib import Path


def pid_inside(pid: int) -> int:
    """The pid of process ``pid`` inside its own (innermost) PID namespace."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    raise RuntimeError("no NSpid line: kernel older than 4.1")


# %% Exercise 01.3
from pathlib import Path


def uid_outside(pid: int, uid: int) -> int | None:
    """The host uid that ``uid`` inside process ``pid``'s user namespace maps to, or None."""
    for line in Path(f"/proc/{pid}/uid_map").read_text().splitlines():
        inside, outside, count = map(int, line.split())
        if inside <= uid < inside + count:
            return outside + (uid - inside)
    return None


# %% Exercise 01.4
import os
import signal

from minicontainer import syscalls


def isolated_child(hostname: str) -> int:
    """Leave a process running as PID 1 of new UTS, PID and mount namespaces, with its own
    hostname and its own /proc; return its pid."""
    syscalls.unshare(syscalls.CLONE_NEWUTS | syscalls.CLONE_NEWPID | syscalls.CLONE_NEWNS)
    # a copy of the host's mounts: cut it from the host's peer groups before mounting anything
    syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
    syscalls.sethostname(hostname)
    ready_r, ready_w = os.pipe()
    pid = os.fork()                   # the new PID namespace applies to this child: it is PID 1
    if pid == 0:
        try:
            os.close(ready_r)
            syscalls.mount("proc", "/proc", "proc",
                           syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC)
            os.write(ready_w, b"r")
            while True:
                signal.pause()
        finally:
            os._exit(0)
    os.close(ready_w)
    os.read(ready_r, 1)               # return only once /proc is mounted
    os.close(ready_r)
    return pid
