import os
import socket

import pytest

from minicontainer import namespaces, syscalls
from minicontainer.errors import MiniContainerError, NotFoundError


def _child_in(flags, setup):
    """Fork a child that unshares ``flags``, runs ``setup``, signals ready, then waits for EOF."""
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r1); os.close(w2)
            syscalls.unshare(flags)
            setup()
            os.write(w1, b"x")
            os.read(r2, 1)
            code = 0
        finally:
            os._exit(code)
    os.close(w1); os.close(r2)
    assert os.read(r1, 1) == b"x"
    os.close(r1)
    return pid, w2


def _finish(pid, w):
    os.close(w)
    os.waitpid(pid, 0)


def test_join_uts_sees_child_hostname():
    pid, w = _child_in(syscalls.CLONE_NEWUTS, lambda: syscalls.sethostname("mcns-join"))
    try:
        r, wr = os.pipe()
        j = os.fork()
        if j == 0:
            try:
                namespaces.enter(pid, ["uts"])
                os.write(wr, socket.gethostname().encode())
            finally:
                os._exit(0)
        os.close(wr)
        os.waitpid(j, 0)
        assert os.read(r, 100) == b"mcns-join"
        os.close(r)
        assert socket.gethostname() != "mcns-join"
    finally:
        _finish(pid, w)


def test_uid_map_refused_is_clear_error():
    pid, w = _child_in(syscalls.CLONE_NEWUSER, lambda: None)
    try:
        with pytest.raises(MiniContainerError, match="uid_map"):
            namespaces.write_id_maps(pid, "0 100000 1\n0 200000 1", "0 100000 1")
    finally:
        _finish(pid, w)


def test_enter_dead_pid():
    with pytest.raises(NotFoundError, match="no process"):
        namespaces.enter(2**22 + 7, ["uts"])


# --- namespaces.spawn: one test per kind, the isolation a user would see ----------------------------

from pathlib import Path  # noqa: E402

from minicontainer.errors import ConfigError, ExecError, NamespaceError  # noqa: E402


def _output(argv, kinds, **kw):
    """Run ``argv`` in new namespaces ``kinds``; return (exit code, stdout+stderr)."""
    r, w = os.pipe()

    def run():
        os.dup2(w, 1)
        os.dup2(w, 2)
        os.execvp(argv[0], argv)

    try:
        proc = namespaces.spawn(run, kinds, **kw)
    finally:
        os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    return proc.wait(10), out


def _children_of_me() -> set[int]:
    kids = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == os.getpid():
                    kids.add(int(d.name))
            except (OSError, IndexError):
                pass
    return kids


def test_uts_hostname_change_is_invisible_on_the_host():
    host = socket.gethostname()
    assert _output(["hostname"], ["uts"], hostname="mcns-uts") == (0, "mcns-uts\n")
    assert socket.gethostname() == host


def test_pid_child_is_pid_1_and_ps_lists_only_its_tree():
    code, out = _output(["sh", "-c", "echo $$; ps -e -o pid=,comm="], ["pid", "mnt"], mount_proc=True)
    assert code == 0
    first, *ps = out.splitlines()
    assert first == "1"
    assert [line.split() for line in ps] == [["1", "sh"], ["2", "ps"]]


def test_pid_without_a_new_proc_ps_still_shows_the_host():
    code, out = _output(["sh", "-c", "echo $$; ps -e -o pid= | wc -l"], ["pid"])
    assert code == 0
    pid_inside, count = out.split()
    assert pid_inside == "1" and int(count) > 5      # the host's /proc: many processes


def test_mnt_mount_inside_is_absent_from_the_host(tmp_path):
    target = tmp_path / "inside"
    target.mkdir()
    code, out = _output(["sh", "-c", f"mount -t tmpfs mcns-tmpfs {target} && grep -c ' {target} ' /proc/self/mountinfo"],
                        ["mnt"])
    assert (code, out) == (0, "1\n")
    assert f" {target} " not in Path("/proc/self/mountinfo").read_text()


def test_mnt_shared_propagation_leaks_until_made_private(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    syscalls.mount("mcns-shared", shared, "tmpfs")
    try:
        syscalls.mount(None, shared, None, syscalls.MS_SHARED)
        (shared / "a").mkdir()
        (shared / "b").mkdir()
        mountinfo = lambda: Path("/proc/self/mountinfo").read_text()  # noqa: E731
        # propagation left shared: the child's mount appears on the host (the failure)
        assert _output(["mount", "-t", "tmpfs", "mcns-leak", str(shared / "a")], ["mnt"], propagation=None)[0] == 0
        assert f" {shared / 'a'} " in mountinfo()
        syscalls.umount2(shared / "a")
        # the fix: recursively private first (spawn's default)
        assert _output(["mount", "-t", "tmpfs", "mcns-priv", str(shared / "b")], ["mnt"])[0] == 0
        assert f" {shared / 'b'} " not in mountinfo()
    finally:
        syscalls.umount2(shared, syscalls.MNT_DETACH)


def test_ipc_sysv_object_is_invisible_outside():
    code, out = _output(["sh", "-c", "ipcmk -M 4096 >/dev/null && tail -n +2 /proc/sysvipc/shm"], ["ipc"])
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 1                    # a new IPC namespace starts empty: only ours
    key = lines[0].split()[0]
    host_keys = [ln.split()[0] for ln in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]]
    assert key not in host_keys


def test_net_has_only_lo_and_it_is_down():
    code, out = _output(["ip", "-o", "link"], ["net"])
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 1 and lines[0].split()[1] == "lo:" and "state DOWN" in lines[0]


def test_user_root_inside_maps_to_the_chosen_uid_outside():
    r, w = os.pipe()

    def inside():
        os.write(w, f"{os.getuid()} {os.getgid()}".encode())
        os.close(w)
        import time
        time.sleep(30)

    with namespaces.spawn(inside, ["user"], uid_map="0 123456 1", gid_map="0 123457 1") as proc:
        os.close(w)
        assert os.read(r, 100) == b"0 0"
        os.close(r)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        uid_line = next(ln for ln in status.splitlines() if ln.startswith("Uid:"))
        gid_line = next(ln for ln in status.splitlines() if ln.startswith("Gid:"))
        assert uid_line.split()[1:] == ["123456"] * 4
        assert gid_line.split()[1:] == ["123457"] * 4


def test_cgroup_namespace_root_is_slash():
    code, out = _output(["cat", "/proc/self/cgroup"], ["cgroup"])
    assert code == 0 and out
    assert all(line.endswith(":/") for line in out.splitlines()), out


def test_time_boottime_differs_by_the_offset():
    offset = 10 * 86400
    code, out = _output(["cat", "/proc/uptime"], ["time"], time_offsets={"boottime": offset})
    outside = float(Path("/proc/uptime").read_text().split()[0])
    assert code == 0
    assert abs(float(out.split()[0]) - outside - offset) < 5


def test_join_sees_the_hostname_and_mounts_of_a_running_process(tmp_path):
    target = tmp_path / "m"
    target.mkdir()
    r, w = os.pipe()

    def inside():
        syscalls.mount("mcns-join", target, "tmpfs")
        (target / "hello").write_text("from inside\n")
        os.write(w, b"x")
        os.close(w)
        import time
        time.sleep(30)

    with namespaces.spawn(inside, ["uts", "mnt", "pid"], hostname="mcns-joined") as proc:
        os.close(w)
        assert os.read(r, 1) == b"x"
        os.close(r)
        seen = namespaces.run_in(proc.pid, ["uts", "mnt", "pid"],
                                 lambda: (socket.gethostname(), (target / "hello").read_text(), os.getpid()))
        assert seen[:2] == ("mcns-joined", "from inside\n")
        assert seen[2] > 1               # a joiner's child lands in the PID namespace, not as PID 1
        assert not (target / "hello").exists()     # and the host still sees the empty directory
        assert namespaces.compare(os.getpid(), proc.pid) == {
            k: k not in ("uts", "mnt", "pid") for k in namespaces.ids(proc.pid)}


# --- bad input: a clear error, no child left behind -------------------------------------------------

@pytest.mark.parametrize("kw, err, match", [
    (dict(namespaces=["uts", "bogus"]), ConfigError, "unknown namespace 'bogus'"),
    (dict(namespaces=["uts"], uid_map="0 1000 1"), ConfigError, "need a new user namespace"),
    (dict(namespaces=["user"], uid_map="zero 1000 1"), ConfigError, "inside outside count"),
    (dict(namespaces=["user"], uid_map="0 100000 10\n5 200000 1"), NamespaceError, r"uid_map: EINVAL .* refused"),
    (dict(namespaces=["net"], hostname="x"), ConfigError, "hostname needs a new uts namespace"),
    (dict(namespaces=["uts"], hostname="h" * 65), ConfigError, "1-64 bytes"),
    (dict(namespaces=["time"], time_offsets={"realtime": 5}), ConfigError, "not namespaced"),
    (dict(namespaces=["pid"], mount_proc=True), ConfigError, "mount_proc needs a new mnt namespace"),
])
def test_spawn_bad_input_is_a_clear_error_and_leaves_no_child(kw, err, match):
    kids = _children_of_me()
    with pytest.raises(err, match=match):
        namespaces.spawn(["true"], **kw)
    assert _children_of_me() == kids


def test_spawn_missing_program_is_exec_error_127():
    kids = _children_of_me()
    with pytest.raises(ExecError, match="exec mcns-no-such-program: ENOENT") as info:
        namespaces.spawn(["mcns-no-such-program"], ["uts", "pid"])
    assert info.value.exit_code == 127
    assert _children_of_me() == kids


@pytest.mark.parametrize("call", [
    lambda pid: namespaces.compare(os.getpid(), pid),
    lambda pid: namespaces.enter(pid, ["uts"]),
    lambda pid: namespaces.run_in(pid, ["uts"], os.getpid),
])
def test_a_pid_that_does_not_exist_is_not_found(call):
    with pytest.raises(NotFoundError, match="no process with pid"):
        call(2**22 + 11)


def test_all_eight_with_maps_offsets_hostname_and_proc():
    """The combination notebook 01 shows: the offsets must be written before the uid switch."""
    code, out = _output(["sh", "-c", "echo $$ $(id -u) $(hostname) $(cut -d' ' -f1 /proc/uptime); ps -e -o pid= | wc -l"],
                        list(namespaces.KINDS), hostname="mcns-all", uid_map="0 100000 65536",
                        time_offsets={"boottime": 86400, "monotonic": -1.5}, mount_proc=True)
    assert code == 0, out
    first, count = out.splitlines()
    pid, uid, name, uptime = first.split()
    assert (pid, uid, name) == ("1", "0", "mcns-all")
    assert abs(float(uptime) - float(Path("/proc/uptime").read_text().split()[0]) - 86400) < 5
    assert int(count) == 3             # sh, ps, wc
