"""Debian's containerd 1.6 (its runc v2 shim) driving minicontainer-oci (root, real kernel).

A fixture starts a containerd of our own — config, root, state, socket and plugin dirs in a temp
dir, the CRI plugin off — and stops it afterwards; the system's containerd (if any) is never
touched. ``ctr run --runc-binary`` sets the shim's ``BinaryName`` option (what a
``runtimes.minicontainer`` section with ``options.BinaryName`` does for the CRI plugin); ``--rootfs``
runs the course's busybox tree without any image or network.
"""
from __future__ import annotations

import os
import pty
import shutil
import signal
import subprocess
import time

import pytest

from tests.integration.oci_helpers import OCI, cgroup_dirs

pytestmark = pytest.mark.skipif(shutil.which("containerd") is None or shutil.which("ctr") is None
                                or shutil.which("containerd-shim-runc-v2") is None,
                                reason="containerd is not installed (make setup installs it)")
NS = "mctest"


@pytest.fixture(scope="module")
def ctr(tmp_path_factory):
    from minicontainer.busybox import build_rootfs
    base = tmp_path_factory.mktemp("ctrd")
    sock = base / "containerd.sock"
    made_run = [p for p in ("/run/containerd/s", "/run/containerd/fifo", "/run/containerd") if not os.path.exists(p)]
    (base / "config.toml").write_text(f"""version = 2
root = "{base}/root"
state = "{base}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{base}/opt"
""")
    log = open(base / "containerd.log", "w")
    daemon = subprocess.Popen(["containerd", "--config", str(base / "config.toml")], stdout=log,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not sock.exists() and time.monotonic() < deadline and daemon.poll() is None:
        time.sleep(0.05)
    assert sock.exists(), (base / "containerd.log").read_text()[-2000:]
    build_rootfs(base / "rootfs")
    env = dict(os.environ, MINICONTAINER_STATE_ROOT=str(base / "mcstate"))

    def run(*args, timeout=60, check=None, **kw):
        p = subprocess.run(["ctr", "-a", str(sock), "-n", NS, *args], env=env, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL, **kw)
        if check is not None:
            assert p.returncode == check, (args, p.returncode, p.stdout, p.stderr)
        return p
    run.base, run.sock, run.env = base, sock, env
    yield run
    for cid in run("containers", "ls", "-q").stdout.split():
        run("task", "kill", "-s", "SIGKILL", cid)
        time.sleep(0.2)
        run("task", "rm", "-f", cid)
        run("containers", "rm", cid)
    daemon.send_signal(signal.SIGTERM)
    try:
        daemon.wait(20)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()
    log.close()
    subprocess.run(["umount", "-R", str(base)], capture_output=True)
    for p in made_run:
        try:
            os.rmdir(p)
        except OSError:
            pass
    shutil.rmtree(base, ignore_errors=True)


def _runc_args(ctr):
    return ["--runc-binary", OCI, "--runc-root", str(ctr.base / "runc"), "--rootfs", str(ctr.base / "rootfs")]


def test_run_output_and_exit_code(ctr):
    p = ctr("run", "--rm", *_runc_args(ctr), "c1", "sh", "-c", "echo hello from $(hostname); exit 3")
    assert p.returncode == 3, p.stderr
    assert p.stdout.strip().startswith("hello from")
    assert cgroup_dirs(f"{NS}/c1") == []


def test_detached_exec_kill_rm(ctr):
    ctr("run", "-d", *_runc_args(ctr), "c2", "sleep", "1000", check=0)
    try:
        tasks = ctr("task", "ls", check=0).stdout
        assert "c2" in tasks and "RUNNING" in tasks
        p = ctr("task", "exec", "--exec-id", "e1", "c2", "sh", "-c", "echo in $(cat /proc/1/cmdline | tr '\\0' ' '); exit 5")
        assert p.returncode == 5 and p.stdout.strip() == "in sleep 1000", p.stderr
        assert cgroup_dirs(f"{NS}/c2")
        ctr("task", "kill", "-s", "SIGKILL", "c2", check=0)
        deadline = time.monotonic() + 10
        while "STOPPED" not in ctr("task", "ls").stdout and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "STOPPED" in ctr("task", "ls").stdout
        ctr("task", "rm", "c2", check=0)
    finally:
        ctr("task", "rm", "-f", "c2")
        ctr("containers", "rm", "c2")
    assert cgroup_dirs(f"{NS}/c2") == []
    assert not os.listdir(ctr.base / "runc" / NS) if (ctr.base / "runc" / NS).exists() else True


def test_tty(ctr):
    master, slave = pty.openpty()
    p = subprocess.Popen(["ctr", "-a", str(ctr.sock), "-n", NS, "run", "--rm", "-t", *_runc_args(ctr), "c3",
                          "sh", "-c", "tty; echo done"], stdin=slave, stdout=slave, stderr=slave,
                         env=ctr.env, start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if b"done" in out:
            break
    assert p.wait(20) == 0
    os.close(master)
    assert b"/dev/pts/" in out and b"done" in out, out
