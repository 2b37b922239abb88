"""cgroups: limit, prioritise, account and freeze a group of processes. Introduced in notebook 02.

One API over two backends, because hosts come in both kinds: cgroup v2 (one tree, every current
distribution) and v1 (one tree per controller; this course's CI, with a nearly empty v2 mount beside
it — "hybrid"). :func:`detect_layout` reads ``/proc/self/mountinfo`` and :func:`default_backend`
picks the backend that owns the controllers. Rejected alternative: the v2 tree alone on hybrid hosts —
it holds no controllers there, so no limit would hold.

Every group lives below our own parent (``paths.CGROUP_PARENT``, "minicontainer") in every
hierarchy: we never write into a group we did not create. The parent is created on demand and
removed again when the last group below it goes.

    with Cgroup.create("web", Limits(memory="64m", cpus=0.5, pids=20)) as cg:
        cg.add(pid); …; cg.stats()["oom_kills"]
    # leaving the block kills what is left in the group and deletes it

Used next by the runtime (notebook 06: ``minicontainer run --memory 64m``).
"""

from __future__ import annotations

from ..errors import ConfigError, NotFoundError
from .layout import Layout, detect_layout
from .values import Limits, _match, parse_cpus, parse_cpuset, parse_memory, parse_pids

__all__ = ["Cgroup", "Limits", "Layout", "parse_memory", "parse_cpus", "parse_pids", "parse_cpuset",
           "detect_layout", "default_backend", "list_groups", "validate_name", "STAT_KEYS"]

STAT_KEYS = ("cpu_usage_usec", "memory_current", "memory_peak", "pids_current", "oom_kills")
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"      # compiled on first use: values._match says why


def validate_name(name: str) -> str:
    """A group name is one path component we can safely join below our parent."""
    if not isinstance(name, str) or not _match(_NAME, name):
        raise ConfigError(f"cgroup name {name!r}: invalid",
                          hint="use letters, digits, '_', '.', '-' (no '/'), at most 128 characters")
    return name


def default_backend(layout: Layout | None = None):
    """The backend that owns this host's controllers: v1 on v1 and hybrid hosts, v2 on v2 hosts."""
    from .v1 import V1Backend
    from .v2 import V2Backend
    layout = layout or detect_layout()
    if layout.backend == "v2":
        return V2Backend(layout.v2)
    if layout.backend == "v1":
        return V1Backend(layout.v1)
    raise NotFoundError("no cgroup file system is mounted",
                        hint="mount cgroup2 on /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup)")


def remove_empty_parents() -> list[str]:
    """Our parent group in every mounted hierarchy — the v1 controllers, ``name=systemd`` (where the
    OCI runtime joins, as runc does) and v2 — once no group is left below it: a group deleted by a
    crash's cleanup, or by hand, leaves its parent behind. For ``minicontainer gc``."""
    from pathlib import Path
    from . import _files
    from .layout import mount_points
    removed = []
    for point in mount_points():
        parent = Path(point, _files.parent_name())
        if parent.is_dir():
            _files.rmdir_parent_if_empty(parent)
            if not parent.exists():
                removed.append(f"cgroup parent {parent}")
    return removed


def list_groups(backend=None) -> list[str]:
    """Names of the groups below our parent (what `minicontainer gc` looks at)."""
    return (backend or default_backend()).list_groups()


class Cgroup:
    """One group below our parent, on whichever backend this host has. Use :meth:`create`/:meth:`open`."""

    def __init__(self, name: str, backend):
        self.name = validate_name(name)
        self.backend = backend

    def __repr__(self) -> str:
        return f"Cgroup({self.name!r}, {self.backend!r})"

    @classmethod
    def create(cls, name: str, limits: Limits | None = None, *, backend=None,
               controllers: set[str] | None = None) -> "Cgroup":
        """Create the group and apply ``limits``; on any failure nothing is left behind.

        ``limits`` is checked (a :class:`Limits` validates itself) before a directory is made.
        ``controllers`` (v2 names) are enabled as well, for limits set later with :meth:`set_limits`.
        """
        validate_name(name)
        if limits is not None and not isinstance(limits, Limits):
            raise ConfigError(f"limits {limits!r}: not a Limits", hint="use cgroups.Limits(memory='64m', …)")
        backend = backend or default_backend()
        backend.create(name, (limits.controllers() if limits else set()) | set(controllers or ()))
        cg = cls(name, backend)
        try:
            if limits is not None:
                backend.apply(name, limits)
        except BaseException:
            backend.delete(name)
            raise
        return cg

    @classmethod
    def open(cls, name: str, *, backend=None) -> "Cgroup":
        """An existing group of ours; NotFoundError if there is none of that name."""
        validate_name(name)
        backend = backend or default_backend()
        if not backend.exists(name):
            raise NotFoundError(f"cgroup {name!r} not found below {backend!r}",
                                hint="`minicontainer ps` lists running containers")
        return cls(name, backend)

    # -- the four jobs: limit, account, control (prioritising is a limit too) ----------------------------
    def set_limits(self, limits: Limits) -> None:
        self.backend.apply(self.name, limits)

    def add(self, pid: int) -> None:
        """Move process ``pid`` (all its threads) into the group."""
        self.backend.add(self.name, int(pid))

    def procs(self) -> list[int]:
        return self.backend.procs(self.name)

    def stats(self) -> dict:
        """``cpu_usage_usec, memory_current, memory_peak, pids_current, oom_kills`` (None: unavailable)."""
        return self.backend.stats(self.name)

    def oom_kills(self) -> int | None:
        """How many of the group's processes the OOM killer ended (None: no memory controller)."""
        return self.backend.oom_kills(self.name)

    def freeze(self) -> None:
        self.backend.freeze(self.name)

    def thaw(self) -> None:
        self.backend.thaw(self.name)

    @property
    def frozen(self) -> bool:
        return self.backend.frozen(self.name)

    def kill(self) -> None:
        """SIGKILL every process in the group and wait until it is empty."""
        self.backend.kill(self.name)

    def delete(self, *, wait: bool = True) -> None:
        """Remove the group, retrying while the kernel reports it busy (``wait=False``: a busy group
        raises CgroupError at once); idempotent."""
        self.backend.delete(self.name, timeout=5.0 if wait else 0.0)

    def destroy(self) -> None:
        """Thaw, kill what is left, delete: how a ``with`` block, the cleanup cell and ``gc`` end a group."""
        try:
            if self.exists():
                if self.frozen:
                    self.thaw()
                self.kill()
        finally:
            self.delete()

    def dirs(self) -> dict:
        """Where the group lives: ``{"memory": Path(...), …}`` (v1) or ``{"unified": Path(...)}`` (v2)."""
        return self.backend.dirs(self.name)

    def file(self, filename: str):
        """The path of one control file, e.g. ``cg.file("memory.max")``."""
        return self.backend.file(self.name, filename)

    def exists(self) -> bool:
        return self.backend.exists(self.name)

    def __enter__(self) -> "Cgroup":
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()
