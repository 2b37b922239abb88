"""Debian's podman (with conmon) driving minicontainer-oci as its OCI runtime (root, real kernel).

Everything podman keeps is in a temporary directory (--root, --runroot, --tmpdir, its own
containers.conf); the image is the course's busybox root file system, `podman import`ed from a tar
made here: no network. podman asks for RLIMIT_NOFILE 1048576 by default, above this host's hard
limit, so every run gives --ulimit (as the issue found with runc).
"""
from __future__ import annotations

import os
import shutil
import time

import pytest

from minicontainer.oci.clients import ULIMITS   # podman's nofile default is above this host's hard limit
from tests.integration.oci_helpers import OCI, cgroup_dirs, has_security

pytestmark = pytest.mark.skipif(shutil.which("podman") is None or shutil.which("conmon") is None,
                                reason="podman and conmon are not installed (make setup installs them)")

IMAGE = "localhost/mcbusybox:latest"


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    """podman with everything in a temp dir (minicontainer/oci/clients.py, which notebook 08 uses too)."""
    from minicontainer.oci.clients import Podman
    with Podman(tmp_path_factory.mktemp("podman"), runtime=OCI, image=IMAGE) as pod:
        def run(*args, timeout=60, check=None):
            p = pod(*args, timeout=timeout)
            if check is not None:
                assert p.returncode == check, (args, p.returncode, p.stdout, p.stderr)
            return p
        yield run


def test_run_output_and_exit_code(podman):
    p = podman("run", "--rm", "--network", "none", *ULIMITS, IMAGE, "sh", "-c", "echo hello $(hostname | wc -c); exit 3")
    assert p.returncode == 3, p.stderr
    assert p.stdout.startswith("hello ")
    p = podman("run", "--rm", "--network", "none", *ULIMITS, IMAGE, "no-such-program")
    assert p.returncode == 127, p.stderr


def test_detached_exec_stop_rm(podman):
    cid = podman("run", "-d", "--network", "none", *ULIMITS, "--name", "mc-d", IMAGE, "sleep", "1000", check=0).stdout.strip()
    try:
        assert podman("inspect", "--format", "{{.State.Status}}", "mc-d", check=0).stdout.strip() == "running"
        p = podman("exec", "mc-d", "sh", "-c", "echo in $(cat /proc/1/cmdline | tr '\\0' ' '); exit 5")
        assert p.returncode == 5 and p.stdout.strip() == "in sleep 1000", p.stderr
        p = podman("exec", "-t", "mc-d", "tty")                  # the exec's pty through the console socket
        assert p.returncode == 0 and p.stdout.strip().startswith("/dev/pts/"), (p.stdout, p.stderr)
        podman("stop", "-t", "1", "mc-d", check=0)
        assert podman("inspect", "--format", "{{.State.Status}}", "mc-d", check=0).stdout.strip() == "exited"
    finally:
        podman("rm", "-f", "mc-d")
    assert podman("ps", "-a", "--format", "{{.ID}}", check=0).stdout.strip() == ""
    assert cgroup_dirs(f"libpod_parent/libpod-{cid}") == []


def test_kill(podman):
    podman("run", "-d", "--network", "none", *ULIMITS, "--name", "mc-k", IMAGE, "sleep", "1000", check=0)
    try:
        podman("kill", "mc-k", check=0)
        time.sleep(0.2)
        p = podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "mc-k", check=0)
        assert p.stdout.split() == ["exited", "137"]
    finally:
        podman("rm", "-f", "mc-k")


def test_tty_through_the_console_socket(podman):
    p = podman("run", "--rm", "-t", "--network", "none", *ULIMITS, IMAGE, "sh", "-c", "tty; stty size")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.replace("\r", "").splitlines()
    assert lines[0].startswith("/dev/pts/"), p.stdout


def test_memory_limit_in_the_cgroup(podman):
    cid = podman("run", "-d", "--network", "none", *ULIMITS, "--memory", "64m", IMAGE, "sleep", "1000",
                 check=0).stdout.strip()
    try:
        from minicontainer.cgroups import detect_layout
        lay = detect_layout()
        if lay.backend == "v1":
            f = os.path.join(lay.v1["memory"], "libpod_parent", f"libpod-{cid}", "memory.limit_in_bytes")
            inside = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
        else:
            f = os.path.join(lay.v2, "libpod_parent", f"libpod-{cid}", "memory.max")
            inside = "/sys/fs/cgroup/memory.max"
        assert open(f).read().strip() == str(64 << 20)
        assert podman("exec", cid, "cat", inside, check=0).stdout.strip() == str(64 << 20)
    finally:
        podman("rm", "-f", "--time", "0", cid)


def test_read_only(podman):
    p = podman("run", "--rm", "--read-only", "--network", "none", *ULIMITS, IMAGE, "sh", "-c",
               "touch /x 2>/dev/null && echo writable || echo read-only; touch /tmp/y && echo tmp-ok")
    assert p.stdout.split() == ["read-only", "tmp-ok"], p.stderr


@pytest.mark.skipif(not has_security(),
                    reason="capabilities need minicontainer.security (until the security branch is merged)")
def test_cap_drop(podman):
    p = podman("run", "--rm", "--network", "none", *ULIMITS, "--cap-drop", "all", IMAGE, "sh", "-c",
               "grep CapEff /proc/self/status; chown 1 /tmp 2>/dev/null && echo chowned || echo refused")
    assert p.stdout.split() == ["CapEff:", "0000000000000000", "refused"], p.stderr
    p = podman("run", "--rm", "--network", "none", *ULIMITS, "--cap-drop", "chown", IMAGE, "sh", "-c",
               "chown 1 /tmp 2>/dev/null && echo chowned || echo refused")
    assert p.stdout.split() == ["refused"], p.stderr
