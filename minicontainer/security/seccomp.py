"""seccomp: which system calls the container may make at all. Introduced in notebook 07.

The kernel runs a classic-BPF program on every system call of a filtered process; it sees the call's
number, the architecture and the six argument registers (never memory behind pointers) and answers
allow, an errno, or kill. Docker's default profile (profiles/default.json, restated from moby's) is an
allowlist: ~350 calls allowed, everything else EPERM, some calls allowed only with a capability
(mount with CAP_SYS_ADMIN, ptrace with CAP_SYS_PTRACE…) or on one architecture.

Three formats, one path:

- Docker's JSON (``--security-opt seccomp=FILE.json``): ``archMap`` and rules with ``includes``/
  ``excludes`` on capabilities, architectures and kernel versions — resolved by :func:`to_oci` for
  one container's capabilities and this host's architecture, as dockerd does before calling runc;
- the OCI ``linux.seccomp`` object (what :func:`to_oci` returns and a bundle's config.json holds);
- the BPF program: :func:`compile` turns the OCI object into bytes with libseccomp (PyPI's
  ``pyseccomp``, a ctypes binding over Debian's libseccomp2), once per profile (cached in memory and
  in the state root), so a container start only calls seccomp(2) with ready bytes (:func:`load`).

ENOSYS for calls newer than the profile: a call the profile has never heard of must look like a
kernel that lacks it (ENOSYS), not like a refusal (EPERM), or glibc does not fall back to the old call
(clone3 → clone, faccessat2 → faccessat). runc patches libseccomp's program with a stub in front:
"if the number is above the highest this profile names, for this architecture, return ENOSYS". So do
we (:func:`_enosys_stub`). Rejected: listing future calls explicitly (the list would always be late).
"""

from __future__ import annotations

import errno as _errno
import os
import struct
import sys

from .. import fastjson as json   # loads/dumps without the json package's import (fastjson.py)
from ._error import SecurityError

ACTIONS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
           "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG")
OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
       "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
# SCMP_ARCH_* → AUDIT_ARCH_* (linux/audit.h): what seccomp_data.arch holds
ARCHES = {"SCMP_ARCH_X86": 0x40000003, "SCMP_ARCH_X86_64": 0xC000003E, "SCMP_ARCH_X32": 0x4000003E,
          "SCMP_ARCH_ARM": 0x40000028, "SCMP_ARCH_AARCH64": 0xC00000B7}
_X32_BIT = 0x40000000
# uname -m → (Docker's Go name used in includes/excludes, libseccomp's native arch)
_MACHINE = {"x86_64": ("amd64", "SCMP_ARCH_X86_64"), "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
            "i686": ("386", "SCMP_ARCH_X86"), "armv7l": ("arm", "SCMP_ARCH_ARM")}

_memory_cache: dict[str, bytes] = {}
_FORMAT = 2     # bump when _compile or the stub change: cached programs of older code are not reused


def host_arch() -> tuple[str, str]:
    m = os.uname().machine
    if m not in _MACHINE:
        raise SecurityError(f"seccomp: architecture {m} not supported", hint="use --security-opt seccomp=unconfined")
    return _MACHINE[m]


def docker_default() -> dict:
    """Docker's default profile, in Docker's format (with includes/excludes), as shipped."""
    with open(os.path.join(os.path.dirname(__file__), "profiles", "default.json"), "rb") as fh:
        return json.loads(fh.read())


def _kernel_at_least(version: str) -> bool:
    def nums(v):
        out = []
        for part in v.split("-")[0].split(".")[:2]:
            out.append(int("".join(ch for ch in part if ch.isdigit()) or 0))
        return tuple(out + [0] * (2 - len(out)))
    try:
        return nums(os.uname().release) >= nums(str(version))
    except ValueError:
        raise SecurityError(f"seccomp: minKernel {version!r}: not a version", hint='write e.g. "4.8"') from None


def to_oci(profile: dict, bounding=None, arch: str | None = None) -> dict:
    """Docker's profile format → OCI ``linux.seccomp`` for a container whose bounding set is
    ``bounding`` (names; None: Docker's default 14) on ``arch`` (uname -m; None: this host),
    exactly as dockerd resolves it: ``archMap`` entries of this architecture give the architectures,
    a rule is kept if all its ``includes`` hold (caps in the bounding set, this arch, kernel ≥
    minKernel) and none of its ``excludes`` does. An OCI object (no includes) passes through."""
    from .capabilities import DOCKER_DEFAULT, name_of, number_of
    if not isinstance(profile, dict):
        raise SecurityError("seccomp profile: not a JSON object", hint='expected {"defaultAction": ..., "syscalls": [...]}')
    go_arch, native = _MACHINE.get(arch or os.uname().machine) or host_arch()
    caps = {name_of(number_of(c)) for c in (DOCKER_DEFAULT if bounding is None else bounding)}
    if profile.get("architectures") and profile.get("archMap"):
        raise SecurityError("seccomp profile: both architectures and archMap",
                            hint="use archMap (Docker) or architectures (OCI), not both")
    out = {"defaultAction": profile.get("defaultAction")}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    archs = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        if isinstance(entry, dict) and entry.get("architecture") == native:
            archs += [native] + list(entry.get("subArchitectures") or [])
    if archs:
        out["architectures"] = archs
    if profile.get("flags"):
        out["flags"] = list(profile["flags"])
    rules = []
    for i, rule in enumerate(profile.get("syscalls") or []):
        if not isinstance(rule, dict):
            raise SecurityError(f"seccomp profile: syscalls[{i}]: not an object", hint='e.g. {"names": ["read"], "action": "SCMP_ACT_ALLOW"}')
        if rule.get("name") and rule.get("names"):
            raise SecurityError(f"seccomp profile: syscalls[{i}]: both name and names", hint="use names")
        inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
        if exc.get("arches") and go_arch in exc["arches"]:
            continue
        if exc.get("caps") and any(name_of(number_of(c)) in caps for c in exc["caps"]):
            continue
        if exc.get("minKernel") and _kernel_at_least(exc["minKernel"]):
            continue
        if inc.get("arches") and go_arch not in inc["arches"]:
            continue
        if inc.get("caps") and not all(name_of(number_of(c)) in caps for c in inc["caps"]):
            continue
        if inc.get("minKernel") and not _kernel_at_least(inc["minKernel"]):
            continue
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        new = {"names": list(names) if isinstance(names, list) else names,
               "action": rule.get("action")}
        for key in ("errnoRet", "args"):
            if rule.get(key) is not None:
                new[key] = rule[key]
        rules.append(new)
    out["syscalls"] = rules
    validate(out)
    return out


def default_seccomp(capabilities: dict | None = None, arch: str | None = None) -> dict:
    """Docker's default profile as OCI ``linux.seccomp`` for these OCI ``process.capabilities``
    (None: Docker's default 14) on ``arch`` (uname -m; None: this host)."""
    bounding = None if capabilities is None else (capabilities.get("bounding") or [])
    return to_oci(docker_default(), bounding, arch)


def from_option(value: str, capabilities: dict | None = None) -> dict | None:
    """``--security-opt seccomp=VALUE``: ``unconfined`` → None (no filter), ``builtin``/``default`` →
    the default profile, else a JSON file in Docker's (or OCI's) format → OCI ``linux.seccomp``."""
    if value == "unconfined":
        return None
    if value in ("builtin", "default", ""):
        return default_seccomp(capabilities)
    try:
        with open(value, "rb") as fh:
            profile = json.loads(fh.read())
    except OSError as exc:
        raise SecurityError(f"seccomp profile {value}", err=exc.errno, hint="give the path of a JSON file") from None
    except ValueError as exc:
        raise SecurityError(f"seccomp profile {value}: not JSON ({str(exc).splitlines()[0]})",
                            hint="see Docker's profiles/seccomp/default.json for the format") from None
    bounding = None if capabilities is None else (capabilities.get("bounding") or [])
    try:
        return to_oci(profile, bounding)
    except SecurityError as exc:
        raise SecurityError(f"{value}: {exc.message}", hint=exc.hint) from None


def _errno_of(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 4095:
        raise SecurityError(f"seccomp: {where} {value!r}: not an errno", hint="a number from 1 to 4095, e.g. 1 (EPERM)")
    return value


def validate(seccomp: dict) -> None:
    """Check an OCI ``linux.seccomp`` object; SecurityError (one line) on the first problem."""
    if not isinstance(seccomp, dict):
        raise SecurityError("seccomp: not an object", hint='expected {"defaultAction": ..., "syscalls": [...]}')
    if "archMap" in seccomp:
        raise SecurityError("seccomp: archMap in an OCI profile (Docker's format)",
                            hint="convert it first: security.seccomp.to_oci(profile) or from_option(path)")
    if seccomp.get("defaultAction") not in ACTIONS:
        raise SecurityError(f"seccomp: defaultAction {seccomp.get('defaultAction')!r}: unknown",
                            hint=f"one of {', '.join(ACTIONS)}")
    if seccomp.get("defaultErrnoRet") is not None:
        _errno_of(seccomp["defaultErrnoRet"], "defaultErrnoRet")
    for a in seccomp.get("architectures") or []:
        if a not in ARCHES:
            raise SecurityError(f"seccomp: architecture {a!r}: unknown", hint=f"one of {', '.join(ARCHES)}")
    for fl in seccomp.get("flags") or []:
        if fl not in ("SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"):
            raise SecurityError(f"seccomp: flag {fl!r}: not supported", hint="SECCOMP_FILTER_FLAG_LOG or _SPEC_ALLOW")
    rules = seccomp.get("syscalls") or []
    if not isinstance(rules, list):
        raise SecurityError("seccomp: syscalls: not a list", hint='e.g. [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]')
    for i, rule in enumerate(rules):
        where = f"seccomp: syscalls[{i}]"
        if not isinstance(rule, dict):
            raise SecurityError(f"{where}: not an object", hint='e.g. {"names": ["read"], "action": "SCMP_ACT_ALLOW"}')
        docker = [k for k in ("includes", "excludes", "name") if k in rule]
        if docker:
            # applied as they stand, a rule meant only "with CAP_SYS_ADMIN" would hold for everyone
            raise SecurityError(f"{where}: {docker[0]} in an OCI profile (Docker's format)",
                                hint="convert it first: security.seccomp.to_oci(profile) or from_option(path)")
        names = rule.get("names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise SecurityError(f"{where}: names {names!r}: not a list of syscall names", hint='e.g. ["read", "write"]')
        if rule.get("action") not in ACTIONS:
            raise SecurityError(f"{where}: action {rule.get('action')!r}: unknown", hint=f"one of {', '.join(ACTIONS)}")
        if rule.get("errnoRet") is not None:
            _errno_of(rule["errnoRet"], f"syscalls[{i}].errnoRet")
        args = rule.get("args") or []
        if not isinstance(args, list) or len(args) > 6:
            raise SecurityError(f"{where}: args: not a list of at most 6 conditions", hint='e.g. [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]')
        for a in args:
            ok = isinstance(a, dict) and a.get("op") in OPS and isinstance(a.get("index"), int) \
                and 0 <= a["index"] <= 5 and isinstance(a.get("value", 0), int) and isinstance(a.get("valueTwo", 0), int)
            if not ok:
                raise SecurityError(f"{where}: argument condition {a!r}: invalid",
                                    hint=f"index 0-5, integer value/valueTwo, op one of {', '.join(OPS)}")


def _action(name: str, errno_ret: int | None, default_errno: int | None) -> int:
    ret = _errno.EPERM if errno_ret is None else errno_ret
    if name == "SCMP_ACT_ERRNO":
        return 0x00050000 | (ret if errno_ret is not None else (default_errno or _errno.EPERM))
    return {"SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000,
            "SCMP_ACT_KILL_PROCESS": 0x80000000, "SCMP_ACT_TRAP": 0x00030000,
            "SCMP_ACT_TRACE": 0x7FF00000 | ret, "SCMP_ACT_ALLOW": 0x7FFF0000,
            "SCMP_ACT_LOG": 0x7FFC0000}[name]


def key(seccomp: dict) -> str:
    """The cache key of a profile: its canonical JSON and what shapes the program (arch, libseccomp)."""
    try:
        from _blake2 import blake2b      # not hashlib: its OpenSSL import costs ~5 ms per start
    except ImportError:
        from hashlib import blake2b
    # no sort_keys: the C encoder, ~10x faster; another key order is only a cache miss, never a wrong hit
    blob = json.dumps(seccomp, separators=(",", ":")) + f"|{os.uname().machine}|{_FORMAT}"
    return blake2b(blob.encode(), digest_size=16).hexdigest()


def _cache_dir() -> str:
    from .. import paths
    # a string, not paths.state_root()'s Path: pathlib's import (re, enum) would be paid by every
    # `minicontainer-oci create` (cgroups/v1.py says why)
    return os.path.join(paths._state_root(), "seccomp")


def compile(seccomp: dict, *, cache: bool = True) -> bytes:
    """OCI ``linux.seccomp`` → the BPF program (bytes of ``struct sock_filter``), through libseccomp.

    Cached per profile: in memory and as ``<state root>/seccomp/<key>.bpf`` (root-only), so the
    engine's start path and a new process pay only for a file read."""
    validate(seccomp)
    k = key(seccomp)
    if cache and k in _memory_cache:
        return _memory_cache[k]
    path = None
    if cache:
        path = os.path.join(_cache_dir(), f"{k}.bpf")
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                # a program someone else could have written is no filter: trust only our own
                prog = fh.read() if st.st_uid == os.geteuid() and not st.st_mode & 0o022 else b""
            if prog and len(prog) % 8 == 0:
                _memory_cache[k] = prog
                return prog
        except OSError:
            pass
    prog = _compile(seccomp)
    if cache:
        _memory_cache[k] = prog
        try:
            from .. import private
            private.make_dir(os.path.dirname(path))
            private.write(path, prog)
        except OSError:
            pass    # a cache we cannot write is only slower
    return prog


def libseccomp():
    """The ``pyseccomp`` module. The installed commands start Python with ``-S`` (no ``site``: a
    lighter start, and ``minicontainer-oci`` needs only the standard library otherwise), so the
    venv's site-packages is not on the path yet the first time a profile misses the cache: add it
    then, as ``python`` without -S would have at start (client.main does the same for the engine).
    Rejected: importing ``site`` in the launchers — every ``state`` and ``kill`` would pay for it."""
    try:
        import pyseccomp
        return pyseccomp
    except ImportError:
        if not sys.flags.no_site:
            raise
    import site
    site.main()
    import pyseccomp
    return pyseccomp


def library_version() -> str:
    """libseccomp's own version (``2.5.4``): what ``minicontainer-oci features`` reports, as runc."""
    import ctypes
    ps = libseccomp()
    fn = ctypes.CDLL(ps._libseccomp._name).seccomp_version     # a handle of our own: no restype shared
    fn.restype = ctypes.POINTER(ctypes.c_uint * 3)
    return ".".join(map(str, fn().contents))


def _compile(seccomp: dict) -> bytes:
    try:
        ps = libseccomp()
    except (ImportError, RuntimeError) as exc:
        raise SecurityError(f"seccomp: libseccomp unavailable ({exc})",
                            hint="apt-get install libseccomp2 and pip install pyseccomp") from None
    default_errno = seccomp.get("defaultErrnoRet")
    default = _action(seccomp["defaultAction"], default_errno, None)
    flt = ps.SyscallFilter(default)
    flt.set_attr(ps.Attr.CTL_NNP, 0)           # we set no_new_privs ourselves, in apply()
    # A binary tree of syscall numbers per architecture, not libseccomp's default linear list: a
    # call is found in ~log2(n) compares instead of up to n, and the kernel's x86 JIT, which
    # repeats its passes until every jump's size settles, settles sooner on short jumps — Docker's
    # profile (3 architectures) loads in 2/3 of the time though its program is longer (bench/README).
    # Same semantics (libseccomp's guarantee); a libseccomp before 2.5 has no such level: linear.
    try:
        flt.set_attr(ps.Attr.CTL_OPTIMIZE, 2)
    except (OSError, ValueError, AttributeError):
        pass
    native = host_arch()[1]
    arches = [a for a in (seccomp.get("architectures") or []) if a != native]
    try:
        for a in arches:
            flt.add_arch(ARCHES[a])
    except OSError as exc:
        raise SecurityError(f"seccomp: add architecture {a}", err=exc.errno,
                            hint="libseccomp does not support it on this host") from None
    for i, rule in enumerate(seccomp.get("syscalls") or []):
        action = _action(rule["action"], rule.get("errnoRet"), None)   # OCI: a rule's errno defaults to EPERM
        if action == default:
            continue                           # libseccomp refuses a rule equal to the default
        args = rule.get("args") or []
        conds = [ps.Arg(a["index"], OPS[a["op"]], a.get("value", 0) & (2**64 - 1),
                        a.get("valueTwo", 0) & (2**64 - 1)) for a in args]
        # runc's rule: conditions on different arguments must all hold (one rule); several on the
        # same argument are alternatives (one rule each) — libseccomp cannot AND two on one argument
        indexes = [a["index"] for a in args]
        groups = [conds] if len(set(indexes)) == len(indexes) else [[c] for c in conds]
        for name in rule["names"]:
            nr = ps.resolve_syscall(ps.Arch.NATIVE, name)
            if nr == -1:
                continue                       # unknown to this libseccomp: skipped, as runc does
            for g in groups:
                try:
                    flt.add_rule(action, nr, *g)
                except OSError as exc:
                    raise SecurityError(f"seccomp: syscalls[{i}] {name}: libseccomp rule", err=exc.errno,
                                        hint="check its args (index, op, value)") from None
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    try:
        flt.export_bpf(_Fd(fd))
        prog = os.pread(fd, os.fstat(fd).st_size, 0)
    except OSError as exc:
        raise SecurityError("seccomp: export the BPF program", err=exc.errno) from None
    finally:
        os.close(fd)
    return _enosys_stub(seccomp, ps) + prog


class _Fd:
    def __init__(self, fd: int):
        self._fd = fd

    def fileno(self) -> int:
        return self._fd


# -- the ENOSYS stub (classic BPF, struct sock_filter: u16 code, u8 jt, u8 jf, u32 k) -------------
_LD_W_ABS = 0x20        # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15           # BPF_JMP | BPF_JEQ | BPF_K
_JGT_K = 0x25
_JSET_K = 0x45
_JA = 0x05
_RET_K = 0x06
_OFF_NR, _OFF_ARCH = 0, 4       # struct seccomp_data


def _highest(seccomp: dict, ps) -> dict[str, int]:
    """For each architecture of the filter, the highest syscall number the profile names there."""
    names = {n for rule in seccomp.get("syscalls") or [] for n in rule["names"]}
    out = {}
    native = host_arch()[1]
    for a in dict.fromkeys([native] + list(seccomp.get("architectures") or [])):
        audit = getattr(ps.Arch, a[len("SCMP_ARCH_"):])
        nrs = [ps.resolve_syscall(audit, n) for n in names]
        nrs = [n for n in nrs if n >= 0]
        if nrs:
            out[a] = max(nrs)
    return out


def _enosys_stub(seccomp: dict, ps) -> bytes:
    """runc's patch (libcontainer/seccomp/patchbpf), smaller: per architecture, a number above the
    highest the profile names returns ENOSYS; everything else falls through to libseccomp's program.
    x86_64 and x32 share AUDIT_ARCH_X86_64; x32 numbers carry bit 30."""
    if seccomp["defaultAction"] == "SCMP_ACT_ALLOW":
        return b""                         # a denylist: unknown calls are allowed anyway
    high = _highest(seccomp, ps)
    # assemble with symbolic targets: ("jump", code, k, jt_label, jf_label) / ("ins", code, k) / label
    prog: list = []
    by_audit: dict[int, dict[str, int]] = {}
    for a, hi in high.items():
        audit = ARCHES["SCMP_ARCH_X86_64"] if a == "SCMP_ARCH_X32" else ARCHES[a]
        by_audit.setdefault(audit, {})[a] = hi
    for i, (audit, entries) in enumerate(by_audit.items()):
        nxt = f"arch{i + 1}"
        prog += [("ins", _LD_W_ABS, _OFF_ARCH), ("jmp", _JEQ_K, audit, None, nxt),
                 ("ins", _LD_W_ABS, _OFF_NR)]
        if "SCMP_ARCH_X32" in entries:
            prog.append(("jmp", _JSET_K, _X32_BIT, f"x32_{i}", None))
        main = entries.get("SCMP_ARCH_X86_64", entries.get("SCMP_ARCH_AARCH64",
                           next((v for k2, v in entries.items() if k2 != "SCMP_ARCH_X32"), None)))
        if main is not None:
            prog += [("jmp", _JGT_K, main, "enosys", None), ("ja", "end")]
        else:
            prog.append(("ja", "end"))
        if "SCMP_ARCH_X32" in entries:
            prog += [f"x32_{i}", ("jmp", _JGT_K, entries["SCMP_ARCH_X32"], "enosys", None), ("ja", "end")]
        prog.append(nxt)
    prog += [("ja", "end"), "enosys", ("ins", _RET_K, 0x00050000 | _errno.ENOSYS), "end"]
    # resolve labels
    pos, labels = 0, {}
    for item in prog:
        if isinstance(item, str):
            labels[item] = pos
        else:
            pos += 1
    out = bytearray()
    pos = 0
    for item in prog:
        if isinstance(item, str):
            continue
        pos += 1                            # jumps are relative to the next instruction
        if item[0] == "ins":
            out += struct.pack("=HBBI", item[1], 0, 0, item[2])
        elif item[0] == "ja":
            out += struct.pack("=HBBI", _JA, 0, 0, labels[item[1]] - pos)
        else:
            _, code, k, jt, jf = item
            t = labels[jt] - pos if jt else 0
            f = labels[jf] - pos if jf else 0
            if not (0 <= t < 256 and 0 <= f < 256):
                raise SecurityError("seccomp: ENOSYS stub too long", hint="a bug: report it")
            out += struct.pack("=HBBI", code, t, f, k & 0xFFFFFFFF)
    return bytes(out)


def load(program: bytes, flags=()) -> None:
    """Install the program on the calling thread (the last filter wins nothing: all of them run and
    the strictest answer counts). Needs no_new_privs or CAP_SYS_ADMIN."""
    from .. import syscalls
    bits = {"SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4}
    try:
        syscalls.seccomp_set_mode_filter(program, sum(bits[f] for f in flags))
    except Exception as exc:
        err = getattr(exc, "errno", None)
        raise SecurityError("seccomp(SECCOMP_SET_MODE_FILTER)", err=err,
                            hint="set no_new_privileges, or load it while CAP_SYS_ADMIN is held"
                            if err == _errno.EACCES else "a malformed program") from None
