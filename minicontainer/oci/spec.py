"""A bundle's ``config.json`` (OCI runtime spec 1.0/1.1) → validated records.

The input of the OCI runtime (runc's ``libcontainer/specconv`` plus the spec's Go types, in one
place): every field this runtime understands is type-checked here, before anything exists on the
host, so a bad bundle fails with one line naming the field — ``config.json: process.user.uid:
expected an integer, got "x"`` — and leaves nothing behind. Fields we do not know are ignored, as
the spec asks ("implementations MUST ignore unknown properties"); fields we know but cannot honour
on this host fail at create time in the module that uses them.

Rejected: handing the raw dict around and checking each field where it is used. A type error would
then surface half-way through create, after a cgroup or a mount exists, and need cleanup code.
"""
from __future__ import annotations

import os

from .. import fastjson
from .._record import factory, record
from ..errors import ConfigError, NotFoundError

SPEC_VERSION = "1.1.0"

#: OCI namespace type → our name (minicontainer.namespaces.KINDS)
NAMESPACES = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
              "user": "user", "cgroup": "cgroup", "time": "time"}
HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
PROPAGATIONS = ("", "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable",
                "runbindable")


class SpecError(ConfigError):
    """config.json (or exec's process.json) is missing, not JSON, or has a field of the wrong type."""


# --- the records ----------------------------------------------------------------------------------

@record(frozen=True)
class User:
    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: tuple = ()


@record(frozen=True)
class Process:
    args: tuple
    env: tuple = ()
    cwd: str = "/"
    user: User = factory(User)
    terminal: bool = False
    console_size: tuple | None = None          # (height, width)
    capabilities: dict | None = None           # None: leave them as they are (runc's behaviour)
    rlimits: tuple = ()                        # (("RLIMIT_NOFILE", soft, hard), …)
    no_new_privileges: bool = False
    oom_score_adj: int | None = None
    apparmor_profile: str = ""
    selinux_label: str = ""


@record(frozen=True)
class Mount:
    destination: str
    type: str = ""
    source: str = ""
    options: tuple = ()


@record(frozen=True)
class Hook:
    path: str
    args: tuple = ()
    env: tuple = ()
    timeout: int | None = None


@record(frozen=True)
class Namespace:
    type: str                                  # our name: "pid", "net", "mnt", …
    path: str = ""                             # join this one instead of making a new one


@record(frozen=True)
class IDMap:
    container_id: int
    host_id: int
    size: int


@record(frozen=True)
class Device:
    path: str
    type: str
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


@record(frozen=True)
class Resources:
    memory: int | None = None                  # bytes
    memory_swap: int | None = None             # memory + swap; -1 unlimited
    cpu_shares: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpuset: str | None = None
    pids: int | None = None
    blkio_weight: int | None = None
    devices: tuple = ()                        # raw OCI rules (dicts), for security.devices.apply


@record(frozen=True)
class Linux:
    namespaces: tuple = ()
    uid_mappings: tuple = ()
    gid_mappings: tuple = ()
    resources: Resources = factory(Resources)
    cgroups_path: str = ""
    sysctl: dict = factory(dict)
    masked_paths: tuple = ()
    readonly_paths: tuple = ()
    rootfs_propagation: str = ""
    devices: tuple = ()
    seccomp: dict | None = None

    def namespace(self, kind: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.type == kind:
                return ns
        return None


@record(frozen=True)
class Spec:
    oci_version: str
    root_path: str                             # absolute (made so against the bundle)
    root_readonly: bool = False
    process: Process | None = None
    hostname: str | None = None
    domainname: str | None = None
    mounts: tuple = ()
    hooks: dict = factory(dict)                # kind → tuple of Hook
    annotations: dict = factory(dict)
    linux: Linux = factory(Linux)


# --- checks: each names the field as a JSON path ------------------------------------------------------

def _typename(v) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "null"}.get(type(v), type(v).__name__)


def _bad(where: str, want: str, v) -> SpecError:
    return SpecError(f"{_doc}: {where}: expected {want}, got {_typename(v)} {fastjson.dumps(v)[:40]}")


_doc = "config.json"


def _obj(d: dict, key: str, where: str, required: bool = False) -> dict | None:
    v = d.get(key)
    if v is None:
        if required:
            raise SpecError(f"{_doc}: {where}: missing", hint="the OCI runtime spec requires it")
        return None
    if not isinstance(v, dict):
        raise _bad(where, "an object", v)
    return v


def _str(d: dict, key: str, where: str, default=None, required=False):
    v = d.get(key)
    if v is None:
        if required:
            raise SpecError(f"{_doc}: {where}: missing", hint="the OCI runtime spec requires it")
        return default
    if not isinstance(v, str):
        raise _bad(where, "a string", v)
    return v


def _int(d: dict, key: str, where: str, default=None, lo=None, hi=None):
    v = d.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int):
        raise _bad(where, "an integer", v)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise SpecError(f"{_doc}: {where}: {v} out of range")
    return v


def _bool(d: dict, key: str, where: str, default=False):
    v = d.get(key)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise _bad(where, "a boolean", v)
    return v


def _list(d: dict, key: str, where: str, item=None) -> list:
    v = d.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise _bad(where, "an array", v)
    if item is str:
        for i, x in enumerate(v):
            if not isinstance(x, str):
                raise _bad(f"{where}[{i}]", "a string", x)
    elif item is int:
        for i, x in enumerate(v):
            if isinstance(x, bool) or not isinstance(x, int):
                raise _bad(f"{where}[{i}]", "an integer", x)
    elif item is dict:
        for i, x in enumerate(v):
            if not isinstance(x, dict):
                raise _bad(f"{where}[{i}]", "an object", x)
    return v


def _abs(path: str, where: str) -> str:
    if not path.startswith("/"):
        raise SpecError(f"{_doc}: {where}: {path!r} is not an absolute path")
    return path


# --- the parts ------------------------------------------------------------------------------------------

_CAP_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")


def parse_process(p: dict, where: str = "process") -> Process:
    args = _list(p, "args", f"{where}.args", str)
    if not args:
        raise SpecError(f"{_doc}: {where}.args: empty", hint="give the command to run, e.g. [\"sh\"]")
    env = _list(p, "env", f"{where}.env", str)
    cwd = _abs(_str(p, "cwd", f"{where}.cwd", "/", required=True), f"{where}.cwd")
    u = _obj(p, "user", f"{where}.user") or {}
    user = User(uid=_int(u, "uid", f"{where}.user.uid", 0, 0, 2**32 - 2),
                gid=_int(u, "gid", f"{where}.user.gid", 0, 0, 2**32 - 2),
                umask=_int(u, "umask", f"{where}.user.umask", None, 0, 0o777),
                additional_gids=tuple(_list(u, "additionalGids", f"{where}.user.additionalGids", int)))
    size = None
    cs = _obj(p, "consoleSize", f"{where}.consoleSize")
    if cs is not None:
        size = (_int(cs, "height", f"{where}.consoleSize.height", 0, 0, 65535),
                _int(cs, "width", f"{where}.consoleSize.width", 0, 0, 65535))
    caps = _obj(p, "capabilities", f"{where}.capabilities")
    if caps is not None:
        caps = {k: list(_list(caps, k, f"{where}.capabilities.{k}", str)) for k in _CAP_SETS if k in caps}
    rlimits = []
    for i, r in enumerate(_list(p, "rlimits", f"{where}.rlimits", dict)):
        w = f"{where}.rlimits[{i}]"
        kind = _str(r, "type", f"{w}.type", required=True)
        if not kind.startswith("RLIMIT_"):
            raise SpecError(f"{_doc}: {w}.type: {kind!r} is not an RLIMIT_* name")
        rlimits.append((kind, _int(r, "soft", f"{w}.soft", 0, 0, 2**64 - 1),
                        _int(r, "hard", f"{w}.hard", 0, 0, 2**64 - 1)))
    return Process(args=tuple(args), env=tuple(env), cwd=cwd, user=user,
                   terminal=_bool(p, "terminal", f"{where}.terminal"), console_size=size,
                   capabilities=caps, rlimits=tuple(rlimits),
                   no_new_privileges=_bool(p, "noNewPrivileges", f"{where}.noNewPrivileges"),
                   oom_score_adj=_int(p, "oomScoreAdj", f"{where}.oomScoreAdj", None, -1000, 1000),
                   apparmor_profile=_str(p, "apparmorProfile", f"{where}.apparmorProfile", ""),
                   selinux_label=_str(p, "selinuxLabel", f"{where}.selinuxLabel", ""))


def _mounts(cfg: dict) -> tuple:
    out = []
    for i, m in enumerate(_list(cfg, "mounts", "mounts", dict)):
        w = f"mounts[{i}]"
        dest = _abs(_str(m, "destination", f"{w}.destination", required=True), f"{w}.destination")
        if ".." in dest.split("/"):
            raise SpecError(f"{_doc}: {w}.destination: {dest!r} contains '..'")
        out.append(Mount(destination=os.path.normpath(dest), type=_str(m, "type", f"{w}.type", ""),
                         source=_str(m, "source", f"{w}.source", ""),
                         options=tuple(_list(m, "options", f"{w}.options", str))))
    return tuple(out)


def _hooks(cfg: dict) -> dict:
    h = _obj(cfg, "hooks", "hooks") or {}
    out = {}
    for kind in HOOK_KINDS:
        items = []
        for i, x in enumerate(_list(h, kind, f"hooks.{kind}", dict)):
            w = f"hooks.{kind}[{i}]"
            items.append(Hook(path=_abs(_str(x, "path", f"{w}.path", required=True), f"{w}.path"),
                              args=tuple(_list(x, "args", f"{w}.args", str)),
                              env=tuple(_list(x, "env", f"{w}.env", str)),
                              timeout=_int(x, "timeout", f"{w}.timeout", None, 1)))
        if items:
            out[kind] = tuple(items)
    return out


def _idmaps(lin: dict, key: str) -> tuple:
    out = []
    for i, m in enumerate(_list(lin, key, f"linux.{key}", dict)):
        w = f"linux.{key}[{i}]"
        out.append(IDMap(_int(m, "containerID", f"{w}.containerID", 0, 0),
                         _int(m, "hostID", f"{w}.hostID", 0, 0), _int(m, "size", f"{w}.size", 0, 1)))
    return tuple(out)


def _resources(lin: dict) -> Resources:
    r = _obj(lin, "resources", "linux.resources") or {}
    mem = _obj(r, "memory", "linux.resources.memory") or {}
    cpu = _obj(r, "cpu", "linux.resources.cpu") or {}
    pids = _obj(r, "pids", "linux.resources.pids") or {}
    blk = _obj(r, "blockIO", "linux.resources.blockIO") or {}
    devices = _list(r, "devices", "linux.resources.devices", dict)
    for i, d in enumerate(devices):
        _bool(d, "allow", f"linux.resources.devices[{i}].allow")
        _str(d, "type", f"linux.resources.devices[{i}].type")
        _str(d, "access", f"linux.resources.devices[{i}].access")
        _int(d, "major", f"linux.resources.devices[{i}].major")
        _int(d, "minor", f"linux.resources.devices[{i}].minor")
    limit = _int(mem, "limit", "linux.resources.memory.limit", None, -1)
    swap = _int(mem, "swap", "linux.resources.memory.swap", None, -1)
    pl = _int(pids, "limit", "linux.resources.pids.limit", None, -1)
    return Resources(memory=limit if limit and limit > 0 else None,
                     memory_swap=swap if (swap == -1 or (swap and swap > 0)) else None,
                     cpu_shares=_int(cpu, "shares", "linux.resources.cpu.shares", None, 0) or None,
                     cpu_quota=_int(cpu, "quota", "linux.resources.cpu.quota", None, -1),
                     cpu_period=_int(cpu, "period", "linux.resources.cpu.period", None, 0) or None,
                     cpuset=_str(cpu, "cpus", "linux.resources.cpu.cpus", None) or None,
                     pids=pl if pl and pl > 0 else None,
                     blkio_weight=_int(blk, "weight", "linux.resources.blockIO.weight", None, 0) or None,
                     devices=tuple(devices))


def _linux(cfg: dict) -> Linux:
    lin = _obj(cfg, "linux", "linux") or {}
    nss, seen = [], set()
    for i, n in enumerate(_list(lin, "namespaces", "linux.namespaces", dict)):
        kind = _str(n, "type", f"linux.namespaces[{i}].type", required=True)
        if kind not in NAMESPACES:
            raise SpecError(f"{_doc}: linux.namespaces[{i}].type: unknown namespace {kind!r}",
                            hint="one of " + ", ".join(NAMESPACES))
        if kind in seen:
            raise SpecError(f"{_doc}: linux.namespaces: {kind!r} given twice")
        seen.add(kind)
        path = _str(n, "path", f"linux.namespaces[{i}].path", "")
        nss.append(Namespace(NAMESPACES[kind], _abs(path, f"linux.namespaces[{i}].path") if path else ""))
    sysctl = _obj(lin, "sysctl", "linux.sysctl") or {}
    for k, v in sysctl.items():
        if not isinstance(v, str):
            raise _bad(f"linux.sysctl.{k}", "a string", v)
    devices = []
    for i, d in enumerate(_list(lin, "devices", "linux.devices", dict)):
        w = f"linux.devices[{i}]"
        kind = _str(d, "type", f"{w}.type", required=True)
        if kind not in ("c", "b", "u", "p"):
            raise SpecError(f"{_doc}: {w}.type: {kind!r} is not one of c, b, u, p")
        devices.append(Device(path=_abs(_str(d, "path", f"{w}.path", required=True), f"{w}.path"),
                              type=kind, major=_int(d, "major", f"{w}.major", 0, 0),
                              minor=_int(d, "minor", f"{w}.minor", 0, 0),
                              file_mode=_int(d, "fileMode", f"{w}.fileMode", None, 0, 0o7777),
                              uid=_int(d, "uid", f"{w}.uid", None, 0), gid=_int(d, "gid", f"{w}.gid", None, 0)))
    prop = _str(lin, "rootfsPropagation", "linux.rootfsPropagation", "")
    if prop not in PROPAGATIONS:
        raise SpecError(f"{_doc}: linux.rootfsPropagation: {prop!r} is not one of "
                        + ", ".join(p for p in PROPAGATIONS if p))
    cgpath = _str(lin, "cgroupsPath", "linux.cgroupsPath", "")
    if ".." in cgpath.replace(":", "/").split("/"):
        raise SpecError(f"{_doc}: linux.cgroupsPath: {cgpath!r} contains '..'")
    return Linux(namespaces=tuple(nss), uid_mappings=_idmaps(lin, "uidMappings"),
                 gid_mappings=_idmaps(lin, "gidMappings"), resources=_resources(lin),
                 cgroups_path=cgpath, sysctl=dict(sysctl),
                 masked_paths=tuple(_list(lin, "maskedPaths", "linux.maskedPaths", str)),
                 readonly_paths=tuple(_list(lin, "readonlyPaths", "linux.readonlyPaths", str)),
                 rootfs_propagation=prop, devices=tuple(devices),
                 seccomp=_obj(lin, "seccomp", "linux.seccomp"))


def parse(cfg, bundle: str = ".") -> Spec:
    """Validate a decoded config.json; ``root.path`` is made absolute against ``bundle``."""
    if not isinstance(cfg, dict):
        raise _bad("(top level)", "an object", cfg)
    version = _str(cfg, "ociVersion", "ociVersion", required=True)
    if not version.startswith("1."):
        raise SpecError(f"{_doc}: ociVersion: {version!r} is not supported",
                        hint=f"this runtime implements the OCI runtime spec 1.0–{SPEC_VERSION}")
    root = _obj(cfg, "root", "root", required=True)
    path = _str(root, "path", "root.path", required=True)
    proc = _obj(cfg, "process", "process")
    annotations = _obj(cfg, "annotations", "annotations") or {}
    for k, v in annotations.items():
        if not isinstance(v, str):
            raise _bad(f"annotations.{k}", "a string", v)
    hostname = _str(cfg, "hostname", "hostname", None)
    lin = _linux(cfg)
    spec = Spec(oci_version=version, root_path=os.path.normpath(os.path.join(bundle, path)),
                root_readonly=_bool(root, "readonly", "root.readonly"),
                process=parse_process(proc) if proc is not None else None,
                hostname=hostname, domainname=_str(cfg, "domainname", "domainname", None),
                mounts=_mounts(cfg), hooks=_hooks(cfg), annotations=dict(annotations), linux=lin)
    if hostname and not lin.namespace("uts"):
        raise SpecError(f"{_doc}: hostname: set, but there is no new uts namespace",
                        hint="add {\"type\": \"uts\"} to linux.namespaces")
    if (lin.uid_mappings or lin.gid_mappings) and not lin.namespace("user"):
        raise SpecError(f"{_doc}: linux.uidMappings: given, but there is no user namespace")
    return spec


def load(bundle: str) -> Spec:
    """Read and validate ``bundle``/config.json (what ``create --bundle`` does first)."""
    global _doc
    bundle = os.path.abspath(bundle)
    path = os.path.join(bundle, "config.json")
    _doc = path
    if not os.path.isdir(bundle):
        raise NotFoundError(f"bundle {bundle}: does not exist", hint="--bundle names a directory with config.json")
    try:
        with open(path, "rb") as f:
            cfg = fastjson.loads(f.read())
    except FileNotFoundError:
        raise NotFoundError(f"{path}: does not exist", hint="a bundle holds config.json and the root file system "
                            "(`minicontainer-oci spec` or `runc spec` writes an example)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: invalid JSON: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {os.strerror(exc.errno)}") from None
    spec = parse(cfg, bundle)
    if spec.process is None:
        raise SpecError(f"{path}: process: missing", hint="create needs a process to run")
    if not os.path.isdir(spec.root_path):
        raise NotFoundError(f"root.path {spec.root_path}: does not exist",
                            hint="the bundle's root file system (usually rootfs/) must be a directory")
    return spec


def load_process(path: str) -> Process:
    """exec's ``--process FILE``: one OCI ``process`` object."""
    global _doc
    _doc = path
    try:
        with open(path, "rb") as f:
            p = fastjson.loads(f.read())
    except FileNotFoundError:
        raise NotFoundError(f"{path}: does not exist", hint="--process names a JSON file") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: invalid JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(p, dict):
        raise _bad("(top level)", "an object", p)
    return parse_process(p, "process")


def example(args=("sh",), terminal: bool = True) -> dict:
    """A config.json like ``runc spec`` writes (rootfs/ beside it), for ``minicontainer-oci spec``."""
    return {
        "ociVersion": SPEC_VERSION,
        "process": {"terminal": terminal, "user": {"uid": 0, "gid": 0}, "args": list(args),
                    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                    "cwd": "/", "noNewPrivileges": True,
                    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]},
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "minicontainer",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                            "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }
