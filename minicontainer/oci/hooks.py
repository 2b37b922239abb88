"""OCI hooks: programs the caller wants run at fixed points of a container's life.

Where each kind runs (spec "POSIX-platform Hooks"), and who runs it here:

- ``prestart`` (deprecated) and ``createRuntime``: in the runtime's namespaces, after the container's
  namespaces exist and before pivot_root — run by ``create``'s process when the container asks;
- ``createContainer``: in the container's namespaces, before pivot_root — run by the container's init;
- ``startContainer``: in the container, after ``start``, just before the user's program — the init;
- ``poststart``: after the user's program started — run by ``start``;
- ``poststop``: after the container is deleted — run by ``delete``.

Each gets the container's state (the JSON of ``state``) on stdin. A failure of any but poststart and
poststop fails the operation (the spec: poststart/poststop failures are only logged).
"""
from __future__ import annotations

import os

from .. import fastjson
from ..errors import ContainerError


def run(kind: str, hooks, state: dict, *, check: bool = True) -> list[str]:
    """Run ``hooks`` (spec.Hook) in order; returns the warnings of unchecked ones."""
    import subprocess
    warnings = []
    data = fastjson.dumps(state).encode()
    for h in hooks:
        env = dict(e.split("=", 1) for e in h.env if "=" in e)
        try:
            p = subprocess.run(list(h.args) or [h.path], executable=h.path, input=data, env=env,
                               timeout=h.timeout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            err = None if p.returncode == 0 else \
                f"exit status {p.returncode}" + (f": {p.stderr.decode(errors='replace').strip().splitlines()[-1]}"
                                                 if p.stderr.strip() else "")
        except subprocess.TimeoutExpired:
            err = f"timed out after {h.timeout} s"
        except OSError as exc:
            err = os.strerror(exc.errno or 0)
        if err:
            msg = f"{kind} hook {h.path}: {err}"
            if check:
                raise ContainerError(msg, hint=f"the config's hooks.{kind} failed")
            warnings.append(msg)
    return warnings
