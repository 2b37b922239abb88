"""The runtime's functions under one name, for the notebooks and for scripts (notebook 06).

``from minicontainer.runtime import process; process.run_detached(cfg)`` keeps working, but the code
lives in modules of one job each (named after Docker's split; runtime/__init__.py has the map).
Each name is looked up on first use (PEP 562), so importing this module costs nothing: the command
line imports the module it needs directly.
"""

from __future__ import annotations

#: name → the module that defines it
_WHERE = {
    "create": "container", "ContainerConfig": "config",
    "start": "start_path", "run": "start_path", "Result": "start_path",
    "run_detached": "monitor", "finish_detached": "teardown",
    "Parked": "parked", "park": "parked", "park_spare": "parked",
    "set_parked": "container", "discard_parked": "container",
    "kill": "lifecycle", "parse_signal": "lifecycle", "stop": "lifecycle", "pause": "lifecycle",
    "unpause": "lifecycle", "remove": "lifecycle", "list_containers": "lifecycle",
    "inspect": "lifecycle", "stats": "lifecycle", "logs_path": "lifecycle",
    "exec_in": "exec", "gc": "garbage", "STEPS": "teardown",
    "_cleanup_cgroup": ("teardown", "release_cgroup"),
}


def __getattr__(name: str):
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import config, container, exec, garbage, lifecycle, monitor, parked, start_path, teardown
    modules = {"config": config, "container": container, "exec": exec, "garbage": garbage,
               "lifecycle": lifecycle, "monitor": monitor, "parked": parked, "start_path": start_path,
               "teardown": teardown}
    module, attr = where if isinstance(where, tuple) else (where, name)
    return getattr(modules[module], attr)


def __dir__():
    return sorted(_WHERE)
