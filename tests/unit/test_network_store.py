"""User-defined networks without the kernel: validation, address plans, MACs, leases, DNS messages."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest

from minicontainer.errors import ConfigError, ConflictError, NotFoundError
from minicontainer.network import dns, parse_mode, store


@pytest.fixture(autouse=True)
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICONTAINER_STATE_ROOT", str(tmp_path / "state"))
    return tmp_path


def overlay(name="ov", subnet="10.231.60.0/24", local="192.168.56.11", peers=("192.168.56.12",), **kw):
    return store.new_record(name, "overlay", subnet, None, local=local, peers=list(peers), **kw)


def test_overlay_slots_never_overlap_and_each_host_computes_the_same_plan():
    a = overlay(local="192.168.56.11", peers=["192.168.56.12", "192.168.56.13"])
    b = overlay(local="192.168.56.13", peers=["192.168.56.11", "192.168.56.12"])
    assert a["members"] == b["members"] and (a["host_index"], b["host_index"]) == (0, 2)
    pa, pb = store.plan(a), store.plan(b)
    assert pa == pb
    seen = set()
    for _, gw, addrs in pa.values():
        for x in [gw] + addrs:
            assert x not in seen and ipaddress.IPv4Address(x) in ipaddress.IPv4Network("10.231.60.0/24")
            seen.add(x)
    assert "10.231.60.0" not in seen and "10.231.60.255" not in seen
    assert a["gateway"] == "10.231.60.1" and b["gateway"] == pa[2][1] == "10.231.60.128"


def test_link_names_fit_ifnamsiz_whatever_the_network_name():
    rec = store.new_record("n" * 63, "bridge", "10.231.40.0/24", None)
    assert len(rec["bridge"]) <= 15 and rec["bridge"].startswith("mcbr-")
    assert all(len(n) <= 15 for n in store.veth_names("f" * 64))
    assert "vxlan" not in rec and len(overlay()["vxlan"]) <= 15


def test_mac_is_derived_from_the_address():
    assert store.mac_of("10.231.60.129") == "02:42:0a:e7:3c:81"


def test_overlap_vni_and_name_conflicts():
    store.save(overlay(vni=4242))
    with pytest.raises(ConflictError, match="overlaps 10.231.60.0/24 of network ov"):
        overlay("o2", subnet="10.231.60.0/25")
    with pytest.raises(ConflictError, match="VNI 4242 is already used"):
        overlay("o2", subnet="10.231.61.0/24", vni=4242)
    with pytest.raises(ConflictError, match="already exists"):
        overlay("ov", subnet="10.231.61.0/24")
    assert overlay("o2", subnet="10.231.61.0/24")["vni"] == 4096
    with pytest.raises(ConflictError, match="of host interface eth9"):
        store.new_record("b", "bridge", "10.0.5.0/24", None, host_subnets=[("eth9", "10.0.5.7/16")])


@pytest.mark.parametrize("kw, says", [
    (dict(vni=17), "invalid VNI"), (dict(peers=["224.0.0.1"]), "invalid peer"),
    (dict(peers=["192.168.56.11"]), "own address"), (dict(subnet="10.231.0.0/16"), "too large"),
    (dict(local=None), "underlay address"), (dict(subnet="10.231.60.0/29", peers=[f"192.168.56.{i}" for i in range(12, 16)]),
                                             "too small for 5 hosts"),
])
def test_bad_overlay_requests(kw, says):
    with pytest.raises((ConfigError, ConflictError), match=says):
        overlay(**kw)


def test_leases_stay_in_the_hosts_slot_and_names_are_unique():
    rec = overlay(local="192.168.56.12", peers=["192.168.56.11"])
    store.save(rec)
    assert store.lease(rec, "c1" * 32, "one", None) == "10.231.60.129"
    assert store.lease(rec, "c2" * 32, "two", None) == "10.231.60.130"
    with pytest.raises(ConflictError, match="already on network"):
        store.lease(rec, "c3" * 32, "one", None)
    assert store.release("ov", "c1" * 32) == ["10.231.60.129"]
    assert [r["name"] for r, _ in store.network_of("c2" * 32)] == ["ov"]


def test_records_are_private_and_parse_mode_knows_them(root):
    store.save(store.new_record("mine", "bridge", "10.231.40.0/24", None))
    d = root / "state" / "network" / "nets" / "mine"
    assert d.stat().st_mode & 0o777 == 0o700 and (d / "network.json").stat().st_mode & 0o777 == 0o600
    assert parse_mode("mine").kind == "network"
    with pytest.raises(ConfigError, match="unknown network mode"):
        parse_mode("theirs")
    with pytest.raises(NotFoundError):
        store.load("theirs")


def _query(name: str, qtype: int = 1, rd: bool = True) -> bytes:
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack("!HH", qtype, 1)
    return struct.pack("!HHHHHH", 0x1234, 0x0100 if rd else 0, 1, 0, 0, 0) + q


def test_dns_answers_from_the_lease_files(root):
    rec = store.new_record("mine", "bridge", "10.231.40.0/24", None)
    store.save(rec)
    store.lease(rec, "c1" * 32, "web", "webhost")
    r = dns.Responder(store.path("mine"), rec)
    out = r.handle(_query("WEB"))
    assert out[:2] == b"\x12\x34" and struct.unpack("!H", out[2:4])[0] & 0xF == 0
    assert dns.answers(out) == ["10.231.40.2"]
    assert dns.answers(r.handle(_query("webhost.mine"))) == ["10.231.40.2"]
    aaaa = r.handle(_query("web", 28))
    assert struct.unpack("!HH", aaaa[2:4] + aaaa[6:8]) == (0x8500, 0)      # NOERROR, no answer
    nx = r.handle(_query("db"))
    assert struct.unpack("!H", nx[2:4])[0] & 0xF == 3
    assert r.handle(b"\x00\x01") is None
    assert socket.inet_aton("10.231.40.2") in out


def test_network_verbs_parse():
    from minicontainer.cli import parser_for
    a = parser_for(None).parse_args(["network", "create", "--driver", "overlay", "--subnet", "10.231.60.0/24",
                                     "--peer", "192.168.56.12", "--peer", "192.168.56.13", "--vni", "5000", "ov"])
    assert (a.driver, a.peer, a.vni, a.name) == ("overlay", ["192.168.56.12", "192.168.56.13"], "5000", "ov")
    assert a.func.__name__ == "_network_create"
    assert parser_for(None).parse_args(["network", "rm", "a", "b"]).name == ["a", "b"]
    assert parser_for("network").parse_args(["network", "ls", "-q"]).quiet
