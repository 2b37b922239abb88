"""The code that runs inside the new container, before the user's command (runc init's role).

runc re-executes itself as ``runc init`` inside the namespaces it made (libcontainer's
standard_init_linux.go); we fork instead, so this code is already loaded in the child. Two processes:

- **C** (:func:`child`), forked by parked.py, already inside the new container's cgroup: unshares
  the namespaces (uts, ipc, pid, net — or joins a peer's net), and forks again, because a new PID
  namespace only applies to the *next* child. C reports G's pid on the error pipe and then waits for
  G — or, for a detached container and the server's spare (``slim``), waits to be ended by the
  monitor (the spare's worker) once G is in its cgroup, leaving G to it (parked.py's hand-over,
  waiter.py says why). With
  ``--userns=remap`` uts, ipc and net are a user namespace's instead, made by a helper that C joins
  (userns.py); C stays host root;
- **G** (:func:`container_init`), PID 1 of the container: unshares the mount namespace, mounts the
  overlay and the API file systems (``rootfs.prepare_root``) while the runtime is still joining the
  cgroup, then waits on its socket for the *release* — the record, the generated /etc files, its
  stdio as fds — and finishes: volumes, /etc, ``--init``'s binary, pivot_root, hostname, working
  directory, ids, exec. A remapped G idmaps the image's layers before the overlay, does all of that
  as host root, and joins the user namespace last, just before the working directory and the ids
  (userns.py).

The mounts live only in G's mount namespace and vanish with it: nothing on the host to clean up.
Any failure is one line, ``CODE message``, on an O_CLOEXEC error pipe: the runtime raises it, and a
failed exec gives docker's 127 (not found) or 126 (cannot execute). Both processes get the parent
death signal: if the runtime (or monitor) dies, so does the container — a detached G only once C
has gone and the monitor is its parent (:func:`_watch_monitor`). Neither ever returns: the
caller's ``finally`` is ``os._exit``.
"""

from __future__ import annotations

import os

import _signal as signal  # the C half: `signal` imports enum (namespaces.py does the same)

from ..errors import MiniContainerError, exit_code, from_oserror
from .. import fastjson  # json without the package's import (fastjson.py)
from .config import ContainerConfig


def close_inherited(keep=-1) -> None:
    """Close every fd but stdio (and ``keep``, the error pipe: it closes itself on exec). Whatever the
    runtime's caller left open without O_CLOEXEC — a lock, a socket, a directory — would otherwise
    stay open in the container for its whole life (a leaked directory fd was runc's CVE-2024-21626;
    a leaked ``flock`` fd kept a lock held until the container ended). closerange is one
    close_range(2) call here. ``keep``: one fd or several."""
    lo = 3
    for fd in sorted(k for k in ((keep,) if isinstance(keep, int) else keep) if k > 2):
        os.closerange(lo, fd)
        lo = fd + 1
    os.closerange(lo, 1 << 20)


def enter_workdir(path, user, fail) -> None:
    """chdir to the container's working directory *after* pivot_root, and check where we landed, as
    runc does since CVE-2024-21626: a path through a magic link (``/proc/self/fd/N`` naming a
    directory the runtime had open) resolves outside the root, and ``getcwd`` then reports the
    directory as unreachable (ENOENT). An integer is refused outright (``os.chdir(5)`` is an
    ``fchdir``). Rejected: resolving the path on the host side under the merged root — the
    container's own symlinks could still lead out; after the pivot "/" is the container's root."""
    if not isinstance(path, str) or not path.startswith("/"):
        fail(125, f"chdir to working directory {path!r}: not an absolute path")
    try:
        os.chdir(path)
    except FileNotFoundError:
        make_workdir(path, user, fail)   # Docker makes a missing one
    except OSError as exc:
        fail(125, f"chdir to working directory {path}: {exc.strerror}")
    try:
        os.getcwd()
    except OSError:
        fail(125, f"chdir to working directory {path}: it is outside the container's root "
                  f"(a magic link such as /proc/self/fd/N?); use a path inside the container")


def switch_user(user: str, env: dict) -> None:
    """Become ``USER[:GROUP]`` after everything that needs root: names and numbers resolved in the
    container's own /etc/passwd and /etc/group (``images.userdb`` opens them without following the
    container's symlinks), supplementary groups from /etc/group, HOME set when ``env`` has none.

    ``images.userdb`` must already be imported (``import_user_db``): after pivot_root or a setns into
    the container's mount namespace, the package's files are out of reach."""
    from ..images.userdb import switch_user as become
    try:
        become(user, env)
    except OSError as exc:
        raise from_oserror(exc, f"switch to user {user}") from exc


def make_workdir(path: str, user: str | None, fail) -> None:
    """A missing working directory (``-w``, the image's WorkingDir) is made, as Docker does, owned by
    the container's user; then entered. We are past pivot_root: the root is the container's, so
    neither ``..`` nor an absolute symlink of the image leads out of it (the host's root is detached),
    and only the components that were missing are made and handed to the user."""
    uid = gid = 0
    if user:
        from ..images.userdb import resolve_user
        try:
            uid, gid, _groups, _home = resolve_user(user, "/")
        except Exception:                       # noqa: BLE001 - the user's own error comes at its switch
            pass
    cur = "/"
    try:
        for part in [p for p in path.split("/") if p]:
            cur = os.path.join(cur, part)
            try:
                os.mkdir(cur, 0o755)
            except FileExistsError:
                continue
            os.chown(cur, uid, gid, follow_symlinks=False)
        os.chdir(path)
    except OSError as exc:
        fail(125, f"create working directory {cur}: {exc.strerror}")


def import_user_db() -> None:
    """Load the modules ``switch_user`` needs while the host's root is still ours."""
    from .. import rootfs  # noqa: F401 - userdb opens /etc/passwd with rootfs.open_in_root
    from ..images import userdb  # noqa: F401


def child(spec: dict, sock, err_w) -> None:
    """C: unshare, fork G (PID 1), report G's pid, wait for it. Never returns (the caller's finally
    does os._exit)."""
    from .. import syscalls as sc
    from ..namespaces import flags_for

    def fail(code: int, msg: str):
        os.write(err_w, f"\n{code} {msg}\n".encode())
        os._exit(code)
    fail.fd = err_w

    try:
        sc.set_pdeathsig(signal.SIGKILL)
        names, userns_fd = spec["names"], -1
        if spec.get("idmap"):            # --userns=remap: uts, ipc, net owned by its user namespace
            # (container:NAME: the peer's user namespace, which owns the peer's net joined below)
            from . import userns
            owned = [n for n in names if n in userns.OWNED]
            userns_fd = userns.make(spec["idmap"], owned, join=spec.get("join_user"))
            names = [n for n in names if n not in owned]
        sc.unshare(flags_for(names))
        if spec.get("join_net"):
            from ..namespaces import enter
            enter(spec["join_net"], ["net"])
        try:
            gpid = os.fork()
        except OSError as exc:
            raise from_oserror(exc, "fork the container's PID 1", None,
                               hint="is the host's or the cgroup's pids limit reached?") from exc
        if gpid:
            if userns_fd >= 0:
                os.close(userns_fd)
            os.write(err_w, f"{gpid}\n".encode())
            os.close(err_w)
            sock.close()
            if spec.get("slim"):
                # a detached container or the spare: the monitor (the spare's worker) ends us once
                # G is in its cgroup and takes G over (parked.Parked.hand_over). Never reap G
                # here: its pid must stay ours.
                while True:
                    signal.pause()
            signal.signal(signal.SIGTERM, lambda s, f: os.kill(gpid, s))
            signal.signal(signal.SIGINT, lambda s, f: os.kill(gpid, s))
            while True:
                try:
                    _, status = os.waitpid(gpid, 0)
                    break
                except InterruptedError:
                    continue
            os._exit(exit_code(status))
        if not spec.get("slim"):          # (detached: once C has gone, _watch_monitor)
            sc.set_pdeathsig(signal.SIGKILL)  # the runtime (or monitor) died: so does the container
        container_init(spec, sock, fail, userns_fd)
    except MiniContainerError as exc:
        fail(getattr(exc, "exit_code", 125), str(exc))
    except OSError as exc:          # one not translated where it happened: still operation + errno
        fail(125, str(from_oserror(exc, "set up the container", exc.filename)))
    except Exception as exc:        # noqa: BLE001 — a bug of ours: say so in one line, not silence
        fail(125, f"set up the container: {type(exc).__name__}: {exc} (a bug in minicontainer: "
                  "please report it with the command you ran)")


def _console(slave: int) -> None:
    """Bind the terminal's slave over /dev/console (our /dev tmpfs, after the pivot), as runc does
    for ``terminal: true``: what a program writes to the console reaches ``-t``'s terminal."""
    from .. import syscalls as sc
    try:
        os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
    except OSError as exc:
        raise from_oserror(exc, "create the console's mount point", "/dev/console") from exc
    sc.mount(os.ttyname(slave), "/dev/console", None, sc.MS_BIND)


def _watch_monitor(monitor: int, fail) -> None:
    """A detached G: die with the monitor from now on. The parent-death signal fires whenever the
    parent exits, so G could not set it while C — ended by the monitor before the release
    (parked.py) — was its parent; now the monitor is. Set it, *then* check the parent (the usual
    getppid check, through the host's /proc: in its own PID namespace G's getppid is 0): a monitor
    that died in between has left G to another reaper, and no one would wait for this container."""
    from .. import syscalls as sc
    sc.set_pdeathsig(signal.SIGKILL)
    with open("/proc/self/status") as f:        # still the host's /proc: before pivot_root
        ppid = next((int(ln.split()[1]) for ln in f if ln.startswith("PPid:")), 0)
    if ppid != monitor:
        fail(125, f"start the container: its monitor (pid {monitor}) has ended")


def container_init(spec: dict, sock, fail, userns_fd: int = -1) -> None:
    """G, PID 1 of the container: overlay and API file systems, then wait for the release; then
    volumes, /etc, pivot_root, hostname, ids, exec. With ``userns_fd`` (--userns=remap) G does all
    of that as host root and joins the user namespace last (userns.py says why)."""
    from .. import fdpass, syscalls as sc
    from ..images.overlay import mount_overlay
    from ..rootfs import enter_root, mount_cgroupfs, own_hierarchies, prepare_root
    from . import init as docker_init  # now: after pivot_root the package's files are out of reach
    # G, not C, makes the mount namespace: pivot_root moves the root of every process of the
    # namespace that had the old one; C keeps the host's (it exec'd waiter.py, a host file, once).
    sc.unshare(sc.CLONE_NEWNS)
    merged = os.path.join(os.path.dirname(spec["upperdir"]), "merged")
    try:
        os.makedirs(merged, 0o700, exist_ok=True)     # the overlay covers it; only root needs it
    except OSError as exc:
        raise from_oserror(exc, "create the overlay's mount point", merged) from exc
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_SLAVE)
    owner = None
    if userns_fd >= 0:
        from . import userns
        if spec.get("userns_layers") != "copy":    # a copy's owners are shifted on disk already
            userns.idmap_layers(spec["lowerdirs"], userns_fd)
        owner = userns.host_ids(spec["idmap"])
    mount_overlay(merged, spec["lowerdirs"], spec["upperdir"], spec["workdir_ovl"])
    root = prepare_root(merged, masks=not spec.get("unmask"), sys_rw=bool(spec.get("privileged")),
                        owner=owner)
    from . import confine
    confine.load_for_container()       # security.apply, userdb: after pivot_root they are out of reach

    try:
        body, fds = fdpass.recv(sock, 1 << 20, 3)
    except OSError as exc:
        raise from_oserror(exc, "receive the container's release from the runtime") from exc
    if not body:
        os._exit(0)                 # discarded: nobody needs this container after all
    if spec.get("slim"):
        _watch_monitor(spec["monitor"], fail)
    msg = fastjson.loads(body)
    if not msg.get("pty"):
        sock.close()                # -t: kept, the terminal's master goes back on it (below)
    for i, fd in enumerate(fds[:3]):
        os.dup2(fd, i)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    # Before anything resolves a path the user gave: a descriptor the caller left open would make
    # `-w /proc/self/fd/7` a door to the host (runc's CVE-2024-21626)
    close_inherited((fail.fd, userns_fd) + ((sock.fileno(),) if msg.get("pty") else ()))
    rec = msg["rec"]
    cfg = ContainerConfig.from_dict(rec["config"])
    if cfg.tty:
        from .tty import make_controlling   # only then: it pulls in termios and threading
    user = cfg.user or rec.get("image_user")            # -u, else the image's User
    # --init: the host's static init, bound read-only at /sbin/docker-init (runtime/init.py)
    init = (msg["init"], docker_init.CONTAINER_PATH) if cfg.init else None
    if cfg.cgroupns == "host":
        # The host's cgroup namespace: a cgroupfs mounted now would show the host's whole tree (and
        # none at all left /sys/fs/cgroup empty: a JVM finds no memory limit). The container's own
        # group of each hierarchy, bound, as runc does and our OCI runtime (one implementation:
        # oci/mounts.py). Before pivot_root: the host's hierarchies are reachable only now.
        from ..cgroups import Cgroup, default_backend
        from ..oci.mounts import mount_cgroup
        ro = 0 if spec.get("privileged") else sc.MS_RDONLY
        mount_cgroup(root, "/sys/fs/cgroup", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | ro,
                     Cgroup(rec["cgroup"], default_backend()), new_cgroupns=False)
    from .config import owned_tmpfs_data
    tmpfs = [(dst, flags, owned_tmpfs_data(data, owner)) for dst, flags, data in cfg.tmpfs]
    enter_root(root, volumes=cfg.volumes, readonly=cfg.read_only, etc_binds=msg["etc"], tmpfs=tmpfs,
               devices=msg.get("nodes") or (), init=init)
    sc.sethostname(cfg.hostname or rec["id"][:12])
    if cfg.cgroupns != "host":
        # Our own cgroup becomes "/" (Docker's default on v2): /proc/self/cgroup shows no host
        # path, and a cgroupfs mounted inside shows only this group's subtree. Now, not in C: the
        # parent has moved G into the container's group before the release (parked.py).
        # Only the hierarchies where the container has a group of its own (read before the unshare,
        # after which every line says "/"): a hybrid host's `unified` and v1's `name=systemd`, where
        # we make no group, would show the host's root group (its procs, its pressure files).
        own = own_hierarchies(rec["cgroup"])
        sc.unshare(sc.CLONE_NEWCGROUP)
        mount_cgroupfs("/", readonly=not spec.get("privileged"), only=own)   # after the pivot: "/" is ours
    deathsig = sc.get_pdeathsig()      # the ids change below (the user namespace, -u): see there
    if msg.get("pty"):
        # -t: the terminal from the container's own /dev/ptmx (its devpts instance, mounted by
        # prepare_root; after the pivot, so the slave is /dev/pts/0 inside); the master goes back to
        # the runtime, which relays it. Before the user namespace, while G may still mount: the
        # slave is bound over /dev/console as runc does for a terminal (a remapped container's
        # mount namespace is the host's user namespace's), and handed to the container's root.
        master, slave = os.openpty()
        fdpass.send(sock, b"pty", [master])
        os.close(master)
        sock.close()
        if owner is not None:
            os.fchown(slave, *owner)
        _console(slave)
        for i in range(3):
            os.dup2(slave, i)
        if slave > 2:
            os.close(slave)
    if userns_fd >= 0:
        userns.enter(userns_fd)        # the last namespace: from here on, root only inside
        os.close(userns_fd)
    close_inherited(fail.fd)          # before the chdir: no fd of the caller's may name the cwd
    enter_workdir(rec["workdir"], user, fail)
    env = dict(e.split("=", 1) for e in rec["env"])
    # --init: Docker's shape, `/sbin/docker-init -- ARGV...`; the init execs the command (tini
    # gives 127/126 with its own one line when it cannot) and exits with its status
    argv = docker_init.command(rec["argv"]) if cfg.init else rec["argv"]

    def exec_command():
        try:
            os.execvpe(argv[0], argv, env)
        except FileNotFoundError:
            fail(127, f"exec {argv[0]}: executable file not found in $PATH")
        except OSError as exc:
            fail(126, f"exec {argv[0]}: {exc.strerror}")

    if cfg.tty and os.isatty(0):
        make_controlling(0)  # noqa: F821 - imported above when cfg.tty
    # The user's numbers from the container's /etc, then capabilities, seccomp, no_new_privs, the
    # ids and the AppArmor profile in security.apply's order: the last step before exec (with
    # --init, tini's exec: PID 1 is confined as well, as Docker's tini is, and the command it forks
    # and execs inherits the profile). The profile now, not at execve: AppArmor clears the
    # parent-death signal at an exec that changes the profile, and PID 1 would outlive its monitor.
    prepared = confine.in_container(msg["security"], user, env) if msg.get("security") else None
    if prepared is None and user:
        switch_user(user, env)
    if prepared is not None:
        from ..security import apply
        apply(prepared, apparmor_now=True)
    if deathsig and not sc.get_pdeathsig():
        # The kernel cleared the parent-death signal when the credentials changed (-u, or the
        # remapped user namespace's root): set it again, as runc does after its setuid, or a container
        # would outlive a crashed runtime or monitor — and gc skips a container whose PID 1 lives.
        # prctl is in Docker's seccomp allowlist, and needs no capability.
        sc.set_pdeathsig(deathsig)
    exec_command()
