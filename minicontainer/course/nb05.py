"""Checks for notebook 05's exercises (networking)."""

from __future__ import annotations

import os
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


def _is_mount(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def _ip(*args, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = (["ip", "netns", "exec", ns] if ns else []) + ["ip", *args]
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=10)


@exercise("05.3")
def check_connect(connect) -> str:
    """Build exercise: we make a bridge with its gateway address, masquerading and an upstream host
    (a namespace at 203.0.113.2, which has no route back to the containers' subnet); the learner's
    connect(netns, bridge, cidr) must wire an empty namespace to the bridge. Graded by the kernel:
    a ping from the namespace reaches the upstream — only possible through the NAT — and the
    namespace's address and default route are what was asked."""
    import time
    from pathlib import Path
    from ..busybox import find_busybox
    tag = f"{random.randrange(16 ** 4):04x}"
    br, ns, up, hu = f"mcx5b{tag}", f"mcx5c{tag}", f"mcx5u{tag}", f"mcx5h{tag}"
    table = f"mcx5_{tag}"
    fwd = Path("/proc/sys/net/ipv4/ip_forward")
    fwd_before = fwd.read_text().strip()
    bb = str(find_busybox())
    run_netns_was_mount = _is_mount("/run/netns")
    try:
        _ip("link", "add", br, "type", "bridge")
        _ip("addr", "add", "10.215.1.1/24", "dev", br)
        _ip("link", "set", br, "up")
        for n in (ns, up):
            _ip("netns", "add", n)
        _ip("link", "add", hu, "type", "veth", "peer", "name", "eth0", "netns", up)
        _ip("addr", "add", "203.0.113.1/24", "dev", hu)
        _ip("link", "set", hu, "up")
        _ip("addr", "add", "203.0.113.2/24", "dev", "eth0", ns=up)
        _ip("link", "set", "eth0", "up", ns=up)
        subprocess.run(["nft", "-f", "-"], check=True, text=True, input=f"""
table ip {table} {{
  chain forward {{ type filter hook forward priority 0; policy accept;
    ip saddr 10.215.1.0/24 ip daddr != {{ 10.215.1.0/24, 203.0.113.0/24 }} drop
  }}
  chain postrouting {{ type nat hook postrouting priority srcnat;
    ip saddr 10.215.1.0/24 oifname "{hu}" masquerade
  }}
}}""")
        fwd.write_text("1")
        connect(ns, br, "10.215.1.2/24")
        addrs = _ip("-4", "-o", "addr", "show", ns=ns).stdout
        if "10.215.1.2/24" not in addrs:
            raise ExerciseFailed(f"no address 10.215.1.2/24 inside {ns}; it has: "
                                 f"{[l.split()[3] for l in addrs.splitlines()]}")
        route = _ip("route", "show", "default", ns=ns).stdout.split()
        if route[:3] != ["default", "via", "10.215.1.1"]:
            raise ExerciseFailed(f"the default route inside {ns} should go via the bridge's 10.215.1.1, "
                                 f"it is {' '.join(route) or 'missing'}")
        ports = _ip("-br", "link", "show", "master", br).stdout.split()
        if not ports:
            raise ExerciseFailed(f"no interface is a port of the bridge {br} (ip link set … master {br})")
        ok = False
        for _ in range(3):
            ok = subprocess.run(["ip", "netns", "exec", ns, bb, "ping", "-c1", "-W1", "203.0.113.2"],
                                capture_output=True).returncode == 0
            if ok:
                break
            time.sleep(0.3)
        if not ok:
            raise ExerciseFailed(f"ping from {ns} to the upstream 203.0.113.2 failed (are both veth ends "
                                 f"up, the host end a port of {br}, the route via the bridge?)")
    finally:
        for port in _ip("-br", "link", "show", "master", br, check=False).stdout.splitlines():
            _ip("link", "del", port.split()[0].split("@")[0], check=False)
        _ip("link", "del", hu, check=False)
        _ip("link", "del", br, check=False)
        for n in (ns, up):
            _ip("netns", "del", n, check=False)
        subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True)
        fwd.write_text(fwd_before)
        # `ip netns add` makes /run/netns a mount of its own the first time: undo what we made
        if not run_netns_was_mount and _is_mount("/run/netns") and not os.listdir("/run/netns"):
            subprocess.run(["umount", "/run/netns"], capture_output=True)
    return "10.215.1.2/24 in the namespace, default via the bridge, ping to the upstream through the NAT"
