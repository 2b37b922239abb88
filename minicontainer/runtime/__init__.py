"""The engine's container part: containers' lifecycle, records and start path (notebook 06).

It assembles the earlier modules (namespaces 01, cgroups 02, rootfs 03, images 04, network 05) the
way Docker's engine drives runc, in modules of one job each:

==================  ========================================================================
config.py           the ``run`` flags as one validated record (sizes parsed once, here)
state.py            records on disk, the state lock, names
container.py        ``create``: the record, the name, the image's command; the server's spare slot
start_path.py       ``start``: park, plug in the network, release, wait; ``run`` for notebooks
parked.py           the container's first processes, made before the request (and the spare)
standard_init.py    the code inside the new container up to exec (runc init's role)
confine.py          notebook 07's defaults and flags: prepared at create, applied last before exec
netattach.py        the engine's side of ``--network``: attach/detach under the lock, peers
monitor.py          ``run -d``: the process that waits for a detached container (the shim's role)
waiter.py           the monitor as a bare interpreter once the container runs (why only one)
teardown.py         the one teardown of a container's resources, and fault injection
lifecycle.py        kill, stop, pause, unpause, rm, ps, inspect, stats, logs
exec.py             ``exec``: its flags as an OCI process, run by the OCI runtime's exec
userns.py           ``--userns=remap``: the user namespace, its order, idmapped layers
garbage.py          ``gc``: what crashed runs left
ocispec.py          a record as an OCI runtime-spec config.json (the engine → OCI runtime seam)
init.py             ``--init``: the host's tini-static as PID 1, bound read-only (docker-init)
tty.py              ``-t``: the pty and its relay
process.py          every public name above, for notebooks and scripts
==================  ========================================================================

Cell-friendly API (notebooks)::

    from minicontainer import runtime
    r = runtime.run("busybox", ["echo", "hi"])     # -> Result(exit_code=0, stdout='hi\\n', stderr='')
"""

from __future__ import annotations

from .config import ContainerConfig  # noqa: F401  (light: no dataclasses)

_PUBLIC = ("run", "Result", "create", "start", "stop", "kill", "pause", "unpause", "remove",
           "exec_in", "list_containers", "inspect", "stats", "gc", "logs_path")


def __getattr__(name):
    # Lazy: `import minicontainer.runtime` stays cheap on the CLI's start path.
    if name in _PUBLIC:
        from . import process
        return getattr(process, name)
    raise AttributeError(name)
