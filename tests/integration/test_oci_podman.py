"""Debian's podman (with conmon) driving minicontainer-oci as its OCI runtime (root, real kernel).

Everything podman keeps is in a temporary directory (--root, --runroot, --tmpdir, its own
containers.conf); the image is the course's busybox root file system, `podman import`ed from a tar
made here: no network. podman asks for RLIMIT_NOFILE 1048576 by default, above this host's hard
limit, so every run gives --ulimit (as the issue found with runc).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import time

import pytest

from tests.integration.oci_helpers import OCI, cgroup_dirs, has_security

pytestmark = pytest.mark.skipif(shutil.which("podman") is None or shutil.which("conmon") is None,
                                reason="podman and conmon are not installed (make setup installs them)")

IMAGE = "localhost/mcbusybox:latest"
ULIMITS = ["--ulimit", "nofile=1024:4096", "--ulimit", "nproc=1024:1024"]


def _libpod_dirs() -> set[str]:
    """libpod_parent in every cgroup hierarchy (conmon joins some we never use, e.g. v1 devices)."""
    out = set()
    for line in open("/proc/self/mountinfo"):
        left, _, right = line.partition(" - ")
        if right.split()[0] in ("cgroup", "cgroup2"):
            d = os.path.join(left.split()[4], "libpod_parent")
            if os.path.isdir(d):
                out.add(d)
    return out


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    from minicontainer.busybox import build_rootfs
    base = tmp_path_factory.mktemp("podman")
    before = _libpod_dirs()
    lock_before = os.path.exists("/dev/shm/libpod_lock")          # podman's SHM locks
    conf = base / "containers.conf"
    conf.write_text("[engine]\nevents_logger = \"file\"\ncgroup_manager = \"cgroupfs\"\n"
                    f"[engine.runtimes]\nminicontainer = [\"{OCI}\"]\n")
    env = dict(os.environ, CONTAINERS_CONF=str(conf), MINICONTAINER_STATE_ROOT=str(base / "mcstate"))
    env.pop("XDG_RUNTIME_DIR", None)
    cmd = ["podman", "--runtime", OCI, "--cgroup-manager", "cgroupfs", "--storage-driver", "vfs",
           "--root", str(base / "root"), "--runroot", str(base / "runroot"), "--tmpdir", str(base / "tmp"),
           "--events-backend", "file"]

    def run(*args, timeout=60, check=None):
        p = subprocess.run(cmd + list(args), env=env, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if check is not None:
            assert p.returncode == check, (args, p.returncode, p.stdout, p.stderr)
        return p

    build_rootfs(base / "rootfs")
    with tarfile.open(base / "rootfs.tar", "w") as t:
        t.add(base / "rootfs", arcname=".")
    run("import", str(base / "rootfs.tar"), IMAGE, check=0)
    yield run
    run("rm", "--all", "--force", "--time", "0")
    run("rmi", "--all", "--force")
    run("system", "reset", "--force")
    # conmon's and our groups below libpod_parent: podman made the parent, the test removes it
    for d in sorted(_libpod_dirs() - before, reverse=True):
        for sub in sorted((os.path.join(r, x) for r, ds, _ in os.walk(d) for x in ds), reverse=True):
            try:
                os.rmdir(sub)
            except OSError:
                pass
        try:
            os.rmdir(d)
        except OSError:
            pass
    if not lock_before:
        try:
            os.unlink("/dev/shm/libpod_lock")
        except FileNotFoundError:
            pass
    subprocess.run(["umount", "-R", str(base)], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


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
