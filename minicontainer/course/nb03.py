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
