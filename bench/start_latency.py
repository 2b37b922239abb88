"""Start latency of `run --rm --network none busybox true`: minicontainer vs runc vs crun vs the
`unshare … chroot` floor, interleaved (A B C D, A B C D, …) so that machine noise hits all alike.

Runs itself inside `unshare -m --propagation private` and unmounts /sys/fs/cgroup/unified there only
(crun refuses hybrid cgroup hosts; see design notes). Same busybox root filesystem for all.
Usage: .venv/bin/python bench/start_latency.py [N]
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


def _seq(cmds, env) -> float | None:
    """Run the commands one after another; total ms, or None if one failed."""
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
    env = dict(os.environ, MINICONTAINER_STATE_ROOT=str(work / "state"),
               MINICONTAINER_DATA_ROOT=str(work / "data"))
    try:
        bundle = work / "bundle"
        busybox.build_rootfs(bundle / "rootfs")
        subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
        import json
        spec = json.loads((bundle / "config.json").read_text())
        spec["process"]["args"] = ["true"]
        spec["process"]["terminal"] = False
        (bundle / "config.json").write_text(json.dumps(spec))
        cmds = {
            "minicontainer": [PY, "-m", "minicontainer.cli", "run", "--rm", "--network", "none", "busybox", "true"],
            "minicontainer (cmd)": [str(ROOT / ".venv/bin/minicontainer"), "run", "--rm", "--network", "none", "busybox", "true"],
            "minicontainer -I": [PY, "-I", "-c", "import sys; sys.path.insert(0, %r); from minicontainer.cli import main; sys.exit(main(sys.argv[1:]))" % str(ROOT),
                                 "run", "--rm", "--network", "none", "busybox", "true"],
            "runc": ["runc", "--root", str(work / "runc"), "run", "--bundle", str(bundle), "mcb"],
            "crun": ["crun", "--root", str(work / "crun"), "run", "--bundle", str(bundle), "mcb"],
            "unshare+chroot": ["unshare", "-mupinf", "chroot", str(bundle / "rootfs"), "true"],
        }
        subprocess.run(cmds["minicontainer"], env=env, check=True)  # import busybox image once
        times = {k: [] for k in cmds}
        fails = {k: 0 for k in cmds}
        for _ in range(n):
            for k, c in cmds.items():
                t = time.perf_counter()
                rc = subprocess.run(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
                dt = time.perf_counter() - t
                if rc == 0:
                    times[k].append(dt * 1000)
                else:
                    fails[k] += 1
        _report("run --rm … true", times, fails)

        # create + start + delete: the three verbs a container engine calls (docker → runc), each a
        # process of its own; the container runs `true` and has exited before the delete.
        mc = [PY, "-m", "minicontainer.cli"]
        seqs = {
            "minicontainer": lambda: _seq([mc + ["create", "--name", "mcb", "--network", "none", "busybox", "true"],
                                           mc + ["start", "-a", "mcb"], mc + ["rm", "mcb"]], env),
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
        subprocess.run([PY, "-m", "minicontainer.cli", "gc"], env=env, stdout=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    if os.environ.get("MCBENCH_INNER") != "1":
        os.execvpe("unshare", ["unshare", "-m", "--propagation", "private", sys.executable, __file__, str(n)],
                   dict(os.environ, MCBENCH_INNER="1"))
    subprocess.run(["umount", "/sys/fs/cgroup/unified"], stderr=subprocess.DEVNULL)
    main(n)
