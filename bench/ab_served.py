"""A/B of two minicontainer commands' served `run --rm --network none busybox true`, interleaved.

The machine's speed drifts by more than the changes we measure (runc's own median moved from 39 to
59 ms between two runs on the same day), so a change to the start path is judged against the code
before it, run alternately (A B, B A, A B, …) after the same quiet gap, each with its own server and
private roots. Medians and quartiles, in ms.

    V=$PWD/.venv/bin/python; git worktree add /tmp/mc-old HEAD~1
    (cd /tmp/mc-old && $V -m compileall -q minicontainer && $V -m minicontainer.client install mc)
    $V bench/ab_served.py /tmp/mc-old/mc .venv/bin/minicontainer [N=100] [GAP=0.1]

(`client install`, run in a checkout, writes a launcher for *that* copy of the package.)
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

RUN = ["run", "--rm", "--network", "none", "busybox", "true"]


def main(a: str, b: str, n: int, gap: float) -> None:
    work = tempfile.mkdtemp(prefix="mcab-")
    cmds = {"A": a, "B": b}
    envs = {}
    try:
        for tag, cmd in cmds.items():
            envs[tag] = dict(os.environ, MINICONTAINER_STATE_ROOT=f"{work}/{tag}/state",
                             MINICONTAINER_DATA_ROOT=f"{work}/{tag}/data")
            envs[tag].pop("MINICONTAINER_NO_SERVER", None)
            subprocess.run([cmd, *RUN], env=dict(envs[tag], MINICONTAINER_NO_SERVER="1"), check=True)
            subprocess.run([cmd, "serve", "-d"], env=envs[tag], check=True, stdout=subprocess.DEVNULL)
        times: dict[str, list[float]] = {"A": [], "B": []}
        for i in range(n):
            for tag in ("A", "B") if i % 2 == 0 else ("B", "A"):
                time.sleep(gap)
                t = time.perf_counter()
                subprocess.run([cmds[tag], *RUN], env=envs[tag], check=True)
                times[tag].append((time.perf_counter() - t) * 1e3)
    finally:
        for tag, env in envs.items():
            subprocess.run([cmds[tag], "serve", "--stop"], env=env, stdout=subprocess.DEVNULL)
            subprocess.run([cmds[tag], "gc"], env=dict(env, MINICONTAINER_NO_SERVER="1"),
                           stdout=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
    for tag in "AB":
        q = statistics.quantiles(times[tag], n=4)
        print(f"{tag} {cmds[tag]}: median {statistics.median(times[tag]):.2f} ms "
              f"(quartiles {q[0]:.2f}–{q[2]:.2f}, n={n})")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 100,
         float(sys.argv[4]) if len(sys.argv) > 4 else 0.1)
