"""Checks for notebook 07's exercises (security): each one graded by the kernel's answer — a mount
refused with EPERM, a system call failing with the asked errno, a device node that will not open."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile

from . import ExerciseFailed, exercise, run_in_child

CAP_SYS_ADMIN, CAP_CHOWN = 21, 0


def _status() -> dict[str, str]:
    with open("/proc/self/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def _errno_of(call) -> str:
    try:
        call()
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return "OK"


def _private_mounts() -> None:
    from .. import syscalls as sc
    sc.unshare(sc.CLONE_NEWNS)                      # a mount that succeeds stays in the child
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)


def _cap_after(drop_sys_admin) -> dict:
    drop_sys_admin()
    s = _status()
    d = tempfile.mkdtemp(prefix="mcrt-ex071-")
    try:
        from .. import syscalls as sc

        def mount():
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.mount(b"none", d.encode(), b"tmpfs", 0, b"size=1k") != 0:
                raise OSError(ctypes.get_errno(), "mount")
            sc.umount2(d, sc.MNT_DETACH)
        got = _errno_of(mount)
    finally:
        os.rmdir(d)
    return {k: int(s[k], 16) for k in ("CapBnd", "CapPrm", "CapEff")} | {"mount": got, "uid": os.getuid()}


@exercise("07.1")
def check_drop_sys_admin(drop_sys_admin) -> str:
    """Build exercise: CAP_SYS_ADMIN gone from bounding, permitted and effective; the kernel refuses
    a tmpfs mount with EPERM; CAP_CHOWN stays."""
    got = run_in_child(_cap_after, drop_sys_admin, before=_private_mounts)
    for field in ("CapBnd", "CapPrm", "CapEff"):
        if got[field] >> CAP_SYS_ADMIN & 1:
            raise ExerciseFailed(f"CAP_SYS_ADMIN (bit 21) is still in {field} ({got[field]:016x}): "
                                 f"{'PR_CAPBSET_DROP' if field == 'CapBnd' else 'capset'} is missing")
    if not got["CapEff"] >> CAP_CHOWN & 1 or got["uid"] != 0:
        raise ExerciseFailed(f"CAP_CHOWN is gone too (CapEff {got['CapEff']:016x}, uid {got['uid']}): "
                             f"drop only CAP_SYS_ADMIN")
    if got["mount"] != "EPERM":
        raise ExerciseFailed(f"mount of a tmpfs: expected EPERM from the kernel, got {got['mount']}")
    return "CAP_SYS_ADMIN out of CapBnd/CapPrm/CapEff, CAP_CHOWN kept; the kernel's mount answer: EPERM"


def _filtered(block, name: str, err: int) -> dict:
    block(name, err)
    return {"uname": _errno_of(os.uname), "getcwd": _errno_of(os.getcwd), "Seccomp": _status()["Seccomp"]}


@exercise("07.2")
def check_block(block) -> str:
    """Build exercise: under the learner's filter, one call fails with the asked errno, others run."""
    for name, err, other in (("uname", errno.EROFS, "getcwd"), ("getcwd", errno.ENOTSUP, "uname")):
        got = run_in_child(_filtered, block, name, err)
        want = errno.errorcode[err]
        if got[name] != want:
            raise ExerciseFailed(f"block({name!r}, errno.{want}): {name} answered {got[name]}, expected {want}")
        if got[other] != "OK":
            raise ExerciseFailed(f"block({name!r}, …) also broke {other} ({got[other]}): allow everything else")
        if got["Seccomp"] != "2":
            raise ExerciseFailed(f"/proc/self/status says Seccomp: {got['Seccomp']}, expected 2 (a filter)")
    return "uname → EROFS and getcwd → ENOTSUP under your filters, the other call untouched, Seccomp: 2"


_NODES = (("null", 0o020000, 1, 3, "OK"), ("zero", 0o020000, 1, 5, "OK"), ("kmsg", 0o020000, 1, 11, "EPERM"),
          ("mem", 0o020000, 1, 1, "EPERM"), ("loop0", 0o060000, 7, 0, "EPERM"))


def _opens(d: str) -> dict:
    out = {}
    for name, *_ in _NODES:
        out[name] = _errno_of(lambda: os.close(os.open(os.path.join(d, name), os.O_RDONLY | os.O_NONBLOCK)))
    return out


@exercise("07.3")
def check_confine_devices(confine_devices) -> str:
    """Build exercise: a child in the learner's group opens five nodes; only null and zero open."""
    from ..cgroups import Cgroup
    d = tempfile.mkdtemp(prefix="mcrt-ex073-")
    try:
        for name, kind, ma, mi, _ in _NODES:
            os.mknod(os.path.join(d, name), 0o600 | kind, os.makedev(ma, mi))
        with Cgroup.create("mcrt-nb07-ex3") as cg:
            confine_devices(cg)
            got = run_in_child(_opens, d, before=lambda: cg.add(os.getpid()))
    finally:
        shutil.rmtree(d, ignore_errors=True)
    want = {name: answer for name, *_, answer in _NODES}
    if got != want:
        wrong = {k: f"{got[k]} (expected {want[k]})" for k in want if got[k] != want[k]}
        raise ExerciseFailed(f"open of each node in the group: {wrong}")
    return "in the group null and zero open; kmsg, mem and loop0 are EPERM (the kernel's device check)"
