"""The runtime and CLI as a user calls them (notebook 06). Private state/data roots per test module."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("mcrt")
    env = dict(os.environ, MINICONTAINER_STATE_ROOT=str(base / "state"),
               MINICONTAINER_DATA_ROOT=str(base / "data"))
    yield env


def mc(env, *args, timeout=30, check=None):
    p = subprocess.run([PY, "-m", "minicontainer.cli", *args], env=env, capture_output=True,
                       text=True, timeout=timeout, cwd=ROOT)
    if check is not None:
        assert p.returncode == check, (p.returncode, p.stdout, p.stderr)
    return p


def _nothing_left(env):
    state = Path(env["MINICONTAINER_STATE_ROOT"])
    recs = [d for d in state.iterdir() if len(d.name) == 64] if state.exists() else []
    layers = Path(env["MINICONTAINER_DATA_ROOT"], "containers")
    assert recs == [] and (not layers.exists() or list(layers.iterdir()) == [])


@contextlib.contextmanager
def detached(env, name, *argv):
    """A `run -d --network none` container named ``name`` running ``argv``; removed afterwards, and
    then nothing of it may be left."""
    mc(env, "run", "-d", "--name", name, "--network", "none", "busybox", *argv, check=0)
    try:
        yield name
    finally:
        mc(env, "rm", "-f", name)
    _nothing_left(env)


def test_run_returns_exit_code_and_output(roots):
    p = mc(roots, "run", "--rm", "--network", "none", "--hostname", "mcrt-h", "-e", "A=1",
           "busybox", "sh", "-c", "echo $A $(hostname) $$; exit 3")
    assert p.returncode == 3 and p.stdout == "1 mcrt-h 1\n"
    _nothing_left(roots)


def test_killed_by_signal_is_128_plus_n(roots):
    # PID 1 ignores signals it has no handler for, so kill a child of it.
    p = mc(roots, "run", "--rm", "--network", "none", "busybox", "sh", "-c", "sh -c 'kill -9 $$'; exit $?")
    assert p.returncode == 137


@pytest.mark.parametrize("args,code,words", [
    (["nosuchimage", "true"], 125, "not found"),
    (["busybox", "nope"], 127, "executable file not found"),
    (["busybox", "/etc/passwd"], 126, "exec /etc/passwd"),
    (["--memory", "lots", "busybox", "true"], 125, "--memory"),
    (["--cpus", "-1", "busybox", "true"], 125, "cpus"),
    (["-p", "99999:80", "busybox", "true"], 125, "99999"),
    (["-v", "/nonexistent-mcrt:/x", "busybox", "true"], 125, "/nonexistent-mcrt"),
    (["-v", "relative", "busybox", "true"], 125, "relative"),
])
def test_bad_input_one_line_docker_code_nothing_left(roots, args, code, words):
    p = mc(roots, "run", "--rm", "--network", "none", *args)
    assert p.returncode == code, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and words in p.stderr
    _nothing_left(roots)


def test_detached_lifecycle_every_verb(roots):
    mc(roots, "run", "-d", "--name", "mcrt-d", "--network", "none", "busybox",
       "sh", "-c", "echo started; sleep 60", check=0)
    try:
        assert "mcrt-d" in mc(roots, "ps", check=0).stdout
        p = mc(roots, "exec", "-e", "X=y", "-w", "/tmp", "mcrt-d", "sh", "-c", "echo $X $(pwd) $(cat /proc/1/cmdline | tr '\\0' ' ')")
        assert p.returncode == 0 and p.stdout.startswith("y /tmp ") and "sleep 60" in p.stdout
        assert mc(roots, "exec", "mcrt-d", "nope").returncode == 127
        mc(roots, "pause", "mcrt-d", check=0)
        assert "paused" in mc(roots, "ps", check=0).stdout
        mc(roots, "unpause", "mcrt-d", check=0)
        s = mc(roots, "stats", "--no-stream", "mcrt-d", check=0).stdout
        assert "mcrt-d" in s
        import json
        rec = json.loads(mc(roots, "inspect", "mcrt-d", check=0).stdout)
        assert rec["status"] == "running" and rec["name"] == "mcrt-d"
        p = mc(roots, "run", "--name", "mcrt-d", "--network", "none", "busybox", "true")
        assert p.returncode == 125 and "already in use" in p.stderr
        assert mc(roots, "rm", "mcrt-d").returncode == 125
        p = mc(roots, "kill", "-s", "NOSUCHSIG", "mcrt-d")
        assert p.returncode == 125 and "invalid signal" in p.stderr
        mc(roots, "stop", "-t", "0.5", "mcrt-d", check=0)
        assert "exited(137)" in mc(roots, "ps", "-a", check=0).stdout
        assert mc(roots, "logs", "mcrt-d", check=0).stdout == "started\n"
    finally:
        mc(roots, "rm", "-f", "mcrt-d")
    _nothing_left(roots)


def test_kill_with_signal(roots):
    with detached(roots, "mcrt-k", "sh", "-c", "trap 'exit 7' TERM; while true; do sleep 0.1; done"):
        mc(roots, "kill", "-s", "TERM", "mcrt-k", check=0)
        for _ in range(100):
            if "exited(7)" in mc(roots, "ps", "-a").stdout:
                break
            time.sleep(0.05)
        assert "exited(7)" in mc(roots, "ps", "-a").stdout


def _status(pid: int) -> dict:
    return dict(ln.split(":\t", 1) for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ":\t" in ln)


def _children(pid: int) -> list[int]:
    return sorted(int(c) for t in os.listdir(f"/proc/{pid}/task")
                  for c in Path(f"/proc/{pid}/task/{t}/children").read_text().split())


def _argvs() -> dict[int, list[str]]:
    """Every host process's command line."""
    out = {}
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            out[int(d)] = Path(f"/proc/{d}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
    return out


def test_a_detached_container_keeps_one_process_of_ours_besides_pid_1(roots):
    """What the host's `ps` shows of a `run -d` container once the command has returned: PID 1,
    whose parent is the monitor (the record's owner, a bare waiter.py interpreter) with no
    intermediate process between them; no other process of ours names the container; and the
    container's cgroup holds PID 1 alone (waiter.py: one waiting process, not two)."""
    from minicontainer.cgroups import Cgroup
    with detached(roots, "mcrt-one", "sleep", "60"):
        rec = json.loads(mc(roots, "inspect", "mcrt-one", check=0).stdout)
        pid1, monitor = rec["pid"], rec["owner"][0]
        assert int(_status(pid1)["PPid"]) == monitor
        assert _children(monitor) == [pid1]
        # the monitor tells the command the container runs, then execs the waiter: a moment later
        # on a busy machine (CI, next to a VM, saw the runtime's own argv still)
        waiter = str(ROOT / "minicontainer/runtime/waiter.py").encode()
        for _ in range(200):
            argv = Path(f"/proc/{monitor}/cmdline").read_bytes().split(b"\0")
            if waiter in argv:
                break
            time.sleep(0.025)
        assert argv[2:4] == [b"-S", str(ROOT / "minicontainer/runtime/waiter.py").encode()], argv
        assert argv[4:6] == [b"supervise", str(pid1).encode()], argv
        # a waiter of ours for this container: its argv names the container's id or its PID 1
        ours = [p for p, a in _argvs().items() if any(w.endswith("waiter.py") for w in a)
                and (str(pid1) in a or any(rec["id"] in w for w in a))]
        assert ours == [monitor]
        assert Cgroup.open(rec["cgroup"]).procs() == [pid1]
        assert rec.get("runtime_pid") is None
        mc(roots, "kill", "mcrt-one", check=0)          # the monitor still records how it ended
        for _ in range(100):
            if "exited(137)" in mc(roots, "ps", "-a").stdout:
                break
            time.sleep(0.05)
        assert "exited(137)" in mc(roots, "ps", "-a").stdout
        def gone():
            try:
                return _status(monitor)["State"][0] == "Z"
            except OSError:
                return True
        for _ in range(100):                            # it ends right after writing the record
            if gone():
                break
            time.sleep(0.02)
        assert gone()


@pytest.mark.parametrize("step", ["forked", "network", "released"])
def test_detached_fault_injection_then_gc_leaves_nothing(roots, step):
    """The monitor of a `run -d` SIGKILLed after it has ended C (forked, network: before PID 1's
    release; released: PID 1 runs the command): PID 1 dies with it (the parent-death signal G sets
    once the monitor is its parent) or ends with its release socket — the container's cgroup is
    empty, and gc then leaves nothing."""
    from tests import leakcheck
    before = leakcheck.snapshot()["cgroups"]
    p = mc(dict(roots, MINICONTAINER_TEST_DIE_AT=step), "run", "-d", "--network", "none", "busybox", "sleep", "60")
    assert p.returncode == 125 and p.stderr.count("\n") == 1, p.stderr
    groups = leakcheck.snapshot()["cgroups"] - before
    procs = lambda: [ln for g in groups for f in ("cgroup.procs",) if os.path.exists(os.path.join(g, f))  # noqa: E731
                     for ln in open(os.path.join(g, f)).read().split()]
    for _ in range(100):
        if not procs():
            break
        time.sleep(0.02)
    assert procs() == [], f"the container outlived its monitor ({step})"
    time.sleep(2.1)                         # gc takes a group no record names once it is 2 s old
    assert mc(roots, "gc", check=0).returncode == 0
    assert leakcheck.snapshot()["cgroups"] - before == set()
    _nothing_left(roots)


@pytest.mark.parametrize("user", ["1000", "0"])
def test_a_detached_container_with_other_ids_dies_with_its_monitor(roots, user):
    """`run -d -u 1000`: the kernel clears the parent-death signal when the ids change, so PID 1
    had to set it again after its setresuid (as runc does) — without that it outlived a SIGKILLed
    monitor, and gc, which skips a container whose PID 1 lives, left it running for good."""
    p = mc(roots, "run", "-d", "-u", user, "--name", "mcrt-deathsig", "--network", "none",
           "busybox", "sleep", "60", check=0)
    assert p.returncode == 0, p.stderr
    try:
        rec = json.loads(mc(roots, "inspect", "mcrt-deathsig", check=0).stdout)
        pid1, monitor = rec["pid"], rec["owner"][0]
        assert _status(pid1)["Uid"].split()[0] == user
        os.kill(monitor, signal.SIGKILL)
        def gone():
            try:
                return _status(pid1)["State"][0] == "Z"
            except OSError:
                return True
        for _ in range(100):
            if gone():
                break
            time.sleep(0.05)
        assert gone(), "PID 1 outlived its monitor"
    finally:
        mc(roots, "rm", "-f", "mcrt-deathsig")
    # PID 1 was reparented to the host's init, which reaps when it will: until then its group
    # cannot go, and gc takes a group no record names once it is 2 s old
    time.sleep(2.1)
    assert mc(roots, "gc", check=0).returncode == 0
    _nothing_left(roots)


def test_two_runs_at_once_get_distinct_names_addresses_state(roots):
    # Detached, so both are certainly running at the same moment (on a slow VM a foreground
    # `sleep 1.5` could end before the other one starts, and then reusing the address is right).
    cmd = [PY, "-m", "minicontainer.cli", "run", "-d", "busybox", "sleep", "30"]
    ps = [subprocess.Popen(cmd, env=roots, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
          for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in ps]
    ids = [o[0].strip() for o in outs]
    try:
        assert all(p.returncode == 0 for p in ps), outs
        import json
        recs = [json.loads(mc(roots, "inspect", cid, check=0).stdout) for cid in ids]
        assert all(r["status"] == "running" for r in recs)
        assert len({r["name"] for r in recs}) == 2
        assert len({r["network"]["ip"] for r in recs}) == 2
        assert len({r["id"] for r in recs}) == 2 and len({r["cgroup"] for r in recs}) == 2
    finally:
        for cid in ids:
            if cid:
                mc(roots, "rm", "-f", cid)
    _nothing_left(roots)


def test_help_on_every_verb(roots):
    verbs = ["run", "create", "start", "ps", "exec", "logs", "stop", "kill", "pause", "unpause", "rm",
             "inspect", "stats", "images", "import", "build", "rmi", "commit", "gc"]
    for v in verbs:
        p = mc(roots, v, "--help", check=0)
        assert "usage: minicontainer " + v in p.stdout


def test_images_and_gc(roots):
    mc(roots, "run", "--rm", "--network", "none", "busybox", "true", check=0)
    assert "busybox" in mc(roots, "images", check=0).stdout
    assert mc(roots, "gc", check=0).stdout.strip() == "nothing to remove"


def test_gc_removes_an_empty_container_cgroup_no_record_names(roots):
    """A runtime killed between mkdir of the group and writing it down leaves a group nobody names."""
    from minicontainer.cgroups import Cgroup, list_groups
    orphan = Cgroup.create("mc-" + os.urandom(8).hex())
    busy = Cgroup.create("mc-" + os.urandom(8).hex())       # a group with a process: another root's container
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        busy.add(sleeper.pid)
        out = mc(roots, "gc", check=0).stdout
        assert orphan.name not in out and orphan.exists()    # too young: it may be a container being started
        time.sleep(2.1)
        out = mc(roots, "gc", check=0).stdout
        assert f"cgroup {orphan.name} (no container record)" in out
        assert orphan.name not in list_groups()
        assert busy.name not in out and busy.procs() == [sleeper.pid]
    finally:
        sleeper.kill()
        sleeper.wait()
        busy.destroy()
        orphan.destroy()


@pytest.mark.parametrize("step", ["record", "layer", "cgroup", "forked", "released"])
def test_fault_injection_then_gc_leaves_nothing(roots, step):
    env = dict(roots, MINICONTAINER_TEST_DIE_AT=step)
    p = mc(env, "run", "--rm", "--network", "none", "busybox", "sleep", "1")
    assert p.returncode == -9
    time.sleep(1.2 if step == "released" else 0)  # the orphaned container (pdeathsig) is gone
    out = mc(roots, "gc", check=0).stdout
    if step == "record":
        assert "state" in out
    _nothing_left(roots)


def test_python_api_run(roots, monkeypatch):
    for k in ("MINICONTAINER_STATE_ROOT", "MINICONTAINER_DATA_ROOT"):
        monkeypatch.setenv(k, roots[k])
    from minicontainer import runtime
    r = runtime.run("busybox", ["sh", "-c", "echo out; echo err >&2; exit 2"])
    assert (r.exit_code, r.stdout, r.stderr) == (2, "out\n", "err\n")


@pytest.mark.parametrize("init,zombies", [(False, "3"), (True, "0")])
def test_zombies_without_init_and_none_with_it(roots, init, zombies):
    name = f"mcrt-z{int(init)}"
    mc(roots, "run", "-d", *(["--init"] if init else []), "--name", name, "--network", "none", "busybox",
       "sh", "-c", 'for i in 1 2 3; do sh -c "sleep 0.1 &"; done; exec sleep 30', check=0)
    try:
        time.sleep(0.8)
        p = mc(roots, "exec", name, "sh", "-c", 'grep -l "^State:.*Z" /proc/[0-9]*/status | wc -l', check=0)
        assert p.stdout.strip() == zombies
    finally:
        mc(roots, "rm", "-f", name)


def test_init_passes_exit_code_and_exec_errors(roots):
    assert mc(roots, "run", "--rm", "--init", "--network", "none", "busybox", "sh", "-c", "exit 6").returncode == 6
    assert mc(roots, "run", "--rm", "--init", "--network", "none", "busybox", "nope").returncode == 127


def test_run_e_name_takes_the_commands_own_value(roots):
    env = dict({k: v for k, v in roots.items() if k != "MC_UNSET_HERE"}, MC_PASSED="a b=c")
    p = mc(env, "run", "--rm", "--network", "none", "-e", "MC_PASSED", "-e", "MC_UNSET_HERE", "-e", "X=1",
           "busybox", "sh", "-c", 'echo "$MC_PASSED|${MC_UNSET_HERE-unset}|$X"')
    assert (p.returncode, p.stdout) == (0, "a b=c|unset|1\n"), p
    # --env-file: docker's lines (as written, NAME alone from here), before -e's, which win
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".env", delete=False) as fh:
        fh.write('# a comment\n\nX=from-file\nQ="kept as written"\nMC_PASSED\nMC_UNSET_HERE\n')
        f = fh.name
    try:
        p = mc(env, "run", "--rm", "--network", "none", "--env-file", f, "-e", "X=from-e", "busybox", "sh", "-c",
               'echo "$X|$Q|$MC_PASSED|${MC_UNSET_HERE-unset}"')
        assert (p.returncode, p.stdout) == (0, 'from-e|"kept as written"|a b=c|unset\n'), p
        p = mc(env, "run", "--rm", "--network", "none", "--env-file", f + ".missing", "busybox", "true")
        assert p.returncode == 125 and p.stderr.count("\n") == 1 and ".missing" in p.stderr, p.stderr
    finally:
        os.unlink(f)
    _nothing_left(roots)


def test_create_then_start_attached(roots):
    cid = mc(roots, "create", "--name", "mcrt-c", "--network", "none", "busybox", "sh", "-c", "echo hi; exit 2",
             check=0).stdout.strip()
    try:
        assert "created" in mc(roots, "ps", "-a", check=0).stdout
        assert mc(roots, "gc", check=0).stdout.strip() == "nothing to remove"  # created ≠ crashed
        p = mc(roots, "start", "-a", "mcrt-c")
        assert (p.returncode, p.stdout) == (2, "hi\n")
        assert "exited(2)" in mc(roots, "ps", "-a", check=0).stdout
    finally:
        mc(roots, "rm", "-f", cid)
    _nothing_left(roots)


def test_200_run_rm_cycles_leave_nothing(roots, monkeypatch):
    """In-process (the Python API) to keep it fast; the leak fixture compares every count."""
    for k in ("MINICONTAINER_STATE_ROOT", "MINICONTAINER_DATA_ROOT"):
        monkeypatch.setenv(k, roots[k])
    from minicontainer import runtime
    for _ in range(200):
        assert runtime.run("busybox", ["true"]).exit_code == 0
    _nothing_left(roots)


def _in_terminal(env, args, keys: list[bytes], timeout=20.0, prompt=b"# "):
    """Run the CLI with a pseudo-terminal as its stdin/stdout, as a user at a shell would; type
    ``keys`` one batch at a time, each once the shell shows its next ``prompt`` (as a person does:
    keys typed before the shell reads were lost in the slow, emulated VM); return (exit code,
    everything the terminal showed)."""
    import pty
    import select
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.chdir(ROOT)
            os.execve(PY, [PY, "-m", "minicontainer.cli", *args], env)
        finally:
            os._exit(127)
    out = b""

    def pump(seconds):
        nonlocal out
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if select.select([fd], [], [], 0.05)[0]:
                try:
                    out += os.read(fd, 4096)
                except OSError:          # EIO: the CLI exited and closed the terminal
                    return False
        return True
    try:
        for i, k in enumerate(keys):
            deadline = time.monotonic() + timeout
            while out.count(prompt) <= i and time.monotonic() < deadline and pump(0.05):
                pass
            os.write(fd, k)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status), out.decode(errors="replace")
            pump(0.1)
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise AssertionError(f"the CLI did not exit; the terminal showed {out!r}")
    finally:
        os.close(fd)


def test_run_it_gives_an_interactive_shell(roots):
    code, shown = _in_terminal(roots, ["run", "--rm", "-it", "--network", "none", "busybox", "sh"],
                               [b"[ -t 0 ] && [ -t 1 ] && echo tty-$((40+2))\n", b"tty\n",
                                b"echo con$((1+1)) > /dev/console\n", b"exit 5\n"])
    assert code == 5
    assert "BusyBox" in shown and "/ # " in shown          # busybox's interactive banner and prompt
    assert "tty-42\r\n" in shown and "\r\r\n" not in shown  # typed, run in a terminal, raw relay
    # the terminal is the container's own (its devpts), as in Docker: a pair opened on the host's
    # devpts made `tty` say "not a tty" (its /dev/pts/N does not exist inside)
    assert "\r\n/dev/pts/0\r\n" in shown, shown
    assert "\r\ncon2\r\n" in shown, shown   # /dev/console is the terminal too (runc binds it)
    _nothing_left(roots)


def test_run_t_without_a_terminal_is_a_clear_error(roots):
    p = mc(roots, "run", "--rm", "-it", "--network", "none", "busybox", "sh")
    assert p.returncode == 125 and "the input device is not a TTY" in p.stderr
    _nothing_left(roots)


def test_exec_it_into_a_running_container(roots):
    with detached(roots, "mcrt-x", "sleep", "60"):
        code, shown = _in_terminal(roots, ["exec", "-it", "mcrt-x", "sh"],
                                   [b"echo in-$(hostname)-$$; [ -t 0 ] && echo has-tty\n", b"tty\n",
                                    b"exit 3\n"])
        assert code == 3
        assert "has-tty\r\n" in shown and "in-" in shown
        assert "\r\n/dev/pts/0\r\n" in shown, shown     # the container's own devpts (PID 1 has none)


def test_start_of_a_created_container_keeps_its_id(roots):
    cid = mc(roots, "create", "--name", "mcrt-s", "--network", "none", "busybox", "sleep", "60",
             check=0).stdout.strip()
    try:
        assert mc(roots, "start", "mcrt-s", check=0).stdout.strip() == cid
        import json
        rec = json.loads(mc(roots, "inspect", "mcrt-s", check=0).stdout)
        assert rec["id"] == cid and rec["status"] == "running"
    finally:
        mc(roots, "rm", "-f", "mcrt-s")
    _nothing_left(roots)


def test_logs_follow_streams_until_the_container_stops(roots):
    with detached(roots, "mcrt-f", "sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.3; done"):
        p = mc(roots, "logs", "-f", "mcrt-f", timeout=20)
        assert (p.returncode, p.stdout) == (0, "line1\nline2\nline3\n")


def test_image_verbs_build_run_commit_images_rmi(roots, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "greeting").write_text("hi from a built image\n")
    (ctx / "Containerfile").write_text("FROM busybox\nCOPY greeting /greeting\nRUN echo built > /built\n"
                                       'CMD ["cat", "/greeting", "/built"]\n')
    p = mc(roots, "build", "-t", "mcrt-img", str(ctx), timeout=120)
    assert p.returncode == 0, p.stderr
    assert mc(roots, "run", "--rm", "--network", "none", "mcrt-img").stdout == "hi from a built image\nbuilt\n"
    mc(roots, "run", "--name", "mcrt-commit", "--network", "none", "mcrt-img", "sh", "-c", "echo changed > /built",
       check=0)
    try:
        p = mc(roots, "commit", "mcrt-commit", "mcrt-img2")
        assert p.returncode == 0, p.stderr
    finally:
        mc(roots, "rm", "mcrt-commit", check=0)
    assert mc(roots, "run", "--rm", "--network", "none", "mcrt-img2").stdout == "hi from a built image\nchanged\n"
    listed = mc(roots, "images", check=0).stdout
    assert re.search(r"^mcrt-img +latest ", listed, re.M) and re.search(r"^mcrt-img2 +latest ", listed, re.M)
    p = mc(roots, "rmi", "mcrt-img")
    assert p.returncode == 0 and p.stdout.startswith("untagged: mcrt-img:latest\ndeleted: ")
    # the layers it shares with mcrt-img2 stay: the child image still runs
    assert mc(roots, "run", "--rm", "--network", "none", "mcrt-img2").stdout == "hi from a built image\nchanged\n"
    assert mc(roots, "rmi", "mcrt-img2").returncode == 0
    listed = mc(roots, "images", check=0).stdout
    assert "mcrt-img" not in listed and re.search(r"^busybox +latest ", listed, re.M)
    assert mc(roots, "rmi", "mcrt-nosuch").returncode == 125
    _nothing_left(roots)


def test_names_are_indexed_reused_after_rm_and_stale_ones_collected(roots):
    names = Path(roots["MINICONTAINER_STATE_ROOT"], "names")
    mc(roots, "create", "--name", "mcrt-n", "--network", "none", "busybox", "true", check=0)
    assert (names / "mcrt-n").exists()
    assert mc(roots, "create", "--name", "mcrt-n", "--network", "none", "busybox", "true").returncode == 125
    mc(roots, "rm", "mcrt-n", check=0)
    assert not (names / "mcrt-n").exists()
    # a crash between claiming a name and writing the record leaves a stale name file
    (names / "mcrt-stale").write_text("0" * 64)
    assert mc(roots, "gc", check=0).stdout.strip() == "removed name mcrt-stale (no container record)"
    (names / "mcrt-stale").write_text("0" * 64)
    p = mc(roots, "run", "--rm", "--name", "mcrt-stale", "--network", "none", "busybox", "true")
    assert p.returncode == 0, p.stderr                       # taken over, then released by --rm
    assert not (names / "mcrt-stale").exists()
    _nothing_left(roots)


def test_failure_inside_the_container_set_up_is_one_line_nothing_left(roots):
    """An error in the container's own set-up (here: the image's layer vanished, so G's overlay mount
    fails) comes back through the error pipe as the real cause, not a bare exit code."""
    mc(roots, "create", "--name", "mcrt-lower", "--network", "none", "busybox", "true", check=0)
    diff = Path(json.loads(mc(roots, "inspect", "mcrt-lower", check=0).stdout)["lowerdirs"][0])
    mc(roots, "rm", "mcrt-lower", check=0)
    moved = diff.with_name("diff.moved")
    diff.rename(moved)
    try:
        p = mc(roots, "run", "--rm", "--network", "none", "busybox", "true")
    finally:
        moved.rename(diff)
    assert p.returncode == 125, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "is missing" in p.stderr, p.stderr
    _nothing_left(roots)
