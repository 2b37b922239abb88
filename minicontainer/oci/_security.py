"""The one place the OCI runtime reaches minicontainer.security (contract: SECURITY_API.md).

``process.capabilities``, ``noNewPrivileges``, ``rlimits``, ``oomScoreAdj``, ``apparmorProfile``,
``linux.seccomp``, the user's ids and ``linux.resources.devices`` are applied by that package: :func:`prepare` before the
fork (validation, the seccomp program compiled), :func:`apply` as the container process's last step
before execve, :func:`apply_devices` on the container's cgroup.

UNTIL THE SECURITY BRANCH IS MERGED: when ``minicontainer.security`` does not exist, a fallback
applies only uid/gid/additionalGids/umask and ignores the rest (capabilities stay as they are,
no seccomp, no device rules, no rlimits) — enough for podman and containerd to run containers, not
the defaults a container deserves. ``AVAILABLE`` tells tests which one they got.
"""
from __future__ import annotations

import importlib.util
import os

AVAILABLE = importlib.util.find_spec("minicontainer.security") is not None


def process_security(proc, seccomp: dict | None, apparmor: str = ""):
    """spec.Process (+ linux.seccomp) → security.ProcessSecurity (or the fallback's). ``apparmor``:
    the container's profile, for an ``exec`` whose process names none (runc's rule)."""
    kwargs = dict(uid=proc.user.uid, gid=proc.user.gid, additional_gids=tuple(proc.user.additional_gids),
                  umask=proc.user.umask, capabilities=proc.capabilities,
                  no_new_privileges=proc.no_new_privileges, seccomp=seccomp,
                  rlimits=tuple(proc.rlimits), oom_score_adj=proc.oom_score_adj)
    if AVAILABLE:
        from ..security import ProcessSecurity
        return ProcessSecurity(**kwargs, apparmor_profile=proc.apparmor_profile or apparmor)
    return _Fallback(kwargs)


def apparmor_enabled() -> bool:
    """For ``features``: does this kernel enforce AppArmor (and can we apply a profile)?"""
    if not AVAILABLE:
        return False
    from ..security.apparmor import enabled
    return enabled()


class _Fallback:
    """Until the security branch is merged: the ids and the umask only."""

    def __init__(self, kw: dict):
        self.uid, self.gid = kw["uid"], kw["gid"]
        self.additional_gids, self.umask = kw["additional_gids"], kw["umask"]


def prepare(sec):
    if AVAILABLE:
        from ..security import prepare as _prepare
        return _prepare(sec)
    return sec


_preloaded = False


def preload() -> None:
    """Import what apply() needs before the container's root replaces the host's. Once per process:
    a later call (stage 2, after unshare(CLONE_NEWUSER)) must not list the package's directory again
    — in a checkout only root may enter (0700), the mapped uid gets EACCES."""
    global _preloaded
    if _preloaded:
        return
    _preloaded = True
    if AVAILABLE:
        import importlib
        from .. import security
        # every module of the package, listed by hand from its directory: pkgutil.iter_modules
        # imports `inspect` (~5 ms, on create's critical path) for the same list
        for name in sorted(os.listdir(security.__path__[0])):
            if name.endswith(".py") and name != "__init__.py":
                importlib.import_module(f"{security.__name__}.{name[:-3]}")
    else:
        from ..errors import from_oserror  # noqa: F401


def apply(prepared) -> None:
    """In the container process, right before execve."""
    if AVAILABLE:
        from ..security import apply as _apply
        _apply(prepared)
        return
    # fallback (until the security branch is merged): groups, then gid, then uid (after setuid we
    # could no longer change the others)
    from ..errors import from_oserror
    try:
        os.setgroups(list(prepared.additional_gids))
        os.setresgid(prepared.gid, prepared.gid, prepared.gid)
        os.setresuid(prepared.uid, prepared.uid, prepared.uid)
    except OSError as exc:
        raise from_oserror(exc, "set user", f"{prepared.uid}:{prepared.gid}") from exc
    if prepared.umask is not None:
        os.umask(prepared.umask)


def apply_devices(cgroup, rules) -> None:
    """``linux.resources.devices`` on the container's cgroup (ignored by the fallback)."""
    if AVAILABLE and rules:
        from ..security import devices
        # runc appends its AllowedDevices (null, zero, full, random, urandom, tty, console, ptmx,
        # /dev/pts/*) after the spec's rules, and clients rely on it: podman's spec denies all and
        # names only extra devices, so without these a `podman run -t` cannot open its pty (EPERM).
        devices.apply(cgroup, list(rules) + [r for r in devices.default_rules() if r["allow"]])
