"""`minicontainer serve`'s request format and routing decisions (no root, no server)."""

import os

import pytest

from minicontainer import client, commands, server


def test_request_round_trip():
    env = {"PATH": "/bin", "MINICONTAINER_STATE_ROOT": "/tmp/x", "EMPTY": "", "EQ": "a=b"}
    req = client.request(b"run", ["run", "--rm", "busybox", "sh", "-c", "echo 'a b' ü"], env)
    assert req[:3] == b"MC1" and int.from_bytes(req[3:7], "big") == len(req) - 7
    kind, cwd, umask, argv, got = commands.parse_request(req[7:])
    mine = os.umask(0o022)
    os.umask(mine)
    assert kind == b"run" and cwd == os.getcwd() and umask == mine
    assert argv == ["run", "--rm", "busybox", "sh", "-c", "echo 'a b' ü"]
    assert got == env


def test_nul_in_an_argument_is_refused():
    with pytest.raises(ValueError):
        client.request(b"run", ["run", "busybox", "echo", "a\0b"], {})


@pytest.mark.parametrize("argv,tty", [
    (["run", "-it", "busybox", "sh"], True),
    (["run", "-t", "busybox"], True),
    (["exec", "--tty", "c", "sh"], True),
    (["run", "--rm", "busybox", "true"], False),
    (["run", "-e", "A=1", "busybox", "true"], False),
    (["ps", "-a"], False),
])
def test_terminal_requests_stay_in_process(argv, tty):
    assert client.wants_terminal(argv) is tty


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


def test_no_server_means_run_here(tmp_path):
    env = {"MINICONTAINER_STATE_ROOT": str(tmp_path)}
    assert client.served(["ps"], env) is None


def test_the_first_answer_counts():
    """The worker answers, and the server answers again after reaping it: both lines may arrive in
    one read. The command exits with the first, and acknowledges."""
    import socket
    a, b = socket.socketpair()
    try:
        b.sendall(b"W%d\nW%d\n" % (3 << 8, 3 << 8))
        assert client.converse(a, client.request(b"run", ["ps"], {})) == 3
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
        assert client.converse(a, client.request(b"run", ["ps"], {})) is None
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("argv,env", [
    ([], {}),
    (["--version"], {}),
    (["serve", "--status"], {}),
    (["ps"], {"MINICONTAINER_NO_SERVER": "1"}),
    (["run", "-it", "busybox", "sh"], {}),
])
def test_what_never_goes_to_a_server(argv, env, tmp_path, monkeypatch):
    """Even with something listening on the socket, these run in-process: served() must not
    connect (the listener would see a connection)."""
    import socket
    path = tmp_path / "server.sock"
    lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lst.bind(str(path))
    lst.listen(1)
    lst.setblocking(False)
    monkeypatch.setattr(client.posix, "geteuid", lambda: 0)
    try:
        assert client.served(argv, {**env, "MINICONTAINER_STATE_ROOT": str(tmp_path)}) is None
        with pytest.raises(BlockingIOError):
            lst.accept()
    finally:
        lst.close()


def test_the_command_imports_only_what_is_built_in():
    """The served path's modules: nothing whose import costs (os, socket, signal, enum…)."""
    import subprocess
    import sys
    from pathlib import Path
    code = ("import sys; before = set(sys.modules); sys.path.insert(0, sys.argv[1]); "
            "import minicontainer.client, minicontainer.fdpass, _socket, _signal; "
            "print(' '.join(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-S", "-c", code, str(Path(__file__).resolve().parents[2])],
                         capture_output=True, text=True, check=True).stdout.split()
    assert sorted(out) == ["_socket", "minicontainer", "minicontainer.client", "minicontainer.commands",
                           "minicontainer.fdpass"]


def test_the_launcher(tmp_path):
    """`python -m minicontainer.client install` writes a `python -S` script that runs the command
    (here without a server: in-process, so it must load `site` itself to find argparse's caller)."""
    import subprocess
    import sys
    target = tmp_path / "minicontainer"
    said = client.install(str(target))
    if any(c.isspace() for c in sys.executable):     # a checkout in a path with a blank: pip's script stays
        assert said.startswith("kept pip's") and not target.exists(), said
        return
    assert "wrote" in said
    text = target.read_text()
    assert text.startswith(f"#!{sys.executable} -S\n") and target.stat().st_mode & 0o111
    p = subprocess.run([str(target), "--version"], capture_output=True, text=True)
    assert (p.returncode, p.stdout.strip()) == (0, "minicontainer 0.1.0"), p.stderr
    p = subprocess.run([str(target), "run", "--rm", "no-such-image"], capture_output=True, text=True,
                       env={**os.environ, "MINICONTAINER_STATE_ROOT": str(tmp_path / "s"),
                            "MINICONTAINER_DATA_ROOT": str(tmp_path / "d")})
    assert p.returncode == 125 and p.stderr.count("\n") == 1 and "minicontainer:" in p.stderr, p.stderr


def test_the_server_notices_a_changed_package(tmp_path):
    """inotify on the package's directories: a changed, new or removed .py file (also in a
    subpackage) makes it stale; byte-code caches and other files do not."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.py").write_text("x = 1\n")
    (tmp_path / "__pycache__").mkdir()
    w = server._PackageWatch(str(tmp_path))
    try:
        (tmp_path / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
        (tmp_path / "sub" / "__pycache__").mkdir()
        (tmp_path / "notes.txt").write_text("hi")
        assert not w.stale()
        (tmp_path / "sub" / "a.py").write_text("x = 2\n")
        assert w.stale() and w.stale()          # and it stays so
    finally:
        w.close()
    w = server._PackageWatch(str(tmp_path))
    try:
        os.utime(tmp_path / "sub" / "a.py", ns=(0, 0))
        assert w.stale()
    finally:
        w.close()


@pytest.mark.parametrize("thread", [False, True])
def test_leaving_without_teardown_keeps_what_a_caller_sees(thread):
    """client.leave (a plain `run`'s exit): the code, buffered output, atexit's handlers — and
    with a non-daemon thread still running, the interpreter's own exit, which waits for it."""
    import subprocess
    import sys
    from pathlib import Path
    code = ("import sys, atexit, threading, time; sys.path.insert(0, sys.argv[1])\n"
            "from minicontainer import client\n"
            "atexit.register(lambda: print('bye'))\n"
            "if sys.argv[2] == 'True':\n"
            "    threading.Thread(target=lambda: (time.sleep(0.2), print('thread'))).start()\n"
            "print('hi', end=' ')\n"
            "client.leave(3)\n"
            "sys.exit(4)\n")
    p = subprocess.run([sys.executable, "-S", "-c", code, str(Path(__file__).resolve().parents[2]), str(thread)],
                       capture_output=True, text=True, timeout=30)
    if thread:      # leave returned: sys.exit(4) waited for the thread, then ran the handler
        assert (p.returncode, p.stdout) == (4, "hi thread\nbye\n")
    else:
        assert (p.returncode, p.stdout) == (3, "hi bye\n")
