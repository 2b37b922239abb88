"""Checks for notebook 05's exercises (networking)."""

from __future__ import annotations

import random
import subprocess

from . import ExerciseFailed, exercise

_PORTS_OK = {
    "8080:80": ("0.0.0.0", 8080, 80, "tcp"),
    "127.0.0.1:8443:443": ("127.0.0.1", 8443, 443, "tcp"),
    "5353:53/udp": ("0.0.0.0", 5353, 53, "udp"),
    "10.0.0.5:1:65535/tcp": ("10.0.0.5", 1, 65535, "tcp"),
}
_PORTS_BAD = ["80", "8080:", ":80", "0:80", "8080:70000", "eighty:80", "8080:80/sctp", "1.2.3:80:80",
              "8080:80:90"]


@exercise("05.1")
def check_parse_port(parse_port) -> str:
    for spec, expected in _PORTS_OK.items():
        got = parse_port(spec)
        if not isinstance(got, (tuple, list)) or tuple(got) != expected:
            raise ExerciseFailed(f"parse_port({spec!r}): expected {expected}, got {got!r}")
    for spec in _PORTS_BAD:
        try:
            got = parse_port(spec)
        except ValueError:
            continue
        raise ExerciseFailed(f"parse_port({spec!r}) should raise ValueError, returned {got!r}")
    return f"{len(_PORTS_OK)} mappings parsed, {len(_PORTS_BAD)} bad ones refused with ValueError"


@exercise("05.2")
def check_default_gateway(default_gateway) -> str:
    from ..namespaces import spawn
    octet = random.randrange(2, 250)
    gateway = f"10.77.{octet}.1"
    suffix = f"{octet:02x}{random.randrange(256):02x}"
    host_if, peer_if = f"mc05x{suffix}", f"mc05y{suffix}"
    with spawn(["sleep", "30"], ["net"]) as proc:
        def ip(*args, ns=True):
            cmd = (["nsenter", "-t", str(proc.pid), "-n"] if ns else []) + ["ip", *args]
            subprocess.run(cmd, check=True, capture_output=True)
        ip("link", "add", host_if, "type", "veth", "peer", "name", peer_if, "netns", str(proc.pid), ns=False)
        try:
            ip("addr", "add", f"10.77.{octet}.2/24", "dev", peer_if)
            ip("link", "set", peer_if, "up")
            ip("route", "add", "default", "via", gateway)
            got = default_gateway(proc.pid)
            if got != gateway:
                raise ExerciseFailed(f"process {proc.pid}'s network namespace routes via {gateway}; "
                                     f"default_gateway returned {got!r}")
        finally:
            # now, not when the namespace dies: the kernel removes a dead namespace's veths later,
            # asynchronously, and a leak check right after would still see the host end
            subprocess.run(["ip", "link", "del", host_if], capture_output=True)
    with spawn(["sleep", "30"], ["net"]) as proc:
        got = default_gateway(proc.pid)
        if got is not None:
            raise ExerciseFailed(f"a new network namespace has no default route: expected None, got {got!r}")
    return f"found {gateway} in another namespace's /proc/<pid>/net/route, and None where there is no route"
