"""Networking as a user of the CLI sees it (notebook 05): containers on our own bridge and subnet.

Each test uses private state/data roots, a bridge and a subnet of its own (MINICONTAINER_BRIDGE,
MINICONTAINER_SUBNET), so nothing here touches another bridge; the leak check of conftest.py then
proves that no veth, bridge, nft table or state file is left.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable


@pytest.fixture
def env(tmp_path):
    return dict(os.environ, MINICONTAINER_STATE_ROOT=str(tmp_path / "state"),
                MINICONTAINER_DATA_ROOT=str(tmp_path / "data"), MINICONTAINER_BRIDGE="mcnt0",
                MINICONTAINER_SUBNET="10.231.19.0/24")


def mc(env, *args, timeout=60):
    return subprocess.run([PY, "-m", "minicontainer.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ours_left(env) -> list[str]:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    leases = Path(env["MINICONTAINER_STATE_ROOT"], "network", "leases")
    return ([ln.split(":")[1].strip() for ln in links.splitlines() if "mcnt0" in ln or ": mcv" in ln]
            + [t for t in tables.splitlines() if "minicontainer_mcnt0" in t]
            + ([p.name for p in leases.iterdir()] if leases.is_dir() else []))


@pytest.fixture
def web(env):
    """A detached busybox httpd container named mcn-web, serving one page; removed afterwards."""
    page = "hello from mcn-web"
    p = mc(env, "run", "-d", "--name", "mcn-web", "busybox", "sh", "-c",
           f"mkdir -p /www && echo '{page}' > /www/index.html && exec httpd -f -p 80 -h /www")
    assert p.returncode == 0, p.stderr
    try:
        yield json.loads(mc(env, "inspect", "mcn-web").stdout), page
    finally:
        mc(env, "rm", "-f", "mcn-web")
        mc(env, "gc")
        assert _ours_left(env) == []


def test_two_containers_talk_by_address_and_by_name(env, web):
    rec, page = web
    ip = rec["network"]["ip"]
    assert ip.startswith("10.231.19.")
    p = mc(env, "run", "--rm", "--name", "mcn-client", "busybox", "sh", "-c",
           f"ping -c1 -W3 {ip} >/dev/null && echo by-address; wget -qO- http://mcn-web/ && echo by-name")
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"by-address\n{page}\nby-name\n"


def test_container_mode_shares_the_other_containers_network_stack(env, web):
    rec, page = web
    p = mc(env, "run", "--rm", "--network", "container:mcn-web", "busybox", "sh", "-c",
           "ip -4 -o addr show eth0 | awk '{print $4}'; wget -qO- http://127.0.0.1:80/")
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"{rec['network']['ip']}/{rec['network']['prefixlen']}\n{page}\n"


def test_published_port_answers_on_loopback_and_from_another_namespace(env):
    port = _free_port()
    p = mc(env, "run", "-d", "--name", "mcn-pub", "-p", f"{port}:80", "busybox", "sh", "-c",
           "mkdir -p /www && echo published > /www/index.html && exec httpd -f -p 80 -h /www")
    assert p.returncode == 0, p.stderr
    try:
        import time
        for _ in range(50):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert body == "published\n"
        gateway = json.loads(mc(env, "inspect", "mcn-pub").stdout)["network"]["gateway"]
        q = mc(env, "run", "--rm", "busybox", "wget", "-qO-", f"http://{gateway}:{port}/")
        assert (q.returncode, q.stdout) == (0, "published\n"), q.stderr
    finally:
        mc(env, "rm", "-f", "mcn-pub")
    mc(env, "gc")
    assert _ours_left(env) == []


def test_none_has_only_lo_and_host_sees_the_hosts_interfaces(env):
    p = mc(env, "run", "--rm", "--network", "none", "busybox", "sh", "-c", "ls /sys/class/net; ip -o link | wc -l")
    assert (p.returncode, p.stdout) == (0, "lo\n1\n"), p.stderr
    host_links = len(subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines())
    p = mc(env, "run", "--rm", "--network", "host", "busybox", "sh", "-c", "ip -o link | wc -l")
    assert p.returncode == 0 and int(p.stdout) == host_links


@pytest.mark.parametrize("args, words", [
    (["-p", "70000:80"], "out of range"),
    (["-p", "80:0"], "out of range"),
    (["-p", "eighty:80"], "invalid port mapping"),
    (["--network", "bogus"], "unknown network mode 'bogus'"),
    (["--network", "container:mcn-nobody"], "no such container"),
])
def test_bad_network_input_is_one_line_125_and_leaves_nothing(env, args, words):
    p = mc(env, "run", "--rm", *args, "busybox", "true")
    assert p.returncode == 125 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert _ours_left(env) == [] and not list(Path(env["MINICONTAINER_STATE_ROOT"]).glob("[0-9a-f]" * 8 + "*"))


def test_a_port_already_published_is_refused(env):
    port = _free_port()
    assert mc(env, "run", "-d", "--name", "mcn-p1", "-p", f"{port}:80", "busybox", "sleep", "60").returncode == 0
    try:
        p = mc(env, "run", "--rm", "--name", "mcn-p2", "-p", f"{port}:80", "busybox", "true")
        assert p.returncode == 125 and f"port {port}/tcp is already published by container" in p.stderr, p.stderr
        assert "mcn-p2" not in mc(env, "ps", "-a").stdout
    finally:
        mc(env, "rm", "-f", "mcn-p1")
    assert _ours_left(env) == []


def test_container_mode_of_a_stopped_container_is_refused(env):
    assert mc(env, "create", "--name", "mcn-idle", "busybox", "true").returncode == 0
    try:
        p = mc(env, "run", "--rm", "--network", "container:mcn-idle", "busybox", "true")
        assert p.returncode == 125 and "is not running" in p.stderr, p.stderr
    finally:
        mc(env, "rm", "-f", "mcn-idle")


def test_an_exhausted_subnet_is_a_clear_error(env):
    env = dict(env, MINICONTAINER_SUBNET="10.231.29.0/30")   # .1 the gateway, .2 the only address
    assert mc(env, "run", "-d", "--name", "mcn-only", "busybox", "sleep", "60").returncode == 0
    try:
        p = mc(env, "run", "--rm", "busybox", "true")
        assert p.returncode == 125 and "subnet 10.231.29.0/30 is exhausted" in p.stderr, p.stderr
    finally:
        mc(env, "rm", "-f", "mcn-only")
    mc(env, "gc")
    assert _ours_left(env) == []
