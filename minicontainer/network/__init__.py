"""Container networking: modes, published ports, address leases. Introduced in notebook 05;
user-defined bridge and overlay networks (``--network NAME``) in notebook 10: store.py (records,
address plans), links.py (kernel side), dns.py (name resolution), nets.py (what the engine calls),
commands.py (the ``network`` verbs).

Modes: ``none`` (a new network namespace with only ``lo``), ``host`` (no network namespace of its
own), ``bridge`` (veth pair into bridge ``mc0``, a leased address, NAT, published ports) and
``container:NAME``, which is no network set-up at all: the runtime's child joins the named running
container's network namespace with ``setns`` (``runtime/process.py``), as docker does.

Why leases are files under ``state_root()/network/leases`` with an ``fcntl`` lock: concurrent
``run`` commands are separate processes, so an in-memory allocator cannot work; one file per
address makes a lease visible to ``ls`` and to the leak check, and ``gc`` can drop leases whose
container no longer exists. Rejected: asking the kernel which addresses are in use (a container
between lease and ``ip addr add`` would be missed — a race).

pyroute2 is imported lazily inside functions so that starting a container with ``--network none``
does not pay for it (issue 7), and through _pyroute2.py: IPRoute and NetNS without the rest of the
library.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .. import paths, private
from ..errors import ConfigError, ConflictError, MiniContainerError  # noqa: F401 (re-exported for callers)

from .defaults import DEFAULT_BRIDGE, DEFAULT_MTU, DEFAULT_SUBNET  # noqa: F401 (their home)
from .records import Attachment, PortMapping  # noqa: F401 (their home)

_PUBLISH_RE = re.compile(
    r"^(?:(?P<hostip>\d{1,3}(?:\.\d{1,3}){3}):)?(?P<hostport>\d+):(?P<ctrport>\d+)(?:/(?P<proto>[a-z]+))?$")


def _port(text: str, what: str, spec: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise ConfigError(f"invalid port mapping {spec!r}: {what} {value} out of range",
                          hint="ports are 1-65535")
    return value


def parse_publish(spec: str) -> PortMapping:
    """Parse docker's ``-p [HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp]``."""
    m = _PUBLISH_RE.match(spec.strip())
    if not m:
        raise ConfigError(f"invalid port mapping {spec!r}",
                          hint="expected [HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp], e.g. 8080:80")
    proto = m["proto"] or "tcp"
    if proto not in ("tcp", "udp"):
        raise ConfigError(f"invalid port mapping {spec!r}: unknown protocol {proto!r}",
                          hint="use /tcp or /udp")
    host_ip = m["hostip"] or "0.0.0.0"
    try:
        ipaddress.IPv4Address(host_ip)
    except ValueError:
        raise ConfigError(f"invalid port mapping {spec!r}: bad host address {host_ip!r}") from None
    return PortMapping(_port(m["hostport"], "host port", spec),
                       _port(m["ctrport"], "container port", spec), proto, host_ip)


@dataclass(frozen=True)
class Mode:
    kind: str                    # "bridge" | "host" | "none" | "container" | "network"
    container: str | None = None  # for container:NAME; the network's name for "network"


def parse_mode(spec: str) -> Mode:
    """Parse ``--network``: ``bridge`` (default), ``host``, ``none``, ``container:NAME`` or the name
    of a user-defined network (``network create``) of this engine."""
    spec = (spec or "bridge").strip()
    if spec in ("bridge", "host", "none"):
        return Mode(spec)
    if spec.startswith("container:") and spec[len("container:"):]:
        return Mode("container", spec[len("container:"):])
    from . import store
    try:
        known = bool(store.NAME_RE.fullmatch(spec)) and store.exists(spec)
    except OSError:
        known = False
    if known:
        return Mode("network", spec)
    raise ConfigError(f"unknown network mode {spec!r}",
                      hint="use bridge, host, none, container:NAME or a network of `minicontainer network ls`")


# --- leases ---------------------------------------------------------------------------------

def lease_dir() -> Path:
    return paths.state_root() / "network" / "leases"


@contextlib.contextmanager
def _locked():
    d = paths.state_root() / "network"
    private.make_dir(d)
    with open(private.lock_file(d / "leases.lock")) as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def allocate(cid: str, subnet: str = DEFAULT_SUBNET, name: str = "") -> tuple[str, str, int]:
    """Lease a free address for ``cid``; returns (ip, gateway, prefixlen). The gateway is .1."""
    net = ipaddress.IPv4Network(subnet)
    hosts = list(net.hosts())
    gateway = hosts[0]
    with _locked():
        d = lease_dir()
        private.make_dir(d)
        taken = {p.name for p in d.iterdir()}
        for ip in hosts[1:]:
            if str(ip) not in taken:
                private.write(d / str(ip), f"{cid} {name}" if name else cid)
                return str(ip), str(gateway), net.prefixlen
    raise ConflictError(f"subnet {subnet} is exhausted ({len(hosts) - 1} addresses leased)",
                        hint="remove containers, run `minicontainer gc`, or set MINICONTAINER_SUBNET")


def release(cid: str) -> list[str]:
    """Drop every lease held by ``cid``. Idempotent; returns the released addresses."""
    released = []
    with _locked():
        d = lease_dir()
        if d.is_dir():
            for p in d.iterdir():
                if p.read_text().split(" ")[0] == cid:
                    p.unlink()
                    released.append(p.name)
    return released


def leases() -> dict[str, str]:
    d = lease_dir()
    return {p.name: p.read_text().split(" ")[0] for p in d.iterdir()} if d.is_dir() else {}


def leases_named() -> dict[str, str]:
    """ip -> container name, for /etc/hosts of containers on the bridge."""
    d = lease_dir()
    out = {}
    for p in (d.iterdir() if d.is_dir() else ()):
        parts = p.read_text().split(" ", 1)
        if len(parts) == 2:
            out[p.name] = parts[1]
    return out


# --- the record ----------------------------------------------------------------------------

def refresh_hosts(records) -> list[str]:
    """Rewrite ``/etc/hosts`` of running bridge containers (``records``: the runtime's, each alive) so
    that each lists every container leased on the bridge now — a container started later is found by
    name from one started earlier, and a removed one disappears. Returns the names updated.

    The file written is the runtime's own, in the container's state directory on the host, which the
    container sees through a bind mount on its /etc/hosts (etcfiles.py, as Docker does). Nothing under
    the container's root is opened: it controls every path there (a device node or FIFO planted at
    /etc/hosts after unmounting ours, a symlink to the host's /etc). Best effort: a container gone
    meanwhile is skipped. Rejected: a DNS server of our own (a process to keep alive per bridge, for
    what a file does)."""
    from .. import etcfiles
    named = {n: ip for ip, n in leases_named().items()}
    updated = []
    for rec in records:
        net = rec.get("network") or {}
        if net.get("mode") != "bridge" or not rec.get("pid"):
            continue
        att = Attachment.from_dict(net)
        att.peers = named
        try:
            if etcfiles.rewrite(rec["id"], "/etc/hosts", att.hosts_file()):
                updated.append(att.name)
        except MiniContainerError:
            continue
    return updated


def attach(cid: str, pid: int, *, name: str, ports=(), hostname=None, mode: str = "bridge"):
    m = parse_mode(mode)
    if m.kind in ("none", "host"):
        return Attachment(cid, name, m.kind, hostname=hostname)
    if m.kind == "bridge":
        return attach_bridge(cid, pid, name=name, hostname=hostname, ports=ports)
    if m.kind == "network":
        from . import nets
        return nets.attach(cid, pid, name=name, net=m.container, hostname=hostname)
    # container:NAME: nothing to plug in; the process joins the other container's namespace
    return Attachment(cid, name, f"container:{m.container}", hostname=hostname)


def detach(cid: str) -> None:
    detach_bridge(cid)
    from . import nets
    nets.detach(cid)


def gc(bridge: str = DEFAULT_BRIDGE) -> list[str]:
    """Remove leftovers of crashed runs: leases and port claims whose veth is gone, our veths
    without a lease, nft tables of ours for a bridge with no container, an empty bridge."""
    import json
    import subprocess
    from ._pyroute2 import IPRoute

    removed = []
    with IPRoute() as ipr:
        names = {l.get_attr("IFLA_IFNAME") for l in ipr.get_links()}
        for ip_, cid in leases().items():
            if _veth_names(cid)[0] not in names:
                release(cid)
                _unpublish(cid, bridge)
                removed.append(f"lease {ip_} ({cid})")
        live = {_veth_names(c)[0] for c in leases().values()}
        for n in sorted(names):
            if n.startswith("mcv") and n not in live:
                ipr.link("del", index=ipr.link_lookup(ifname=n)[0])
                removed.append(f"veth {n}")
        br = ipr.link_lookup(ifname=bridge)
        if br and not leases() and not [l for l in ipr.get_links() if l.get("master") == br[0]]:
            ipr.link("del", index=br[0])
            removed.append(f"bridge {bridge}")
    if not leases():
        out = subprocess.run(["nft", "-j", "list", "tables"], capture_output=True, text=True).stdout
        for item in json.loads(out or "{}").get("nftables", []):
            t = item.get("table", {}).get("name", "")
            if t == _nft_table(bridge) or t.startswith(_nft_table(bridge) + "_"):
                subprocess.run(["nft", "delete", "table", "ip", t], capture_output=True)
                removed.append(f"nft table {t}")
        _nat_down(bridge)
    from . import nets
    removed += nets.gc()
    return removed


# --- kernel part (bridge mode, no NAT/DNAT yet) ---------------------------------------------

def _veth_names(cid: str) -> tuple[str, str]:
    return f"mcv{cid[:10]}", f"mcp{cid[:10]}"   # IFNAMSIZ is 16 incl. NUL


def _nft_table(bridge: str) -> str:
    return f"minicontainer_{bridge}"


def _nat_up(bridge: str, subnet: str) -> None:
    """Masquerade the bridge's subnet when it leaves by another interface, in an nft table of our
    own (``ip minicontainer_<bridge>``): deleting that table removes exactly our rules and nothing
    else. Rejected: iptables rules in the built-in POSTROUTING chain (removal must match rule text).
    IP forwarding is switched on; its previous value is recorded and restored by ``_nat_down``."""
    import subprocess
    t = _nft_table(bridge)
    subprocess.run(["nft", "-f", "-"], check=True, text=True, input=(
        f"table ip {t} {{}}\ndelete table ip {t}\n"
        f"table ip {t} {{\n chain postrouting {{ type nat hook postrouting priority srcnat; "
        f"ip saddr {subnet} oifname != \"{bridge}\" masquerade comment \"minicontainer\"; }}\n}}\n"
        + _loopback_guard(bridge)))
    prev = paths.state_root() / "network" / f"ip_forward.{bridge}"
    fwd = Path("/proc/sys/net/ipv4/ip_forward")
    if not prev.exists():
        private.write(prev, fwd.read_text())
    fwd.write_text("1")


def _loopback_guard(bridge: str) -> str:
    """nft commands (idempotent: the chain is flushed and filled again) that drop what a container
    sends from the bridge to 127.0.0.0/8 on the host — the kube-proxy fix for CVE-2020-8558. Publishing
    on 127.0.0.1 needs ``route_localnet=1`` on the bridge (see :func:`_publish`), and that also lets
    the kernel accept a packet *to* 127.0.0.1 arriving from the bridge: a container that routes 127/8
    to its gateway (it needs NET_ADMIN in its own namespace, which --privileged or --cap-add gives)
    would reach every host service bound to loopback only. Allowed through: replies of connections
    the host made (established, related) and packets our DNAT rewrote. Only packets from our bridge
    are matched; rejected: kube-proxy's "every interface but lo", which would judge traffic we did
    not make."""
    t = _nft_table(bridge)
    return (f"add table ip {t}\n"
            f"add chain ip {t} input {{ type filter hook input priority filter - 1; policy accept; }}\n"
            f"flush chain ip {t} input\n"
            f"add rule ip {t} input iifname \"{bridge}\" ip daddr 127.0.0.0/8 "
            f"ct state != {{ established, related }} ct status & dnat == 0 drop "
            f"comment \"minicontainer: no host loopback from containers\"\n")


def _nat_down(bridge: str) -> None:
    import subprocess
    subprocess.run(["nft", "delete", "table", "ip", _nft_table(bridge)], capture_output=True)
    prev = paths.state_root() / "network" / f"ip_forward.{bridge}"
    if prev.exists():
        Path("/proc/sys/net/ipv4/ip_forward").write_text(prev.read_text().strip())
        prev.unlink()


def _publish(cid: str, bridge: str, ip: str, ports) -> None:
    """DNAT published ports in the kernel (no userspace proxy), in an nft table per container,
    so removing the container's table removes exactly its rules. PREROUTING catches traffic from
    other namespaces; OUTPUT catches the host's own connections. For 127.0.0.1 two more things are
    needed: ``route_localnet=1`` on the bridge (else the kernel drops a packet with a loopback
    source routed out of a non-loopback device as a martian), and a MASQUERADE of 127.0.0.0/8 out
    of the bridge (else the container would answer to 127.0.0.1, i.e. to its own ``lo``) — and
    with route_localnet, :func:`_loopback_guard` so that a container cannot reach the host's loopback
    services the other way. A host port something listens on already is refused (ports.py). And one
    for *hairpin* traffic, a container reaching a published port through the gateway: DNAT sends it
    back out of the same bridge, and without masquerading the server would answer the client
    directly, bypassing the host's conntrack, and the client would drop the reply (a reply from an
    address it never spoke to). Hosts with ``br_netfilter`` loaded hide this; a fresh Debian 12 VM
    does not (found by ``make vm-test``)."""
    import subprocess
    if not ports:
        return
    from . import ports as host_ports
    host_ports.check_unique(ports)
    d = paths.state_root() / "network" / "ports"
    with _locked():
        private.make_dir(d)
        for p in ports:
            f = d / f"{p.protocol}-{p.host_port}"
            if f.exists() and f.read_text() != cid:
                raise ConflictError(f"port {p.host_port}/{p.protocol} is already published "
                                    f"by container {f.read_text()}", hint="choose another host port")
        for p in ports:                     # a host process listening there: ports.py
            host_ports.check_free(p)
        for p in ports:
            private.write(d / f"{p.protocol}-{p.host_port}", cid)
    rules = []
    for p in ports:
        match = "" if p.host_ip == "0.0.0.0" else f"ip daddr {p.host_ip} "
        rules.append(f"{match}{p.protocol} dport {p.host_port} dnat to {ip}:{p.container_port}")
    body = "; ".join(rules)
    t = f"{_nft_table(bridge)}_{cid[:12]}"
    # the guard first (a bridge made by an older version has none), then route_localnet
    subprocess.run(["nft", "-f", "-"], check=True, text=True, input=_loopback_guard(bridge))
    Path(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet").write_text("1")
    subprocess.run(["nft", "-f", "-"], check=True, text=True, input=(
        f"table ip {t} {{\n"
        f" chain pre {{ type nat hook prerouting priority dstnat; fib daddr type local {body.replace('; ', '; fib daddr type local ')}; }}\n"
        f" chain out {{ type nat hook output priority -100; fib daddr type local {body.replace('; ', '; fib daddr type local ')}; }}\n"
        f" chain post {{ type nat hook postrouting priority srcnat; ip saddr 127.0.0.0/8 oifname \"{bridge}\" masquerade;"
        f" iifname \"{bridge}\" oifname \"{bridge}\" ct status dnat masquerade; }}\n}}\n"))


def _unpublish(cid: str, bridge: str) -> None:
    """The container's nft table, then its port claims. _publish writes the claims before it makes
    the table, and this removes them after it, so a table never exists without its claims (also
    after a crash in either): a container with no claim has no table, and no ``nft`` to run."""
    d = paths.state_root() / "network" / "ports"
    with _locked():
        mine = [f for f in (d.iterdir() if d.is_dir() else ()) if f.read_text() == cid]
        if mine:
            import subprocess
            subprocess.run(["nft", "delete", "table", "ip", f"{_nft_table(bridge)}_{cid[:12]}"],
                           capture_output=True)
        for f in mine:
            f.unlink()


def _bridge_up(ipr, bridge: str, gateway: str, prefixlen: int) -> int:
    idx = ipr.link_lookup(ifname=bridge)
    if idx:
        return idx[0]
    _nat_up(bridge, str(ipaddress.IPv4Network(f"{gateway}/{prefixlen}", strict=False)))
    ipr.link("add", ifname=bridge, kind="bridge")
    idx = ipr.link_lookup(ifname=bridge)[0]
    ipr.link("set", index=idx, mtu=DEFAULT_MTU)
    ipr.addr("add", index=idx, address=gateway, prefixlen=prefixlen)
    ipr.link("set", index=idx, state="up")
    return idx


def attach_bridge(cid: str, pid: int, *, name: str, hostname=None, ports=(),
                  subnet: str = DEFAULT_SUBNET, bridge: str = DEFAULT_BRIDGE) -> Attachment:
    """Plug the network namespace of ``pid`` into ``bridge`` with a veth pair (notebook 05).

    The in-container side is configured with pyroute2's NetNS on ``/proc/<pid>/ns/net``.
    On any failure everything created so far is undone (veth, lease, empty bridge).
    """
    from ._pyroute2 import IPRoute, NetNS

    ports = [parse_publish(p) if isinstance(p, str) else p for p in ports]   # bad input: nothing made yet
    ip, gw, plen = allocate(cid, subnet, name)
    host_if, peer_if = _veth_names(cid)
    try:
        with IPRoute() as ipr:
            br = _bridge_up(ipr, bridge, gw, plen)
            ipr.link("add", ifname=host_if, kind="veth", peer=peer_if)
            hidx = ipr.link_lookup(ifname=host_if)[0]
            pidx = ipr.link_lookup(ifname=peer_if)[0]
            ipr.link("set", index=hidx, mtu=DEFAULT_MTU)
            ipr.link("set", index=pidx, mtu=DEFAULT_MTU)
            ipr.link("set", index=hidx, master=br, state="up")
            ipr.link("set", index=pidx, net_ns_pid=pid)
        with NetNS(f"/proc/{pid}/ns/net") as ns:
            lo = ns.link_lookup(ifname="lo")[0]
            ns.link("set", index=lo, state="up")
            idx = ns.link_lookup(ifname=peer_if)[0]
            ns.link("set", index=idx, ifname="eth0")
            ns.addr("add", index=idx, address=ip, prefixlen=plen)
            ns.link("set", index=idx, state="up")
            ns.route("add", dst="0.0.0.0/0", gateway=gw)
        _publish(cid, bridge, ip, ports)
    except BaseException:
        detach_bridge(cid, bridge=bridge)
        raise
    peers = {n: a for a, n in leases_named().items()}
    return Attachment(cid, name, "bridge", ip, gw, plen, host_if, "eth0", list(ports), hostname, peers)


def detach_bridge(cid: str, *, bridge: str = DEFAULT_BRIDGE) -> None:
    """Remove the host end of the veth (the kernel drops its peer), the lease, and the bridge
    when no port is left on it. Idempotent."""
    from ._pyroute2 import IPRoute

    host_if, _ = _veth_names(cid)
    _unpublish(cid, bridge)
    from .links import _del
    with IPRoute() as ipr:
        _del(ipr, host_if)        # (gone meanwhile with its namespace: fine)
        release(cid)
        br = ipr.link_lookup(ifname=bridge)
        if br and not [l for l in ipr.get_links() if l.get("master") == br[0]] and not leases():
            ipr.link("del", index=br[0])
            _nat_down(bridge)
