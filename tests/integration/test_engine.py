"""The engine's rules as a user meets them (issue 15's structure part, issue 17 item 16, issue 18's
"no command → Entrypoint + Cmd"): the record keeps parsed numbers, nothing of the caller's open
files reaches a container, `exec` runs as the container's user, and `run IMAGE` runs the image's
command."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.integration._shared import module_roots
from tests.integration.test_runtime_cli import PY, ROOT, _nothing_left, mc


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    yield from module_roots(tmp_path_factory, "mceng")


def test_the_record_keeps_bytes_and_quotas(roots):
    """`--memory 64m` is parsed once, at the command line: the record and the cgroup hold bytes."""
    mc(roots, "create", "--name", "mceng-lim", "--network", "none", "--memory", "64m", "--cpus", "0.5",
       "--pids-limit", "20", "busybox", "true", check=0)
    try:
        cfg = json.loads(mc(roots, "inspect", "mceng-lim", check=0).stdout)["config"]
        assert (cfg["memory"], cfg["cpus"], cfg["pids_limit"]) == (64 << 20, 0.5, 20)
        p = mc(roots, "start", "-a", "mceng-lim")
        assert p.returncode == 0, p.stderr
    finally:
        mc(roots, "rm", "mceng-lim", check=0)
    from minicontainer.cgroups import Cgroup
    mc(roots, "run", "-d", "--name", "mceng-lim2", "--network", "none", "--memory", "64m", "busybox",
       "sleep", "30", check=0)
    try:
        cg = Cgroup.open(json.loads(mc(roots, "inspect", "mceng-lim2", check=0).stdout)["cgroup"])
        limit = cg.file("memory.max" if "unified" in cg.dirs() else "memory.limit_in_bytes")
        assert int(open(limit).read()) == 64 << 20
    finally:
        mc(roots, "rm", "-f", "mceng-lim2", check=0)
    _nothing_left(roots)


def _with_open_fd(env, *argv) -> tuple[str, int]:
    """Run the command with an extra fd open (inherited, no CLOEXEC), as a caller's lock or socket
    is; its output and that fd's number."""
    r, w = os.pipe()
    try:
        os.set_inheritable(r, True)
        p = subprocess.run([PY, "-m", "minicontainer.cli", *argv], env=env, capture_output=True, text=True,
                           timeout=30, cwd=ROOT, pass_fds=(r,))
    finally:
        os.close(r)
        os.close(w)
    assert p.returncode == 0, p.stderr
    return p.stdout, r


def test_no_open_file_of_the_caller_reaches_the_container(roots):
    """A caller's fd without O_CLOEXEC (a `flock` lock, a socket) stays out of the container, of
    `exec`, and of a detached container's monitor — else a lock stays held as long as it runs."""
    ls = ["ls", "/proc/self/fd"]
    # 0, 1, 2 and the directory ls itself opened (3); not the caller's extra one
    out, _ = _with_open_fd(roots, "run", "--rm", "--network", "none", "busybox", *ls)
    assert out.split() == ["0", "1", "2", "3"]
    _, fd = _with_open_fd(roots, "run", "-d", "--name", "mceng-fd", "--network", "none", "busybox", "sleep", "30")
    try:
        out, _ = _with_open_fd(roots, "exec", "mceng-fd", *ls)
        assert out.split() == ["0", "1", "2", "3"]
        rec = json.loads(mc(roots, "inspect", "mceng-fd", check=0).stdout)
        assert sorted(os.listdir(f"/proc/{rec['pid']}/fd")) == ["0", "1", "2"]
        monitor = int(open(f"/proc/{rec['pid']}/stat").read().rsplit(")", 1)[1].split()[1])
        assert monitor == rec["owner"][0]              # PID 1's parent (waiter.py: no C left)
        assert sorted(os.listdir(f"/proc/{monitor}/fd")) == ["0", "1", "2"], (monitor, fd)
    finally:
        mc(roots, "rm", "-f", "mceng-fd")
    _nothing_left(roots)


def test_exec_runs_as_the_containers_user_unless_told(roots):
    mc(roots, "run", "-d", "--name", "mceng-u", "--network", "none", "-u", "1000:1001", "busybox",
       "sleep", "30", check=0)
    try:
        assert mc(roots, "exec", "mceng-u", "id", "-u", check=0).stdout == "1000\n"
        assert mc(roots, "exec", "mceng-u", "id", "-g", check=0).stdout == "1001\n"
        assert mc(roots, "exec", "-u", "0", "mceng-u", "id", "-u", check=0).stdout == "0\n"
        assert mc(roots, "exec", "--user", "5:6", "mceng-u", "sh", "-c", "echo $(id -u):$(id -g)",
                  check=0).stdout == "5:6\n"
        p = mc(roots, "exec", "-u", "no-such-user", "mceng-u", "true")   # names: the image's /etc/passwd
        assert p.returncode == 125 and p.stderr.count("\n") == 1 and "unable to find user" in p.stderr, p.stderr
        p = mc(roots, "exec", "-u", "a:b:c", "mceng-u", "true")
        assert p.returncode == 125 and p.stderr.count("\n") == 1 and "invalid user" in p.stderr, p.stderr
        # docker's -e NAME: the value of NAME in the command's environment, left out when unset
        env = {k: v for k, v in roots.items() if k != "MC_UNSET_HERE"}
        p = mc(dict(env, MC_PASSED="from here"), "exec", "-e", "MC_PASSED", "-e", "MC_UNSET_HERE", "mceng-u",
               "sh", "-c", 'echo "$MC_PASSED ${MC_UNSET_HERE-unset}"')
        assert (p.returncode, p.stdout) == (0, "from here unset\n"), p
        p = mc(roots, "exec", "-e", "=x", "mceng-u", "true")     # run's rule: a name first
        assert p.returncode == 125 and p.stderr.count("\n") == 1 and "invalid environment" in p.stderr, p.stderr
    finally:
        mc(roots, "rm", "-f", "mceng-u")
    _nothing_left(roots)


def test_run_without_a_command_runs_entrypoint_and_cmd(roots, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text('FROM busybox\nENTRYPOINT ["echo", "entry"]\nCMD ["from-cmd"]\n')
    assert mc(roots, "build", "-t", "mceng-ep", str(ctx), timeout=120).returncode == 0
    try:
        p = mc(roots, "run", "--rm", "--network", "none", "mceng-ep")
        assert (p.returncode, p.stdout) == (0, "entry from-cmd\n"), p.stderr
        p = mc(roots, "run", "--rm", "--network", "none", "mceng-ep", "mine")     # replaces Cmd only
        assert (p.returncode, p.stdout) == (0, "entry mine\n"), p.stderr
        p = mc(roots, "run", "--rm", "--network", "none", "busybox")              # its Cmd: sh, no stdin
        assert p.returncode == 0, p.stderr
        # --entrypoint replaces the Entrypoint and drops the image's Cmd (docker's rule)
        p = mc(roots, "run", "--rm", "--network", "none", "--entrypoint", "printf", "mceng-ep", "%s-%s", "a", "b")
        assert (p.returncode, p.stdout) == (0, "a-b"), p.stderr
        p = mc(roots, "run", "--rm", "--network", "none", "--entrypoint=", "mceng-ep", "echo", "alone")
        assert (p.returncode, p.stdout) == (0, "alone\n"), p.stderr
        p = mc(roots, "run", "--rm", "--network", "none", "--entrypoint", "", "mceng-ep")
        assert p.returncode == 125 and p.stderr.count("\n") == 1 and '--entrypoint ""' in p.stderr, p.stderr
        p = mc(roots, "run", "--rm", "--network", "none", "--entrypoint", "/nope", "mceng-ep")
        assert p.returncode == 127, p.stderr
    finally:
        mc(roots, "rmi", "mceng-ep")
    _nothing_left(roots)


def test_build_user_label_expose_stopsignal(roots, tmp_path):
    # USER: the image's user, and every RUN after it runs as that user (docker's rule)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text(
        "FROM busybox\n"
        "RUN echo 'alice:x:1234:1234::/home/alice:/bin/sh' >> /etc/passwd && echo 'alice:x:1234:' >> /etc/group"
        " && mkdir -p /home/alice && chown 1234:1234 /home/alice\n"
        "USER alice\n"
        "RUN id -u > $HOME/built-as && (touch /etc/x 2>/dev/null || echo denied > $HOME/etc)\n"
        "LABEL course=minicontainer\nEXPOSE 8080\nSTOPSIGNAL SIGQUIT\n"
        'CMD ["sh", "-c", "id -u; echo $HOME; cat $HOME/built-as $HOME/etc; stat -c %u $HOME/built-as"]\n')
    p = mc(roots, "build", "-t", "mceng-user", str(ctx), timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    try:
        p = mc(roots, "run", "--rm", "--network", "none", "mceng-user")
        assert (p.returncode, p.stdout) == (0, "1234\n/home/alice\n1234\ndenied\n1234\n"), p
        assert mc(roots, "run", "--rm", "--network", "none", "-u", "0", "mceng-user", "id", "-u").stdout == "0\n"
        p = mc(roots, "create", "--name", "mceng-uc", "--network", "none", "mceng-user")
        rec = json.loads(mc(roots, "inspect", "mceng-uc").stdout)
        assert (rec["stop_signal"], rec["image_labels"], rec["image_user"]) == (3, {"course": "minicontainer"}, "alice")
        mc(roots, "rm", "mceng-uc")
        bad = ctx / "bad"
        bad.mkdir()
        (bad / "Containerfile").write_text("FROM busybox\nEXPOSE http\n")
        p = mc(roots, "build", "-t", "mceng-bad", str(bad), timeout=60)
        assert p.returncode == 125 and "EXPOSE 'http'" in p.stderr and p.stderr.count("\n") == 1, p.stderr
    finally:
        mc(roots, "rmi", "mceng-user")
    _nothing_left(roots)


def test_build_args_and_file(roots, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (tmp_path / "Dockerfile.dev").write_text(          # -f: outside the context, as docker allows
        "ARG BASE=busybox\nFROM ${BASE}\nARG GREETING=hello\nARG WHO\n"
        'RUN echo "$GREETING ${WHO:-nobody}" > /greeting\n'
        'CMD ["sh", "-c", "cat /greeting; echo ${GREETING:-not-in-the-image}"]\n')
    p = mc(roots, "build", "-f", str(tmp_path / "Dockerfile.dev"), "-t", "mceng-args", "--build-arg", "WHO=alice",
           "--build-arg", "UNUSED=1", str(ctx), timeout=120)
    assert p.returncode == 0 and "build-args not consumed by any ARG: UNUSED" in p.stdout, p.stdout + p.stderr
    try:
        p = mc(roots, "run", "--rm", "--network", "none", "mceng-args")
        assert (p.returncode, p.stdout) == (0, "hello alice\nnot-in-the-image\n"), p
    finally:
        mc(roots, "rmi", "mceng-args")
    _nothing_left(roots)


def test_a_failed_start_leaves_nothing_and_says_what_failed(roots):
    # a working directory that is a file (a missing one is made, as Docker does: issue 17 item 14)
    p = mc(roots, "run", "--rm", "--network", "none", "-w", "/etc/passwd", "busybox", "true")
    assert p.returncode == 125 and p.stderr.count("\n") == 1 and "/etc/passwd" in p.stderr
    p = mc(roots, "run", "--name", "mceng-bad", "--network", "none", "busybox", "/nope")
    assert p.returncode == 127
    assert json.loads(mc(roots, "inspect", "mceng-bad", check=0).stdout)["status"] == "stopped"
    mc(roots, "rm", "mceng-bad", check=0)
    _nothing_left(roots)


def test_gc_removes_an_empty_cgroup_parent_left_behind(roots):
    """A container group removed by hand (or by a crash's half cleanup) leaves our parent group in
    every hierarchy; `gc` removes the parent once nothing is below it (the leak check also counts an
    empty parent)."""
    from minicontainer.cgroups import Cgroup
    cg = Cgroup.create("mc-eng-parent-probe")
    parents = [d.parent for d in cg.dirs().values()]
    for d in cg.dirs().values():
        os.rmdir(d)                              # the child only, as a hand would
    if any(x.is_dir() for p in parents for x in p.iterdir()):
        pytest.skip("other groups live below the parent now")
    out = mc(roots, "gc", check=0).stdout
    assert "cgroup parent" in out, out
    assert not any(p.exists() for p in parents), [str(p) for p in parents if p.exists()]


def test_exec_forwards_signals_to_its_process(roots):
    """`minicontainer exec` is the OCI runtime's exec (oci/exec.run): a SIGTERM to the command
    reaches the process in the container, which ends, and the command exits as it did (128+15) —
    docker exec's signal proxy, runc exec's forwarding. Before, the command died alone and left
    its process running in the container."""
    import signal
    import time
    mc(roots, "run", "-d", "--name", "mceng-sig", "--network", "none", "busybox", "sleep", "60", check=0)
    try:
        p = subprocess.Popen([PY, "-m", "minicontainer.cli", "exec", "mceng-sig", "sleep", "41"], env=roots,
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def sleepers() -> list[str]:
            out = mc(roots, "exec", "mceng-sig", "ps", "-o", "args", check=0).stdout
            return [ln for ln in out.splitlines() if ln.strip() == "sleep 41"]
        deadline = time.monotonic() + 20
        while not sleepers():
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()
            time.sleep(0.1)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=20)
        assert p.returncode == 128 + signal.SIGTERM, (p.returncode, err)
        assert sleepers() == [], "the exec'd process outlived its command"
    finally:
        mc(roots, "rm", "-f", "mceng-sig", check=0)
    _nothing_left(roots)
