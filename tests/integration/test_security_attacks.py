"""Issue 16's attack suite: root in a default container must not become root on the host.

One container runs a static probe (attacks.c, built here with the host's C compiler and bind-mounted
read-only) that makes each attack's system call and prints the errno it got: one container for all
of them, then the same probe with --privileged and with single --cap-add flags, where Docker means
some of them to work. Every attack is harmless even when it succeeds (files opened for writing are
never written; handles and modules are the container's own or garbage). The errno is what the
attacker sees; the comment names the layer that stops it.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from minicontainer.security.apparmor import enabled as apparmor_enabled
from tests.integration._shared import module_roots, static_probe
from tests.integration.test_runtime_cli import _nothing_left, mc

HERE = Path(__file__).resolve().parent
SYSRQ = os.path.exists("/proc/sysrq-trigger")      # CONFIG_MAGIC_SYSRQ: not on every kernel

# attack → (errno in a default container, the layer that stops it)
DEFAULT = {
    "mount_tmpfs": ("EPERM", "seccomp (mount needs CAP_SYS_ADMIN)"),
    "mount_proc": ("EPERM", "seccomp"),
    "mount_sysfs": ("EPERM", "seccomp"),
    "mount_cgroup_v1": ("EPERM", "seccomp"),
    "mount_cgroup2": ("EPERM", "seccomp"),
    "mount_bind_host_dev": ("EPERM", "seccomp"),
    "mount_symlink_target": ("EPERM", "seccomp"),
    "unmask_timer_list": ("EPERM", "seccomp (umount2)"),
    "remount_proc_sys_rw": ("EPERM", "seccomp"),
    "remount_sys_rw": ("EPERM", "seccomp"),
    "open_core_pattern_w": ("EROFS", "read-only path /proc/sys"),
    "open_sysrq_trigger_w": ("EROFS" if SYSRQ else "ENOENT",
                             "read-only path /proc/sysrq-trigger" if SYSRQ else "this kernel has no sysrq"),
    "open_sys_w": ("EROFS", "/sys mounted read-only"),
    "mknod_kmsg_read": ("EPERM", "device cgroup"),
    "mknod_mem": ("EPERM", "device cgroup"),
    "mknod_disk": ("EPERM", "device cgroup"),
    "shocker": ("EPERM", "seccomp (open_by_handle_at needs CAP_DAC_READ_SEARCH)"),
    "ptrace_host": ("ESRCH", "PID namespace"),
    "kill_host": ("ESRCH", "PID namespace"),
    "setns_host": ("ENOENT", "PID namespace (no /proc/PID of the host)"),
    "add_key": ("EPERM", "seccomp"),
    "keyctl": ("EPERM", "seccomp"),
    "request_key": ("EPERM", "seccomp"),
    "bpf": ("EPERM", "seccomp"),
    "init_module": ("EPERM", "seccomp"),
    "finit_module": ("EPERM", "seccomp"),
    "delete_module": ("EPERM", "seccomp"),
    "kexec_load": ("EPERM", "seccomp"),
    "perf_event_open": ("EPERM", "seccomp"),
    "userfaultfd": ("EPERM", "seccomp"),
    "unshare_user": ("EPERM", "seccomp (unshare(CLONE_NEWUSER) needs CAP_SYS_ADMIN)"),
    "unshare_mnt": ("EPERM", "seccomp"),
    "unshare_cgroup": ("EPERM", "seccomp"),
    "sethostname": ("EPERM", "capabilities (no CAP_SYS_ADMIN)"),
    "setdomainname": ("EPERM", "capabilities"),
    "settimeofday": ("EPERM", "seccomp (needs CAP_SYS_TIME)"),
    "reboot": ("EPERM", "seccomp (needs CAP_SYS_BOOT)"),
    "swapon": ("EPERM", "seccomp"),
    "acct": ("EPERM", "seccomp (needs CAP_SYS_PACCT)"),
    **({"iopl": ("EPERM", "seccomp (needs CAP_SYS_RAWIO)")} if platform.machine() == "x86_64" else {}),
    "pivot_root": ("EPERM", "seccomp"),
    "fsopen": ("EPERM", "seccomp"),
    "open_tree": ("EPERM", "seccomp"),
    # controls: what a default container may do
    "mknod_null_ok": ("OK", "allowed: /dev/null's numbers"),
    "chroot_ok": ("OK", "allowed: CAP_SYS_CHROOT is one of Docker's 14"),
}

# what --privileged is meant to allow (the rest of its answers are only printed)
PRIVILEGED_OK = ["mount_tmpfs", "mount_proc", "mount_cgroup2", "mount_bind_host_dev", "open_core_pattern_w",
                 *(["open_sysrq_trigger_w"] if SYSRQ else []), "open_sys_w", "mknod_kmsg_read", "mknod_mem", "mknod_disk", "shocker",
                 "add_key", "bpf", "unshare_user", "unshare_mnt", "unshare_cgroup", "sethostname", "userfaultfd"]
# the PID namespace holds even then
PRIVILEGED_STILL = {"ptrace_host": "ESRCH", "kill_host": "ESRCH"}

# one capability added: exactly what it is for, and not the layers it does not touch — where the
# kernel has AppArmor, the default profile's `deny mount` still refuses the mount (Docker's too)
APPARMOR = apparmor_enabled()
CAP_ADD = {
    "SYS_ADMIN": ({"mount_tmpfs": "EACCES" if APPARMOR else "OK", "sethostname": "OK", "unshare_mnt": "OK"},
                  {"mknod_kmsg_read": "EPERM", "open_core_pattern_w": "EROFS", "init_module": "EPERM"}),
    "DAC_READ_SEARCH": ({"shocker": "OK"}, {"mount_tmpfs": "EPERM"}),
}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    yield from module_roots(tmp_path_factory, "mcatk")


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> Path:
    return static_probe(tmp_path_factory, HERE / "attacks.c")


def attacks(env, probe, *flags, names=None) -> dict[str, str]:
    names = list(names or DEFAULT)
    p = mc(env, "run", "--rm", "--network", "none", "-v", f"{probe}:/probe:ro", *flags, "busybox",
           "/probe/attacks", str(os.getpid()), *names, timeout=60)
    assert p.returncode == 0, (flags, p.returncode, p.stdout, p.stderr)
    got = dict(line.split(" ", 1) for line in p.stdout.splitlines())
    assert set(got) == set(names), (flags, p.stdout)
    return got


def test_a_default_container_stops_every_attack_with_the_expected_errno(env, probe):
    got = attacks(env, probe)
    table = "\n".join(f"  {k:24} {got[k]:7} {layer}" for k, (_, layer) in DEFAULT.items())
    print("\nattack                   errno   layer\n" + table)
    wrong = {k: (want, got[k]) for k, (want, _) in DEFAULT.items() if got[k] != want}
    assert not wrong, f"attack: (expected, got) {wrong}"
    assert sum(1 for want, _ in DEFAULT.values() if want != "OK") >= 30
    _nothing_left(env)


def test_privileged_allows_what_it_is_meant_to(env, probe):
    got = attacks(env, probe, "--privileged", names=PRIVILEGED_OK + list(PRIVILEGED_STILL))
    assert {k: got[k] for k in PRIVILEGED_OK} == dict.fromkeys(PRIVILEGED_OK, "OK"), got
    assert {k: got[k] for k in PRIVILEGED_STILL} == PRIVILEGED_STILL, got
    _nothing_left(env)


@pytest.mark.parametrize("cap", sorted(CAP_ADD))
def test_cap_add_allows_only_its_own(env, probe, cap):
    allowed, still = CAP_ADD[cap]
    got = attacks(env, probe, "--cap-add", cap, names=list(allowed) + list(still))
    assert got == {**allowed, **still}, got
    _nothing_left(env)


def test_cgroup_namespace_is_private_by_default_and_shared_on_request(env):
    """/proc/self/cgroup: "/" in every hierarchy (the container's own group is the namespace's root);
    --cgroupns host shows the host's path of the group. exec joins the container's namespace."""
    def lines(*flags):
        p = mc(env, "run", "--rm", "--network", "none", *flags, "busybox", "cat", "/proc/self/cgroup")
        assert p.returncode == 0, p.stderr
        return [line.split(":", 2)[2] for line in p.stdout.splitlines()]
    private = lines()
    assert private and set(private) == {"/"}, private
    # the cgroupfs is mounted, in the namespace (the group's own files at its root) and read-only
    p = mc(env, "run", "--rm", "--network", "none", "busybox", "sh", "-c",
           "d=/sys/fs/cgroup; [ -e $d/pids/cgroup.procs ] && d=$d/pids; ls $d | grep -c '^cgroup.procs$'; "
           "mkdir $d/mc-escape")
    assert p.stdout.split() == ["1"] and "Read-only file system" in p.stderr, (p.stdout, p.stderr)
    host = lines("--cgroupns", "host")
    assert any("minicontainer" in path for path in host), host
    p = mc(env, "run", "-d", "--name", "mc-cgns", "--network", "none", "busybox", "sleep", "30")
    assert p.returncode == 0, p.stderr
    try:
        p = mc(env, "exec", "mc-cgns", "cat", "/proc/self/cgroup")
        assert p.returncode == 0 and {line.split(":", 2)[2] for line in p.stdout.splitlines()} == {"/"}, p
    finally:
        mc(env, "rm", "-f", "mc-cgns")
    _nothing_left(env)


def _cgroup_mounts(mountinfo: str) -> dict[str, tuple[str, set]]:
    """mount point -> (root, per-mount options) of every cgroup and cgroup2 mount in ``mountinfo``."""
    out = {}
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        f = left.split()
        if right.split()[0] in ("cgroup", "cgroup2"):
            out[f[4]] = (f[3], set(f[5].split(",")))
    return out


@pytest.mark.parametrize("privileged", [False, True])
def test_cgroupfs_inside_is_the_containers_own_group_in_every_hierarchy(env, privileged):
    """/sys/fs/cgroup inside: one mount per line of the container's /proc/PID/cgroup where it has a
    group of its own (``cpu``, …; ``name=systemd`` as ``systemd`` and a hybrid host's ``0::`` as
    ``unified`` only if so: elsewhere the namespace's root would be the host's), each rooted at the
    container's own group — the host's view of /proc/PID/mountinfo names the group's path, the
    container's (exec joins its cgroup namespace) shows "/" — and ro,nosuid,nodev,noexec: writing
    is refused in every one. --privileged: the same mounts, read-write (a write to the pids
    hierarchy's cgroup.procs of the container's own group succeeds)."""
    name = "mc-cgfs-priv" if privileged else "mc-cgfs"
    flags = ["--privileged"] if privileged else []
    mc(env, "run", "-d", "--name", name, "--network", "none", *flags, "busybox", "sleep", "30", check=0)
    try:
        pid = json.loads(mc(env, "inspect", name, check=0).stdout)["State"]["Pid"]
        lines = [ln.split(":", 2) for ln in Path(f"/proc/{pid}/cgroup").read_text().splitlines()]
        want = {}                                   # mount point inside -> the group's path (host view)
        for hid, ctrls, path in lines:
            if not path.startswith("/minicontainer/"):
                continue        # no group of its own there (v1's name=systemd, a hybrid's unified)
            if hid == "0":
                want["/sys/fs/cgroup/unified" if len(lines) > 1 else "/sys/fs/cgroup"] = path
            else:
                want["/sys/fs/cgroup/" + ctrls.removeprefix("name=")] = path
        assert any("minicontainer" in p for p in want.values()), want
        outside = _cgroup_mounts(Path(f"/proc/{pid}/mountinfo").read_text())
        assert {m: root for m, (root, _) in outside.items()} == want, (outside, want)
        for m, (_, opts) in outside.items():
            assert {"nosuid", "nodev", "noexec"} <= opts, (m, opts)
            assert ("rw" if privileged else "ro") in opts, (m, opts)
        p = mc(env, "exec", name, "cat", "/proc/self/mountinfo", check=0)
        inside = _cgroup_mounts(p.stdout)
        assert {m: root for m, (root, _) in inside.items()} == dict.fromkeys(want, "/"), inside
        script = "".join(f"echo 0 > {m}/cgroup.procs; " for m in sorted(want))
        if privileged:
            pids = next(m for m in want if m.endswith("/pids") or m.endswith("/cgroup"))
            script = f"echo $$ > {pids}/cgroup.procs && echo moved"
        p = mc(env, "exec", name, "sh", "-c", script)
        if privileged:
            assert p.stdout.split() == ["moved"], (p.stdout, p.stderr)
        else:
            assert p.stderr.count("Read-only file system") == len(want), p.stderr
    finally:
        mc(env, "rm", "-f", name)
    _nothing_left(env)


def test_working_directory_through_a_leaked_fd_is_refused(env, tmp_path):
    """CVE-2024-21626's pattern: the caller holds a host directory open (no O_CLOEXEC) and asks for
    -w /proc/self/fd/N. The container must not start there (exit 125, one line), and nothing of the
    host directory is read."""
    secret = tmp_path / "host-dir"
    secret.mkdir()
    (secret / "secret").write_text("host secret\n")
    fd = os.open(secret, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for flag in (["-w", f"/proc/self/fd/{fd}"], ["-w", f"/proc/1/fd/{fd}"]):
            p = subprocess.run([sys.executable, "-m", "minicontainer.cli", "run", "--rm",
                                "--network", "none", *flag, "busybox", "cat", "secret"],
                               env=env, capture_output=True, text=True, timeout=60, pass_fds=(fd,))
            assert "host secret" not in p.stdout, (flag, p.stdout)
            assert p.returncode == 125, (flag, p.returncode, p.stdout, p.stderr)
            assert "working directory" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    finally:
        os.close(fd)
    _nothing_left(env)
