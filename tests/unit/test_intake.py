"""minicontainer.intake: a request read as its bytes come (never blocking), refused when oversized
or not ours, and the peer check on a caller that is ourselves (the server's twin)."""

from __future__ import annotations

import os
import socket

import pytest

from minicontainer import commands, fdpass, intake


@pytest.fixture
def pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    yield a, b
    a.close()


def test_a_request_in_pieces_is_read_without_blocking(pair):
    client, server = pair
    req = commands.request(b"run", ["ps"], {"A": "1"})
    p = intake.Pending(server, None)
    assert p.read() is None                                   # nothing yet: no wait
    fdpass.send(client, req[:5], [0, 1, 2])
    assert p.read() is None
    client.sendall(req[5:])
    body = p.read()
    assert commands.parse_request(body)[3] == ["ps"] and len(p.fds) == 3
    p.close()


@pytest.mark.parametrize("head, words", [
    (commands.MAGIC + (intake.MAX_REQUEST + 1).to_bytes(4, "big"), "over the server's limit"),
    (b"GET / HTTP/1.0\r\n", "not a minicontainer request")])
def test_oversized_or_foreign_requests_are_refused_at_their_header(pair, head, words):
    client, server = pair
    client.sendall(head)
    p = intake.Pending(server, None)
    with pytest.raises(intake.Refused, match=words):
        p.read()
    p.close()


def test_a_client_that_hangs_up_mid_request(pair):
    client, server = pair
    client.sendall(commands.MAGIC + (100).to_bytes(4, "big") + b"abc")
    client.shutdown(socket.SHUT_WR)
    p = intake.Pending(server, None)
    with pytest.raises(intake.Refused, match="hung up"):
        p.read()
    p.close()


def test_the_server_serves_its_twin(pair):
    """A socketpair's peer is this very process: same everything."""
    assert intake.differs(pair[1], intake.server_facts()) is None


def test_a_caller_with_other_facts_is_not_served(pair):
    mine = dict(intake.server_facts(), mnt="mnt:[1]")
    assert intake.differs(pair[1], mine) == "the caller's mnt differs from the server's"
