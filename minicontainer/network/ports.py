"""Published ports against the host: what ``-p`` must refuse before any rule exists (issue 17 items 6
and 13), with Docker's wording ("Bind for 0.0.0.0:8080 failed: port is already allocated").

* the same host port twice in one container (``-p P:80 -p P:81``): the second DNAT rule would never
  match — refused while parsing the flags, before anything is made;
* ``-p ADDR:P:C`` where ADDR is not an address of this host: the rule could never match — refused
  while parsing too (``bind(ADDR, 0)`` asks the kernel: EADDRNOTAVAIL);
* a host process already listening on the port: our DNAT in prerouting and output would silently
  take its traffic — refused under the port-claim lock, just before the rules are written.

How we find a listener: a *bind test*. A socket of the port's protocol is bound to (host address,
port) with SO_REUSEADDR (an old connection in TIME_WAIT is not a listener, and Docker does not
refuse it either) and closed at once; the kernel answers EADDRINUSE when any socket listens there
(for 0.0.0.0: on any address of the host). Rejected: holding the port open for the container's
lifetime as docker-proxy does. It would also stop a host service from taking the port *later*, but
it needs a process that lives exactly as long as the container and owns the socket: a detached
container's monitor is a bare interpreter that closes what it inherited (waiter.py), an attached one
is the user's `run`, and a served one the server — three owners to keep right for a window the claim
file under the lock already covers among containers. The bind test leaves nothing behind; what it
cannot see is a host process binding the port after the container started (Docker with
``--userland-proxy=false`` has the same gap).
"""

from __future__ import annotations

import errno
import socket

from ..errors import ConfigError, ConflictError, from_oserror
from .records import PortMapping


def _allocated(p: PortMapping, why: str) -> ConflictError:
    return ConflictError(f"Bind for {p.host_ip}:{p.host_port} failed: port is already allocated", hint=why)


def check_unique(ports: list[PortMapping]) -> None:
    """One host port (per protocol and overlapping address) for one container mapping only."""
    seen: list[PortMapping] = []
    for p in ports:
        for q in seen:
            if (q.protocol, q.host_port) == (p.protocol, p.host_port) and \
                    (q.host_ip == p.host_ip or "0.0.0.0" in (q.host_ip, p.host_ip)):
                raise _allocated(p, f"-p {q.host_port}:{q.container_port} and -p {p.host_port}:"
                                    f"{p.container_port} publish the same host port; give each its own")
        seen.append(p)


def check_address(p: PortMapping) -> None:
    """``-p ADDR:…``: ADDR must be an address of this host (network namespace)."""
    if p.host_ip == "0.0.0.0":
        return
    import ipaddress
    if ipaddress.IPv4Address(p.host_ip).is_multicast or p.host_ip == "255.255.255.255":
        raise ConfigError(f"invalid port mapping {p.host_ip}:{p.host_port}:{p.container_port}: "
                          f"{p.host_ip} is not a unicast address", hint="publish on an address of `ip -4 addr`")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.bind((p.host_ip, 0))
    except OSError as exc:
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ConfigError(f"invalid port mapping {p.host_ip}:{p.host_port}:{p.container_port}: "
                              f"listen {p.protocol}4 {p.host_ip}:{p.host_port}: cannot assign requested "
                              f"address (the host has no address {p.host_ip})",
                              hint="publish on an address of `ip -4 addr`, or leave it out for all") from None
        raise from_oserror(exc, f"check host address {p.host_ip}") from exc


def check_free(p: PortMapping) -> None:
    """No host process may listen on the port (see the module's doc for why a bind test)."""
    kind = socket.SOCK_STREAM if p.protocol == "tcp" else socket.SOCK_DGRAM
    try:
        with socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((p.host_ip, p.host_port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise _allocated(p, f"a host process uses it (`ss -lnp 'sport = :{p.host_port}'` names it); "
                                f"choose another host port") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            check_address(p)
        raise from_oserror(exc, f"check host port {p.host_ip}:{p.host_port}/{p.protocol}") from exc
