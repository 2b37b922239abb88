"""Issue 16: no host interpreter inside a container's PID namespace.

``--init`` runs the host's tini-static, bound read-only at /sbin/docker-init (runtime/init.py), as
Docker runs docker-init — not the runtime's Python. And ``exec``'s process, which is the host's
Python until it execs the command, is confined and non-dumpable before it becomes visible in the
container's PID namespace (runtime/exec.py): a process of the container watching /proc never gets
a host binary out of /proc/PID/exe or /proc/PID/map_files (CVE-2019-5736's first step).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from tests.integration._shared import static_probe
from tests.integration.test_runtime_cli import _nothing_left, mc

HERE = Path(__file__).resolve().parent
INIT = "/sbin/docker-init"
pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/tini-static"),
                                reason="--init needs Debian's tini package (make setup installs it)")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("mcini")
    env = dict(os.environ, MINICONTAINER_STATE_ROOT=str(base / "state"),
               MINICONTAINER_DATA_ROOT=str(base / "data"))
    env.pop("MC_INIT_BINARY", None)
    yield env
    mc(env, "gc")


def run(env, *args, **kw):
    return mc(env, "run", "--rm", "--network", "none", *args, **kw)


def ns_processes(pid1: int) -> dict[int, tuple[str, tuple[int, int]]]:
    """Every process of the PID namespace whose PID 1 is ``pid1``, seen from the host: pid -> (its
    exe's path in its own mount namespace, the exe's (st_dev, st_ino) on the host)."""
    ns = os.readlink(f"/proc/{pid1}/ns/pid")
    found = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.readlink(f"/proc/{d}/ns/pid") == ns:
                    st = os.stat(f"/proc/{d}/exe")
                    found[int(d)] = (os.readlink(f"/proc/{d}/exe"), (st.st_dev, st.st_ino))
            except OSError:
                continue
    return found


def _file_id(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def test_init_is_tini_at_sbin_docker_init_and_no_python_is_in_the_pid_namespace(env):
    p = mc(env, "run", "-d", "--init", "--name", "mcini-ps", "--network", "none", "busybox",
           "sh", "-c", "sleep 60 & sleep 60 & wait")
    assert p.returncode == 0, p.stderr
    try:
        pid1 = json.loads(mc(env, "inspect", "mcini-ps").stdout)["pid"]
        time.sleep(0.3)
        procs = ns_processes(pid1)
        # from the host: PID 1 is the host's tini-static through the bind; the rest is busybox;
        # none is the interpreter the runtime runs on
        assert procs[pid1] == (INIT, _file_id("/usr/bin/tini-static")), procs
        assert len(procs) == 4 and [path for path, _ in procs.values()].count("/bin/busybox") == 3, procs
        assert _file_id(sys.executable) not in [f for _, f in procs.values()], procs
        # from inside: /proc/1 is the init, its memory maps name no host file but the init itself
        p = mc(env, "exec", "mcini-ps", "sh", "-c",
               "readlink /proc/1/exe; cat /proc/1/cmdline | tr '\\0' '|'; echo; cat /proc/1/maps")
        lines = p.stdout.splitlines()
        assert lines[:2] == [INIT, f"{INIT}|--|sh|-c|sleep 60 & sleep 60 & wait|"], p
        files = {ln.split()[5] for ln in lines[2:] if len(ln.split()) > 5 and ln.split()[5].startswith("/")}
        assert files == {INIT}, p.stdout
    finally:
        mc(env, "rm", "-f", "mcini-ps")
    _nothing_left(env)


def test_the_init_binary_is_a_read_only_nosuid_nodev_bind(env):
    p = run(env, "--init", "busybox", "sh", "-c",
            f"grep ' {INIT} ' /proc/self/mountinfo; echo x > {INIT} || echo write=$?; "
            f"chmod 777 {INIT} || echo chmod=$?; rm -f {INIT} || echo rm=$?")
    assert p.returncode == 0, p.stderr
    opts = p.stdout.splitlines()[0].split()[5].split(",")
    assert {"ro", "nosuid", "nodev"} <= set(opts), p.stdout
    assert {"write=1", "chmod=1", "rm=1"} <= set(p.stdout.split()), p.stdout
    assert p.stderr.count("Read-only file system") == 2 and "resource busy" in p.stderr, p.stderr
    # the host's file is untouched, and nothing appears in the image: a plain container has none
    assert os.stat("/usr/bin/tini-static").st_mode & 0o7777 == 0o755
    assert run(env, "busybox", "ls", INIT).returncode == 1
    _nothing_left(env)


def test_exit_codes_and_the_containers_user_and_confinement_bind_the_init(env):
    assert run(env, "--init", "busybox", "sh", "-c", "exit 3").returncode == 3
    assert run(env, "--init", "busybox", "sh", "-c", "kill -9 $$").returncode == 137
    p = run(env, "--init", "busybox", "nope")
    assert p.returncode == 127 and "nope" in p.stderr, p
    p = run(env, "--init", "-u", "1000:1000", "busybox", "grep", "-E", "^(Uid|Gid|CapEff|Seccomp):",
            "/proc/1/status")
    got = dict(line.split(":", 1) for line in p.stdout.splitlines())
    assert got["Uid"].split() == ["1000"] * 4 and got["Gid"].split() == ["1000"] * 4, p.stdout
    assert got["CapEff"].strip() == "0" * 16 and got["Seccomp"].strip() == "2", p.stdout
    _nothing_left(env)


def test_stop_reaches_the_command_through_the_init(env):
    """stop's SIGTERM goes to PID 1, tini; it forwards it to `sleep` (not PID 1, so the default
    action applies), which dies of it: 128+15. Without the forwarding stop would SIGKILL: 137."""
    p = mc(env, "run", "-d", "--init", "--name", "mcini-stop", "--network", "none", "busybox", "sleep", "60")
    assert p.returncode == 0, p.stderr
    try:
        assert mc(env, "stop", "-t", "20", "mcini-stop").returncode == 0
        assert json.loads(mc(env, "inspect", "mcini-stop").stdout)["exit_code"] == 143
    finally:
        mc(env, "rm", "-f", "mcini-stop")
    _nothing_left(env)


@pytest.mark.parametrize("init", [False, True])
def test_an_orphan_is_reaped_by_the_init(env, init):
    """An orphan that exits stays a zombie under `sleep` as PID 1; under tini it disappears."""
    name = f"mcini-z{int(init)}"
    p = mc(env, "run", "-d", *(["--init"] if init else []), "--name", name, "--network", "none", "busybox",
           "sh", "-c", 'sh -c "sleep 0.2 & echo \\$! > /tmp/orphan"; exec sleep 60')
    assert p.returncode == 0, p.stderr
    try:
        time.sleep(1.0)
        p = mc(env, "exec", name, "sh", "-c",
               'p=$(cat /tmp/orphan); grep -E "^(State|PPid):" /proc/$p/status 2>/dev/null || echo gone')
        if init:
            assert p.stdout.split() == ["gone"], p.stdout
        else:
            assert "zombie" in p.stdout and "PPid:\t1" in p.stdout, p.stdout
    finally:
        mc(env, "rm", "-f", name)
    _nothing_left(env)


def test_a_missing_init_binary_is_one_line_125_and_leaves_nothing(env, tmp_path):
    p = run(dict(env, MC_INIT_BINARY=str(tmp_path / "no-tini")), "--init", "busybox", "true")
    assert p.returncode == 125 and str(tmp_path / "no-tini") in p.stderr, p
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    _nothing_left(env)


def test_an_image_whose_sbin_is_a_link_and_a_planted_docker_init(env, tmp_path):
    """A merged-/usr image (/sbin -> usr/sbin, as Debian's and Ubuntu's) gets the init at the link's
    target inside the root; a /sbin/docker-init symlink the image planted (to its /etc/passwd) is
    replaced in the container's layer, never followed: the image's file stays as it was."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text(
        "FROM busybox\nRUN mkdir -p /usr/sbin && cp -a /sbin/. /usr/sbin/ && rm -r /sbin && ln -s usr/sbin /sbin"
        " && ln -s /etc/passwd /usr/sbin/docker-init\n")
    assert mc(env, "build", "-t", "mcini-usrmerge", str(ctx), timeout=120).returncode == 0
    try:
        p = run(env, "--init", "mcini-usrmerge", "sh", "-c",
                "readlink /sbin; readlink /proc/1/exe; head -c 4 /etc/passwd; echo; exit 4")
        assert p.returncode == 4 and p.stdout.splitlines() == ["usr/sbin", "/usr/sbin/docker-init", "root"], p
        p = run(env, "mcini-usrmerge", "readlink", "/usr/sbin/docker-init")
        assert p.stdout.strip() == "/etc/passwd", p                      # the image is unchanged
    finally:
        mc(env, "rmi", "mcini-usrmerge")
    _nothing_left(env)


@pytest.fixture(scope="module")
def procwatch(tmp_path_factory) -> Path:
    return static_probe(tmp_path_factory, HERE / "procwatch.c")


CONTAINER_BINARIES = {"/bin/busybox", "/probe/procwatch", INIT}


def test_an_exec_is_never_a_host_binary_to_the_container(env, procwatch):
    """A process of the container walks /proc as fast as it can while `exec` runs `true` 40 times:
    each of those is the host's Python from the fork that puts it in the container's PID namespace
    up to its execve. Every /proc/PID/exe it reads must be a binary of the container's, or refused
    (EACCES: non-dumpable), or gone (ENOENT: exiting); /proc/PID/map_files may list entries only
    when the link, before or after, is a container's binary (listing them for a process whose exe
    is refused both times would be the host's interpreter's mappings). Then the same with --init:
    PID 1 is tini, never the host's interpreter. (Remove exec.py's set_dumpable(False) and this
    fails: the links read /usr/bin/python3.x.)"""
    for flags in ([], ["--init"]):
        name = "mcini-watch" + ("-init" if flags else "")
        p = mc(env, "run", "-d", *flags, "--name", name, "--network", "none", "-v", f"{procwatch}:/probe:ro",
               "busybox", "/probe/procwatch", "120", "/tmp/stop")
        assert p.returncode == 0, p.stderr
        try:
            for _ in range(40):
                assert mc(env, "exec", name, "true").returncode == 0
            mc(env, "exec", name, "touch", "/tmp/stop", check=0)
            for _ in range(100):
                if json.loads(mc(env, "inspect", name).stdout)["status"] != "running":
                    break
                time.sleep(0.1)
            out = mc(env, "logs", name).stdout.splitlines()
        finally:
            mc(env, "rm", "-f", name)
        assert out[0] == "ready", out
        seen = [line.split("\t") for line in out[1:]]
        assert {exe for _, exe, _, _ in seen} >= {"/bin/busybox"}, seen     # it saw the exec'd processes
        ok = CONTAINER_BINARIES | {"EACCES", "ENOENT", "ESRCH"}
        # A listing between a refused read and a process gone may be the exec'd binary's own: the
        # execve and the exit can both fall between the two reads (seen once in 105 sightings: EACCES,
        # 4 entries, ENOENT). A static busybox maps a handful of regions; the host's interpreter maps
        # dozens (a bare python3 32, the runtime's exec more), so such a listing is the container's
        # only if it is no longer than the container's binaries' own listings.
        own = max((int(s[2]) for s in seen if s[2].isdigit() and {s[1], s[3]} & CONTAINER_BINARIES), default=0)
        leaked = [s for s in seen if s[1] not in ok or s[3] not in ok
                  or s[2].isdigit() and int(s[2]) > 0 and not {s[1], s[3]} & CONTAINER_BINARIES
                  and not (s[3] in ("ENOENT", "ESRCH") and int(s[2]) <= own)]
        assert not leaked, leaked
        caught = sum(1 for s in seen if "EACCES" in (s[1], s[3]))
        print(f"\n{flags or 'default'}: {len(seen)} sightings, {caught} inside the exec's window (refused)")
        if flags:
            assert {s[1] for s in seen if s[0] == "1"} == {INIT}, seen
    _nothing_left(env)


def test_the_oci_runtime_runs_the_engines_init_spec_the_same_way(tmp_path):
    """ocispec.spec of a --init container (args `/sbin/docker-init -- ARGV`, the read-only bind) run
    by minicontainer-oci: tini is PID 1 there too and the command's status comes back through it."""
    from minicontainer.busybox import build_rootfs
    from minicontainer.runtime.config import ContainerConfig
    from minicontainer.runtime.ocispec import spec
    from tests.integration.oci_helpers import Subreaper, oci, write_config
    b = tmp_path / "bundle"
    b.mkdir()
    build_rootfs(b / "rootfs")
    cfg = ContainerConfig("busybox", network="none", init=True).validate()
    rec = {"id": "mcini-oci", "name": "mcini-oci", "config": cfg.to_dict(), "env": ["PATH=/bin:/usr/bin"],
           "argv": ["sh", "-c", "readlink /proc/1/exe; grep ' /sbin/docker-init ' /proc/self/mountinfo; exit 5"],
           "workdir": "/", "cgroup": "mcini-oci"}
    s = spec(rec, str(b / "rootfs"))
    write_config(b, s)
    env = dict(os.environ, MINICONTAINER_STATE_ROOT=str(tmp_path / "state"))
    with open(tmp_path / "out", "w+") as out:
        with Subreaper():
            p = oci(env, "create", "--bundle", str(b), "--pid-file", str(tmp_path / "pid"), "mcini-oci", stdout=out)
            assert p.returncode == 0, p.stderr
            try:
                pid = int((tmp_path / "pid").read_text())
                assert oci(env, "start", "mcini-oci").returncode == 0
                assert Subreaper.wait(pid) == 5
            finally:
                oci(env, "delete", "--force", "mcini-oci")
        out.seek(0)
        lines = out.read().splitlines()
    assert lines[0] == INIT and {"ro", "nosuid", "nodev"} <= set(lines[1].split()[5].split(",")), lines
    assert (b / "rootfs" / "sbin" / "docker-init").stat().st_size == 0     # a mount point, not a copy


def test_through_the_server_the_spare_gets_the_init_and_the_callers_override(tmp_path):
    """`minicontainer serve`: a --init run takes the parked spare (made before the request) and
    still gets tini; MC_INIT_BINARY is the calling command's, not the server's."""
    env = dict(os.environ, MINICONTAINER_STATE_ROOT=str(tmp_path / "state"),
               MINICONTAINER_DATA_ROOT=str(tmp_path / "data"))
    env.pop("MINICONTAINER_NO_SERVER", None)
    env.pop("MC_INIT_BINARY", None)
    assert "listening on" in mc(env, "serve", "-d", check=0).stdout
    try:
        for _ in range(2):
            p = run(env, "--init", "busybox", "sh", "-c", "readlink /proc/1/exe; exit 9")
            assert (p.returncode, p.stdout) == (9, INIT + "\n"), p
        p = run(dict(env, MC_INIT_BINARY=str(tmp_path / "no-tini")), "--init", "busybox", "true")
        assert p.returncode == 125 and str(tmp_path / "no-tini") in p.stderr, p
        assert int(mc(env, "serve", "--status", check=0).stdout.rsplit("served=", 1)[1].split()[0]) >= 3
    finally:
        mc(env, "serve", "--stop", check=0)
    _nothing_left(env)
