"""File descriptors passed between processes over a Unix socket (SCM_RIGHTS). Notebook 06.

The kernel lets a process hand another an *open file* — not a path, the open file itself — as
ancillary data of ``sendmsg``: the receiver gets a new fd number for the same open file description.
runc hands the container's pty master to its caller the same way (the console socket). We use it
twice: a ``minicontainer`` command gives the server its stdin/stdout/stderr (server.py), and the
runtime gives a container that was forked before the request its stdio (runtime/parked.py: Parked).

Kept import-light (only modules built into the interpreter: ``posix``, ``_socket``): the command
imports it on its way to the server (client.py).
"""

import posix
import sys

_INT = 4      # an fd travels as a C int


def send(sock, data: bytes, fds) -> None:
    """Send ``data`` (non-empty) with ``fds`` attached, in one ``sendmsg``."""
    import _socket
    anc = b"".join(int(fd).to_bytes(_INT, sys.byteorder) for fd in fds)
    sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, anc)])


def recv(sock, bufsize: int, maxfds: int) -> tuple[bytes, list[int]]:
    """One ``recvmsg``: its data (b"" at EOF) and the fds that came with it (new numbers, ours)."""
    import _socket
    data, anc, _flags, _addr = sock.recvmsg(bufsize, _socket.CMSG_SPACE(maxfds * _INT))
    fds = [int.from_bytes(payload[i:i + _INT], sys.byteorder)
           for level, kind, payload in anc
           if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS
           for i in range(0, len(payload) - _INT + 1, _INT)]
    return data, fds


def stdio(given=(None, None, None)) -> list[int]:
    """fds 0, 1, 2 to pass on: the given ones, else ours; /dev/null for one that is closed
    (`minicontainer run … <&-`: a closed fd cannot be sent)."""
    out = []
    for i, fd in enumerate(given):
        fd = i if fd is None else fd
        try:
            posix.fstat(fd)
        except OSError:
            fd = posix.open("/dev/null", posix.O_RDWR | posix.O_CLOEXEC)
        out.append(fd)
    return out
