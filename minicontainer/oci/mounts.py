"""The container's file system from config.json: ``mounts``, devices, masked and read-only paths,
pivot_root (runc's ``libcontainer/rootfs_linux.go``). Runs inside the container's process, in its
new mount namespace, before ``start``.

Order (as runc): propagation of ``/`` first — rslave (or rprivate if asked), so NOTHING mounted here
ever propagates back to the host, whatever the host's propagation is; then the root bound onto
itself (pivot_root wants a mount point), ``mounts`` in the order given, device nodes and /dev links,
masked and read-only paths (all under the root while the host is reachable), pivot_root and the old
root detached; last a read-only root and the requested ``rootfsPropagation``. A requested "shared"
is applied only after the pivot, on mounts already slaves of the host's: they become a new peer
group of their own (shared *and* slave), so events still never flow to the host. runc applies
"shared" first and then does propagate to the host; we reject that.

Every destination is resolved inside the root like runc's securejoin: symlinks in the image are
followed but can never lead outside it (``/etc/resolv.conf -> ../../../etc/x`` stays under the
root), and the final mount goes through ``/proc/self/fd/N`` of the object we checked, so a symlink
swapped in afterwards cannot redirect it (rootfs.open_in_root).

The primitives — symlink-safe mounting, masking, read-only paths — are rootfs.py's (notebook 03).
"""
from __future__ import annotations

import errno
import os
import stat

from .. import rootfs
from .. import syscalls as sc
from ..errors import KernelError, MountError, RootfsError
from ..rootfs import secure_join   # rootfs owns it: the engine's --init resolves with it too

#: option → (set?, flag): runc's mountPropagationMapping and mountFlags
FLAGS = {
    "ro": (True, sc.MS_RDONLY), "rw": (False, sc.MS_RDONLY),
    "nosuid": (True, sc.MS_NOSUID), "suid": (False, sc.MS_NOSUID),
    "nodev": (True, sc.MS_NODEV), "dev": (False, sc.MS_NODEV),
    "noexec": (True, sc.MS_NOEXEC), "exec": (False, sc.MS_NOEXEC),
    "sync": (True, sc.MS_SYNCHRONOUS), "async": (False, sc.MS_SYNCHRONOUS),
    "dirsync": (True, sc.MS_DIRSYNC), "remount": (True, sc.MS_REMOUNT),
    "mand": (True, sc.MS_MANDLOCK), "nomand": (False, sc.MS_MANDLOCK),
    "atime": (False, sc.MS_NOATIME), "noatime": (True, sc.MS_NOATIME),
    "diratime": (False, sc.MS_NODIRATIME), "nodiratime": (True, sc.MS_NODIRATIME),
    "relatime": (True, sc.MS_RELATIME), "norelatime": (False, sc.MS_RELATIME),
    "strictatime": (True, sc.MS_STRICTATIME), "nostrictatime": (False, sc.MS_STRICTATIME),
    "nosymfollow": (True, sc.MS_NOSYMFOLLOW), "symfollow": (False, sc.MS_NOSYMFOLLOW),
    "bind": (True, sc.MS_BIND), "rbind": (True, sc.MS_BIND | sc.MS_REC),
}
PROPAGATION = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}
#: options of other runtimes' extensions that need nothing from us (crun's tmpcopyup, …)
IGNORED = {"tmpcopyup", "notmpcopyup", "copy-symlink", "defaults", "rro"}
#: nodes every container gets (runc's AllowedDevices): name → (major, minor)
DEFAULT_DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9),
                   "tty": (5, 0)}
_LOCKED = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_RDONLY


def parse_options(options) -> tuple[int, int, str]:
    """(flags, propagation flags, data) of a mount's ``options``."""
    flags, pflags, data = 0, 0, []
    for opt in options:
        if opt in FLAGS:
            on, bit = FLAGS[opt]
            flags = flags | bit if on else flags & ~bit
        elif opt in PROPAGATION:
            pflags |= PROPAGATION[opt]
        elif opt in IGNORED:
            continue
        else:
            data.append(opt)
    return flags, pflags, ",".join(data)


def _statvfs_locked(path: str) -> int:
    try:
        return os.statvfs(path).f_flag & _LOCKED
    except OSError:
        return 0


def _remount(path: str, flags: int) -> None:
    """Apply ``flags`` to the bind mount at ``path``; inside a user namespace the kernel refuses to
    clear flags the source mount has locked (nosuid, nodev, noexec, ro): keep those then."""
    try:
        sc.mount(None, path, None, sc.MS_REMOUNT | sc.MS_BIND | flags)
    except KernelError as exc:
        if exc.errno != errno.EPERM:
            raise
        sc.mount(None, path, None, sc.MS_REMOUNT | sc.MS_BIND | flags | _statvfs_locked(path))


def _on(root: str, dest: str, create: str | None = "dir") -> int:
    try:
        return rootfs.open_in_root(root, dest, create=create)
    except OSError as exc:
        from ..errors import from_oserror
        raise from_oserror(exc, "resolve", os.path.join(root, dest.lstrip("/")), cls=MountError) from exc


def _mount_bind(m, root: str, dest: str, bundle: str, flags: int) -> None:
    src = m.source if m.source.startswith("/") else os.path.join(bundle, m.source)
    try:
        is_dir = stat.S_ISDIR(os.stat(src).st_mode)
    except OSError as exc:
        from ..errors import from_oserror
        raise from_oserror(exc, "bind mount source", src, cls=MountError,
                           hint=f"the source of {m.destination} must exist on the host") from exc
    fd = _on(root, dest, "dir" if is_dir else "file")
    try:
        sc.mount(src, f"/proc/self/fd/{fd}", None, sc.MS_BIND | (flags & sc.MS_REC))
    finally:
        os.close(fd)
    rest = flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
    if rest:
        fd = _on(root, dest, None)              # the new mount is on top now: remount that one
        try:
            _remount(f"/proc/self/fd/{fd}", rest)
        finally:
            os.close(fd)


def mount_cgroup(root: str, dest: str, flags: int, cgroup, new_cgroupns: bool) -> None:
    """cgroup v2: the cgroup2 file system (the container's own group as its root, in a new cgroup
    namespace) or a bind of the group. v1: runc's layout, a tmpfs with each hierarchy's group
    bound into it under the hierarchy's name (``cpu,cpuacct`` plus ``cpu``/``cpuacct`` links). The
    engine's ``--cgroupns host`` uses it too (standard_init.py): one way to show a container its group
    from the host's cgroup namespace."""
    be = cgroup.backend
    ro = flags & sc.MS_RDONLY
    if be.version == 2:
        if new_cgroupns:
            rootfs.mount_in_root("cgroup2", root, dest, "cgroup2", flags)
        else:
            fd = _on(root, dest)
            try:
                sc.mount(be._d(cgroup.name), f"/proc/self/fd/{fd}", None, sc.MS_BIND)
            finally:
                os.close(fd)
            _remount(root + dest, flags & ~sc.MS_REC)
        return
    rootfs.mount_in_root("tmpfs", root, dest, "tmpfs", flags & ~sc.MS_RDONLY, "mode=755")
    base = root + dest                                      # a tmpfs we just made: no symlinks in it
    # the backend's string paths, not hierarchies()' Path ones: no pathlib import in the container's
    # set-up (cgroups/v1.py says why)
    for mountpoint in be._hier():
        name = os.path.basename(mountpoint)
        target = os.path.join(base, name)
        os.mkdir(target, 0o755)
        sc.mount(be._group(mountpoint, cgroup.name), target, None, sc.MS_BIND)
        _remount(target, (flags & (sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)) | ro)
        if "," in name:
            for alias in name.split(","):
                if not os.path.lexists(os.path.join(base, alias)):
                    os.symlink(name, os.path.join(base, alias))
    if ro:
        _remount(base, flags & ~sc.MS_REC)


#: the /proc files a mount may cover (runc's checkProcMount: what lxcfs emulates)
PROC_ALLOWED = ("/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
                "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
                "/proc/sys/kernel/ns_last_pid", "/proc/sys/crypto/fips_enabled")


def check_proc(m, dest: str) -> None:
    """No mount inside the container's /proc but a proc file system at /proc itself and lxcfs's
    files (runc's checkProcMount). Over /proc/self/attr or /proc/sys a bind would undo a confinement
    applied later; ``dest`` is the *resolved* destination, so an image's ``/data -> /proc`` link
    does not get a volume in there either."""
    if dest == "/proc":
        if m.type == "proc" or (m.type == "bind" and os.path.realpath(m.source) == "/proc"):
            return
    elif not dest.startswith("/proc/") or dest in PROC_ALLOWED:
        return
    raise RootfsError(f"mount {m.destination}: it resolves to {dest}, inside the container's /proc",
                     hint="only a proc file system at /proc, or lxcfs's files (/proc/meminfo, …), may go there")


def mount_one(m, root: str, bundle: str, cgroup, new_cgroupns: bool) -> None:
    flags, pflags, data = parse_options(m.options)
    dest = secure_join(root, m.destination)
    check_proc(m, dest)
    if m.type == "bind" or flags & sc.MS_BIND:
        _mount_bind(m, root, dest, bundle, flags)
    elif m.type == "cgroup" or m.type == "cgroup2":
        mount_cgroup(root, dest, flags, cgroup, new_cgroupns)
    else:
        kind = m.type or "none"
        try:
            rootfs.mount_in_root(m.source or kind, root, dest, kind, flags & ~sc.MS_REMOUNT, data or None)
        except KernelError as exc:
            if kind not in ("sysfs", "mqueue") or exc.errno != errno.EPERM:
                raise
            # a sysfs of the host's network namespace, or a mqueue of its ipc one, cannot be mounted
            # in a user namespace: runc binds the host's then
            host = {"sysfs": "/sys", "mqueue": "/dev/mqueue"}[kind]
            _mount_bind(type(m)(m.destination, "bind", host), root, dest, "/",
                        sc.MS_BIND | sc.MS_REC | (flags & _LOCKED))
    if pflags:
        fd = _on(root, dest, None)
        try:
            sc.mount(None, f"/proc/self/fd/{fd}", None, pflags)
        finally:
            os.close(fd)


def _devices(root: str, devices, bind_only: bool) -> None:
    wanted = {d.path: d for d in devices}
    from .spec import Device
    for name, (major, minor) in DEFAULT_DEVICES.items():
        wanted.setdefault(f"/dev/{name}", Device(f"/dev/{name}", "c", major, minor, 0o666, 0, 0))
    for d in wanted.values():
        path = root + secure_join(root, d.path)
        os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
        if os.path.lexists(path):
            os.unlink(path)
        kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[d.type]
        mode = 0o666 if d.file_mode is None else d.file_mode & 0o7777
        try:
            if bind_only:
                raise PermissionError(errno.EPERM, "in a user namespace")
            os.mknod(path, kind | mode, os.makedev(d.major, d.minor))
            os.chown(path, d.uid or 0, d.gid or 0)
            # the mode asked for, not the caller's umask's cut of it (022: a /dev/null of 0644 that
            # only root may write; runc sets umask 0 around its mknods, we say the mode again)
            os.chmod(path, mode)
        except PermissionError:
            # mknod is refused in a user namespace: bind the host's node, as runc does
            open(path, "w").close()
            sc.mount(d.path, path, None, sc.MS_BIND)
        except OSError as exc:
            from ..errors import from_oserror
            raise from_oserror(exc, "mknod", path, cls=MountError) from exc


def _dev_links(root: str, has_pts: bool) -> None:
    dev = root + secure_join(root, "/dev")
    links = rootfs.dev_links()
    if has_pts:
        ptmx = os.path.join(dev, "ptmx")
        if os.path.lexists(ptmx):
            os.unlink(ptmx)
        links.append(("ptmx", "pts/ptmx"))
    for name, to in links:
        if not os.path.lexists(os.path.join(dev, name)):
            os.symlink(to, os.path.join(dev, name))


def prepare(spec, bundle: str, cgroup, *, userns: bool, new_cgroupns: bool, terminal: bool) -> str:
    """Everything under the root, before pivot_root. Returns the root."""
    lin = spec.linux
    root = os.path.realpath(spec.root_path)
    first = PROPAGATION["rprivate"] if lin.rootfs_propagation in ("private", "rprivate") \
        else PROPAGATION["rslave"]
    sc.mount(None, "/", None, first)
    sc.mount(root, root, None, sc.MS_BIND | sc.MS_REC)
    for m in spec.mounts:
        mount_one(m, root, bundle, cgroup, new_cgroupns)
    dev_bound = any(m.destination == "/dev" and (m.type == "bind" or "bind" in m.options or "rbind" in m.options)
                    for m in spec.mounts)
    if not dev_bound:
        _devices(root, lin.devices, userns)
        _dev_links(root, any(m.destination == "/dev/pts" for m in spec.mounts))
        if terminal:
            console = root + secure_join(root, "/dev/console")
            if not os.path.lexists(console):
                open(console, "w").close()
    if lin.sysctl:
        # before /proc/sys is made read-only below (runc writes them before its readonlyPaths too);
        # through the container's own /proc, whose net/ and kernel/ are the new namespaces'
        sysctl(lin.sysctl, root + secure_join(root, "/proc/sys"))
    for p in lin.masked_paths:
        rootfs.mask_path(secure_join(root, p), root)
    for p in lin.readonly_paths:
        rootfs.readonly_path(secure_join(root, p), root)
    return root


def enter(root: str, *, no_pivot: bool, readonly: bool, propagation: str) -> None:
    """pivot_root into ``root`` (or MS_MOVE + chroot with --no-pivot) and finish the root's flags."""
    os.chdir(root)
    if no_pivot:
        sc.mount(root, "/", None, sc.MS_MOVE)
        os.chroot(".")
    else:
        sc.pivot_root(".", ".")
        # the old root is stacked on top of "/" now: keep its unmount from travelling, then detach it
        sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
        sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")
    if readonly:
        _remount("/", sc.MS_RDONLY)
    if propagation in ("shared", "rshared", "unbindable", "runbindable", "slave"):
        sc.mount(None, "/", None, PROPAGATION[propagation])


def console(slave_path: str) -> None:
    """Bind the container's pty slave over /dev/console (after pivot)."""
    if os.path.exists("/dev/console"):
        sc.mount(slave_path, "/dev/console", None, sc.MS_BIND)


def sysctl(values: dict, base: str = "/proc/sys") -> None:
    for key, value in values.items():
        path = base + "/" + key.replace(".", "/")
        if ".." in key.split("."):
            raise RootfsError(f"sysctl {key!r}: invalid key")
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as exc:
            from ..errors import from_oserror
            raise from_oserror(exc, "write sysctl", path,
                               hint="only namespaced sysctls can be set for a container") from exc
