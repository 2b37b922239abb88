"""The runtime: containers' lifecycle, state and start path. Introduced in notebook 06.

It assembles the earlier modules (namespaces 01, cgroups 02, rootfs 03, images 04, network 05) the
way runc assembles libcontainer: a record on disk (:mod:`.state`), a start path that forks a child
which waits on a pipe while the parent plugs in cgroup and network (:mod:`.process`).

Cell-friendly API (notebooks)::

    from minicontainer import runtime
    r = runtime.run("busybox", ["echo", "hi"])     # -> Result(exit_code=0, stdout='hi\\n', stderr='')
"""

from __future__ import annotations

from .config import ContainerConfig  # noqa: F401  (light: dataclasses only)


def __getattr__(name):
    # Lazy: `import minicontainer.runtime` stays cheap on the CLI's start path.
    if name in ("run", "Result", "create", "start", "stop", "kill", "pause", "unpause", "remove",
                "exec_in", "list_containers", "inspect", "stats", "gc", "logs_path"):
        from . import process
        return getattr(process, name)
    raise AttributeError(name)
