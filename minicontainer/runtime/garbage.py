"""``minicontainer gc``: remove what crashed runs left behind (notebook 06).

A runtime killed half way (``MINICONTAINER_TEST_DIE_AT`` does it on purpose at each step) leaves
resources no process will release. The record is their list (teardown.py): a record whose managing
process (``owner``: pid + start time) has died, and whose container does not run any more, gets the
same teardown as a container that ended — cgroup, network, then the record (stopped, or removed when
it was ``--rm`` or never started). Then what no record names: stale name files, ``mc-…`` cgroups,
writable layers (not a live server's spare), network leases. Only this state root's records are
touched; a cgroup or layer that no record names is taken only when it is empty and a few seconds old
(another state root may be starting it this very moment).
"""

from __future__ import annotations

import json
import re
import time

from .. import paths
from . import state, teardown
from .container import cgroup_name, image_store


def _gc_orphan_cgroups(named: set[str], min_age: float = 2.0) -> list[str]:
    """Container groups (``mc-…``) that no record names: a runtime killed between creating the group and
    writing it down, or a record removed by hand. All state roots share the cgroup parent, so a group is
    only taken when it is also *empty* and older than ``min_age`` seconds: another root's running
    container always has a process in its group, and one being started gets its first process within
    milliseconds of the mkdir."""
    from ..cgroups import Cgroup, list_groups
    removed = []
    for name in list_groups():
        if not re.fullmatch(r"mc-[0-9a-f]{16}", name) or name in named:
            continue
        cg = Cgroup.open(name)
        try:
            age = time.time() - min(d.stat().st_mtime for d in cg.dirs().values())
        except FileNotFoundError:
            continue                                    # removed meanwhile by its owner
        if age < min_age or cg.procs():
            continue
        cg.delete()
        removed.append(f"cgroup {name} (no container record)")
    return removed


def _spare_alive(layer_dir) -> bool:
    """Is this layer a spare of a running `minicontainer serve` (park_spare)? Then it is not litter."""
    try:
        owner = json.loads((layer_dir / "spare").read_text())
    except (OSError, ValueError):
        return False
    return state.alive(*owner)


def gc() -> list[str]:
    """Remove what crashed runs left (``minicontainer gc``): records whose managing process died
    without finishing, their cgroups, writable layers and network leases/veths. Only what a record
    of *this* state root names is touched (another root's containers may be running)."""
    removed = []
    for rec in state.all_records():
        owner = rec.get("owner")
        if rec.get("status") == "broken":
            teardown.remove(rec)
            removed.append(f"state {rec['id'][:12]} (unreadable)")
            continue
        if not owner or state.alive(*owner):
            continue
        if rec.get("pid") and state.alive(rec["pid"], rec.get("start_time")):
            continue
        oom = teardown.oom_killed(name=rec.get("cgroup"))
        if teardown.release_cgroup_named(rec.get("cgroup")):
            removed.append(f"cgroup {rec['cgroup']}")
        if teardown.has_own_network(rec):
            teardown.release_network(rec["id"])
            if rec.get("network"):
                removed.append(f"network {rec['id'][:12]}")
        gone = (rec.get("config") or {}).get("rm") or rec.get("status") == "created"
        teardown.finish(rec, 137, gone, oom_killed=oom)
        removed.append(f"state {rec['id'][:12]}" if gone else f"process of {rec['id'][:12]} (marked stopped)")
    known = {r["id"] for r in state.all_records()}
    removed += [f"name {n} (no container record)" for n in state.remove_stale_names()]
    removed += _gc_orphan_cgroups({r.get("cgroup") or cgroup_name(r["id"]) for r in state.all_records()})
    cdir = paths.data_root() / "containers"
    if cdir.is_dir():
        for d in cdir.iterdir():
            if d.name not in known and len(d.name) == 64 and time.time() - d.stat().st_mtime > 2 \
                    and not _spare_alive(d):
                teardown.remove({"id": d.name})
                removed.append(f"layer {d.name[:12]}")
    if (state.root() / "network").exists():
        from .. import network
        removed += network.gc()
    removed += image_store().clean_tmp()     # scratch of a pull or import killed halfway
    if (paths.data_root() / "layers").is_dir():  # layers no image names (a crash between the two)
        removed += image_store().prune(images=False, min_age=10.0)
    from ..cgroups import remove_empty_parents
    removed += remove_empty_parents()        # what a crash's (or a hand's) group removal left above it
    return removed

