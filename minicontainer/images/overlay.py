"""overlayfs: the union mount every container's root is made of. Introduced in notebook 04.

An overlay mount stacks read-only ``lowerdir`` layers (left = top-most) under one writable
``upperdir``; ``workdir`` is the kernel's scratch space for atomic copy-up and must be an empty
directory on the same file system as ``upperdir``. The kernel's own conventions, which image layers
follow once imported (see :mod:`minicontainer.images.importer`):

* a *whiteout* — a character device 0/0 named like the deleted file — hides that name of the layers
  below; the OCI/docker tar form ``.wh.NAME`` is translated to it on import;
* an *opaque* directory — xattr ``trusted.overlay.opaque="y"`` — hides everything below it; the tar
  form is an entry ``DIR/.wh..wh..opq``.

Why overlayfs and not copies of the whole root per container (the "vfs" driver) or device-mapper
snapshots? Layers are shared by inode, so N containers cost only their upper dirs, and a container
starts without copying anything; the kernel does copy-up on first write.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .. import syscalls
from ..errors import ConfigError, from_oserror, ImageError

OPAQUE_XATTR = "trusted.overlay.opaque"


def overlay_options(lowerdirs: Sequence[str | os.PathLike], upperdir: str | os.PathLike | None = None,
                    workdir: str | os.PathLike | None = None) -> str:
    """The ``data`` string of ``mount -t overlay``: ``lowerdir=A:B,upperdir=U,workdir=W``.

    ``lowerdirs`` are top-most first (the kernel's order). Without ``upperdir`` the mount is
    read-only (then it needs at least two lowerdirs, or one and no upper: the kernel accepts one
    lowerdir alone since 4.x). ``:`` and ``,`` inside a path would be parsed as separators, so such
    paths are refused instead of half-escaped.
    """
    lowers = [os.fspath(p) for p in lowerdirs]
    if not lowers:
        raise ConfigError("overlay needs at least one lowerdir")
    for p in [*lowers, *(os.fspath(x) for x in (upperdir, workdir) if x is not None)]:
        if any(c in p for c in ":,\\"):
            raise ConfigError(f"overlay path {p!r} contains ':', ',' or '\\'",
                              hint="the kernel parses those as separators: use a plain directory name")
    opts = "lowerdir=" + ":".join(lowers)
    if upperdir is not None:
        if workdir is None:
            raise ConfigError("overlay with an upperdir needs a workdir (empty, same file system)")
        opts += f",upperdir={os.fspath(upperdir)},workdir={os.fspath(workdir)}"
    return opts


def mount_overlay(target: str | os.PathLike, lowerdirs: Sequence[str | os.PathLike],
                  upperdir: str | os.PathLike | None = None, workdir: str | os.PathLike | None = None,
                  flags: int = 0) -> None:
    """Mount an overlay on ``target``. Call it inside the container's own mount namespace: then the
    merged view disappears with the container and nothing can leak on the host.

    Raises :class:`~minicontainer.errors.MountError` (EINVAL with the overlay hint) when a layer is
    missing or workdir is unusable.
    """
    for d in lowerdirs:
        if not os.path.isdir(d):
            raise ImageError(f"mount overlay on {os.fspath(target)}: lowerdir {os.fspath(d)} is missing",
                             hint="the image's layer is gone: re-import the image")
    syscalls.mount("overlay", target, "overlay", flags, overlay_options(lowerdirs, upperdir, workdir))


def make_whiteout(path: str | os.PathLike) -> None:
    """Create overlayfs's whiteout at ``path``: a character device with device number 0/0."""
    try:
        os.mknod(path, 0o600 | 0o020000, os.makedev(0, 0))
    except OSError as exc:
        raise from_oserror(exc, "mknod whiteout", path) from exc


def is_whiteout(path: str | os.PathLike) -> bool:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    import stat
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def make_opaque(path: str | os.PathLike) -> None:
    """Mark directory ``path`` opaque: the layers below contribute nothing to it."""
    try:
        os.setxattr(path, OPAQUE_XATTR, b"y", follow_symlinks=False)
    except OSError as exc:
        raise from_oserror(exc, f"setxattr {OPAQUE_XATTR}", path,
                           hint="trusted.* xattrs need root and a file system that supports them"
                           if exc.errno in (errno.EPERM, errno.ENOTSUP) else None) from exc


def is_opaque(path: str | os.PathLike) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def du(path: str | os.PathLike) -> int:
    """Bytes of disk used below ``path`` (allocated blocks; hard links and shared inodes counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for n in [*dirnames, *filenames, ""] if dirpath == os.fspath(path) else [*dirnames, *filenames]:
            p = os.path.join(dirpath, n) if n else dirpath
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def mounted(target: str | os.PathLike) -> bool:
    """True if ``target`` is a mount point in this mount namespace (read from mountinfo)."""
    t = os.path.realpath(target)
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if line.split()[4] == t:
            return True
    return False

