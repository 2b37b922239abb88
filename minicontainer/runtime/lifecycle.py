"""The lifecycle verbs on an existing container: kill, stop, pause, unpause, rm, ps, inspect, stats,
logs (notebook 06). Each reads the record, checks the container's state against the live process
(pid *and* start time: a recycled pid is not our container), and acts on its PID 1 or its cgroup.
``rm`` stops what runs and then removes layer and record through the one teardown (teardown.py).
"""

from __future__ import annotations

import os
import signal
import time

from ..errors import ConflictError, ContainerError, MiniContainerError, NotFoundError
from . import state, teardown


def live(ref: str, *, broken_ok: bool = False) -> dict:
    rec = state.find(ref, broken_ok=broken_ok)
    if rec["status"] in ("running", "paused") and not state.alive(rec.get("pid"), rec.get("start_time")):
        rec["status"] = "stopped"
    return rec


def running(ref: str) -> dict:
    rec = live(ref)
    if rec["status"] not in ("running", "paused"):
        raise ContainerError(f"container {rec['name']} is not running ({rec['status']})")
    return rec


def kill(ref: str, sig: str | int = "KILL") -> None:
    rec = running(ref)
    os.kill(rec["pid"], parse_signal(sig))


def parse_signal(sig) -> int:
    """``kill -s``'s and an image's StopSignal: a name or a number (signals.py), else docker's words."""
    from ..errors import ConfigError
    from ..signals import number
    n = sig if isinstance(sig, int) and not isinstance(sig, bool) and 0 < sig < signal.NSIG else number(sig)
    if n is None:
        raise ConfigError(f"invalid signal: {sig}", hint="use a name such as TERM, KILL, HUP or a number")
    return n


def stop(ref: str, timeout: float = 10) -> None:
    """SIGTERM to PID 1, then after ``timeout`` SIGKILL to the whole cgroup (as docker stop)."""
    rec = live(ref)
    if rec["status"] not in ("running", "paused"):
        return
    from ..cgroups import Cgroup
    try:
        cg = Cgroup.open(rec["cgroup"])
        if rec["status"] == "paused":
            cg.thaw()
    except NotFoundError:
        cg = None
    try:
        os.kill(rec["pid"], rec.get("stop_signal") or signal.SIGTERM)   # the image's StopSignal
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and state.alive(rec["pid"], rec.get("start_time")):
        time.sleep(0.02)
    if state.alive(rec["pid"], rec.get("start_time")) and cg is not None:
        try:
            cg.kill()
        except MiniContainerError:
            if state.alive(rec["pid"], rec.get("start_time")):  # else: it ended and its group went
                raise
    _wait_stopped(rec["id"])


def _wait_stopped(cid: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if state.read(cid)["status"] == "stopped":
                return
        except NotFoundError:
            return
        time.sleep(0.02)


def pause(ref: str) -> None:
    from ..cgroups import Cgroup
    rec = running(ref)
    Cgroup.open(rec["cgroup"]).freeze()
    state.update(rec["id"], status="paused")


def unpause(ref: str) -> None:
    from ..cgroups import Cgroup
    rec = running(ref)
    if rec["status"] != "paused":
        raise ContainerError(f"container {rec['name']} is not paused")
    Cgroup.open(rec["cgroup"]).thaw()
    state.update(rec["id"], status="running")


def remove(ref: str, force: bool = False) -> str:
    rec = live(ref, broken_ok=True)          # a broken record can always be removed
    if rec["status"] in ("running", "paused"):
        if not force:
            raise ConflictError(f"container {rec['name']} is {rec['status']}",
                                hint="stop it first or use rm -f")
        stop(rec["id"], timeout=0)
    teardown.remove(rec)
    return rec["name"]


def list_containers(all: bool = False) -> list[dict]:
    out = []
    for rec in state.all_records():
        if rec.get("status") in ("running", "paused") and not state.alive(rec.get("pid"), rec.get("start_time")):
            rec["status"] = "stopped"
        if all or rec.get("status") in ("running", "paused"):
            out.append(rec)
    return out


def inspect(ref: str) -> dict:
    """The record, with Docker's ``State``, ``AppArmorProfile`` (the profile the container runs
    under: ``minicontainer-default``, ``unconfined``, a name, or "" on a kernel without AppArmor),
    ``HostConfig.SecurityOpt``/``Privileged`` (the flags as given) and ``HostConfig.UsernsMode`` (host,
    or remap with the maps in ``HostConfig.IdMappings``), ``GraphDriver`` (the overlay's directories;
    for a remapped container ``UsernsLayers``: idmapped mounts or chowned copies); the effective capabilities, seccomp and
    device rules are the record's ``security``. A broken record: its stand-in, to show what is wrong."""
    rec = live(ref, broken_ok=True)
    if rec["status"] != "broken":
        rec["State"] = docker_state(rec)
        cfg = rec.get("config") or {}
        rec["AppArmorProfile"] = (rec.get("security") or {}).get("apparmor", "")
        rec["HostConfig"] = {"SecurityOpt": list(cfg.get("security_opt") or []) or None,
                             "Privileged": bool(cfg.get("privileged")),
                             "UsernsMode": cfg.get("userns", "host"), "IdMappings": rec.get("idmap")}
        # Docker's storage section. UsernsLayers (ours): how a remapped container sees the image's
        # layers — "idmap" (idmapped mounts of LowerDir) or "copy" (LowerDir are chowned copies)
        data = {"LowerDir": ":".join(rec.get("lowerdirs") or []), "UpperDir": rec.get("upperdir"),
                "WorkDir": rec.get("workdir_ovl")}
        if rec.get("idmap"):
            data["UsernsLayers"] = rec.get("userns_layers") or "idmap"
        rec["GraphDriver"] = {"Name": "overlay", "Data": data}
    return rec


_ZERO_TIME = "0001-01-01T00:00:00Z"          # Docker's (Go's) zero time.Time


def _rfc3339(t) -> str:
    if not isinstance(t, (int, float)) or isinstance(t, bool) or t <= 0:
        return _ZERO_TIME
    import datetime
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(
        timespec="microseconds").replace("+00:00", "Z")


def docker_state(rec: dict) -> dict:
    """``docker inspect``'s State from a record: Status (created, running, paused, exited), Running,
    Paused, OOMKilled (memory.events' / memory.oom_control's oom_kill, read by teardown.finish before
    the group went), Pid (0 unless it runs), ExitCode, StartedAt and FinishedAt (RFC 3339, UTC)."""
    st = rec["status"]
    up = st in ("running", "paused")
    return {"Status": "exited" if st == "stopped" else st, "Running": up, "Paused": st == "paused",
            "Restarting": False, "OOMKilled": bool(rec.get("oom_killed")), "Dead": False,
            "Pid": rec.get("pid") or 0 if up else 0, "ExitCode": rec.get("exit_code") or 0,
            "Error": "", "StartedAt": _rfc3339(rec.get("started")),
            "FinishedAt": _rfc3339(rec.get("finished")) if st == "stopped" else _ZERO_TIME}


def stats(ref: str) -> dict:
    from ..cgroups import Cgroup
    rec = running(ref)
    return {"name": rec["name"], **Cgroup.open(rec["cgroup"]).stats()}


def logs_path(ref: str):
    rec = state.find(ref)
    return state.root() / rec["id"] / "log"

