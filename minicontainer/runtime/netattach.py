"""The engine's side of a container's network (notebook 05's network.py does the kernel's side).

``--network bridge``: plug the container in (veth moved into its namespace by pid, an address,
published ports) and out again, each under one host-wide lock, and tell the other containers on
the bridge the new name (their /etc/hosts). ``--network container:NAME``: find the running
container whose network namespace to join. pyroute2 (network/_pyroute2.py) is loaded only here,
only for a container that needs it.
"""

from __future__ import annotations

import contextlib
import os

from ..errors import ConflictError, MiniContainerError, NetworkError, NotFoundError
from . import state

LOCK = "/run/lock/minicontainer-net.lock"


@contextlib.contextmanager
def _net_lock():
    """Host-wide lock around plugging containers in and out: two first starts at once raced creating
    the bridge (pyroute2 NetlinkError 17 "File exists"), and a last detach deleting the bridge could
    race a start plugging into it."""
    import fcntl
    try:
        fd = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        from ..errors import from_oserror
        raise from_oserror(exc, "open the network lock", LOCK) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def attach(rec: dict, cfg, pid: int):
    """Plug container ``rec`` (its first process ``pid``) into the bridge; its Attachment."""
    from .. import network
    try:
        with _net_lock():
            net = network.attach(rec["id"], pid, name=rec["name"], hostname=cfg.hostname or rec["id"][:12],
                                 ports=[network.parse_publish(p) for p in cfg.ports], mode=cfg.network)
            network.refresh_hosts(_bridge_containers(rec["id"]))
            return net
    except MiniContainerError:
        raise
    except Exception as exc:  # noqa: BLE001 — pyroute2's NetlinkError and friends carry an errno
        raise _netlink_error(f"attach container {rec['name']} to the bridge", exc) from exc


def detach(cid: str) -> None:
    """Unplug container ``cid`` (idempotent); the other containers forget its name."""
    from .. import network
    try:
        with _net_lock():
            network.detach(cid)
            network.refresh_hosts(_bridge_containers(cid))
    except MiniContainerError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _netlink_error(f"detach container {cid[:12]} from the bridge", exc) from exc


def _netlink_error(op: str, exc: Exception) -> MiniContainerError:
    """A library's error (pyroute2's NetlinkError carries the kernel's errno as ``code``) in crun's
    form: the operation, the errno's name, what to do."""
    hint = "`minicontainer gc` removes what a failed start left; `ip link`, `nft list ruleset` show the rest"
    code = getattr(exc, "code", None)
    code = code if isinstance(code, int) else getattr(exc, "errno", None)
    if isinstance(code, int) and code > 0:
        return NetworkError(op, None, code, hint=hint)
    from ..errors import ContainerError
    return ContainerError(f"{op}: {type(exc).__name__}: {exc}", hint=hint)


def peer(cfg) -> dict:
    """The running container whose network namespace ``--network container:NAME`` shares."""
    ref = cfg.network.split(":", 1)[1]
    try:
        rec = state.find(ref)
    except NotFoundError:
        raise NotFoundError(f"--network container:{ref}: no such container",
                            hint="name a running container (see `minicontainer ps`)") from None
    if rec.get("status") not in ("running", "paused") or not state.alive(rec.get("pid"), rec.get("start_time")):
        raise ConflictError(f"--network container:{ref}: container {rec['name']} is not running",
                            hint="start it first: its network namespace lives as long as its processes")
    return rec


def _bridge_containers(exclude: str) -> list[dict]:
    """Records of the other running containers on the bridge (for their /etc/hosts)."""
    return [r for r in state.all_records()
            if r["id"] != exclude and r.get("status") in ("running", "paused")
            and (r.get("network") or {}).get("mode") == "bridge" and state.alive(r.get("pid"), r.get("start_time"))]
