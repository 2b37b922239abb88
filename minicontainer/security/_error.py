"""The one error type of minicontainer.security (youki's habit: each module its own error type)."""

from __future__ import annotations

from ..errors import MiniContainerError, errno_name


class SecurityError(MiniContainerError):
    """A capability, seccomp profile, device rule or id is invalid, or applying it failed.

    One line: what failed, where, how to fix. ``errno`` is set when the kernel refused."""

    def __init__(self, message: str, *, hint: str | None = None, err: int | None = None):
        self.errno = err
        if err is not None:
            message = f"{message}: {errno_name(err)}"
        super().__init__(message, hint=hint)
