"""A real distribution image nobody here made: Debian bookworm (minbase + python3-minimal) from
mmdebstrap, packed as an OCI layout by umoci with its /dev nodes, imported, pushed to the loopback
registry with skopeo, pulled and run — python3 with no command-line workarounds.

mmdebstrap needs the Debian mirror (the one apt uses here); the root file system is built once and
cached (``$MINICONTAINER_TEST_CACHE``, default /var/tmp/minicontainer-test-cache). Without the mirror
the test is skipped with the reason."""

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.integration._registry import Registry, skopeo_copy

CACHE = Path(os.environ.get("MINICONTAINER_TEST_CACHE", "/var/tmp/minicontainer-test-cache"))
TOOLS = ("mmdebstrap", "umoci", "skopeo", "docker-registry")


def _rootfs_tar() -> Path:
    tar = CACHE / "debian-bookworm-python3.tar"
    if tar.exists():
        return tar
    CACHE.mkdir(parents=True, exist_ok=True, mode=0o700)
    part = tar.with_name(tar.name + f".{os.getpid()}.part")
    try:
        p = subprocess.run(["mmdebstrap", "--mode=unshare", "--variant=minbase", "--include=python3-minimal",
                            "bookworm", str(part)], capture_output=True, text=True, timeout=400)
    except subprocess.TimeoutExpired:
        part.unlink(missing_ok=True)
        pytest.skip("mmdebstrap took over 400 s (is the Debian mirror reachable?)")
    if p.returncode:
        part.unlink(missing_ok=True)
        pytest.skip(f"mmdebstrap could not build bookworm (Debian mirror unreachable?): {p.stderr.strip()[-300:]}")
    os.replace(part, tar)
    return tar


@pytest.fixture(scope="module")
def debian_layout(tmp_path_factory):
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (make system-packages)")
    tar = _rootfs_tar()
    work = tmp_path_factory.mktemp("debian")
    layout = work / "oci"
    subprocess.run(["umoci", "init", "--layout", str(layout)], check=True)
    subprocess.run(["umoci", "new", "--image", f"{layout}:bookworm"], check=True)
    bundle = work / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:bookworm", str(bundle)], check=True,
                   capture_output=True)
    with tarfile.open(tar) as t:
        t.extractall(bundle / "rootfs")          # as root: /dev/console, /dev/null … are real nodes
    assert (bundle / "rootfs/dev/console").is_char_device()
    subprocess.run(["umoci", "repack", "--image", f"{layout}:bookworm", str(bundle)], check=True,
                   capture_output=True)
    subprocess.run(["umoci", "config", "--image", f"{layout}:bookworm",
                    "--config.env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "--config.cmd", "python3", "--config.user", "nobody"], check=True)
    shutil.rmtree(bundle)
    yield layout


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
    (tmp_path / "reg").mkdir()
    reg = Registry(tmp_path / "reg", None)
    try:
        ref = f"{reg.host}/debian:bookworm"
        skopeo_copy(f"oci:{debian_layout}:bookworm", f"docker://{ref}", creds=False, fmt="v2s2")
        p = _mc(tmp_path, "run", "--rm", "--network", "none", ref, "python3", "-c", "print('hi from debian')")
        assert p.returncode == 0 and p.stdout == "hi from debian\n", p.stderr
    finally:
        reg.close()
