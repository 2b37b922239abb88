"""Checks for notebook 03's exercises (root file system). Mounts made here live in a child's
throwaway mount namespace (``run_in_child`` + unshare), so nothing reaches the host."""

from __future__ import annotations

import os
import shutil
import tempfile

from . import ExerciseFailed, exercise, run_in_child
from .. import syscalls as sc


def _private_ns() -> None:
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)


@exercise("03.1")
def check_is_mount_point(is_mount_point) -> str:
    d = tempfile.mkdtemp(prefix="mcrf-nb03-")
    try:
        for path, want in (("/", True), ("/proc", True), (d, False)):
            got = is_mount_point(path)
            if got is not want:
                raise ExerciseFailed(f"is_mount_point({path!r}): expected {want}, got {got!r}")

        def bound():
            sc.mount(d, d, None, sc.MS_BIND)
            return is_mount_point(d), is_mount_point(d + "/")
        got = run_in_child(bound, before=_private_ns)
        if got != (True, True):
            raise ExerciseFailed(f"after bind-mounting {d} onto itself: expected (True, True) for "
                                 f"the path with and without a trailing '/', got {got!r}")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return "/, /proc, a plain directory, and the same directory bind-mounted onto itself"


@exercise("03.2")
def check_propagation_of(propagation_of) -> str:
    d = tempfile.mkdtemp(prefix="mcrf-nb03-")

    def probe():
        a, b = os.path.join(d, "a"), os.path.join(d, "b")
        os.mkdir(a); os.mkdir(b)
        sc.mount("tmpfs", a, "tmpfs", 0, "size=64k")
        sc.mount(None, a, None, sc.MS_SHARED)
        sc.mount(a, b, None, sc.MS_BIND)          # b joins a's peer group
        out = [propagation_of(b)]
        sc.mount(None, b, None, sc.MS_SLAVE)      # b receives from a, sends nothing
        out.append(propagation_of(b))
        sc.mount(None, b, None, sc.MS_PRIVATE)
        out.append(propagation_of(b))
        return out

    try:
        got = run_in_child(probe, before=_private_ns)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    if got != ["shared", "slave", "private"]:
        raise ExerciseFailed(f"a bind of a shared tmpfs, then MS_SLAVE, then MS_PRIVATE: expected "
                             f"['shared', 'slave', 'private'], got {got!r}")
    return "shared, slave and private read back from /proc/self/mountinfo"


def _systemd_like_ns() -> None:
    """A throwaway mount namespace whose `/` is shared, as systemd makes it — but in peer groups of its
    own (private first, then shared), so nothing done in it or in copies of it reaches the host."""
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_SHARED)


def _breakout(canary: str) -> str:
    """The chroot escape of the notebook: chroot into a subdirectory without chdir, climb, chroot('.')."""
    os.makedirs("/jail", exist_ok=True)
    os.chroot("/jail")
    for _ in range(64):
        os.chdir("..")
    os.chroot(".")
    try:
        with open(canary) as f:
            return f.read()
    except OSError as exc:
        return f"blocked: {exc.strerror}"


@exercise("03.3")
def check_enter_root(enter_root) -> str:
    """Build exercise: in a throwaway mount namespace with a systemd-like shared `/`, the learner's
    enter_root(root) must make `root` the process's `/` for good. Graded by the kernel: the breakout
    program run afterwards cannot reach a file outside, and the namespace's mount table (a fresh /proc
    read from inside) holds only the new root and that /proc — the old root is detached."""
    from ..busybox import build_rootfs
    work = tempfile.mkdtemp(prefix="mcrf-ex033-")
    canary = os.path.join(work, "canary")
    with open(canary, "w") as f:
        f.write("host secret")
    root = str(build_rootfs(os.path.join(work, "root")))

    def trial():
        enter_root(root)
        where = os.getcwd()
        has_busybox = os.path.exists("/bin/busybox")
        os.makedirs("/proc", exist_ok=True)
        sc.mount("proc", "/proc", "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
        return where, has_busybox, points, _breakout(canary)

    try:
        try:
            where, has_busybox, points, escaped = run_in_child(trial, before=_systemd_like_ns)
        except (NotImplementedError, ExerciseFailed):
            raise
        except Exception as exc:  # noqa: BLE001 - the learner's syscall errors, shown as the answer
            raise ExerciseFailed(f"enter_root raised {exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not has_busybox:
        raise ExerciseFailed(f"after enter_root, /bin/busybox is missing: `/` is not {root}")
    if escaped == "host secret":
        raise ExerciseFailed("the breakout read the host's file: a chroot alone does not hold (use pivot_root), "
                             "and after pivot_root the old root must be detached (umount2 with MNT_DETACH)")
    if where != "/":
        raise ExerciseFailed(f"the working directory is {where!r} after enter_root: chdir('/') at the end")
    if sorted(points) != ["/", "/proc"]:
        raise ExerciseFailed(f"the namespace still has {len(points)} mounts ({sorted(points)[:6]}…): "
                             f"detach the old root (umount2 put_old with MNT_DETACH)")
    return f"breakout {escaped!r}; mounts inside: / and /proc only"
