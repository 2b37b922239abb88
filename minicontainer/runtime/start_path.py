"""Starting a created container and waiting for it (notebook 06; design-notes.md has the figures).

``run`` = ``create`` (container.py) + :func:`start` + wait + teardown. The start path:

1. the container's first processes are *parked* (parked.py): the cgroup is made with its limits
   applied *before* any code of the container runs, C and G are forked into it, and G prepares the
   root file system while the cgroup join completes — or ``minicontainer serve``'s spare is taken,
   already that far;
2. the network is plugged in from the host (``--network bridge``: a veth moved into C's network
   namespace by pid; netattach.py), and the /etc files are generated (hostname, hosts, resolv.conf);
3. G is *released*: the record, the /etc files and its stdio go to it over its socket, and it does
   the rest itself (standard_init.py) up to exec'ing the command; an error comes back as one line;
4. the record says "running" (pid, start time); a detached start's process is the monitor, and
   PID 1's parent since C ended (monitor.py, waiter.py); a foreground one waits, maps the status (docker's 128+N for signal N),
   and tears down (teardown.py): cgroup, network, then the record — stopped, or removed with ``--rm``.

Every resource registers its release on an ExitStack as it is acquired, so a failure at any step
(or Ctrl-C) unwinds exactly what exists; ``MINICONTAINER_TEST_DIE_AT`` kills the runtime at each
step (teardown.STEPS) to prove that ``gc`` then finds everything through the record.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import ExitStack

from .._record import record
from .. import fastjson  # json without the package's import (fastjson.py)
from ..errors import ContainerError, exit_code
from . import state, teardown
from .config import ContainerConfig
from .container import create, me, take_parked


@record
class Result:
    exit_code: int
    stdout: str
    stderr: str


def start(rec: dict, *, stdio=(None, None, None), on_started=None, detached: bool = False, pty=None) -> int:
    """Start a created container and wait for it; returns docker's exit code. ``pty``: a callable
    that takes the master of the terminal the container opens for itself (``-t``: tty.Terminal.adopt);
    the container's stdio is then that terminal's slave. Cleans up cgroup and network; the record ends "stopped" (removed with --rm), also when starting fails and on Ctrl-C
    (KeyboardInterrupt: the container was killed on the way out, exit code 130)."""
    try:
        return _start(rec, stdio=stdio, on_started=on_started, detached=detached, pty=pty)
    except BaseException as exc:
        teardown.finish(rec, 130 if isinstance(exc, KeyboardInterrupt) else 125, rec["config"].get("rm", False))
        raise


def _start(rec: dict, *, stdio, on_started, detached: bool, pty=None) -> int:
    from .parked import park
    cfg = ContainerConfig.from_dict(rec["config"])
    if rec["status"] != "created":
        raise ContainerError(f"container {rec['name']} is {rec['status']}, not created",
                             hint="only a created container can be started; run a new one")
    init = None
    if cfg.init:                    # the host's static init; missing: 125 before anything is taken
        from .init import host_binary
        init = host_binary()
    peer = None
    if cfg.network.startswith("container:"):
        from . import netattach
        from .userns import check_peer
        peer = netattach.peer(cfg)
        check_peer(rec.get("idmap"), peer, cfg.network.split(":", 1)[1])
    child = take_parked()
    if child is not None and child.cid != rec["id"]:
        child.discard()                      # made for another kind of request: not this one
        child = None
    if rec.get("owner") != me():             # `start` of a created one (create wrote ours, and
        state.update(rec["id"], owner=me())  # the spare's cgroup when it took the spare's id)
    from . import confine
    security, _ = confine.prepared(cfg)      # memoized: create prepared it already
    with ExitStack() as undo:
        if child is None:
            child = park(dict(_spec(rec, cfg, peer), slim=detached), rec["cgroup"], cfg.limits())
        else:
            limits = cfg.limits()
            if limits is not None:
                child.cg.set_limits(limits)   # still before any code of the container runs
        undo.callback(teardown.release_cgroup, child.cg)
        undo.callback(teardown.reap, child.pid)
        undo.callback(child.close)
        pid, cg = child.pid, child.cg
        etc = {"/etc/hostname": (cfg.hostname or rec["id"][:12]) + "\n"}
        net = None
        if cfg.network not in ("host", "none") and peer is None:   # the bridge or a user network
            from . import netattach
            undo.callback(teardown.release_network, rec["id"])
            net = netattach.attach(rec, cfg, pid)
            etc["/etc/hosts"] = net.hosts_file()
            if cfg.network == "bridge":
                from .. import resolvconf  # the host's servers, loopback ones replaced (Docker's rule)
                etc["/etc/resolv.conf"] = resolvconf.for_container(cfg.dns, cfg.dns_search)
            else:                          # a user network: its own DNS responder names its containers
                etc["/etc/resolv.conf"] = net.resolv_conf()
        elif peer is not None:
            # container:NAME — the child joined the peer's network namespace (setns) instead of
            # making one: same interfaces, addresses, ports; and the peer's /etc/hosts view.
            from .. import network
            if peer.get("network"):
                other = network.Attachment.from_dict(peer["network"])
                etc["/etc/hosts"] = other.hosts_file()
                etc["/etc/resolv.conf"] = other.resolv_conf()
            net = network.Attachment(rec["id"], rec["name"], f"container:{peer['name']}")
        else:
            etc.update(_etc_without_a_network(rec, cfg))
        teardown.die_at("network")
        # the /etc files in the container's state directory, bind-mounted by G (etcfiles.py): a later
        # refresh writes our file, never a path inside the container's root
        from .. import etcfiles
        group = None
        if rec.get("idmap"):
            from .userns import host_ids
            group = host_ids(rec["idmap"])[1]
        etc = etcfiles.write(rec["id"], etc, group=group)
        child.release(rec, etc, stdio, security, confine.extra_nodes(cfg), init, pty=pty)
        err = child.error()                   # None: EOF on the error pipe, G exec'd the command
        if err is None:
            # runtime_pid: C, where it still waits (a detached start's monitor ended it: parked.py)
            state.update(rec["id"], status="running", pid=child.gpid,
                         runtime_pid=pid if pid != child.gpid else None,
                         start_time=state.start_time_of(child.gpid), started=time.time(),
                         network=net.to_dict() if net else None)
            teardown.die_at("released")
            if on_started:
                on_started(rec)
            if detached:       # the monitor, PID 1's parent now: wait as a bare interpreter (waiter.py)
                from . import waiter
                waiter.become("supervise", pid, fastjson.dumps({"id": rec["id"], "cgroup": cg.name,
                                                            "network": cfg.network, "path": sys.path}))
        _, status = os.waitpid(pid, 0)
        undo.pop_all()
    if err is not None:
        teardown.release_running(rec, cg=cg)      # and start()'s handler writes the record
        raise err
    code = exit_code(status)
    teardown.after_exit(rec, code, cg=cg)
    return code


def _etc_without_a_network(rec: dict, cfg) -> dict:
    """Docker's /etc files for ``--network none`` and ``host``. none: an /etc/hosts of localhost and
    the container's own name (busybox has no /etc/hosts at all; Debian's is empty: ``getent hosts
    localhost`` failed), the image's resolv.conf kept — there is nothing to reach. host: the
    host's own hosts and resolv.conf, copied as they are now (its loopback resolver is reachable
    from the host's network namespace; an image's resolv.conf names servers of wherever it was
    built)."""
    if cfg.network == "none":            # (etcfiles, not network: its package costs ~20 ms to import)
        from ..etcfiles import hosts_of_its_own
        return {"/etc/hosts": hosts_of_its_own(cfg.hostname or rec["id"][:12])}
    files = {}
    for path in ("/etc/hosts", "/etc/resolv.conf"):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                files[path] = f.read(1 << 20)
        except OSError:
            pass                  # the host has none: the image's stays, as without this copy
    return files


def _spec(rec: dict, cfg, peer) -> dict:
    """What the container's first processes need before the request's details: namespaces, layers."""
    from . import confine
    own_net = cfg.network != "host" and peer is None
    return {"device_rules": confine.device_rules(cfg), "unmask": confine.unmasked(cfg),
            "privileged": bool(cfg.privileged),
            "cid": rec["id"], "names": ["uts", "ipc", "pid"] + (["net"] if own_net else []),
            "join_net": peer["pid"] if peer else None, "lowerdirs": rec["lowerdirs"],
            # a remapped peer's net namespace is its user namespace's: joined too (userns.py)
            "join_user": peer["pid"] if peer and rec.get("idmap") else None,
            "upperdir": rec["upperdir"], "workdir_ovl": rec["workdir_ovl"], "idmap": rec.get("idmap"),
            "userns_layers": rec.get("userns_layers")}


def run(image: str, command=(), *, capture: bool = True, **opts) -> Result:
    """Run a container to completion and return its exit code and output (the notebooks' API).
    ``opts`` are :class:`ContainerConfig` fields; ``rm`` defaults to True, ``network`` to "none"."""
    import tempfile
    opts.setdefault("rm", True)
    opts.setdefault("network", "none")
    cfg = ContainerConfig(image=image, command=list(command), **opts)
    rec = create(cfg)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            code = start(rec, stdio=(os.open(os.devnull, os.O_RDONLY), out.fileno(), err.fileno())
                         if capture else (None, None, None))
        except BaseException:
            if cfg.rm:
                teardown.remove(rec)
            raise
        out.seek(0)
        err.seek(0)
        return Result(code, out.read().decode(errors="replace"), err.read().decode(errors="replace"))
