"""Namespaces: the names the runtime calls (introduced by notebook 01, issue 3).

PARTIAL: only flags_for / enter / write_id_maps exist so far; spawn/Process/compare and notebook 01
are not written yet.
"""
from __future__ import annotations

import errno
import os
from typing import Iterable

from . import syscalls
from .errors import ConfigError, NamespaceError, NotFoundError, from_oserror

# nsenter's order: user first (it grants the capabilities for the rest), mnt last (after it,
# /proc/<pid>/ns paths of the target may no longer resolve from our view).
ENTER_ORDER = ("user", "cgroup", "ipc", "uts", "net", "pid", "time", "mnt")


def flags_for(names: Iterable[str]) -> int:
    """Map namespace names ("uts", "pid", …) to CLONE_* bits; unknown name → ConfigError."""
    flags = 0
    for name in names:
        try:
            flags |= syscalls.NAMESPACE_FLAGS[name]
        except KeyError:
            raise ConfigError(f"unknown namespace {name!r}",
                              hint="choose from " + ", ".join(sorted(syscalls.NAMESPACE_FLAGS))) from None
    return flags


def enter(pid: int, names: Iterable[str]) -> None:
    """setns into the namespaces ``names`` of ``pid`` (what nsenter / docker exec do).

    All fds are opened before the first setns: after joining mnt the target's /proc may differ.
    Joining pid moves only later children. user/mnt need a single-threaded caller (fork first).
    """
    wanted = set(names)
    flags_for(wanted)  # validates names
    fds = []
    try:
        for name in ENTER_ORDER:
            if name not in wanted:
                continue
            path = f"/proc/{pid}/ns/{name}"
            try:
                fds.append((os.open(path, os.O_RDONLY | os.O_CLOEXEC), name, path))
            except FileNotFoundError:
                raise NotFoundError(f"open {path}: ENOENT", hint=f"no process with pid {pid}") from None
            except OSError as exc:
                raise from_oserror(exc, "open", path, cls=NamespaceError) from exc
        for fd, name, path in fds:
            syscalls.setns(fd, syscalls.NAMESPACE_FLAGS[name], path=path)
    finally:
        for fd, _, _ in fds:
            os.close(fd)


def write_id_maps(pid: int, uid_map: str, gid_map: str) -> None:
    """Write setgroups=deny, uid_map and gid_map of ``pid`` (the parent does it while the child waits)."""
    for fname, data in (("setgroups", "deny"), ("uid_map", uid_map), ("gid_map", gid_map)):
        path = f"/proc/{pid}/{fname}"
        try:
            with open(path, "w") as f:
                f.write(data if data.endswith("\n") else data + "\n")
        except FileNotFoundError:
            raise NotFoundError(f"write {path}: ENOENT", hint=f"no process with pid {pid}") from None
        except OSError as exc:
            hint = ("the kernel refused the map: each line is 'inside outside count', ranges must not "
                    "overlap, and a map can be written only once") if exc.errno in (errno.EINVAL, errno.EPERM) else None
            raise from_oserror(exc, "write", path, cls=NamespaceError, hint=hint) from exc
