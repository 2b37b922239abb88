"""User-defined bridge networks as a user of the CLI sees them (notebook 10, issue 20).

Private state/data roots and subnets of the 10.231.4x range; the leak check of conftest.py proves
that no bridge, veth, nft table, state file or child is left; the DNS responders (not our children
once the command that started them ended) are checked explicitly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ, MINICONTAINER_STATE_ROOT=str(tmp_path / "state"),
             MINICONTAINER_DATA_ROOT=str(tmp_path / "data"), MINICONTAINER_NO_SERVER="1")
    yield e
    ids = [ln.split()[0] for ln in mc(e, "ps", "-a").stdout.splitlines()[1:] if ln.strip()]
    if ids:
        mc(e, "rm", "-f", *ids)
    nets = mc(e, "network", "ls", "-q").stdout.split()
    if nets:
        mc(e, "network", "rm", *nets)


def mc(env, *args, timeout=60):
    return subprocess.run([PY, "-m", "minicontainer.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def ok(p):
    assert p.returncode == 0, p.stderr
    return p.stdout


def responders(env) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                cmd = Path(f"/proc/{d}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"dns.serve" in b" ".join(cmd) and env["MINICONTAINER_STATE_ROOT"].encode() in b" ".join(cmd):
                out.append(int(d))
    return out


def kernel_has(rec) -> list[str]:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return ([rec["bridge"]] if rec["bridge"] + ":" in links else []) + \
           ([rec["nft"]] if rec["nft"] in tables else [])


def test_names_resolve_on_one_network_and_networks_are_isolated(env):
    ok(mc(env, "network", "create", "--subnet", "10.231.40.0/24", "mcta"))
    ok(mc(env, "network", "create", "--subnet", "10.231.41.0/24", "mctb"))
    a = json.loads(ok(mc(env, "network", "inspect", "mcta")))[0]
    assert kernel_has(a) == [a["bridge"], a["nft"]]
    assert len(responders(env)) == 2
    assert oct(os.stat(Path(env["MINICONTAINER_STATE_ROOT"], "network", "nets", "mcta")).st_mode & 0o777) == "0o700"
    assert oct(os.stat(Path(env["MINICONTAINER_STATE_ROOT"], "network", "nets", "mcta", "network.json")).st_mode
               & 0o777) == "0o600"
    ok(mc(env, "run", "-d", "--name", "web", "--network", "mcta", "busybox", "sh", "-c",
          "mkdir /www && echo hello-web > /www/index.html && exec httpd -f -p 80 -h /www"))
    ok(mc(env, "run", "-d", "--name", "other", "--network", "mctb", "busybox", "sh", "-c",
          "mkdir /www && echo hello-other > /www/index.html && exec httpd -f -p 80 -h /www"))
    other_ip = json.loads(ok(mc(env, "network", "inspect", "mctb")))[0]["containers"]["other"]["ip"]

    out = ok(mc(env, "run", "--rm", "--network", "mcta", "busybox", "sh", "-c",
                "grep -c web /etc/hosts; nslookup web | tail -n +4; wget -qO- http://web/"))
    assert out.startswith("0\n")                     # not from /etc/hosts: from the network's DNS
    assert "Address: 10.231.40.2" in out and out.endswith("hello-web\n")

    p = mc(env, "run", "--rm", "--network", "mcta", "busybox", "sh", "-c",
           f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {other_ip} 80 | grep -q hello-other || echo unreachable; "
           "nslookup other >/dev/null || echo unknown")
    assert ok(p) == "unreachable\nunknown\n"
    # and the way back: the other network cannot reach web or its name either
    web_ip = json.loads(ok(mc(env, "network", "inspect", "mcta")))[0]["containers"]["web"]["ip"]
    p = mc(env, "run", "--rm", "--network", "mctb", "busybox", "sh", "-c",
           f"ping -c1 -W2 {web_ip} >/dev/null || echo unreachable")
    assert ok(p) == "unreachable\n"

    p = mc(env, "network", "rm", "mcta")
    assert p.returncode == 125 and p.stderr.count("\n") == 1 and "containers attached: web" in p.stderr
    assert kernel_has(a) == [a["bridge"], a["nft"]]
    ok(mc(env, "rm", "-f", "web", "other"))
    ok(mc(env, "network", "rm", "mcta", "mctb"))
    assert kernel_has(a) == [] and responders(env) == []
    assert ok(mc(env, "network", "ls", "-q")) == ""


@pytest.mark.parametrize("args, says", [
    (["--subnet", "10.231.42.128/25", "mctd"], "overlaps 10.231.42.0/24 of network mctc"),
    (["--subnet", "10.231.43.0/24", "mctc"], "network 'mctc' already exists"),
    (["--subnet", "10.231.43.0/33", "mctd"], "invalid subnet"),
    (["--subnet", "10.231.43.0/24", "--gateway", "10.231.44.1", "mctd"], "is not a host address"),
    (["--subnet", "10.231.43.0/24", "bridge"], "is reserved"),
    (["--subnet", "10.231.43.0/24", "x" * 64], "invalid network name"),
    (["--driver", "overlay", "--subnet", "10.231.43.0/24", "--peer", "1.2.3", "mctd"], "invalid peer address"),
    (["--driver", "overlay", "--subnet", "10.231.43.0/24", "mctd"], "needs --peer"),
])
def test_bad_create_is_one_line_and_leaves_nothing(env, args, says):
    ok(mc(env, "network", "create", "--subnet", "10.231.42.0/24", "mctc"))
    before = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.count("\n")
    p = mc(env, "network", "create", *args)
    assert p.returncode == 125, p.stderr
    assert says in p.stderr and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert ok(mc(env, "network", "ls", "-q")) == "mctc\n"
    assert subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.count("\n") == before
    ok(mc(env, "network", "rm", "mctc"))


def test_run_on_an_unknown_network_is_refused(env):
    p = mc(env, "run", "--rm", "--network", "nosuchnet", "busybox", "true")
    assert p.returncode == 125 and "unknown network mode 'nosuchnet'" in p.stderr


def test_gc_restarts_a_dead_responder_and_drops_stale_leases(env):
    ok(mc(env, "network", "create", "--subnet", "10.231.47.0/24", "mcte"))
    ok(mc(env, "run", "-d", "--name", "db", "--network", "mcte", "busybox", "sleep", "60"))
    [pid] = responders(env)
    os.kill(pid, 9)
    assert "not found" in mc(env, "run", "--rm", "--network", "mcte", "busybox", "sh", "-c",
                             "nslookup db >/dev/null 2>&1 || echo not found").stdout
    leases = Path(env["MINICONTAINER_STATE_ROOT"], "network", "nets", "mcte", "leases")
    (leases / "10.231.47.200").write_text(json.dumps({"cid": "f" * 64, "name": "ghost"}))
    out = ok(mc(env, "gc"))
    assert "dead dns responder of mcte (restarted)" in out and "lease 10.231.47.200 on mcte" in out
    assert len(responders(env)) == 1
    out = ok(mc(env, "run", "--rm", "--network", "mcte", "busybox", "sh", "-c", "nslookup db | tail -n +4"))
    assert "Address: 10.231.47.2" in out
    ok(mc(env, "rm", "-f", "db"))
    ok(mc(env, "network", "rm", "mcte"))
    assert responders(env) == []


def test_connect_and_disconnect_a_running_container(env):
    ok(mc(env, "network", "create", "--subnet", "10.231.48.0/24", "mctf"))
    ok(mc(env, "network", "create", "--subnet", "10.231.49.0/24", "mctg"))
    ok(mc(env, "run", "-d", "--name", "multi", "--network", "mctf", "busybox", "sleep", "60"))
    probe = "ping -c1 -W2 multi >/dev/null 2>&1 && echo reached || echo no"
    assert ok(mc(env, "run", "--rm", "--network", "mctg", "busybox", "sh", "-c", probe)) == "no\n"
    assert ok(mc(env, "network", "connect", "mctg", "multi")) == "10.231.49.2\n"
    p = mc(env, "network", "connect", "mctg", "multi")
    assert p.returncode == 125 and "already on network 'mctg'" in p.stderr
    assert ok(mc(env, "exec", "multi", "cat", "/sys/class/net/eth1/address")) == "02:42:0a:e7:31:02\n"
    assert ok(mc(env, "run", "--rm", "--network", "mctg", "busybox", "sh", "-c", probe)) == "reached\n"
    ok(mc(env, "network", "disconnect", "mctg", "multi"))
    assert ok(mc(env, "run", "--rm", "--network", "mctg", "busybox", "sh", "-c", probe)) == "no\n"
    assert mc(env, "exec", "multi", "cat", "/sys/class/net/eth1/address").returncode != 0
    ok(mc(env, "network", "connect", "mctg", "multi"))
    ok(mc(env, "rm", "-f", "multi"))                # its leases on both networks go with it
    ok(mc(env, "network", "rm", "mctf", "mctg"))
