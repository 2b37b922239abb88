"""A real distribution image nobody here made: Debian bookworm (minbase + python3 and nginx) from
mmdebstrap, packed as an OCI layout by umoci with its /dev nodes, imported, pushed to the loopback
registry with skopeo, pulled and run — python3 with no command-line workarounds.

The layout comes from the ``debian_layout`` fixture (conftest.py, _debian.py): the root file system
is built once from the Debian mirror and cached; without the mirror and a cache the tests are skipped
with the reason."""

import os
import shutil
import subprocess
import sys

import pytest

from tests.integration._registry import Registry, skopeo_copy

TOOLS = ("skopeo", "docker-registry")


def _mc(tmp_path, *argv):
    env = dict(os.environ, MINICONTAINER_DATA_ROOT=str(tmp_path / "data"),
               MINICONTAINER_STATE_ROOT=str(tmp_path / "state"), MINICONTAINER_NO_SERVER="1")
    return subprocess.run([sys.executable, "-m", "minicontainer.cli", *argv], capture_output=True, text=True,
                          env=env, timeout=300)


def test_debian_imports_and_runs_python3(debian_layout, tmp_path):
    p = _mc(tmp_path, "import", str(debian_layout), "bookworm")
    assert p.returncode == 0, p.stderr
    warn = [ln for ln in p.stderr.splitlines() if "warning" in ln]
    assert len(warn) == 1 and "/dev/console (5:1)" in warn[0], p.stderr
    code = "import os, sys; print(sys.version_info[:2], os.getuid(), os.getgid(), os.environ['HOME'])"
    p = _mc(tmp_path, "run", "--rm", "--network", "none", "bookworm", "python3", "-c", code)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "(3, 11) 65534 65534 /nonexistent"      # the image's User: nobody
    p = _mc(tmp_path, "run", "--rm", "--network", "none", "-u", "www-data", "bookworm", "id")
    assert p.returncode == 0 and p.stdout.strip() == "uid=33(www-data) gid=33(www-data) groups=33(www-data)", p.stderr
    p = _mc(tmp_path, "run", "--rm", "--network", "none", "-u", "root:adm", "bookworm", "id", "-G")
    assert p.returncode == 0 and p.stdout.strip() == "4", p.stderr


def test_debian_through_the_registry(debian_layout, tmp_path):
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (make system-packages)")
    (tmp_path / "reg").mkdir()
    reg = Registry(tmp_path / "reg", None)
    try:
        ref = f"{reg.host}/debian:bookworm"
        skopeo_copy(f"oci:{debian_layout}:bookworm", f"docker://{ref}", creds=False, fmt="v2s2")
        p = _mc(tmp_path, "run", "--rm", "--network", "none", ref, "python3", "-c", "print('hi from debian')")
        assert p.returncode == 0 and p.stdout == "hi from debian\n", p.stderr
    finally:
        reg.close()
