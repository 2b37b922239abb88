"""The cgroup v1 backend: one hierarchy per controller. Introduced in notebook 02.

Each controller is its own tree (``/sys/fs/cgroup/memory``, ``…/cpu``, or ``cpu,cpuacct`` co-mounted:
the mount points come from :mod:`.layout`), so one group is a directory of the same name in each
hierarchy, and a pid joins by being written into every one's ``cgroup.procs``.

v1's traps, handled here:

- ``cpuset``: a new group starts with *empty* ``cpuset.cpus``/``cpuset.mems`` and refuses tasks
  (``ENOSPC``) until both are copied from its parent (``cgroup.clone_children`` would do it, but it is a
  setting of the parent hierarchy we do not own);
- memory + swap: ``memory.memsw.limit_in_bytes`` must stay ≥ ``memory.limit_in_bytes``, so the order
  of the two writes depends on whether the limit goes up or down;
- no ``cgroup.kill``: we freeze the group (so nothing forks while we look), SIGKILL each pid, thaw
  (frozen tasks cannot die), and wait until ``cgroup.procs`` is empty — runc's ``signalAllProcesses``.
"""

from __future__ import annotations

import errno
import os
import _signal as signal      # SIGKILL only; `signal` imports enum

from ..errors import CgroupError
from . import _files as f
from .values import Limits

_NEED_TO_V1 = {"memory": "memory", "cpu": "cpu", "pids": "pids", "cpuset": "cpuset", "io": "blkio"}


class V1Backend:
    version = 1

    def __init__(self, mounts: dict[str, str], parent: str | None = None):
        # Strings inside, pathlib.Path only where a caller gets a path (mounts, hierarchies, dirs,
        # dir, file): the OCI runtime's create and delete import this module, and pathlib imports
        # re, enum and urllib.parse (bench/README.md). Rejected: Path throughout (that import in
        # every delete), a Path-like class of our own (a second path type to learn).
        self._mounts = {c: os.fspath(p) for c, p in mounts.items()}
        self.parent_name = parent or f.parent_name()

    def __repr__(self) -> str:
        return f"V1Backend({self._mounts})"

    # -- where things are -------------------------------------------------------------------------
    @property
    def mounts(self) -> dict[str, Path]:
        """controller → mount point."""
        from pathlib import Path
        return {c: Path(p) for c, p in self._mounts.items()}

    def _hier(self) -> list[str]:
        return sorted(set(self._mounts.values()))

    def _group(self, m: str, name: str = "") -> str:
        """The group ``name`` (or our parent, name "") in the hierarchy mounted at ``m``."""
        return os.path.normpath(os.path.join(m, self.parent_name, name))

    def _dir(self, name: str, controller: str = "memory") -> str:
        return self._group(self._mounts[controller], name)

    def _file(self, name: str, filename: str) -> str:
        controller = filename.split(".")[0]
        if controller not in self._mounts:
            controller = "freezer" if "freezer" in self._mounts else sorted(self._mounts)[0]
        return os.path.join(self._dir(name, controller), filename)

    def hierarchies(self) -> list[Path]:
        """Each mount point once (co-mounted controllers share one)."""
        from pathlib import Path
        return [Path(m) for m in self._hier()]

    def dirs(self, name: str) -> dict[str, Path]:
        from pathlib import Path
        return {c: Path(self._group(m, name)) for c, m in self._mounts.items()}

    def dir(self, name: str, controller: str = "memory") -> Path:
        from pathlib import Path
        return Path(self._dir(name, controller))

    def where(self, name: str, controller: str) -> str | None:
        """The group's directory in ``controller``'s hierarchy as a string, None if none is mounted."""
        return self._dir(name, controller) if controller in self._mounts else None

    def file(self, name: str, filename: str) -> Path:
        """``memory.max_usage_in_bytes`` → the memory hierarchy's copy; ``cgroup.procs`` → the first."""
        from pathlib import Path
        return Path(self._file(name, filename))

    def exists(self, name: str) -> bool:
        return any(os.path.isdir(self._group(m, name)) for m in self._hier())

    def list_groups(self) -> list[str]:
        names = set()
        for m in self._hier():
            try:
                with os.scandir(self._group(m)) as it:
                    names.update(e.name for e in it if e.is_dir())
            except FileNotFoundError:
                pass
        return sorted(names)

    # -- create / delete ---------------------------------------------------------------------------
    def _copy_cpuset(self, d) -> None:
        d = os.fspath(d)
        for fname in ("cpuset.cpus", "cpuset.mems"):
            if not f.read(os.path.join(d, fname)).strip():
                f.write(os.path.join(d, fname), f.read(os.path.join(os.path.dirname(d), fname)).strip())

    def create(self, name: str, need: set[str] = frozenset()) -> None:
        missing = {_NEED_TO_V1[c] for c in need} - set(self._mounts)
        if missing:
            raise CgroupError("create", self.parent_name + "/" + name, errno.ENOENT,
                              hint=f"no v1 hierarchy for {' '.join(sorted(missing))} is mounted")
        made: list[str] = []
        try:
            for m in self._hier():
                for _ in range(5):
                    f.mkdir(self._group(m))
                    try:
                        if not f.mkdir(self._group(m, name)):
                            raise CgroupError("mkdir", self._group(m, name), errno.EEXIST,
                                              hint="a group of that name exists: pick another name or delete it")
                        break
                    except CgroupError as exc:
                        if exc.errno != errno.ENOENT:   # parent removed by a concurrent delete: again
                            raise
                made.append(self._group(m, name))
            if "cpuset" in self._mounts:
                self._copy_cpuset(self._group(self._mounts["cpuset"]))
                self._copy_cpuset(self._dir(name, "cpuset"))
        except BaseException:
            for d in reversed(made):
                f.rmdir(d)
                f.rmdir_parent_if_empty(os.path.dirname(d))
            raise

    def delete(self, name: str, timeout: float = 5.0) -> None:
        for m in self._hier():
            f.rmdir(self._group(m, name), timeout=timeout)
            f.rmdir_parent_if_empty(self._group(m))

    # -- limits ------------------------------------------------------------------------------------
    def apply(self, name: str, limits: Limits) -> None:
        if limits.memory is not None:
            d = self._dir(name, "memory")
            mem, memsw = os.path.join(d, "memory.limit_in_bytes"), os.path.join(d, "memory.memsw.limit_in_bytes")
            total = limits.swap_total
            if not os.path.exists(memsw):
                if limits.memory_swap not in (None, -1):
                    raise CgroupError("write to", str(memsw), errno.ENOENT,
                                      hint="swap accounting is off on this kernel (swapaccount=1)")
                f.write(mem, limits.memory)
            else:
                # memsw ≥ memory at every moment: raise memsw first if the limit grows, else memory first
                current = f.read_int(mem) or 0
                order = [(memsw, total), (mem, limits.memory)] if limits.memory > current else \
                        [(mem, limits.memory), (memsw, total)]
                for path, value in order:
                    f.write(path, value)
        if limits.cpus is not None:
            d = self._dir(name, "cpu")
            f.write(os.path.join(d, "cpu.cfs_period_us"), 100_000)
            f.write(os.path.join(d, "cpu.cfs_quota_us"), limits.cpu_quota_us)
        if limits.cpu_shares is not None:
            f.write(os.path.join(self._dir(name, "cpu"), "cpu.shares"), limits.cpu_shares)
        if limits.pids is not None:
            f.write(os.path.join(self._dir(name, "pids"), "pids.max"), limits.pids)
        if limits.cpuset is not None:
            f.write(os.path.join(self._dir(name, "cpuset"), "cpuset.cpus"), limits.cpuset)
        if limits.blkio_weight is not None:
            d = self._dir(name, "blkio")
            target = os.path.join(d, "blkio.weight")
            if not os.path.exists(target):
                target = os.path.join(d, "blkio.bfq.weight")
            f.write(target, limits.blkio_weight,
                    hint="blkio weights need the BFQ (or CFQ) I/O scheduler on the disk")

    # -- processes ---------------------------------------------------------------------------------
    def add(self, name: str, pid: int) -> None:
        # cpuset first: if it refuses (ENOSPC), the pid has joined nothing yet
        order = sorted(self._hier(), key=lambda m: m != self._mounts.get("cpuset"))
        for m in order:
            f.write(os.path.join(self._group(m, name), "cgroup.procs"), pid)

    def procs(self, name: str) -> list[int]:
        pids: set[int] = set()
        for m in self._hier():
            pids.update(f.read_pids(os.path.join(self._group(m, name), "cgroup.procs")))
        return sorted(pids)

    def stats(self, name: str) -> dict:
        cpu_ns = f.read_int(self._file(name, "cpuacct.usage")) if "cpuacct" in self._mounts else None
        return {
            "cpu_usage_usec": None if cpu_ns is None else cpu_ns // 1000,
            "memory_current": f.read_int(self._file(name, "memory.usage_in_bytes")) if "memory" in self._mounts else None,
            "memory_peak": f.read_int(self._file(name, "memory.max_usage_in_bytes")) if "memory" in self._mounts else None,
            "pids_current": f.read_int(self._file(name, "pids.current")) if "pids" in self._mounts else None,
            "oom_kills": f.read_keyed(self._file(name, "memory.oom_control")).get("oom_kill")
                         if "memory" in self._mounts else None,
        }

    def oom_kills(self, name: str) -> int | None:
        """memory.oom_control's ``oom_kill`` (kernel ≥ 4.13); None without the memory controller."""
        if "memory" not in self._mounts:
            return None
        return f.read_keyed(self._file(name, "memory.oom_control")).get("oom_kill")

    def _state(self, name: str) -> str:
        return f.read(self._file(name, "freezer.state")).strip()

    def frozen(self, name: str) -> bool:
        # a half-made group (crash leftovers, `gc`) may lack its freezer directory: not frozen then
        return "freezer" in self._mounts and os.path.exists(self._file(name, "freezer.state")) \
            and self._state(name) == "FROZEN"

    def _need_freezer(self, name: str) -> None:
        if "freezer" not in self._mounts:
            raise CgroupError("freeze", self.parent_name + "/" + name, errno.ENOENT,
                              hint="no v1 freezer hierarchy is mounted")

    def freeze(self, name: str) -> None:
        self._need_freezer(name)
        state = self._file(name, "freezer.state")
        f.write(state, "FROZEN")

        def done() -> bool:
            # FREEZING until every task stopped; writing FROZEN again nudges stragglers (runc does too)
            if self._state(name) == "FROZEN":
                return True
            f.write(state, "FROZEN")
            return False
        f.wait_until(done, "freeze", self._dir(name, "freezer"))

    def thaw(self, name: str) -> None:
        self._need_freezer(name)
        f.write(self._file(name, "freezer.state"), "THAWED")
        f.wait_until(lambda: self._state(name) == "THAWED", "thaw", self._dir(name, "freezer"))

    def kill(self, name: str) -> None:
        if not self.procs(name):
            return
        frozen = "freezer" in self._mounts
        if frozen:
            self.freeze(name)
        try:
            for pid in self.procs(name):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        finally:
            if frozen:
                self.thaw(name)
        if not frozen:                      # no freezer: a forking group needs a few rounds
            for _ in range(100):
                pids = self.procs(name)
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        f.wait_until(lambda: not self.procs(name), "kill every process in",
                     os.path.dirname(self._file(name, "cgroup.procs")))
