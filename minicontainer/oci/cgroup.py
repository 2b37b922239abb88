"""``linux.cgroupsPath`` and ``linux.resources`` → one :class:`minicontainer.cgroups.Cgroup`.

The engine's groups live below our own parent ("minicontainer"); an OCI runtime's caller names the
group itself (podman: ``/libpod_parent/libpod-ID``, containerd: ``/default/ID``, systemd managers:
``system.slice:libpod:ID``). So the same backends are built with that path's parent instead of ours:
the cgroup code (limits, freezing, killing, both versions) is reused unchanged. An empty
cgroupsPath gets ``<our parent>/<id>`` (runc: ``/<id>``), which keeps a bare ``create`` below our
parent, where ``minicontainer gc`` and the tests' leak check look.

``--systemd-cgroup`` paths are translated to the directories systemd would use
(``system.slice/libpod-ID.scope``) and created directly in the file system: no D-Bus here.
"""
from __future__ import annotations

import errno
import os

from .. import paths
from ..cgroups import Cgroup, Limits, default_backend, detect_layout
from ..cgroups import _files as f
from ..errors import CgroupError, ConfigError


def _expand_slice(sl: str) -> str:
    """systemd's slice nesting: ``a-b.slice`` lives in ``a.slice/a-b.slice``."""
    if not sl or sl == "-.slice":
        return ""
    if not sl.endswith(".slice"):
        raise ConfigError(f"linux.cgroupsPath: {sl!r} is not a slice", hint="systemd paths are slice:prefix:name")
    base, parts, out = sl[:-len(".slice")], [], []
    for word in base.split("-"):
        parts.append(word)
        out.append("-".join(parts) + ".slice")
    return "/".join(out)


def resolve(cgroups_path: str, cid: str, systemd: bool = False) -> str:
    """The group's path below each hierarchy's root, without a leading '/'."""
    if systemd and cgroups_path.count(":") == 2:
        sl, prefix, name = cgroups_path.split(":")
        sl = _expand_slice(sl or "system.slice")
        scope = f"{prefix}-{name}.scope" if prefix else name if name.endswith(".slice") else f"{name}.scope"
        path = f"{sl}/{scope}" if sl else scope
    elif cgroups_path:
        path = cgroups_path
    else:
        path = f"{paths.CGROUP_PARENT}/{cid}"
    path = os.path.normpath("/" + path).lstrip("/")
    if not path or ".." in path.split("/"):
        raise ConfigError(f"linux.cgroupsPath {cgroups_path!r}: not a group below the root")
    return path


def _backend(parent: str):
    layout = detect_layout()
    if layout.backend == "v2":
        from ..cgroups.v2 import V2Backend
        return V2Backend(layout.v2, parent=parent or ".")
    from ..cgroups.v1 import V1Backend
    default_backend(layout)                    # the "no cgroup file system" error, if none
    return V1Backend(layout.v1, parent=parent or ".")


def open_path(path: str) -> Cgroup:
    """The Cgroup object for ``path`` (which need not exist)."""
    parent, _, name = path.rpartition("/")
    backend = _backend(parent)
    cg = Cgroup.__new__(Cgroup)       # the name check of Cgroup() allows one component: ours is the last
    cg.name, cg.backend = name, backend
    return cg


def limits(res) -> Limits:
    """spec.Resources → cgroups.Limits (validated there; ConfigError names the value)."""
    cpus = None
    if res.cpu_quota and res.cpu_quota > 0:
        cpus = res.cpu_quota / (res.cpu_period or 100_000)
    swap = res.memory_swap
    if swap is not None and res.memory is None:
        swap = None                                # swap alone has no meaning for our backends
    return Limits(memory=res.memory, memory_swap=swap, cpus=cpus, cpu_shares=res.cpu_shares,
                  pids=res.pids, cpuset=res.cpuset, blkio_weight=res.blkio_weight)


def _ancestors(cg: Cgroup, need: set[str]) -> list[str]:
    """Create missing levels above the group's parent (the backend makes only the last one);
    returns the directories made, deepest last, so that the teardown can remove exactly those."""
    made: list[str] = []
    # the backends' string paths (_root, _parent, _hier, _mounts), not their Path ones: no pathlib
    # in create (cgroups/v1.py says why)
    if cg.backend.version == 2:
        root = cg.backend._root
        rel = os.path.relpath(cg.backend._parent, root)
        if rel in (".", "") or "/" not in rel:
            return made
        level = root
        for part in rel.split("/")[:-1]:
            if level in made:                  # ours: every controller offered, as the backend's parent
                cg.backend._enable(level, need, every_offered=True)
            else:                              # not ours: only what accounting and the limits need
                cg.backend._enable(level, need, set(need) | {"cpu", "memory", "pids"})
            level = os.path.join(level, part)
            if f.mkdir(level):
                made.append(level)
        cg.backend._enable(level, need, every_offered=level in made)   # the backend enables below the parent
        return made
    rel = cg.backend.parent_name
    if "/" not in rel:
        return made
    for m in cg.backend._hier():
        level = m
        for part in rel.split("/")[:-1]:
            level = os.path.join(level, part)
            if f.mkdir(level):
                made.append(level)
                if m == cg.backend._mounts.get("cpuset"):
                    cg.backend._copy_cpuset(level)
    return made


def missing_levels(path: str) -> list[str]:
    """The levels above ``path``'s parent that do not exist yet in any hierarchy: what
    :func:`_ancestors` will make. Recorded BEFORE they are made, so a runtime killed half-way
    still leaves a record naming them for ``delete --force``."""
    parent = os.path.dirname(path)
    if "/" not in parent:
        return []
    cg = open_path(path)
    roots = [cg.backend._root] if cg.backend.version == 2 else cg.backend._hier()
    levels = []
    parts = parent.split("/")[:-1]
    for r in roots:
        for i in range(1, len(parts) + 1):
            d = os.path.join(str(r), *parts[:i])
            if not os.path.isdir(d):
                levels.append(d)
    return levels


def remove_ancestors(made: list[str]) -> None:
    """Undo :func:`_ancestors`: each directory we made, deepest first, if nothing else is in it."""
    for d in sorted(made, key=lambda p: p.count("/"), reverse=True):
        f.rmdir_parent_if_empty(d)


def create(path: str, res, made: list[str]) -> tuple[Cgroup, bool]:
    """Create the group with its limits; returns it and whether we made it (an existing group is
    joined, as runc does, and then never removed by us). Levels made above it are appended to
    ``made`` as they appear (the caller records them for the teardown)."""
    lim = limits(res)
    cg = open_path(path)
    need = lim.controllers()
    if cg.exists():
        if need:
            cg.set_limits(lim)
        return cg, False
    try:
        made.extend(_ancestors(cg, need))
        return _create(cg, lim, need), True
    except CgroupError as exc:
        if exc.errno == errno.EEXIST:
            return cg, False
        remove_ancestors(made)
        raise


def _create(cg: Cgroup, lim: Limits, need: set[str]) -> Cgroup:
    cg.backend.create(cg.name, need)
    try:
        cg.backend.apply(cg.name, lim)
    except BaseException:
        cg.backend.delete(cg.name)
        raise
    return cg
