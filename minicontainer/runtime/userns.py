"""``run --userns=remap``: the container's root is an unprivileged host uid (issue 16; notebook 07).

The maps come from the ``minicontainer`` entries of /etc/subuid and /etc/subgid (subids.py), found at
``create`` and kept in the record (``idmap``, OCI-shaped). Docker's default stays ``--userns=host``.

**The order.** Everything that needs the host's root is done *before* the container's process
enters its user namespace, by processes that are still host root:

1. C (standard_init.child), host root in the container's cgroup, forks a short-lived helper that
   unshares a user namespace; C writes the helper's ``uid_map``/``gid_map`` (as host root: any range,
   ``setgroups`` left "allow"); the helper, root of the new namespace, then unshares uts, ipc and net
   — so *those* namespaces are owned by the container's user namespace — and C joins them by
   ``setns``, keeps an fd of the user namespace, and the helper ends (:func:`make`). C is still
   host root: it unshares the PID namespace and forks G.
2. The runtime plugs the veth into C's network namespace as before (host root may act in any).
3. G, host root, makes its mount namespace, clones each image layer as an *idmapped* mount
   (:func:`idmap_layers`; not the chowned copies of the fallback, below), mounts the overlay,
   /proc, /sys, /dev, the volumes, the /etc files, pivot_root, the cgroup namespace and its
   cgroupfs — every host path is resolved by host root, so no state directory has to be opened up
   (Docker makes /var/lib/docker 0711 for the same reason) — and only then joins the user
   namespace (:func:`enter`: ``setns``, then uid and gid 0 *inside*, i.e. the subordinate id on
   the host). Capabilities, seccomp, no_new_privs and the
   user switch follow in ``security.apply``'s order, as without a user namespace: CapEff is
   Docker's 14, but they count only in the container's user namespace.

**Sharing a network** (``--network container:NAME``): a remapped peer's network namespace is
owned by the peer's user namespace, so a second container that joins it must join that user
namespace too, or its root would have no capability over its own network (port 80, raw sockets).
Every remapped container has the same maps (the ``minicontainer`` range), so the peer's user
namespace is the second one's: in step 1 the helper ``setns``es into it (host root may join any user
namespace, and then has every capability there) instead of unsharing one, and makes uts and ipc
owned by it; C checks first that the peer's ``uid_map``/``gid_map`` are the record's, and joins the
peer's net as host root as before. The order is unchanged: G still joins the user namespace last.
Remapped on one side only is refused at ``create`` and again at ``start`` (:func:`check_peer`),
with the side to change: the net namespace would belong to a user namespace the other is not in.

So net, uts and ipc belong to the container's user namespace (a web server binds port 80 —
CAP_NET_BIND_SERVICE is checked against the network namespace's owner — and ``ping`` opens its raw
socket); mnt, pid and cgroup belong to the host's. Root inside can therefore never mount or unmount
anything (not even with ``--cap-add SYS_ADMIN``): a masked path stays masked. ``exec`` follows the
same rule: it joins every other namespace as host root and the user namespace *last*
(``setns(2)``: joining the mount namespace needs CAP_SYS_ADMIN in the namespace that owns it, the
host's — gone once the process is in the container's user namespace). Rejected: runc's order
(unshare user first, every other namespace owned by it, the rootfs mounted inside) — an overlay
mounted from inside a user namespace cannot read the ``trusted.overlay.*`` xattrs of the image's
opaque directories, and every host path (layers, the /etc files, volumes) would have to be
reachable by the subordinate uid.

**The image's files.** On disk a layer's files belong to uid 0; unmapped in the container's user
namespace they would show as 65534 and root inside could not write them. Each lower layer is cloned
with ``open_tree(OPEN_TREE_CLONE)``, given the container's maps with ``mount_setattr(
MOUNT_ATTR_IDMAP)`` and attached over the layer's own path with ``move_mount`` — in G's mount
namespace only, so it dies with the container. Through it on-disk uid N is host uid SUB+N, root inside
sees its own files, and a copy-up into the (not idmapped) upper dir stores SUB+N on disk: files the
container writes are owned by the subordinate range on the host. The upper dir itself is chowned to
SUB at ``create`` (it is the container's "/"); the tmpfs mounts (/dev, /tmp, /dev/shm) get
``uid=SUB,gid=SUB``. Nothing is copied and nothing is cached: the layers stay shared with every other
container. This needs Linux 5.19 (overlayfs over idmapped layers) and a store on a file system with
idmapped mounts (ext4, xfs, btrfs; not NFS, not an overlayfs).

**The fallback: a chowned copy.** Where the kernel refuses that (a probe at ``create`` finds out,
cached per store and kernel release) — or when ``MINICONTAINER_USERNS_LAYERS=copy`` asks for it —
each lower layer is copied once per range with its owners shifted (uid N → SUB+N; an id beyond the
range → 65534, as the idmapped mount shows it), kept next to the layer and removed with it by
``rmi``/``gc``, and G mounts the copies without idmapping them: what Docker's overlay2 does with
``--userns-remap`` (/var/lib/docker/SUB.SUB/). userns_layers.py has the probe, the knob
(``auto``, ``idmap``, ``copy``) and the cache; images/shifted.py the copy. Why the copy is only the
fallback: the first remapped run of every image pays a full copy (bench/README.md has the figure),
the disk holds the image twice, and the cache is one more thing ``rmi`` and ``gc`` must find; an
idmapped mount costs a few syscalls per layer at each start and nothing on disk.

**Volumes.** A bind-mounted host directory is *not* idmapped: its files show their host owners
through the container's maps, so a directory of host root's shows as 65534 (nobody) inside, and
root inside may not write it (its capabilities do not cover files of unmapped owners). The fix is
the host's: ``chown SUB:SUB`` the directory (SUB is ``inspect``'s ``HostConfig.IdMappings``), as
with Docker's ``--userns-remap``.
"""

from __future__ import annotations

import os

from ..errors import ConfigError, ContainerError, NamespaceError, from_oserror

#: the namespaces the container's user namespace owns (made by the helper, joined by C)
OWNED = ("uts", "ipc", "net")


def maps(idmap: dict) -> tuple[str, str]:
    """The ``uid_map`` and ``gid_map`` texts of an OCI-shaped ``idmap`` (``inside outside count``)."""
    def text(key):
        return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in idmap[key])
    return text("uidMappings"), text("gidMappings")


def _expect(fd: int, want: bytes) -> None:
    got = os.read(fd, 512)
    if got != want:
        msg = got[1:].decode(errors="replace") if got.startswith(b"!") else "it ended without a word"
        raise ContainerError(f"create the container's user namespace: {msg}")


def make(idmap: dict, names, join: int | None = None) -> int:
    """In C (host root): a user namespace with ``idmap``'s maps, and the namespaces ``names`` (of
    OWNED) owned by it, joined by this process, which stays host root. Returns an O_CLOEXEC fd of the
    user namespace (it lives while the fd or a member does). ``join``: the pid of a remapped peer
    (``--network container:NAME``) whose user namespace to take instead of a new one; its maps must
    be ``idmap``'s (:func:`same_maps`)."""
    from .. import syscalls as sc
    from ..namespaces import flags_for
    uid_map, gid_map = maps(idmap)
    flags = flags_for(names)
    peer_fd = -1
    if join is not None:
        same_maps(join, idmap)
        path = f"/proc/{join}/ns/user"
        try:
            peer_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise from_oserror(exc, "open", path, cls=NamespaceError,
                               hint="the container whose network this one shares has ended") from exc
    up_r, up_w = os.pipe2(os.O_CLOEXEC)
    down_r, down_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:                           # the helper: never returns
        try:
            os.close(up_r)
            os.close(down_w)
            if peer_fd >= 0:               # host root may join any; it then has every capability there
                sc.setns(peer_fd, sc.CLONE_NEWUSER, path=f"/proc/{join}/ns/user")
            else:
                sc.unshare(sc.CLONE_NEWUSER)
            os.write(up_w, b"u")
            if os.read(down_r, 1) == b"m":
                if flags:
                    sc.unshare(flags)      # as root of the new user namespace: it owns them
                os.write(up_w, b"n")
                os.read(down_r, 1)         # EOF: C holds what it needs
        except BaseException as exc:      # noqa: BLE001 - reported to C in one line
            try:
                os.write(up_w, b"!" + str(exc).encode()[:500])
            except OSError:
                pass
        finally:
            os._exit(0)
    os.close(up_w)
    os.close(down_r)
    if peer_fd >= 0:
        os.close(peer_fd)
    fds = []
    try:
        _expect(up_r, b"u")
        if join is None:                   # a peer's namespace has its maps already
            from ..namespaces import write_id_maps
            write_id_maps(pid, uid_map, gid_map, setgroups=None,
                          hint="the minicontainer entries of /etc/subuid and /etc/subgid must be valid "
                               "ranges (START:COUNT, not 0)")
        os.write(down_w, b"m")
        _expect(up_r, b"n")
        for name in ("user", *names):
            path = f"/proc/{pid}/ns/{name}"
            try:
                fds.append((os.open(path, os.O_RDONLY | os.O_CLOEXEC), name, path))
            except OSError as exc:
                raise from_oserror(exc, "open", path, cls=NamespaceError) from exc
        for fd, name, path in fds[1:]:
            sc.setns(fd, sc.NAMESPACE_FLAGS[name], path=path)
        user = fds.pop(0)[0]
        return user
    except BaseException:
        if fds and fds[0][1] == "user":
            os.close(fds.pop(0)[0])
        raise
    finally:
        for fd, _, _ in fds:
            os.close(fd)
        os.close(down_w)
        os.close(up_r)
        os.waitpid(pid, 0)


def same_maps(pid: int, idmap: dict) -> None:
    """The user namespace of ``pid`` has ``idmap``'s maps (the kernel's ``uid_map``/``gid_map``, not a
    record's word for them); ContainerError otherwise."""
    for want, name in zip(maps(idmap), ("uid_map", "gid_map")):
        path = f"/proc/{pid}/{name}"
        try:
            with open(path) as f:
                got = f.read()
        except OSError as exc:
            raise from_oserror(exc, "read", path, cls=NamespaceError,
                               hint="the container whose network this one shares has ended") from exc
        if [ln.split() for ln in got.splitlines()] != [ln.split() for ln in want.splitlines()]:
            raise ContainerError(f"join the user namespace of pid {pid}: its {name} is "
                                 f"{' '.join(got.split())!r}, this container's is {' '.join(want.split())!r}",
                                 hint="restart the container whose network this one shares, then this one")


def check_peer(idmap, peer: dict, ref: str) -> None:
    """``--network container:NAME``: both containers remapped with the same maps, or neither.
    ConfigError (125) with the fix otherwise — checked at ``create`` and again at ``start``."""
    theirs = peer.get("idmap")
    if bool(idmap) != bool(theirs):
        flag = "remap" if theirs else "host"
        raise ConfigError(f"--network container:{ref}: container {peer.get('name')} runs with "
                          f"--userns={flag} and this one with --userns={'host' if theirs else 'remap'}; "
                          "a shared network namespace belongs to one user namespace",
                          hint=f"run this one with --userns={flag} too")
    if idmap and theirs != idmap:
        raise ConfigError(f"--network container:{ref}: container {peer.get('name')} was remapped with "
                          f"other ids ({theirs}) than this one ({idmap}): /etc/subuid or /etc/subgid "
                          "changed since it started", hint=f"restart {peer.get('name')}, then this one")


def idmap_layers(lowerdirs, userns_fd: int) -> None:
    """In G's mount namespace (host root, before the overlay is mounted): each lower layer is
    covered by an idmapped clone of itself, so that its on-disk uid N shows as the container's N."""
    from .. import syscalls as sc
    for d in lowerdirs:
        fd = sc.open_tree(d)
        try:
            sc.mount_setattr_idmap(fd, userns_fd, d)
            sc.move_mount(fd, d)
        finally:
            os.close(fd)


def enter(userns_fd: int) -> None:
    """Join the container's user namespace (the last namespace: after it, this process is root only
    there) and become its uid and gid 0 — the subordinate ids on the host. No supplementary groups:
    host root's are not mapped (``security.apply`` sets the user's own later)."""
    from .. import syscalls as sc
    sc.setns(userns_fd, sc.CLONE_NEWUSER, path="the container's user namespace")
    try:
        os.setgroups([])
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    except OSError as exc:
        raise from_oserror(exc, "become root of the container's user namespace", cls=NamespaceError,
                           hint="uid and gid 0 must be mapped (/etc/subuid, /etc/subgid)") from exc


def host_ids(idmap: dict) -> tuple[int, int]:
    """The host uid and gid of the container's root."""
    return idmap["uidMappings"][0]["hostID"], idmap["gidMappings"][0]["hostID"]
