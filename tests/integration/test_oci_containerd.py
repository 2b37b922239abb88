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
    """Our own containerd (minicontainer/oci/clients.py, which notebook 08 uses too); removed after."""
    from minicontainer.oci.clients import Containerd
    with Containerd(tmp_path_factory.mktemp("ctrd"), runtime=OCI, namespace=NS) as c:
        def run(*args, timeout=60, check=None, **kw):
            p = c.ctr(*args, timeout=timeout, **kw)
            if check is not None:
                assert p.returncode == check, (args, p.returncode, p.stdout, p.stderr)
            return p
        run.base, run.sock, run.env = c.base, c.sock, c.env
        yield run


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
