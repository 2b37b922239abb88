"""security.prepare/apply in forked children, as root, on the real kernel (no container needed).

Each test forks a child that calls apply() and then tries what an attacker inside a default container
would; the child reports what the kernel answered (errno names) through a pipe and leaves with
os._exit. The parent asserts what a user would see: /proc/self/status fields and errnos.
"""

import ctypes
import errno
import json
import os
import tempfile

import pytest

from minicontainer import syscalls
from minicontainer.errors import MiniContainerError
from minicontainer.security import (ProcessSecurity, SecurityError, apply, default_capabilities,
                                    default_seccomp, prepare)
from minicontainer.security.capabilities import from_flags

MACHINE = os.uname().machine
pytestmark = pytest.mark.skipif(MACHINE not in ("x86_64", "aarch64"), reason=f"syscall numbers for {MACHINE} not listed")

# syscall numbers (asm/unistd.h) of what we try
NR = {
    "x86_64": {"add_key": 248, "keyctl": 250, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
               "init_module": 175, "unshare": 272, "open_by_handle_at": 304, "clone3": 435,
               "ptrace": 101, "kexec_load": 246, "mount": 165, "faccessat2": 439},
    "aarch64": {"add_key": 217, "keyctl": 219, "bpf": 280, "perf_event_open": 241, "userfaultfd": 282,
                "init_module": 105, "unshare": 97, "open_by_handle_at": 265, "clone3": 435,
                "ptrace": 117, "kexec_load": 104, "mount": 40, "faccessat2": 439},
}.get(MACHINE, {})
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


@pytest.fixture(autouse=True)
def private_state(tmp_path, monkeypatch):
    # the compiled-profile cache goes to the state root: a private one, removed with tmp_path
    monkeypatch.setenv("MINICONTAINER_STATE_ROOT", str(tmp_path / "state"))


def _sys(name, *args) -> str:
    ctypes.set_errno(0)
    r = _libc.syscall(ctypes.c_long(NR[name]), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
    return "ok" if r >= 0 else errno.errorcode[ctypes.get_errno()]


def _status() -> dict:
    with open("/proc/self/status") as fh:
        return dict(line.rstrip("\n").split(":\t", 1) for line in fh if ":\t" in line)


def in_child(prepared, probe, before=None) -> dict:
    """Fork; in the child: ``before()``, apply(prepared), then ``probe()`` → its dict comes back."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            if before:
                before()
            apply(prepared)
            out = probe()
        except BaseException as exc:   # noqa: BLE001 — reported to the parent, never raised here
            out = {"error": f"{type(exc).__name__}: {exc}"}
            code = 1
        os.write(w, json.dumps(out).encode())
        os._exit(code)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


def _default(**kw):
    caps = kw.pop("capabilities", default_capabilities(kw.get("uid", 0)))
    return prepare(ProcessSecurity(capabilities=caps, seccomp=kw.pop("seccomp", default_seccomp(caps)), **kw))


def _status_probe():
    s = _status()
    return {k: s[k] for k in ("CapEff", "CapBnd", "CapPrm", "CapInh", "CapAmb", "Seccomp", "NoNewPrivs", "Uid", "Gid")}


def test_default_shows_dockers_capabilities_and_a_filter():
    s = in_child(_default(), _status_probe)
    assert s["CapEff"] == s["CapBnd"] == s["CapPrm"] == "00000000a80425fb", s
    assert s["CapInh"] == s["CapAmb"] == "0000000000000000"
    assert s["Seccomp"] == "2" and s["NoNewPrivs"] == "0"


def test_no_new_privileges_flag():
    s = in_child(_default(no_new_privileges=True), _status_probe)
    assert s["NoNewPrivs"] == "1" and s["Seccomp"] == "2" and s["CapEff"] == "00000000a80425fb"


def test_non_root_user_keeps_nothing_effective():
    s = in_child(_default(uid=65534, gid=65534, additional_gids=(65534,)), _status_probe)
    assert s["Uid"].split() == ["65534"] * 4 and s["Gid"].split() == ["65534"] * 4
    assert s["CapEff"] == "0000000000000000" and s["CapBnd"] == "00000000a80425fb"


def test_blocked_syscalls_give_eperm():
    def probe():
        return {
            "add_key": _sys("add_key", b"user", b"k", b"v", 1, -4),
            "keyctl": _sys("keyctl", 0, -4, 0),
            "bpf": _sys("bpf", 0, 0, 0),
            "perf_event_open": _sys("perf_event_open", 0, 0, -1, -1, 0),
            "userfaultfd": _sys("userfaultfd", 0),
            "init_module": _sys("init_module", 0, 0, b""),
            "unshare(CLONE_NEWUSER)": _sys("unshare", syscalls.CLONE_NEWUSER),
            "open_by_handle_at": _sys("open_by_handle_at", 0, 0, 0),
            "kexec_load (not in the profile)": _sys("kexec_load", 0, 0, 0, 0),
            "mount": _sys("mount", b"none", b"/tmp", b"tmpfs", 0, 0),
        }
    got = in_child(_default(), probe)
    assert got == {k: "EPERM" for k in got}, got


def test_clone3_and_calls_newer_than_the_profile_give_enosys():
    def probe():
        return {"clone3": _sys("clone3", 0, 0), "faccessat2": _sys("faccessat2", -100, b"/", 0, 0),
                "nr 1000": (lambda: (ctypes.set_errno(0), _libc.syscall(ctypes.c_long(1000)),
                                     errno.errorcode[ctypes.get_errno()])[2])()}
    got = in_child(_default(), probe)
    assert got == {"clone3": "ENOSYS", "faccessat2": "ok", "nr 1000": "ENOSYS"}


def test_ptrace_of_a_host_process_is_refused():
    parent = os.getpid()
    got = in_child(_default(), lambda: {"attach": _sys("ptrace", 16, parent, 0, 0)})   # PTRACE_ATTACH
    assert got == {"attach": "EPERM"}


def _private_mounts():
    syscalls.unshare(syscalls.CLONE_NEWNS)
    syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)


def _try_mount(target):
    def probe():
        try:
            syscalls.mount("none", target, "tmpfs", 0, "size=1m")
            return {"mount": "ok"}
        except MiniContainerError as exc:
            return {"mount": exc.errno_name}
    return probe


def test_mount_fails_without_cap_sys_admin_by_each_layer(tmp_path):
    # capabilities alone (no filter): the kernel's capability check says EPERM
    caps_only = prepare(ProcessSecurity(capabilities=default_capabilities()))
    assert in_child(caps_only, _try_mount(str(tmp_path)), before=_private_mounts) == {"mount": "EPERM"}
    # the filter alone (all capabilities kept): seccomp says EPERM
    filter_only = prepare(ProcessSecurity(capabilities=None, seccomp=default_seccomp()))
    assert in_child(filter_only, _try_mount(str(tmp_path)), before=_private_mounts) == {"mount": "EPERM"}


def test_cap_add_sys_admin_allows_mount(tmp_path):
    caps = from_flags(["SYS_ADMIN"])
    p = prepare(ProcessSecurity(capabilities=caps, seccomp=default_seccomp(caps)))
    assert in_child(p, _try_mount(str(tmp_path)), before=_private_mounts) == {"mount": "ok"}


def test_seccomp_with_no_new_privs_is_loaded_after_dropping_caps():
    # a filter that blocks capset would break apply() if it were loaded before capset
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["capset"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
    p = prepare(ProcessSecurity(capabilities=default_capabilities(), seccomp=prof, no_new_privileges=True))
    got = in_child(p, _status_probe)
    assert got["CapEff"] == "00000000a80425fb" and got["Seccomp"] == "2"
    # without no_new_privs it is loaded first, so the same profile makes apply() fail, one line
    p2 = prepare(ProcessSecurity(capabilities=default_capabilities(), seccomp=prof))
    got = in_child(p2, _status_probe)
    assert got["error"].startswith("SecurityError: capset: EACCES") and "\n" not in got["error"]


def test_rlimits_umask_and_oom_score_adj():
    p = prepare(ProcessSecurity(capabilities=default_capabilities(), seccomp=default_seccomp(),
                                rlimits=(("RLIMIT_NOFILE", 256, 512),), umask=0o027, oom_score_adj=500))

    def probe():
        import resource
        with open("/proc/self/oom_score_adj") as fh:
            oom = fh.read().strip()
        return {"nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)), "umask": os.umask(0), "oom": oom}
    assert in_child(p, probe) == {"nofile": [256, 512], "umask": 0o027, "oom": "500"}


@pytest.mark.parametrize("sec, words", [
    (ProcessSecurity(capabilities={"bounding": ["CAP_FLY"]}), "CAP_FLY"),
    (ProcessSecurity(seccomp={"defaultAction": "SCMP_ACT_NOPE"}), "defaultAction"),
    (ProcessSecurity(uid=-1), "uid"),
    (ProcessSecurity(rlimits=(("RLIMIT_WISHES", 1, 1),)), "RLIMIT_WISHES"),
    (ProcessSecurity(oom_score_adj=5000), "oom_score_adj"),
])
def test_bad_input_is_one_line(sec, words):
    with pytest.raises(SecurityError) as exc:
        prepare(sec)
    assert words in str(exc.value) and "\n" not in str(exc.value)


def test_prepared_is_picklable_and_cached(tmp_path):
    import pickle
    from minicontainer.security import seccomp
    seccomp._memory_cache.clear()
    p = _default()
    assert pickle.loads(pickle.dumps(p)) == p
    cached = list((tmp_path / "state" / "seccomp").iterdir())
    assert len(cached) == 1 and oct(cached[0].stat().st_mode & 0o777) == "0o600"


def test_argument_rules_socket_family_and_clone_flags():
    import socket

    def probe():
        out = {}
        for fam, name in ((40, "AF_VSOCK"), (socket.AF_UNIX, "AF_UNIX")):
            try:
                socket.socket(fam, socket.SOCK_STREAM).close()
                out[name] = "ok"
            except OSError as exc:
                out[name] = errno.errorcode[exc.errno]
        pid = os.fork()            # clone(SIGCHLD): no namespace flag, allowed
        if pid == 0:
            os._exit(7)
        out["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        nr_clone = {"x86_64": 56, "aarch64": 220}[MACHINE]
        ctypes.set_errno(0)
        r = _libc.syscall(ctypes.c_long(nr_clone), ctypes.c_long(syscalls.CLONE_NEWNS | 17), None, None, None, None)
        if r == 0:
            os._exit(0)
        out["clone(CLONE_NEWNS)"] = "ok" if r > 0 else errno.errorcode[ctypes.get_errno()]
        return out
    got = in_child(_default(), probe)
    assert got == {"AF_VSOCK": "EPERM", "AF_UNIX": "ok", "fork": 7, "clone(CLONE_NEWNS)": "EPERM"}


def test_docker_flags_end_to_end():
    from minicontainer.security.options import from_docker_flags
    oci = from_docker_flags(cap_drop=["ALL"], cap_add=["NET_BIND_SERVICE"], security_opt=["no-new-privileges"])
    p = prepare(ProcessSecurity(capabilities=oci["process"]["capabilities"], seccomp=oci["linux"]["seccomp"],
                                no_new_privileges=oci["process"]["noNewPrivileges"]))
    s = in_child(p, _status_probe)
    assert s["CapEff"] == s["CapBnd"] == f"{1 << 10:016x}" and s["NoNewPrivs"] == "1" and s["Seccomp"] == "2"
    # --privileged: everything kept, no filter
    priv = from_docker_flags(privileged=True)
    s = in_child(prepare(ProcessSecurity(capabilities=priv["process"]["capabilities"])), _status_probe)
    assert s["Seccomp"] == "0" and int(s["CapBnd"], 16) == int(open("/proc/self/status").read().split("CapBnd:\t")[1][:16], 16)


def exec_after_apply(prepared, argv) -> tuple[int, str]:
    """Fork; apply(prepared); execve argv with stdout to a pipe → (exit code, output)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.dup2(w, 1)
            os.dup2(w, 2)
            apply(prepared)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    os.close(w)
    out = b""
    while chunk := os.read(r, 65536):
        out += chunk
    os.close(r)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), out.decode(errors="replace")


def _fields(text):
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def test_the_sets_survive_execve_and_a_real_program_runs():
    code, out = exec_after_apply(_default(), ["/bin/cat", "/proc/self/status"])
    s = _fields(out)
    assert code == 0 and s["CapEff"] == s["CapBnd"] == "00000000a80425fb" and s["Seccomp"] == "2"


@pytest.mark.skipif(not os.path.exists("/usr/bin/python3"), reason="no /usr/bin/python3")
def test_glibc_falls_back_from_clone3_to_clone():
    # posix_spawn (subprocess) tries clone3 first on glibc >= 2.34: ENOSYS must make it use clone
    code, out = exec_after_apply(_default(), ["/usr/bin/python3", "-I", "-c",
                                              "import subprocess; print(subprocess.run(['/bin/echo', 'spawned'],"
                                              " capture_output=True, text=True).stdout)"])
    assert (code, out.strip()) == (0, "spawned")


def test_no_new_privs_defeats_a_setuid_binary():
    # a setuid-root copy of cat, runnable by nobody: without no_new_privs it makes nobody's euid 0
    # (with the bounded capabilities), with the flag execve ignores the bit
    from pathlib import Path
    d = Path(tempfile.mkdtemp(prefix="mcsec-"))     # pytest's tmp_path is below a 0700 directory
    d.chmod(0o755)
    cat = d / "suid-cat"
    cat.write_bytes(open("/bin/cat", "rb").read())
    os.chown(cat, 0, 0)
    cat.chmod(0o4755)
    try:
        nobody = dict(uid=65534, gid=65534, capabilities=default_capabilities(65534))
        _, out = exec_after_apply(_default(**nobody), [str(cat), "/proc/self/status"])
        s = _fields(out)
        assert s["Uid"].split()[1] == "0" and s["CapEff"] == "00000000a80425fb", out
        _, out = exec_after_apply(_default(no_new_privileges=True, **nobody), [str(cat), "/proc/self/status"])
        s = _fields(out)
        assert s["Uid"].split() == ["65534"] * 4 and s["CapEff"] == "0000000000000000" and s["NoNewPrivs"] == "1"
    finally:
        cat.unlink(missing_ok=True)
        d.rmdir()
