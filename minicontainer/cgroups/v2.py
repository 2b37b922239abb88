"""The cgroup v2 backend: one tree, controllers enabled on the way down. Introduced in notebook 02.

On v2 a group only has ``memory.max`` if its *parent* lists ``memory`` in ``cgroup.subtree_control``,
so creating ``<root>/minicontainer/<name>`` first enables the controllers we need in the root's and in
our parent's ``subtree_control`` (only those missing, and only those the level offers in
``cgroup.controllers``); in our own parent every other offered one as well, as runc does. Our
parent never holds processes itself: v2's "no internal processes" rule would otherwise refuse to
enable controllers below it.

Freezing is ``cgroup.freeze`` (done when ``cgroup.events`` says ``frozen 1``), killing is one write to
``cgroup.kill`` (kernel ≥ 5.14; the kernel kills every task, including ones forking right now — the
race the v1 freeze/kill/thaw dance exists for), with that dance as the fallback on older kernels.
"""

from __future__ import annotations

import errno
import os
import _signal as signal      # SIGKILL only; `signal` imports enum

from ..errors import CgroupError
from . import _files as f
from .values import Limits, blkio_to_io_weight, shares_to_weight

WANTED = ("cpu", "cpuset", "io", "memory", "pids")
ACCOUNTING = {"cpu", "memory", "pids"}     # enabled for every group, so that stats() has its numbers


class V2Backend:
    version = 2

    def __init__(self, root: str | os.PathLike = "/sys/fs/cgroup", parent: str | None = None):
        # strings inside, Path only where a caller gets a path: as in V1Backend (pathlib's import)
        self._root = os.path.normpath(os.fspath(root))
        self._parent = os.path.normpath(os.path.join(self._root, parent or f.parent_name()))

    def __repr__(self) -> str:
        return f"V2Backend(root={self._root!r})"

    # -- where things are -------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        from pathlib import Path
        return Path(self._root)

    @property
    def parent(self) -> Path:
        from pathlib import Path
        return Path(self._parent)

    def _d(self, name: str) -> str:
        return os.path.join(self._parent, name)

    def _f(self, name: str, filename: str) -> str:
        return os.path.join(self._parent, name, filename)

    def dir(self, name: str) -> Path:
        from pathlib import Path
        return Path(self._d(name))

    def dirs(self, name: str) -> dict[str, Path]:
        return {"unified": self.dir(name)}

    def where(self, name: str, controller: str) -> str | None:
        """The group's directory as a string (the OCI start path imports no pathlib): one for all."""
        return self._d(name)

    def file(self, name: str, filename: str) -> Path:
        from pathlib import Path
        return Path(self._f(name, filename))

    def exists(self, name: str) -> bool:
        return os.path.isdir(self._d(name))

    def list_groups(self) -> list[str]:
        try:
            with os.scandir(self._parent) as it:
                return sorted(e.name for e in it if e.is_dir())
        except FileNotFoundError:
            return []

    # -- create / delete ---------------------------------------------------------------------------
    def _enable(self, level, need: set[str], wanted=WANTED, *, every_offered: bool = False) -> None:
        level = os.fspath(level)
        offered = set(f.read(os.path.join(level, "cgroup.controllers")).split())
        missing = need - offered
        if missing:
            raise CgroupError("enable controllers in", str(os.path.join(level, "cgroup.subtree_control")), errno.ENOENT,
                              hint=f"this cgroup v2 tree offers no {' '.join(sorted(missing))} controller "
                                   f"(cgroup.controllers: {' '.join(sorted(offered)) or 'none'})")
        have = set(f.read(os.path.join(level, "cgroup.subtree_control")).split())
        todo = [c for c in WANTED if c in wanted and c in offered and c not in have]
        if todo:
            f.write(os.path.join(level, "cgroup.subtree_control"), " ".join(f"+{c}" for c in todo))
        if every_offered:
            # our own parent: every other controller the level offers too (hugetlb, rdma, misc), as
            # runc enables them — a container's group then has the files a runc container's has.
            # Best effort, one at a time: none of them is needed for our limits
            for c in sorted(offered - set(WANTED) - have):
                try:
                    f.write(os.path.join(level, "cgroup.subtree_control"), f"+{c}")
                except CgroupError:
                    pass

    def create(self, name: str, need: set[str] = frozenset()) -> None:
        for _ in range(5):
            # the root is not ours: enable there only what is missing and needed (accounting + limits)
            self._enable(self._root, need, ACCOUNTING | set(need))
            f.mkdir(self._parent)
            self._enable(self._parent, need, every_offered=True)
            try:
                if not f.mkdir(self._d(name)):
                    raise CgroupError("mkdir", str(self._d(name)), errno.EEXIST,
                                      hint="a group of that name exists: pick another name or delete it")
                return
            except CgroupError as exc:
                if exc.errno != errno.ENOENT:    # parent removed by a concurrent delete: go again
                    raise
        raise CgroupError("mkdir", str(self._d(name)), errno.ENOENT, hint="the parent keeps vanishing")

    def delete(self, name: str, timeout: float = 5.0) -> None:
        f.rmdir(self._d(name), timeout=timeout)
        f.rmdir_parent_if_empty(self._parent)

    # -- limits ------------------------------------------------------------------------------------
    def apply(self, name: str, limits: Limits) -> None:
        d = self._d(name)
        if limits.memory is not None:
            f.write(os.path.join(d, "memory.max"), limits.memory)
            total = limits.swap_total
            swap = "max" if total == -1 else total - limits.memory
            if os.path.exists(os.path.join(d, "memory.swap.max")):
                f.write(os.path.join(d, "memory.swap.max"), swap)
            elif limits.memory_swap not in (None, -1):
                raise CgroupError("write to", str(os.path.join(d, "memory.swap.max")), errno.ENOENT,
                                  hint="swap accounting is off on this kernel (swapaccount=1)")
        if limits.cpus is not None:
            f.write(os.path.join(d, "cpu.max"), f"{limits.cpu_quota_us} {100_000}")
        if limits.cpu_shares is not None:
            f.write(os.path.join(d, "cpu.weight"), shares_to_weight(limits.cpu_shares))
        if limits.pids is not None:
            f.write(os.path.join(d, "pids.max"), limits.pids)
        if limits.cpuset is not None:
            f.write(os.path.join(d, "cpuset.cpus"), limits.cpuset)
        if limits.blkio_weight is not None:
            target = os.path.join(d, "io.weight")
            if not os.path.exists(target):
                target = os.path.join(d, "io.bfq.weight")
            f.write(target, blkio_to_io_weight(limits.blkio_weight))

    # -- processes -----------------------------------------------------------------------------------
    def add(self, name: str, pid: int) -> None:
        f.write(self._f(name, "cgroup.procs"), pid)

    def procs(self, name: str) -> list[int]:
        return f.read_pids(self._f(name, "cgroup.procs"))

    def stats(self, name: str) -> dict:
        d = self._d(name)
        return {
            "cpu_usage_usec": f.read_keyed(os.path.join(d, "cpu.stat")).get("usage_usec"),
            "memory_current": f.read_int(os.path.join(d, "memory.current")),
            "memory_peak": f.read_int(os.path.join(d, "memory.peak")),
            "pids_current": f.read_int(os.path.join(d, "pids.current")),
            "oom_kills": f.read_keyed(os.path.join(d, "memory.events")).get("oom_kill"),
        }

    def oom_kills(self, name: str) -> int | None:
        """memory.events' ``oom_kill``: processes of the group (and below) the OOM killer ended."""
        return f.read_keyed(os.path.join(self._d(name), "memory.events")).get("oom_kill")

    def frozen(self, name: str) -> bool:
        return f.read_keyed(self._f(name, "cgroup.events")).get("frozen") == 1

    def freeze(self, name: str) -> None:
        f.write(self._f(name, "cgroup.freeze"), 1)
        f.wait_until(lambda: self.frozen(name), "freeze", self._d(name))

    def thaw(self, name: str) -> None:
        f.write(self._f(name, "cgroup.freeze"), 0)
        f.wait_until(lambda: not self.frozen(name), "thaw", self._d(name))

    def kill(self, name: str) -> None:
        if not self.procs(name):
            return
        if os.path.exists(self._f(name, "cgroup.kill")):
            f.write(self._f(name, "cgroup.kill"), 1)
        else:                                     # kernel < 5.14: freeze, kill each, thaw
            self.freeze(name)
            for pid in self.procs(name):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.thaw(name)
        f.wait_until(lambda: not self.procs(name), "kill every process in", self._d(name))
