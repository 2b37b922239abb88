"""Checks for notebook 10's exercises (containers across hosts: VXLAN by hand).

Exercise 10.1 (a warm-up) decodes frames the checker crafts. The two build checks (10.2, 10.3)
build the notebook's two-host lab with ``ip`` (named network namespaces, so that the
learner can reach them with ``ip netns exec`` or pyroute2's ``NetNS``): hosts ``mcx10h1-TAG`` and
``mcx10h2-TAG`` joined by a veth underlay (``ul0`` on each side), on each host a bridge ``br0``
with a VXLAN device ``vx0`` as a port (VNI 4210, UDP 4789, learning off, proxy on — Docker's
settings) and a veth into one "container" namespace ``mcx10c1-TAG`` / ``mcx10c2-TAG``. Then they
call the learner's function and grade what the network answers: a ping from container 1 to
container 2 across the underlay, and a ping that must not fit. Rejected: grading the function's
return value or only the ``bridge fdb`` text (an entry in the wrong namespace or with the wrong
MAC prints fine and carries nothing).

Nothing leaves the machine: the underlay exists only between the two namespaces, and every
namespace is deleted (and ``/run/netns`` unmounted if the check made it a mount) before returning.
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
import time
from contextlib import contextmanager

from . import ExerciseFailed, exercise

VNI = 4210
UNDERLAY = ("10.231.242.1", "10.231.242.2")
ADDRS = ("10.231.202.2", "10.231.202.3")
MACS = ("02:42:0a:e7:ca:02", "02:42:0a:e7:ca:03")

#: one ICMP echo with DF set (IP_MTU_DISCOVER = IP_PMTUDISC_DO): exit 0 = a reply, 1 = no reply
#: (lost on the way), 2 = refused by our own kernel (EMSGSIZE: larger than the route's MTU)
_DF_PING = r'''
import os, socket, struct, sys, time
dst, size = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.setsockopt(socket.IPPROTO_IP, 10, 2)
ident = os.getpid() & 0xFFFF
def csum(b):
    b += b"\0" * (len(b) % 2)
    t = sum(struct.unpack(f"!{len(b) // 2}H", b))
    t = (t >> 16) + (t & 0xFFFF)
    return ~(t + (t >> 16)) & 0xFFFF
body = bytes(size)
pkt = struct.pack("!BBHHH", 8, 0, csum(struct.pack("!BBHHH", 8, 0, 0, ident, 1) + body), ident, 1) + body
try:
    s.sendto(pkt, (dst, 0))
except OSError as e:
    print(e.strerror); sys.exit(2)
s.settimeout(0.2)
end = time.monotonic() + 1.0
while time.monotonic() < end:
    try:
        d = s.recv(65535)
    except socket.timeout:
        continue
    h = (d[0] & 15) * 4
    if d[h] == 0 and struct.unpack("!H", d[h + 4:h + 6])[0] == ident:
        sys.exit(0)
sys.exit(1)
'''


def _frame(vni: int, inner_src: bytes, inner_dst: bytes, *, ihl: int = 5, proto: int = 17,
           dport: int = 4789, ethertype: bytes = b"\x08\x00") -> bytes:
    """An Ethernet frame as it crosses the underlay: outer Ethernet, IPv4 (``ihl`` words, options
    zero-filled), UDP, VXLAN, and an inner Ethernet frame carrying 28 bytes of IPv4 + ICMP."""
    inner = inner_dst + inner_src + b"\x08\x00" + bytes(28)
    vxlan = bytes([0x08, 0, 0, 0]) + vni.to_bytes(3, "big") + b"\x00"
    udp = struct.pack("!HHHH", random.randrange(49152, 65536), dport, 8 + len(vxlan) + len(inner), 0)
    ip = bytearray(ihl * 4)
    ip[0] = 0x40 | ihl
    struct.pack_into("!H", ip, 2, len(ip) + len(udp) + len(vxlan) + len(inner))
    ip[8], ip[9] = 64, proto
    ip[12:20] = bytes([10, 231, 242, 1, 10, 231, 242, 2])
    return bytes(6) + bytes([2, 0, 0, 0, 0, 1]) + ethertype + bytes(ip) + udp + vxlan + inner


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


@exercise("10.1")
def check_decode_vxlan(decode_vxlan) -> str:
    """Warm-up: frames with random VNIs and MACs, one with IPv4 options (the IPv4 header length is
    not always 20), and frames that are not VXLAN (another UDP port, TCP, ARP)."""
    cases = []
    for ihl in (5, 5, 7):
        vni = random.randrange(1, 1 << 24)
        src, dst = bytes([2, 0x42]) + os.urandom(4), bytes([2, 0x42]) + os.urandom(4)
        cases.append((_frame(vni, src, dst, ihl=ihl), (vni, _mac(src), _mac(dst)), f"IPv4 header of {ihl * 4} bytes"))
    some = (bytes(6), bytes(6))
    cases += [(_frame(4200, *some, dport=53), None, "UDP to port 53"),
              (_frame(4200, *some, proto=6), None, "TCP"),
              (_frame(4200, *some, ethertype=b"\x08\x06"), None, "an ARP frame")]
    for frame, want, what in cases:
        got = decode_vxlan(frame)
        if (tuple(got) if isinstance(got, (tuple, list)) else got) != want:
            raise ExerciseFailed(f"{what}: expected {want}, got {got!r}")
    return "3 VXLAN frames decoded (VNI, inner MACs; one with IPv4 options), 3 other frames → None"


def _is_mount(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def _run(*cmd, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(cmd)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=15)
    if check and p.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: {p.stderr.strip()}")
    return p


def df_ping(ns: str, dst: str, size: int) -> int:
    """0: answered, 1: lost, 2: refused locally (too big for the sender's MTU)."""
    return _run(sys.executable, "-c", _DF_PING, dst, str(size), ns=ns, check=False).returncode


def ping(ns: str, dst: str, tries: int = 3) -> bool:
    for _ in range(tries):
        if df_ping(ns, dst, 56) == 0:
            return True
        time.sleep(0.2)
    return False


def peer_entries(host: str, peer_underlay: str, ip: str, mac: str) -> None:
    """What exercise 10.2 asks for, done for the other direction by the checker."""
    _run("bridge", "fdb", "append", mac, "dev", "vx0", "dst", peer_underlay, ns=host)
    _run("ip", "neigh", "add", ip, "lladdr", mac, "dev", "vx0", "nud", "permanent", ns=host)


@contextmanager
def two_hosts(underlay_mtu: int = 1500):
    """Yield (hosts, containers): two named host namespaces and their container namespaces."""
    tag = f"{random.randrange(16 ** 6):06x}"
    hosts = (f"mcx10h1-{tag}", f"mcx10h2-{tag}")
    ctrs = (f"mcx10c1-{tag}", f"mcx10c2-{tag}")
    run_netns_was_mount = _is_mount("/run/netns")
    made: list[str] = []
    try:
        for n in hosts + ctrs:
            _run("ip", "netns", "add", n)
            made.append(n)
        # the underlay: created with both ends already inside the hosts (never in ours)
        _run("ip", "link", "add", "ul0", "netns", hosts[0], "type", "veth", "peer", "name", "ul0",
             "netns", hosts[1])
        for i, (h, c) in enumerate(zip(hosts, ctrs)):
            for cmd in (["ip", "link", "set", "lo", "up"],
                        ["ip", "link", "set", "ul0", "mtu", str(underlay_mtu), "up"],
                        ["ip", "addr", "add", f"{UNDERLAY[i]}/24", "dev", "ul0"],
                        ["ip", "link", "add", "br0", "type", "bridge"],
                        ["ip", "link", "set", "br0", "up"],
                        ["ip", "link", "add", "vx0", "type", "vxlan", "id", str(VNI), "local", UNDERLAY[i],
                         "dstport", "4789", "dev", "ul0", "nolearning", "proxy"],
                        ["ip", "link", "set", "vx0", "master", "br0", "up"],
                        ["ip", "link", "add", "veth0", "type", "veth", "peer", "name", "eth0", "netns", c],
                        ["ip", "link", "set", "veth0", "master", "br0", "up"]):
                _run(*cmd, ns=h)
            for cmd in (["ip", "link", "set", "lo", "up"],
                        ["ip", "link", "set", "eth0", "address", MACS[i]],
                        ["ip", "addr", "add", f"{ADDRS[i]}/24", "dev", "eth0"],
                        ["ip", "link", "set", "eth0", "up"]):
                _run(*cmd, ns=c)
        yield hosts, ctrs
    finally:
        for n in made:
            _run("ip", "netns", "del", n, check=False)
        # `ip netns add` makes /run/netns a mount of its own the first time: undo what we made
        if not run_netns_was_mount and _is_mount("/run/netns") and not os.listdir("/run/netns"):
            subprocess.run(["umount", "/run/netns"], capture_output=True)


@exercise("10.2")
def check_add_peer(add_peer) -> str:
    """Build exercise: host 2 already knows host 1's container; the learner's
    add_peer(host, peer_underlay, ip, mac) must teach host 1 where container 2 lives. Graded by a
    ping from container 1 to container 2 across the underlay, and the FDB entry on host 1's vx0."""
    with two_hosts() as (hosts, ctrs):
        peer_entries(hosts[1], UNDERLAY[0], ADDRS[0], MACS[0])
        if ping(ctrs[0], ADDRS[1], tries=1):
            raise ExerciseFailed("the lab is broken: the ping crossed before add_peer ran")
        add_peer(hosts[0], UNDERLAY[1], ADDRS[1], MACS[1])
        fdb = _run("bridge", "fdb", "show", "dev", "vx0", ns=hosts[0]).stdout
        want = f"{MACS[1]} dst {UNDERLAY[1]}"
        if want not in fdb:
            raise ExerciseFailed(f"no FDB entry '{want}' on vx0 in {hosts[0]}; its entries with a dst: "
                                 f"{[ln for ln in fdb.splitlines() if ' dst ' in ln] or 'none'}")
        if not ping(ctrs[0], ADDRS[1]):
            neigh = _run("ip", "neigh", "show", "dev", "vx0", ns=hosts[0]).stdout.strip()
            raise ExerciseFailed(f"the FDB entry is there, but {ctrs[0]} still cannot ping {ADDRS[1]}: "
                                 f"with proxy on, vx0 answers ARP only from its neighbour table "
                                 f"(ip neigh on vx0: {neigh or 'empty'})")
    return f"{ADDRS[0]} on host 1 pings {ADDRS[1]} on host 2 through VNI {VNI} over the underlay"


@exercise("10.3")
def check_fix_mtu(fix_mtu) -> str:
    """Build exercise: an underlay whose MTU is not 1500; the container still has 1500, so large
    packets vanish on the way. The learner's fix_mtu(host, container) must set the container's eth0
    MTU to the overlay's. Graded by DF pings: the largest that fits must be answered, one byte more
    must be refused by the container's own kernel (EMSGSIZE) — never silently lost."""
    underlay = random.choice((1400, 1480))
    right = underlay - 50
    with two_hosts(underlay) as (hosts, ctrs):
        peer_entries(hosts[0], UNDERLAY[1], ADDRS[1], MACS[1])
        peer_entries(hosts[1], UNDERLAY[0], ADDRS[0], MACS[0])
        if not ping(ctrs[0], ADDRS[1]):
            raise ExerciseFailed("the lab is broken: no ping across before fix_mtu ran")
        fix_mtu(hosts[0], ctrs[0])
        mtu = int(_run("cat", "/sys/class/net/eth0/mtu", ns=ctrs[0]).stdout)
        fits = df_ping(ctrs[0], ADDRS[1], right - 28)
        over = df_ping(ctrs[0], ADDRS[1], right - 27)
        if fits == 2 or (fits == 0 and mtu < right):
            raise ExerciseFailed(f"underlay MTU {underlay}: eth0 in {ctrs[0]} is {mtu}, too small — a "
                                 f"{right - 28}-byte DF ping would fit the overlay (expected MTU {right})")
        if fits != 0 or over == 1:
            raise ExerciseFailed(f"underlay MTU {underlay}: eth0 in {ctrs[0]} is {mtu}; a "
                                 f"{right - 27 if fits == 0 else right - 28}-byte DF ping was lost on the "
                                 f"way (expected MTU {right}: the VXLAN headers take 50 bytes)")
        if over != 2:
            raise ExerciseFailed(f"eth0 in {ctrs[0]} is {mtu}: a {right - 27}-byte DF ping should be "
                                 f"refused by the sender's kernel")
    return (f"underlay {underlay} → eth0 {right}: a {right - 28}-byte DF ping crosses, "
            f"{right - 27} bytes is refused at the sender, nothing lost silently")
