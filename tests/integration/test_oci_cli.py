"""minicontainer-oci from the command line: every verb, bad input, fault injection (root, real kernel).

Each test uses a private --root (via MINICONTAINER_STATE_ROOT) and the default cgroupsPath, which
lies below our cgroup parent, where the autouse leak check looks.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import time

import pytest

from minicontainer.oci.create import STEPS
from tests.integration.oci_helpers import (Subreaper, cgroup_dirs, config, make_bundle, oci, one_line_error,
                                           state, wait_status, write_config)


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ, MINICONTAINER_STATE_ROOT=str(tmp_path / "state"))
    e.pop("MINICONTAINER_OCI_TEST_DIE_AT", None)
    yield e
    root = tmp_path / "state" / "oci"
    for cid in (os.listdir(root) if root.exists() else []):
        oci(e, "delete", "--force", cid)


@pytest.fixture(scope="module")
def rootfs_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("ocib")


@pytest.fixture
def bundle(rootfs_cache):
    def make(args, **kw):
        return make_bundle(rootfs_cache, args, **kw)
    return make


def _gone(env, cid):
    p = oci(env, "state", cid)
    assert p.returncode != 0 and "does not exist" in p.stderr
    assert cgroup_dirs(f"minicontainer/{cid}") == []
    assert not os.path.exists(os.path.join(env["MINICONTAINER_STATE_ROOT"], "oci", cid))


def test_create_parks_start_runs_exit_code_and_output(env, bundle, tmp_path):
    b = bundle(["sh", "-c", "echo hello from $(hostname); cat /proc/self/uid_map | wc -l; exit 3"])
    out = open(tmp_path / "out", "w+")
    with Subreaper():
        p = oci(env, "create", "--bundle", str(b), "--pid-file", str(tmp_path / "pid"), "c1", stdout=out)
        assert p.returncode == 0, p.stderr
        s = state(env, "c1")
        pid = int((tmp_path / "pid").read_text())
        assert s["status"] == "created" and s["pid"] == pid and s["id"] == "c1"
        assert s["bundle"] == str(b) and s["created"].endswith("Z") and s["ociVersion"]
        # parked: in its own namespaces, not yet running the user's command
        assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
        assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
        assert b"echo hello" not in open(f"/proc/{pid}/cmdline", "rb").read()
        assert oci(env, "start", "c1").returncode == 0
        assert Subreaper.wait(pid) == 3
    out.seek(0)
    assert out.read().splitlines()[0] == "hello from minicontainer"
    assert state(env, "c1")["status"] == "stopped"
    assert oci(env, "delete", "c1").returncode == 0
    _gone(env, "c1")


def test_kill_delete_and_their_errors(env, bundle):
    b = bundle(["sleep", "100"])
    assert oci(env, "create", "--bundle", str(b), "k1", stdout=open(os.devnull, "w")).returncode == 0
    e = one_line_error(oci(env, "create", "--bundle", str(b), "k1"))               # duplicate id
    assert "already exists" in e
    assert oci(env, "start", "k1").returncode == 0
    assert state(env, "k1")["status"] == "running"
    assert "already running" in one_line_error(oci(env, "start", "k1"))
    assert "not stopped: running" in one_line_error(oci(env, "delete", "k1"))
    assert 'unknown signal \\"FOO\\"' in one_line_error(oci(env, "kill", "k1", "FOO"))
    assert state(env, "k1")["status"] == "running"
    assert oci(env, "kill", "k1", "KILL").returncode == 0
    assert wait_status(env, "k1", "stopped")["status"] == "stopped"
    assert "container not running" in one_line_error(oci(env, "kill", "k1", "TERM"))
    assert "cannot start a container that has stopped" in one_line_error(oci(env, "start", "k1"))
    assert oci(env, "delete", "k1").returncode == 0
    _gone(env, "k1")
    assert "does not exist" in one_line_error(oci(env, "delete", "k1"))
    assert "does not exist" in one_line_error(oci(env, "kill", "k1", "KILL"))


def test_kill_all_and_delete_force(env, bundle):
    b = bundle(["sh", "-c", "sleep 100 & sleep 100; true"])
    assert oci(env, "create", "--bundle", str(b), "f1", stdout=open(os.devnull, "w")).returncode == 0
    assert oci(env, "start", "f1").returncode == 0
    time.sleep(0.2)
    ps = json.loads(oci(env, "ps", "--format", "json", "f1").stdout)
    assert state(env, "f1")["pid"] in ps and len(ps) == 3
    assert oci(env, "kill", "--all", "f1", "KILL").returncode == 0
    assert wait_status(env, "f1", "stopped")["status"] == "stopped"
    assert oci(env, "delete", "f1").returncode == 0
    # delete --force of a running one
    assert oci(env, "create", "--bundle", str(b), "f2", stdout=open(os.devnull, "w")).returncode == 0
    assert oci(env, "start", "f2").returncode == 0
    assert oci(env, "delete", "--force", "f2").returncode == 0
    _gone(env, "f2")


def test_delete_of_a_created_container_ends_it(env, bundle):
    b = bundle(["true"])
    assert oci(env, "create", "--bundle", str(b), "d1", stdout=open(os.devnull, "w")).returncode == 0
    pid = state(env, "d1")["pid"]
    assert oci(env, "delete", "d1").returncode == 0
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.01)
    _gone(env, "d1")


def test_pause_resume_ps(env, bundle):
    b = bundle(["sleep", "100"])
    assert oci(env, "create", "--bundle", str(b), "p1", stdout=open(os.devnull, "w")).returncode == 0
    assert "container not running" in one_line_error(oci(env, "pause", "p1"))
    assert oci(env, "start", "p1").returncode == 0
    assert oci(env, "pause", "p1").returncode == 0
    assert state(env, "p1")["status"] == "paused"
    assert oci(env, "resume", "p1").returncode == 0
    assert state(env, "p1")["status"] == "running"
    assert "container not paused" in one_line_error(oci(env, "resume", "p1"))
    table = oci(env, "ps", "p1").stdout
    assert "sleep 100" in table
    assert oci(env, "delete", "--force", "p1").returncode == 0


def test_exec(env, bundle, tmp_path):
    b = bundle(["sleep", "100"])
    assert oci(env, "create", "--bundle", str(b), "e1", stdout=open(os.devnull, "w")).returncode == 0
    proc = config(b)["process"]
    proc.update(args=["sh", "-c", "echo X=$X in $(hostname) as $(id -u) at $HOME; cat /proc/1/cmdline | tr '\\0' ' '; exit 4"],
                env=[e for e in proc["env"] if not e.startswith("HOME=")] + ["X=1"])
    (tmp_path / "p.json").write_text(json.dumps(proc))
    assert "cannot exec in a created container" in one_line_error(
        oci(env, "exec", "--process", str(tmp_path / "p.json"), "e1"))
    assert oci(env, "start", "e1").returncode == 0
    out = open(tmp_path / "out", "w+")
    p = oci(env, "exec", "--process", str(tmp_path / "p.json"), "e1", stdout=out)
    assert p.returncode == 4, p.stderr
    out.seek(0)
    lines = out.read().splitlines()
    # in its pid namespace; HOME from the container's /etc/passwd, as runc sets it when none is given
    assert lines == ["X=1 in minicontainer as 0 at /root", "sleep 100 "]
    # --detach with a pid file: the process is in the container's cgroup and pid namespace
    proc["args"] = ["sleep", "50"]
    (tmp_path / "p.json").write_text(json.dumps(proc))
    with Subreaper():
        p = oci(env, "exec", "--detach", "--pid-file", str(tmp_path / "epid"), "--process",
                str(tmp_path / "p.json"), "e1", stdout=open(os.devnull, "w"))
        assert p.returncode == 0, p.stderr
        epid = int((tmp_path / "epid").read_text())
        assert epid in json.loads(oci(env, "ps", "--format", "json", "e1").stdout)
        assert os.readlink(f"/proc/{epid}/ns/pid") == os.readlink(f"/proc/{state(env, 'e1')['pid']}/ns/pid")
        os.kill(epid, signal.SIGKILL)
        assert Subreaper.wait(epid) == -9
    proc["args"] = ["no-such-program"]
    (tmp_path / "p.json").write_text(json.dumps(proc))
    e = one_line_error(oci(env, "exec", "--process", str(tmp_path / "p.json"), "e1"))
    assert "executable file not found" in e
    assert oci(env, "delete", "--force", "e1").returncode == 0
    assert "does not exist" in one_line_error(oci(env, "exec", "--process", str(tmp_path / "p.json"), "e1"))


def test_console_socket(env, bundle, tmp_path):
    from minicontainer import fdpass
    b = bundle(["sh", "-c", "tty; stty size; echo done"], terminal=True)
    cfg = config(b)
    cfg["process"]["consoleSize"] = {"height": 30, "width": 100}
    write_config(b, cfg)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(tmp_path / "console.sock"))
    srv.listen(1)
    p = oci(env, "create", "--bundle", str(b), "--console-socket", str(tmp_path / "console.sock"), "t1",
            stdout=open(os.devnull, "w"))
    assert p.returncode == 0, p.stderr
    conn, _ = srv.accept()
    data, fds = fdpass.recv(conn, 1024, 1)
    assert data == b"/dev/ptmx" and len(fds) == 1
    master = fds[0]
    assert oci(env, "start", "t1").returncode == 0
    out = b""
    deadline = time.monotonic() + 10
    while b"done" not in out and time.monotonic() < deadline:
        try:
            out += os.read(master, 4096)
        except OSError:
            break
    os.close(master)
    conn.close()
    srv.close()
    text = out.decode().replace("\r", "")
    assert text.splitlines()[:3] == ["/dev/console", "30 100", "done"] or "/dev/pts/0" in text, text
    assert "30 100" in text
    wait_status(env, "t1", "stopped")
    assert oci(env, "delete", "t1").returncode == 0
    e = one_line_error(oci(env, "create", "--bundle", str(b), "t2"))
    assert "--console-socket" in e
    _gone(env, "t2")


def test_config_inside_the_container(env, bundle, tmp_path):
    b = bundle(["sh", "-c", "touch /x 2>/dev/null && echo rw || echo ro; cat /proc/kcore | wc -c; "
                            "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo w || echo sys-ro; "
                            "cat /proc/sys/net/ipv4/ip_forward; ls /sys/fs/cgroup | grep -q memory && echo 1; "
                            "awk '$5 == \"/\" { print ($7 ~ /^shared/) ? \"shared\" : \"not-shared\" }' /proc/self/mountinfo; "
                            "umask; ls /data"],
               sysctl={"net.ipv4.ip_forward": "1"})
    cfg = config(b)
    (tmp_path / "vol").mkdir()
    (tmp_path / "vol" / "file-on-host").write_text("x")
    cfg["mounts"].append({"destination": "/data", "type": "bind", "source": str(tmp_path / "vol"),
                          "options": ["rbind", "ro", "nosuid"]})
    cfg["process"]["user"]["umask"] = 0o27
    write_config(b, cfg)
    out = open(tmp_path / "out", "w+")
    assert oci(env, "create", "--bundle", str(b), "i1", stdout=out).returncode == 0
    assert oci(env, "start", "i1").returncode == 0
    wait_status(env, "i1", "stopped")
    out.seek(0)
    assert out.read().splitlines() == ["ro", "0", "sys-ro", "1", "1", "not-shared", "0027", "file-on-host"]
    assert oci(env, "delete", "i1").returncode == 0


def test_hooks_run_in_order_with_state(env, bundle, tmp_path):
    b = bundle(["true"])
    cfg = config(b)
    log = tmp_path / "hooks.log"
    script = tmp_path / "hook.sh"
    script.write_text(f"#!/bin/sh\necho \"$1 $(cat | grep -o '\"id\": *\"[^\"]*\"')\" >> {log}\n")
    script.chmod(0o755)
    cfg["hooks"] = {k: [{"path": str(script), "args": ["hook.sh", k]}]
                    for k in ("prestart", "createRuntime", "poststart", "poststop")}
    write_config(b, cfg)
    assert oci(env, "create", "--bundle", str(b), "h1", stdout=open(os.devnull, "w")).returncode == 0
    assert oci(env, "start", "h1").returncode == 0
    wait_status(env, "h1", "stopped")
    assert oci(env, "delete", "h1").returncode == 0
    got = log.read_text().splitlines()
    assert [ln.split()[0] for ln in got] == ["prestart", "createRuntime", "poststart", "poststop"]
    assert all('"h1"' in ln for ln in got)
    cfg["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    write_config(b, cfg)
    assert "createRuntime hook /bin/false" in one_line_error(oci(env, "create", "--bundle", str(b), "h2"))
    _gone(env, "h2")


def test_bad_input_leaves_nothing(env, bundle, tmp_path):
    e = one_line_error(oci(env, "create", "--bundle", str(tmp_path / "missing"), "b1"))
    assert "does not exist" in e
    b = bundle(["true"])
    good = (b / "config.json").read_text()
    try:
        (b / "config.json").write_text("{bad")
        assert "invalid JSON" in one_line_error(oci(env, "create", "--bundle", str(b), "b1"))
        cfg = json.loads(good)
        cfg["process"]["user"]["uid"] = "root"
        write_config(b, cfg)
        assert "process.user.uid: expected an integer" in one_line_error(oci(env, "create", "--bundle", str(b), "b1"))
        cfg = json.loads(good)
        cfg["process"]["args"] = ["/no/such/program"]
        write_config(b, cfg)
        assert "no such file or directory" in one_line_error(oci(env, "create", "--bundle", str(b), "b1"))
        cfg["process"]["args"] = ["nope"]
        write_config(b, cfg)
        assert "executable file not found in $PATH" in one_line_error(oci(env, "create", "--bundle", str(b), "b1"))
        cfg = json.loads(good)
        cfg["linux"]["resources"]["memory"] = {"limit": 1}
        write_config(b, cfg)
        one_line_error(oci(env, "create", "--bundle", str(b), "b1"))
        cfg = json.loads(good)
        cfg["mounts"].append({"destination": "/x", "type": "bind", "source": "/no/such/dir", "options": ["bind"]})
        write_config(b, cfg)
        assert "/no/such/dir" in one_line_error(oci(env, "create", "--bundle", str(b), "b1"))
        # inside the container's /proc (runc's checkProcMount), directly or through the image's link
        os.symlink("/proc", b / "rootfs" / "mc-to-proc")
        for dest in ("/proc/sys/kernel", "/mc-to-proc/self/attr"):
            cfg = json.loads(good)
            cfg["mounts"].append({"destination": dest, "type": "bind", "source": str(tmp_path), "options": ["bind"]})
            write_config(b, cfg)
            assert "inside the container's /proc" in one_line_error(oci(env, "create", "--bundle", str(b), "b1"))
    finally:
        (b / "config.json").write_text(good)
        if os.path.islink(b / "rootfs" / "mc-to-proc"):
            os.unlink(b / "rootfs" / "mc-to-proc")
    assert "invalid container id" in one_line_error(oci(env, "create", "--bundle", str(b), "../x"))
    assert one_line_error(oci(env, "state")).count("level=error") == 1
    _gone(env, "b1")


@pytest.mark.parametrize("step", STEPS)
def test_killed_at_each_step_delete_force_leaves_nothing(env, bundle, step, tmp_path):
    b = bundle(["sleep", "100"])
    cfg = config(b)
    cfg["linux"]["cgroupsPath"] = "/minicontainer/oci-z/z1"       # a level above it to undo as well
    if step == "hooks":
        cfg["hooks"] = {"createRuntime": [{"path": "/bin/true"}]}
    write_config(b, cfg)
    e = dict(env, MINICONTAINER_OCI_TEST_DIE_AT=step)
    p = oci(e, "create", "--bundle", str(b), "--pid-file", str(tmp_path / "pid"), "z1",
            stdout=open(os.devnull, "w"))
    assert p.returncode == -signal.SIGKILL
    if step != "validated":
        assert oci(env, "state", "z1").returncode == 0
    d = oci(env, "delete", "--force", "z1")
    assert d.returncode == 0 or step == "validated", d.stderr
    _gone(env, "z1")
    assert cgroup_dirs("minicontainer/oci-z") == []


def test_state_survives_pid_reuse(env, bundle, tmp_path):
    b = bundle(["sleep", "100"])
    assert oci(env, "create", "--bundle", str(b), "r1", stdout=open(os.devnull, "w")).returncode == 0
    path = tmp_path / "state" / "oci" / "r1" / "state.json"
    rec = json.loads(path.read_text())
    real = rec["pid"]
    rec["pid"] = os.getpid()              # a live process that is not ours: its start time differs
    path.write_text(json.dumps(rec))
    assert state(env, "r1")["status"] == "stopped"
    rec["pid"] = real
    path.write_text(json.dumps(rec))
    assert state(env, "r1")["status"] == "created"
    assert oci(env, "delete", "r1").returncode == 0


def test_features_version_spec(env, tmp_path):
    f = json.loads(oci(env, "features").stdout)
    assert f["ociVersionMax"].startswith("1.") and "createRuntime" in f["hooks"] and "rbind" in f["mountOptions"]
    assert "minicontainer-oci version" in oci(env, "--version").stdout
    assert oci(env, "spec", "--bundle", str(tmp_path)).returncode == 0
    assert json.loads((tmp_path / "config.json").read_text())["root"]["path"] == "rootfs"
    assert "exists" in one_line_error(oci(env, "spec", "--bundle", str(tmp_path)))


def test_a_profile_never_seen_is_compiled_by_the_installed_command(env, bundle, tmp_path):
    # a client's own seccomp profile (podman's, containerd's) misses the cache the first time: the
    # installed `minicontainer-oci` (python -S, no site-packages on its path) must still load
    # libseccomp to compile it — before the fix: "seccomp: libseccomp unavailable (No module named
    # 'pyseccomp')"
    f = json.loads(oci(env, "features").stdout)
    assert f["linux"]["seccomp"]["enabled"] is True
    assert f["annotations"]["io.github.seccomp.libseccomp.version"].startswith("2.")
    b = bundle(["sh", "-c", "mkdir /tmp/x; echo rc=$?"])
    cfg = config(b)
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": [],
                               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                                             "errnoRet": 13}]}
    write_config(b, cfg)
    assert not (tmp_path / "state" / "seccomp").exists()        # nothing cached: it must compile
    out = open(tmp_path / "out", "w+")
    with Subreaper():
        p = oci(env, "create", "--bundle", str(b), "--pid-file", str(tmp_path / "pid"), "sc1",
                stdout=out, stderr=out)
        assert p.returncode == 0, p.stderr
        assert oci(env, "start", "sc1").returncode == 0
        assert Subreaper.wait(int((tmp_path / "pid").read_text())) == 0
    out.seek(0)
    text = out.read()
    assert "Permission denied" in text and "rc=1" in text, text
    assert oci(env, "delete", "sc1").returncode == 0
    assert len(list((tmp_path / "state" / "seccomp").glob("*.bpf"))) == 1


def test_log_file_json(env, tmp_path):
    p = oci(env, "--log", str(tmp_path / "log.json"), "--log-format", "json", "state", "nope")
    assert p.returncode == 1
    rec = json.loads((tmp_path / "log.json").read_text().splitlines()[-1])
    assert rec["level"] == "error" and "does not exist" in rec["msg"]


def test_mounts_never_propagate_to_the_host(env, bundle, tmp_path):
    """Even a host mount that is *shared*, passed in with rshared, carries nothing back to the host."""
    import subprocess
    d = tmp_path / "shared"
    (d / "sub").mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(d), str(d)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(d)], check=True)
        b = bundle(["sh", "-c", "mount -t tmpfs none /shared/sub && grep -c ' /shared/sub ' /proc/self/mountinfo"])
        cfg = config(b)
        cfg["mounts"].append({"destination": "/shared", "type": "bind", "source": str(d),
                              "options": ["rbind", "rshared"]})
        write_config(b, cfg)
        out = open(tmp_path / "out", "w+")
        assert oci(env, "create", "--bundle", str(b), "m1", stdout=out).returncode == 0
        assert oci(env, "start", "m1").returncode == 0
        wait_status(env, "m1", "stopped")
        out.seek(0)
        assert out.read().strip() == "1"                       # mounted inside
        assert str(d / "sub") not in open("/proc/self/mountinfo").read()   # not on the host
        assert oci(env, "delete", "m1").returncode == 0
    finally:
        subprocess.run(["umount", "-R", str(d)], check=False)


@pytest.fixture
def open_dir():
    """A directory the container's mapped root (uid 100000 on the host) can reach: pytest's own
    tmp_path lies below a 0700 directory, as a rootfs under /root would (runc needs the same)."""
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="ociuserns-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_user_namespace_mappings(env, open_dir, tmp_path):
    from pathlib import Path
    from tests.integration.oci_helpers import make_bundle
    b = make_bundle(Path(open_dir), ["sh", "-c", "cat /proc/self/uid_map; id -u; ls -ln /bin/busybox | awk '{print $3}'"])
    cfg = config(b)
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    write_config(b, cfg)
    out = open(tmp_path / "out", "w+")
    p = oci(env, "create", "--bundle", str(b), "u1", stdout=out)
    assert p.returncode == 0, p.stderr
    pid = state(env, "u1")["pid"]
    assert open(f"/proc/{pid}/uid_map").read().split() == ["0", "100000", "65536"]
    assert oci(env, "start", "u1").returncode == 0
    wait_status(env, "u1", "stopped")
    out.seek(0)
    assert out.read().split() == ["0", "100000", "65536", "0", "65534"]   # host root's files: nobody
    assert oci(env, "delete", "u1").returncode == 0


def test_exec_forwards_signals(env, bundle, tmp_path):
    import subprocess
    from tests.integration.oci_helpers import command
    b = bundle(["sleep", "100"])
    assert oci(env, "create", "--bundle", str(b), "s1", stdout=open(os.devnull, "w")).returncode == 0
    assert oci(env, "start", "s1").returncode == 0
    proc = config(b)["process"]
    proc["args"] = ["sh", "-c", "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done"]
    (tmp_path / "p.json").write_text(json.dumps(proc))
    out = open(tmp_path / "out", "w+")
    r = subprocess.Popen(command() + ["exec", "--process", str(tmp_path / "p.json"), "s1"], env=env,
                         stdout=out, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while "ready" not in open(tmp_path / "out").read() and time.monotonic() < deadline:
        time.sleep(0.02)
    r.send_signal(signal.SIGTERM)
    assert r.wait(10) == 7
    assert open(tmp_path / "out").read().split() == ["ready", "got-term"]
    assert oci(env, "delete", "--force", "s1").returncode == 0


def test_nested_cgroups_path_is_removed_to_where_it_began(env, bundle):
    b = bundle(["true"])
    cfg = config(b)
    cfg["linux"]["cgroupsPath"] = "/minicontainer/oci-a/oci-b/n1"
    cfg["linux"]["resources"] = {"memory": {"limit": 32 << 20}, "pids": {"limit": 10}}
    write_config(b, cfg)
    assert oci(env, "create", "--bundle", str(b), "n1", stdout=open(os.devnull, "w")).returncode == 0
    assert cgroup_dirs("minicontainer/oci-a/oci-b/n1")
    from minicontainer.cgroups import detect_layout
    lay = detect_layout()
    if lay.backend == "v1":
        assert open(os.path.join(lay.v1["memory"], "minicontainer/oci-a/oci-b/n1/memory.limit_in_bytes")).read().strip() == str(32 << 20)
    assert oci(env, "delete", "n1").returncode == 0
    assert cgroup_dirs("minicontainer/oci-a") == []
