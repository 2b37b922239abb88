"""Published ports against the host (network/ports.py, issue 17 items 6 and 13), with sockets of our
own on 127.0.0.1: no root, no rule, nothing left."""

from __future__ import annotations

import socket
import subprocess

import pytest

from minicontainer.errors import ConfigError, ConflictError
from minicontainer.network import PortMapping, ports
from minicontainer.runtime.config import ContainerConfig


def test_same_host_port_twice_is_refused():
    with pytest.raises(ConflictError, match="port is already allocated"):
        ports.check_unique([PortMapping(8080, 80), PortMapping(8080, 81)])


@pytest.mark.parametrize("a,b", [(PortMapping(8080, 80, "tcp", "127.0.0.1"), PortMapping(8080, 81)),
                                 (PortMapping(8080, 80), PortMapping(8080, 81, "tcp", "127.0.0.1"))])
def test_all_addresses_overlap_one(a, b):
    with pytest.raises(ConflictError):
        ports.check_unique([a, b])


def test_other_protocol_or_address_is_another_port():
    ports.check_unique([PortMapping(8080, 80, "tcp"), PortMapping(8080, 80, "udp")])
    ports.check_unique([PortMapping(8080, 80, "tcp", "127.0.0.1"), PortMapping(8080, 81, "tcp", "127.0.0.2")])


def test_run_flags_refuse_the_same_port_twice_before_anything_exists():
    with pytest.raises(ConflictError, match="already allocated"):
        ContainerConfig(image="busybox", network="bridge", ports=["9090:80", "9090:81"]).validate()


def test_an_address_the_host_lacks_is_refused():
    addrs = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    if " 192.0.2.77/" in addrs:
        pytest.skip("this host has 192.0.2.77 (TEST-NET-1)")
    with pytest.raises(ConfigError, match="cannot assign requested address"):
        ports.check_address(PortMapping(8080, 80, "tcp", "192.0.2.77"))
    ports.check_address(PortMapping(8080, 80, "tcp", "127.0.0.1"))
    with pytest.raises(ConfigError, match="unicast"):
        ports.check_address(PortMapping(8080, 80, "tcp", "224.0.0.1"))


@pytest.mark.parametrize("proto,kind", [("tcp", socket.SOCK_STREAM), ("udp", socket.SOCK_DGRAM)])
@pytest.mark.parametrize("published", ["0.0.0.0", "127.0.0.1"])
def test_a_port_a_host_process_holds_is_refused(proto, kind, published):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConflictError, match=f"Bind for {published}:{port} failed: port is already allocated"):
            ports.check_free(PortMapping(port, 80, proto, published))
    ports.check_free(PortMapping(port, 80, proto, published))      # closed: free again
