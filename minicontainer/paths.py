"""Where minicontainer keeps things on the host. Introduced in notebook 00.

- the *state root* (``/run/minicontainer``): container records and locks; on tmpfs, so a reboot
  forgets containers that cannot be running any more (as runc's ``/run/runc``);
- the *data root* (``/var/lib/minicontainer``): images, layers and containers' writable layers,
  which survive a reboot (as ``/var/lib/docker``);
- the *cgroup parent* (``minicontainer``): every cgroup we create lives below it, in every
  hierarchy, so that we never touch a group we did not make.

Each can be moved with an environment variable (tests use private roots).
"""

from __future__ import annotations

import os

from .commands import SOCKET_NAME, STATE_ROOT  # plain data: the launcher reads it before anything else

CGROUP_PARENT = os.environ.get("MINICONTAINER_CGROUP_PARENT", "minicontainer")


def _state_root() -> str:
    return os.environ.get("MINICONTAINER_STATE_ROOT", STATE_ROOT)


def state_root() -> Path:
    from pathlib import Path  # here, not at the top: a served command never needs it
    return Path(_state_root())


def _data_root() -> str:
    return os.environ.get("MINICONTAINER_DATA_ROOT", "/var/lib/minicontainer")


def data_root() -> Path:
    from pathlib import Path
    return Path(_data_root())


def server_socket() -> str:
    """Where ``minicontainer serve`` listens: in the state root, so each root has its own server
    (the launcher computes the same, client.socket_path, without importing this module)."""
    return os.path.join(_state_root(), SOCKET_NAME)
