"""The syscall layer on the real kernel: calls work, and failures come back translated."""

import os
import tempfile

import pytest

from minicontainer import syscalls
from minicontainer.course import run_in_child
from minicontainer.errors import MountError, NamespaceError


def test_pivot_root_onto_itself_fails_with_the_reason():
    # Which precondition the kernel checks first depends on the host: with "/" shared (systemd's
    # default, e.g. the Debian 12 VM) it is EINVAL; with "/" private, as here, EBUSY.
    with pytest.raises(MountError) as info:
        syscalls.pivot_root("/", "/")
    reason = {"EBUSY": "current root", "EINVAL": "shared"}
    assert info.value.errno_name in reason
    assert "put_old" in str(info.value) and reason[info.value.errno_name] in str(info.value)


def test_umount_of_a_non_mount_point_is_einval():
    with tempfile.TemporaryDirectory(prefix="mc-sys-") as d:
        with pytest.raises(MountError, match=r"umount .*: EINVAL — not a mount point"):
            syscalls.umount2(d)


def test_mount_on_a_missing_target_names_the_path():
    with pytest.raises(MountError, match=r"mount tmpfs on /nonexistent-mc-target: ENOENT"):
        syscalls.mount("tmpfs", "/nonexistent-mc-target", "tmpfs")


def test_unknown_unshare_flag_is_einval():
    with pytest.raises(NamespaceError, match="unshare flags=0x1: EINVAL"):
        syscalls.unshare(0x1)


def _private_tmpfs_and_hostname(d):
    syscalls.unshare(syscalls.CLONE_NEWNS | syscalls.CLONE_NEWUTS)
    syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
    syscalls.mount("tmpfs", d, "tmpfs", 0, "size=1m")
    with open(os.path.join(d, "f"), "w") as f:
        f.write("inside")
    syscalls.sethostname("mc-sys-test")
    with open("/proc/self/mountinfo") as f:
        seen = d in f.read()
    syscalls.umount2(d, syscalls.MNT_DETACH)
    return seen, os.uname().nodename


def test_mount_and_sethostname_stay_inside_new_namespaces():
    host = os.uname().nodename
    with tempfile.TemporaryDirectory(prefix="mc-sys-") as d:
        seen, name = run_in_child(_private_tmpfs_and_hostname, d)
        assert seen and name == "mc-sys-test"
        assert os.listdir(d) == []              # the tmpfs and its file never reached the host
    assert os.uname().nodename == host


def test_setns_joins_another_process_uts_namespace():
    import subprocess
    import time
    child = subprocess.Popen(["unshare", "--uts", "sh", "-c", "hostname mc-sys-join; sleep 30"])
    try:
        for _ in range(100):
            if os.readlink(f"/proc/{child.pid}/ns/uts") != os.readlink("/proc/self/ns/uts"):
                break
            time.sleep(0.01)
        time.sleep(0.05)

        def join():
            fd = os.open(f"/proc/{child.pid}/ns/uts", os.O_RDONLY)
            syscalls.setns(fd, syscalls.CLONE_NEWUTS)
            return os.uname().nodename
        # the sh child might not have run `hostname` yet on a loaded machine: poll
        for _ in range(50):
            name = run_in_child(join)
            if name == "mc-sys-join":
                break
            time.sleep(0.05)
        assert name == "mc-sys-join"
    finally:
        child.kill()
        child.wait()
