"""The one place the OCI runtime reaches minicontainer.security (notebook 07's package).

``process.capabilities``, ``noNewPrivileges``, ``rlimits``, ``oomScoreAdj``, ``apparmorProfile``,
``linux.seccomp``, the user's ids and ``linux.resources.devices`` are applied by that package, the
same code the engine's start path uses: :func:`prepare` before the fork (validation, the seccomp
program compiled), :func:`apply` as the container process's last step before execve,
:func:`apply_devices` on the container's cgroup. One door, so that the runtime's modules import
nothing of the security package at ``state``/``kill`` time (the CLI's light import path).
"""
from __future__ import annotations

import os


def process_security(proc, seccomp: dict | None, apparmor: str = ""):
    """spec.Process (+ linux.seccomp) → security.ProcessSecurity. ``apparmor``:
    the container's profile, for an ``exec`` whose process names none (runc's rule)."""
    kwargs = dict(uid=proc.user.uid, gid=proc.user.gid, additional_gids=tuple(proc.user.additional_gids),
                  umask=proc.user.umask, capabilities=proc.capabilities,
                  no_new_privileges=proc.no_new_privileges, seccomp=seccomp,
                  rlimits=tuple(proc.rlimits), oom_score_adj=proc.oom_score_adj)
    from ..security import ProcessSecurity
    return ProcessSecurity(**kwargs, apparmor_profile=proc.apparmor_profile or apparmor)


def seccomp_version() -> "str | None":
    """For ``features``: libseccomp's version (``2.5.4``), None when it cannot be loaded."""
    from ..security import seccomp
    try:
        return seccomp.library_version()
    except (ImportError, RuntimeError, OSError, AttributeError):
        return None


def apparmor_enabled() -> bool:
    """For ``features``: does this kernel enforce AppArmor (and can we apply a profile)?"""
    from ..security.apparmor import enabled
    return enabled()


def prepare(sec):
    from ..security import prepare as _prepare
    return _prepare(sec)


_preloaded = False


def preload() -> None:
    """Import what apply() needs before the container's root replaces the host's. Once per process:
    a later call (stage 2, after unshare(CLONE_NEWUSER)) must not list the package's directory again
    — in a checkout only root may enter (0700), the mapped uid gets EACCES."""
    global _preloaded
    if _preloaded:
        return
    _preloaded = True
    import importlib
    from .. import security
    # every module of the package, listed by hand from its directory: pkgutil.iter_modules
    # imports `inspect` (~5 ms, on create's critical path) for the same list
    for name in sorted(os.listdir(security.__path__[0])):
        if name.endswith(".py") and name != "__init__.py":
            importlib.import_module(f"{security.__name__}.{name[:-3]}")


def apply(prepared) -> None:
    """In the container process, right before execve."""
    from ..security import apply as _apply
    _apply(prepared)


def apply_devices(cgroup, rules) -> None:
    """``linux.resources.devices`` on the container's cgroup."""
    if rules:
        from ..security import devices
        # runc appends its AllowedDevices (null, zero, full, random, urandom, tty, console, ptmx,
        # /dev/pts/*) after the spec's rules, and clients rely on it: podman's spec denies all and
        # names only extra devices, so without these a `podman run -t` cannot open its pty (EPERM).
        devices.apply(cgroup, list(rules) + [r for r in devices.default_rules() if r["allow"]])
