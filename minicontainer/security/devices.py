"""Device rules: which device nodes a container may create and open. Introduced in notebook 07.

A device node is a file with a (type, major, minor) triple; whoever may open it reaches the driver —
``c 1:11`` is the kernel log, ``b 8:0`` a whole disk. CAP_MKNOD (one of Docker's 14) lets a container
make any node, so the guard is the cgroup's device controller, checked on mknod and open:

- cgroup v1: the ``devices`` hierarchy's ``devices.deny`` / ``devices.allow`` files (``a`` denies all,
  then ``c 1:3 rwm`` allows /dev/null…);
- cgroup v2 has no such files: the kernel runs a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the
  group for every access, and its return value (1 allow, 0 deny → EPERM) decides. We assemble that
  program by hand from eBPF instructions (:func:`program`) and load it with bpf(2) — what runc's
  libcontainer/cgroups/devices/devicefilter and crun's ebpf.c do. The attached program is held by the
  cgroup: it lives until the group is removed, no fd to keep.

Rules are OCI ``linux.resources.devices`` entries: ``{"allow": bool, "type": "a"|"c"|"b",
"major": int|None, "minor": int|None, "access": "rwm"}``; later rules win over earlier ones.
"""

from __future__ import annotations

import os
import stat
import struct

from ._error import SecurityError

# The default nodes (null, zero, full, random, urandom, tty) and what else a container may open:
# console (5:1), ptmx (5:2) and the pseudo-terminals of its own devpts (136:*).
_DEFAULT = [
    ("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0),
]


def default_nodes() -> list[dict]:
    """OCI ``linux.devices``: the nodes the runtime creates in the container's /dev (console and
    ptmx are made differently: a bind-mounted pty and a symlink to pts/ptmx)."""
    return [{"path": f"/dev/{name}", "type": "c", "major": ma, "minor": mi, "fileMode": 0o666,
             "uid": 0, "gid": 0} for name, ma, mi in _DEFAULT]


#: what ``--privileged`` does not copy from the host's /dev: the container's own file systems, the
#: console (a pty of its own) and ptmx (a link to its devpts) — runc's HostDevices skips the same
_NOT_HOST = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev", "console", "ptmx"}


def host_devices(top: str = "/dev") -> list[str]:
    """Every character and block device under the host's /dev (not following links), but those in
    :data:`_NOT_HOST` and the default nodes: what ``--privileged`` adds to a container's /dev, as
    Docker does (moby's ``oci.WithDevices(HostDevices())``). Root on the host anyway; a learner's
    ``ls /dev`` in a privileged container should show the disks Docker's would."""
    defaults = {f"/dev/{name}" for name, _ma, _mi in _DEFAULT}
    out, todo = [], [top]
    while todo:
        try:
            entries = sorted(os.scandir(todo.pop()), key=lambda e: e.path)
        except OSError:
            continue
        for e in entries:
            if e.name in _NOT_HOST:
                continue
            try:
                mode = e.stat(follow_symlinks=False).st_mode
            except OSError:
                continue                         # gone meanwhile (udev): not a reason to fail
            if stat.S_ISDIR(mode):
                todo.append(e.path)
            elif (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) and e.path not in defaults:
                out.append(e.path)
    return sorted(out)


def default_rules() -> list[dict]:
    """OCI ``linux.resources.devices``: deny everything, then allow the default nodes, console,
    ptmx and pts. (Docker also allows ``mknod`` of any node — ``c *:* m``, ``b *:* m`` — opening it
    still fails; we do not: a node that cannot be opened has no use in a container.)"""
    rules = [{"allow": False, "access": "rwm"}]
    for _name, ma, mi in _DEFAULT + [("console", 5, 1), ("ptmx", 5, 2), ("pts", 136, None)]:
        rules.append({"allow": True, "type": "c", "major": ma, "minor": mi, "access": "rwm"})
    return rules


def validate(rules) -> list[dict]:
    """Normalise rules (type defaults to ``a``, missing/-1 major or minor to any); SecurityError else."""
    if not isinstance(rules, (list, tuple)):
        raise SecurityError("device rules: not a list", hint='e.g. [{"allow": false, "access": "rwm"}]')
    out = []
    for i, r in enumerate(rules):
        where = f"device rule {i} {r!r}"
        if not isinstance(r, dict) or not isinstance(r.get("allow"), bool):
            raise SecurityError(f"{where}: needs \"allow\": true|false", hint='e.g. {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}')
        typ = r.get("type") or "a"
        access = r.get("access") or "rwm"
        if typ not in ("a", "c", "b"):
            raise SecurityError(f"{where}: type {typ!r}", hint='"a" (all), "c" (char) or "b" (block)')
        if not isinstance(access, str) or not access or set(access) - set("rwm") or len(set(access)) != len(access):
            raise SecurityError(f"{where}: access {access!r}", hint='letters from "rwm"')
        nums = []
        for k in ("major", "minor"):
            v = r.get(k)
            if v is None or v == -1:
                nums.append(None)
            elif isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**32:
                raise SecurityError(f"{where}: {k} {v!r}", hint="a number, or leave it out for any")
            else:
                nums.append(v)
        out.append({"allow": r["allow"], "type": typ, "major": nums[0], "minor": nums[1],
                    "access": "".join(ch for ch in "rwm" if ch in access)})
    return out


# -- cgroup v1 --------------------------------------------------------------------------------------

def v1_lines(rules) -> list[tuple[str, str]]:
    """Rules → ``(file, line)`` writes for the v1 controller: ``("devices.deny", "a")``,
    ``("devices.allow", "c 1:3 rwm")``. ``a`` with any numbers is the whole-list reset."""
    out = []
    for r in validate(rules):
        f = "devices.allow" if r["allow"] else "devices.deny"
        if r["type"] == "a" and r["major"] is None and r["minor"] is None and r["access"] == "rwm":
            out.append((f, "a"))
            continue
        ma = "*" if r["major"] is None else r["major"]
        mi = "*" if r["minor"] is None else r["minor"]
        if r["type"] == "a":               # v1 has no "a" with numbers: one line per type
            out += [(f, f"c {ma}:{mi} {r['access']}"), (f, f"b {ma}:{mi} {r['access']}")]
        else:
            out.append((f, f"{r['type']} {ma}:{mi} {r['access']}"))
    return out


# -- cgroup v2: the eBPF program --------------------------------------------------------------------
# struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }; access_type = access << 16 | type
BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR = 1, 2
BPF_DEVCG_ACC_MKNOD, BPF_DEVCG_ACC_READ, BPF_DEVCG_ACC_WRITE = 1, 2, 4
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6               # attach type
BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_DETACH, BPF_PROG_GET_FD_BY_ID, BPF_PROG_QUERY = 5, 8, 9, 13, 16
BPF_F_ALLOW_MULTI = 2

# eBPF opcodes (linux/bpf.h): class | size/op | source
_LDX_W = 0x61                 # BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
_AND64_K, _RSH64_K = 0x57, 0x77
_MOV64_K, _MOV64_X = 0xB7, 0xBF
_JNE_K = 0x55
_EXIT = 0x95


def _ins(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One 8-byte eBPF instruction: u8 code, u8 dst:4|src:4, s16 off, s32 imm."""
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def program(rules) -> bytes:
    """Rules → a BPF_PROG_TYPE_CGROUP_DEVICE program. Registers: r1 = ctx on entry; r2 type,
    r3 access, r4 major, r5 minor. One block per rule, checked last rule first (later rules win);
    a block that matches returns its verdict, one that does not jumps over the rest of itself;
    nothing matched: deny (0). Rules before one that matches everything are left out."""
    rules = validate(rules)
    code = [
        _ins(_LDX_W, 2, 1, 0), _ins(_AND64_K, 2, imm=0xFFFF),     # r2 = type
        _ins(_LDX_W, 3, 1, 0), _ins(_RSH64_K, 3, imm=16),         # r3 = access
        _ins(_LDX_W, 4, 1, 4), _ins(_LDX_W, 5, 1, 8),             # r4 = major, r5 = minor
    ]
    for r in reversed(rules):
        block = []   # list of (code, dst, src, imm, jumps_to_end_of_block)
        if r["type"] != "a":
            block.append((_JNE_K, 2, 0, BPF_DEVCG_DEV_CHAR if r["type"] == "c" else BPF_DEVCG_DEV_BLOCK, True))
        acc = (BPF_DEVCG_ACC_READ if "r" in r["access"] else 0) | (BPF_DEVCG_ACC_WRITE if "w" in r["access"] else 0) \
            | (BPF_DEVCG_ACC_MKNOD if "m" in r["access"] else 0)
        if acc != 7:     # the access asked for must be within the rule's: (r3 & ~acc) == 0
            block += [(_MOV64_X, 1, 3, 0, False), (_AND64_K, 1, 0, ~acc & 0xFFFFFFFF, False), (_JNE_K, 1, 0, 0, True)]
        if r["major"] is not None:
            block.append((_JNE_K, 4, 0, r["major"], True))
        if r["minor"] is not None:
            block.append((_JNE_K, 5, 0, r["minor"], True))
        block += [(_MOV64_K, 0, 0, 1 if r["allow"] else 0, False), (_EXIT, 0, 0, 0, False)]
        n = len(block)
        for i, (c, dst, src, imm, jumps) in enumerate(block):
            imm = imm - 2**32 if imm >= 2**31 else imm
            code.append(_ins(c, dst, src, off=(n - i - 1) if jumps else 0, imm=imm))
        if n == 2:
            # matches everything (``a *:* rwm``): what follows could never run, and the verifier
            # rejects a program with unreachable instructions (EINVAL before it looks at any)
            return b"".join(code)
    code += [_ins(_MOV64_K, 0, imm=0), _ins(_EXIT)]
    return b"".join(code)


def load_program(rules) -> int:
    """bpf(BPF_PROG_LOAD) the program; returns its fd (close it once attached).

    Loaded without a verifier log first: with a log the kernel fails the load with ENOSPC as soon as
    the log outgrows its buffer, even for a program it accepts (containerd's default device list,
    ~80 instructions, did so with 4 KiB). Only a refused program is loaded again, with a large log,
    to name the verifier's reason — the way runc's ebpf library does it."""
    insns = program(rules)
    try:
        return _prog_load(insns, 0)
    except Exception as exc:
        err = getattr(exc, "errno", None)
    try:
        return _prog_load(insns, 1 << 20)   # the same refusal again, now with the verifier's words
    except _LoadRefused as again:
        reason = again.log
    except Exception:                       # noqa: BLE001 — the first error is the one to report
        reason = ""
    raise SecurityError("bpf(BPF_PROG_LOAD) device program", err=err,
                        hint=reason or "needs CAP_SYS_ADMIN/CAP_BPF") from None


class _LoadRefused(Exception):
    def __init__(self, log: str):
        super().__init__(log)
        self.log = log


def _prog_load(insns: bytes, log_size: int) -> int:
    import ctypes
    from .. import syscalls
    ibuf = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(b"MIT")
    log = ctypes.create_string_buffer(log_size or 1)
    attr = bytearray(128)
    struct.pack_into("<IIQQIIQ", attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE, len(insns) // 8,
                     ctypes.addressof(ibuf), ctypes.addressof(lic), 1 if log_size else 0, log_size,
                     ctypes.addressof(log) if log_size else 0)
    attr[48:48 + 11] = b"mc_devices\0"         # prog_name, shown by bpftool
    try:
        return syscalls.bpf(BPF_PROG_LOAD, attr, "BPF_PROG_TYPE_CGROUP_DEVICE")
    except Exception:
        if not log_size:
            raise
        lines = log.value.decode(errors="replace").strip().splitlines()
        raise _LoadRefused(lines[-1] if lines else "") from None


def attach(dirfd: int, prog_fd: int, where: str = "") -> None:
    """bpf(BPF_PROG_ATTACH) to the cgroup directory ``dirfd`` as its device program. ALLOW_MULTI, as
    runc: a program attached higher up (systemd's) still runs; every program must allow."""
    from .. import syscalls
    attr = bytearray(struct.pack("<IIII", dirfd, prog_fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)) + bytes(16)
    try:
        syscalls.bpf(BPF_PROG_ATTACH, attr, where)
    except Exception as exc:
        raise SecurityError(f"bpf(BPF_PROG_ATTACH) {where}", err=getattr(exc, "errno", None),
                            hint="needs CAP_SYS_ADMIN, and a cgroup v2 directory") from None


def attached(dirfd: int, where: str = "") -> list[int]:
    """Ids of the device programs attached directly to the cgroup ``dirfd`` (BPF_PROG_QUERY)."""
    import ctypes
    from .. import syscalls
    ids = (ctypes.c_uint32 * 64)()
    attr = bytearray(struct.pack("<IIIIQI", dirfd, BPF_CGROUP_DEVICE, 0, 0, ctypes.addressof(ids), 64)) + bytes(8)
    try:
        syscalls.bpf(BPF_PROG_QUERY, attr, where)
    except Exception as exc:
        raise SecurityError(f"bpf(BPF_PROG_QUERY) {where}", err=getattr(exc, "errno", None)) from None
    count = struct.unpack_from("<I", attr, 24)[0]
    return list(ids[:min(count, 64)])


def detach(dirfd: int, prog_id: int, where: str = "") -> None:
    """Detach one program (by id) from the cgroup ``dirfd``."""
    from .. import syscalls
    try:
        fd = syscalls.bpf(BPF_PROG_GET_FD_BY_ID, bytearray(struct.pack("<I", prog_id)) + bytes(12), where)
    except Exception as exc:
        if getattr(exc, "errno", None) == 2:      # ENOENT: gone already
            return
        raise SecurityError(f"bpf(BPF_PROG_GET_FD_BY_ID {prog_id}) {where}", err=getattr(exc, "errno", None)) from None
    try:
        syscalls.bpf(BPF_PROG_DETACH, bytearray(struct.pack("<IIII", dirfd, fd, BPF_CGROUP_DEVICE, 0)) + bytes(16), where)
    except Exception as exc:
        raise SecurityError(f"bpf(BPF_PROG_DETACH) {where}", err=getattr(exc, "errno", None)) from None
    finally:
        os.close(fd)


def apply(cgroup, rules) -> None:
    """Apply ``rules`` to a :class:`minicontainer.cgroups.Cgroup`: v1 writes the devices files, v2
    attaches the program to the group's directory. Before the container's process runs in it."""
    rules = validate(rules)
    backend = cgroup.backend
    d = backend.where(cgroup.name, "devices")        # a string: no pathlib on the OCI start path
    if getattr(backend, "version", None) == 2:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            old = attached(fd, d)
            prog = load_program(rules)
            try:
                attach(fd, prog, d)
            finally:
                os.close(prog)            # the cgroup holds the program now
            # runc's order: the new program first, then the old ones go, so that no moment
            # is without rules (ALLOW_MULTI runs them all: an old stricter one would still deny)
            for prog_id in old:
                detach(fd, prog_id, d)
        finally:
            os.close(fd)
        return
    if d is None:
        raise SecurityError(f"device rules for cgroup {cgroup.name}: no v1 devices hierarchy",
                            hint="mount it (mount -t cgroup -o devices none /sys/fs/cgroup/devices)")
    for fname, line in v1_lines(rules):
        try:
            fd = os.open(os.path.join(d, fname), os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            raise SecurityError(f"write {line!r} to {os.path.join(d, fname)}", err=exc.errno,
                                hint="v1 allows only what the parent group allows") from None


# -- --device HOST[:CTR][:rwm] -----------------------------------------------------------------------

def parse_device(spec: str) -> tuple[str, str, str]:
    """``--device`` → (host path, container path, access): ``/dev/fuse``, ``/dev/sdc:/dev/xvdc``,
    ``/dev/kvm:rw``, ``/dev/sdc:/dev/xvdc:r``. No stat: pure parsing."""
    if not isinstance(spec, str) or not spec:
        raise SecurityError(f"--device {spec!r}: empty", hint="--device HOST[:CONTAINER][:rwm]")
    parts = spec.split(":")
    access = "rwm"
    if len(parts) > 1 and parts[-1] and not set(parts[-1]) - set("rwm") and not parts[-1].startswith("/"):
        access = parts.pop()
    if len(parts) > 2 or not parts[0]:
        raise SecurityError(f"--device {spec}: invalid", hint="--device HOST[:CONTAINER][:rwm], e.g. /dev/fuse:/dev/fuse:rwm")
    host = parts[0]
    ctr = parts[1] if len(parts) == 2 and parts[1] else host
    for p in (host, ctr):
        if not p.startswith("/"):
            raise SecurityError(f"--device {spec}: {p!r} is not an absolute path", hint="e.g. /dev/fuse")
    if len(set(access)) != len(access):
        raise SecurityError(f"--device {spec}: access {access!r}", hint='letters from "rwm", each once')
    return host, os.path.normpath(ctr), "".join(ch for ch in "rwm" if ch in access)


def from_host(spec: str) -> tuple[dict, dict]:
    """``--device`` → (OCI ``linux.devices`` entry, ``linux.resources.devices`` allow rule), from a
    stat of the host's node (its type, numbers, mode and owner, as Docker copies them)."""
    return host_node(*parse_device(spec))


def host_node(host: str, ctr: str | None = None, access: str = "rwm") -> tuple[dict, dict]:
    """The host's node ``host`` at ``ctr`` (the same path by default) — by path, not a --device spec:
    ``--privileged`` passes names such as /dev/bsg/0:0:0:0, which a spec would split at the colons."""
    ctr = ctr or host
    try:
        st = os.stat(host)
    except OSError as exc:
        raise SecurityError(f"--device {host}", err=exc.errno, hint="no such device on this host") from None
    if stat.S_ISCHR(st.st_mode):
        typ = "c"
    elif stat.S_ISBLK(st.st_mode):
        typ = "b"
    else:
        raise SecurityError(f"--device {host}: not a device node", hint="give a character or block device")
    ma, mi = os.major(st.st_rdev), os.minor(st.st_rdev)
    node = {"path": ctr, "type": typ, "major": ma, "minor": mi, "fileMode": stat.S_IMODE(st.st_mode),
            "uid": st.st_uid, "gid": st.st_gid}
    return node, {"allow": True, "type": typ, "major": ma, "minor": mi, "access": access}


__all__ = ["default_nodes", "default_rules", "validate", "v1_lines", "program", "load_program", "attach",
           "attached", "detach",
           "apply", "parse_device", "from_host", "host_node"]
