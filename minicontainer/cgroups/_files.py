"""Reading and writing cgroup files, and the parts both backends share. Introduced in notebook 02.

Every ``OSError`` becomes a :class:`~minicontainer.errors.CgroupError` here, with the file, the errno
name and a hint for the errnos cgroup files really return (crun's habit: operation + path + errno).
Files are opened ``O_WRONLY`` without ``O_CREAT``: writing a control file the kernel does not offer is
``ENOENT`` (controller missing), not a stray regular file — the same on a temporary tree in unit tests.
"""

from __future__ import annotations

import errno
import os
import time

from .. import paths
from ..errors import CgroupError, from_oserror

_HINTS = {
    errno.EBUSY: "the group is still busy (processes or child groups left, or usage above the new limit)",
    errno.EINVAL: "the kernel refused the value for this file",
    errno.ENOENT: "no such file: is that controller available in this hierarchy?",
    errno.ENOSPC: "empty cpuset.cpus/cpuset.mems (v1) or no controller enabled for this group",
    errno.EOPNOTSUPP: "this cgroup file system does not support that operation here",
    errno.EAGAIN: "the group's pids.max is reached",
}


def _err(exc: OSError, op: str, path, hint: str | None = None) -> CgroupError:
    return from_oserror(exc, op, path, cls=CgroupError, hint=hint or _HINTS.get(exc.errno or 0))


def write(path: Path, value, *, hint: str | None = None) -> None:
    text = str(value)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise _err(exc, f"write {text!r} to", path, hint) from exc


def _text(path) -> str:
    # open(), not pathlib: this module is on the OCI runtime's create/delete path (v1.py says why)
    with open(path) as fh:
        return fh.read()


def read(path: Path) -> str:
    try:
        return _text(path)
    except OSError as exc:
        raise _err(exc, "read", path) from exc


def read_int(path: Path) -> int | None:
    """An integer file, or None when the file does not exist (controller absent, older kernel)."""
    try:
        text = _text(path).strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _err(exc, "read", path) from exc
    return None if text == "max" else int(text)


def read_keyed(path: Path) -> dict[str, int]:
    """``key value`` lines (cpu.stat, memory.events, memory.oom_control); {} if the file is absent."""
    try:
        text = _text(path)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise _err(exc, "read", path) from exc
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        if v.strip().lstrip("-").isdigit():
            out[k] = int(v)
    return out


def read_pids(path: Path) -> list[int]:
    try:
        return [int(x) for x in _text(path).split()]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise _err(exc, "read", path) from exc


def mkdir(path: Path) -> bool:
    """Create a group directory; False if it already existed."""
    try:
        os.mkdir(path)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        raise _err(exc, "mkdir", path) from exc


def rmdir(path: Path, *, timeout: float = 5.0) -> None:
    """Remove a group, retrying while the kernel still reports it busy (just-killed tasks leave it
    asynchronously). Idempotent: a missing group is fine."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno == errno.EBUSY and time.monotonic() < deadline:
                time.sleep(0.01)
                continue
            raise _err(exc, "rmdir", path,
                       "processes are still in the group: kill them first (cg.kill())"
                       if exc.errno == errno.EBUSY else None) from exc


def rmdir_parent_if_empty(path: Path) -> None:
    """Remove our parent (``minicontainer``) once no group is left below it; another process may be
    creating one at the same time, so every failure simply means "still in use"."""
    try:
        os.rmdir(path)
    except OSError:
        pass


def wait_until(predicate, what: str, path: Path, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise CgroupError(what, str(path), errno.ETIMEDOUT,
                              hint=f"the kernel did not finish within {timeout:.0f} s")
        time.sleep(0.005)


def parent_name() -> str:
    return paths.CGROUP_PARENT
