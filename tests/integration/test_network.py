"""Integration tests for minicontainer.network (notebook 05): real veths and a bridge."""

import subprocess

import pytest

from minicontainer import network
from minicontainer.busybox import find_busybox


@pytest.fixture
def netenv(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICONTAINER_STATE_ROOT", str(tmp_path / "state"))
    return {"subnet": "10.231.7.0/24", "bridge": "mcnbr0"}


def _child():
    return subprocess.Popen(["unshare", "-n", "sleep", "60"])


def test_two_containers_ping_through_bridge(netenv):
    a, b = _child(), _child()
    try:
        import time
        time.sleep(0.2)
        network.attach_bridge("mcnA1", a.pid, name="a", **netenv)
        tb = network.attach_bridge("mcnB1", b.pid, name="b", **netenv)
        try:
            r = subprocess.run(["nsenter", "-t", str(a.pid), "-n", str(find_busybox()), "ping", "-c1", "-W2", tb.ip],
                               capture_output=True, text=True)
            assert r.returncode == 0, r.stdout + r.stderr
        finally:
            network.detach_bridge("mcnA1", bridge=netenv["bridge"])
            network.detach_bridge("mcnB1", bridge=netenv["bridge"])
        out = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
        assert "mcnbr0" not in out and "mcvmcn" not in out
        assert network.leases() == {}
    finally:
        for p in (a, b):
            p.kill()
            p.wait()


def test_second_container_sees_first_by_name_and_none_has_only_lo(netenv):
    a, b, c = _child(), _child(), _child()
    try:
        import time
        time.sleep(0.2)
        network.attach_bridge("mcnA2", a.pid, name="alpha", **netenv)
        tb = network.attach_bridge("mcnB2", b.pid, name="beta", **netenv)
        try:
            assert "\talpha" in tb.hosts_file()
            alpha_ip = tb.peers["alpha"]
            r = subprocess.run(["nsenter", "-t", str(b.pid), "-n", str(find_busybox()), "ping", "-c1",
                                "-W2", alpha_ip], capture_output=True, text=True)
            assert r.returncode == 0, r.stdout + r.stderr
        finally:
            network.detach_bridge("mcnA2", bridge=netenv["bridge"])
            network.detach_bridge("mcnB2", bridge=netenv["bridge"])
        att = network.attach("mcnC2", c.pid, name="gamma", mode="none")
        links = subprocess.run(["nsenter", "-t", str(c.pid), "-n", "ip", "-br", "link"],
                               capture_output=True, text=True).stdout.split()
        assert att.ip is None and links[0] == "lo" and "eth0" not in links
    finally:
        for p in (a, b, c):
            p.kill()
            p.wait()


SERVER = ("import socket; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
          "s.bind(('0.0.0.0', 7777)); s.listen(); print('ready', flush=True); c, a = s.accept(); "
          "print(a[0], flush=True)")


def test_container_reaches_simulated_upstream_seen_from_host_address(netenv):
    """The upstream "internet" is a namespace of ours (198.18.0.0/15, benchmark range)."""
    c, up = _child(), _child()
    try:
        import time
        time.sleep(0.2)
        subprocess.run(["ip", "link", "add", "mcnuh0", "type", "veth", "peer", "name", "mcnup0"], check=True)
        subprocess.run(["ip", "link", "set", "mcnup0", "netns", str(up.pid)], check=True)
        subprocess.run(["ip", "addr", "add", "198.18.7.1/24", "dev", "mcnuh0"], check=True)
        subprocess.run(["ip", "link", "set", "mcnuh0", "up"], check=True)
        ns = ["nsenter", "-t", str(up.pid), "-n"]
        subprocess.run(ns + ["ip", "addr", "add", "198.18.7.2/24", "dev", "mcnup0"], check=True)
        subprocess.run(ns + ["ip", "link", "set", "mcnup0", "up"], check=True)
        srv = subprocess.Popen(ns + ["python3", "-c", SERVER], stdout=subprocess.PIPE, text=True)
        try:
            assert srv.stdout.readline().strip() == "ready"
            network.attach_bridge("mcnN1", c.pid, name="n1", **netenv)
            try:
                r = subprocess.run(["nsenter", "-t", str(c.pid), "-n", str(find_busybox()), "nc", "-w", "2",
                                    "198.18.7.2", "7777"], input="hi\n", capture_output=True, text=True,
                                   timeout=10)
                assert srv.wait(timeout=5) == 0, r.stderr
                assert srv.stdout.readline().strip() == "198.18.7.1"   # the host's address, not 10.231.7.x
            finally:
                network.detach_bridge("mcnN1", bridge=netenv["bridge"])
        finally:
            srv.kill()
            srv.wait()
        assert "minicontainer_mcnbr0" not in subprocess.run(["nft", "list", "tables"], capture_output=True,
                                                             text=True).stdout
    finally:
        subprocess.run(["ip", "link", "del", "mcnuh0"], capture_output=True)
        for p in (c, up):
            p.kill()
            p.wait()


def test_published_port_answers_on_localhost_and_from_other_namespace(netenv, tmp_path):
    web, other = _child(), _child()
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("hello mcn\n")
    bb = str(find_busybox())
    try:
        import time
        time.sleep(0.2)
        network.attach_bridge("mcnW1", web.pid, name="web", ports=["18080:80"], **netenv)
        httpd = subprocess.Popen(["nsenter", "-t", str(web.pid), "-n", bb, "httpd", "-f", "-p", "80",
                                  "-h", str(tmp_path / "www")])
        try:
            with pytest.raises(network.ConflictError, match="already published"):
                network.attach_bridge("mcnW2", other.pid, name="web2", ports=["18080:80"], **netenv)
            assert "mcnW2" not in network.leases().values()
            time.sleep(0.3)
            r = subprocess.run([bb, "wget", "-q", "-O", "-", "http://127.0.0.1:18080/"],
                               capture_output=True, text=True, timeout=10)
            assert r.stdout == "hello mcn\n", r.stderr
            # another namespace reaches the host through the bridge's gateway address
            gw = network.attach_bridge("mcnW3", other.pid, name="client", **netenv).gateway
            r = subprocess.run(["nsenter", "-t", str(other.pid), "-n", bb, "wget", "-q", "-O", "-",
                                f"http://{gw}:18080/"], capture_output=True, text=True, timeout=10)
            assert r.stdout == "hello mcn\n", r.stderr
        finally:
            httpd.kill()
            httpd.wait()
            for cid in ("mcnW1", "mcnW2", "mcnW3"):
                network.detach_bridge(cid, bridge=netenv["bridge"])
        assert "mcnbr0" not in subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    finally:
        for p in (web, other):
            p.kill()
            p.wait()


def test_gc_removes_leftovers_of_a_crashed_run(netenv):
    c = _child()
    try:
        import time
        time.sleep(0.2)
        network.attach_bridge("mcnG1", c.pid, name="g", ports=["18081:80"], **netenv)
    finally:
        c.kill()
        c.wait()   # the netns dies with its last process: the veth goes, lease/bridge/rules stay
    time.sleep(0.2)
    removed = network.gc(bridge=netenv["bridge"])
    assert any(r.startswith("lease") for r in removed) and "bridge mcnbr0" in removed
    assert network.leases() == {}
    assert "mcnbr0" not in subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert "mcnbr0" not in subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    assert network.gc(bridge=netenv["bridge"]) == []
