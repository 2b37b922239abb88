"""Set-up several integration test files share: a module's own roots, and a static probe."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_runtime_cli import mc


def module_roots(tmp_path_factory, prefix: str):
    """A test module's own state and data roots, without a server; ``gc`` at the end. A generator,
    for a module fixture: ``yield from module_roots(tmp_path_factory, "mcsec")``."""
    base = tmp_path_factory.mktemp(prefix)
    env = dict(os.environ, MINICONTAINER_STATE_ROOT=str(base / "state"),
               MINICONTAINER_DATA_ROOT=str(base / "data"), MINICONTAINER_NO_SERVER="1")
    yield env
    mc(env, "gc")


def static_probe(tmp_path_factory, source: Path) -> Path:
    """``source`` (a .c file) built static into a fresh 0755 directory (to bind into a container
    whose image has no libc of the host's); the directory. Skips without a C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip(f"no C compiler on this host: the probe is a static binary built from {source.name} "
                    "(install gcc and libc6-dev)")
    d = tmp_path_factory.mktemp(source.stem)
    d.chmod(0o755)
    subprocess.run([cc, "-static", "-O1", "-o", str(d / source.stem), str(source)], check=True,
                   capture_output=True)
    return d
