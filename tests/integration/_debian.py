"""A real distribution image nobody here made, for the tests that need one: Debian bookworm (minbase
plus the packages below) from mmdebstrap, packed as an OCI layout by umoci with its /dev nodes.

mmdebstrap needs the Debian mirror (the one apt uses here); the root file system is built once and
cached (``$MINICONTAINER_TEST_CACHE``, default /var/tmp/minicontainer-test-cache) under a name that
carries a key of what went into it (suite, variant, packages): a cache an older variant made (say,
without nginx) has another name, so it is not taken, the new one is built once and the old one
removed. Without the mirror and without a cache the tests are skipped with the reason.

The layout (made once per test session, by the ``debian_layout`` fixture in conftest.py) has two
tags over the same layer: ``bookworm`` (Cmd python3, User nobody) and ``nginx`` (Debian's nginx as
its official image runs it: Cmd ``nginx -g 'daemon off;'``, no User, i.e. root)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("MINICONTAINER_TEST_CACHE", "/var/tmp/minicontainer-test-cache"))
TOOLS = ("mmdebstrap", "umoci")
SUITE, VARIANT = "bookworm", "minbase"
#: what the tests run: python3 (test_registry_debian, test_distro_workload), nginx (test_distro_workload)
PACKAGES = ("python3", "nginx")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NGINX_CMD = ("nginx", "-g", "daemon off;")


#: How the builder runs. mmdebstrap's ``--mode=unshare`` as root unshares a mount namespace but keeps
#: the caller's propagation, so on a systemd host (/ rshared: the course's VMs) the unmounts of its
#: clean-up reach the host: one build took every /sys/fs/cgroup mount of a shared namespace with it
#: (11 → 0, here), and the VM's tests after it failed with "no cgroup file system is mounted". A
#: mount namespace of its own with private propagation (util-linux unshare's default) keeps every
#: mount event of the tool inside it. Rejected: ``--mode=root`` (it mounts in our namespace).
PRIVATE_MOUNTS = ("unshare", "--mount", "--propagation", "private", "--")


def _cache_name() -> str:
    key = hashlib.sha256(f"{SUITE} {VARIANT} {' '.join(sorted(PACKAGES))}".encode()).hexdigest()[:12]
    return f"debian-{SUITE}-{key}.tar"


def rootfs_tar() -> Path:
    """The cached root file system tarball; built (downloading from the mirror) when missing."""
    tar = CACHE / _cache_name()
    if tar.is_file():
        return tar
    CACHE.mkdir(parents=True, exist_ok=True, mode=0o700)
    part = tar.with_name(tar.name + f".{os.getpid()}.part")
    # --format: mmdebstrap guesses it from the name's extension, and ".part" is none (a directory)
    argv = [*PRIVATE_MOUNTS, "mmdebstrap", "--mode=unshare", "--format=tar", f"--variant={VARIANT}",
            f"--include={','.join(PACKAGES)}", SUITE, str(part)]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        part.unlink(missing_ok=True)
        pytest.skip(f"mmdebstrap took over 600 s (is the Debian mirror reachable?), no cache at {tar}")
    if p.returncode:
        part.unlink(missing_ok=True)
        pytest.skip(f"mmdebstrap could not build {SUITE} (Debian mirror unreachable?) and no cache at {tar}: "
                    f"{p.stderr.strip()[-300:]}")
    os.replace(part, tar)
    # Older variants (our own names only, never a .part another run is writing): 190 MB each.
    for old in CACHE.glob(f"debian-{SUITE}-*.tar"):
        if old != tar:
            old.unlink(missing_ok=True)
    return tar


def make_layout(work: Path) -> Path:
    """The OCI layout ``work/oci`` with the tags ``bookworm`` and ``nginx`` (module docstring)."""
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (make system-packages)")
    tar = rootfs_tar()
    layout = work / "oci"

    def umoci(*argv):
        subprocess.run(["umoci", *argv], check=True, capture_output=True, timeout=300)

    umoci("init", "--layout", str(layout))
    umoci("new", "--image", f"{layout}:base")
    bundle = work / "bundle"
    umoci("unpack", "--image", f"{layout}:base", str(bundle))
    with tarfile.open(tar) as t:
        t.extractall(bundle / "rootfs")          # as root: /dev/console, /dev/null … are real nodes
    assert (bundle / "rootfs/dev/console").is_char_device()
    umoci("repack", "--image", f"{layout}:base", str(bundle))
    shutil.rmtree(bundle)
    umoci("config", "--image", f"{layout}:base", "--tag", "bookworm", "--config.env", f"PATH={PATH}",
          "--config.cmd", "python3", "--config.user", "nobody")
    nginx = ["--config.cmd=" + a for a in NGINX_CMD]
    umoci("config", "--image", f"{layout}:base", "--tag", "nginx", "--config.env", f"PATH={PATH}", *nginx)
    umoci("rm", "--image", f"{layout}:base")
    # `minicontainer import LAYOUT` takes the index's first image: it must stay ``bookworm``
    refs = [m["annotations"]["org.opencontainers.image.ref.name"]
            for m in json.loads((layout / "index.json").read_text())["manifests"]]
    assert refs == ["bookworm", "nginx"], refs
    return layout
