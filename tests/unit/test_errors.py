"""Errors say what failed, where, with the errno's name and a hint."""

import errno

import pytest

from minicontainer import errors


def test_kernel_error_names_operation_path_errno_and_hint():
    exc = errors.from_oserror(OSError(errno.EINVAL, "Invalid argument"), "mount overlay on",
                              "/var/lib/x/merged", cls=errors.MountError,
                              hint="is the overlay module loaded?")
    assert isinstance(exc, errors.MountError) and isinstance(exc, errors.MiniContainerError)
    assert str(exc) == "mount overlay on /var/lib/x/merged: EINVAL — is the overlay module loaded?"
    assert (exc.op, exc.path, exc.errno, exc.errno_name) == ("mount overlay on", "/var/lib/x/merged",
                                                             errno.EINVAL, "EINVAL")


def test_generic_hint_when_the_caller_has_none():
    exc = errors.from_oserror(PermissionError(errno.EPERM, "Operation not permitted"), "unshare")
    assert str(exc).startswith("unshare: EPERM — are you root?")


def test_path_taken_from_the_oserror():
    exc = errors.from_oserror(FileNotFoundError(errno.ENOENT, "No such file", "/nope"), "open")
    assert exc.path == "/nope" and "ENOENT" in str(exc)


def test_unknown_errno_still_readable():
    assert errors.errno_name(4242) == "errno 4242"


@pytest.mark.parametrize("cls,code", [(errors.MiniContainerError, 125), (errors.ConfigError, 125),
                                      (errors.NeedsRootError, 125)])
def test_docker_exit_codes(cls, code):
    assert cls.exit_code == code


def test_exec_error_carries_126_or_127():
    assert errors.ExecError("not found", exit_code=127).exit_code == 127
    assert errors.ExecError("not executable").exit_code == 126


def test_needs_root_says_how():
    assert "sudo" in str(errors.NeedsRootError("minicontainer run"))
