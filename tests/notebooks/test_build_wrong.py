"""The build exercises' checkers grade the kernel's state: a plausible but wrong mechanism must fail.

test_exercises.py proves each check both ways (stub: not passed; solution: passed). A checker could
still pass anything that merely runs; these are the mistakes a learner makes — chroot instead of a
pivot, a forgotten /proc or route, a limit without the process in the group, lowerdirs in the wrong
order, an init that waits only for its own child — and each must come back "failed" with a message.
"""

import os

import pytest

from minicontainer.course import evaluate

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="exercise checks touch the kernel: need root")


def _hostname_without_uts(hostname, workdir):
    """00.3 without --uts: the hostname command renames the caller's UTS namespace (the machine's)."""
    import subprocess
    return subprocess.Popen(["unshare", "--ipc", "--net", "sh", "-c", 'hostname "$1" && exec sleep 60',
                             "box", hostname], cwd=workdir).pid


def _box_without_cwd(hostname, workdir):
    """00.3 with the namespaces and hostname right but the working directory left as it was."""
    import subprocess
    return subprocess.Popen(["unshare", "--uts", "--ipc", "--net", "sh", "-c",
                             'hostname "$1" && exec sleep 60', "box", hostname]).pid


def _download_unverified(url, headers, digest, dest):
    """09.1 without the digest check: a flipped byte is kept."""
    import shutil
    import urllib.request
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as resp, \
            open(dest, "wb") as out:
        shutil.copyfileobj(resp, out)


def _download_leaves_file(url, headers, digest, dest):
    """09.1 that checks the digest only after writing dest, and leaves the bad file there."""
    import hashlib
    import urllib.request
    h = hashlib.sha256()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as resp, \
            open(dest, "wb") as out:
        while chunk := resp.read(1 << 16):
            h.update(chunk)
            out.write(chunk)
    if "sha256:" + h.hexdigest() != digest:
        raise ValueError("digest mismatch")


def _no_proc(hostname):
    """01.4 without mounting a new /proc: ps inside would still list the host's processes."""
    import signal
    from minicontainer import syscalls as sc
    sc.unshare(sc.CLONE_NEWUTS | sc.CLONE_NEWPID | sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    sc.sethostname(hostname)
    pid = os.fork()
    if pid == 0:
        try:
            signal.pause()
        finally:
            os._exit(0)
    return pid


def _limit_not_joined(group, limit_bytes, pid):
    """02.3 with the limit written but the process never moved into the group."""
    from pathlib import Path
    knob = "memory.max" if Path(group, "memory.max").exists() else "memory.limit_in_bytes"
    Path(group, knob).write_text(str(limit_bytes))


def _chroot_only(root):
    """03.3 with chroot: the breakout walks out."""
    os.chroot(root)
    os.chdir("/")


def _pivot_no_detach(root):
    """03.3 with the old root left stacked on the new one."""
    from minicontainer import syscalls as sc
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    sc.mount(root, root, None, sc.MS_BIND | sc.MS_REC)
    os.chdir(root)
    sc.pivot_root(".", ".")
    os.chdir("/")


def _lowers_reversed(target, lowerdirs, upperdir, workdir):
    """04.1 with the lowerdirs bottom-most first."""
    from minicontainer import syscalls
    syscalls.mount("overlay", target, "overlay", 0,
                   f"lowerdir={':'.join(reversed(lowerdirs))},upperdir={upperdir},workdir={workdir}")


def _no_route(netns, bridge, cidr):
    """05.3 without the default route: the upstream is unreachable."""
    import subprocess

    def ip(*args, ns=None):
        subprocess.run((["ip", "netns", "exec", ns] if ns else []) + ["ip", *args], check=True)
    host_end = f"vw{os.getpid() % 100000}"
    ip("link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", netns)
    ip("link", "set", host_end, "master", bridge)
    ip("link", "set", host_end, "up")
    ip("addr", "add", cidr, "dev", "eth0", ns=netns)
    ip("link", "set", "eth0", "up", ns=netns)


def _waits_for_own_child_only(argv):
    """06.3 with waitpid(child): orphans stay zombies."""
    child = os.fork()
    if child == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status)


def _effective_only():
    """07.1 with capset alone: CAP_SYS_ADMIN stays in the bounding set (a setuid binary gets it back)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]
    hdr, data = Header(0x20080522, 0), (Data * 2)()
    libc.capget(ctypes.byref(hdr), data)
    data[0].effective &= ~(1 << 21)
    data[0].permitted &= ~(1 << 21)
    libc.capset(ctypes.byref(hdr), data)


def _block_everything(name, err):
    """07.2 with the errno as the default action: every call fails, not only the one asked for."""
    import pyseccomp
    f = pyseccomp.SyscallFilter(pyseccomp.ERRNO(err))
    for keep in ("write", "exit_group", "exit", "rt_sigreturn", "close", "read", "mmap", "munmap", "brk",
                 "getpid", "openat", "newfstatat", "fstat", "lseek", "futex", "rt_sigaction", "getrandom",
                 "ioctl", "fcntl", "rt_sigprocmask", "sigaltstack", "madvise", "mprotect", "mremap"):
        f.add_rule(pyseccomp.ALLOW, keep)
    f.load()


def _denylist(cg):
    """07.3 as a denylist: /dev/kmsg denied, /dev/mem and the disk forgotten."""
    from minicontainer.security import devices
    devices.apply(cg, [{"allow": True, "access": "rwm"},
                       {"allow": False, "type": "c", "major": 1, "minor": 11, "access": "rwm"}])


WRONG = [
    ("00.3", _hostname_without_uts, "renames the machine"),
    ("00.3", _box_without_cwd, "working directory"),
    ("01.4", _no_proc, "/proc"),
    ("02.3", _limit_not_joined, "cgroup.procs"),
    ("03.3", _chroot_only, "breakout"),
    ("03.3", _pivot_no_detach, "detach"),
    ("04.1", _lowers_reversed, "top"),
    ("05.3", _no_route, "default route"),
    ("06.3", _waits_for_own_child_only, "zombie"),
    ("07.1", _effective_only, "CapBnd"),
    ("07.2", _block_everything, "also broke"),
    ("07.3", _denylist, "mem"),
    ("09.1", _download_unverified, "was accepted"),
    ("09.1", _download_leaves_file, "remove what you wrote"),
]


@pytest.mark.parametrize("ex_id, wrong, says", WRONG, ids=[f"{e}-{f.__name__.strip('_')}" for e, f, _ in WRONG])
def test_wrong_mechanism_fails(ex_id, wrong, says):
    result = evaluate(ex_id, wrong)
    assert result.status == "failed", result
    assert says in result.message, result.message
