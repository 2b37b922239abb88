import os
import socket

import pytest

from minicontainer import namespaces, syscalls
from minicontainer.errors import MiniContainerError, NotFoundError


def _child_in(flags, setup):
    """Fork a child that unshares ``flags``, runs ``setup``, signals ready, then waits for EOF."""
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r1); os.close(w2)
            syscalls.unshare(flags)
            setup()
            os.write(w1, b"x")
            os.read(r2, 1)
            code = 0
        finally:
            os._exit(code)
    os.close(w1); os.close(r2)
    assert os.read(r1, 1) == b"x"
    os.close(r1)
    return pid, w2


def _finish(pid, w):
    os.close(w)
    os.waitpid(pid, 0)


def test_join_uts_sees_child_hostname():
    pid, w = _child_in(syscalls.CLONE_NEWUTS, lambda: syscalls.sethostname("mcns-join"))
    try:
        r, wr = os.pipe()
        j = os.fork()
        if j == 0:
            try:
                namespaces.enter(pid, ["uts"])
                os.write(wr, socket.gethostname().encode())
            finally:
                os._exit(0)
        os.close(wr)
        os.waitpid(j, 0)
        assert os.read(r, 100) == b"mcns-join"
        os.close(r)
        assert socket.gethostname() != "mcns-join"
    finally:
        _finish(pid, w)


def test_uid_map_refused_is_clear_error():
    pid, w = _child_in(syscalls.CLONE_NEWUSER, lambda: None)
    try:
        with pytest.raises(MiniContainerError, match="uid_map"):
            namespaces.write_id_maps(pid, "0 100000 1\n0 200000 1", "0 100000 1")
    finally:
        _finish(pid, w)


def test_enter_dead_pid():
    with pytest.raises(NotFoundError, match="no process"):
        namespaces.enter(2**22 + 7, ["uts"])
