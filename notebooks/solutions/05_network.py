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
