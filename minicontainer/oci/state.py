"""A container's state on the host: ``--root``/ID/ (state.json, exec.fifo), and its status.

runc keeps ``/run/runc/<id>/state.json`` and, between ``create`` and ``start``, ``exec.fifo``; so do
we (default root: ``<state root>/oci``, i.e. ``/run/minicontainer/oci``: on tmpfs, so a reboot forgets
containers that cannot run any more). The directory is 0700 and the files 0600: the record names the
bundle, the cgroup and the hooks, and nobody but root needs to read it.

The status is never stored, it is *computed* (runc's ``refreshState``): the process named by
``pid`` must exist, not be a zombie, and have the start time we recorded (``/proc/PID/stat`` field
22) — otherwise the pid was reused by an unrelated process after ours ended, and the container is
``stopped``. Alive + exec.fifo present = ``created`` (the process waits for ``start``); alive + a
frozen cgroup = ``paused``; alive = ``running``.
"""
from __future__ import annotations

import os
import time

from .. import fastjson, paths, private
from ..errors import ConfigError, ConflictError, MiniContainerError, NotFoundError

FIFO = "exec.fifo"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def default_root() -> str:
    return os.path.join(paths._state_root(), "oci")


def check_id(cid: str) -> str:
    if not cid or not set(cid) <= _ID_CHARS or cid in (".", "..") or len(cid) > 1024:
        raise ConfigError(f"invalid container id format: {cid!r}",
                          hint="use letters, digits, '_', '+', '-', '.'")
    return cid


def rfc3339(t: float | None = None) -> str:
    """``2026-11-30T04:28:15.123456789Z`` as Go's time.RFC3339Nano writes it (UTC)."""
    ns = time.time_ns() if t is None else int(t * 1e9)
    s, frac = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + (f".{frac:09d}".rstrip("0").rstrip(".")) + "Z"


def start_time(pid: int) -> tuple[int, str] | None:
    """(start time in clock ticks since boot, state letter) of ``pid``, or None if there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2:].split()
    return int(rest[19]), rest[0].decode()


class State:
    """One container's directory and record. ``data`` is what state.json holds."""

    def __init__(self, root: str, cid: str, data: dict | None = None):
        self.root = root
        self.id = cid
        self.dir = os.path.join(root, cid)
        self.data = data or {}

    # -- files -----------------------------------------------------------------------------------
    @property
    def fifo(self) -> str:
        return os.path.join(self.dir, FIFO)

    @classmethod
    def new(cls, root: str, cid: str, data: dict) -> "State":
        """Make the directory (the id is taken the moment mkdir succeeds) and write the record."""
        check_id(cid)
        private.make_dir(root)        # 0700 (and the state root above the default one)
        st = cls(root, cid, data)
        try:
            os.mkdir(st.dir, 0o700)
        except FileExistsError:
            raise ConflictError(f"container with id {cid} already exists",
                                hint=f"`minicontainer-oci delete {cid}` first, or choose another id") from None
        st.save()
        return st

    @classmethod
    def load(cls, root: str, cid: str) -> "State":
        check_id(cid)
        st = cls(root, cid)
        try:
            with open(os.path.join(st.dir, "state.json"), "rb") as f:
                st.data = fastjson.loads(f.read())
        except FileNotFoundError:
            if os.path.isdir(st.dir):      # killed between mkdir and the first write: delete cleans it
                st.data = {"id": cid, "pid": 0}
                return st
            raise NotFoundError("container does not exist",
                                hint=f"no container {cid!r} under --root {root}") from None
        except ValueError:
            st.data = {"id": cid, "pid": 0}
        return st

    def save(self) -> None:
        """Atomically: a reader never sees half a record."""
        private.write(os.path.join(self.dir, "state.json"), fastjson.dumps(self.data))

    def remove(self) -> None:
        for name in (FIFO, "state.json", ".state.json"):
            try:
                os.unlink(os.path.join(self.dir, name))
            except FileNotFoundError:
                pass
        try:
            os.rmdir(self.dir)
        except FileNotFoundError:
            pass

    # -- status ----------------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        return int(self.data.get("pid") or 0)

    def alive(self) -> bool:
        """Our process still exists: same start time, not a zombie (pid reuse survives this)."""
        if not self.pid:
            return False
        st = start_time(self.pid)
        return st is not None and st[0] == self.data.get("pid_start") and st[1] not in ("Z", "X")

    def status(self, cgroup=None) -> str:
        if not self.pid:
            creator = self.data.get("creator")
            if creator and start_time(creator[0]) and start_time(creator[0])[0] == creator[1]:
                return "creating"
            return "stopped"
        if not self.alive():
            return "stopped"
        if os.path.exists(self.fifo):
            return "created"
        if cgroup is not None:
            try:
                if cgroup.exists() and cgroup.frozen:
                    return "paused"
            except OSError:
                pass
        return "running"

    def oci(self, status: str) -> dict:
        """The JSON ``state`` prints (OCI runtime spec, "State")."""
        return {"ociVersion": self.data.get("ociVersion", "1.0.2"), "id": self.id, "status": status,
                "pid": self.pid if status != "stopped" else 0, "bundle": self.data.get("bundle", ""),
                "rootfs": self.data.get("rootfs", ""), "created": self.data.get("created", ""),
                "owner": "", "annotations": self.data.get("annotations", {})}


def write_pid_file(path: str, pid: int) -> None:
    """runc's way: a temporary file renamed over the target, so a reader never sees it empty."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)


def list_ids(root: str) -> list[str]:
    try:
        return sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    except FileNotFoundError:
        return []

# --- the container behind the record (its cgroup, its teardown) ------------------------------------

def _cgroup_module():
    from . import cgroup
    return cgroup


class _LazyCgroup:
    """The container's Cgroup, built on first use: `state` and `start` of a created container never
    need it, and building it reads mountinfo and imports the cgroup package."""

    def __init__(self, path: str):
        self.path, self._cg = path, None

    def __getattr__(self, name):
        if self._cg is None:
            self._cg = _cgroup_module().open_path(self.path)
        return getattr(self._cg, name)


def status(root: str, cid: str) -> tuple:
    """(record, cgroup or None, status) of container ``cid``; NotFoundError "container does not exist"."""
    st = State.load(root, cid)
    cg = _LazyCgroup(st.data["cgroup"]) if st.data.get("cgroup") else None
    return st, cg, st.status(cg)


def destroy(st) -> None:
    """The one teardown: kill what is left in the cgroup, remove it (if ours), remove the state.
    Used by a failed create, ``delete`` and ``delete --force``."""
    path = st.data.get("cgroup")
    if path:
        try:
            cg = _cgroup_module().open_path(path)
            if cg.exists():
                if st.data.get("cgroup_owned", True):
                    cg.destroy()
                else:
                    _kill_pid(st)
        except MiniContainerError:
            raise
        except OSError:
            pass
        if st.data.get("cgroup_ancestors"):
            _cgroup_module().remove_ancestors(st.data["cgroup_ancestors"])
    else:
        _kill_pid(st)
    st.remove()


def _kill_pid(st) -> None:
    if st.alive():
        try:
            os.kill(st.pid, 9)          # SIGKILL (the signal module imports enum)
        except ProcessLookupError:
            pass
