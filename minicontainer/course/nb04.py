"""Checks for notebook 04's exercises (union mounts and images)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from . import ExerciseFailed, exercise, run_in_child


def _private_mounts():
    from minicontainer import syscalls
    syscalls.unshare(syscalls.CLONE_NEWNS)
    syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)


@exercise("04.1")
def check_mount_union(mount_union) -> str:
    """The learner mounts an overlay; we look at where writes and deletes land."""
    from minicontainer.images import is_whiteout
    scratch = Path(tempfile.mkdtemp(prefix="mcim-ex041-"))
    try:
        top, base, upper, work, merged = (scratch / n for n in ("top", "base", "upper", "work", "merged"))
        for d in (top, base, upper, work, merged):
            d.mkdir()
        (base / "a.txt").write_text("base a\n")
        (base / "b.txt").write_text("base b\n")
        (top / "a.txt").write_text("top a\n")

        def inside():
            mount_union(str(merged), [str(top), str(base)], str(upper), str(work))
            seen = {"a": (merged / "a.txt").read_text(), "b": (merged / "b.txt").read_text()}
            (merged / "b.txt").write_text("changed\n")
            (merged / "a.txt").unlink()
            (merged / "new.txt").write_text("new\n")
            return seen

        seen = run_in_child(inside, before=_private_mounts)
        if seen["a"] != "top a\n":
            raise ExerciseFailed(f"a.txt exists in both lowerdirs; the merged view must show the top one "
                                 f"(lowerdirs are top-most first): expected 'top a', got {seen['a']!r}")
        if seen["b"] != "base b\n":
            raise ExerciseFailed(f"b.txt from the bottom layer: expected 'base b', got {seen['b']!r}")
        if (base / "b.txt").read_text() != "base b\n" or not (top / "a.txt").exists():
            raise ExerciseFailed("a write or delete changed a lower layer: is upperdir set?")
        if (upper / "b.txt").read_text() != "changed\n" or not (upper / "new.txt").exists():
            raise ExerciseFailed("writes did not land in upperdir")
        if not is_whiteout(upper / "a.txt"):
            raise ExerciseFailed("deleting a.txt should leave a whiteout (char device 0/0) in upperdir")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return "top layer wins, copy-up and whiteout land in upperdir, lowers unchanged"


@exercise("04.2")
def check_safe_path(safe_path) -> str:
    """The learner's in-root filter: where does a tar entry land, or is it refused?"""
    scratch = Path(tempfile.mkdtemp(prefix="mcim-ex042-"))
    try:
        root = scratch / "root"
        (root / "etc").mkdir(parents=True)
        (root / "out").symlink_to("/etc")
        (root / "rel").symlink_to("../..")
        (root / "inside").symlink_to("etc")
        good = {"etc/passwd": root / "etc/passwd", "./usr/bin/sh": root / "usr/bin/sh",
                "etc/": root / "etc", "a/b/../c": None, "/etc/shadow": None, "../escape": None,
                "out/passwd": None, "rel/x": None, "inside/x": None, "etc/../../x": None}
        for name, expected in good.items():
            try:
                got = safe_path(str(root), name)
            except ValueError:
                got = None
            if expected is None and got is not None:
                raise ExerciseFailed(f"entry {name!r} must be refused with ValueError, but you returned {got!r}")
            if expected is not None and (got is None or os.path.normpath(got) != str(expected)):
                raise ExerciseFailed(f"entry {name!r}: expected {str(expected)!r}, got "
                                     f"{'ValueError' if got is None else repr(got)}")
        if os.listdir(scratch) != ["root"]:
            raise ExerciseFailed("safe_path must not create anything outside the root")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return f"{len(good)} entries: plain names land inside, '..', absolute and symlinked paths are refused"
