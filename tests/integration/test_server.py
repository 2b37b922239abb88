"""`minicontainer serve` (server.py) as a user meets it: the same commands, the same output and exit
codes, faster; and nothing left when it stops. Each test starts and stops its own server (the leak
check runs per test, and a server keeps a spare container parked)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.test_runtime_cli import PY, ROOT, _nothing_left, mc


def _served(env) -> int:
    """How many commands the running server has run (`serve --status`)."""
    out = mc(env, "serve", "--status", check=0).stdout
    assert "served=" in out, out
    return int(out.rsplit("served=", 1)[1].split()[0])


def _wait(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def _nothing_left_but_spares(env):
    """Mid-test: no record, and no writable layer but the server's spare (its marker file)."""
    state = Path(env["MINICONTAINER_STATE_ROOT"])
    assert [d.name for d in state.iterdir() if len(d.name) == 64] == []
    layers = Path(env["MINICONTAINER_DATA_ROOT"], "containers")
    assert _wait(lambda: all((d / "spare").exists() for d in layers.iterdir())), list(layers.iterdir())


@pytest.fixture
def served(tmp_path):
    env = dict(os.environ, MINICONTAINER_STATE_ROOT=str(tmp_path / "state"),
               MINICONTAINER_DATA_ROOT=str(tmp_path / "data"))
    env.pop("MINICONTAINER_NO_SERVER", None)
    p = mc(env, "serve", "-d", check=0)
    assert "listening on" in p.stdout
    sock = Path(env["MINICONTAINER_STATE_ROOT"], "server.sock")
    assert sock.is_socket()
    yield env
    out = mc(env, "serve", "--stop", check=0).stdout
    assert "stopped the server" in out or "no server" in out
    assert not sock.exists()
    _nothing_left(env)          # the spare's layer and record-less files are gone too


def test_same_output_and_exit_codes_through_the_server(served):
    n = _served(served)
    p = mc(served, "run", "--rm", "--network", "none", "--hostname", "srv-h", "-e", "A=1",
           "busybox", "sh", "-c", "echo $A $(hostname) $$; exit 3")
    assert (p.returncode, p.stdout) == (3, "1 srv-h 1\n")
    p = mc(served, "run", "--rm", "--network", "none", "busybox", "nope")
    assert p.returncode == 127 and p.stderr.strip() == "minicontainer: exec nope: executable file not found in $PATH"
    p = mc(served, "run", "--rm", "--memory", "lots", "busybox", "true")
    assert p.returncode == 125 and len(p.stderr.strip().splitlines()) == 1 and "--memory" in p.stderr
    p = mc(served, "run", "--rm", "--network", "none", "busybox", "sh", "-c", "sh -c 'kill -9 $$'; exit $?")
    assert p.returncode == 137
    assert mc(served, "run", "--help").stdout.startswith("usage: minicontainer run")
    # a run the spare does not fit (the host's network): the spare is discarded, the run made anew
    p = mc(served, "run", "--rm", "--network", "host", "busybox", "sh", "-c", "ls /sys/class/net | grep -c .")
    assert p.returncode == 0 and int(p.stdout) == len(os.listdir("/sys/class/net"))
    assert _served(served) == n + 6            # all six went through the server
    _nothing_left_but_spares(served)


def test_the_installed_command_is_served(served):
    """What a user types: the launcher `make setup` installs (`python -S`, client.py) sends the
    command to the server — same output and exit codes — and runs it in-process when asked to."""
    cmd, python = ROOT / ".venv" / "bin" / "minicontainer", ROOT / ".venv" / "bin" / "python"
    if any(c.isspace() for c in str(python)):     # no #! line can name it: make setup keeps pip's script
        assert cmd.read_text().startswith("#!/bin/sh\n")
    else:
        assert cmd.read_text().startswith(f"#!{python} -S\n"), "make setup installs it"
    n = _served(served)
    run = [str(cmd), "run", "--rm", "--network", "none", "busybox"]
    p = subprocess.run([*run, "sh", "-c", "echo out; echo err >&2; exit 5"], env=served,
                       capture_output=True, text=True, timeout=30)
    assert (p.returncode, p.stdout, p.stderr) == (5, "out\n", "err\n")
    p = subprocess.run([*run, "sh", "-c", "sh -c 'kill -9 $$'; exit $?"], env=served, capture_output=True, timeout=30)
    assert p.returncode == 137
    p = subprocess.run([*run[:-1], "no-such-image"], env=served, capture_output=True, text=True, timeout=30)
    assert p.returncode == 125 and p.stderr.startswith("minicontainer: image 'no-such-image' not found")
    assert _served(served) == n + 3
    p = subprocess.run([str(cmd), "ps", "-a"], env={**served, "MINICONTAINER_NO_SERVER": "1"},
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout.startswith("CONTAINER ID")
    assert _served(served) == n + 3            # that one ran in-process
    _nothing_left_but_spares(served)


def test_stdin_and_the_spare_container(served):
    """A foreground run takes the spare: its container was made before the request (its cgroup is
    not named after the id); it still gets the request's stdin, limits, root and volume."""
    vol = Path(served["MINICONTAINER_DATA_ROOT"]).parent / "vol"
    vol.mkdir()
    (vol / "f").write_text("from the host\n")
    p = subprocess.Popen([PY, "-m", "minicontainer.cli", "run", "--rm", "--name", "spare1", "-i",
                          "--network", "none", "--memory", "32m", "--read-only", "-v", f"{vol}:/mnt:ro",
                          "busybox", "sh", "-c", "cat; cat /mnt/f; touch /x 2>&1; sleep 1"],
                         env=served, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    p.stdin.write("from stdin\n")
    p.stdin.close()
    assert _wait(lambda: mc(served, "inspect", "spare1").returncode == 0)
    rec = json.loads(mc(served, "inspect", "spare1", check=0).stdout)
    assert rec["cgroup"] != "mc-" + rec["id"][:16]          # the spare's group, made in advance
    assert rec["config"]["memory"] == 32 << 20                 # parsed once, at the edge: bytes
    out = p.stdout.read()
    assert p.wait(timeout=20) == 0
    assert out.splitlines() == ["from stdin", "from the host", "touch: /x: Read-only file system"]
    _nothing_left_but_spares(served)


def test_detached_exec_logs_rm_through_the_server(served):
    cid = mc(served, "run", "-d", "--name", "srvd", "--network", "none", "busybox", "sh", "-c",
             "echo up; sleep 30", check=0).stdout.strip()
    assert len(cid) == 64
    assert mc(served, "exec", "srvd", "hostname", check=0).stdout.strip() == cid[:12]
    assert _wait(lambda: mc(served, "logs", "srvd").stdout == "up\n")
    assert "srvd" in mc(served, "ps", check=0).stdout
    mc(served, "rm", "-f", "srvd", check=0)
    _nothing_left_but_spares(served)


def test_ctrl_c_is_forwarded_and_cleans_up(served):
    p = subprocess.Popen([PY, "-m", "minicontainer.cli", "run", "--rm", "--name", "srvint", "--network", "none",
                          "busybox", "sleep", "30"], env=served, cwd=ROOT)
    assert _wait(lambda: "srvint" in mc(served, "ps").stdout)
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=10) == 130
    assert "srvint" not in mc(served, "ps", "-a").stdout
    _nothing_left_but_spares(served)


def test_command_killed_takes_its_container_and_gc_cleans(served):
    """As without a server: the runtime dies (here: its command), the container follows (parent-death
    signal), and `gc` removes what is left."""
    p = subprocess.Popen([PY, "-m", "minicontainer.cli", "run", "--rm", "--name", "srvkill", "--network", "none",
                          "busybox", "sleep", "30"], env=served, cwd=ROOT)
    assert _wait(lambda: "srvkill" in mc(served, "ps").stdout)
    pid = json.loads(mc(served, "inspect", "srvkill", check=0).stdout)["pid"]
    p.send_signal(signal.SIGKILL)
    assert p.wait(timeout=10) == -signal.SIGKILL
    assert _wait(lambda: not Path(f"/proc/{pid}").exists())
    assert _wait(lambda: "srvkill" not in mc(served, "ps").stdout)
    out = mc(served, "gc", check=0).stdout
    assert "nothing to remove" not in out
    assert "srvkill" not in mc(served, "ps", "-a").stdout


def test_other_settings_run_in_process(served):
    """MINICONTAINER_* settings read at import time (here the MTU) must not be served by a server
    started with others: the command runs itself."""
    n = _served(served)
    env = dict(served, MINICONTAINER_MTU="1500")
    assert mc(env, "run", "--rm", "--network", "none", "busybox", "true").returncode == 0
    assert _served(served) == n


def test_changed_package_stops_the_server(served):
    """The server runs the code it imported; when the package changes on disk it must not serve
    stale code: the command runs itself, and the server exits."""
    f = ROOT / "minicontainer" / "paths.py"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    try:
        assert mc(served, "run", "--rm", "--network", "none", "busybox", "true").returncode == 0
    finally:
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    sock = Path(served["MINICONTAINER_STATE_ROOT"], "server.sock")
    assert _wait(lambda: not sock.exists())
    assert "no server is running" in mc(served, "serve", "--status", check=0).stdout


def test_one_server_per_state_root(served):
    p = mc(served, "serve", "-d")
    assert p.returncode == 125 and "already listens" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_killed_server_gc_removes_its_socket(served):
    pid = int(mc(served, "serve", "--status", check=0).stdout.split("pid=")[1].split()[0])
    os.kill(pid, signal.SIGKILL)                  # our own server, started by the fixture
    assert _wait(lambda: not Path(f"/proc/{pid}").exists())
    sock = Path(served["MINICONTAINER_STATE_ROOT"], "server.sock")
    assert sock.exists()
    # commands still work (in-process), and gc removes the dead server's socket
    assert mc(served, "run", "--rm", "--network", "none", "busybox", "true").returncode == 0
    # the spare noticed its server died, discarded its container and exited
    assert _wait(lambda: not any(Path(served["MINICONTAINER_DATA_ROOT"], "containers").iterdir()))
    assert "server socket" in mc(served, "gc", check=0).stdout
    assert not sock.exists()


def test_idle_server_stops_by_itself(tmp_path):
    env = dict(os.environ, MINICONTAINER_STATE_ROOT=str(tmp_path / "state"),
               MINICONTAINER_DATA_ROOT=str(tmp_path / "data"))
    env.pop("MINICONTAINER_NO_SERVER", None)
    mc(env, "serve", "-d", "--idle", "1", check=0)
    assert mc(env, "run", "--rm", "--network", "none", "busybox", "true").returncode == 0
    sock = Path(env["MINICONTAINER_STATE_ROOT"], "server.sock")
    assert _wait(lambda: not sock.exists(), timeout=15)
    # its spare went with it: no layer, no cgroup (the leak check), no record
    assert _wait(lambda: not any(Path(env["MINICONTAINER_DATA_ROOT"], "containers").iterdir()))
    _nothing_left(env)


def test_the_worker_takes_the_commands_environment(tmp_path):
    """A worker is a fork of the server, which has the environment `serve` had; it must run with
    the command's instead: variables the command set, and none the command lacks (here
    MINICONTAINER_DEBUG, read per call: a traceback instead of the one-line error)."""
    env = dict(os.environ, MINICONTAINER_STATE_ROOT=str(tmp_path / "state"),
               MINICONTAINER_DATA_ROOT=str(tmp_path / "data"))
    env.pop("MINICONTAINER_NO_SERVER", None)
    env.pop("MINICONTAINER_DEBUG", None)
    mc(dict(env, MINICONTAINER_DEBUG="1"), "serve", "-d", check=0)
    try:
        n = _served(env)
        p = mc(env, "run", "--rm", "--network", "none", "no-such-image")
        assert p.returncode == 125 and len(p.stderr.splitlines()) == 1, p.stderr
        p = mc(dict(env, MINICONTAINER_DEBUG="1"), "run", "--rm", "--network", "none", "no-such-image")
        assert "Traceback" in p.stderr and "NotFoundError" in p.stderr
        assert _served(env) == n + 2
    finally:
        mc(env, "serve", "--stop", check=0)
    _nothing_left(env)
