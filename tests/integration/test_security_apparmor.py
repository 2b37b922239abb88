"""Issue 16, AppArmor: where the kernel has it (the classroom VMs: Debian 12, Ubuntu 24.04), every
way into a container — run, --init's PID 1, exec, a build's RUN, the OCI runtime — runs under
``minicontainer-default`` unless a flag says otherwise, and the profile refuses what it is meant to
even when a capability would allow it. Observed from inside, as a user would: /proc/self/attr/current
and busybox's error messages. Where the kernel has no AppArmor (this CI host) those tests are skipped
with the reason, and what remains checks the errors and what `inspect` shows."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from minicontainer.security import apparmor
from tests.integration.oci_helpers import Subreaper, config, make_bundle, oci, one_line_error, write_config
from tests.integration._shared import module_roots
from tests.integration.test_runtime_cli import _nothing_left, mc

ENABLED = apparmor.enabled()
needs_apparmor = pytest.mark.skipif(
    not ENABLED, reason="this kernel has no AppArmor (/sys/module/apparmor/parameters/enabled is not Y "
                        "or /sys/kernel/security/apparmor is missing): runs in the classroom VM")
CONFINED = f"{apparmor.DEFAULT} (enforce)"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    yield from module_roots(tmp_path_factory, "mcaa")


def run(env, *args, code=0):
    p = mc(env, "run", "--rm", "--network", "none", *args)
    assert p.returncode == code, (args, p.returncode, p.stdout, p.stderr)
    return p


def label(env, *flags, what="/proc/self/attr/current") -> str:
    return run(env, *flags, "busybox", "cat", what).stdout.strip()


def test_a_named_profile_is_one_line_125_and_says_why(env):
    p = mc(env, "run", "--rm", "--network", "none", "--security-opt", "apparmor=mc-no-such-profile",
           "busybox", "true")
    assert p.returncode == 125 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    if ENABLED:
        assert "mc-no-such-profile is not loaded" in p.stderr and "apparmor_parser -r" in p.stderr, p.stderr
    else:
        assert "AppArmor is not enabled in this kernel" in p.stderr and "mc-no-such-profile" in p.stderr, p.stderr
    _nothing_left(env)


def test_inspect_shows_the_profile_and_the_options(env):
    for name, flags, want in (("mcaa-d", [], apparmor.DEFAULT),
                              ("mcaa-u", ["--security-opt", "apparmor=unconfined"], "unconfined")):
        p = mc(env, "run", "-d", "--name", name, "--network", "none", *flags, "busybox", "sleep", "60")
        assert p.returncode == 0, p.stderr
        try:
            rec = json.loads(mc(env, "inspect", name).stdout)
            assert rec["AppArmorProfile"] == (want if ENABLED else ""), rec["AppArmorProfile"]   # Docker's ""
            assert rec["HostConfig"]["SecurityOpt"] == (flags[1:] or None), rec["HostConfig"]
            assert rec["security"]["apparmor"] == rec["AppArmorProfile"]
        finally:
            mc(env, "rm", "-f", name)
    _nothing_left(env)


@needs_apparmor
def test_a_default_container_runs_under_the_profile_and_flags_change_it(env):
    assert label(env) == CONFINED
    assert label(env, "-u", "1000") == CONFINED                      # written as a non-root user too
    assert label(env, "--security-opt", "no-new-privileges") == CONFINED
    assert label(env, "--security-opt", "apparmor=unconfined") == "unconfined"
    assert label(env, "--privileged") == "unconfined"                  # Docker's rule
    p = run(env, "--init", "busybox", "cat", "/proc/1/attr/current", "/proc/self/attr/current")
    assert p.stdout.split("\n")[:2] == [CONFINED, CONFINED], p.stdout    # our init, PID 1, too
    # loaded once, from a file only root may read
    f = Path(env["MINICONTAINER_STATE_ROOT"], "apparmor", apparmor.DEFAULT)
    assert stat.S_IMODE(f.stat().st_mode) == 0o600 and "profile minicontainer-default" in f.read_text()
    assert apparmor.loaded(apparmor.DEFAULT)
    _nothing_left(env)


@needs_apparmor
def test_the_profile_refuses_what_a_capability_would_allow(env):
    """mount with CAP_SYS_ADMIN (seccomp lets it through: the rule follows the capability), reading
    /proc/sysrq-trigger: "Permission denied" from the profile; the same container unconfined shows
    the profile made the difference."""
    script = "mkdir -p /m; mount -t tmpfs none /m && echo mounted; cat /proc/sysrq-trigger"
    confined = run(env, "--cap-add", "SYS_ADMIN", "busybox", "sh", "-c", script, code=1)
    free = run(env, "--cap-add", "SYS_ADMIN", "--security-opt", "apparmor=unconfined", "busybox", "sh", "-c",
               script, code=1)
    assert "mounted" not in confined.stdout and "permission denied" in confined.stderr.lower(), confined.stderr
    assert "mounted" in free.stdout, free.stderr
    if os.path.exists("/proc/sysrq-trigger"):
        deny = [ln for ln in confined.stderr.splitlines() if "sysrq" in ln]
        allow = [ln for ln in free.stderr.splitlines() if "sysrq" in ln]
        assert deny and "Permission denied" in deny[0], confined.stderr
        # unconfined the open succeeds (busybox's cat then says "read error: Input/output error",
        # without the name: the file is write-only); confined the open itself is refused
        assert not allow or "Permission denied" not in allow[0], free.stderr
    _nothing_left(env)


@needs_apparmor
def test_exec_gets_the_containers_profile(env):
    for name, flags, want in (("mcaa-x", [], CONFINED),
                              ("mcaa-xu", ["--security-opt", "apparmor=unconfined"], "unconfined")):
        p = mc(env, "run", "-d", "--name", name, "--network", "none", *flags, "busybox", "sleep", "60")
        assert p.returncode == 0, p.stderr
        try:
            p = mc(env, "exec", name, "cat", "/proc/self/attr/current")
            assert (p.returncode, p.stdout.strip()) == (0, want), p.stderr
            p = mc(env, "exec", "-u", "1000", name, "cat", "/proc/self/attr/current")
            assert (p.returncode, p.stdout.strip()) == (0, want), p.stderr
        finally:
            mc(env, "rm", "-f", name)
    _nothing_left(env)


@needs_apparmor
def test_a_builds_run_step_is_confined(env, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text("FROM busybox\nRUN cat /proc/self/attr/current > /label\n")
    assert mc(env, "build", "-t", "mcaa-built", str(ctx), timeout=120).returncode == 0
    try:
        p = run(env, "mcaa-built", "cat", "/label")
        assert p.stdout.strip() == CONFINED, p.stdout
    finally:
        mc(env, "rmi", "mcaa-built")
    _nothing_left(env)


# --- the OCI runtime: process.apparmorProfile -----------------------------------------------------

@pytest.fixture
def oci_env(tmp_path):
    e = dict(os.environ, MINICONTAINER_STATE_ROOT=str(tmp_path / "state"))
    yield e
    root = tmp_path / "state" / "oci"
    for cid in (os.listdir(root) if root.exists() else []):
        oci(e, "delete", "--force", cid)


def test_oci_features_and_a_profile_on_a_kernel_without_apparmor(oci_env, tmp_path):
    assert json.loads(oci(oci_env, "features").stdout)["linux"]["apparmor"] == {"enabled": ENABLED}
    if ENABLED:
        pytest.skip("this kernel has AppArmor: test_oci_runtime_applies_process_apparmorProfile covers it")
    b = make_bundle(tmp_path / "b", ["true"])
    cfg = config(b)
    cfg["process"]["apparmorProfile"] = apparmor.DEFAULT
    write_config(b, cfg)
    e = one_line_error(oci(oci_env, "create", "--bundle", str(b), "aa0"))
    assert "AppArmor is not enabled in this kernel" in e, e
    cfg["process"]["apparmorProfile"] = "unconfined"                 # none asked for: fine
    write_config(b, cfg)
    assert oci(oci_env, "create", "--bundle", str(b), "aa1", stdout=open(os.devnull, "w")).returncode == 0
    assert oci(oci_env, "delete", "--force", "aa1").returncode == 0


@needs_apparmor
def test_oci_runtime_applies_process_apparmorProfile(oci_env, tmp_path):
    b = make_bundle(tmp_path / "b", ["sh", "-c", "cat /proc/self/attr/current; sleep 30"])
    cfg = config(b)
    cfg["process"]["terminal"] = False
    cfg["process"]["apparmorProfile"] = apparmor.DEFAULT
    write_config(b, cfg)
    out = open(tmp_path / "out", "w+")
    with Subreaper():
        assert oci(oci_env, "create", "--bundle", str(b), "--pid-file", str(tmp_path / "pid"), "aa2",
                   stdout=out).returncode == 0
        assert oci(oci_env, "start", "aa2").returncode == 0
        proc = dict(cfg["process"], args=["cat", "/proc/self/attr/current"])
        proc.pop("apparmorProfile")                                    # runc's rule: the container's
        (tmp_path / "p.json").write_text(json.dumps(proc))
        ex = open(tmp_path / "ex", "w+")
        assert oci(oci_env, "exec", "--process", str(tmp_path / "p.json"), "aa2", stdout=ex).returncode == 0
        proc["apparmorProfile"] = "unconfined"                         # the process's own wins
        (tmp_path / "p.json").write_text(json.dumps(proc))
        assert oci(oci_env, "exec", "--process", str(tmp_path / "p.json"), "aa2", stdout=ex).returncode == 0
        assert oci(oci_env, "delete", "--force", "aa2").returncode == 0
        assert Subreaper.wait(int((tmp_path / "pid").read_text())) == -9   # ours to reap, as conmon's
    out.seek(0)
    ex.seek(0)
    assert out.read().split("\n")[0] == CONFINED
    assert ex.read().splitlines() == [CONFINED, "unconfined"]
