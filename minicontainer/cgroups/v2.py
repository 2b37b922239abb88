"""The cgroup v2 backend: one tree, controllers enabled on the way down. Introduced in notebook 02.

On v2 a group only has ``memory.max`` if its *parent* lists ``memory`` in ``cgroup.subtree_control``,
so creating ``<root>/minicontainer/<name>`` first enables the controllers we need in the root's and in
our parent's ``subtree_control`` (only those missing, and only those the level offers in
``cgroup.controllers``). Our parent never holds processes itself: v2's "no internal processes" rule
would otherwise refuse to enable controllers below it.

Freezing is ``cgroup.freeze`` (done when ``cgroup.events`` says ``frozen 1``), killing is one write to
``cgroup.kill`` (kernel ≥ 5.14; the kernel kills every task, including ones forking right now — the
race the v1 freeze/kill/thaw dance exists for), with that dance as the fallback on older kernels.
"""

from __future__ import annotations

import errno
import os
import _signal as signal      # SIGKILL only; `signal` imports enum
from pathlib import Path

from ..errors import CgroupError
from . import _files as f
from .values import Limits, blkio_to_io_weight, shares_to_weight

WANTED = ("cpu", "cpuset", "io", "memory", "pids")
ACCOUNTING = {"cpu", "memory", "pids"}     # enabled for every group, so that stats() has its numbers


class V2Backend:
    version = 2

    def __init__(self, root: str | os.PathLike = "/sys/fs/cgroup", parent: str | None = None):
        self.root = Path(root)
        self.parent = self.root / (parent or f.parent_name())

    def __repr__(self) -> str:
        return f"V2Backend(root={str(self.root)!r})"

    # -- where things are -------------------------------------------------------------------------
    def dir(self, name: str) -> Path:
        return self.parent / name

    def dirs(self, name: str) -> dict[str, Path]:
        return {"unified": self.dir(name)}

    def file(self, name: str, filename: str) -> Path:
        return self.dir(name) / filename

    def exists(self, name: str) -> bool:
        return self.dir(name).is_dir()

    def list_groups(self) -> list[str]:
        try:
            return sorted(p.name for p in self.parent.iterdir() if p.is_dir())
        except FileNotFoundError:
            return []

    # -- create / delete ---------------------------------------------------------------------------
    def _enable(self, level: Path, need: set[str], wanted=WANTED) -> None:
        offered = set(f.read(level / "cgroup.controllers").split())
        missing = need - offered
        if missing:
            raise CgroupError("enable controllers in", str(level / "cgroup.subtree_control"), errno.ENOENT,
                              hint=f"this cgroup v2 tree offers no {' '.join(sorted(missing))} controller "
                                   f"(cgroup.controllers: {' '.join(sorted(offered)) or 'none'})")
        have = set(f.read(level / "cgroup.subtree_control").split())
        todo = [c for c in WANTED if c in wanted and c in offered and c not in have]
        if todo:
            f.write(level / "cgroup.subtree_control", " ".join(f"+{c}" for c in todo))

    def create(self, name: str, need: set[str] = frozenset()) -> None:
        for _ in range(5):
            # the root is not ours: enable there only what is missing and needed (accounting + limits)
            self._enable(self.root, need, ACCOUNTING | set(need))
            f.mkdir(self.parent)
            self._enable(self.parent, need)
            try:
                if not f.mkdir(self.dir(name)):
                    raise CgroupError("mkdir", str(self.dir(name)), errno.EEXIST,
                                      hint="a group of that name exists: pick another name or delete it")
                return
            except CgroupError as exc:
                if exc.errno != errno.ENOENT:    # parent removed by a concurrent delete: go again
                    raise
        raise CgroupError("mkdir", str(self.dir(name)), errno.ENOENT, hint="the parent keeps vanishing")

    def delete(self, name: str, timeout: float = 5.0) -> None:
        f.rmdir(self.dir(name), timeout=timeout)
        f.rmdir_parent_if_empty(self.parent)

    # -- limits ------------------------------------------------------------------------------------
    def apply(self, name: str, limits: Limits) -> None:
        d = self.dir(name)
        if limits.memory is not None:
            f.write(d / "memory.max", limits.memory)
            total = limits.swap_total
            swap = "max" if total == -1 else total - limits.memory
            if (d / "memory.swap.max").exists():
                f.write(d / "memory.swap.max", swap)
            elif limits.memory_swap not in (None, -1):
                raise CgroupError("write to", str(d / "memory.swap.max"), errno.ENOENT,
                                  hint="swap accounting is off on this kernel (swapaccount=1)")
        if limits.cpus is not None:
            f.write(d / "cpu.max", f"{limits.cpu_quota_us} {100_000}")
        if limits.cpu_shares is not None:
            f.write(d / "cpu.weight", shares_to_weight(limits.cpu_shares))
        if limits.pids is not None:
            f.write(d / "pids.max", limits.pids)
        if limits.cpuset is not None:
            f.write(d / "cpuset.cpus", limits.cpuset)
        if limits.blkio_weight is not None:
            target = d / "io.weight" if (d / "io.weight").exists() else d / "io.bfq.weight"
            f.write(target, blkio_to_io_weight(limits.blkio_weight))

    # -- processes -----------------------------------------------------------------------------------
    def add(self, name: str, pid: int) -> None:
        f.write(self.file(name, "cgroup.procs"), pid)

    def procs(self, name: str) -> list[int]:
        return f.read_pids(self.file(name, "cgroup.procs"))

    def stats(self, name: str) -> dict:
        d = self.dir(name)
        return {
            "cpu_usage_usec": f.read_keyed(d / "cpu.stat").get("usage_usec"),
            "memory_current": f.read_int(d / "memory.current"),
            "memory_peak": f.read_int(d / "memory.peak"),
            "pids_current": f.read_int(d / "pids.current"),
            "oom_kills": f.read_keyed(d / "memory.events").get("oom_kill"),
        }

    def oom_kills(self, name: str) -> int | None:
        """memory.events' ``oom_kill``: processes of the group (and below) the OOM killer ended."""
        return f.read_keyed(self.dir(name) / "memory.events").get("oom_kill")

    def frozen(self, name: str) -> bool:
        return f.read_keyed(self.file(name, "cgroup.events")).get("frozen") == 1

    def freeze(self, name: str) -> None:
        f.write(self.file(name, "cgroup.freeze"), 1)
        f.wait_until(lambda: self.frozen(name), "freeze", self.dir(name))

    def thaw(self, name: str) -> None:
        f.write(self.file(name, "cgroup.freeze"), 0)
        f.wait_until(lambda: not self.frozen(name), "thaw", self.dir(name))

    def kill(self, name: str) -> None:
        if not self.procs(name):
            return
        if self.file(name, "cgroup.kill").exists():
            f.write(self.file(name, "cgroup.kill"), 1)
        else:                                     # kernel < 5.14: freeze, kill each, thaw
            self.freeze(name)
            for pid in self.procs(name):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.thaw(name)
        f.wait_until(lambda: not self.procs(name), "kill every process in", self.dir(name))
