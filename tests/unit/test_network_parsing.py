"""Unit tests for minicontainer.network's pure parts (notebook 05)."""

import json
import threading

import pytest

from minicontainer import network
from minicontainer.errors import ConfigError, ConflictError


@pytest.fixture(autouse=True)
def private_state(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICONTAINER_STATE_ROOT", str(tmp_path / "state"))


def test_parse_publish_forms():
    assert network.parse_publish("8080:80") == network.PortMapping(8080, 80, "tcp", "0.0.0.0")
    assert network.parse_publish("127.0.0.1:8080:80/udp") == network.PortMapping(8080, 80, "udp", "127.0.0.1")


@pytest.mark.parametrize("spec,msg", [("0:80", "out of range"), ("8080:70000", "out of range"),
                                      ("8080", "expected"), ("8080:80/sctp", "protocol"),
                                      ("999.1.1.1:80:80", "bad host address")])
def test_parse_publish_rejects(spec, msg):
    with pytest.raises(ConfigError, match=msg):
        network.parse_publish(spec)


def test_parse_mode():
    assert network.parse_mode("bridge").kind == "bridge"
    assert network.parse_mode("none").kind == "none"
    assert network.parse_mode("container:web") == network.Mode("container", "web")
    for bad in ("bogus", "container:"):
        with pytest.raises(ConfigError, match="unknown network mode"):
            network.parse_mode(bad)


def test_leases_allocate_release_and_exhaust():
    ip, gw, plen = network.allocate("a", "10.99.0.0/30")   # hosts .1 (gateway) and .2
    assert (ip, gw, plen) == ("10.99.0.2", "10.99.0.1", 30)
    with pytest.raises(ConflictError, match="exhausted"):
        network.allocate("b", "10.99.0.0/30")
    assert network.leases() == {"10.99.0.2": "a"}
    assert network.release("a") == ["10.99.0.2"]
    assert network.release("a") == []
    assert network.leases() == {}


def test_leases_concurrent_are_distinct():
    got = []
    threads = [threading.Thread(target=lambda i=i: got.append(network.allocate(f"c{i}", "10.99.0.0/24")[0]))
               for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 20


def test_attachment_roundtrip_and_files():
    a = network.Attachment("cid1", "web", ip="10.88.0.2", gateway="10.88.0.1", prefixlen=24,
                           ports=[network.parse_publish("8080:80")], peers={"db": "10.88.0.3"})
    b = network.Attachment.from_dict(json.loads(json.dumps(a.to_dict())))
    assert b == a
    hosts = a.hosts_file()
    assert "10.88.0.2\tweb" in hosts and "10.88.0.3\tdb" in hosts and "localhost" in hosts
    assert "nameserver" not in a.resolv_conf()
