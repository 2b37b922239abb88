"""The container's root file system: mounts, devices, masked paths, volumes, pivot_root.

Introduced in notebook 03 (chroot, its breakout, pivot_root). ``setup_root`` runs INSIDE the container's
child process, after ``unshare(CLONE_NEWNS|…)`` and, when ``mount_proc``, as PID 1 of a new PID
namespace. The order follows runc's libcontainer/rootfs_linux.go: prepare everything under the new root
while the host is still reachable (to bind host device nodes and volume sources), then pivot_root and
detach the old root, then mask and make read-only what must not be touched.

Why pivot_root and not chroot: chroot only changes the process's root *directory*; a process keeping a
directory fd (or cwd) outside it, or with CAP_SYS_CHROOT, can walk back out (notebook 03 shows it).
pivot_root changes the root *mount* of the namespace, and once the old root is detached there is
nothing left to walk back to.
"""

from __future__ import annotations

import os
import stat
from ._record import record

from . import syscalls as sc
from .errors import ConfigError, MountError, NotFoundError, RootfsError, from_oserror

#: runc's default masked paths (config.Linux.MaskedPaths of `runc spec` / Docker).
MASKED_PATHS = ("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware", "/sys/devices/virtual/powercap")
#: runc's default read-only paths.
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
#: device nodes every container gets (runc's AllowedDevices minus the console).
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


@record(frozen=True)
class Volume:
    """A bind mount ``source`` (host path) -> ``target`` (path inside the container)."""
    source: str
    target: str
    readonly: bool = False


#: the files the runtime generates and mounts over the image's (engine, OCI bundles' usual mounts)
GENERATED_FILES = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf")
#: what the runtime mounts itself: a trailing "/" means the directory and everything below it
RUNTIME_MOUNTS = ("/proc/", "/sys/", "/dev/", *GENERATED_FILES)


def runtime_mount_of(dst: str) -> str | None:
    """The runtime's own mount that ``dst`` is or lies under (a fresh /proc, /sys, /dev with masks,
    the generated /etc files), else None: a volume or --tmpfs there would hide or undo it."""
    for own in RUNTIME_MOUNTS:
        if dst == own or own.endswith("/") and (dst + "/").startswith(own):
            return own.rstrip("/")
    return None


def parse_volume(spec: str) -> Volume:
    """Parse docker's ``SRC:DST[:ro|rw]``. SRC must exist on the host and be absolute; DST absolute."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise ConfigError(f"bad volume {spec!r}", hint="use SRC:DST or SRC:DST:ro")
    src, dst = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise ConfigError(f"bad volume mode {mode!r} in {spec!r}", hint="the mode is ro or rw")
    if not os.path.isabs(src) or not os.path.isabs(dst):
        raise ConfigError(f"bad volume {spec!r}", hint="both paths must be absolute")
    # normpath keeps a leading "//" (POSIX lets it mean something else): "//" would pass as not "/"
    dst = "/" + os.path.normpath(dst).lstrip("/")
    if dst == "/":
        raise ConfigError(f"bad volume {spec!r}", hint="cannot mount a volume over /")
    own = runtime_mount_of(dst)
    if own:
        raise ConfigError(f"bad volume {spec!r}: {dst} is the runtime's own mount ({own})",
                          hint="mount the volume somewhere else, e.g. /mnt")
    if not os.path.exists(src):
        raise NotFoundError(f"volume source {src} does not exist", hint="create it on the host first")
    return Volume(os.path.realpath(src), dst, mode == "ro")


# --- symlink-safe path resolution ---------------------------------------------------------------

def open_in_root(root: str, path: str, *, create: str | None = None) -> int:
    """Open ``path`` inside ``root`` as an O_PATH fd, refusing every symlink on the way.

    Walks component by component with O_PATH|O_NOFOLLOW (what openat2's RESOLVE_NO_SYMLINKS does in
    one call, kept portable here): a symlink in the image such as ``/data -> /etc`` must not redirect a
    volume mount onto the host (CVE-2021-30465-style), and a symlink planted at a masked path must not
    make us bind /dev/null over a host file (the 2025 runc advisory, CVE-2025-31133). ``..`` is refused.
    ``create`` ("dir" or "file") creates a missing last component (and missing parent directories).
    The caller mounts onto ``/proc/self/fd/N`` so the kernel uses exactly the object we checked.
    """
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        raise RootfsError(f"{path}: '..' not allowed in a container path")
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        for i, name in enumerate(parts):
            last = i == len(parts) - 1
            try:
                nfd = os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                if create is None:
                    raise
                # mkdirat/openat(O_CREAT) accept our O_PATH directory fd as dirfd.
                if last and create == "file":
                    os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o644,
                                     dir_fd=fd))
                else:
                    os.mkdir(name, 0o755, dir_fd=fd)
                nfd = os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=fd)
            if stat.S_ISLNK(os.fstat(nfd).st_mode):
                os.close(nfd)
                raise RootfsError(f"refusing {os.path.join(root, *parts[:i + 1])}: it is a symlink",
                                  hint="a symlink in the root file system must not redirect a mount")
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


def secure_join(root: str, path: str) -> str:
    """``root``/``path`` with every symlink on the way resolved *inside* ``root`` (securejoin)."""
    parts = [p for p in path.split("/") if p and p != "."]
    done: list[str] = []
    links = 0
    while parts:
        name = parts.pop(0)
        if name == "..":
            if done:
                done.pop()
            continue
        cur = os.path.join(root, *done, name)
        try:
            st = os.lstat(cur)
        except (FileNotFoundError, NotADirectoryError):
            done.append(name)                   # missing: created later, cannot be a symlink now
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > 255:
                raise RootfsError(f"{os.path.join(root, path.lstrip('/'))}: too many levels of symlinks")
            target = os.readlink(cur)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        done.append(name)
    return "/" + "/".join(done)


def volume_target(root: str, target: str) -> str:
    """Where volume (or --tmpfs) ``target`` lands: resolved *inside* ``root`` (:func:`secure_join`,
    as runc resolves mount destinations) — Debian's ``/var/run -> /run`` is followed, an absolute
    link resolves against the container's root — then mounted through :func:`open_in_root`, which
    refuses a symlink swapped in meanwhile. Rejected: refusing every symlink on the way (safe, but
    Docker runs such images). Into a runtime mount (``/data -> /proc``): refused, as a direct one."""
    resolved = secure_join(root, target)
    own = runtime_mount_of(resolved)
    if own:
        raise RootfsError(f"volume destination {target} resolves to {resolved} inside the container, "
                          f"the runtime's own mount ({own})",
                          hint="a symlink of the image leads there: mount the volume somewhere else")
    return resolved


def _mount_on(source, root: str, target: str, fstype=None, flags=0, data=None, *, create="dir") -> None:
    """Mount onto ``root``/``target`` after symlink-safe resolution, through /proc/self/fd. A
    generated /etc file's path that is a symlink in the image is replaced first (:func:`_unlink_symlink`)."""
    if target in GENERATED_FILES:
        _unlink_symlink(root, target)
    try:
        fd = open_in_root(root, target, create=create)
    except OSError as exc:
        raise from_oserror(exc, "resolve", os.path.join(root, target.lstrip("/")), cls=MountError) from exc
    try:
        sc.mount(source, f"/proc/self/fd/{fd}", fstype, flags, data)
    finally:
        os.close(fd)


def _remount_ro(path: str, extra: int = 0) -> None:
    sc.mount(None, path, None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | extra)


# --- the steps ----------------------------------------------------------------------------------

def _mount_dev(root: str, own: str = "") -> None:
    """/dev as a small tmpfs holding only harmless devices: no disks, no /dev/mem, no host pts.

    Host device nodes are bind-mounted (rather than mknod) so the same code works in a user namespace,
    where mknod is forbidden — runc does the same when it cannot mknod.
    """
    nosuid_exec = sc.MS_NOSUID | sc.MS_STRICTATIME
    _mount_on("tmpfs", root, "/dev", "tmpfs", nosuid_exec, "mode=755,size=65536k" + own)
    dev = os.path.join(root, "dev")
    for name in DEVICES:
        open(os.path.join(dev, name), "w").close()
        sc.mount(f"/dev/{name}", os.path.join(dev, name), None, sc.MS_BIND)
    os.mkdir(os.path.join(dev, "pts"), 0o755)
    sc.mount("devpts", os.path.join(dev, "pts"), "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=0620")
    os.symlink("pts/ptmx", os.path.join(dev, "ptmx"))
    os.mkdir(os.path.join(dev, "shm"), 0o1777)
    sc.mount("shm", os.path.join(dev, "shm"), "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC,
             "mode=1777,size=65536k" + own)
    for link, to in dev_links():
        os.symlink(to, os.path.join(dev, link))


def dev_links() -> list[tuple[str, str]]:
    """The /dev symlinks every container gets, ours as runc's (its defaultSymlinks; the OCI runtime
    makes the same ones, oci/mounts.py): fd, stdin, stdout, stderr, and ``core`` → /proc/kcore where
    the kernel has one (masked: MASKED_PATHS). One list, or the engine's /dev and a bundle's differ
    on a kernel with /proc/kcore (test_engine_vs_oci found it in the VM: this host has none)."""
    links = [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
             ("stderr", "/proc/self/fd/2")]
    if os.path.exists("/proc/kcore"):
        links.append(("core", "/proc/kcore"))
    return links


def _mask(path: str, root: str = "/") -> None:
    """Hide ``path`` (inside ``root``; "/" once pivoted): /dev/null over a file, empty ro tmpfs over a dir."""
    try:
        fd = open_in_root(root, path)
    except FileNotFoundError:
        return
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            sc.mount("tmpfs", f"/proc/self/fd/{fd}", "tmpfs", sc.MS_RDONLY, "size=0")
        else:
            sc.mount("/dev/null", f"/proc/self/fd/{fd}", None, sc.MS_BIND)
    finally:
        os.close(fd)


def _readonly(path: str, root: str = "/") -> None:
    """Make ``path`` (inside ``root``) a read-only bind mount of itself."""
    try:
        fd = open_in_root(root, path)
    except FileNotFoundError:
        return
    try:
        p = f"/proc/self/fd/{fd}"
        sc.mount(p, p, None, sc.MS_BIND | sc.MS_REC)
    finally:
        os.close(fd)
    try:
        fd = open_in_root(root, path)    # again: the new mount is on top now, remount that one
    except FileNotFoundError:
        return
    try:
        _remount_ro(f"/proc/self/fd/{fd}", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    finally:
        os.close(fd)


def setup_root(root: str, *, volumes=(), readonly: bool = False, hostname: str | None = None,
               etc_files: dict[str, str] | None = None, mount_proc: bool = True) -> None:
    """Turn ``root`` into this process's / with the mounts a container needs (notebook 03).

    Propagation: ``/`` is made MS_REC|MS_SLAVE, as runc does by default (rootfsPropagation "rslave"),
    not rprivate: slave still *receives* host mount events (a USB stick mounted later shows up under a
    volume) but never sends ours back, so nothing we mount leaks to the host. pivot_root only requires
    that neither the old root nor new_root's parent be *shared*; slave satisfies that. Then new_root
    itself is made private so the pivot cannot EINVAL on it.

    Two halves, so that the runtime can do the first before it knows the request (runtime/process.py):
    :func:`prepare_root` (the API file systems) and :func:`enter_root` (volumes, /etc, pivot, masks).
    """
    volumes = [parse_volume(v) if isinstance(v, str) else v for v in volumes]   # bad input: before any mount
    root = prepare_root(root, mount_proc=mount_proc)
    enter_root(root, volumes=volumes, readonly=readonly, hostname=hostname, etc_files=etc_files,
               mount_proc=mount_proc)


def prepare_root(root: str, *, mount_proc: bool = True, masks: bool = True, sys_rw: bool = False,
                 owner: tuple[int, int] | None = None) -> str:
    """The first half of :func:`setup_root`: propagation, /proc, /sys, /dev and /tmp under ``root``,
    masked and read-only paths (none with ``masks=False``: --privileged). /sys is read-only unless
    ``sys_rw`` (--privileged: Docker mounts it read-write then). ``owner`` (host uid, gid): who owns
    the tmpfs roots (/dev, /dev/shm, /tmp) — a remapped container's root (runtime/userns.py).
    Returns the resolved root."""
    own = f",uid={owner[0]},gid={owner[1]}" if owner else ""
    root = os.path.realpath(root)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_SLAVE)
    if not os.path.ismount(root):
        # pivot_root's EINVAL "new_root is not a mount point": bind it onto itself.
        sc.mount(root, root, None, sc.MS_BIND | sc.MS_REC)
    sc.mount(None, root, None, sc.MS_REC | sc.MS_PRIVATE)

    if mount_proc:
        _mount_on("proc", root, "/proc", "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    _mount_on("sysfs", root, "/sys", "sysfs",
              sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | (0 if sys_rw else sc.MS_RDONLY))
    _mount_dev(root, own)
    _mount_on("tmpfs", root, "/tmp", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "mode=1777" + own)
    # Masked and read-only paths now, under ``root`` (symlink-safe, through /proc/self/fd), not after
    # the pivot as runc does: the result is the same mounts, and here they are done before the
    # request arrives (a parked container, runtime/process.py). /sys is masked even without our own
    # /proc; /proc's paths only when we mounted it.
    for p in MASKED_PATHS if masks else ():
        if mount_proc or p.startswith("/sys"):
            _mask(p, root)
    if mount_proc and masks:
        for p in READONLY_PATHS:
            _readonly(p, root)
    return root


def _unlink_symlink(root: str, path: str) -> None:
    """An image's /etc/resolv.conf (or hosts, hostname) that is a symlink (systemd-resolved's
    ``../run/systemd/resolve/stub-resolv.conf``) is removed from the container's own layer, so that
    the generated file is mounted at the path itself. Following it was rejected: its target is the
    container's to choose (a host path, once we follow it before pivot_root). Its parent is opened
    with every symlink refused (:func:`open_in_root`); only the last component is unlinked."""
    parent, _, name = path.rstrip("/").rpartition("/")
    try:
        pfd = open_in_root(root, parent or "/")
    except (OSError, RootfsError):
        return                                    # _mount_on reports it
    try:
        if stat.S_ISLNK(os.stat(name, dir_fd=pfd, follow_symlinks=False).st_mode):
            os.unlink(name, dir_fd=pfd)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise from_oserror(exc, "replace the symlink", os.path.join(root, path.lstrip("/")),
                           cls=MountError) from exc
    finally:
        os.close(pfd)


def bind_host_binary(src: str, root: str, target: str) -> None:
    """``--init``: the host's static init ``src`` bound read-only, nosuid and nodev at ``target``
    (Docker's /sbin/docker-init) under ``root``, before pivot_root. The directory is resolved inside
    the root (:func:`secure_join`: a merged-/usr image's ``/sbin -> usr/sbin`` still works, and no
    link leads out of the root); a symlink at the name itself is replaced in the container's own
    layer, as a generated /etc file's is; the mount point is made there (overlayfs writes only the
    upper layer), never on the host. ``src`` is the runtime's (init.host_binary), opened O_PATH and
    bound through /proc/self/fd: exactly the file checked."""
    parent, _, name = target.rstrip("/").rpartition("/")
    where = secure_join(root, parent or "/").rstrip("/") + "/" + name
    _unlink_symlink(root, where)
    try:
        sfd = os.open(src, os.O_PATH | os.O_CLOEXEC)
    except OSError as exc:
        raise from_oserror(exc, "open the init binary", src, cls=MountError) from exc
    try:
        if not stat.S_ISREG(os.fstat(sfd).st_mode):
            raise RootfsError(f"the init binary {src} is not a regular file")
        _mount_on(f"/proc/self/fd/{sfd}", root, where, None, sc.MS_BIND, create="file")
    finally:
        os.close(sfd)
    fd = open_in_root(root, where)            # the bind is on top now: make that one read-only
    try:
        _remount_ro(f"/proc/self/fd/{fd}", sc.MS_NOSUID | sc.MS_NODEV)
    finally:
        os.close(fd)


def enter_root(root: str, *, volumes=(), readonly: bool = False, hostname: str | None = None,
               etc_files: dict[str, str] | None = None, mount_proc: bool = True, devices=(),
               etc_binds: dict[str, str] | None = None, init: tuple[str, str] | None = None,
               tmpfs=()) -> None:
    """The second half of :func:`setup_root`: volumes, ``devices`` (host node, container path: a
    bind mount, ``--device``) and generated /etc files (while the host is still reachable),
    pivot_root, and a read-only root if asked. ``etc_files``: container path -> text, kept on a
    tmpfs of the container's (notebook 03); ``etc_binds``: container path -> a host file the runtime
    keeps outside the root (the engine's way, etcfiles.py); ``init``: (host binary, container path),
    ``--init``'s read-only bind (:func:`bind_host_binary`); ``tmpfs``: (container path, flags,
    data) of ``--tmpfs`` (runtime/config.parse_tmpfs), after the volumes, resolved as they are."""
    volumes = [parse_volume(v) if isinstance(v, str) else v for v in volumes]
    for host, target in devices:
        _mount_on(host, root, target, None, sc.MS_BIND, create="file")
    for v in volumes:
        kind = "dir" if os.path.isdir(v.source) else "file"
        target = volume_target(root, v.target)
        _mount_on(v.source, root, target, None, sc.MS_BIND | sc.MS_REC, create=kind)
        if v.readonly:
            fd = open_in_root(root, target)
            try:
                _remount_ro(f"/proc/self/fd/{fd}")
            finally:
                os.close(fd)
    for target, flags, data in tmpfs:
        _mount_on("tmpfs", root, volume_target(root, target), "tmpfs", flags, data or None)

    files = dict(etc_files or {})
    if hostname is not None and "/etc/hostname" not in files:
        files["/etc/hostname"] = hostname + "\n"
    if files:
        # A tmpfs holding the generated files, each bind-mounted over its target (as Docker does with
        # /var/lib/docker/containers/<id>/hostname): the image's file stays untouched.
        stash = os.path.join(root, "dev", ".mc-etc")
        os.mkdir(stash, 0o755)
        for i, (dst, content) in enumerate(sorted(files.items())):
            src = os.path.join(stash, str(i))
            with open(src, "w") as f:
                f.write(content)
            _mount_on(src, root, dst, None, sc.MS_BIND, create="file")
    for dst, src in sorted((etc_binds or {}).items()):
        try:                         # the runtime's own file: bind exactly what we opened
            sfd = os.open(src, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise from_oserror(exc, "open the generated file", src, cls=MountError) from exc
        try:
            _mount_on(f"/proc/self/fd/{sfd}", root, dst, None, sc.MS_BIND, create="file")
        finally:
            os.close(sfd)

    if init is not None:
        bind_host_binary(init[0], root, init[1])

    os.chdir(root)
    sc.pivot_root(".", ".")
    # The old root is now stacked on top of "/": detach it (lazy, it may still be busy).
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")
    if readonly:
        # read-only and nothing more: runc remounts the root MS_RDONLY only, so a setuid binary in a
        # --read-only container works as in a writable one (nosuid here made the two differ)
        _remount_ro("/")


# --- for the OCI runtime (minicontainer/oci/mounts.py), which mounts what config.json lists -------
#: mount onto ``root``/``target`` (symlink-safe, through /proc/self/fd; ``create`` "dir" or "file");
#: hide a path (/dev/null over a file, an empty read-only tmpfs over a directory); make one read-only
mount_in_root, mask_path, readonly_path = _mount_on, _mask, _readonly


def own_hierarchies(group: str) -> set[str] | None:
    """The hierarchies (``/proc/self/cgroup``'s second field: ``memory``, ``cpu,cpuacct``, ``""`` for
    v2) in which this process's group is ``group`` (the container's, below our parent); None if
    there is none (then :func:`mount_cgroupfs` mounts every one, as before groups existed)."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = [line.rstrip("\n").split(":", 2) for line in f if line.strip()]
    except OSError:
        return None
    own = {ctrls for _hid, ctrls, path in lines if path.rstrip("/").rsplit("/", 1)[-1] == group}
    return own or None


def mount_cgroupfs(root: str, *, readonly: bool = True, only: set[str] | None = None) -> None:
    """/sys/fs/cgroup inside ``root``, as Docker mounts it: in the container's cgroup namespace (so
    its own group is the hierarchy's root) and read-only unless --privileged. The hierarchies are the
    caller's, from /proc/self/cgroup: v2 alone (``0::/``) is one cgroup2 mount; v1 is a tmpfs with one
    mount per hierarchy (``cpu,cpuacct``, ``name=systemd``, and a hybrid host's ``unified``), and the
    tmpfs is made read-only last; ``only`` (:func:`own_hierarchies`) keeps the hierarchies where the
    container has a group of its own — elsewhere its namespace's root is the host's root group.
    Rejected: no cgroupfs at all — tools inside (systemd, a JVM reading its memory limit) look for
    it, and a private namespace shows nothing of the host's."""
    flags = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | (sc.MS_RDONLY if readonly else 0)
    try:
        with open("/proc/self/cgroup") as f:
            lines = [line.rstrip("\n").split(":", 2) for line in f if line.strip()]
    except OSError as exc:
        raise from_oserror(exc, "read", "/proc/self/cgroup", cls=MountError) from exc
    if only is not None:             # own_hierarchies: none where the container has no group
        lines = [line for line in lines if line[1] in only]
    v1 = [ctrls for hid, ctrls, _ in lines if hid != "0" and ctrls]
    if not v1:
        _mount_on("cgroup2", root, "/sys/fs/cgroup", "cgroup2", flags)
        return
    _mount_on("tmpfs", root, "/sys/fs/cgroup", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC,
              "mode=755,size=64k")
    # The tmpfs is ours and empty: its directories are made and mounted on through one descriptor of
    # it, not resolved again from ``root`` for each of a v1 host's ~10 hierarchies (bench/README.md).
    fd = open_in_root(root, "/sys/fs/cgroup")
    try:
        at = f"/proc/self/fd/{fd}"
        mounts = [(c[len("name="):] if c.startswith("name=") else c, "cgroup",
                   f"none,{c}" if c.startswith("name=") else c) for c in v1]
        if any(hid == "0" for hid, _, _ in lines):
            mounts.append(("unified", "cgroup2", None))
        for name, fstype, data in mounts:
            try:
                os.mkdir(name, 0o755, dir_fd=fd)
            except OSError as exc:
                raise from_oserror(exc, "mkdir", f"{root.rstrip('/')}/sys/fs/cgroup/{name}", cls=MountError) from exc
            sc.mount(fstype, f"{at}/{name}", fstype, flags, data)
        if readonly:
            sc.mount(None, at, None, sc.MS_REMOUNT | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_RDONLY,
                     "mode=755,size=64k")
    finally:
        os.close(fd)
