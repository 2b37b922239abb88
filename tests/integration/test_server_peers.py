"""`minicontainer serve` against callers that are not its twin, and requests that are not well-formed
(issue 17 items 3–5, beyond the attacks in test_hostile_issue17.py): a chrooted root, a root in
its own mount namespace, a request over the size limit, a flood of idle connections. Each test
asserts what the caller sees and that the server still serves its twin afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.hostile_helpers import MC, PY, ROOT, drop_roots, make_roots, mc


def _served(env) -> int:
    out = mc(env, "serve", "--status", check=0).stdout
    return int(out.rsplit("served=", 1)[1].split()[0])


@pytest.fixture
def served():
    """A server of its own per test (the leak check runs per test; a server keeps a spare parked)."""
    env, base = make_roots()
    env.pop("MINICONTAINER_NO_SERVER")
    assert "listening on" in mc(env, "serve", "-d", check=0).stdout
    try:
        yield env
    finally:
        mc(env, "serve", "--stop", timeout=60)
        drop_roots(env, base)


def test_a_root_in_its_own_mount_namespace_sees_its_own_mounts(served, tmp_path):
    """`unshare -m` then a tmpfs: without a server, `-v` shows the caller's tmpfs; a served run
    would have shown the server's (empty) directory."""
    d = tmp_path / "ns-only"
    d.mkdir()
    script = (f'mount -t tmpfs mc-peer-test "{d}" && echo mine > "{d}/f" && '
              f'exec "$@" run --rm --network none -v "{d}:/x" busybox cat /x/f')
    n = _served(served)
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *MC],
                       env=served, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert (p.returncode, p.stdout) == (0, "mine\n"), p
    assert _served(served) == n               # the run was not served (--status does not count)
    assert not any(line.split()[4] == str(d) for line in Path("/proc/self/mountinfo").read_text().splitlines())


_CHROOTED = """
import os, sys
from minicontainer import client, commands, fdpass
new_root, env = sys.argv[1], dict(os.environ)
os.chroot(new_root)
os.chdir("/")
import _socket
s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
s.connect("/server.sock")              # a hard link to the server's socket: all this root sees
argv = ["run", "--rm", "--network", "none", "-v", "/:/host", "busybox", "cat", sys.argv[2]]
code = client.converse(s, commands.request(b"run", argv, env), "/server.sock")
print("run it yourself" if code is None else f"served: {code}")
"""


def test_a_chrooted_root_is_not_served(served, tmp_path):
    """A root that sees only a directory with the server's socket in it (a hard link) asks for
    `-v /:/host`: the server must not mount its own `/` for it."""
    secret = tmp_path / "host-secret"
    secret.write_text("hostile-secret-peer\n")
    jail = Path(served["MINICONTAINER_STATE_ROOT"]).parent / "jail"
    jail.mkdir()
    try:
        os.link(Path(served["MINICONTAINER_STATE_ROOT"], "server.sock"), jail / "server.sock")
        p = subprocess.run([PY, "-c", _CHROOTED, str(jail), f"/host{secret}"], env=served,
                           capture_output=True, text=True, timeout=30, cwd=ROOT)
    finally:
        (jail / "server.sock").unlink(missing_ok=True)
        jail.rmdir()
    assert "hostile-secret-peer" not in p.stdout, "the server read a host file for a chrooted caller"
    assert p.stdout == "run it yourself\n", p


def test_an_oversized_request_is_refused_at_once(served):
    """A request announcing more than the limit gets one clear line, not a wait; the server goes on."""
    from minicontainer.client import MAGIC
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(Path(served["MINICONTAINER_STATE_ROOT"], "server.sock")))
        s.sendall(MAGIC + (1 << 30).to_bytes(4, "big") + b"x")
        reply = s.recv(512).decode()
    assert reply.startswith("E") and "over the server's limit" in reply, reply
    assert mc(served, "run", "--rm", "--network", "none", "busybox", "echo", "ok", check=0).stdout == "ok\n"


def test_a_client_that_sends_nothing_is_dropped_and_delays_no_one(served):
    """Idle connections (more than the server keeps) neither stall a run nor stay open for ever."""
    from minicontainer.intake import MAX_PENDING, REQUEST_TIMEOUT
    path = str(Path(served["MINICONTAINER_STATE_ROOT"], "server.sock"))
    idle = []
    try:
        for _ in range(MAX_PENDING + 4):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            idle.append(s)
        t0 = time.monotonic()
        p = mc(served, "run", "--rm", "--network", "none", "busybox", "echo", "ok", timeout=15)
        assert (p.returncode, p.stdout) == (0, "ok\n"), p    # served or, while busy, run in-process
        assert time.monotonic() - t0 < REQUEST_TIMEOUT
        idle[0].settimeout(REQUEST_TIMEOUT + 5)
        assert idle[0].recv(512).startswith(b"Ethe request did not arrive")
    finally:
        for s in idle:
            s.close()


def test_a_descriptor_the_caller_left_open_is_no_working_directory(tmp_path):
    """Item 4's door without a server: `exec 7<dir; minicontainer run -w /proc/self/fd/7` must not
    start the container in a host directory (runc's CVE-2024-21626): inherited fds are closed
    before the working directory is resolved."""
    env, base = make_roots()
    d = tmp_path / "host-dir"
    d.mkdir()
    (d / "secret").write_text("hostile-secret-fd\n")
    try:
        p = subprocess.run(["sh", "-c", f'exec 7<"{d}"; exec "$@"', "sh", *MC, "run", "--rm", "--network",
                            "none", "-w", "/proc/self/fd/7", "busybox", "cat", "secret"],
                           env=env, capture_output=True, text=True, timeout=30, cwd=ROOT)
    finally:
        drop_roots(env, base)
    assert "hostile-secret-fd" not in p.stdout, "the container started in the caller's fd 7"
    assert p.returncode != 0 and "/proc/self/fd/7" in p.stderr, p
