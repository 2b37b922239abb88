"""Security: what root inside a container may not do. Introduced in notebook 07.

Namespaces hide the host; they do not take root's power away. Five mechanisms do, each a field of
the OCI runtime config and each with Docker's default:

- capabilities (:mod:`.capabilities`): Docker's 14 of the kernel's 41 — ``process.capabilities``;
- seccomp (:mod:`.seccomp`): an allowlist of system calls — ``linux.seccomp``;
- no_new_privs: execve never grants privileges again (setuid bits, file capabilities) —
  ``process.noNewPrivileges``;
- device rules (:mod:`.devices`): which device nodes may be opened — ``linux.resources.devices``;
- an AppArmor profile (:mod:`.apparmor`), where the kernel has AppArmor: paths and operations
  refused whatever the capabilities — ``process.apparmorProfile``.

Two steps, split where the start path needs them (the contract in SECURITY_API.md):

    prepared = prepare(ProcessSecurity(capabilities=default_capabilities(),
                                       seccomp=default_seccomp()))   # in the runtime, before fork
    ...                                                              # in the child: pivot, mounts…
    apply(prepared); os.execve(...)                                  # the last step before exec

``prepare`` validates (one-line :class:`SecurityError`) and does all the slow work — names to
numbers, the seccomp profile compiled to BPF (cached), our AppArmor profile loaded into the kernel
(once per boot) — so ``apply`` is a handful of system calls.

Where a runtime calls what (runc's places):

1. before forking the container: ``prepare(...)`` (it also imports what ``apply`` needs: after
   pivot_root the package's files are out of reach);
2. right after creating the container's cgroup, before any process joins it:
   ``devices.apply(cgroup, rules)`` (again when the rules change: the old ones are replaced);
3. in the container's process, after pivot_root, mounts, hostname and cwd, as the very last step
   before execve: ``apply(prepared)`` — nothing after it but execve (and calls in Docker's
   allowlist: close, write to a pipe, rt_sigaction).
"""

from __future__ import annotations

from .._record import factory, record
from ._error import SecurityError
from .capabilities import default_capabilities

__all__ = ["ProcessSecurity", "Prepared", "prepare", "apply", "default_capabilities", "default_seccomp",
           "SecurityError", "to_dict", "from_dict"]


@record
class ProcessSecurity:
    """Mirrors the OCI runtime spec's ``process`` fields (and ``linux.seccomp``)."""
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    umask: int | None = None
    capabilities: dict[str, list[str]] | None = None    # None: keep all (privileged)
    no_new_privileges: bool = False
    seccomp: dict | None = None                          # OCI linux.seccomp; None: no filter
    rlimits: tuple[tuple[str, int, int], ...] = ()       # ("RLIMIT_NOFILE", soft, hard)
    oom_score_adj: int | None = None
    apparmor_profile: str = ""                           # "": none (no AppArmor, or not asked for)


@record
class Prepared:
    """Everything :func:`apply` needs, resolved to numbers: plain data, picklable, fork-safe."""
    uid: int
    gid: int
    groups: tuple[int, ...]
    umask: int | None
    caps: dict[str, int] | None            # set name → mask; None: keep all
    no_new_privileges: bool
    seccomp_program: bytes | None
    seccomp_flags: tuple[str, ...] = ()
    rlimits: tuple[tuple[int, int, int], ...] = ()
    oom_score_adj: int | None = None
    set_ids: bool = True
    summary: dict = factory(dict)   # what `inspect` may show
    apparmor_profile: str = ""      # checked (and our default loaded) by prepare


def to_dict(p: Prepared) -> dict:
    """A :class:`Prepared` as JSON-able data (the program base64), for a process that receives its
    set-up as JSON — the engine's parked container gets it with the request, before pivot_root."""
    import base64
    d = {k: getattr(p, k) for k in ("uid", "gid", "groups", "umask", "caps", "no_new_privileges",
                                     "seccomp_flags", "rlimits", "oom_score_adj", "set_ids", "summary",
                                     "apparmor_profile")}
    d["seccomp_program"] = None if p.seccomp_program is None else base64.b64encode(p.seccomp_program).decode()
    return d


def from_dict(d: dict) -> Prepared:
    """The inverse of :func:`to_dict` (trusted input: it comes from our own runtime)."""
    import base64
    prog = d.get("seccomp_program")
    return Prepared(d["uid"], d["gid"], tuple(d["groups"]), d["umask"], d["caps"], d["no_new_privileges"],
                    None if prog is None else base64.b64decode(prog), tuple(d["seccomp_flags"]),
                    tuple(tuple(r) for r in d["rlimits"]), d["oom_score_adj"], d["set_ids"],
                    summary=d.get("summary") or {}, apparmor_profile=d.get("apparmor_profile") or "")


def default_seccomp(capabilities: dict | None = None, arch: str | None = None) -> dict:
    """Docker's default profile as OCI ``linux.seccomp`` for these OCI ``process.capabilities``
    (None: Docker's default 14) on ``arch`` (uname -m; None: this host). See :mod:`.seccomp`."""
    from .seccomp import default_seccomp as resolve
    return resolve(capabilities, arch)


def _id(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32 - 1:
        raise SecurityError(f"{what} {value!r}: not a valid id", hint="a number from 0 to 4294967294")
    return value


def _rlimits(items) -> tuple[tuple[int, int, int], ...]:
    import resource
    out = []
    for item in items or ():
        try:
            name, soft, hard = item
        except (TypeError, ValueError):
            raise SecurityError(f"rlimit {item!r}: not (name, soft, hard)", hint='e.g. ("RLIMIT_NOFILE", 1024, 4096)') from None
        key = str(name).upper()
        key = key if key.startswith("RLIMIT_") else "RLIMIT_" + key
        num = getattr(resource, key, None)
        if not isinstance(num, int):
            raise SecurityError(f"rlimit {name!r}: unknown", hint="see getrlimit(2): RLIMIT_NOFILE, RLIMIT_NPROC, ...")
        for v in (soft, hard):
            if isinstance(v, bool) or not isinstance(v, int) or v < -1 or 2**63 <= v < 2**64 - 1:
                raise SecurityError(f"rlimit {key} {v!r}: not a number", hint="-1 means unlimited")
        # unlimited: -1 (ours, docker's) or 2**64-1 (the spec's uint64 RLIM_INFINITY, as podman and
        # containerd write it: setrlimit() took it for an int too large for a C long)
        soft = resource.RLIM_INFINITY if soft in (-1, 2**64 - 1) else soft
        hard = resource.RLIM_INFINITY if hard in (-1, 2**64 - 1) else hard
        if hard != resource.RLIM_INFINITY and (soft == resource.RLIM_INFINITY or soft > hard):
            raise SecurityError(f"rlimit {key}: soft {soft} above hard {hard}", hint="soft must be <= hard")
        out.append((num, soft, hard))
    return tuple(out)


def prepare(sec: ProcessSecurity) -> Prepared:
    """Validate and resolve ``sec`` (in the runtime, before forking the container). SecurityError,
    one line, on bad input; the seccomp program comes from the per-profile cache when it can."""
    from . import capabilities as caps_mod
    from . import seccomp as sc
    from .. import syscalls  # noqa: F401 — imported here so that apply() in the child imports nothing
    if not isinstance(sec, ProcessSecurity):
        raise SecurityError(f"{sec!r}: not a ProcessSecurity", hint="build one with ProcessSecurity(...)")
    uid, gid = _id(sec.uid, "uid"), _id(sec.gid, "gid")
    groups = tuple(_id(g, "additional gid") for g in sec.additional_gids or ())
    if sec.umask is not None and (isinstance(sec.umask, bool) or not isinstance(sec.umask, int)
                                  or not 0 <= sec.umask <= 0o777):
        raise SecurityError(f"umask {sec.umask!r}: invalid", hint="an octal mode such as 0o022")
    caps = None if sec.capabilities is None else caps_mod.validate(sec.capabilities)
    if sec.oom_score_adj is not None and (isinstance(sec.oom_score_adj, bool)
                                          or not isinstance(sec.oom_score_adj, int)
                                          or not -1000 <= sec.oom_score_adj <= 1000):
        raise SecurityError(f"oom_score_adj {sec.oom_score_adj!r}: invalid", hint="a number from -1000 to 1000")
    program = None
    flags: tuple[str, ...] = ()
    if sec.seccomp is not None:
        program = sc.compile(sec.seccomp)
        flags = tuple(sec.seccomp.get("flags") or ())
    profile = ""
    if sec.apparmor_profile:
        from . import apparmor
        profile = apparmor.ensure(sec.apparmor_profile)
    summary = {"uid": uid, "gid": gid, "no_new_privileges": bool(sec.no_new_privileges),
               "seccomp": "unconfined" if program is None else sc.key(sec.seccomp),
               "CapBnd": "all" if caps is None else f"{caps['bounding']:016x}",
               "CapEff": "all" if caps is None else f"{caps['effective']:016x}",
               "apparmor": profile}
    return Prepared(uid, gid, groups, sec.umask, caps, bool(sec.no_new_privileges), program, flags,
                    _rlimits(sec.rlimits), sec.oom_score_adj, summary=summary, apparmor_profile=profile)


def apply(p: Prepared, *, apparmor_now: bool = False) -> None:
    """In the container's process, the last step before execve (after pivot_root, mounts, hostname,
    cwd). runc's order, and why:

    1. rlimits and oom_score_adj — lowering oom_score_adj and raising a hard limit need
       CAP_SYS_RESOURCE, gone after step 5;
    2. no_new_privs (prctl) — so that step 7 needs no CAP_SYS_ADMIN;
    3. without no_new_privs: the seccomp filter now, while CAP_SYS_ADMIN is still effective (the
       kernel demands one or the other); the calls that follow (prctl, setresuid, capset) are in
       Docker's allowlist;
    4. the bounding set (PR_CAPBSET_DROP needs CAP_SETPCAP, still effective);
    5. setgroups/setresgid/setresuid, with PR_SET_KEEPCAPS so a non-root uid keeps its permitted set;
    6. capset (effective, permitted, inheritable), then the ambient set; then the umask;
    7. the AppArmor profile: ``exec NAME`` to /proc/thread-self/attr/apparmor/exec — it takes effect
       at execve (runc's exec path puts it here too, after the ids; its start path earlier: the place
       does not change what the program runs under). ``apparmor_now`` (the engine's containers, whose
       PID 1 must die with its monitor): ``changeprofile NAME`` to attr/apparmor/current instead, in
       force at once — a profile change *at* execve clears the parent-death signal, one before it
       does not; what follows is the seccomp load and the execve. The files are 0666 (a non-root
       user may write its own) and Docker's seccomp allows the open and write (``--init``: tini's
       exec takes it, the command it execs inherits it). ``unconfined`` writes nothing: the process
       keeps the runtime's own label — unconfined, unless the runtime is confined itself, and then
       it cannot hand out more than it has;
    8. with no_new_privs: the seccomp filter last, so it does not have to allow our own set-up calls.
    """
    import os
    from . import capabilities as caps_mod
    from .. import syscalls
    if p.seccomp_program is not None:
        from . import seccomp as sc
    if p.rlimits:
        import resource
        for num, soft, hard in p.rlimits:
            try:
                resource.setrlimit(num, (soft, hard))
            except (OSError, ValueError) as exc:
                raise SecurityError(f"setrlimit({num}, {soft}, {hard})", err=getattr(exc, "errno", None) or 1,
                                    hint="raising a hard limit needs CAP_SYS_RESOURCE") from None
    if p.oom_score_adj is not None:
        try:
            fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, str(p.oom_score_adj).encode())
            finally:
                os.close(fd)
        except OSError as exc:
            raise SecurityError(f"write /proc/self/oom_score_adj {p.oom_score_adj}", err=exc.errno,
                                hint="lowering it needs CAP_SYS_RESOURCE") from None
    if p.no_new_privileges:
        try:
            syscalls.set_no_new_privs()
        except Exception as exc:
            raise SecurityError("prctl(PR_SET_NO_NEW_PRIVS)", err=getattr(exc, "errno", None)) from None
    elif p.seccomp_program is not None:
        sc.load(p.seccomp_program, p.seccomp_flags)
    if p.caps is not None:
        held = syscalls.capget()[1]
        caps_mod.drop_bounding(p.caps["bounding"])
    if p.set_ids:
        caps_mod.set_ids(p.uid, p.gid, p.groups, keep_caps=p.caps is not None)
    if p.caps is not None:
        c = p.caps
        # what the runtime itself lacks it cannot give (--privileged on a host whose root has a
        # reduced bounding set): capset would refuse the whole call with EPERM
        have = held
        caps_mod.set_sets(c["effective"] & have, c["permitted"] & have, c["inheritable"] & have,
                          c["ambient"] & have)
    if p.umask is not None:
        os.umask(p.umask)
    if p.apparmor_profile and p.apparmor_profile != "unconfined":
        from . import apparmor        # imported by prepare: after pivot_root no import finds the package
        (apparmor.change_profile if apparmor_now else apparmor.change_onexec)(p.apparmor_profile)
    if p.no_new_privileges and p.seccomp_program is not None:
        sc.load(p.seccomp_program, p.seccomp_flags)
