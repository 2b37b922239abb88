"""Several builds of minicontainer-oci and runc, interleaved (the order rotates each round), after the
same quiet gap: bench/oci_latency.py's round (create, start, reap, delete). Measured, never asserted.

    sudo flock -o /work/kernel.lock .venv/bin/python bench/oci_ab.py N GAP NAME=PATH [NAME=PATH ...]

e.g. ``old=/tmp/old/minicontainer-oci new=.venv/bin/minicontainer-oci`` (an old build: ``git archive
REV minicontainer | tar -x -C /tmp/old`` and a script that puts /tmp/old first on sys.path). Compile
each build's byte code first (``python -m compileall -q /tmp/old``): where PYTHONDONTWRITEBYTECODE is
set (this machine sets it), a build never run before would otherwise compile every module on every
call, and measure the compiler.
"""
import ctypes, os, shutil, statistics, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oci_latency as o
n, gap = int(sys.argv[1]), float(sys.argv[2])
rts = {}
for spec in sys.argv[3:]:
    name, _, path = spec.partition("=")
    rts[name] = [path]
rts["runc"] = [shutil.which("runc")]
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)
work = Path(tempfile.mkdtemp(prefix="nb08ab-"))
parents = o.cgroup_parents()
try:
    b = o.bundle(work / "bundle")
    times = {k: [] for k in rts}
    for k, cmd in rts.items():
        os.makedirs(work / k, exist_ok=True); o.one(cmd, str(work / k), b, "warm")
    names = list(rts)
    for i in range(n):
        order = names[i % len(names):] + names[:i % len(names)]
        for k in order:
            time.sleep(gap)
            times[k].append(o.one(rts[k], str(work / k), b, f"b{i}"))
    base = statistics.median(times["runc"])
    for k, t in times.items():
        q = statistics.quantiles(t, n=4)
        print(f"{k:10} median {statistics.median(t):6.1f} ms (q1 {q[0]:.1f}, q3 {q[2]:.1f})  {statistics.median(t)/base:.2f} x runc")
finally:
    shutil.rmtree(work, ignore_errors=True)
    o.remove_new_parents(parents)       # runc leaves the v2 parent of the bench's cgroupsPath
