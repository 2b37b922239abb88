"""A/B of `run --rm --network none [ARGS] busybox true`, interleaved, served or plain (issue 16).

Like ab_served.py (A B, B A, … after the same quiet gap, each variant with its own private roots
and, served, its own server), but each variant is a command *and* extra `run` flags, so the cost of
the security defaults can be measured against `--privileged` (no seccomp, no masks, all devices, all
capabilities), or the code before against the code after. Medians and quartiles, in ms.

    $V bench/ab_security.py [--plain] [-n N] [--gap S] "CMD_A [FLAGS…]" "CMD_B [FLAGS…]"
    $V bench/ab_security.py .venv/bin/minicontainer ".venv/bin/minicontainer --privileged"
    $V bench/ab_security.py --plain -n 40 /tmp/mc-old/mc .venv/bin/minicontainer

--plain: MINICONTAINER_NO_SERVER=1 (every command a fresh interpreter), no server.
"""

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plain", action="store_true")
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--gap", type=float, default=0.1)
    ap.add_argument("variants", nargs="*", help="two; default: this checkout's launcher, without and "
                                                    "with --privileged (what bench/run_all.py runs)")
    a = ap.parse_args()
    if not a.variants:
        mc = str(Path(__file__).resolve().parents[1] / ".venv/bin/minicontainer")
        a.variants = [mc, f"{mc} --privileged"]
    if len(a.variants) != 2:
        ap.error("give two variants")
    work = tempfile.mkdtemp(prefix="mcabsec-")
    variants = {tag: shlex.split(v) for tag, v in zip("AB", a.variants)}
    envs = {}
    try:
        for tag, (cmd, *flags) in variants.items():
            env = dict(os.environ, MINICONTAINER_STATE_ROOT=f"{work}/{tag}/state",
                       MINICONTAINER_DATA_ROOT=f"{work}/{tag}/data")
            env.pop("MINICONTAINER_NO_SERVER", None)
            if a.plain:
                env["MINICONTAINER_NO_SERVER"] = "1"
            envs[tag] = env
            # the image made, the seccomp program compiled and cached, before the first measure
            subprocess.run([cmd, "run", "--rm", "--network", "none", *flags, "busybox", "true"],
                           env=dict(env, MINICONTAINER_NO_SERVER="1"), check=True)
            if not a.plain:
                subprocess.run([cmd, "serve", "-d"], env=env, check=True, stdout=subprocess.DEVNULL)
        times: dict[str, list[float]] = {"A": [], "B": []}
        for i in range(a.n):
            for tag in ("A", "B") if i % 2 == 0 else ("B", "A"):
                cmd, *flags = variants[tag]
                time.sleep(a.gap)
                t = time.perf_counter()
                subprocess.run([cmd, "run", "--rm", "--network", "none", *flags, "busybox", "true"],
                               env=envs[tag], check=True)
                times[tag].append((time.perf_counter() - t) * 1e3)
    finally:
        for tag, env in envs.items():
            cmd = variants[tag][0]
            if not a.plain:
                subprocess.run([cmd, "serve", "--stop"], env=env, stdout=subprocess.DEVNULL)
            subprocess.run([cmd, "gc"], env=dict(env, MINICONTAINER_NO_SERVER="1"), stdout=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
    for tag in "AB":
        q = statistics.quantiles(times[tag], n=4)
        print(f"{tag} {' '.join(variants[tag])} ({'plain' if a.plain else 'served'}): median "
              f"{statistics.median(times[tag]):.2f} ms (quartiles {q[0]:.2f}–{q[2]:.2f}, n={a.n})")


if __name__ == "__main__":
    main()
