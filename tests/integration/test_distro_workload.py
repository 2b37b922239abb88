"""Issue 16: real workloads still work under the defaults — Docker's capabilities, seccomp profile,
device rules, masked paths, a private cgroup namespace, closed descriptors — with no security flag on
the command line. A default that is too tight shows up here as a real program failing, not as a
syscall table: glibc's clone3 → clone fallback (threads), getrandom, faccessat2, statx and rseq
(python3, coreutils), binding :80 and dropping to www-data (nginx), setuid helpers (setpriv, runuser)
and apt's own sandbox (its download methods run as ``_apt``).

The image is Debian bookworm from mmdebstrap (conftest.py's ``debian_layout``, _debian.py: built once
from the Debian mirror, cached; skipped with the reason without the mirror and a cache). Busybox's
shell and httpd under the same defaults: test_network_runtime.py.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from pathlib import Path

import pytest

from minicontainer.images.importer import import_archive
from minicontainer.images.lab import free_port
from minicontainer.images.store import ImageStore
from tests.integration.hostile_helpers import drop_roots, make_roots, mc, nothing_left, wait_for

#: Docker's 14 default capabilities (moby oci/caps/defaults.go), as bits of /proc/PID/status' Cap* masks
DOCKER_CAPS = {"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6, "SETUID": 7,
               "SETPCAP": 8, "NET_BIND_SERVICE": 10, "NET_RAW": 13, "SYS_CHROOT": 18, "MKNOD": 27,
               "AUDIT_WRITE": 29, "SETFCAP": 31}
DOCKER_MASK = sum(1 << b for b in DOCKER_CAPS.values())
WWW_DATA = "uid=33(www-data) gid=33(www-data) groups=33(www-data)"


@pytest.fixture(scope="module")
def env(debian_layout):
    """Private roots holding ``debian`` (the layout's ``bookworm`` tag: python3, User nobody) and
    ``debian-nginx`` (its ``nginx`` tag: root, Cmd nginx -g 'daemon off;')."""
    env, base = make_roots()
    try:
        mc(env, "import", str(debian_layout), "debian", timeout=300, check=0)
        # `minicontainer import` takes an archive's first image; the second tag through the same
        # importer, by its ref name
        import_archive(debian_layout, "debian-nginx", tag="nginx",
                       store=ImageStore(env["MINICONTAINER_DATA_ROOT"]))
        yield env
    finally:
        drop_roots(env, base)


PY = r"""
import ctypes, multiprocessing, os, subprocess, threading
got = []
t = threading.Thread(target=lambda: got.append(os.getrandom(16)))   # clone3 (ENOSYS) -> clone; getrandom
t.start(); t.join()
size = subprocess.run(["stat", "-c", "%s", "/etc/debian_version"], capture_output=True, text=True,
                      check=True).stdout.strip()                     # coreutils' stat: statx
ok = os.access("/etc/passwd", os.R_OK, effective_ids=True)          # AT_EACCESS: faccessat2
rseq = ctypes.c_uint.in_dll(ctypes.CDLL(None), "__rseq_size").value  # 0 if glibc could not register
with multiprocessing.Pool(2) as pool:                                # POSIX semaphores in /dev/shm
    squares = pool.map(abs, [-2, -3])
print(len(got[0]), len(os.urandom(8)), size == str(os.stat("/etc/debian_version").st_size), ok, rseq > 0,
      squares, os.getuid())
"""


def test_python3_threads_subprocess_random(env):
    p = mc(env, "run", "--rm", "--network", "none", "debian", "python3", "-c", PY, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["16", "8", "True", "True", "True", "[2,", "3]", "65534"], p.stdout


def _status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def _processes(pid: int) -> dict[int, tuple[str, dict]]:
    """Every process in the PID namespace of host pid ``pid``: {host pid: (cmdline, status)}."""
    ns = os.readlink(f"/proc/{pid}/ns/pid")
    found = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{d}/ns/pid") != ns:
                continue
            cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            found[int(d)] = (cmd, _status(int(d)))
        except OSError:             # gone, or not ours to look at (another sandbox's init)
            continue
    return found


def _get(port: int) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
            return r.status, r.read().decode()
    except OSError:
        return None


def test_nginx_binds_80_as_root_and_serves_from_www_data_workers(env):
    port = free_port()
    p = mc(env, "run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", "debian-nginx", timeout=60)
    assert p.returncode == 0, p.stderr
    try:
        answer = []
        up = wait_for(lambda: answer.append(_get(port)) or answer[-1] is not None, timeout=20, step=0.1)
        assert up, (mc(env, "logs", "web").stderr,
                    mc(env, "exec", "web", "cat", "/var/log/nginx/error.log").stdout)
        status, body = answer[-1]
        assert status == 200 and "Welcome to nginx!" in body, body[:300]

        pid = json.loads(mc(env, "inspect", "web", check=0).stdout)["State"]["Pid"]
        procs = _processes(pid)
        master = [(h, s) for h, (c, s) in procs.items() if c.startswith("nginx: master process")]
        workers = [s for c, s in procs.values() if c == "nginx: worker process"]
        assert len(master) == 1 and workers, procs
        host_pid, m = master[0]
        assert host_pid == pid and m["NSpid"].split()[-1] == "1", m["NSpid"]  # nginx is the container's init
        assert m["Uid"].split() == ["0"] * 4 and m["Gid"].split() == ["0"] * 4, m
        assert int(m["CapBnd"], 16) == DOCKER_MASK, f"bounding set {m['CapBnd']}, Docker's {DOCKER_MASK:016x}"
        assert int(m["CapEff"], 16) >> DOCKER_CAPS["NET_BIND_SERVICE"] & 1, m["CapEff"]
        assert m["Seccomp"] == "2", m["Seccomp"]                         # a filter: the default profile
        for w in workers:
            assert w["Uid"].split() == ["33"] * 4 and w["Gid"].split() == ["33"] * 4, w
            assert w["Groups"] == "33", w["Groups"]                       # initgroups(www-data)
            assert int(w["CapEff"], 16) == 0 and w["Seccomp"] == "2", w
        assert mc(env, "exec", "web", "ss", "-Hltn", "sport", "=", ":80").stdout.strip(), "nothing on :80"

        mc(env, "stop", "web", timeout=60, check=0)
        assert wait_for(lambda: not any(Path(f"/proc/{h}").exists() for h in procs), timeout=10)
        assert json.loads(mc(env, "inspect", "web", check=0).stdout)["State"]["Status"] == "exited"
        mc(env, "rm", "web", check=0)
        nothing_left(env)
    finally:
        mc(env, "rm", "-f", "web", timeout=60)


def test_privilege_drops_setpriv_runuser(env):
    """What init scripts and entrypoints do as root to run a service as its user."""
    for cmd in (["setpriv", "--reuid=33", "--regid=33", "--init-groups", "id"],
                ["runuser", "-u", "www-data", "--", "id"],
                ["su", "-s", "/bin/sh", "-c", "id", "www-data"]):
        p = mc(env, "run", "--rm", "--network", "none", "debian-nginx", *cmd, timeout=60)
        assert p.returncode == 0 and p.stdout.strip() == WWW_DATA, (cmd, p.stdout, p.stderr)


APT = r"""
set -e
mkdir /repo && : > /repo/Packages
echo 'deb [trusted=yes] copy:/repo ./' > /etc/apt/sources.list.d/local.list
rm -f /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list
apt-get update 2>&1
test -f /var/lib/apt/lists/_repo_._Packages
"""


def test_apt_sandbox_user(env):
    """apt-get update runs its methods (here ``copy:``, from a local repository: no traffic leaves)
    as ``_apt``: setgroups, setresgid, setresuid from root. Without CAP_SETUID that is "Failed to set
    new user ids", without CAP_SETGID "Failed to setgroups", and the method dies."""
    p = mc(env, "run", "--rm", "--network", "none", "debian-nginx", "sh", "-c", APT, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.search(r"^Get:\d+ copy:/repo \./ Packages", p.stdout, re.M) and "E:" not in p.stdout, p.stdout
