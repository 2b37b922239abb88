"""A container as the engine knows it: its record, its name and id, its image (notebook 06).

``create`` turns a validated :class:`~.config.ContainerConfig` into a record (state "created") and a
writable layer — nothing runs yet; ``start`` (start_path.py) runs it. The record says everything a later
command or ``gc`` needs: the image's layers, the command (the image's Entrypoint + Cmd, or the
user's), the environment, the cgroup's name, where the writable layer is. Names are docker's:
``--name`` or ``mc_<id prefix>``, claimed under the state lock so two creates never share one.

The spare slot: ``minicontainer serve`` parks a container before any request (parked.py); the
worker that gets a ``run`` puts it here (:func:`set_parked`), and ``create`` takes its id when the
request fits it. A process-wide slot, not an argument, because the request reaches ``create`` through
the command line's own parsing (the same ``cli.execute`` as an unserved command).
"""

from __future__ import annotations

import os
import time
from contextlib import ExitStack

from ..errors import ConflictError, ContainerError
from . import state, teardown
from .config import ContainerConfig

#: the fallback PATH, docker's
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def cgroup_name(cid: str) -> str:
    return f"mc-{cid[:16]}"


def image_store():
    from ..images import ImageStore
    return ImageStore()


def find_image(store, ref: str):
    """The image ``ref`` (busybox is made on first use from the host's binary)."""
    if ref == "busybox":
        return store.ensure_busybox()
    return store.get(ref)


def me() -> list:
    """The process managing a record now (pid + start time, against pid reuse): gc leaves it alone
    while it lives, and cleans up after it once it died without finishing."""
    return [os.getpid(), state.start_time_of(os.getpid())]


def command_of(icfg: dict, cfg: ContainerConfig) -> list[str]:
    """What the container runs: the image's Entrypoint, then the user's command or else the image's Cmd
    (docker's rule). ``--entrypoint`` replaces the Entrypoint and drops the image's Cmd with it
    (``--entrypoint ""``: the user's command alone)."""
    if cfg.entrypoint is not None:
        return ([cfg.entrypoint] if cfg.entrypoint else []) + list(cfg.command)
    return list(icfg.get("Entrypoint") or []) + (list(cfg.command) or list(icfg.get("Cmd") or []))


def create(cfg: ContainerConfig) -> dict:
    """Validate, resolve the image, write the record (state "created"), make the writable layer.
    A failure leaves nothing: each resource registers its release as it is made."""
    cfg.validate()
    store = image_store()
    img = find_image(store, cfg.image)
    icfg = img.config or {}
    argv = command_of(icfg, cfg)
    if not argv:
        if cfg.entrypoint is not None:
            raise ContainerError('no command: --entrypoint "" drops the image\'s Entrypoint and Cmd',
                                 hint="add a command: minicontainer run --entrypoint \"\" IMAGE CMD…")
        raise ContainerError(f"image {cfg.image!r} has no command (no Entrypoint or Cmd)",
                             hint="add a command: minicontainer run IMAGE CMD…")
    stop_signal = None
    if icfg.get("StopSignal"):              # the image's, for `stop` (docker's StopSignal)
        from .lifecycle import parse_signal
        stop_signal = parse_signal(icfg["StopSignal"])
    from . import confine
    security = confine.summary(cfg)      # prepared now: a bad profile fails before anything exists
    idmap = layers_mode = None
    lowerdirs = img.lowerdirs
    if cfg.userns == "remap":            # /etc/subuid's range, read once: the record keeps it
        from .. import subids
        from . import userns_layers
        idmap = subids.mapping()
        # idmapped layers, or (refused by the kernel, or asked for) a chowned copy: decided here,
        # before any process of the container exists (userns_layers.py)
        layers_mode = userns_layers.mode(store, idmap)
        if layers_mode == "copy":
            lowerdirs = userns_layers.lowerdirs(store, img, idmap)
    if cfg.network.startswith("container:"):
        _check_peer(cfg, idmap)
    teardown.die_at("validated")
    spare = parked_for(img.id, cfg)     # made by `minicontainer serve` for such a run: take its id
    cid = spare.cid if spare else os.urandom(32).hex()   # not `secrets`: its import costs ~5 ms
    layer = store.layer_paths(cid)
    with ExitStack() as undo:
        with state.locked():
            name = _claim_name(cfg.name, cid)
            undo.callback(state.release_name, name, cid)
            rec = {"id": cid, "name": name, "status": "created", "config": cfg.to_dict(),
                   "image_id": img.id, "argv": argv, "lowerdirs": lowerdirs,
                   "env": _env(icfg, cfg), "workdir": _workdir(cfg, icfg),
                   "image_user": icfg.get("User") or None, "image_labels": icfg.get("Labels") or {},
                   "stop_signal": stop_signal, "security": security, "idmap": idmap,
                   "userns_layers": layers_mode,
                   "created": time.time(), "pid": None, "owner": me(), "exit_code": None,
                   "cgroup": spare.cg.name if spare else cgroup_name(cid),
                   # the layer's place is known before it exists: one write of the record, not two;
                   # `gc` removes a layer that a crash left half made, or never made, with the record
                   "upperdir": str(layer.upperdir), "workdir_ovl": str(layer.workdir)}
            state.write(rec)
            undo.pop_all()
            undo.callback(teardown.remove, rec)      # from now on: the layer (if any) and the record
        teardown.die_at("record")
        if spare:
            spare.claim_layer()
        else:
            from .userns import host_ids
            store.create_container_layer(cid, owner=host_ids(idmap) if idmap else None)
        store.mark_in_use(img.id, cid)
        teardown.die_at("layer")
        if layers_mode == "copy":          # after mark_in_use: rmi refuses the image from now on
            userns_layers.ensure(store, img, idmap)
        undo.pop_all()
    return rec


def _check_peer(cfg, idmap) -> None:
    """``--network container:NAME`` with a peer remapped and this one not, or the other way round:
    refused before anything exists (start checks again: the name may point elsewhere by then)."""
    from ..errors import NotFoundError
    from .userns import check_peer
    ref = cfg.network.split(":", 1)[1]
    try:
        peer = state.find(ref)
    except NotFoundError:
        return                             # start says so, with its own hint
    check_peer(idmap, peer, ref)


def _claim_name(name: str | None, cid: str) -> str:
    """``--name``, or docker's kind of default; under the state lock."""
    if name is not None:
        if not state.claim_name(name, cid):
            raise ConflictError(f"container name {name!r} is already in use",
                                hint=f"remove it (minicontainer rm {name}) or choose another --name")
        return name
    i = 0
    while not state.claim_name(f"mc_{cid[:8]}{i or ''}", cid):
        i += 1
    return f"mc_{cid[:8]}{i or ''}"


def _env(icfg: dict, cfg: ContainerConfig) -> list[str]:
    env = {"PATH": PATH}
    for e in list(icfg.get("Env") or []) + list(cfg.env):
        k, _, v = e.partition("=")
        env[k] = v
    env.setdefault("HOSTNAME", cfg.hostname or "")
    if cfg.tty:
        env.setdefault("TERM", "xterm")
    return [f"{k}={v}" for k, v in env.items()]


# --- the spare slot (see the module's docstring) -------------------------------------------------
_parked = None


def set_parked(child) -> None:
    """The server's spare (worker.py): the next ``run`` in this process uses it if it fits."""
    global _parked
    _parked = child


def parked_for(image_id: str, cfg):
    """The parked spare, if this process may use it for ``cfg``: same image, a network namespace of
    its own (bridge or none), and started here (not by a ``run -d`` monitor)."""
    c = _parked
    if c is None or c.owner != os.getpid() or c.spec.get("image_id") != image_id \
            or cfg.network not in ("bridge", "none") or cfg.userns != "host":
        return None
    from .confine import is_default
    if not is_default(cfg):         # the spare has Docker's masks and device rules: only for those
        return None
    return c


def take_parked():
    """Take the spare out of the slot (None if there is none, or it is not this process's)."""
    global _parked
    child, _parked = _parked, None
    if child is not None and child.owner != os.getpid():
        return None       # a forked monitor (run -d): the child is not ours to wait for
    return child


def discard_parked() -> None:
    child = take_parked()
    if child is not None:
        child.discard()


def _workdir(cfg, icfg: dict) -> str:
    """-w, else the image's WorkingDir (which the image's author controls: a string, absolute —
    an integer would become an fchdir), else /. Resolved inside the root at start (standard_init)."""
    from .config import check_workdir
    if cfg.workdir:
        return cfg.workdir
    wd = icfg.get("WorkingDir")
    return check_workdir(wd, "the image's WorkingDir") if wd not in (None, "") else "/"
