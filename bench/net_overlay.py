"""Overlay and user-defined bridge throughput (issue 20): container → container TCP, as a fraction of
host loopback, with iperf3 (Debian's). Measured, never asserted.

- overlay: two simulated hosts (minicontainer.netlab: network namespaces joined by a veth underlay,
  MTU 1500), one container on each on an overlay network (VXLAN, container MTU 1450); the packets
  go veth → bridge → vxlan → underlay veth → vxlan → bridge → veth.
- user-defined bridge: two containers on a `network create` bridge on this host (MTU of the
  network, DEFAULT_MTU as the default bridge's).
- loopback: iperf3 over 127.0.0.1 in the host.

iperf3 is the host's binary run inside the containers' network namespaces (``nsenter -t PID -n``;
busybox has none). Everything stays in namespaces we create or on loopback.

Usage: .venv/bin/python bench/net_overlay.py [SECONDS=3]
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from net_throughput import iperf  # noqa: E402

from minicontainer.netlab import Lab  # noqa: E402

PY = str(ROOT / ".venv/bin/python")


def ok(p):
    if p.returncode:
        raise SystemExit(p.stderr)
    return p.stdout


def overlay(seconds: int) -> float:
    with Lab(2) as lab:
        a, b = lab.hosts
        for h, o in ((a, b), (b, a)):
            ok(h.mc("network", "create", "--driver", "overlay", "--subnet", "10.231.70.0/24",
                    "--peer", o.ip, "bench"))
        ok(a.mc("run", "-d", "--name", "srv", "--network", "bench", "busybox", "sleep", "600"))
        ok(b.mc("run", "-d", "--name", "cli", "--network", "bench", "busybox", "sleep", "600"))
        srv = json.loads(ok(a.mc("inspect", "srv")))
        cli = json.loads(ok(b.mc("inspect", "cli")))
        return iperf(srv["pid"], cli["pid"], srv["network"]["ip"], 5201, seconds)


def bridge(seconds: int) -> float:
    work = Path(tempfile.mkdtemp(prefix="mcbench-ubr-"))
    env = dict(os.environ, MINICONTAINER_STATE_ROOT=str(work / "state"), MINICONTAINER_DATA_ROOT=str(work / "data"),
               MINICONTAINER_NO_SERVER="1")
    mc = lambda *a: subprocess.run([PY, "-m", "minicontainer.cli", *a], env=env, capture_output=True, text=True)  # noqa: E731
    try:
        ok(mc("network", "create", "--subnet", "10.231.71.0/24", "benchbr"))
        for name in ("srv", "cli"):
            ok(mc("run", "-d", "--name", name, "--network", "benchbr", "busybox", "sleep", "600"))
        srv, cli = (json.loads(ok(mc("inspect", n))) for n in ("srv", "cli"))
        return iperf(srv["pid"], cli["pid"], srv["network"]["ip"], 5201, seconds)
    finally:
        mc("rm", "-f", "srv", "cli")
        mc("network", "rm", "benchbr")
        shutil.rmtree(work, ignore_errors=True)


def main(seconds: int) -> None:
    if not shutil.which("iperf3"):
        raise SystemExit("iperf3 is missing: `sudo make bench` installs it")
    results = {"host loopback (127.0.0.1)": iperf(None, None, "127.0.0.1", 5201, seconds),
               "container → container (user-defined bridge)": bridge(seconds),
               "container → container (overlay, 2 lab hosts)": overlay(seconds)}
    base = results["host loopback (127.0.0.1)"]
    print(f"{'path':48}{'Gbit/s':>8}  vs loopback")
    for k, v in results.items():
        print(f"{k:48}{v:8.1f}  {v / base:6.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
