"""A server connection from ``accept`` until its request is complete (issue 17 items 3 and 5).

**Who is calling, and could it have done this itself?** Only root can reach the socket (0600 in a
0700 state root), but "uid 0" is not "as powerful as the server": a root shell under ``setpriv
--bounding-set=-all`` has no capabilities, a root process under ``chroot`` sees another ``/``, one
under ``unshare -m`` another mount table. Run by the server, their ``run -v /:/host`` would read
the server's ``/`` with the server's capabilities — more than the caller could do itself, and not
what the same command does without a server. So a request is served only when the caller is, as
far as the kernel can tell, the server's twin: the same credentials (``Uid``, ``Gid``, every
capability set, ``NoNewPrivs``, ``Seccomp`` of ``/proc/<pid>/status``), the same LSM label
(``attr/current``), the same namespaces (``/proc/<pid>/ns/*``: mnt, user, pid, net, ipc, uts,
cgroup, time) and the same root directory (``/proc/<pid>/root``). Any other caller is answered
``F`` and runs the command in its own process (client.py), with its own powers and view: the
output and exit code are then exactly those of a command without a server. Rejected: serving a
caller whose capabilities are a superset of what the request needs (working out what a request
needs is the whole runtime over again, and a miss is a privilege escalation; a refusal only costs
the server's speed); comparing supplementary groups (root's differ between shells and change
nothing the runtime does as root).

**Which process?** ``SO_PEERCRED`` names the pid that connected, but a pid is only a number: the
caller may exit and the number go to another process before the server reads ``/proc/<pid>``.
``SO_PEERPIDFD`` (Linux 6.5) gives a pidfd for the very process that connected; the server opens
``/proc/<pid>`` and *then* checks through the pidfd that this process is still alive — a pid is
not reused while its process lives, so the directory is that process's, and reads through it fail
(ESRCH) rather than move to another process later. Kernels without ``SO_PEERPIDFD`` get
``pidfd_open`` of the ``SO_PEERCRED`` pid right after ``accept``: there a caller that exits in
the microseconds before it, and whose pid is reused by then, is judged by the reuser — a window
the newer kernel closes.

**Slow or huge requests.** The request is read without blocking, as its bytes come, from the
server's event loop: a client that announces 1 GiB and sends a byte every 4 s holds only its own
buffer, never the loop (``ps`` behind it took 15.6 s). A request over :data:`MAX_REQUEST` is
refused at its header, one not complete after :data:`REQUEST_TIMEOUT` seconds is dropped, and at
most :data:`MAX_PENDING` may be incomplete at once. Rejected: a thread per connection (the
server forks its workers; forking a process with other threads running copies their held locks)
and a forked reader per connection (the spare worker takes a request from the server: a reader
in between would add a hop to the fastest path).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import time

from .commands import MAGIC

#: the largest request served: argv and environment of an exec are at most ARG_MAX (2 MiB by default)
MAX_REQUEST = 8 << 20
#: seconds from accept to the last byte of the request
REQUEST_TIMEOUT = 10.0
#: incomplete requests held at once (more: "busy", answered at once)
MAX_PENDING = 64
SO_PEERPIDFD = getattr(socket, "SO_PEERPIDFD", 77)
_STATUS = (b"Uid:", b"Gid:", b"CapInh:", b"CapPrm:", b"CapEff:", b"CapBnd:", b"CapAmb:",
           b"NoNewPrivs:", b"Seccomp:")
_NS = ("mnt", "user", "pid", "net", "ipc", "uts", "cgroup", "time")


class Refused(Exception):
    """The request cannot be read (the message goes to the client as ``E…``)."""


# --- who -----------------------------------------------------------------------------------------

def _facts(dfd: int) -> dict:
    """What decides whether a process could run a command as the server would, read through its
    /proc directory (``dfd``)."""
    fd = os.open("status", os.O_RDONLY | os.O_CLOEXEC, dir_fd=dfd)
    try:
        status = os.read(fd, 1 << 16)
    finally:
        os.close(fd)
    facts = {line.split(b":")[0].decode(): line.split(None, 1)[1:]
             for line in status.splitlines() if line.startswith(_STATUS)}
    for ns in _NS:
        try:
            facts[ns] = os.readlink(f"ns/{ns}", dir_fd=dfd)
        except FileNotFoundError:          # a namespace type this kernel does not have
            facts[ns] = None
    st = os.stat("root", dir_fd=dfd)
    facts["root"] = (st.st_dev, st.st_ino)
    try:
        fd = os.open("attr/current", os.O_RDONLY | os.O_CLOEXEC, dir_fd=dfd)
        try:
            facts["lsm"] = os.read(fd, 4096)
        finally:
            os.close(fd)
    except OSError:                        # no LSM: EINVAL
        facts["lsm"] = None
    return facts


def server_facts() -> dict:
    dfd = os.open("/proc/self", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _facts(dfd)
    finally:
        os.close(dfd)


def _pidfd(sock) -> tuple[int, int]:
    """(pidfd, pid) of the process that connected ``sock``. Both name the same process, the one
    that called connect(); the pid is only trusted while the pidfd says that process lives."""
    pid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
    try:
        fd = struct.unpack("i", sock.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD, 4))[0]
    except OSError as exc:
        if exc.errno not in (errno.ENOPROTOOPT, errno.EINVAL, errno.EOPNOTSUPP):
            raise
        fd = os.pidfd_open(pid)                 # older kernels: see the module docstring
    return fd, pid


def differs(sock, mine: dict) -> str | None:
    """Why the peer of ``sock`` may not be served (None: it is the server's twin)."""
    import signal
    try:
        pidfd, pid = _pidfd(sock)
    except OSError as exc:
        return f"cannot identify the caller ({exc})"
    try:
        if pid <= 0:
            return "the caller's PID is not visible here (another PID namespace)"
        dfd = os.open(f"/proc/{pid}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            signal.pidfd_send_signal(pidfd, 0)       # still alive: /proc/<pid> is the caller's
            theirs = _facts(dfd)
        finally:
            os.close(dfd)
    except OSError as exc:
        return f"cannot read the caller's /proc/{pid} ({exc.strerror})"
    finally:
        os.close(pidfd)
    for k, v in mine.items():
        if theirs.get(k) != v:
            return f"the caller's {k} differs from the server's"
    return None


# --- what ----------------------------------------------------------------------------------------

class Pending:
    """An accepted connection whose request is still arriving."""

    def __init__(self, sock, why_not: str | None):
        self.sock = sock
        self.why_not = why_not           # the peer check's verdict (None: served)
        self.deadline = time.monotonic() + REQUEST_TIMEOUT
        self.data = bytearray()
        self.fds: list[int] = []
        self.need: int | None = None
        sock.setblocking(False)

    def read(self) -> bytes | None:
        """Take what has arrived; the request's body once complete, else None. Refused: a bad or
        oversized request, or the client hung up."""
        from . import fdpass
        while self.need is None or len(self.data) < self.need:
            want = 65536 if self.need is None else min(65536, self.need - len(self.data))
            try:
                msg, got = fdpass.recv(self.sock, want, 3)
            except (BlockingIOError, InterruptedError):
                return None
            self.fds += got
            if not msg:
                raise Refused("the command hung up mid-request")
            self.data += msg
            if self.need is None and len(self.data) >= 7:
                if self.data[:3] != MAGIC:
                    raise Refused("not a minicontainer request")
                size = int.from_bytes(self.data[3:7], "big")
                if size > MAX_REQUEST:
                    raise Refused(f"request of {size} bytes is over the server's limit of {MAX_REQUEST} "
                                  "(arguments and environment)")
                self.need = 7 + size
        return bytes(self.data[7:self.need])

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        self.sock.close()


def say(sock, line: bytes) -> None:
    """One short answer line, never blocking the server (a client that does not read loses it)."""
    try:
        sock.send(line, socket.MSG_DONTWAIT)
    except OSError:
        pass

