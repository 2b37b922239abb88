"""What this host offers: root, namespaces, overlayfs. Introduced in notebook 00.

Integration tests and notebooks ask here before they use a kernel feature, so that a missing
feature is a clear skip or error, not a strange failure three calls later.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import NeedsRootError

NAMESPACES = ("mnt", "uts", "ipc", "net", "pid", "user", "cgroup", "time")


def is_root() -> bool:
    return os.geteuid() == 0


def require_root(what: str = "minicontainer") -> None:
    """Raise :class:`NeedsRootError` (one clear line, no traceback in the CLI) unless euid is 0."""
    if not is_root():
        raise NeedsRootError(what)


def has_namespace(name: str) -> bool:
    """True if the kernel supports namespace ``name`` (it shows up in /proc/self/ns)."""
    return Path("/proc/self/ns", name).exists()


def has_filesystem(fstype: str) -> bool:
    """True if ``fstype`` is listed in /proc/filesystems (overlay, tmpfs, cgroup2, …)."""
    try:
        text = Path("/proc/filesystems").read_text()
    except OSError:
        return False
    return any(line.split()[-1] == fstype for line in text.splitlines() if line.strip())


def namespace_ids(pid: int | str = "self") -> dict[str, str]:
    """``{"uts": "uts:[4026531838]", …}``: the kernel's identity of each namespace of ``pid``.

    Two processes share a namespace exactly when these strings are equal.
    """
    out = {}
    for name in NAMESPACES:
        try:
            out[name] = os.readlink(f"/proc/{pid}/ns/{name}")
        except FileNotFoundError:
            continue
    return out
