"""Docker's security flags → OCI fields (no root)."""

import pytest

from minicontainer.security import SecurityError
from minicontainer.security.options import from_docker_flags


def test_defaults_are_dockers():
    out = from_docker_flags()
    assert len(out["process"]["capabilities"]["bounding"]) == 14
    assert out["process"]["noNewPrivileges"] is False
    assert out["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert out["linux"]["resources"]["devices"][0] == {"allow": False, "access": "rwm"}
    assert out["linux"]["maskedPaths"] is None and out["privileged"] is False


def test_privileged_has_everything_and_no_filter():
    out = from_docker_flags(privileged=True, security_opt=["seccomp=/nonexistent.json"])
    assert "seccomp" not in out["linux"]
    assert "CAP_SYS_ADMIN" in out["process"]["capabilities"]["effective"]
    assert out["linux"]["resources"]["devices"] == [{"allow": True, "type": "a", "access": "rwm"}]
    assert out["linux"]["maskedPaths"] == []


@pytest.mark.parametrize("opt, nnp", [("no-new-privileges", True), ("no-new-privileges=true", True),
                                      ("no-new-privileges:true", True), ("no-new-privileges=false", False)])
def test_no_new_privileges(opt, nnp):
    assert from_docker_flags(security_opt=[opt])["process"]["noNewPrivileges"] is nnp


def test_seccomp_unconfined_and_cap_add_changes_the_profile():
    assert "seccomp" not in from_docker_flags(security_opt=["seccomp=unconfined"])["linux"]
    names = {n for r in from_docker_flags(cap_add=["SYS_ADMIN"])["linux"]["seccomp"]["syscalls"] for n in r["names"]}
    assert "mount" in names


def test_device_flag_adds_node_and_rule():
    out = from_docker_flags(devices=["/dev/null:/dev/extra:rw"])
    assert out["linux"]["devices"][-1]["path"] == "/dev/extra"
    assert out["linux"]["resources"]["devices"][-1] == {"allow": True, "type": "c", "major": 1, "minor": 3,
                                                         "access": "rw"}


def test_non_root_user_has_no_effective_caps():
    assert from_docker_flags(uid=1000)["process"]["capabilities"]["effective"] == []


@pytest.mark.parametrize("opt", ["no-new-privileges=maybe", "apparmor=docker-default", "apparmor=", "seccomp=",
                                 "bogus"])
def test_bad_security_opt(opt, monkeypatch):
    # a kernel without AppArmor (this host's; the AppArmor cases: test_security_apparmor.py)
    monkeypatch.setattr("minicontainer.security.apparmor._enabled", False)
    with pytest.raises(SecurityError) as exc:
        from_docker_flags(security_opt=[opt])
    assert "\n" not in str(exc.value)
