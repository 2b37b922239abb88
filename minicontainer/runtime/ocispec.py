"""A container's record as an OCI runtime-spec ``config.json`` (the engine → runtime seam; notebook 08).

Docker's split: the engine (dockerd, containerd) turns ``docker run``'s flags into a *bundle* — a root
file system and a ``config.json`` in the OCI runtime spec's words — and an OCI runtime (runc) makes
one container from it. :func:`spec` is the engine's half of that: from a record (container.py: the
flags already parsed and validated, the image's command and environment resolved) to the spec's
``process``, ``root``, ``hostname``, ``mounts`` and ``linux`` sections, with the same defaults our own
start path applies (rootfs.py: the API file systems, runc's masked and read-only paths; the cgroup
below our parent with the limits in bytes and CFS quota; one namespace per kernel concept, or a
peer's by path for ``--network container:NAME``). The device nodes rootfs.DEVICES are not listed:
the spec's default devices are the same six, and a runtime supplies them unasked. ``--init`` is
Docker's shape: ``process.args`` is ``/sbin/docker-init -- ARGV...`` and the host's static init is a
read-only bind mount there (init.py), so an OCI runtime given this spec runs tini as PID 1 too.

A pure function of the record: nothing is created, nothing is read but the record, the two
host paths given and, with ``--init``, where the host's init is; the result is JSON-serialisable
as is. Our own start path does not go through JSON (the record goes to the container's first
process directly: start_path.py), so a runtime that takes this dict in-process needs no round trip
either. Rejected: building the spec from argparse's namespace — the record is what ``create``
validated, and what ``start`` of a created container has.
"""

from __future__ import annotations

OCI_VERSION = "1.0.2"
CPU_PERIOD_US = 100_000          # as cgroups.values: docker's and runc's CFS period

#: the default nodes (rootfs.DEVICES; security.devices.default_nodes): a runtime supplies them unasked
_DEFAULT_NODES = {(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0)}

_NS = {"pid": "pid", "ipc": "ipc", "uts": "uts", "mnt": "mount", "net": "network"}


def _mount(dest: str, typ: str, source: str, *options: str) -> dict:
    return {"destination": dest, "type": typ, "source": source, "options": list(options)}


#: the API file systems a container gets (rootfs.prepare_root mounts the same ones)
DEFAULT_MOUNTS = (
    _mount("/proc", "proc", "proc", "nosuid", "noexec", "nodev"),
    _mount("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
    _mount("/dev/pts", "devpts", "devpts", "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"),
    _mount("/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k"),
    _mount("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "ro"),
    _mount("/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "noexec", "nodev", "relatime", "ro"),
    _mount("/tmp", "tmpfs", "tmpfs", "nosuid", "nodev", "mode=1777"),
)


def spec(rec: dict, rootfs: str, *, cgroup_parent: str | None = None, peer_pid: int | None = None,
         init_binary: str | None = None) -> dict:
    """The ``config.json`` of container ``rec`` whose root file system is at ``rootfs`` (the merged
    overlay). ``cgroup_parent``: the parent group (paths.CGROUP_PARENT by default); ``peer_pid``:
    PID 1 of the container whose network namespace ``--network container:NAME`` joins;
    ``init_binary``: ``--init``'s host binary (init.host_binary() by default)."""
    from ..rootfs import MASKED_PATHS, READONLY_PATHS, parse_volume
    from .config import ContainerConfig
    cfg = ContainerConfig.from_dict(rec["config"])
    if cgroup_parent is None:
        from .. import paths
        cgroup_parent = paths.CGROUP_PARENT
    uid, gid, groups = 0, 0, []
    user = cfg.user or rec.get("image_user")
    if user:                    # the spec's ids are numbers: names resolved in the image's /etc
        from ..images.userdb import resolve_user
        uid, gid, groups, _ = resolve_user(user, rootfs)
    mounts = [dict(m, options=[o for o in m["options"] if not (cfg.privileged and o == "ro"
                                                            and m["type"] in ("sysfs", "cgroup"))])
              for m in DEFAULT_MOUNTS]
    for v in cfg.volumes:
        vol = parse_volume(v)
        mounts.append(_mount(vol.target, "bind", vol.source, "rbind", "rprivate",
                             "ro" if vol.readonly else "rw"))
    if cfg.tmpfs:
        from .. import syscalls as sc
    for dst, flags, data in cfg.tmpfs:             # --tmpfs: the same flags, in the spec's words
        words = [w for bit, w in ((sc.MS_NOSUID, "nosuid"), (sc.MS_NODEV, "nodev"), (sc.MS_NOEXEC, "noexec"),
                                  (sc.MS_RDONLY, "ro")) if flags & bit]
        mounts.append(_mount(dst, "tmpfs", "tmpfs", *words, *filter(None, data.split(","))))
    namespaces = [{"type": _NS[n]} for n in ("pid", "ipc", "uts", "mnt")]
    if rec.get("idmap"):                           # --userns=remap: the record's maps (subids.py)
        user = {"type": "user"}
        if cfg.network.startswith("container:") and peer_pid is not None:
            user["path"] = f"/proc/{peer_pid}/ns/user"    # its net is its user namespace's (userns.py)
        namespaces.insert(0, user)
    if cfg.cgroupns != "host":
        namespaces.append({"type": "cgroup"})      # Docker's default on v2: --cgroupns private
    if cfg.network.startswith("container:"):
        if peer_pid is None:
            from ..errors import ConfigError
            raise ConfigError(f"--network {cfg.network}: the peer's PID 1 is needed for the spec",
                              hint="pass peer_pid (netattach.peer(cfg)['pid'])")
        namespaces.append({"type": "network", "path": f"/proc/{peer_pid}/ns/net"})
    elif cfg.network != "host":
        namespaces.append({"type": "network"})
    resources: dict = {}
    if cfg.memory is not None:
        resources["memory"] = {"limit": cfg.memory, "swap": 2 * cfg.memory}   # docker's default swap
    if cfg.cpus is not None:
        resources["cpu"] = {"quota": max(1000, round(cfg.cpus * CPU_PERIOD_US)), "period": CPU_PERIOD_US}
    if cfg.pids_limit is not None:
        resources["pids"] = {"limit": cfg.pids_limit}
    argv = list(rec["argv"])
    if cfg.init:                # Docker's shape: the host's static init, bound read-only (init.py)
        from . import init
        host = init_binary if init_binary is not None else init.host_binary()
        mounts.append(init.oci_mount(host))
        argv = init.command(argv)
    # notebook 07's fields, from the same flags our own start path confines with (confine.py)
    from .confine import fields
    sec = fields(cfg)
    caps = sec["process"]["capabilities"]
    if uid != 0:                # Docker's rule for a non-root user: no effective capabilities
        caps = dict(caps, effective=[], ambient=[])
    resources["devices"] = sec["linux"]["resources"]["devices"]
    linux_sec = {"devices": [n for n in sec["linux"]["devices"] if (n["major"], n["minor"]) not in _DEFAULT_NODES]}
    if sec["linux"].get("seccomp") is not None:
        linux_sec["seccomp"] = sec["linux"]["seccomp"]
    unmasked = sec["linux"]["maskedPaths"] == []
    spec_ = {
        "ociVersion": OCI_VERSION,
        "process": {"terminal": cfg.tty, "user": {"uid": uid, "gid": gid}, "args": argv,
                    "env": list(rec["env"]), "cwd": rec["workdir"], "capabilities": caps,
                    "noNewPrivileges": sec["process"]["noNewPrivileges"]},
        "root": {"path": rootfs, "readonly": cfg.read_only},
        "hostname": cfg.hostname or rec["id"][:12],
        "mounts": mounts,
        "linux": {"namespaces": namespaces, "resources": resources,
                  "cgroupsPath": f"{cgroup_parent}/{rec['cgroup']}",
                  "maskedPaths": [] if unmasked else list(MASKED_PATHS),
                  "readonlyPaths": [] if unmasked else list(READONLY_PATHS), **linux_sec,
                  **({"uidMappings": rec["idmap"]["uidMappings"], "gidMappings": rec["idmap"]["gidMappings"]}
                     if rec.get("idmap") else {})},
        "annotations": {"org.minicontainer.id": rec["id"], "org.minicontainer.name": rec["name"],
                        "org.minicontainer.image": cfg.image, "org.minicontainer.init": str(cfg.init).lower()},
    }
    if groups:
        spec_["process"]["user"]["additionalGids"] = list(groups)
    if cfg.ulimits:                                 # --ulimit: process.rlimits (RLIM_INFINITY for -1)
        spec_["process"]["rlimits"] = [{"type": t, "soft": s if s != -1 else 2**64 - 1,
                                        "hard": h if h != -1 else 2**64 - 1} for t, s, h in cfg.rlimits()]
    if sec["process"]["apparmorProfile"]:          # "": the kernel has no AppArmor (Docker leaves it out)
        spec_["process"]["apparmorProfile"] = sec["process"]["apparmorProfile"]
    return spec_
