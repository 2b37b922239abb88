"""The benchmarks are the project's too: one round of the OCI bench (minicontainer-oci against runc)
leaves nothing behind — runc, given the bench's cgroupsPath on a hybrid host, leaves the v2 parent
group `minicontainer` at delete, and the bench removes it (the autouse leak check sees every
hierarchy, /sys/fs/cgroup/unified included)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed (make setup installs it)")
def test_one_round_of_the_oci_bench_leaves_no_cgroup():
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "oci_latency.py"), "2", "0"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "x runc" in p.stdout
