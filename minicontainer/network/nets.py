"""User-defined networks as the engine uses them: create, remove, list, attach, detach, gc.

The record (store.py) is written only once the kernel side (links.py) and the DNS responder
(dns.py) exist, and everything made so far is undone if a step fails, so a failed ``network
create`` leaves nothing. Kernel objects are made in the network namespace the engine runs in: on
a real host that is the host's; in the two-host lab (minicontainer.netlab) the engine itself is
started inside a "host" namespace, so nothing here needs to know about the lab.
"""

from __future__ import annotations

import ipaddress
from contextlib import ExitStack

from ..errors import ConflictError
from . import dns, links, store


def create(name: str, *, driver: str = "bridge", subnet=None, gateway=None, vni=None, peers=(),
           local=None) -> dict:
    peers = list(peers)
    with store.locked():
        if driver == "overlay" and local is None and peers:
            local = links.local_address(peers)
        elif driver == "overlay" and peers:
            links.local_address(peers)              # an unreachable peer is refused all the same
        rec = store.new_record(name, driver, subnet, gateway, vni=vni, peers=peers, local=local,
                               host_subnets=links.host_subnets())
        with ExitStack() as undo:
            last = not store.all_records()
            links.create(rec)
            undo.callback(links.remove_links, rec, last)
            store.save(rec)
            undo.callback(store.remove, name)
            from ..runtime import state
            pid = dns.start(store.path(name))
            rec.update(dns_pid=pid, dns_start=state.start_time_of(pid))
            store.save(rec)
            undo.pop_all()
    return rec


def _stale(rec: dict) -> None:
    """Drop leases whose container's veth is gone (a crashed run), so they do not block rm."""
    have = links._links()
    for ip, info in store.leases(rec["name"]).items():
        if store.lease_veth(info) not in have:
            store.release(rec["name"], info.get("cid", ""))


def remove(name: str) -> list[str]:
    """Remove a network with no container attached; returns what is still left (normally [])."""
    with store.locked():
        rec = store.load(name)
        _stale(rec)
        attached = store.leases(name)
        if attached:
            names = ", ".join(sorted(i.get("name") or i.get("cid", "")[:12] for i in attached.values()))
            raise ConflictError(f"network {name!r} has containers attached: {names}",
                                hint="stop or remove them first (`minicontainer rm -f NAME`)")
        dns.stop(rec.get("dns_pid"), rec.get("dns_start"))
        last = len(store.all_records()) == 1
        links.remove_links(rec, last)
        store.remove(name)
        return links.leftovers(rec)


def inspect(name: str) -> dict:
    rec = store.load(name)
    p = store.plan(rec)
    out = dict(rec)
    out["containers"] = {info.get("name") or info["cid"][:12]: {"ip": ip, "mac": store.mac_of(ip), "id": info["cid"]}
                         for ip, info in sorted(store.leases(name).items())}
    if rec["driver"] == "overlay":
        out["hosts"] = [{"index": i, "underlay": m, "gateway": gw, "range": f"{a[0]}-{a[-1]}" if a else ""}
                        for i, (m, gw, a) in p.items()]
    return out


def ls() -> list[dict]:
    return store.all_records()


def attach(cid: str, pid: int, *, name: str, net: str, hostname=None):
    """Lease an address of this host's slot and plug the container in; returns an Attachment
    whose resolv.conf points at the network's DNS responder."""
    from .records import Attachment
    with store.locked():
        rec = store.load(net)
        _stale(rec)
        ip = store.lease(rec, cid, name, hostname)
    try:
        host_if, eth = links.attach(rec, cid, pid, ip)
    except BaseException:
        store.release(net, cid)
        raise
    plen = ipaddress.IPv4Network(rec["subnet"]).prefixlen
    return Attachment(cid, name, net, ip, rec["gateway"], plen, host_if, eth, [], hostname, {},
                      nameserver=rec["gateway"])


def detach(cid: str) -> list[str]:
    """Unplug ``cid`` from every user-defined network it is on. Idempotent."""
    held = store.network_of(cid)
    links.detach(cid)
    for rec, ip in held:
        links.detach_name(store.lease_veth(store.leases(rec["name"]).get(ip, {"cid": cid})))
        store.release(rec["name"], cid)
    return [rec["name"] for rec, _ in held]


def _running(ref: str) -> dict:
    from ..errors import ConflictError as _Conflict
    from ..runtime import state
    c = state.find(ref)
    if c.get("status") not in ("running", "paused") or not state.alive(c.get("pid"), c.get("start_time")):
        raise _Conflict(f"container {c['name']} is not running", hint="start it first")
    if (c.get("config") or {}).get("network") in ("host", "none") or \
            str((c.get("config") or {}).get("network")).startswith("container:"):
        raise _Conflict(f"container {c['name']} has no network namespace of its own to plug into",
                        hint="only containers on bridge or user-defined networks can be connected")
    return c


def connect(net: str, ref: str) -> str:
    """``network connect NET CONTAINER``: one more interface (ethN) in a running container, on
    ``net``, found by name on that network's DNS. Returns the address. (Its resolv.conf keeps
    the first network's responder, which answers for that network only.)"""
    c = _running(ref)
    with store.locked():
        rec = store.load(net)
        _stale(rec)
        if any(i.get("cid") == c["id"] for i in store.leases(net).values()):
            raise ConflictError(f"container {c['name']} is already on network {net!r}")
        veth = store.veth_names(c["id"], rec["id"])[0]
        ip = store.lease(rec, c["id"], c["name"], None, veth)
    try:
        links.attach(rec, c["id"], c["pid"], ip, extra=True)
    except BaseException:
        store.release(net, c["id"])
        raise
    return ip


def disconnect(net: str, ref: str) -> None:
    from ..errors import NotFoundError
    from ..runtime import state
    c = state.find(ref)
    with store.locked():
        store.load(net)
        held = {ip: i for ip, i in store.leases(net).items() if i.get("cid") == c["id"]}
        if not held:
            raise NotFoundError(f"container {c['name']} is not on network {net!r}")
        for ip, info in held.items():
            links.detach_name(store.lease_veth(info))
        store.release(net, c["id"])


def gc() -> list[str]:
    """Leases whose veth is gone, our veths without a lease, and responders that died (restarted:
    a network outlives crashes, as Docker's do)."""
    removed = []
    if not store.nets_dir().is_dir():
        return removed
    from ..runtime import state
    with store.locked():
        recs = store.all_records()
        for rec in recs:
            before = set(store.leases(rec["name"]))
            _stale(rec)
            removed += [f"lease {ip} on {rec['name']}" for ip in before - set(store.leases(rec["name"]))]
        live = {store.lease_veth(i) for r in recs for i in store.leases(r["name"]).values()}
        for n in sorted(links.our_veths() - live):
            links.detach_name(n)
            removed.append(f"veth {n}")
        for rec in recs:
            if not state.alive(rec.get("dns_pid"), rec.get("dns_start")) and links.link_exists(rec["bridge"]):
                pid = dns.start(store.path(rec["name"]))
                rec.update(dns_pid=pid, dns_start=state.start_time_of(pid))
                store.save(rec)
                removed.append(f"dead dns responder of {rec['name']} (restarted)")
    return removed
