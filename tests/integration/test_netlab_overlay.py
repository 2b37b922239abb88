"""Two simulated hosts (minicontainer.netlab): containers on one overlay reach each other by name
across the underlay; other networks stay out; removing a network leaves nothing in either host.

Everything the engines make lives in the two hosts' network namespaces, which the leak check of
conftest.py cannot see: the tests look inside with ``Host.leftovers`` (links, FDB entries, nft
tables) after removing the networks; the lab's own objects (the underlay veth, the host processes)
are covered by the leak check.
"""

from __future__ import annotations

import json

import pytest

from minicontainer.netlab import Lab

OV1, OV2 = "10.231.60.0/24", "10.231.61.0/24"


def ok(p):
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.fixture
def lab():
    lab = Lab(2)
    try:
        yield lab
    finally:
        left = lab.close()
        assert left == {"host0": [], "host1": []}


def overlay(h, other, name, subnet, vni):
    return h.mc("network", "create", "--driver", "overlay", "--subnet", subnet, "--vni", str(vni),
                "--peer", other.ip, name)


def test_overlay_across_two_hosts(lab):
    a, b = lab.hosts
    for h, o in ((a, b), (b, a)):
        ok(overlay(h, o, "ov1", OV1, 4242))
        ok(overlay(h, o, "ov2", OV2, 4243))
    ov_a = json.loads(ok(a.mc("network", "inspect", "ov1")))[0]
    # host index from the sorted underlay addresses: a is 0, b is 1; their slots do not overlap
    assert [x["range"] for x in ov_a["hosts"]] == ["10.231.60.2-10.231.60.127", "10.231.60.129-10.231.60.254"]
    fdb = a.sh("bridge", "fdb", "show", "dev", ov_a["vxlan"]).stdout
    assert f"00:00:00:00:00:00 dst {b.ip} self permanent" in fdb
    assert f"02:42:0a:e7:3c:81 dst {b.ip} self permanent" in fdb   # 10.231.60.129, b's first address
    details = a.sh("ip", "-d", "link", "show", ov_a["vxlan"]).stdout
    assert "vxlan id 4242" in details and "dstport 4789" in details and "nolearning" in details
    assert "proxy" in details and "mtu 1450" in details

    ok(b.mc("run", "-d", "--name", "bweb", "--network", "ov1", "busybox", "sh", "-c",
            "mkdir /www && echo hello-from-b > /www/index.html && exec httpd -f -p 80 -h /www"))
    ok(b.mc("run", "-d", "--name", "bother", "--network", "ov2", "busybox", "sleep", "60"))
    bweb = json.loads(ok(b.mc("network", "inspect", "ov1")))[0]["containers"]["bweb"]
    bother = json.loads(ok(b.mc("network", "inspect", "ov2")))[0]["containers"]["bother"]
    assert bweb["ip"] == "10.231.60.129" and bweb["mac"] == "02:42:0a:e7:3c:81"

    out = ok(a.mc("run", "--rm", "--name", "aclient", "--network", "ov1", "busybox", "sh", "-c",
                  "cat /sys/class/net/eth0/mtu; ping -c2 -W3 bweb | grep -c 'bytes from 10.231.60.129'; "
                  "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 bweb 80 | tail -1"))
    # (nc, not busybox wget -T: this busybox's wget dies of SIGSEGV with a timeout option)
    assert out == "1450\n2\nhello-from-b\n"
    # and back: b's container finds a's by name (a's responder, asked by b's)
    ok(a.mc("run", "-d", "--name", "aweb", "--network", "ov1", "busybox", "sleep", "60"))
    out = ok(b.mc("run", "--rm", "--network", "ov1", "busybox", "sh", "-c", "ping -c1 -W3 aweb | head -1"))
    assert out.startswith("PING aweb (10.231.60.2)")

    # another network: neither its address nor its name is reachable from ov1, on either host
    out = ok(a.mc("run", "--rm", "--network", "ov1", "busybox", "sh", "-c",
                  f"ping -c1 -W2 {bother['ip']} >/dev/null || echo unreachable; "
                  "nslookup bother >/dev/null 2>&1 || echo unknown"))
    assert out == "unreachable\nunknown\n"
    out = ok(b.mc("run", "--rm", "--network", "ov2", "busybox", "sh", "-c",
                  f"ping -c1 -W2 {bweb['ip']} >/dev/null || echo unreachable"))
    assert out == "unreachable\n"

    p = b.mc("network", "rm", "ov1")
    assert p.returncode == 125 and "containers attached: bweb" in p.stderr and p.stderr.count("\n") == 1
    ok(a.mc("rm", "-f", "aweb"))
    ok(b.mc("rm", "-f", "bweb", "bother"))
    for h in (a, b):
        ok(h.mc("network", "rm", "ov1", "ov2"))
        assert h.leftovers() == [], h.name


@pytest.mark.parametrize("args, says", [
    (["--subnet", "10.231.60.128/25", "--vni", "4300", "--peer", "PEER"], "overlaps 10.231.60.0/24 of network ov1"),
    (["--subnet", "10.231.62.0/24", "--vni", "4242", "--peer", "PEER"], "VNI 4242 is already used by network 'ov1'"),
    (["--subnet", "10.231.62.0/24", "--peer", "10.231.99.9"], "peer 10.231.99.9 is not reachable"),
    (["--subnet", "10.231.62.0/24", "--peer", "300.1.1.1"], "invalid peer address"),
    (["--subnet", "10.231.62.0/24", "--peer", "SELF"], "is an address of this host"),
    (["--subnet", "10.231.62.0/24", "--vni", "17", "--peer", "PEER"], "invalid VNI 17"),
    (["--subnet", "10.231.250.0/25", "--peer", "PEER"], "overlaps 10.231.250.0/24 of host interface ul0"),
    (["--subnet", "10.232.0.0/16", "--peer", "PEER"], "too large"),
])
def test_bad_overlay_input_is_one_line_and_leaves_nothing(lab, args, says):
    a, b = lab.hosts
    ok(overlay(a, b, "ov1", OV1, 4242))
    before = a.leftovers()
    args = [{"PEER": b.ip, "SELF": a.ip}.get(x, x) for x in args]
    p = a.mc("network", "create", "--driver", "overlay", *args, "ov3")
    assert p.returncode == 125, p.stderr
    assert says in p.stderr and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert ok(a.mc("network", "ls", "-q")) == "ov1\n"
    assert a.leftovers() == before
