"""Capabilities: root's power cut into ~41 pieces. Introduced in notebook 07.

A process has five sets (capabilities(7)): *bounding* (the ceiling: what execve can ever grant),
*permitted* (what it may switch on), *effective* (what the kernel checks), *inheritable* and *ambient*
(what survives an execve of an ordinary binary). A default container keeps Docker's 14 capabilities in
bounding, permitted and effective and nothing in inheritable or ambient — CapEff/CapBnd
``00000000a80425fb`` in /proc/self/status. CAP_SYS_ADMIN (mount, most namespaces, bpf…) is not among
them: root in the container is not root on the host.

This module is pure data and parsing (names ↔ numbers, Docker's flags → OCI ``process.capabilities``);
dropping them in the container's process is :func:`drop` — no libcap, just prctl(PR_CAPBSET_DROP),
setresuid with PR_SET_KEEPCAPS, capset (version 3) and the ambient prctl, in runc's order.
"""

from __future__ import annotations

import errno as _errno
import os

from ._error import SecurityError

# linux/capability.h, in number order: NAMES[n] is capability n.
NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
NUMBERS = {name: n for n, name in enumerate(NAMES)}

#: Docker's default set (moby oci/caps/defaults.go), in its order.
DOCKER_DEFAULT = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)
SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")

_last_cap: int | None = None


def last_cap() -> int:
    """The highest capability this kernel knows (/proc/sys/kernel/cap_last_cap; 40 on 5.9+)."""
    global _last_cap
    if _last_cap is None:
        try:
            with open("/proc/sys/kernel/cap_last_cap") as fh:
                _last_cap = int(fh.read())
        except (OSError, ValueError):
            _last_cap = len(NAMES) - 1
    return _last_cap


def name_of(n: int) -> str:
    """3 → ``CAP_FOWNER``; a number newer than our table → ``CAP_41`` (still dropped and kept by number)."""
    return NAMES[n] if 0 <= n < len(NAMES) else f"CAP_{n}"


def number_of(name: str) -> int:
    """``CAP_SYS_ADMIN``, ``sys_admin`` or ``SYS_ADMIN`` → 21; SecurityError for an unknown name."""
    if not isinstance(name, str):
        raise SecurityError(f"capability {name!r}: not a string", hint='write names such as "CAP_NET_ADMIN"')
    key = name.strip().upper()
    if not key.startswith("CAP_"):
        key = "CAP_" + key
    if key in NUMBERS:
        return NUMBERS[key]
    if key[4:].isascii() and key[4:].isdigit():
        return int(key[4:])
    raise SecurityError(f"capability {name!r}: unknown",
                        hint="see capabilities(7); names are like NET_ADMIN or CAP_NET_ADMIN")


def all_names() -> list[str]:
    """Every capability this kernel knows, by name."""
    return [name_of(n) for n in range(last_cap() + 1)]


def bounding_mask() -> int:
    """This process's bounding set (CapBnd in /proc/self/status): the most any child can hold."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return (1 << (last_cap() + 1)) - 1


def available_names() -> list[str]:
    """Every capability this kernel knows *and* this process may still hand on: what
    ``--privileged`` and ``--cap-add ALL`` grant. Docker's rule (moby's caps.GetAllCapabilities, "in
    the current environment"): a runtime inside a container or a VM whose bounding set lacks one
    (CAP_SYS_RESOURCE on this project's CI host) cannot give it, and runc refuses such a config
    outright ("unable to apply caps: operation not permitted")."""
    have = bounding_mask()
    return [name_of(n) for n in range(last_cap() + 1) if have >> n & 1]


def mask(names) -> int:
    """Names → the 64-bit mask /proc/PID/status shows (capabilities above the kernel's last: left out,
    as runc does: a config written for a newer kernel still runs)."""
    m = 0
    top = last_cap()
    for name in names:
        n = number_of(name)
        if n <= top:
            m |= 1 << n
    return m


def names_of(m: int) -> list[str]:
    """A mask (``int("a80425fb", 16)``) → sorted capability names."""
    return [name_of(n) for n in range(64) if m >> n & 1]


def for_user(caps, uid: int = 0) -> dict[str, list[str]]:
    """The OCI ``process.capabilities`` for a container whose set is ``caps``: bounding, permitted and
    effective hold them, inheritable and ambient are empty — and a non-root ``uid`` gets an empty
    effective set, as Docker gives it (its permitted set is lost at execve anyway: a non-root
    process's permitted set after execve is only its ambient set, unless the binary has file caps)."""
    caps = [name_of(number_of(c)) for c in caps]
    return {"bounding": list(caps), "effective": list(caps) if uid == 0 else [],
            "inheritable": [], "permitted": list(caps), "ambient": []}


def default_capabilities(uid: int = 0) -> dict[str, list[str]]:
    """Docker's 14 as OCI ``process.capabilities``."""
    return for_user(DOCKER_DEFAULT, uid)


def from_flags(cap_add=(), cap_drop=(), *, privileged: bool = False, uid: int = 0,
               base=DOCKER_DEFAULT) -> dict[str, list[str]]:
    """``--cap-add``/``--cap-drop`` (names with or without ``CAP_``, any case, or ``ALL``) and
    ``--privileged`` → OCI ``process.capabilities``, with Docker's rules:

    - ``--privileged``: every capability available here (:func:`available_names`; the flags are
      ignored, as in Docker);
    - ``--cap-drop ALL``: start from nothing; ``--cap-add ALL``: start from every available one;
    - a capability both added and dropped is kept (``--cap-add`` wins, as in Docker since 20.10).
    """
    def norm(items, flag):
        out = []
        for c in items:
            if isinstance(c, str) and c.strip().upper() in ("ALL", "CAP_ALL"):
                out.append("ALL")
            else:
                try:
                    out.append(name_of(number_of(c)))
                except SecurityError:
                    raise SecurityError(f"{flag} {c}: unknown capability",
                                        hint="see capabilities(7), e.g. --cap-add NET_ADMIN") from None
        return out

    adds, drops = norm(cap_add, "--cap-add"), norm(cap_drop, "--cap-drop")
    everything = available_names()
    if privileged or "ALL" in adds:
        caps = list(everything) if privileged else [c for c in everything if c not in drops or c in adds]
    else:
        start = [] if "ALL" in drops else [name_of(number_of(c)) for c in base]
        caps = [c for c in start if c not in drops or c in adds]
        caps += [c for c in adds if c not in caps]
    caps.sort(key=number_of)
    return for_user(caps, uid)


def validate(caps: dict) -> dict[str, int]:
    """OCI ``process.capabilities`` → one mask per set; SecurityError on an unknown key or name, or an
    effective/ambient set that permitted (and inheritable, for ambient) do not allow."""
    if not isinstance(caps, dict):
        raise SecurityError(f"capabilities {caps!r}: not an object",
                            hint='expected {"bounding": [...], "effective": [...], ...}')
    unknown = set(caps) - set(SETS)
    if unknown:
        raise SecurityError(f"capabilities: unknown set {sorted(unknown)[0]!r}", hint=f"sets are {', '.join(SETS)}")
    out = {}
    for s in SETS:
        names = caps.get(s) or []
        if not isinstance(names, (list, tuple)):
            raise SecurityError(f"capabilities.{s}: not a list", hint='e.g. ["CAP_CHOWN"]')
        try:
            out[s] = mask(names)
        except SecurityError as exc:
            raise SecurityError(f"capabilities.{s}: {exc.message}", hint=exc.hint) from None
    if out["effective"] & ~out["permitted"]:
        bad = names_of(out["effective"] & ~out["permitted"])[0]
        raise SecurityError(f"capabilities: {bad} is effective but not permitted",
                            hint="the effective set must be part of the permitted set")
    if out["ambient"] & ~(out["permitted"] & out["inheritable"]):
        bad = names_of(out["ambient"] & ~(out["permitted"] & out["inheritable"]))[0]
        raise SecurityError(f"capabilities: ambient {bad} is not both permitted and inheritable",
                            hint="add it to permitted and inheritable too")
    return out


# -- in the container's process ------------------------------------------------------------------

def drop_bounding(keep: int) -> None:
    """prctl(PR_CAPBSET_DROP) every capability not in ``keep``. Needs CAP_SETPCAP in the effective set,
    so it comes before capset; after it, no execve (setuid root binaries included) can get them back."""
    from .. import syscalls
    for n in range(last_cap() + 1):
        if not keep >> n & 1:
            try:
                syscalls.prctl(syscalls.PR_CAPBSET_DROP, n)
            except Exception as exc:  # KernelError
                err = getattr(exc, "errno", None)
                if err == _errno.EINVAL:      # a capability this kernel does not have: nothing to drop
                    continue
                raise SecurityError(f"prctl(PR_CAPBSET_DROP, {name_of(n)})", err=err,
                                    hint="dropping from the bounding set needs CAP_SETPCAP") from None


def set_ids(uid: int, gid: int, groups, keep_caps: bool) -> None:
    """setgroups, setresgid, setresuid — with PR_SET_KEEPCAPS around them when capabilities are to be
    kept: leaving uid 0 otherwise empties permitted and effective (capabilities(7), "Effect of user ID
    changes"), and the later capset could not raise them again. The gid first: after setresuid a
    non-root process has lost CAP_SETGID."""
    from .. import syscalls
    try:
        if keep_caps and uid != 0:
            syscalls.prctl(syscalls.PR_SET_KEEPCAPS, 1)
        step = "setgroups"
        os.setgroups(list(groups))
        step = "setresgid"
        os.setresgid(gid, gid, gid)
        step = "setresuid"
        os.setresuid(uid, uid, uid)
        if keep_caps and uid != 0:
            syscalls.prctl(syscalls.PR_SET_KEEPCAPS, 0)
    except OSError as exc:
        raise SecurityError(f"{step}(uid {uid}, gid {gid})", err=exc.errno,
                            hint="needs CAP_SETUID/CAP_SETGID (and the ids mapped in a user namespace)") from None


def set_sets(effective: int, permitted: int, inheritable: int, ambient: int) -> None:
    """capset (version 3), then the ambient set: cleared, then each one raised (it needs the
    capability in permitted and inheritable, so after capset)."""
    from .. import syscalls
    try:
        syscalls.capset(effective, permitted, inheritable)
    except Exception as exc:
        raise SecurityError("capset", err=getattr(exc, "errno", None),
                            hint=f"effective {effective:016x} permitted {permitted:016x}") from None
    try:
        syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_CLEAR_ALL)
        for n in range(last_cap() + 1):
            if ambient >> n & 1:
                syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_RAISE, n)
    except Exception as exc:
        raise SecurityError("prctl(PR_CAP_AMBIENT)", err=getattr(exc, "errno", None),
                            hint="an ambient capability must be permitted and inheritable") from None
