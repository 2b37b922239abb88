"""A container's teardown, in one place: how each of its resources is released (notebook 06).

A container holds, in the order they are acquired: its record and name (state.py), its writable
layer with its mark on the image (the image store's lease: ``rmi`` refuses an image in use), its
cgroup, and with ``--network bridge`` its place on the bridge (veth, address lease, published
ports). Each is released by exactly one function here, whoever releases it:

- the start path registers each release on an ``ExitStack`` *the moment* the resource exists
  (container.py, start_path.py), so a failed or interrupted start unwinds exactly what it made;
- a container that ended (:func:`after_exit`): its cgroup and network, then its record — stopped,
  or removed with ``--rm``. The foreground start calls it after its wait; the monitor of a
  detached container (monitor.py, waiter.py) calls it through :func:`finish_detached`;
- ``rm`` (lifecycle.py) stops the container, then :func:`remove` (layer and record);
- ``gc`` (garbage.py) calls :func:`after_exit` for a record whose managing process died.

Where no process of ours is left to run an ``ExitStack`` (the runtime was killed), the record is the
list of what may exist: ``gc`` reads it. Fault injection for the tests of exactly that:
``MINICONTAINER_TEST_DIE_AT=<step>`` SIGKILLs the runtime at that step (:data:`STEPS`); ``gc`` must
then leave nothing behind. Rejected: a teardown per caller (there were five, each a little
different: one forgot the network lease of a container whose start failed after its attach).
"""

from __future__ import annotations

import os
import time

from ..errors import ContainerError, MiniContainerError, NotFoundError
from . import state

STEPS = ("validated", "record", "layer", "cgroup", "forked", "network", "released")


def die_at(step: str) -> None:
    """Fault injection (see the module's docstring)."""
    if os.environ.get("MINICONTAINER_TEST_DIE_AT") == step:
        import signal
        os.kill(os.getpid(), signal.SIGKILL)


def release_cgroup(cg, *, ended: bool = False) -> None:
    """Kill what is left in the container's cgroup and remove it. ``ended``: its PID 1 has been
    reaped, and with it the whole PID namespace (the kernel kills and reaps the rest before PID 1's
    parent hears of its end), so the group is normally empty: one rmdir per hierarchy, and only if
    the kernel says busy (a process that joined the group but not the namespace — an `exec` caught
    half way — or one not quite gone) kill and wait. Rejected: reading cgroup.procs in every v1
    hierarchy first to find them empty (bench/README.md has its cost)."""
    if ended:
        try:
            cg.delete(wait=False)
            return
        except MiniContainerError:
            pass
    try:
        cg.kill()
    except MiniContainerError:
        pass
    cg.delete()


def release_cgroup_named(name: str | None, *, ended: bool = False) -> bool:
    """:func:`release_cgroup` by name (from a record); False when there is no such group."""
    if not name:
        return False
    from ..cgroups import Cgroup
    try:
        cg = Cgroup.open(name)
    except NotFoundError:
        return False
    release_cgroup(cg, ended=ended)
    return True


def release_network(cid: str) -> None:
    """The container's place on the bridge: veth, lease, published ports (idempotent)."""
    from . import netattach
    netattach.detach(cid)


def reap(pid: int) -> None:
    """SIGKILL and reap a child of ours (the container's first process, C) if it still exists."""
    import signal
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def release_layer(cid: str) -> None:
    """The writable layer, and with it the ``image`` file that marks its image in use."""
    from ..images import ImageStore
    try:
        ImageStore().remove_container_layer(cid)
    except MiniContainerError:
        pass


def release_record(rec: dict) -> None:
    """The record and its name."""
    state.remove(rec["id"], rec.get("name"))


def remove(rec: dict) -> None:
    """The container is gone for good: its layer, then its record (``rm``, ``--rm``)."""
    release_layer(rec["id"])
    release_record(rec)


def finish(rec: dict, code: int, rm: bool, *, oom_killed: bool = False) -> None:
    """The record of a container that has ended: removed (``--rm``), else stopped with ``code`` (and
    whether the OOM killer ended any of its processes: ``inspect``'s State.OOMKilled)."""
    if rm:
        remove(rec)
        return
    try:
        state.update(rec["id"], status="stopped", exit_code=code, finished=time.time(), pid=None,
                     owner=None, oom_killed=oom_killed)
    except (NotFoundError, ContainerError):    # removed meanwhile, or broken: nothing to mark
        pass


def oom_killed(cg=None, name: str | None = None) -> bool:
    """Did the OOM killer end a process of the container's group (``cg``, else the group ``name``)?
    Read before the group is removed: its counters go with it (Docker reads the same counter from
    its OOM events). Unknown (no group, no memory controller) is False."""
    try:
        if cg is None:
            if not name:
                return False
            from ..cgroups import Cgroup
            cg = Cgroup.open(name)
        return bool(cg.oom_kills())
    except (MiniContainerError, OSError):
        return False


def release_running(rec: dict, *, cg=None, ended: bool = True) -> None:
    """What a container holds only while it runs, once its processes are gone (or, ``ended=False``,
    killed here first): its cgroup (``cg``, else the one its record names), its place on the bridge."""
    if cg is not None:
        release_cgroup(cg, ended=ended)
    else:
        release_cgroup_named(rec.get("cgroup"), ended=ended)
    if has_own_network(rec):
        release_network(rec["id"])


def has_own_network(rec: dict) -> bool:
    """Was the container plugged into a network of ours: the default bridge or a user-defined one
    (not host, none, nor another container's namespace)?"""
    mode = (rec.get("config") or {}).get("network") or "bridge"
    return mode not in ("host", "none") and not mode.startswith("container:")


def after_exit(rec: dict, code: int, *, cg=None, ended: bool = True, rm: bool | None = None) -> None:
    """A container has ended: :func:`release_running`, then :func:`finish` (``rm`` defaults to the
    container's ``--rm``)."""
    rm = (rec.get("config") or {}).get("rm", False) if rm is None else rm
    oom = not rm and oom_killed(cg, rec.get("cgroup"))      # a removed record keeps nothing
    release_running(rec, cg=cg, ended=ended)
    finish(rec, code, rm, oom_killed=oom)


def finish_detached(job: str, status: int) -> None:
    """The monitor's last step (waiter.py, once the detached container has ended): what the
    foreground start does after its wait."""
    import json
    from ..errors import exit_code
    j = json.loads(job)
    try:
        rec = state.read(j["id"])
    except NotFoundError:       # removed meanwhile (rm -f): what it held while running is still ours
        rec = {"id": j["id"], "cgroup": j["cgroup"], "config": {"network": j["network"], "rm": False}}
    after_exit(rec, exit_code(status))
