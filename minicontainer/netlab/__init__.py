"""A multi-host lab on one machine: "hosts" are network namespaces joined by a veth underlay.

Each host is a process (``unshare --net sleep infinity``, started and ended by us) whose network
namespace plays the host's: it gets an underlay interface ``ul0`` with an address that exists only
there, its own engine state and data roots, and runs the engine *inside* it — every command of a
host is ``nsenter --net=/proc/<pid>/ns/net python -m minicontainer.cli …``. So the engine code is
the same as on a real host: the bridges, VXLAN devices, FDB entries, nft tables, DNS responders
and containers' veths it makes are made in the namespace it runs in, and containers' namespaces
are plugged into it. Why this and not a ``MINICONTAINER_HOST_NETNS`` setting the engine would
``setns`` into: one more code path in the runtime to get right (every netlink socket, every
``nft`` and ``/proc/sys/net`` write, the DNS responder, the detached supervisors would all have to
enter it), where ``nsenter`` gives the unchanged engine the namespace for free. Why ``nsenter
--net`` and not ``ip netns exec``: the latter also remounts ``/sys`` in a new mount namespace,
which hides the cgroup hierarchies the runtime needs; and named namespaces would make
``/run/netns`` a mount the lab would have to undo.

Cleanup (``Lab.close``, also on errors): every host's containers are removed and its networks
deleted through its own engine, its leftovers listed (:meth:`Host.leftovers`), then the host
process is killed — its namespace and whatever is left in it (the underlay veth) go with it.

Use::

    with Lab(2) as lab:
        a, b = lab.hosts
        a.mc("network", "create", "--driver", "overlay", "--subnet", "10.231.60.0/24",
             "--peer", b.ip, "ov")
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UNDERLAY = os.environ.get("MINICONTAINER_LAB_UNDERLAY", "10.231.250.0/24")


class Host:
    def __init__(self, name: str, root: Path, ip: str, prefixlen: int):
        self.name, self.ip, self.prefixlen = name, ip, prefixlen
        self.root = root
        self.proc = subprocess.Popen(["unshare", "--net", "--", "sleep", "infinity"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        own = os.stat("/proc/self/ns/net").st_ino
        for _ in range(500):
            try:
                if os.stat(self.netns).st_ino != own:
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.01)
        else:
            self.kill()
            raise RuntimeError(f"lab host {name}: unshare --net did not start")
        self.env = dict(os.environ, MINICONTAINER_STATE_ROOT=str(root / "state"),
                        MINICONTAINER_DATA_ROOT=str(root / "data"), MINICONTAINER_NO_SERVER="1")

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def netns(self) -> str:
        return f"/proc/{self.proc.pid}/ns/net"

    def sh(self, *argv, timeout=60, env=None) -> subprocess.CompletedProcess:
        """Run a host command (ip, bridge, nft, tcpdump …) in this host's network namespace."""
        return subprocess.run(["nsenter", f"--net={self.netns}", *argv], capture_output=True, text=True,
                              timeout=timeout, env=env or self.env)

    def mc(self, *args, timeout=90) -> subprocess.CompletedProcess:
        """Run ``minicontainer ARGS`` as this host's engine."""
        return self.sh(sys.executable, "-m", "minicontainer.cli", *args, timeout=timeout)

    def leftovers(self) -> list[str]:
        """Our objects still in this host: links but lo/ul0, FDB entries of ours, nft tables."""
        links = [ln.split(":")[1].strip().split("@")[0] for ln in self.sh("ip", "-o", "link").stdout.splitlines()]
        fdb = [ln for ln in self.sh("bridge", "fdb", "show").stdout.splitlines() if " dst " in ln]
        tables = [ln for ln in self.sh("nft", "list", "tables").stdout.splitlines() if "minicontainer" in ln]
        return [f"link {n}" for n in links if n not in ("lo", "ul0")] + [f"fdb {f}" for f in fdb] + tables

    def clean(self) -> list[str]:
        """Remove every container and network of this host's engine; returns what is left."""
        ids = [ln.split()[0] for ln in self.mc("ps", "-a").stdout.splitlines()[1:] if ln.strip()]
        if ids:
            self.mc("rm", "-f", *ids)
        nets = self.mc("network", "ls", "-q").stdout.split()
        if nets:
            self.mc("network", "rm", *nets)
        self.mc("gc")
        return self.leftovers()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


class Lab:
    """``n`` hosts on one underlay segment (a veth pair for two; a bridge inside the first host's
    namespace would be needed for more — not built: the acceptance is two)."""

    def __init__(self, n: int = 2, underlay: str = UNDERLAY):
        import ipaddress
        if n != 2:
            raise ValueError("the lab builds two hosts")
        self._left: dict | None = None       # what close() found; set once it ran
        self.dir = Path(tempfile.mkdtemp(prefix="mclab-"))
        os.chmod(self.dir, 0o700)
        net = ipaddress.IPv4Network(underlay)
        addrs = list(net.hosts())
        self.hosts: list[Host] = []
        try:
            for i in range(n):
                self.hosts.append(Host(f"host{i}", self.dir / f"host{i}", str(addrs[i]), net.prefixlen))
            # in a worker thread: pyroute2's sync API fails inside Jupyter's running event loop
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(1) as pool:
                pool.submit(self._underlay).result()
        except BaseException:
            self.close()
            raise

    def _underlay(self) -> None:
        """A veth pair made here and moved at once into the two hosts, so the initial namespace
        never holds it for longer than two netlink calls; inside, each end is renamed ``ul0``."""
        from ..network._pyroute2 import IPRoute, NetNS
        tag = f"{os.getpid() % 100000:05d}"
        ends = (f"mcla{tag}", f"mclb{tag}")
        with IPRoute() as ipr:
            ipr.link("add", ifname=ends[0], kind="veth", peer=ends[1])
            try:
                for end, h in zip(ends, self.hosts):
                    ipr.link("set", index=ipr.link_lookup(ifname=end)[0], net_ns_pid=h.pid)
            except BaseException:
                for end in ends:
                    idx = ipr.link_lookup(ifname=end)
                    if idx:
                        ipr.link("del", index=idx[0])
                raise
        for end, h in zip(ends, self.hosts):
            with NetNS(h.netns) as ns:
                ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
                idx = ns.link_lookup(ifname=end)[0]
                ns.link("set", index=idx, ifname="ul0", mtu=1500)
                ns.addr("add", index=idx, address=h.ip, prefixlen=h.prefixlen)
                ns.link("set", index=idx, state="up")

    def close(self) -> dict:
        """Remove everything, once. A second call returns the first answer: by then the hosts'
        processes have ended and the kernel may have given their pids to other processes, whose
        network namespaces ``nsenter --net=/proc/<pid>/ns/net`` would enter (and run ``gc`` in)."""
        if self._left is not None:
            return self._left
        left, error = {}, None
        for h in self.hosts:
            try:
                if h.proc.poll() is None:           # alive and not reaped: its pid is still its own
                    left[h.name] = h.clean()
                else:
                    left[h.name] = [f"host process {h.pid} ended before the lab was closed"]
            except Exception as exc:  # noqa: BLE001 — the next host is still cleaned and ended
                error = error or exc
            finally:
                h.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
        self._left = left
        if error is not None:
            raise error
        return left

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
