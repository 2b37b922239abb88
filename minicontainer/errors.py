"""Every error minicontainer raises on purpose.

Introduced in notebook 00. The rule (learned from crun): an error names the operation, the path it
acted on, the kernel's errno name, and a hint how to fix it, e.g.

    mount overlay on /var/lib/minicontainer/c1/merged: EINVAL — is the overlay module loaded?

`OSError` from the kernel is translated into these classes in exactly one place,
:func:`from_oserror` (called by :mod:`minicontainer.syscalls` and by helpers that touch files), so that
no module invents its own wording. Each kernel concept has its own subclass (youki's habit), which
lets a notebook or a test catch "anything cgroup" without catching "anything at all".

Exit codes follow docker's CLI: 125 the runtime failed, 126 the command cannot be executed,
127 the command was not found, 128+N the container was killed by signal N.
"""

from __future__ import annotations

import errno as _errno
import os

__all__ = [
    "MiniContainerError",
    "KernelError",
    "NeedsRootError",
    "ConfigError",
    "NotFoundError",
    "ConflictError",
    "NamespaceError",
    "CgroupError",
    "MountError",
    "RootfsError",
    "ImageError",
    "NetworkError",
    "ContainerError",
    "ExecError",
    "from_oserror",
    "errno_name",
    "exit_code",
]


class MiniContainerError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with (docker's 125 unless a subclass says)."""

    exit_code = 125

    def __init__(self, message: str, *, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} — {self.hint}"
        return self.message

    def __reduce__(self):
        # Errors cross process boundaries (a forked child reports its failure through a pipe):
        # rebuild from the attributes, since subclasses' __init__ take more than the message.
        return _restore, (type(self), self.__dict__.copy())


def _restore(cls: type[MiniContainerError], state: dict) -> MiniContainerError:
    exc = cls.__new__(cls)
    exc.__dict__.update(state)
    Exception.__init__(exc, str(exc))
    return exc


class KernelError(MiniContainerError):
    """A system call failed. Carries ``op``, ``path``, ``errno`` and ``errno_name``."""

    def __init__(self, op: str, path: str | None, err: int, *, hint: str | None = None,
                 detail: str | None = None):
        self.op = op
        self.path = path
        self.errno = err
        self.errno_name = errno_name(err)
        where = f" {path}" if path else ""
        extra = f" ({detail})" if detail else ""
        super().__init__(f"{op}{where}: {self.errno_name}{extra}", hint=hint)


class NeedsRootError(MiniContainerError):
    """The operation needs root (CAP_SYS_ADMIN and friends)."""

    def __init__(self, what: str = "minicontainer"):
        super().__init__(f"{what} needs root",
                         hint="run it as root, e.g. `sudo minicontainer …` (or `sudo make …`)")


class ConfigError(MiniContainerError):
    """A value given by the user is invalid (memory size, port, volume spec, name…)."""


class NotFoundError(MiniContainerError):
    """Something named by the user does not exist (image, container, pid…)."""


class ConflictError(MiniContainerError):
    """Something named by the user is already taken or in use."""


class NamespaceError(KernelError):
    """unshare/setns/clone failed."""


class CgroupError(KernelError):
    """A cgroup file could not be created, written or removed."""


class MountError(KernelError):
    """mount/umount2/pivot_root failed."""


class RootfsError(MiniContainerError):
    """The root filesystem is unusable or a path would escape it."""


class ImageError(MiniContainerError):
    """An image or layer is missing, malformed or unsafe."""


class NetworkError(KernelError):
    """A link, address, route or firewall rule could not be set up."""


class ContainerError(MiniContainerError):
    """A container lifecycle operation is not possible in its current state."""


class ExecError(MiniContainerError):
    """The container's command could not be executed (docker: 126) or found (127)."""

    def __init__(self, message: str, *, exit_code: int = 126, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


def exit_code(wait_status: int) -> int:
    """A ``waitpid`` status as docker reports it: the exit code, or 128+N when killed by signal N."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


def errno_name(err: int) -> str:
    """``errno.EINVAL`` → ``"EINVAL"``; unknown numbers come back as ``"errno 1234"``."""
    return _errno.errorcode.get(err, f"errno {err}")


# Hints that hold whatever the operation: what a learner should check first.
_GENERIC_HINTS = {
    _errno.EPERM: "are you root? (inside a user namespace, root has only the capabilities it was given)",
    _errno.EACCES: "permission denied: are you root, and is the file system writable?",
    _errno.ENOENT: "the path does not exist",
    _errno.ENOSYS: "this kernel does not implement the call",
    _errno.EROFS: "the file system is read-only",
    _errno.ENOSPC: "no space left (or a kernel limit such as max_user_namespaces was reached)",
}


def from_oserror(exc: OSError, op: str, path: str | os.PathLike | None = None, *,
                 cls: type[KernelError] = KernelError, hint: str | None = None) -> KernelError:
    """Translate an ``OSError`` into a :class:`KernelError` subclass.

    The one place where kernel errors become minicontainer errors (psutil's habit). ``hint`` wins over
    the generic hint for the errno. The original exception is kept as ``__cause__`` by the caller's
    ``raise … from exc``.
    """
    err = exc.errno or 0
    if hint is None:
        hint = _GENERIC_HINTS.get(err)
    p = os.fspath(path) if path is not None else (exc.filename if exc.filename else None)
    return cls(op, os.fspath(p) if p is not None else None, err, hint=hint)
