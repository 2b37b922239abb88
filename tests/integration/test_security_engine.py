"""Issue 16, the engine's part: a default `minicontainer run` is confined like a default Docker
container — its 14 capabilities, its seccomp profile, the device rules — and each of Docker's flags
(--privileged, --cap-add, --cap-drop, --security-opt, --device) changes exactly that. Observed from
inside the container with busybox, as a user would: /proc/self/status and the error messages of
the operations a default container must not do."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration._shared import module_roots
from tests.integration.test_runtime_cli import _nothing_left, mc

DOCKER_CAPS = "00000000a80425fb"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    yield from module_roots(tmp_path_factory, "mcsec")


def run(env, *args, code=0):
    p = mc(env, "run", "--rm", "--network", "none", *args)
    assert p.returncode == code, (args, p.returncode, p.stdout, p.stderr)
    return p


def status(env, *args) -> dict:
    """The container's /proc/self/status fields (grep runs as the container's command)."""
    out = run(env, *args, "busybox", "grep", "-E", "^(Cap|Seccomp|NoNewPrivs|Uid)", "/proc/self/status").stdout
    return dict(line.split(":\t", 1) for line in out.splitlines())


# one shell per container: each attack prints its name and what busybox said (its exit status too)
ATTACKS = {
    "unmask": "umount /proc/timer_list",
    "proc_sys_rw": "mount -o remount,rw /proc/sys",
    "tmpfs": "mount -t tmpfs none /m",
    # the host's own kind: on a v2 host every controller is bound to the unified hierarchy, so a v1
    # mount of one is EBUSY even for a privileged container (found by the VM test)
    "cgroupfs": ("mount -t cgroup2 none /m2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers")
                 else "mount -t cgroup -o pids none /m2"),
    "kmsg_node": "mknod /kmsg c 1 11",
    "hostname": "hostname x",
    "chown": "chown 1:1 /tmp",
    "raw_socket": "ping -c1 -W1 127.0.0.1",
    "null_node": "mknod /null2 c 1 3",
}


def attacks(env, *args) -> dict[str, str]:
    script = "; ".join(f"echo \"@{k} $({v} 2>&1 >/dev/null; echo rc=$?)\"" for k, v in ATTACKS.items())
    out = run(env, *args, "busybox", "sh", "-c", "mkdir -p /m /m2; " + script).stdout
    return {line[1:].split(" ", 1)[0]: line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("@")}


def test_a_default_container_has_dockers_capabilities_and_seccomp(env):
    s = status(env)
    assert s["CapEff"] == s["CapBnd"] == s["CapPrm"] == DOCKER_CAPS, s
    assert s["CapInh"] == s["CapAmb"] == "0" * 16
    assert (s["Seccomp"], s["NoNewPrivs"]) == ("2", "0"), s
    assert status(env, "--security-opt", "no-new-privileges")["NoNewPrivs"] == "1"
    assert status(env, "--cap-drop", "ALL")["CapEff"] == "0" * 16
    s = status(env, "--security-opt", "seccomp=unconfined")
    assert (s["Seccomp"], s["CapEff"]) == ("0", DOCKER_CAPS), s
    s = status(env, "-u", "1000")          # a non-root user: no effective capabilities (Docker's rule)
    assert (s["Uid"].split()[0], s["CapEff"], s["Seccomp"]) == ("1000", "0" * 16, "2"), s
    s = status(env, "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN")
    assert int(s["CapEff"], 16) == (int(DOCKER_CAPS, 16) | 1 << 12) & ~1, s      # NET_ADMIN in, CHOWN out
    s = status(env, "--privileged")
    assert s["Seccomp"] == "0" and int(s["CapEff"], 16) & int(DOCKER_CAPS, 16) == int(DOCKER_CAPS, 16)
    assert int(s["CapBnd"], 16) & 1 << 21, s                     # CAP_SYS_ADMIN
    _nothing_left(env)


def test_what_a_default_container_cannot_do_and_privileged_can(env):
    got = attacks(env)
    eperm = ("Operation not permitted", "permission denied")
    for k in ("unmask", "proc_sys_rw", "tmpfs", "cgroupfs", "kmsg_node", "hostname"):
        assert any(e in got[k] for e in eperm) and not got[k].endswith("rc=0"), (k, got[k])
    # what Docker's defaults keep: CAP_CHOWN, CAP_NET_RAW (the socket opens; --network none has no
    # route, so the send fails, not the socket), and the default device nodes
    assert got["chown"] == "rc=0" and got["null_node"] == "rc=0", got
    assert "permission denied" not in got["raw_socket"], got
    priv = attacks(env, "--privileged")
    for k in ("tmpfs", "cgroupfs", "kmsg_node", "hostname", "chown"):
        assert priv[k] == "rc=0", (k, priv[k])
    # the matching capability, and only it: SYS_ADMIN lets mount through (seccomp's rule follows the
    # capabilities), the device rule still denies the kernel log's node. Without the AppArmor
    # profile, whose `deny mount` holds whatever the capabilities (test_security_apparmor.py)
    sa = attacks(env, "--cap-add", "SYS_ADMIN", "--security-opt", "apparmor=unconfined")
    assert sa["tmpfs"] == "rc=0" and sa["hostname"] == "rc=0" and "not permitted" in sa["kmsg_node"], sa
    nr = attacks(env, "--cap-drop", "NET_RAW", "--cap-drop", "CHOWN")
    assert "permission denied" in nr["raw_socket"] and "not permitted" in nr["chown"], nr
    _nothing_left(env)


def test_device_flag_and_seccomp_profile_file(env, tmp_path):
    if Path("/dev/fuse").exists():
        p = run(env, "busybox", "sh", "-c", "mknod /f c 10 229 && echo made", code=1)
        assert "Operation not permitted" in p.stderr
        p = run(env, "--device", "/dev/fuse", "busybox", "sh", "-c", "test -c /dev/fuse && : < /dev/fuse && echo open")
        assert p.stdout == "open\n", p.stderr
    prof = tmp_path / "nomkdir.json"
    prof.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}))
    p = run(env, "--security-opt", f"seccomp={prof}", "busybox", "mkdir", "/tmp/x", code=1)
    assert "Operation not permitted" in p.stderr, p.stderr
    _nothing_left(env)


@pytest.mark.parametrize("args, words", [
    (["--cap-add", "FLY"], "--cap-add FLY: unknown capability"),
    (["--cap-drop", "NOPE"], "--cap-drop NOPE: unknown capability"),
    (["--security-opt", "bogus"], "--security-opt bogus: not supported"),
    (["--security-opt", "seccomp=/nonexistent.json"], "/nonexistent.json"),
    (["--device", "/dev/nonexistent"], "--device /dev/nonexistent"),
    (["--device", "relative"], "not an absolute path"),
])
def test_bad_security_flags_are_one_line_125_and_leave_nothing(env, args, words):
    p = mc(env, "run", "--rm", "--network", "none", *args, "busybox", "true")
    assert p.returncode == 125 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    _nothing_left(env)


def test_init_exec_and_inspect_see_the_same_confinement(env):
    """--init's PID 1 is confined too; `exec` gets the container's settings (and its user), and
    `inspect` shows them."""
    p = run(env, "--init", "busybox", "grep", "-E", "^(CapEff|Seccomp):", "/proc/1/status", "/proc/self/status")
    assert p.stdout.count(DOCKER_CAPS) == 2 and p.stdout.count("Seccomp:\t2") == 2, p.stdout
    p = mc(env, "run", "-d", "--name", "mcsec-x", "--network", "none", "--security-opt", "no-new-privileges",
           "busybox", "sleep", "60")
    assert p.returncode == 0, p.stderr
    try:
        sec = json.loads(mc(env, "inspect", "mcsec-x").stdout)["security"]
        assert (sec["CapEff"], sec["no_new_privileges"], sec["privileged"]) == (DOCKER_CAPS, True, False), sec
        out = mc(env, "exec", "mcsec-x", "grep", "-E", "^(CapEff|CapBnd|Seccomp|NoNewPrivs):", "/proc/self/status").stdout
        assert out.count(DOCKER_CAPS) == 2 and "Seccomp:\t2" in out and "NoNewPrivs:\t1" in out, out
        out = mc(env, "exec", "-u", "1000", "mcsec-x", "grep", "^CapEff:", "/proc/self/status").stdout
        assert out.split() == ["CapEff:", "0" * 16], out
        p = mc(env, "exec", "mcsec-x", "mount", "-t", "tmpfs", "none", "/tmp")
        assert p.returncode != 0 and "permission denied" in p.stderr, p.stderr
    finally:
        mc(env, "rm", "-f", "mcsec-x")
    _nothing_left(env)


def test_busybox_httpd_still_serves_with_the_defaults(env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = mc(env, "run", "-d", "--name", "mcsec-www", "-p", f"127.0.0.1:{port}:80", "busybox", "sh", "-c",
           "mkdir -p /www && echo confined > /www/index.html && exec httpd -f -p 80 -h /www")
    assert p.returncode == 0, p.stderr
    try:
        body = None
        for _ in range(50):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert body == "confined\n"
    finally:
        mc(env, "rm", "-f", "mcsec-www")
    _nothing_left(env)


def test_the_servers_spare_is_confined_too(tmp_path):
    env = dict(os.environ, MINICONTAINER_STATE_ROOT=str(tmp_path / "state"),
               MINICONTAINER_DATA_ROOT=str(tmp_path / "data"))
    env.pop("MINICONTAINER_NO_SERVER", None)
    assert "listening on" in mc(env, "serve", "-d").stdout
    try:
        for _ in range(2):                  # the first takes the spare parked at start, the second a new one
            s = status(env)
            assert (s["CapEff"], s["Seccomp"]) == (DOCKER_CAPS, "2"), s
            assert any(e in attacks(env)["kmsg_node"] for e in ("not permitted",))
        assert status(env, "--privileged")["Seccomp"] == "0"      # not the spare: no masks wanted
    finally:
        assert "stopped" in mc(env, "serve", "--stop").stdout
    _nothing_left(env)
