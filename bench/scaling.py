"""1 → 100 containers running at once: what does the next `run -d` cost, and how much memory does
each running container keep on the host, as the count grows? (issue 8; measured, never asserted)

Starts N detached `busybox sleep` containers one after another (`--network none`, private state and
data roots), timing each `minicontainer run -d`; at checkpoints sums the proportional set size (Pss,
/proc/<pid>/smaps_rollup) of every process minicontainer keeps per container: the monitor (the
record's owner), the runtime's intermediate process where it still exists (``runtime_pid``; before
2026-11-30 a detached container kept it) and the container's PID 1. Then removes them all and checks that
`gc` finds nothing. Writes bench/scaling.png (start cost and memory per container vs count).

Usage: .venv/bin/python bench/scaling.py [N=100]
"""

import json
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
CHECKPOINTS = (1, 10, 25, 50, 75, 100)


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main(n: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="mcbench-scale-"))
    env = dict(os.environ, MINICONTAINER_STATE_ROOT=str(work / "state"),
               MINICONTAINER_DATA_ROOT=str(work / "data"))
    mc = lambda *a, **kw: subprocess.run([PY, "-m", "minicontainer.cli", *a], env=env,  # noqa: E731
                                         capture_output=True, text=True, **kw)
    starts, rows, ids = [], [], []
    try:
        mc("run", "--rm", "--network", "none", "busybox", "true", check=True)    # the image, once
        for i in range(1, n + 1):
            t = time.perf_counter()
            p = mc("run", "-d", "--network", "none", "busybox", "sleep", "3600")
            starts.append((time.perf_counter() - t) * 1000)
            if p.returncode:
                raise SystemExit(f"container {i} did not start: {p.stderr.strip()}")
            ids.append(p.stdout.strip())
            if i in CHECKPOINTS or i == n:
                recs = [json.loads((work / "state" / cid / "state.json").read_text()) for cid in ids]
                per = []
                for r in recs:
                    pids = {r.get("runtime_pid"), r.get("pid"), (r.get("owner") or [None])[0]}
                    per.append(sum(pss_kb(p) for p in pids if p))
                window = starts[max(0, i - 10):i]
                rows.append((i, statistics.median(window), statistics.mean(per) / 1024, sum(per) / 1024))
                print(f"{i:4} running: next start {rows[-1][1]:6.1f} ms (median of the last {len(window)}), "
                      f"{rows[-1][2]:5.1f} MiB Pss per container, {rows[-1][3]:7.1f} MiB in all", flush=True)
    finally:
        for cid in ids:
            mc("rm", "-f", cid)
        left = mc("gc").stdout.strip()
        print("after rm -f of all:", "gc:", left)
        shutil.rmtree(work, ignore_errors=True)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    a.plot(range(1, len(starts) + 1), starts, ".", alpha=.5, label="each run -d")
    a.plot([r[0] for r in rows], [r[1] for r in rows], "o-", label="median of last 10")
    a.set(xlabel="containers already running", ylabel="ms", title="start cost of the next container")
    a.set_ylim(bottom=0)
    a.legend()
    b.plot([r[0] for r in rows], [r[2] for r in rows], "o-")
    b.set(xlabel="containers running", ylabel="MiB Pss", title="host memory per running container")
    b.set_ylim(bottom=0)
    fig.tight_layout()
    out = ROOT / "bench" / "scaling.png"
    fig.savefig(out, dpi=90)
    print("plot:", out.relative_to(ROOT))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
