"""Start latency of `run --rm --network none busybox true`: minicontainer vs runc vs crun vs the
`unshare … chroot` floor, interleaved (A B C D, A B C D, …) so that machine noise hits all alike.

minicontainer is measured twice: as a plain command (MINICONTAINER_NO_SERVER=1: a fresh Python does
all the work) and with `minicontainer serve` running (the command forwards itself; the server's spare
has the container's cgroup joined and its root mounted before the request). Every command starts
after the same quiet gap (GAP seconds, default 0.1), as commands typed by a person would, and so
that the server's spare is parked again before the next request.

Runs itself inside `unshare -m --propagation private` and unmounts /sys/fs/cgroup/unified there only
(crun refuses hybrid cgroup hosts; see design notes). Same busybox root filesystem for all.
Usage: .venv/bin/python bench/start_latency.py [N] [GAP]
"""

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


GAP = 0.1


def _seq(cmds, env) -> float | None:
    """Run the commands one after another; total ms, or None if one failed."""
    time.sleep(GAP)
    t = time.perf_counter()
    for c in cmds:
        if subprocess.run(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode:
            return None
    return (time.perf_counter() - t) * 1000


def _report(title, times, fails) -> None:
    med = {k: statistics.median(v) for k, v in times.items() if v}
    print(f"\n{title}")
    print(f"{'runtime':18}{'median ms':>10}{'ok':>5}{'fail':>5}  vs runc  vs crun")
    for k, m in med.items():
        print(f"{k:18}{m:10.1f}{len(times[k]):5}{fails[k]:5}  {m / med.get('runc', float('nan')):6.2f}"
              f"  {m / med.get('crun', float('nan')):6.2f}")


def main(n: int) -> None:
    sys.path.insert(0, str(ROOT))
    from minicontainer import busybox
    work = Path(tempfile.mkdtemp(prefix="mcbench-"))
    served = dict(os.environ, MINICONTAINER_STATE_ROOT=str(work / "state"),
                  MINICONTAINER_DATA_ROOT=str(work / "data"))
    env = dict(served, MINICONTAINER_NO_SERVER="1")
    try:
        bundle = work / "bundle"
        busybox.build_rootfs(bundle / "rootfs")
        subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
        import json
        spec = json.loads((bundle / "config.json").read_text())
        spec["process"]["args"] = ["true"]
        spec["process"]["terminal"] = False
        (bundle / "config.json").write_text(json.dumps(spec))
        mcrun = [str(ROOT / ".venv/bin/minicontainer"), "run", "--rm", "--network", "none", "busybox", "true"]
        cmds = {
            "minicontainer": mcrun,
            "minicontainer+serve": mcrun,
            "runc": ["runc", "--root", str(work / "runc"), "run", "--bundle", str(bundle), "mcb"],
            "crun": ["crun", "--root", str(work / "crun"), "run", "--bundle", str(bundle), "mcb"],
            "unshare+chroot": ["unshare", "-mupinf", "chroot", str(bundle / "rootfs"), "true"],
        }
        subprocess.run(cmds["minicontainer"], env=env, check=True)  # import busybox image once
        subprocess.run([PY, "-m", "minicontainer.cli", "serve", "-d"], env=served, check=True,
                       stdout=subprocess.DEVNULL)
        times = {k: [] for k in cmds}
        fails = {k: 0 for k in cmds}
        for _ in range(n):
            for k, c in cmds.items():
                time.sleep(GAP)
                t = time.perf_counter()
                rc = subprocess.run(c, env=served if "serve" in k else env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL).returncode
                dt = time.perf_counter() - t
                if rc == 0:
                    times[k].append(dt * 1000)
                else:
                    fails[k] += 1
        _report("run --rm … true", times, fails)

        # create + start + delete: the three verbs a container engine calls (docker → runc), each a
        # process of its own; the container runs `true` and has exited before the delete.
        mc = [str(ROOT / ".venv/bin/minicontainer")]
        mcseq = [mc + ["create", "--name", "mcb", "--network", "none", "busybox", "true"],
                 mc + ["start", "-a", "mcb"], mc + ["rm", "mcb"]]
        seqs = {
            "minicontainer": lambda: _seq(mcseq, env),
            "minicontainer+serve": lambda: _seq(mcseq, served),
            "runc": lambda: _seq([["runc", "--root", str(work / "runc"), "create", "--bundle", str(bundle), "mcb"],
                                  ["runc", "--root", str(work / "runc"), "start", "mcb"],
                                  ["runc", "--root", str(work / "runc"), "delete", "-f", "mcb"]], env),
            "crun": lambda: _seq([["crun", "--root", str(work / "crun"), "create", "--bundle", str(bundle), "mcb"],
                                  ["crun", "--root", str(work / "crun"), "start", "mcb"],
                                  ["crun", "--root", str(work / "crun"), "delete", "-f", "mcb"]], env),
        }
        times = {k: [] for k in seqs}
        fails = {k: 0 for k in seqs}
        for _ in range(n):
            for k, f in seqs.items():
                dt = f()
                if dt is None:
                    fails[k] += 1
                else:
                    times[k].append(dt)
        _report("create + start + delete", times, fails)
    finally:
        subprocess.run([PY, "-m", "minicontainer.cli", "serve", "--stop"], env=served, stdout=subprocess.DEVNULL)
        subprocess.run([PY, "-m", "minicontainer.cli", "gc"], env=env, stdout=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    GAP = float(sys.argv[2]) if len(sys.argv) > 2 else GAP
    if os.environ.get("MCBENCH_INNER") != "1":
        os.execvpe("unshare", ["unshare", "-m", "--propagation", "private", sys.executable, __file__, str(n),
                               str(GAP)], dict(os.environ, MCBENCH_INNER="1"))
    subprocess.run(["umount", "/sys/fs/cgroup/unified"], stderr=subprocess.DEVNULL)
    main(n)
