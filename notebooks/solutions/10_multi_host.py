"""Solutions to notebook 10's exercises. Each block is self-contained (its own imports)."""

# %% Exercise 10.1
import struct


def decode_vxlan(frame: bytes) -> tuple[int, str, str] | None:
    """(VNI, inner source MAC, inner destination MAC) of a VXLAN frame, else None."""
    if frame[12:14] != b"\x08\x00":                        # outer EtherType: IPv4
        return None
    ihl = (frame[14] & 0x0F) * 4                             # IPv4 header length, options included
    if frame[14 + 9] != 17:                                  # protocol: UDP
        return None
    udp = 14 + ihl
    if struct.unpack("!H", frame[udp + 2:udp + 4])[0] != 4789:
        return None
    vxlan = udp + 8
    vni = int.from_bytes(frame[vxlan + 4:vxlan + 7], "big")
    inner = frame[vxlan + 8:]
    mac = lambda b: ":".join(f"{x:02x}" for x in b)          # noqa: E731
    return vni, mac(inner[6:12]), mac(inner[0:6])


# %% Exercise 10.2
from concurrent.futures import ThreadPoolExecutor


def add_peer(host: str, peer_underlay: str, ip: str, mac: str) -> None:
    """On vx0 in the named network namespace ``host``: the FDB entry that sends frames for ``mac``
    to the VXLAN peer ``peer_underlay``, and the permanent neighbour entry ``ip`` → ``mac`` from
    which vx0 (proxy on) answers ARP itself. pyroute2 in a worker thread: its sync API fails inside
    Jupyter's running event loop."""
    def entries():
        from pyroute2 import NetNS
        with NetNS(host) as ns:
            vx = ns.link_lookup(ifname="vx0")[0]
            ns.fdb("append", ifindex=vx, lladdr=mac, dst=peer_underlay)
            ns.neigh("add", ifindex=vx, dst=ip, lladdr=mac, state="permanent")
    with ThreadPoolExecutor(1) as pool:
        pool.submit(entries).result()


# %% Exercise 10.3
import subprocess


def fix_mtu(host: str, container: str) -> None:
    """eth0 in ``container`` gets the overlay's MTU: the underlay's (ul0 in ``host``) minus the 50
    bytes VXLAN adds (outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14)."""
    underlay = int(subprocess.run(["ip", "netns", "exec", host, "cat", "/sys/class/net/ul0/mtu"],
                                  check=True, capture_output=True, text=True).stdout)
    subprocess.run(["ip", "netns", "exec", container, "ip", "link", "set", "eth0", "mtu", str(underlay - 50)],
                   check=True)
