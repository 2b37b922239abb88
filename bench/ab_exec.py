"""A/B of `minicontainer exec NAME true` (plain commands: a fresh interpreter each), interleaved.

One detached busybox container in private roots; each variant is a checkout of the package (its
directory), run as `.venv/bin/python -m minicontainer.cli` with PYTHONPATH=that directory and
MINICONTAINER_NO_SERVER=1, A B, B A, … after the same quiet gap. Medians and quartiles, ms.
(Issue 15: the engine's exec through the OCI runtime's, oci/exec.run, against the code before.)

    .venv/bin/python bench/ab_exec.py [-n N] [--gap S] OLD_CHECKOUT NEW_CHECKOUT
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = str(ROOT / ".venv/bin/python")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=60)
    ap.add_argument("--gap", type=float, default=0.1)
    ap.add_argument("old")
    ap.add_argument("new")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="mcabexec-")
    os.chmod(work, 0o700)
    env = dict(os.environ, MINICONTAINER_NO_SERVER="1", MINICONTAINER_STATE_ROOT=f"{work}/state",
               MINICONTAINER_DATA_ROOT=f"{work}/data")

    def mc(pkg: str, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([PY, "-m", "minicontainer.cli", *argv], env=dict(env, PYTHONPATH=pkg),
                              capture_output=True, text=True, cwd=work)

    name = "abexec"
    try:
        p = mc(a.new, "run", "-d", "--name", name, "--network", "none", "busybox", "sleep", "600")
        if p.returncode:
            sys.exit(f"run -d failed: {p.stderr.strip()}")
        times = {"A": [], "B": []}
        for i in range(a.n):
            for tag in ("AB" if i % 2 == 0 else "BA"):
                time.sleep(a.gap)
                t = time.perf_counter()
                p = mc(a.old if tag == "A" else a.new, "exec", name, "true")
                dt = (time.perf_counter() - t) * 1000
                if p.returncode:
                    sys.exit(f"{tag}: exec failed: {p.stderr.strip()}")
                times[tag].append(dt)
        for tag, label in (("A", a.old), ("B", a.new)):
            q = statistics.quantiles(times[tag], n=4)
            print(f"{tag} {label}: median {statistics.median(times[tag]):.1f} ms (quartiles {q[0]:.1f}–{q[2]:.1f})")
        print(f"B/A: {statistics.median(times['B']) / statistics.median(times['A']):.2f}")
    finally:
        mc(a.new, "rm", "-f", name)
        mc(a.new, "gc")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
