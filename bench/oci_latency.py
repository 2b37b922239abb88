"""create + start + delete of one bundle: minicontainer-oci against runc (and crun if it works here),
interleaved (A B, B A, …) after the same quiet gap. Measured, never asserted. Medians and quartiles, ms.

    sudo flock /work/kernel.lock .venv/bin/python bench/oci_latency.py [N=50] [GAP=0.1]

One round = ``create --bundle B --pid-file P ID`` (the runtime exits; the container waits on its
exec.fifo), ``start ID``, the container's ``true`` reaped by this process (a subreaper, as conmon and
the shim are), ``delete ID``. Same bundle (busybox rootfs, `minicontainer-oci spec`'s config with
the process's terminal off), same private --root per runtime. The figure is wall time of the three
commands plus the wait.
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))


def bundle(path: Path) -> Path:
    from minicontainer.busybox import build_rootfs
    from minicontainer.oci.spec import example
    build_rootfs(path / "rootfs")
    cfg = example(args=("true",), terminal=False)
    cfg["linux"]["cgroupsPath"] = "/minicontainer/bench"      # below our parent, same for both
    cfg["linux"]["resources"] = {}
    cfg["process"].pop("rlimits", None)
    (path / "config.json").write_text(json.dumps(cfg))
    return path


def cgroup_parents() -> set[str]:
    """The ``minicontainer`` parent group in every mounted hierarchy, where one exists. runc, given
    the bench's cgroupsPath on a hybrid host, also makes it in the v2 hierarchy and leaves it behind
    at ``delete`` (it removes only the container's own group): :func:`remove_new_parents` does."""
    found = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] in ("cgroup", "cgroup2"):
                p = os.path.join(left.split()[4], "minicontainer")
                if os.path.isdir(p):
                    found.add(p)
    return found


def remove_new_parents(before: set[str]) -> None:
    """rmdir the parents that appeared since ``before`` (an empty one only: the kernel refuses others)."""
    for p in sorted(cgroup_parents() - before):
        try:
            os.rmdir(p)
        except OSError:
            pass


def one(cmd: list[str], root: str, b: Path, cid: str) -> float:
    devnull = subprocess.DEVNULL
    t0 = time.perf_counter()
    subprocess.run(cmd + ["--root", root, "create", "--bundle", str(b), "--pid-file", f"{root}/pid", cid],
                   check=True, stdin=devnull, stdout=devnull)
    pid = int(Path(f"{root}/pid").read_text())
    subprocess.run(cmd + ["--root", root, "start", cid], check=True, stdout=devnull)
    os.waitpid(pid, 0)
    subprocess.run(cmd + ["--root", root, "delete", cid], check=True, stdout=devnull)
    return (time.perf_counter() - t0) * 1000


def main(n: int, gap: float) -> None:
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)            # PR_SET_CHILD_SUBREAPER: we reap the containers
    work = Path(tempfile.mkdtemp(prefix="ocibench-"))
    parents = cgroup_parents()
    try:
        b = bundle(work / "bundle")
        runtimes = {"minicontainer-oci": [os.environ.get("OCI_BIN", str(HERE / ".venv" / "bin" / "minicontainer-oci"))],
                    "runc": [shutil.which("runc") or "runc"]}
        times: dict[str, list[float]] = {k: [] for k in runtimes}
        for name, cmd in runtimes.items():
            os.makedirs(work / name, exist_ok=True)
            one(cmd, str(work / name), b, "warm")
        for i in range(n):
            order = list(runtimes) if i % 2 == 0 else list(reversed(runtimes))
            for name in order:
                time.sleep(gap)
                times[name].append(one(runtimes[name], str(work / name), b, f"b{i}"))
        base = statistics.median(times["runc"])
        for name, t in times.items():
            q = statistics.quantiles(t, n=4)
            print(f"{name:18} median {statistics.median(t):6.1f} ms  (q1 {q[0]:.1f}, q3 {q[2]:.1f})  "
                  f"{statistics.median(t) / base:.2f} x runc")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        remove_new_parents(parents)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50, float(sys.argv[2]) if len(sys.argv) > 2 else 0.1)
