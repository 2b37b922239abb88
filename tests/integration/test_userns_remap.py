"""Issue 16, user namespaces: `run --userns=remap` makes the container's root the `minicontainer`
range of /etc/subuid on the host (runtime/userns.py). Observed as a user would: `id` and `ls -ln`
inside, /proc/PID/status and the upper dir's owners on the host, `exec`, a volume, the error when
the range is missing, and the default (no flag) unchanged.

The subuid/subgid files are copies in tmp (MINICONTAINER_SUBUID/SUBGID): the host's entry when it
has one (`make setup` adds it), else the range `make setup` would add. The host's files are never
changed by these tests."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from minicontainer import subids
from tests.integration.test_runtime_cli import PY, ROOT, _nothing_left, mc

DOCKER_CAPS = "00000000a80425fb"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = make_env(tmp_path_factory.mktemp("mcuserns"))
    yield env
    mc(env, "gc")


def make_env(base: Path, **extra) -> dict:
    """Private roots in ``base``, and copies of /etc/subuid and /etc/subgid with the range (SUB,
    SUBG: its host uid and gid)."""
    files = {}
    for var, host in zip(("MINICONTAINER_SUBUID", "MINICONTAINER_SUBGID"), ("/etc/subuid", "/etc/subgid")):
        text = Path(host).read_text() if os.path.exists(host) else ""
        files[var] = base / Path(host).name
        files[var].write_text(text)
    env = dict(os.environ, MINICONTAINER_STATE_ROOT=str(base / "state"),
               MINICONTAINER_DATA_ROOT=str(base / "data"), MINICONTAINER_NO_SERVER="1",
               **{k: str(v) for k, v in files.items()}, **extra)
    old = {k: os.environ.get(k) for k in files}
    os.environ.update({k: str(v) for k, v in files.items()})      # subids.ensure on the copies
    try:
        subids.ensure()
        env["SUB"] = str(subids.mapping()["uidMappings"][0]["hostID"])
        env["SUBG"] = str(subids.mapping()["gidMappings"][0]["hostID"])
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return env


def sub(env) -> int:
    return int(env["SUB"])


def run(env, *args, code=0, userns="remap"):
    p = mc(env, "run", "--rm", "--network", "none", f"--userns={userns}", *args)
    assert p.returncode == code, (args, p.returncode, p.stdout, p.stderr)
    return p


def field(pid, name) -> list[str]:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(line.split(":", 1)[1].split() for line in f if line.startswith(name + ":"))
    except OSError:
        return ["Z"]                # gone meanwhile


def test_root_inside_is_the_subordinate_uid_on_the_host(env):
    mc(env, "run", "-d", "--name", "un1", "--network", "none", "--userns=remap", "busybox",
       "sleep", "60", check=0)
    try:
        rec = json.loads(mc(env, "inspect", "un1", check=0).stdout)
        pid = rec["State"]["Pid"]
        s, g = sub(env), int(env["SUBG"])
        assert field(pid, "Uid") == [str(s)] * 4 and field(pid, "Gid") == [str(g)] * 4
        assert Path(f"/proc/{pid}/uid_map").read_text().split() == ["0", str(s), "65536"]
        assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
        assert rec["HostConfig"]["UsernsMode"] == "remap"
        assert rec["HostConfig"]["IdMappings"]["uidMappings"] == [{"containerID": 0, "hostID": s, "size": 65536}]
        out = mc(env, "exec", "un1", "sh", "-c", "id -u; id -g; readlink /proc/self/ns/user; "
                 "grep -E '^(CapEff|Seccomp)' /proc/self/status", check=0).stdout.split("\n")
        assert out[:3] == ["0", "0", os.readlink(f"/proc/{pid}/ns/user")], out      # joined its user ns
        assert "CapEff:\t" + DOCKER_CAPS in out and "Seccomp:\t2" in out, out
        # the exec'd process on the host: the subordinate uid too
        p = subprocess.Popen([PY, "-m", "minicontainer.cli", "exec", "un1", "sleep", "7.5"], env=env, cwd=ROOT)
        try:
            userns = os.readlink(f"/proc/{pid}/ns/user")
            found = []
            for _ in range(100):
                found = [q for q in os.listdir("/proc") if q.isdigit() and _cmd(q) == b"sleep\x007.5\x00"
                         and _ns(q) == userns]
                if found:
                    break
                time.sleep(0.05)
            assert found and field(found[0], "Uid") == [str(s)] * 4
        finally:
            p.wait(timeout=20)
    finally:
        mc(env, "rm", "-f", "un1")
    # the user namespace died with it: no live process is left in it (a killed PID 1 may stay a
    # zombie until the host's init reaps it: it runs nothing)
    assert not [q for q in os.listdir("/proc") if q.isdigit() and _ns(q) == userns and field(q, "State")[0] != "Z"]
    _nothing_left(env)


def _cmd(pid) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _ns(pid) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/user")
    except OSError:
        return ""


def test_the_images_files_are_roots_inside_and_writes_are_the_ranges_on_the_host(env):
    p = mc(env, "run", "--name", "un2", "--network", "none", "--userns=remap", "busybox", "sh", "-c",
       "ls -ln /bin/busybox | awk '{print $3, $4}'; ls -lnd / /tmp /dev | awk '{print $3, $4}'; "
       "echo hi > /new && mkdir /d && touch /d/f && chown 1000:1001 /d/f && echo x >> /etc/passwd && "
       "echo wrote; cat /proc/self/uid_map; ls /proc/1/ >/dev/null && echo proc; "
       "grep -E '^(CapEff|Seccomp|NoNewPrivs)' /proc/self/status; "
       "hostname x 2>&1; umount /proc/timer_list 2>&1; httpd -p 80 && echo bound80")
    try:
        assert p.returncode == 0, (p.stdout, p.stderr)
        rec = json.loads(mc(env, "inspect", "un2", check=0).stdout)
        out = p.stdout.splitlines()
        assert out[:4] == ["0 0"] * 4, out              # busybox, /, /tmp, /dev: root's inside
        assert "wrote" in out and "proc" in out, out
        s, g = sub(env), int(env["SUBG"])
        assert f"0 {s} 65536" in " ".join(out[5].split()), out
        assert "CapEff:\t" + DOCKER_CAPS in out and "Seccomp:\t2" in out and "NoNewPrivs:\t0" in out, out
        assert any("hostname" in ln and "not permitted" in ln for ln in out), out   # no CAP_SYS_ADMIN
        assert any("timer_list" in ln for ln in out), out                            # the mask stays
        assert "bound80" in out, out          # CAP_NET_BIND_SERVICE counts: its netns is the userns's
        upper = Path(rec["upperdir"])
        own = {n: (os.lstat(upper / n).st_uid, os.lstat(upper / n).st_gid) for n in ("", "new", "d", "d/f", "etc/passwd")}
        assert own == {"": (s, g), "new": (s, g), "d": (s, g), "d/f": (s + 1000, g + 1001),
                       "etc/passwd": (s, g)}, own
        assert oct(upper.parent.stat().st_mode & 0o777) == "0o700"          # nothing readable by others
        # commit: the new layer holds the container's ids, not the host's (as Docker's commit)
        mc(env, "commit", "un2", "un2-img", check=0)
        out = run(env, "un2-img", "ls", "-ln", "/new", "/d/f", userns="host").stdout.split("\n")
        assert [ln.split()[2:4] for ln in out if ln] == [["1000", "1001"], ["0", "0"]], out
    finally:
        mc(env, "rm", "-f", "un2")
        mc(env, "rmi", "un2-img")
    _nothing_left(env)


def test_a_bridged_remapped_container_has_its_network(env):
    """--network bridge: the runtime plugs the veth into a network namespace that the container's
    user namespace owns; root inside binds port 80 there."""
    p = mc(env, "run", "--rm", "--userns=remap", "busybox", "sh", "-c",
           "ip -4 addr show eth0 | grep -c inet; httpd -p 80 && echo bound80; id -u")
    assert p.returncode == 0 and p.stdout.split() == ["1", "bound80", "0"], (p.stdout, p.stderr)
    _nothing_left(env)


def test_a_volume_owned_by_host_root_is_nobodys_and_not_writable(env, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir(mode=0o755)
    os.chmod(vol, 0o755)
    script = "ls -lnd /data | awk '{print $3, $4}'; touch /data/f 2>&1; echo rc=$?"
    out = run(env, "-v", f"{vol}:/data", "busybox", "sh", "-c", script).stdout.splitlines()
    assert out[0] == "65534 65534" and "Permission denied" in out[1] and out[-1] == "rc=1", out
    assert not (vol / "f").exists()
    os.chown(vol, sub(env), int(env["SUBG"]))           # the fix: the host hands it to the range
    out = run(env, "-v", f"{vol}:/data", "busybox", "sh", "-c", script).stdout.splitlines()
    assert out == ["0 0", "rc=0"], out
    assert os.stat(vol / "f").st_uid == sub(env)
    assert run(env, "-v", f"{vol}:/data", "busybox", "ls", "-ln", "/data/f", userns="host").stdout.split()[2] == str(sub(env))
    _nothing_left(env)


def test_a_missing_subuid_entry_is_exit_125_with_the_fix(env, tmp_path):
    empty = tmp_path / "subuid"
    empty.write_text("alice:100000:65536\n")
    bad = dict(env, MINICONTAINER_SUBUID=str(empty))
    p = mc(bad, "run", "--rm", "--network", "none", "--userns=remap", "busybox", "true")
    assert p.returncode == 125, (p.stdout, p.stderr)
    assert f"no 'minicontainer' entry in {empty}" in p.stderr and "sudo make setup" in p.stderr, p.stderr
    assert "minicontainer:" in p.stderr.split("add the line", 1)[1]
    assert "Traceback" not in p.stderr
    p = mc(env, "run", "--rm", "--userns=remap", "--privileged", "busybox", "true")
    assert p.returncode == 125 and "--privileged is incompatible with --userns=remap" in p.stderr
    _nothing_left(env)


def test_the_default_has_no_user_namespace(env):
    mc(env, "run", "-d", "--name", "un3", "--network", "none", "busybox", "sleep", "60", check=0)
    try:
        rec = json.loads(mc(env, "inspect", "un3", check=0).stdout)
        pid = rec["State"]["Pid"]
        assert os.readlink(f"/proc/{pid}/ns/user") == os.readlink("/proc/self/ns/user")
        assert field(pid, "Uid") == ["0"] * 4
        assert (rec["HostConfig"]["UsernsMode"], rec["HostConfig"]["IdMappings"]) == ("host", None)
        upper = Path(rec["upperdir"])
        assert (upper.stat().st_uid, upper.stat().st_gid) == (0, 0)
    finally:
        mc(env, "rm", "-f", "un3")
    _nothing_left(env)


def test_run_help_documents_the_flag(env):
    out = mc(env, "run", "--help", check=0).stdout
    assert "--userns {host,remap}" in out and "nobody (65534)" in " ".join(out.split())


def test_a_user_and_an_init_inside_a_remapped_container(env):
    """-u 1000: the container's uid 1000 (SUB+1000 on the host), no effective capabilities (Docker's
    rule); --init: PID 1 is the init, confined (the same user, as Docker's tini) and remapped as well."""
    out = run(env, "--init", "-u", "1000", "busybox", "sh", "-c",
              "id -u; grep CapEff /proc/self/status; grep Uid /proc/1/status; cat /proc/1/uid_map").stdout.split()
    assert out[:3] == ["1000", "CapEff:", "0" * 16], out
    assert out[3:8] == ["Uid:", "1000", "1000", "1000", "1000"] and out[8:] == ["0", str(sub(env)), "65536"], out
    _nothing_left(env)


def test_root_inside_may_edit_its_generated_etc_files(env):
    """/etc/hostname (and, on a network, /etc/hosts and /etc/resolv.conf) are the runtime's files,
    bind-mounted: a remapped root got them as host root's (nobody inside, read-only even for root);
    Docker chowns them to the remapped root. Ours: the remapped root's group, 0664 — root inside
    writes, a user only reads."""
    p = run(env, "busybox", "sh", "-c",
            "ls -ln /etc/hostname | awk '{print $1, $3, $4}'; echo renamed > /etc/hostname && cat /etc/hostname; "
            "su nobody -s /bin/sh -c 'cat /etc/hostname >/dev/null && echo user-reads; "
            "echo x >> /etc/hostname || echo user-cannot-write' 2>/dev/null")
    lines = p.stdout.splitlines()
    assert lines[0] == "-rw-rw-r-- 65534 0", p.stdout       # owner: host root, unmapped (nobody)
    assert "renamed" in lines and "user-reads" in lines and "user-cannot-write" in lines, p.stdout
    _nothing_left(env)


def _records(env) -> list[str]:
    state = Path(env["MINICONTAINER_STATE_ROOT"])
    return sorted(d.name for d in state.iterdir() if len(d.name) == 64) if state.exists() else []


def test_container_network_of_a_remapped_peer_joins_its_user_namespace(env):
    """--network container:NAME, both remapped: the second joins the first's network namespace and,
    since that belongs to the first's user namespace, that user namespace too — same interfaces and
    address, same maps; its root binds port 80 there (CAP_NET_BIND_SERVICE over the namespace's
    owner) and sees the image's files as its own."""
    mc(env, "run", "-d", "--name", "unet1", "--userns=remap", "busybox", "sleep", "60", check=0)
    try:
        rec = json.loads(mc(env, "inspect", "unet1", check=0).stdout)
        pid = rec["State"]["Pid"]
        first = mc(env, "exec", "unet1", "sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}'", check=0).stdout
        assert first.count(".") == 3, first
        p = mc(env, "run", "--rm", "--userns=remap", "--network", "container:unet1", "busybox", "sh", "-c",
               "ip -4 -o addr show eth0 | awk '{print $4}'; cat /proc/self/uid_map /proc/self/gid_map; "
               "readlink /proc/self/ns/user; readlink /proc/self/ns/net; id -u; stat -c %u /bin/busybox; "
               "httpd -p 80 && echo bound80; touch /new && echo wrote")
        assert p.returncode == 0, (p.stdout, p.stderr)
        out = p.stdout.splitlines()
        assert out[0] == first.strip(), out
        assert [ln.split() for ln in out[1:3]] == [Path(f"/proc/{pid}/{m}").read_text().split()
                                                   for m in ("uid_map", "gid_map")], out
        assert out[3:5] == [os.readlink(f"/proc/{pid}/ns/user"), os.readlink(f"/proc/{pid}/ns/net")], out
        assert out[5:] == ["0", "0", "bound80", "wrote"], out
    finally:
        mc(env, "rm", "-f", "unet1")
    _nothing_left(env)


def test_container_network_with_one_side_remapped_is_refused(env):
    for first, second, fix in (("remap", "host", "--userns=remap"), ("host", "remap", "--userns=host")):
        mc(env, "run", "-d", "--name", "unet2", f"--userns={first}", "--network", "none", "busybox",
           "sleep", "60", check=0)
        try:
            before = _records(env)
            layers = sorted(os.listdir(Path(env["MINICONTAINER_DATA_ROOT"], "containers")))
            for rm in ((), ("--rm",)):
                p = mc(env, "run", *rm, f"--userns={second}", "--network", "container:unet2", "busybox", "true")
                assert p.returncode == 125, (p.stdout, p.stderr)
                assert f"container unet2 runs with --userns={first}" in p.stderr, p.stderr
                assert f"run this one with {fix} too" in p.stderr and p.stderr.count("\n") == 1, p.stderr
                assert _records(env) == before
                assert sorted(os.listdir(Path(env["MINICONTAINER_DATA_ROOT"], "containers"))) == layers
        finally:
            mc(env, "rm", "-f", "unet2")
    _nothing_left(env)


def test_a_terminal_is_the_containers_own_and_its_console(env):
    # -t in a remapped container: the pty is opened before the user namespace is entered (G may
    # still mount then: /dev/console), and handed to the container's root, not the host's
    from tests.integration.test_runtime_cli import _in_terminal
    code, shown = _in_terminal(env, ["run", "--rm", "-it", "--userns", "remap", "--network", "none",
                                     "busybox", "sh"],
                               [b"stat -c '%u %n' $(tty) /dev/console; echo con$((1+1)) > /dev/console\n",
                                b"exit 3\n"])
    assert code == 3, shown
    assert "\r\n0 /dev/pts/0\r\n0 /dev/console\r\ncon2\r\n" in shown, shown
    _nothing_left(env)
