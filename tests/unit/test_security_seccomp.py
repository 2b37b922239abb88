"""Docker's default seccomp profile, its conversion to OCI and the compiled program (no root)."""

import json
import struct

import pytest

from minicontainer.security import SecurityError, default_capabilities, seccomp as sc
from minicontainer.security.capabilities import from_flags


def _allowed(oci):
    return {n for r in oci["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]}


def test_default_is_an_eperm_allowlist_for_this_arch():
    oci = sc.default_seccomp(arch="x86_64")
    assert oci["defaultAction"] == "SCMP_ACT_ERRNO" and oci["defaultErrnoRet"] == 1
    assert oci["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    allowed = _allowed(oci)
    assert {"read", "execve", "faccessat2", "arch_prctl", "modify_ldt"} <= allowed
    for blocked in ("mount", "unshare", "bpf", "add_key", "keyctl", "perf_event_open", "init_module",
                    "open_by_handle_at", "userfaultfd", "set_tls"):
        assert blocked not in allowed


def test_aarch64_gets_its_own_arches_and_rules():
    oci = sc.default_seccomp(arch="aarch64")
    assert oci["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    allowed = _allowed(oci)
    assert "set_tls" in allowed and "arch_prctl" not in allowed


def test_clone3_is_enosys_without_sys_admin_and_allowed_with_it():
    oci = sc.default_seccomp(arch="x86_64")
    assert [r.get("errnoRet") for r in oci["syscalls"] if "clone3" in r["names"]] == [38]
    admin = sc.default_seccomp(from_flags(["SYS_ADMIN"]), arch="x86_64")
    assert {"mount", "unshare", "clone3"} <= _allowed(admin)
    assert not [r for r in admin["syscalls"] if r["action"] == "SCMP_ACT_ERRNO"]


def test_capability_dependent_rules():
    assert "ptrace" in _allowed(sc.default_seccomp())          # kernel >= 4.8
    assert "open_by_handle_at" in _allowed(sc.default_seccomp(from_flags(["DAC_READ_SEARCH"])))
    assert "init_module" in _allowed(sc.default_seccomp(from_flags(["SYS_MODULE"])))


def test_oci_object_passes_through_unchanged():
    oci = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
    assert sc.to_oci(oci) == oci


def test_from_option_unconfined_file_and_errors(tmp_path):
    assert sc.from_option("unconfined") is None
    p = tmp_path / "p.json"
    p.write_text(json.dumps(sc.docker_default()))
    assert sc.from_option(str(p)) == sc.default_seccomp()
    p.write_text("{not json")
    with pytest.raises(SecurityError, match="not JSON") as exc:
        sc.from_option(str(p))
    assert "\n" not in str(exc.value)
    with pytest.raises(SecurityError, match="ENOENT"):
        sc.from_option(str(tmp_path / "missing.json"))


@pytest.mark.parametrize("bad, words", [
    ({"defaultAction": "SCMP_ACT_MAYBE"}, "defaultAction"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "ALLOW"}]}, "action"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": "read", "action": "SCMP_ACT_ALLOW"}]}, "names"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_Z80"]}, "architecture"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                                                      "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]}, "argument"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -3}, "errno"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86"], "archMap": [{}]}, "archMap"),
])
def test_bad_profiles_give_one_line_errors(bad, words):
    with pytest.raises(SecurityError) as exc:
        sc.to_oci(bad)
    assert words in str(exc.value) and "\n" not in str(exc.value)


def test_dockers_format_is_refused_where_oci_is_expected():
    # its conditional rules would otherwise hold unconditionally (mount for everyone)
    with pytest.raises(SecurityError, match="Docker's format"):
        sc.compile(sc.docker_default(), cache=False)
    with pytest.raises(SecurityError, match="includes"):
        sc.validate({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}}]})


def test_compile_gives_a_program_with_the_enosys_stub_first():
    prog = sc.compile(sc.default_seccomp(arch="x86_64") if sc.host_arch()[0] == "amd64"
                      else sc.default_seccomp(), cache=False)
    assert len(prog) % 8 == 0 and 100 < len(prog) // 8 < 4096
    code, jt, jf, k = struct.unpack("=HBBI", prog[:8])
    assert (code, k) == (0x20, 4)                              # ld [arch]
    rets = [struct.unpack("=HBBI", prog[i:i + 8]) for i in range(0, len(prog), 8)]
    assert (0x06, 0, 0, 0x00050000 | 38) in rets               # return ERRNO(ENOSYS)


def test_unknown_names_are_skipped_like_runc():
    oci = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read", "a_syscall_from_2040"], "action": "SCMP_ACT_ALLOW"}]}
    assert sc.compile(oci, cache=False)


def test_cache_key_depends_on_the_profile():
    a = sc.default_seccomp()
    b = sc.default_seccomp(default_capabilities() | {"bounding": ["CAP_SYS_ADMIN"]})
    assert sc.key(a) != sc.key(b) and sc.key(a) == sc.key(json.loads(json.dumps(a)))
