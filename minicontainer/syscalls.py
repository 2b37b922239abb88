"""The raw system calls, through ctypes. The only module that talks to libc directly.

Introduced in notebook 00; notebooks 01 (namespaces) and 03 (rootfs) explain each call in depth.

Python's ``os`` module has ``os.unshare`` and ``os.setns`` (3.12+) but no ``mount``, ``umount2``,
``pivot_root`` or ``sethostname``; we go through libc for all of them so that every call has the
same shape: arguments as the kernel names them, ``errno`` read right after the call, and the failure
translated into a :class:`~minicontainer.errors.KernelError` subclass with a hint in one place
(:func:`_fail`). Notebooks call these functions, not ctypes.

Every function documents the kernel's preconditions: the list a learner checks when the call fails.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys

from .errors import KernelError, MountError, NamespaceError, from_oserror

# --- clone(2) / unshare(2) flags (linux/sched.h) -------------------------------------------------
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

#: The kernel's name for each namespace (as in /proc/<pid>/ns/<name>) → its clone flag.
NAMESPACE_FLAGS = {
    "mnt": CLONE_NEWNS,
    "uts": CLONE_NEWUTS,
    "ipc": CLONE_NEWIPC,
    "net": CLONE_NEWNET,
    "pid": CLONE_NEWPID,
    "user": CLONE_NEWUSER,
    "cgroup": CLONE_NEWCGROUP,
    "time": CLONE_NEWTIME,
}

# --- mount(2) flags (linux/mount.h) --------------------------------------------------------------
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24

# --- umount2(2) flags ----------------------------------------------------------------------------
MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8

# --- prctl(2) options ----------------------------------------------------------------------------
PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24

# --- inotify(7) ----------------------------------------------------------------------------------
IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

# The soname directly: ctypes.util.find_library runs `ldconfig -p` in a subprocess (and imports
# subprocess), several ms on every container start. glibc and musl both answer to these names.
try:
    _libc = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # musl
    _libc = ctypes.CDLL("libc.so", use_errno=True)

_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.syscall.restype = ctypes.c_long
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.inotify_init1.argtypes = [ctypes.c_int]
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]

_SYS_pivot_root = {"x86_64": 155, "aarch64": 41, "armv7l": 218, "riscv64": 41, "ppc64le": 203,
                   "s390x": 217}.get(os.uname().machine, 155)


def _b(path: str | os.PathLike | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


def _fail(op: str, path: str | os.PathLike | None, cls: type[KernelError], hints: dict[int, str]):
    err = ctypes.get_errno()
    exc = OSError(err, os.strerror(err))
    return from_oserror(exc, op, path, cls=cls, hint=hints.get(err))


# --- namespaces ----------------------------------------------------------------------------------

def unshare(flags: int) -> None:
    """unshare(2): move the calling process into new namespaces.

    Preconditions the kernel checks:
    - CAP_SYS_ADMIN, except for CLONE_NEWUSER (which an unprivileged process may create).
    - CLONE_NEWUSER fails with EINVAL in a multi-threaded process: unshare before starting threads.
    - CLONE_NEWPID and CLONE_NEWTIME do not move the caller; its *next child* is the first member
      (PID 1 of the new PID namespace).
    - CLONE_NEWNS copies the mount table; with shared propagation mounts still travel both ways until
      the new namespace makes them private.
    """
    if _libc.unshare(flags) != 0:
        raise _fail("unshare", f"flags=0x{flags:x}", NamespaceError, {
            errno.EINVAL: "an unknown flag, or CLONE_NEWUSER in a multi-threaded process",
            errno.EPERM: "creating these namespaces needs CAP_SYS_ADMIN: run as root",
            errno.ENOSPC: "the per-user namespace limit (/proc/sys/user/max_*_namespaces) is reached",
            errno.EUSERS: "too many nested user namespaces",
        })


def setns(fd: int, nstype: int = 0, *, path: str | None = None) -> None:
    """setns(2): join the namespace that ``fd`` (an open /proc/<pid>/ns/<name>) refers to.

    Preconditions:
    - CAP_SYS_ADMIN in the target's owning user namespace (root on the host has it).
    - Joining a PID namespace does not move the caller: only children created afterwards land in it.
    - Joining a mount namespace fails with EINVAL in a multi-threaded process, and joining a user
      namespace too (``nstype`` 0 accepts any kind; otherwise it must match the fd's kind).
    """
    if _libc.setns(fd, nstype) != 0:
        raise _fail("setns", path or f"fd {fd}", NamespaceError, {
            errno.EINVAL: "the fd is not a namespace of that kind, or the caller is multi-threaded",
            errno.EPERM: "joining needs CAP_SYS_ADMIN in the namespace's user namespace",
        })


def sethostname(name: str) -> None:
    """sethostname(2). Needs CAP_SYS_ADMIN in the caller's UTS namespace's owning user namespace.

    Only call it in a new UTS namespace, otherwise you rename the host.
    """
    b = name.encode()
    if _libc.sethostname(b, len(b)) != 0:
        raise _fail("sethostname", name, NamespaceError, {
            errno.EINVAL: "the name is longer than 64 bytes",
            errno.EPERM: "needs CAP_SYS_ADMIN (and a new UTS namespace, or you rename the host)",
        })


def setdomainname(name: str) -> None:
    """setdomainname(2): the NIS domain name, also part of the UTS namespace."""
    b = name.encode()
    if _libc.setdomainname(b, len(b)) != 0:
        raise _fail("setdomainname", name, NamespaceError, {})


# --- mounts --------------------------------------------------------------------------------------

_MOUNT_HINTS = {
    errno.ENODEV: "the kernel does not know this file system type (is its module loaded?)",
    errno.ENOTDIR: "the target is not a directory",
    errno.EBUSY: "already mounted there, or the file system is busy",
    errno.EPERM: "mounting needs CAP_SYS_ADMIN: run as root",
}


def mount(source: str | os.PathLike | None, target: str | os.PathLike, fstype: str | None = None,
          flags: int = 0, data: str | None = None) -> None:
    """mount(2), with the kernel's argument order.

    Preconditions:
    - CAP_SYS_ADMIN in the user namespace that owns the caller's mount namespace.
    - ``target`` exists (a directory, or a file for a file bind mount).
    - MS_BIND: ``source`` is a path; MS_REC makes it recursive. A bind mount ignores MS_RDONLY on the
      first call: remount with MS_REMOUNT|MS_BIND|MS_RDONLY to make it read-only.
    - MS_PRIVATE/MS_SLAVE/MS_SHARED (propagation) take no source or type; combine with MS_REC.
    - overlay: ``data`` names lowerdir, upperdir and workdir; upperdir and workdir on the same file
      system; workdir empty.
    """
    fst = fstype or ("none" if not flags & (MS_BIND | MS_MOVE) else None)
    if _libc.mount(_b(source), _b(target), fst.encode() if fst else None, flags,
                   data.encode() if data else None) != 0:
        hints = dict(_MOUNT_HINTS)
        if fstype == "overlay":
            hints[errno.EINVAL] = ("is the overlay module loaded, are upperdir and workdir on the same "
                                   "file system, and is workdir empty?")
        elif flags & MS_REMOUNT:
            hints[errno.EINVAL] = "remount of a path that is not a mount point"
        else:
            hints[errno.EINVAL] = "bad flags or data, or the source is not a mount (for propagation)"
        what = f"mount {fstype or source or ''}".rstrip() + " on"
        raise _fail(what, target, MountError, hints)


def umount2(target: str | os.PathLike, flags: int = 0) -> None:
    """umount2(2). MNT_DETACH ("lazy") detaches now and frees when the last user goes.

    Preconditions: ``target`` is a mount point; EBUSY while a process has its cwd or a file there
    (MNT_DETACH avoids that).
    """
    if _libc.umount2(_b(target), flags) != 0:
        raise _fail("umount", target, MountError, {
            errno.EINVAL: "not a mount point",
            errno.EBUSY: "still in use (a process has a file or its cwd there): try MNT_DETACH",
        })


def pivot_root(new_root: str | os.PathLike, put_old: str | os.PathLike) -> None:
    """pivot_root(2): make ``new_root`` the root of the caller's mount namespace, the old root moving
    to ``put_old``.

    Preconditions (each one a classic failure):
    - EINVAL: ``new_root`` is not a mount point (bind-mount it onto itself first); ``put_old`` is not
      at or under ``new_root``; the current root or ``new_root``'s parent has shared propagation (make
      ``/`` MS_REC|MS_PRIVATE first, in a new mount namespace); the current root is a rootfs (initramfs).
    - EBUSY: ``new_root`` or ``put_old`` is the current root, or something is already mounted on
      ``put_old``.
    - Since Linux 3.19, ``pivot_root(".", ".")`` works: the old root stacks on top and is detached with
      ``umount2(".", MNT_DETACH)``, no ``put_old`` directory needed (runc's way).
    """
    if _libc.syscall(_SYS_pivot_root, _b(new_root), _b(put_old)) != 0:
        raise _fail("pivot_root", f"{os.fspath(new_root)} (put_old {os.fspath(put_old)})", MountError, {
            errno.EINVAL: ("new_root is not a mount point, put_old is not under new_root, or a parent "
                           "mount is shared (remount / with MS_REC|MS_PRIVATE in a new mount namespace)"),
            errno.EBUSY: "new_root or put_old is the current root, or put_old already has a mount on it",
            errno.ENOTDIR: "new_root or put_old is not a directory",
            errno.EPERM: "pivot_root needs CAP_SYS_ADMIN",
        })


# --- the new mount API: idmapped mounts (runtime/userns.py) ---------------------------------------
OPEN_TREE_CLONE = 1
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_IDMAP = 0x00100000
# one table for every architecture since 5.x (asm-generic numbering; x86_64 shares it)
_SYS_open_tree, _SYS_move_mount, _SYS_mount_setattr = 428, 429, 442


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def open_tree(path: str | os.PathLike, flags: int = OPEN_TREE_CLONE | os.O_CLOEXEC) -> int:
    """open_tree(2) with OPEN_TREE_CLONE: a *detached* copy of the mount at ``path`` (a bind mount
    nobody sees until ``move_mount`` attaches it), as an fd. Needs CAP_SYS_ADMIN (Linux 5.2)."""
    fd = _libc.syscall(_SYS_open_tree, ctypes.c_int(-100), _b(path), ctypes.c_uint(flags))
    if fd < 0:
        raise _fail("open_tree", path, MountError, {
            errno.ENOSYS: "the new mount API needs Linux 5.2", errno.EPERM: "needs CAP_SYS_ADMIN"})
    return fd


def mount_setattr_idmap(fd: int, userns_fd: int, what: str | os.PathLike = "") -> None:
    """mount_setattr(2) MOUNT_ATTR_IDMAP: the detached mount ``fd`` shows each file's owner through
    the id maps of the user namespace ``userns_fd`` (on-disk uid 0 appears as that namespace's root).

    Preconditions: Linux 5.12; the mount is detached (``open_tree`` clone, not yet attached) and not
    idmapped already; its file system supports idmapped mounts (ext4, xfs, btrfs; tmpfs since 6.3 —
    not overlayfs or NFS); CAP_SYS_ADMIN in the file system's user namespace (host root)."""
    attr = _MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
    if _libc.syscall(_SYS_mount_setattr, ctypes.c_int(fd), b"", ctypes.c_uint(AT_EMPTY_PATH),
                     ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))) != 0:
        raise _fail("mount_setattr(MOUNT_ATTR_IDMAP)", what or f"fd {fd}", MountError, {
            errno.ENOSYS: "idmapped mounts need Linux 5.12",
            errno.EINVAL: "the file system does not support idmapped mounts (ext4, xfs, btrfs do; "
                          "overlayfs and NFS do not), or the mount is attached already",
            errno.EPERM: "needs CAP_SYS_ADMIN in the file system's user namespace (host root)"})


def move_mount(fd: int, target: str | os.PathLike) -> None:
    """move_mount(2) with MOVE_MOUNT_F_EMPTY_PATH: attach the detached mount ``fd`` on ``target``
    (stacked on whatever is mounted there), in the caller's mount namespace."""
    if _libc.syscall(_SYS_move_mount, ctypes.c_int(fd), b"", ctypes.c_int(-100), _b(target),
                     ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)) != 0:
        raise _fail("move_mount", target, MountError, dict(_MOUNT_HINTS))


# --- process attributes --------------------------------------------------------------------------

def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2). Used for PR_SET_DUMPABLE (before joining a container), PR_SET_PDEATHSIG (a child
    that dies with its parent), PR_SET_NO_NEW_PRIVS and PR_SET_CHILD_SUBREAPER."""
    r = _libc.prctl(option, arg2, arg3, arg4, arg5)
    if r < 0:
        raise _fail("prctl", f"option {option}", KernelError, {})
    return r


def set_dumpable(on: bool) -> None:
    """Non-dumpable processes cannot be ptraced and their /proc/<pid> is root-owned: a process that is
    about to join a container makes itself non-dumpable so the container cannot reach back through
    /proc/<pid>/exe (CVE-2019-5736, runc)."""
    prctl(PR_SET_DUMPABLE, 1 if on else 0)


def set_pdeathsig(sig: int) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent thread dies."""
    prctl(PR_SET_PDEATHSIG, sig)


def get_pdeathsig() -> int:
    """The parent-death signal this process has now (0: none). The kernel clears it whenever the
    process's credentials change (setresuid, setns into a user namespace)."""
    sig = ctypes.c_int(0)
    prctl(PR_GET_PDEATHSIG, ctypes.addressof(sig))
    return sig.value


def set_no_new_privs() -> None:
    """After this, execve can never grant privileges (setuid bits, file capabilities are ignored)."""
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_child_subreaper() -> None:
    """Orphaned descendants are re-parented to this process instead of PID 1 (what an init does)."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)


# --- file systems --------------------------------------------------------------------------------

_libc.fstatfs.argtypes = [ctypes.c_int, ctypes.c_void_p]


def fstatfs_type(fd: int) -> int:
    """fstatfs(2)'s ``f_type`` for ``fd``: which file system it is on (PROC_SUPER_MAGIC 0x9fa0 …).
    ``os.fstatvfs`` has no such field. ``f_type`` is the first member of ``struct statfs`` (a
    ``long`` on 64-bit, a word on 32-bit): read from a buffer larger than the struct anywhere."""
    buf = ctypes.create_string_buffer(256)
    if _libc.fstatfs(fd, buf) != 0:
        raise _fail("fstatfs", f"fd {fd}", KernelError, {})
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


# --- inotify -------------------------------------------------------------------------------------

def inotify_init(flags: int = IN_NONBLOCK | IN_CLOEXEC) -> int:
    """inotify_init1(2): an fd that reads as events on the watched paths (``minicontainer serve``
    watches its own package, server.py)."""
    fd = _libc.inotify_init1(flags)
    if fd < 0:
        raise _fail("inotify_init1", None, KernelError, {
            errno.EMFILE: "too many inotify instances (/proc/sys/fs/inotify/max_user_instances)"})
    return fd


def inotify_add_watch(fd: int, path: str | os.PathLike, mask: int) -> int:
    """inotify_add_watch(2): report ``mask`` events of ``path`` (a directory: of the files in it)."""
    wd = _libc.inotify_add_watch(fd, _b(path), mask)
    if wd < 0:
        raise _fail("inotify_add_watch", path, KernelError, {
            errno.ENOSPC: "too many watches (/proc/sys/fs/inotify/max_user_watches)"})
    return wd


def inotify_events(data: bytes):
    """Split what an inotify fd read into ``(wd, mask, name)`` (``struct inotify_event``)."""
    i = 0
    while i + 16 <= len(data):
        wd, mask, _cookie, n = (int.from_bytes(data[j:j + 4], sys.byteorder, signed=(j == i))
                                for j in range(i, i + 16, 4))
        yield wd, mask, data[i + 16:i + 16 + n].rstrip(b"\0").decode(errors="surrogateescape")
        i += 16 + n


# --- capabilities, seccomp, bpf (notebook 07) ---------------------------------------------------
# Additive: minicontainer/security/ calls these; each raises KernelError with the kernel's errno.

PR_SET_KEEPCAPS = 8
PR_SET_SECCOMP = 22
PR_CAPBSET_READ = 23
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4
SECCOMP_MODE_FILTER = 2
SECCOMP_SET_MODE_FILTER = 1
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_machine = os.uname().machine
_SYS_seccomp = {"x86_64": 317, "aarch64": 277}.get(_machine)
_SYS_bpf = {"x86_64": 321, "aarch64": 280}.get(_machine)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def capget(pid: int = 0) -> tuple[int, int, int]:
    """capget(2), version 3: ``(effective, permitted, inheritable)`` of ``pid`` (0: the caller), each
    a 64-bit mask (bit N = capability N; /proc/PID/status shows the same as CapEff/CapPrm/CapInh)."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    if _libc.capget(ctypes.byref(hdr), data) != 0:
        raise _fail("capget", f"pid {pid}", KernelError, {})
    return tuple(getattr(data[0], f) | (getattr(data[1], f) << 32)
                 for f in ("effective", "permitted", "inheritable"))


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2), version 3 (two 32-bit words per set), for the calling thread.

    Preconditions: effective ⊆ permitted; permitted can only shrink; inheritable may only gain
    capabilities that are in the bounding set and (without CAP_SETPCAP) in permitted."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        data[i].effective = (effective >> (32 * i)) & 0xFFFFFFFF
        data[i].permitted = (permitted >> (32 * i)) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> (32 * i)) & 0xFFFFFFFF
    if _libc.capset(ctypes.byref(hdr), data) != 0:
        raise _fail("capset", f"effective={effective:016x} permitted={permitted:016x}", KernelError, {
            errno.EPERM: "a capability outside permitted (or inheritable outside the bounding set)"})


def seccomp_set_mode_filter(program: bytes, flags: int = 0) -> None:
    """Install a classic-BPF seccomp filter (``program``: packed ``struct sock_filter`` entries, 8
    bytes each) on the calling thread: seccomp(SECCOMP_SET_MODE_FILTER), or prctl(PR_SET_SECCOMP) on
    an architecture whose syscall number we do not know.

    Preconditions: no_new_privs set, or CAP_SYS_ADMIN in the caller's user namespace (EACCES else);
    at most 4096 instructions (EINVAL). Filters stack: each one installed later is also evaluated."""
    n = len(program) // 8
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(n, ctypes.cast(buf, ctypes.c_void_p))
    if _SYS_seccomp is not None:
        r = _libc.syscall(_SYS_seccomp, SECCOMP_SET_MODE_FILTER, ctypes.c_uint(flags), ctypes.byref(prog))
    else:
        r = _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0)
    if r != 0:
        raise _fail("seccomp(SECCOMP_SET_MODE_FILTER)", f"{n} instructions", KernelError, {
            errno.EACCES: "loading a filter needs no_new_privs or CAP_SYS_ADMIN",
            errno.EINVAL: "a malformed program (or more than 4096 instructions)",
        })


def bpf(cmd: int, attr: bytearray, what: str = "") -> int:
    """bpf(2): ``attr`` is the ``union bpf_attr`` for ``cmd`` as bytes (zero-padded; the kernel checks
    that bytes it does not know are zero). Returns the kernel's result (an fd for BPF_PROG_LOAD).

    Preconditions: CAP_BPF (or CAP_SYS_ADMIN); for cgroup programs also CAP_NET_ADMIN/CAP_SYS_ADMIN."""
    if _SYS_bpf is None:
        raise KernelError("bpf", what or None, errno.ENOSYS, hint=f"bpf(2) number unknown on {_machine}")
    buf = ctypes.create_string_buffer(bytes(attr), len(attr))
    r = _libc.syscall(_SYS_bpf, ctypes.c_int(cmd), buf, ctypes.c_uint(len(attr)))
    if r < 0:
        raise _fail(f"bpf(cmd {cmd})", what or None, KernelError, {
            errno.EPERM: "needs CAP_BPF/CAP_SYS_ADMIN (and is the call blocked by a seccomp filter?)",
            errno.EINVAL: "an attribute the kernel does not accept (program type, attach type, flags)",
            errno.EACCES: "the verifier rejected the program",
        })
    attr[:] = buf.raw[:len(attr)]
    return r
