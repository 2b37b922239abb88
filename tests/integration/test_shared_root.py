"""Under a shared / (systemd hosts), a mount made in a new mount namespace must not reach the host.

`make test` runs the integration tests and the notebooks twice: as they are (this CI host's / is
private) and again through tests/shared_root.sh (a mount namespace whose / is rshared, like a
systemd host's). These tests keep that second pass honest: it really runs under a shared /, and a
mount propagated from a child namespace -- notebook 03's old pivot_shared demo: unshare, make /
rshared, bind-mount -- really shows up in its leak check, while the same demo with / made private
(or slave) first does not. And notebook 03 itself, run under a shared /, must leave no mount.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED_ROOT = ROOT / "tests" / "shared_root.sh"
IN_PASS = os.environ.get("MINICONTAINER_SHARED_ROOT") == "1"


def _optional_fields(mount_point: str = "/") -> list[str]:
    """shared:N / master:N of the mount on top at mount_point, from /proc/self/mountinfo."""
    fields: list[str] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left = line.partition(" - ")[0].split()
        if left[4] == mount_point:
            fields = left[6:]
    return fields


def test_the_shared_pass_runs_under_a_shared_root():
    if not IN_PASS:
        pytest.skip("checks make test's shared-/ pass (tests/shared_root.sh); this is the first pass")
    assert any(f.startswith("shared:") for f in _optional_fields("/")), _optional_fields("/")
    left = os.environ.get("MINICONTAINER_SHARED_ROOT_FROM")
    assert left and os.readlink("/proc/self/ns/mnt") != left, f"not a namespace of its own: {left}"


# Run inside tests/shared_root.sh: a child makes a mount the way notebook 03's pivot_shared demo
# did, with / made private or slave first or not at all; what does this namespace's leak check see?
_PROBE = r"""
import json, os, sys, tempfile
from minicontainer import syscalls as sc
from tests import leakcheck

d = tempfile.mkdtemp(prefix="mc-shared-probe-")

def child(first):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            sc.unshare(sc.CLONE_NEWNS)
            if first:
                sc.mount(None, "/", None, sc.MS_REC | first)
            sc.mount(None, "/", None, sc.MS_REC | sc.MS_SHARED)   # the demo's own peer group
            sc.mount(d, d, None, sc.MS_BIND)
            code = 0
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0

seen = {}
for name, first in (("shared", 0), ("private first", sc.MS_PRIVATE), ("slave first", sc.MS_SLAVE)):
    before = leakcheck.snapshot()
    child(first)
    seen[name] = leakcheck.leaks(before, leakcheck.snapshot())
    while any(l.split()[4] == d for l in open("/proc/self/mountinfo")):   # ismount: same fs, so False
        sc.umount2(d, sc.MNT_DETACH)
os.rmdir(d)
print(json.dumps(seen))
"""


def test_the_shared_pass_sees_a_mount_a_child_namespace_propagates():
    r = subprocess.run(["bash", str(SHARED_ROOT), sys.executable, "-c", _PROBE], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(seen["shared"]) == 1 and seen["shared"][0].startswith("mounts: ('/tmp/mc-shared-probe-"), seen
    assert seen["private first"] == [] and seen["slave first"] == [], seen


def test_notebook_03_leaves_no_mount_under_a_shared_root():
    """Issue 22: cell 10 made / rshared in a namespace copied from a shared /, so its bind mount
    propagated to the host and stayed. Run the solved notebook under nbval in a shared-/ namespace;
    its leak check (conftest.py) must find nothing. The second pass runs every notebook like this."""
    if IN_PASS:
        pytest.skip("the shared-/ pass runs notebook 03 itself under a shared /")
    if not shutil.which("unshare"):
        pytest.skip("util-linux unshare is not installed")
    out_dir = ROOT / "build" / f"shared-root-{os.getpid()}"   # below the rootdir: its conftest.py applies
    try:
        subprocess.run([sys.executable, "-m", "minicontainer.course.notebooks", "solve", "notebooks",
                        str(out_dir), "03"], cwd=ROOT, check=True, capture_output=True)
        (nb,) = out_dir.glob("03_*.ipynb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        r = subprocess.run(["bash", str(SHARED_ROOT), sys.executable, "-m", "pytest", str(nb), "--nbval-lax",
                            "--nbval-current-env", "--nbval-sanitize-with", "tests/notebooks/sanitize.cfg",
                            "-p", "no:cacheprovider", "-q"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=600)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    left = [line.strip() for line in r.stdout.splitlines() if "left behind" in line or "mounts:" in line]
    assert r.returncode == 0, "\n".join(left) or r.stdout[-4000:]


def test_the_debian_builder_cannot_unmount_the_hosts_mounts():
    """What mmdebstrap's clean-up amounts to under a shared / — a tool that unshares a mount namespace
    without changing its propagation and unmounts — takes the host's mounts with it; run through
    _debian.PRIVATE_MOUNTS (how the Debian image is built) the host keeps them."""
    from tests.integration import _debian
    tool = ["unshare", "--mount", "--propagation", "unchanged", "--", "sh", "-c", "umount -R /sys/fs/cgroup"]
    count = 'grep -c " /sys/fs/cgroup" /proc/self/mountinfo || true'

    def before_after(argv):
        out = subprocess.run(["bash", str(SHARED_ROOT), "bash", "-c", f'{count}; "$@"; {count}', "probe", *argv],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return [int(n) for n in out.stdout.split()]

    b, a = before_after(tool)
    assert b > 0 and a == 0, (b, a)                 # the trap is real: the "host" lost them
    b, a = before_after([*_debian.PRIVATE_MOUNTS, *tool])
    assert b > 0 and a == b, (b, a)

