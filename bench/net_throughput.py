"""Network throughput (issue 7): container → container over the bridge, and through a published port,
against host loopback, with iperf3 (Debian's package). Reported as ratios; measured, never asserted.

The containers are real minicontainer containers (busybox `sleep`) on a bridge and subnet of their own;
iperf3 is the host's binary run *inside their network namespaces* with `nsenter -n` (the busybox image
has no iperf3), so the packets take exactly the container's path: veth → bridge → veth, or DNAT.
Everything goes over loopback or our own bridge: no traffic leaves the machine.

Usage: .venv/bin/python bench/net_throughput.py [SECONDS=3]
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = str(ROOT / ".venv/bin/python")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def iperf(server_ns_pid, client_ns_pid, address, port, seconds) -> float:
    """Gbit/s received, iperf3 server in the netns of server_ns_pid (None: the host), client likewise."""
    def ns(pid):
        return ["nsenter", "-t", str(pid), "-n"] if pid else []
    srv = subprocess.Popen(ns(server_ns_pid) + ["iperf3", "-s", "-1", "-p", "5201"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            r = subprocess.run(ns(client_ns_pid) + ["iperf3", "-c", address, "-p", str(port), "-t", str(seconds), "-J"],
                               capture_output=True, text=True)
            try:
                return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9
            except (ValueError, KeyError):
                time.sleep(0.2)                    # the server is not listening yet
        raise SystemExit(f"iperf3 client failed: {r.stdout[-300:]} {r.stderr[-300:]}")
    finally:
        srv.kill()
        srv.wait()


def main(seconds: int) -> None:
    if not shutil.which("iperf3"):
        raise SystemExit("iperf3 is missing: `sudo make bench` installs it")
    work = Path(tempfile.mkdtemp(prefix="mcbench-net-"))
    env = dict(os.environ, MINICONTAINER_STATE_ROOT=str(work / "state"), MINICONTAINER_DATA_ROOT=str(work / "data"),
               MINICONTAINER_BRIDGE="mcb0", MINICONTAINER_SUBNET="10.231.39.0/24")
    mc = lambda *a: subprocess.run([PY, "-m", "minicontainer.cli", *a], env=env, capture_output=True, text=True)  # noqa: E731
    port = free_port()
    try:
        for name, extra in (("mcb-server", ["-p", f"{port}:5201"]), ("mcb-client", [])):
            p = mc("run", "-d", "--name", name, *extra, "busybox", "sleep", "600")
            if p.returncode:
                raise SystemExit(p.stderr)
        server = json.loads(mc("inspect", "mcb-server").stdout)
        client = json.loads(mc("inspect", "mcb-client").stdout)
        results = {
            "host loopback (127.0.0.1)": iperf(None, None, "127.0.0.1", 5201, seconds),
            "container → container (bridge)": iperf(server["pid"], client["pid"], server["network"]["ip"], 5201, seconds),
            "host → published port (127.0.0.1, DNAT)": iperf(server["pid"], None, "127.0.0.1", port, seconds),
            "container → published port (gateway, DNAT)": iperf(server["pid"], client["pid"], server["network"]["gateway"],
                                                               port, seconds),
        }
    finally:
        mc("rm", "-f", "mcb-server")
        mc("rm", "-f", "mcb-client")
        mc("gc")
        shutil.rmtree(work, ignore_errors=True)
    base = results["host loopback (127.0.0.1)"]
    print(f"{'path':45}{'Gbit/s':>8}  vs loopback")
    for k, v in results.items():
        print(f"{k:45}{v:8.1f}  {v / base:6.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
