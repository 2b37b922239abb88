"""Notebook 10's build exercises fail for the plausible wrong answers (see test_build_wrong.py).

A file of its own so that the notebooks written in parallel do not all edit one list. Each wrong
answer runs in the checker's real two-host lab and must come back "failed", with a message that
says what the network answered.
"""

import os
import subprocess

import pytest

from minicontainer.course import evaluate

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="exercise checks touch the kernel: need root")


def _in(ns, *cmd):
    subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True, capture_output=True)


def _fdb_only(host, peer_underlay, ip, mac):
    """10.2 without the neighbour entry: with proxy on, vx0 answers no ARP for the peer."""
    _in(host, "bridge", "fdb", "append", mac, "dev", "vx0", "dst", peer_underlay)


def _neigh_only(host, peer_underlay, ip, mac):
    """10.2 without the FDB entry: the frame for the peer's MAC has nowhere to go."""
    _in(host, "ip", "neigh", "add", ip, "lladdr", mac, "dev", "vx0", "nud", "permanent")


def _docker_default(host, container):
    """10.3 with Docker's 1450, whatever the underlay."""
    _in(container, "ip", "link", "set", "eth0", "mtu", "1450")


def _too_small(host, container):
    """10.3 with a safe-looking but too small MTU (the VXLAN headers counted twice)."""
    mtu = int(subprocess.run(["ip", "netns", "exec", host, "cat", "/sys/class/net/ul0/mtu"],
                             check=True, capture_output=True, text=True).stdout)
    _in(container, "ip", "link", "set", "eth0", "mtu", str(mtu - 100))


@pytest.mark.parametrize("ex_id, wrong, says", [
    ("10.2", _fdb_only, "neighbour table"),
    ("10.2", _neigh_only, "no FDB entry"),
    ("10.3", _docker_default, "lost on the way"),
    ("10.3", _too_small, "too small"),
], ids=lambda v: getattr(v, "__name__", v) if callable(v) else v)
def test_wrong_mechanism_fails(ex_id, wrong, says):
    result = evaluate(ex_id, wrong)
    assert result.status == "failed", result
    assert says in result.message and "\n" not in result.message, result.message
