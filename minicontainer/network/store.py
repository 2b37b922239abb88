"""User-defined networks on disk: records, validation, address plans and leases (notebook 10).

A network is a directory ``state_root()/network/nets/<name>/`` (mode 0700) holding ``network.json``
(0600) and ``leases/<ip>`` (0600, one JSON file per attached container). One file per address,
under one ``fcntl`` lock per engine, for the reason the default bridge's leases use files: every
``run`` is its own process, and the DNS responder (dns.py) reads the same files to answer names —
no second copy of the truth to keep in step.

Address plan of an overlay (why addresses cannot collide across hosts without talking): every
host of the network is given the same subnet, the same peers and so the same *member list*, the
sorted underlay addresses of all hosts. A host's index is its place in that list; the subnet is
cut into ``2**k >= len(members)`` equal slots and host *i* leases only from slot *i*; the first
address of its slot is its own gateway (its bridge's address, where its DNS responder listens).
Every MAC is derived from the address (``02:42`` + the four bytes, Docker's scheme), so a host
knows, without asking anyone, which MAC an address has and behind which peer it lives: the
control plane is arithmetic (links.py pushes the entries). Rejected: one allocator shared by all
hosts (a service to run and reach), random addresses with conflict detection (gossip: the issue
asks for static peers). The price: membership is fixed when the network is created — adding a host
means recreating the network on every host — and an overlay subnet is at most a /22 (an entry per
address of every peer's slot is pushed).

Nothing here touches the kernel; links.py does.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import secrets
import time
from pathlib import Path

from .. import paths, private
from ..errors import ConfigError, ConflictError, NotFoundError

DRIVERS = ("bridge", "overlay")
#: names docker reserves for its built-in modes (and ``container:NAME``)
RESERVED = ("bridge", "host", "none", "default")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
VNI_MIN, VNI_MAX = 4096, (1 << 24) - 1
VXLAN_PORT = 4789
OVERLAY_MTU = 1450          # 1500 underlay - 50 (outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14)
#: where `network create` without --subnet picks a free /24 (clear of docker, libvirt and VM NATs)
AUTO_POOL = os.environ.get("MINICONTAINER_NET_POOL", "10.210.0.0/16")


def nets_dir() -> Path:
    return paths.state_root() / "network" / "nets"


def _mkdir(p: Path) -> Path:
    return private.make_dir(p)


def _write(p: Path, text: str) -> None:
    """Write through a 0600 temporary file and rename: readers (the DNS responder) never see half."""
    private.write(p, text)


@contextlib.contextmanager
def locked():
    """One engine-wide lock for creating/removing networks and leasing their addresses."""
    d = _mkdir(paths.state_root() / "network")
    fd = private.lock_file(d / "nets.lock")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# --- validation -----------------------------------------------------------------------------

def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name or ""):
        raise ConfigError(f"invalid network name {name!r}",
                          hint="letters, digits, '_', '.', '-'; at most 63 characters")
    if name in RESERVED:
        raise ConfigError(f"network name {name!r} is reserved", hint="choose another name")
    return name


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(text, strict=True)
    except ValueError as exc:
        raise ConfigError(f"invalid subnet {text!r}: {exc}", hint="use an IPv4 CIDR such as 10.210.5.0/24") from None
    if net.prefixlen > 29:
        raise ConfigError(f"subnet {text} is too small", hint="use a /29 or larger")
    if net.is_loopback or net.is_multicast or net.is_link_local:
        raise ConfigError(f"subnet {text} is not usable for containers", hint="use a private range")
    return net


def parse_ip(text: str, what: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise ConfigError(f"invalid {what} {text!r}", hint="use an IPv4 address such as 192.168.56.11") from None


def link_names(net_id: str) -> dict:
    """Kernel names from the network's id: at most 13 characters (IFNAMSIZ is 16 with the NUL),
    whatever the user's name (up to 63). Prefixes of our own (not ``mcv``, which the default
    bridge's gc sweeps)."""
    return {"bridge": f"mcbr-{net_id[:8]}", "vxlan": f"mcx-{net_id[:8]}",
            "nft": f"minicontainer_net_{net_id[:8]}"}


def veth_names(cid: str, net_id: str | None = None) -> tuple[str, str]:
    """Host and container ends of a container's veth on a user-defined network: the one it was
    started on (``net_id`` None), or one it was connected to later (``network connect``)."""
    if net_id:
        return f"mcu{cid[:6]}{net_id[:4]}", f"mcq{cid[:6]}{net_id[:4]}"
    return f"mcu{cid[:10]}", f"mcq{cid[:10]}"


def lease_veth(info: dict) -> str:
    """The host end of the veth a lease belongs to (recorded since `network connect`)."""
    return info.get("veth") or veth_names(info.get("cid", ""))[0]


def mac_of(ip: str) -> str:
    """Docker's address-derived MAC: 02:42 + the four bytes of the IPv4 address."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)


# --- address plans --------------------------------------------------------------------------

def slots(subnet: str, members: int) -> list[ipaddress.IPv4Network]:
    """The subnet cut into the smallest power of two of equal slots that gives each member one."""
    net = ipaddress.IPv4Network(subnet)
    bits = max(0, (members - 1).bit_length())
    if net.prefixlen + bits > 29:
        raise ConfigError(f"subnet {subnet} is too small for {members} hosts",
                          hint="use a larger subnet or fewer peers")
    return list(net.subnets(prefixlen_diff=bits))


def usable(subnet: str, slot: ipaddress.IPv4Network) -> list[str]:
    """Addresses of a slot minus the subnet's own network and broadcast addresses."""
    net = ipaddress.IPv4Network(subnet)
    return [str(a) for a in slot if a not in (net.network_address, net.broadcast_address)]


def plan(rec: dict) -> dict:
    """host index -> (underlay address, gateway, [container addresses]) for a record."""
    members = rec.get("members") or [None]
    out = {}
    for i, (member, slot) in enumerate(zip(members, slots(rec["subnet"], len(members)))):
        addrs = usable(rec["subnet"], slot)
        if rec["driver"] == "bridge":
            gw = rec["gateway"]
            addrs = [a for a in addrs if a != gw]
        else:
            gw = addrs.pop(0)
        out[i] = (member, gw, addrs)
    return out


# --- records --------------------------------------------------------------------------------

def path(name: str) -> Path:
    return nets_dir() / name


def load(name: str) -> dict:
    try:
        return json.loads((path(name) / "network.json").read_text())
    except FileNotFoundError:
        raise NotFoundError(f"network {name!r} not found",
                            hint="see `minicontainer network ls`, or create it with `network create`") from None


def all_records() -> list[dict]:
    d = nets_dir()
    out = []
    for p in sorted(d.iterdir()) if d.is_dir() else ():
        try:
            out.append(json.loads((p / "network.json").read_text()))
        except (OSError, ValueError):
            continue
    return out


def exists(name: str) -> bool:
    return (path(name) / "network.json").exists()


def save(rec: dict) -> None:
    d = _mkdir(path(rec["name"]))
    _mkdir(d / "leases")
    _write(d / "network.json", json.dumps(rec, indent=1, sort_keys=True))


def remove(name: str) -> None:
    d = path(name)
    for p in sorted(d.rglob("*"), reverse=True) if d.is_dir() else ():
        p.rmdir() if p.is_dir() and not p.is_symlink() else p.unlink()
    if d.is_dir():
        d.rmdir()


def new_record(name: str, driver: str, subnet: str | None, gateway: str | None, *, vni=None,
               peers=(), local=None, host_subnets=()) -> dict:
    """Validate a ``network create`` request against the engine's other networks and the host's
    own subnets (``host_subnets``: what links.py found on the host's interfaces), and return the
    record to save. Raises one-line errors; writes nothing."""
    check_name(name)
    if driver not in DRIVERS:
        raise ConfigError(f"unknown network driver {driver!r}", hint="use bridge or overlay")
    if exists(name):
        raise ConflictError(f"network {name!r} already exists", hint="choose another name or `network rm` it")
    others = all_records()
    from .defaults import DEFAULT_SUBNET
    taken = [(f"network {r['name']}", ipaddress.IPv4Network(r["subnet"])) for r in others]
    taken.append(("the default bridge", ipaddress.IPv4Network(DEFAULT_SUBNET)))
    taken += [(f"host interface {dev}", ipaddress.IPv4Network(s, strict=False)) for dev, s in host_subnets]
    if subnet is None:
        if driver == "overlay":
            raise ConfigError("an overlay network needs --subnet",
                              hint="every host must be given the same subnet, e.g. --subnet 10.211.0.0/24")
        net = next((n for n in ipaddress.IPv4Network(AUTO_POOL).subnets(new_prefix=24)
                    if not any(n.overlaps(t) for _, t in taken)), None)
        if net is None:
            raise ConflictError(f"no free /24 left in {AUTO_POOL}", hint="give --subnet")
    else:
        net = parse_subnet(subnet)
        for who, t in taken:
            if net.overlaps(t):
                raise ConflictError(f"subnet {net} overlaps {t} of {who}", hint="choose a subnet that does not overlap")
    rec = {"id": secrets.token_hex(32), "name": name, "driver": driver, "subnet": str(net),
           "created": time.time(), "members": [], "host_index": 0}
    if driver == "bridge":
        if peers or vni is not None or local is not None:
            raise ConfigError("--peer, --vni and --local are for overlay networks", hint="add --driver overlay")
        gw = parse_ip(gateway, "gateway") if gateway else next(net.hosts())
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            raise ConfigError(f"gateway {gw} is not a host address of {net}", hint="pick one inside the subnet")
        from .defaults import DEFAULT_MTU
        rec.update(gateway=str(gw), mtu=DEFAULT_MTU)   # the default bridge's (see there why not 1500)
    else:
        if gateway:
            raise ConfigError("--gateway is not used by overlay networks",
                              hint="each host's gateway is the first address of its slot (see `network inspect`)")
        if net.num_addresses > 1024:
            raise ConfigError(f"overlay subnet {net} is too large", hint="use a /22 or smaller")
        used = {r.get("vni") for r in others if r["driver"] == "overlay"}
        if vni is None:
            vni = next(v for v in range(VNI_MIN, VNI_MAX) if v not in used)
        elif not (isinstance(vni, int) and VNI_MIN <= vni <= VNI_MAX):
            raise ConfigError(f"invalid VNI {vni!r}", hint=f"use {VNI_MIN}-{VNI_MAX}")
        elif vni in used:
            who = next(r["name"] for r in others if r.get("vni") == vni)
            raise ConflictError(f"VNI {vni} is already used by network {who!r}", hint="give another --vni")
        if local is None:
            raise ConfigError("an overlay network needs this host's underlay address",
                              hint="give --local IP, or a --peer it can route to")
        local = str(parse_ip(local, "local address"))
        ps = []
        for p in peers:
            a = parse_ip(p, "peer address")
            if a.is_loopback or a.is_multicast or a.is_unspecified or a.is_link_local:
                raise ConfigError(f"invalid peer address {p!r}", hint="a peer is another host's unicast underlay address")
            if str(a) == local:
                raise ConfigError(f"peer {p} is this host's own address", hint="list the other hosts only")
            if str(a) not in ps:
                ps.append(str(a))
        members = sorted([local] + ps, key=lambda s: ipaddress.IPv4Address(s))
        slots(str(net), len(members))   # too small a subnet for the hosts: ConfigError
        rec.update(vni=vni, port=VXLAN_PORT, peers=ps, local=local, members=members,
                   host_index=members.index(local), mtu=OVERLAY_MTU)
        rec["gateway"] = plan(rec)[rec["host_index"]][1]
    rec.update(link_names(rec["id"]))
    if driver == "bridge":
        rec.pop("vxlan")
    return rec


# --- leases ---------------------------------------------------------------------------------

def leases(name: str) -> dict[str, dict]:
    """ip -> {"cid", "name", "hostname"} of the containers attached to a network on this host."""
    d = path(name) / "leases"
    out = {}
    for p in d.iterdir() if d.is_dir() else ():
        if p.name.startswith("."):
            continue
        try:
            out[p.name] = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
    return out


def lease(rec: dict, cid: str, cname: str, hostname: str | None, veth: str | None = None) -> str:
    """Lease a free address of this host's slot for ``cid`` (call under ``locked()``)."""
    _, _, addrs = plan(rec)[rec["host_index"]]
    taken = leases(rec["name"])
    for a in taken.values():
        if a.get("name") == cname:
            raise ConflictError(f"a container named {cname!r} is already on network {rec['name']!r}",
                                hint="names on a network must be unique: they are what its DNS answers")
    for ip in addrs:
        if ip not in taken:
            _write(path(rec["name"]) / "leases" / ip,
                   json.dumps({"cid": cid, "name": cname, "hostname": hostname,
                               "veth": veth or veth_names(cid)[0]}))
            return ip
    raise ConflictError(f"network {rec['name']!r} has no free address on this host ({len(addrs)} leased)",
                        hint="remove containers from it, or use a larger subnet")


def release(name: str, cid: str) -> list[str]:
    out = []
    for ip, info in leases(name).items():
        if info.get("cid") == cid:
            (path(name) / "leases" / ip).unlink(missing_ok=True)
            out.append(ip)
    return out


def network_of(cid: str) -> list[tuple[dict, str]]:
    """(record, ip) of every network ``cid`` holds a lease on."""
    return [(r, ip) for r in all_records() for ip, info in leases(r["name"]).items() if info.get("cid") == cid]
