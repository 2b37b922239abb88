"""`minicontainer serve`'s request format and routing decisions (no root, no server)."""

import os

import pytest

from minicontainer import server


def test_request_round_trip():
    env = {"PATH": "/bin", "MINICONTAINER_STATE_ROOT": "/tmp/x", "EMPTY": "", "EQ": "a=b"}
    req = server._request(b"run", ["run", "--rm", "busybox", "sh", "-c", "echo 'a b' ü"], env)
    assert req[:3] == b"MC1" and int.from_bytes(req[3:7], "big") == len(req) - 7
    kind, cwd, umask, argv, got = server._parse(req[7:])
    mine = os.umask(0o022)
    os.umask(mine)
    assert kind == b"run" and cwd == os.getcwd() and umask == mine
    assert argv == ["run", "--rm", "busybox", "sh", "-c", "echo 'a b' ü"]
    assert got == env


def test_nul_in_an_argument_is_refused():
    with pytest.raises(ValueError):
        server._request(b"run", ["run", "busybox", "echo", "a\0b"], {})


@pytest.mark.parametrize("argv,tty", [
    (["run", "-it", "busybox", "sh"], True),
    (["run", "-t", "busybox"], True),
    (["exec", "--tty", "c", "sh"], True),
    (["run", "--rm", "busybox", "true"], False),
    (["run", "-e", "A=1", "busybox", "true"], False),
    (["ps", "-a"], False),
])
def test_terminal_requests_stay_in_process(argv, tty):
    assert server.wants_terminal(argv) is tty


@pytest.mark.parametrize("argv,fg", [
    (["run", "--rm", "busybox", "true"], True),
    (["run", "-d", "busybox", "sleep", "9"], False),
    (["run", "--detach", "busybox"], False),
    (["run", "-di", "busybox"], False),
    (["run", "--name", "-d", "busybox"], True),          # -d is the name here
    (["run", "-e", "dd=1", "busybox", "true"], True),     # the value, not a flag
    (["run", "-edd=1", "busybox", "true"], True),
    (["run", "busybox", "sleep", "-d"], True),            # the command's own flag
    (["create", "busybox"], False),
    (["ps"], False),
])
def test_which_requests_the_spare_serves(argv, fg):
    assert server._foreground_run(argv) is fg


def test_settings_compare_only_what_is_read_once():
    a = {"MINICONTAINER_MTU": "1500", "MINICONTAINER_DEBUG": "1", "HOME": "/root"}
    b = {"MINICONTAINER_MTU": "1500", "HOME": "/home/x"}
    assert server._settings(a) == server._settings(b)
    assert server._settings(a) != server._settings({"MINICONTAINER_MTU": "9000"})


def test_no_server_means_run_here(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICONTAINER_STATE_ROOT", str(tmp_path))
    assert server.forward(["ps"]) is None


def test_the_first_answer_counts():
    """The worker answers, and the server answers again after reaping it: both lines may arrive in
    one read. The command exits with the first, and acknowledges."""
    import socket
    a, b = socket.socketpair()
    try:
        b.sendall(b"W%d\nW%d\n" % (3 << 8, 3 << 8))
        assert server._converse(a, server._request(b"run", ["ps"], {})) == 3
        b.settimeout(5)
        got = b""
        while not got.endswith(b"A\n"):
            got += b.recv(65536)
        assert got.startswith(b"MC1")
    finally:
        a.close()
        b.close()


def test_fallback_answer_means_run_here():
    import socket
    a, b = socket.socketpair()
    try:
        b.sendall(b"Fsettings differ\n")
        assert server._converse(a, server._request(b"run", ["ps"], {})) is None
    finally:
        a.close()
        b.close()
