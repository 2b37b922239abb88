"""A container's set-up child reports every failure in one line, even a bug of ours."""

import os
import socket

from minicontainer.runtime import standard_init


def test_an_unexpected_exception_in_the_setup_child_is_one_line_not_silence():
    r, w = os.pipe()
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            standard_init.child({}, b, w)   # no "names": a KeyError, not a MiniContainerError
        finally:
            os._exit(99)
    os.close(w)
    a.close()
    b.close()
    _, status = os.waitpid(pid, 0)
    out = os.read(r, 4096).decode()
    os.close(r)
    assert os.waitstatus_to_exitcode(status) == 125
    line = out.strip()
    assert "\n" not in line
    assert line.startswith("125 set up the container: KeyError"), line
