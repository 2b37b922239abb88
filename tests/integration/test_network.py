"""Integration tests for minicontainer.network (notebook 05): real veths and a bridge."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from minicontainer import network, paths
from minicontainer.errors import ConfigError, ConflictError, NotFoundError
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


def _host_port(preferred: int = 8080) -> int:
    """The issue's 8080 when nothing listens there (nor is published by us), else a free high port."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", preferred))
            if preferred not in _published_ports():
                return preferred
        except OSError:
            pass
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _published_ports() -> set[int]:
    """Host ports DNAT'ed by any nft table (another user's minicontainer, docker…): not free for us."""
    out = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    return {int(m) for m in re.findall(r"dport (\d+)", out)}


def _ours_left(bridge: str, *cids: str) -> list[str]:
    """Every object of ours still there: the bridge, veths of cids, nft tables, leases, port claims."""
    links = os.listdir("/sys/class/net")
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    ports = paths.state_root() / "network" / "ports"
    return ([n for n in links if n == bridge or n in {network._veth_names(c)[0] for c in cids}]
            + [t for t in tables.splitlines() if network._nft_table(bridge) in t]
            + [f"lease {ip}" for ip in network.leases()]
            + ([f"port claim {f.name}" for f in ports.iterdir()] if ports.is_dir() else []))


def test_published_port_answers_on_localhost_and_from_other_namespace(netenv, tmp_path):
    port = _host_port()
    web, other = _child(), _child()
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("hello mcn\n")
    bb = str(find_busybox())
    try:
        import time
        time.sleep(0.2)
        network.attach_bridge("mcnW1", web.pid, name="web", ports=[f"{port}:80"], **netenv)
        httpd = subprocess.Popen(["nsenter", "-t", str(web.pid), "-n", bb, "httpd", "-f", "-p", "80",
                                  "-h", str(tmp_path / "www")])
        try:
            with pytest.raises(network.ConflictError, match="already published"):
                network.attach_bridge("mcnW2", other.pid, name="web2", ports=[f"{port}:80"], **netenv)
            assert "mcnW2" not in network.leases().values()
            assert network._veth_names("mcnW2")[0] not in os.listdir("/sys/class/net")
            time.sleep(0.3)
            r = subprocess.run([bb, "wget", "-q", "-O", "-", f"http://127.0.0.1:{port}/"],
                               capture_output=True, text=True, timeout=10)
            assert r.stdout == "hello mcn\n", r.stderr
            # another namespace reaches the host through the bridge's gateway address
            gw = network.attach_bridge("mcnW3", other.pid, name="client", **netenv).gateway
            r = subprocess.run(["nsenter", "-t", str(other.pid), "-n", bb, "wget", "-q", "-O", "-",
                                f"http://{gw}:{port}/"], capture_output=True, text=True, timeout=10)
            assert r.stdout == "hello mcn\n", r.stderr
        finally:
            httpd.kill()
            httpd.wait()
            for cid in ("mcnW1", "mcnW2", "mcnW3"):
                network.detach_bridge(cid, bridge=netenv["bridge"])
        assert _ours_left(netenv["bridge"], "mcnW1", "mcnW2", "mcnW3") == []
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


# --- bad input at the network layer: a clear error, nothing made -----------------------------------

@pytest.mark.parametrize("kwargs, error, words", [
    ({"ports": ["70000:80"]}, ConfigError, "host port 70000 out of range"),
    ({"ports": ["8080:0"]}, ConfigError, "container port 0 out of range"),
    ({"ports": ["8080:80/sctp"]}, ConfigError, "unknown protocol 'sctp'"),
    ({"mode": "bridged"}, ConfigError, "unknown network mode 'bridged'"),
    ({"mode": "container:"}, ConfigError, "unknown network mode 'container:'"),
])
def test_bad_network_input_is_a_clear_error_and_leaves_nothing(netenv, kwargs, error, words):
    c = _child()
    try:
        time.sleep(0.2)
        with pytest.raises(error, match=re.escape(words)) as exc:
            if "mode" in kwargs:
                network.attach("mcnX1", c.pid, name="x", **kwargs)
            else:
                network.attach_bridge("mcnX1", c.pid, name="x", **kwargs, **netenv)
        assert exc.value.hint, "every error says what to do"
        assert _ours_left(netenv["bridge"], "mcnX1") == []
    finally:
        c.kill()
        c.wait()


def test_an_exhausted_subnet_is_a_clear_error_and_leaves_nothing(netenv):
    netenv = dict(netenv, subnet="10.231.8.0/30")        # .1 the gateway, .2 the only address
    a, b = _child(), _child()
    try:
        time.sleep(0.2)
        network.attach_bridge("mcnE1", a.pid, name="e1", **netenv)
        try:
            with pytest.raises(ConflictError, match=r"subnet 10\.231\.8\.0/30 is exhausted \(1 addresses leased\)"):
                network.attach_bridge("mcnE2", b.pid, name="e2", ports=["18082:80"], **netenv)
            assert network.leases() == {"10.231.8.2": "mcnE1"}
            assert _ours_left(netenv["bridge"], "mcnE2") == [netenv["bridge"], "table ip minicontainer_mcnbr0",
                                                              "lease 10.231.8.2"]
            links = subprocess.run(["nsenter", "-t", str(b.pid), "-n", "ip", "-br", "link"],
                                   capture_output=True, text=True).stdout.split()
            assert "eth0" not in links and not [n for n in links if n.startswith("mcp")]
        finally:
            network.detach_bridge("mcnE1", bridge=netenv["bridge"])
        assert _ours_left(netenv["bridge"], "mcnE1", "mcnE2") == []
    finally:
        for p in (a, b):
            p.kill()
            p.wait()


# --- through the runtime: names both ways, container:NAME, removal + gc -----------------------------

ROOT = Path(__file__).resolve().parents[2]
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
RT_BRIDGE, RT_SUBNET = "mcnr0", "10.231.23.0/24"


@pytest.fixture
def rtenv(tmp_path, monkeypatch):
    """Private state and data roots, and a bridge and subnet of our own, for the CLI and in-process."""
    env = {"MINICONTAINER_STATE_ROOT": str(tmp_path / "state"), "MINICONTAINER_DATA_ROOT": str(tmp_path / "data"),
           "MINICONTAINER_BRIDGE": RT_BRIDGE, "MINICONTAINER_SUBNET": RT_SUBNET}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return dict(os.environ, **env)


def mc(env, *args, timeout=60):
    return subprocess.run([PY, "-m", "minicontainer.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def _rt_left() -> list[str]:
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    ports = paths.state_root() / "network" / "ports"
    ours = {RT_BRIDGE} | {network._veth_names(c)[0] for c in _ids}
    return ([n for n in os.listdir("/sys/class/net") if n in ours]
            + [t for t in tables.splitlines() if network._nft_table(RT_BRIDGE) in t]
            + [f"lease {ip}" for ip in network.leases()]
            + ([f"port claim {f.name}" for f in ports.iterdir()] if ports.is_dir() else []))


_ids: set[str] = set()


def test_containers_ping_each_other_by_address_and_name_and_share_a_stack(rtenv):
    """Both directions: the first container learns the second's name when it starts (/etc/hosts is
    rewritten), and forgets it when it is removed. container:NAME joins the same network namespace."""
    try:
        for name in ("mcnr-a", "mcnr-b"):
            p = mc(rtenv, "run", "-d", "--name", name, "busybox", "sleep", "120")
            assert p.returncode == 0, p.stderr
        a, b = (json.loads(mc(rtenv, "inspect", n).stdout) for n in ("mcnr-a", "mcnr-b"))
        _ids.update((a["id"], b["id"]))
        for src, dst in ((a, b), (b, a)):
            for target in (dst["network"]["ip"], dst["name"]):
                p = mc(rtenv, "exec", src["name"], "ping", "-c1", "-W3", target)
                assert p.returncode == 0, f"{src['name']} → {target}: {p.stdout} {p.stderr}"
        # container:NAME: the very same network namespace as mcnr-a (same inode), so the same eth0
        p = mc(rtenv, "run", "--rm", "--network", "container:mcnr-a", "busybox", "sh", "-c",
               "readlink /proc/self/ns/net; ip -4 -o addr show eth0 | awk '{print $4}'")
        assert p.returncode == 0, p.stderr
        assert p.stdout.split() == [os.readlink(f"/proc/{a['pid']}/ns/net"),
                                    f"{a['network']['ip']}/{a['network']['prefixlen']}"]
        assert mc(rtenv, "rm", "-f", "mcnr-b").returncode == 0
        hosts = mc(rtenv, "exec", "mcnr-a", "cat", "/etc/hosts").stdout
        assert "mcnr-b" not in hosts and "mcnr-a" in hosts, hosts
        assert mc(rtenv, "exec", "mcnr-a", "ping", "-c1", "-W1", "mcnr-b").returncode != 0
    finally:
        mc(rtenv, "rm", "-f", "mcnr-a")
        mc(rtenv, "rm", "-f", "mcnr-b")
    gc = mc(rtenv, "gc")
    assert gc.returncode == 0, gc.stderr
    assert _rt_left() == []


def test_container_mode_names_a_running_container_or_fails_clearly(rtenv):
    from minicontainer.runtime import ContainerConfig, process
    from minicontainer.runtime import state
    with pytest.raises(NotFoundError, match="--network container:mcnr-nobody: no such container") as exc:
        process.run("busybox", ["true"], network="container:mcnr-nobody")
    assert exc.value.hint
    idle = process.create(ContainerConfig(image="busybox", name="mcnr-idle", command=["true"]))
    try:
        with pytest.raises(ConflictError, match="container mcnr-idle is not running") as exc:
            process.run("busybox", ["true"], network="container:mcnr-idle")
        assert "start it first" in exc.value.hint
    finally:
        process.remove(idle["id"], True)
    assert [r["name"] for r in state.all_records()] == []
    assert _rt_left() == []
