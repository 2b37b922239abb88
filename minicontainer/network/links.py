"""The kernel side of user-defined networks: bridge, VXLAN, FDB and neighbour entries, veths, nft.

Everything goes through pyroute2 (sync API; from a notebook call it from a worker thread), except
the firewall, which is one ``nft -f -`` per network into a table of our own
(``ip minicontainer_net_<id8>``): deleting the table removes exactly our rules (rejected: rules in
iptables' built-in chains, whose removal has to match their text).

An overlay network on one host (Docker's overlay driver without its gossip)::

    container eth0 (MTU 1450, MAC 02:42:<ip>) ── veth mcu… ── bridge mcbr-<id8> ── vxlan mcx-<id8>
                                                   (gateway = first address         VNI, UDP 4789,
                                                    of this host's slot)            learning off, proxy on

and on the vxlan device, for every *other* host's slot (store.py's address plan):
``fdb 00:00:00:00:00:00 dst PEER`` (broadcast and unknown unicast, "BUM"), and for each address a
of that slot ``fdb mac(a) dst PEER`` plus a permanent ``neigh a lladdr mac(a)``. With ``proxy``
the VXLAN driver answers ARP requests itself from those neighbour entries (and drops the ones it
cannot answer) instead of sending them to every peer; with ``learning`` off it never learns from
the underlay (a spoofed packet cannot redirect traffic), and with the per-MAC FDB entries a
unicast frame goes to exactly one peer. Deleting the vxlan device deletes its FDB and neighbour
entries with it; ``remove`` still checks that none are left.
"""

from __future__ import annotations

import ipaddress
import socket
import subprocess
from contextlib import ExitStack
from pathlib import Path

from .. import paths
from ..errors import ConfigError, NetworkError, NotFoundError
from . import store

ZERO_MAC = "00:00:00:00:00:00"


def _ipr():
    from ._pyroute2 import IPRoute
    return IPRoute()


def _nl(op: str, what: str, exc: Exception) -> NetworkError:
    """One wording for netlink failures: operation, object, errno name."""
    import errno
    code = getattr(exc, "code", None)
    name = errno.errorcode.get(code, str(code)) if isinstance(code, int) else type(exc).__name__
    return NetworkError(f"{op} {what}: {name} ({exc})")


def host_subnets() -> list[tuple[str, str]]:
    """(device, subnet) of every IPv4 address of this host (network namespace), lo excepted."""
    out = []
    with _ipr() as ipr:
        names = {l["index"]: l.get_attr("IFLA_IFNAME") for l in ipr.get_links()}
        for a in ipr.get_addr(family=socket.AF_INET):
            dev = names.get(a["index"], "?")
            if dev != "lo":
                out.append((dev, f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"))
    return out


def local_address(peers: list[str]) -> str | None:
    """This host's underlay address: the source the kernel would use to reach the first peer.
    A peer this host has no route to is refused here ("unknown peer")."""
    src = None
    with _ipr() as ipr:
        for p in peers:
            store.parse_ip(p, "peer address")
            try:
                r = ipr.route("get", dst=p)
            except Exception:  # noqa: BLE001 — NetlinkError ENETUNREACH
                raise ConfigError(f"peer {p} is not reachable from this host (no route)",
                                  hint="give the other hosts' underlay addresses") from None
            if r[0]["type"] == 2:                   # RTN_LOCAL
                raise ConfigError(f"peer {p} is an address of this host", hint="list the other hosts only")
            src = src or r[0].get_attr("RTA_PREFSRC")
    return src


# --- the firewall ---------------------------------------------------------------------------

def _forward_file() -> Path:
    return paths.state_root() / "network" / "ip_forward.nets"


def _nft_up(rec: dict) -> None:
    """Isolation and NAT for one network, in its own table. Forwarded traffic between this
    network's bridge and any other bridge of ours (``mcbr-*`` and the default bridge) is dropped
    in both directions (Docker's DOCKER-ISOLATION), as are packets for this network's gateway
    (its DNS responder) arriving from another interface; the subnet is masqueraded when it leaves
    by a non-bridge interface. ip_forward is switched on (the value found is kept in the state root
    and restored when the last network is removed)."""
    from .defaults import DEFAULT_BRIDGE
    br, t, gw, sub = rec["bridge"], rec["nft"], rec["gateway"], rec["subnet"]
    ruleset = (
        f"table ip {t} {{\n"
        f" chain forward {{ type filter hook forward priority filter - 1; policy accept;\n"
        f"  iifname \"{br}\" oifname \"mcbr-*\" oifname != \"{br}\" drop\n"
        f"  oifname \"{br}\" iifname \"mcbr-*\" iifname != \"{br}\" drop\n"
        f"  iifname \"{br}\" oifname \"{DEFAULT_BRIDGE}\" drop\n"
        f"  oifname \"{br}\" iifname \"{DEFAULT_BRIDGE}\" drop\n }}\n"
        f" chain input {{ type filter hook input priority filter - 1; policy accept;\n"
        f"  ip daddr {gw} iifname != \"{br}\" iifname != \"lo\" drop\n }}\n"
        f" chain postrouting {{ type nat hook postrouting priority srcnat;\n"
        f"  ip saddr {sub} oifname != \"{br}\" masquerade\n }}\n}}\n")
    p = subprocess.run(["nft", "-f", "-"], input=ruleset, text=True, capture_output=True)
    if p.returncode:
        raise NetworkError(f"nft add table ip {t}: {p.stderr.strip().splitlines()[-1:]}",
                           hint="is nftables available (nft) and are we root?")
    f = _forward_file()
    fwd = Path("/proc/sys/net/ipv4/ip_forward")
    if not f.exists():
        store._write(f, fwd.read_text())
    fwd.write_text("1")


def _nft_down(rec: dict, last: bool) -> None:
    subprocess.run(["nft", "delete", "table", "ip", rec["nft"]], capture_output=True)
    f = _forward_file()
    if last and f.exists():
        Path("/proc/sys/net/ipv4/ip_forward").write_text(f.read_text().strip())
        f.unlink()


def nft_tables() -> list[str]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return [ln.split()[-1] for ln in out.splitlines() if ln.startswith("table ip ")]


# --- create / remove ------------------------------------------------------------------------

def _remote_entries(rec: dict):
    """(peer, [addresses of its slot incl. its gateway]) for every other host of an overlay."""
    for i, (member, gw, addrs) in store.plan(rec).items():
        if i != rec["host_index"]:
            yield member, [gw] + addrs


def create(rec: dict) -> None:
    """Make the network's links and rules; on failure undo all of it."""
    plen = ipaddress.IPv4Network(rec["subnet"]).prefixlen
    with ExitStack() as undo, _ipr() as ipr:
        undo.callback(remove_links, rec, False)   # ip_forward: only _nft_up (the last step) sets it
        try:
            kw = {"mtu": rec["mtu"]} if rec.get("mtu") else {}
            ipr.link("add", ifname=rec["bridge"], kind="bridge", **kw)
            br = ipr.link_lookup(ifname=rec["bridge"])[0]
            ipr.link("set", index=br, address=store.mac_of(rec["gateway"]))
            ipr.addr("add", index=br, address=rec["gateway"], prefixlen=plen)
            if rec["driver"] == "overlay":
                ipr.link("add", ifname=rec["vxlan"], kind="vxlan", vxlan_id=rec["vni"],
                         vxlan_port=rec["port"], vxlan_local=rec["local"], vxlan_learning=0,
                         vxlan_proxy=1, mtu=rec["mtu"])
                vx = ipr.link_lookup(ifname=rec["vxlan"])[0]
                for peer, addrs in _remote_entries(rec):
                    ipr.fdb("append", ifindex=vx, lladdr=ZERO_MAC, dst=peer)
                    for a in addrs:
                        ipr.fdb("append", ifindex=vx, lladdr=store.mac_of(a), dst=peer)
                        ipr.neigh("add", ifindex=vx, dst=a, lladdr=store.mac_of(a), state="permanent")
                ipr.link("set", index=vx, master=br, state="up")
            ipr.link("set", index=br, state="up")
        except Exception as exc:  # noqa: BLE001
            if getattr(exc, "code", None) == 17 and rec["driver"] == "overlay":
                raise ConfigError(f"network create {rec['name']}: a VXLAN device with VNI {rec['vni']} "
                                  f"and port {rec['port']} already exists on this host",
                                  hint="give another --vni") from None
            raise _nl("network create", rec["name"], exc) from None
        _nft_up(rec)
        undo.pop_all()


def remove_links(rec: dict, last: bool = True) -> None:
    """Delete the network's vxlan device (its FDB and neighbour entries go with it), bridge and
    nft table. Idempotent."""
    with _ipr() as ipr:
        for name in (rec.get("vxlan"), rec["bridge"]):
            if name:
                _del(ipr, name)
    _nft_down(rec, last)


def leftovers(rec: dict) -> list[str]:
    """What of the network still exists in the kernel: links, FDB/neighbour entries on its
    devices, its nft table. ``network rm`` checks this is empty; so do the tests."""
    out = []
    with _ipr() as ipr:
        for name in (rec.get("vxlan"), rec["bridge"]):
            if name and ipr.link_lookup(ifname=name):
                out.append(f"link {name}")
        if rec.get("peers"):
            # entries toward the peers for this network's MACs (other overlays to the same peers
            # have other subnets, so other MACs; the all-zero entry lives on the vxlan device only)
            macs = {store.mac_of(str(a)) for a in ipaddress.IPv4Network(rec["subnet"])}
            vx = ipr.link_lookup(ifname=rec["vxlan"])
            for e in ipr.fdb("dump"):
                mac = e.get_attr("NDA_LLADDR")
                if e.get_attr("NDA_DST") in rec["peers"] and (mac in macs or (vx and e["ifindex"] == vx[0])):
                    out.append(f"fdb {mac} dst {e.get_attr('NDA_DST')}")
    if rec["nft"] in nft_tables():
        out.append(f"nft table {rec['nft']}")
    return out


# --- containers -----------------------------------------------------------------------------

def attach(rec: dict, cid: str, pid: int, ip: str, *, extra: bool = False) -> tuple[str, str]:
    """Plug the network namespace of ``pid`` into the network's bridge with a veth pair whose
    container end becomes ``eth0`` with the address-derived MAC; returns (host veth, "eth0").
    ``extra`` (``network connect``): the next free ``ethN``, and no default route (it has one)."""
    from ._pyroute2 import NetNS

    plen = ipaddress.IPv4Network(rec["subnet"]).prefixlen
    host_if, peer_if = store.veth_names(cid, rec["id"] if extra else None)
    eth = "eth0"
    mtu = rec.get("mtu")
    try:
        with _ipr() as ipr:
            br = ipr.link_lookup(ifname=rec["bridge"])
            if not br:
                raise NotFoundError(f"network {rec['name']}: its bridge {rec['bridge']} is gone",
                                    hint=f"`minicontainer network rm {rec['name']}` and create it again")
            ipr.link("add", ifname=host_if, kind="veth", peer=peer_if)
            hidx = ipr.link_lookup(ifname=host_if)[0]
            pidx = ipr.link_lookup(ifname=peer_if)[0]
            if mtu:
                ipr.link("set", index=hidx, mtu=mtu)
                ipr.link("set", index=pidx, mtu=mtu)
            ipr.link("set", index=hidx, master=br[0], state="up")
            ipr.link("set", index=pidx, net_ns_pid=pid)
        with NetNS(f"/proc/{pid}/ns/net") as ns:
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
            idx = ns.link_lookup(ifname=peer_if)[0]
            if extra:
                have = {l.get_attr("IFLA_IFNAME") for l in ns.get_links()}
                eth = next(f"eth{i}" for i in range(1, 100) if f"eth{i}" not in have)
            ns.link("set", index=idx, ifname=eth, address=store.mac_of(ip))
            ns.addr("add", index=idx, address=ip, prefixlen=plen)
            ns.link("set", index=idx, state="up")
            if not extra:
                ns.route("add", dst="0.0.0.0/0", gateway=rec["gateway"])
    except NotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001
        detach_name(host_if)
        raise _nl("network attach", f"{rec['name']} ({host_if})", exc) from None
    return host_if, eth


def _del(ipr, name: str) -> None:
    """Delete a link if it exists. A container's veth may vanish between lookup and delete: when
    its namespace dies the kernel removes the pair by itself, asynchronously (ENODEV then)."""
    idx = ipr.link_lookup(ifname=name)
    if idx:
        try:
            ipr.link("del", index=idx[0])
        except Exception as exc:  # noqa: BLE001 — NetlinkError
            if getattr(exc, "code", None) != 19:
                raise


def detach(cid: str) -> None:
    """Delete the host end of the container's veth (the kernel drops the other end). Idempotent."""
    with _ipr() as ipr:
        _del(ipr, store.veth_names(cid)[0])


def link_exists(name: str) -> bool:
    return name in _links()   # netlink, not /sys/class/net: sysfs shows the netns it was mounted in


def _links() -> set[str]:
    with _ipr() as ipr:
        return {l.get_attr("IFLA_IFNAME") for l in ipr.get_links()}


def our_veths() -> set[str]:
    return {n for n in _links() if n.startswith("mcu")}


def detach_name(name: str) -> None:
    with _ipr() as ipr:
        _del(ipr, name)
