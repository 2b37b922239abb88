"""Solutions to notebook 05's exercises. Each block is self-contained (its own imports)."""

# %% Exercise 05.1
import ipaddress
import re


def parse_port(spec: str) -> tuple[str, int, int, str]:
    """docker's -p [HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp] → (host_ip, host_port, container_port, proto)."""
    m = re.fullmatch(r"(?:([\d.]+):)?(\d+):(\d+)(?:/(tcp|udp))?", spec)
    if not m:
        raise ValueError(f"bad port mapping {spec!r}")
    host_ip = m[1] or "0.0.0.0"
    ipaddress.IPv4Address(host_ip)                     # raises ValueError for 1.2.3
    host_port, ctr_port = int(m[2]), int(m[3])
    if not (1 <= host_port <= 65535 and 1 <= ctr_port <= 65535):
        raise ValueError(f"port out of range in {spec!r}")
    return host_ip, host_port, ctr_port, m[4] or "tcp"


# %% Exercise 05.2
import socket
import struct
from pathlib import Path


def default_gateway(pid: int) -> str | None:
    """The default route's gateway in process pid's network namespace, or None."""
    for line in Path(f"/proc/{pid}/net/route").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == "00000000" and int(fields[7], 16) == 0:      # destination 0.0.0.0/0
            return socket.inet_ntoa(struct.pack("<I", int(fields[2], 16)))
    return None


# %% Exercise 05.3
import os
import subprocess


def connect(netns: str, bridge: str, cidr: str) -> None:
    """Wire the named network namespace ``netns`` to ``bridge``: a veth pair, the host end a port of
    the bridge, the other end ``eth0`` inside with address ``cidr`` and a default route via the
    bridge's own address (the gateway)."""
    def ip(*args, ns=None):
        subprocess.run((["ip", "netns", "exec", ns] if ns else []) + ["ip", *args], check=True)
    host_end = f"veth{os.getpid() % 100000}"[:15]
    gateway = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", bridge], check=True,
                             capture_output=True, text=True).stdout.split()[3].split("/")[0]
    ip("link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", netns)
    ip("link", "set", host_end, "master", bridge)
    ip("link", "set", host_end, "up")
    ip("addr", "add", cidr, "dev", "eth0", ns=netns)
    ip("link", "set", "lo", "up", ns=netns)
    ip("link", "set", "eth0", "up", ns=netns)
    ip("route", "add", "default", "via", gateway, ns=netns)
