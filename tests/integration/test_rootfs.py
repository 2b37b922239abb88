"""Notebook 03 / minicontainer.rootfs: from inside a real container built with setup_root."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from minicontainer import rootfs, syscalls as sc
from minicontainer.busybox import build_rootfs
from minicontainer.errors import MiniContainerError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture
def root():
    d = tempfile.mkdtemp(prefix="mcrf-")
    build_rootfs(os.path.join(d, "root"))
    yield os.path.join(d, "root")
    shutil.rmtree(d)


def run(root, script, **kw):
    """fork; unshare NEWNS|NEWPID|NEWUTS|NEWIPC; fork PID 1; setup_root; exec busybox sh -c script."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.dup2(w, 1)
            os.dup2(w, 2)
            sc.unshare(sc.CLONE_NEWNS | sc.CLONE_NEWPID | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC)
            child = os.fork()
            if child == 0:
                try:
                    rootfs.setup_root(root, **kw)
                    if callable(script):
                        script()
                        os._exit(0)
                    os.execv("/bin/sh", ["sh", "-c", script])
                except BaseException as exc:  # noqa: BLE001
                    os.write(2, f"SETUP-ERROR {exc}\n".encode())
                os._exit(120)
            _, st = os.waitpid(child, 0)
            os._exit(os.waitstatus_to_exitcode(st))
        except BaseException as exc:  # noqa: BLE001
            os.write(2, f"ERROR {exc}\n".encode())
        os._exit(121)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, st = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(st), out


def mounts():
    with open("/proc/self/mountinfo") as f:
        return sorted(" ".join(line.split()[3:5]) for line in f)


def test_root_is_busybox_and_host_canary_unreachable(root, tmp_path):
    canary = tmp_path / "mcrf-canary"
    canary.write_text("host secret")
    before = mounts()
    rc, out = run(root, f"ls /bin/busybox && cat {canary} ; echo pid=$$", hostname="mcrf")
    assert rc == 0, out
    assert "/bin/busybox" in out and "host secret" not in out and "pid=1" in out
    assert mounts() == before


def test_chroot_breakout_fails_after_pivot_root(root, tmp_path):
    canary = tmp_path / "mcrf-canary"
    canary.write_text("host secret")

    def breakout():
        # the classic: chroot into a subdir WITHOUT chdir, walk up with "..", chroot(".")
        os.makedirs("/jail", exist_ok=True)
        os.chroot("/jail")
        for _ in range(64):
            os.chdir("..")
        os.chroot(".")
        try:
            with open(str(canary)) as f:
                os.write(1, b"ESCAPED " + f.read().encode())
        except OSError as exc:
            os.write(1, f"still-inside {exc.strerror}".encode())

    rc, out = run(root, breakout)
    assert rc == 0 and "still-inside" in out and "host secret" not in out, out


def test_hardening(root):
    script = ("wc -c < /proc/keys; echo x > /proc/sys/kernel/hostname && echo WROTE; "
              "echo hi > /dev/null && echo null-ok; ls /dev; ls /dev/pts; readlink /dev/ptmx; "
              "grep -c . /proc/keys; echo 1 > /proc/sysrq-trigger || echo sysrq-ro; "
              "touch /sys/x || echo sys-ro; ls /sys/firmware | wc -l; cat /etc/hostname")
    rc, out = run(root, script, hostname="mcrf-host")
    assert "WROTE" not in out, out
    lines = out.split()
    assert lines[0] == "0"  # /proc/keys masked (/proc/kcore is absent on this kernel, masked when present)
    assert "null-ok" in out and "sysrq-ro" in out and "sys-ro" in out
    for d in rootfs.DEVICES:
        assert d in lines
    assert "sda" not in lines and "vda" not in lines and "mem" not in lines
    assert "ptmx" in out and "pts/ptmx" in out and "mcrf-host" in out


def test_volumes_ro_rw(root, tmp_path):
    (tmp_path / "ro").mkdir()
    (tmp_path / "rw").mkdir()
    before = mounts()
    rc, out = run(root, "echo a > /data/ro/f || echo ro-refused; echo b > /data/rw/f && echo rw-ok",
                  volumes=[f"{tmp_path}/ro:/data/ro:ro", f"{tmp_path}/rw:/data/rw"])
    assert "ro-refused" in out and "rw-ok" in out, out
    assert not (tmp_path / "ro" / "f").exists()
    assert (tmp_path / "rw" / "f").read_text() == "b\n"
    assert mounts() == before


def test_readonly_root(root):
    rc, out = run(root, "touch /x || echo root-ro; touch /tmp/x && echo tmp-ok", readonly=True)
    assert "root-ro" in out and "tmp-ok" in out, out


def test_symlinked_volume_destination_stays_in_root(root, tmp_path):
    # an absolute link to a host directory: followed as the container follows it, inside its root
    target = tmp_path / "mcrf-hostdir"
    target.mkdir()
    os.symlink(str(target), os.path.join(root, "evil"))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_text("from the volume\n")
    before = mounts()
    rc, out = run(root, "cat /evil/x/f", volumes=[f"{tmp_path}/src:/evil/x"])
    assert (rc, out) == (0, "from the volume\n"), out
    assert list(target.iterdir()) == [], "the volume went to the host's directory"
    assert mounts() == before


def test_volume_through_a_symlink_into_proc_refused(root, tmp_path):
    os.symlink("/proc", os.path.join(root, "data"))
    (tmp_path / "src").mkdir()
    rc, out = run(root, "echo should-not-run", volumes=[f"{tmp_path}/src:/data/x"])
    assert rc == 120 and "resolves to /proc/x" in out and "runtime's own mount" in out, out


def test_symlinked_mask_target_refused(tmp_path):
    os.symlink("/etc/passwd", tmp_path / "kcore")
    with pytest.raises(MiniContainerError, match="symlink"):
        rootfs.open_in_root(str(tmp_path), "/kcore")


def test_same_breakout_escapes_plain_chroot(root, tmp_path):
    """Control for the test above: under chroot alone the same program reaches the host file."""
    canary = tmp_path / "mcrf-canary"
    canary.write_text("host secret")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            sc.unshare(sc.CLONE_NEWNS)
            sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
            os.chroot(root)
            os.chdir("/")
            os.makedirs("/jail", exist_ok=True)
            os.chroot("/jail")          # cwd stays outside the new root
            for _ in range(64):
                os.chdir("..")
            os.chroot(".")
            with open(str(canary)) as f:
                os.write(w, f.read().encode())
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    os.waitpid(pid, 0)
    assert out == "host secret"


def test_etc_files_shown_inside_and_image_untouched(root):
    """Generated /etc files are bind-mounted over the image's: the container sees them, the image keeps its own."""
    image_hosts = open(os.path.join(root, "etc", "hosts")).read() if os.path.exists(os.path.join(root, "etc", "hosts")) else None
    before = mounts()
    rc, out = run(root, "cat /etc/hosts /etc/resolv.conf; echo x >> /etc/hosts && echo appended",
                  etc_files={"/etc/hosts": "10.209.0.7\tmcrf-peer\n", "/etc/resolv.conf": "nameserver 10.209.0.1\n"})
    assert rc == 0, out
    assert "10.209.0.7\tmcrf-peer" in out and "nameserver 10.209.0.1" in out and "appended" in out, out
    after_hosts = open(os.path.join(root, "etc", "hosts")).read() if os.path.exists(os.path.join(root, "etc", "hosts")) else None
    assert after_hosts in (image_hosts, "")          # a placeholder at most, never our content
    assert mounts() == before


def test_without_proc_the_container_sees_no_processes(root):
    """mount_proc=False (a runtime that mounts /proc itself later): /proc is an empty directory, /sys is masked."""
    rc, out = run(root, "ls /proc | wc -l; ls /sys/firmware 2>/dev/null | wc -l", mount_proc=False)
    assert rc == 0, out
    assert out.split() == ["0", "0"], out
