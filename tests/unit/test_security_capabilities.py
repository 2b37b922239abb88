"""Capability names, Docker's defaults and the --cap-add/--cap-drop/--privileged rules (no root)."""

import pytest

from minicontainer.errors import MiniContainerError
from minicontainer.security import SecurityError, capabilities as caps


def test_names_match_the_kernel_header_numbers():
    assert caps.number_of("CAP_CHOWN") == 0
    assert caps.number_of("CAP_SYS_ADMIN") == 21
    assert caps.number_of("net_admin") == 12
    assert caps.number_of("SETFCAP") == 31
    assert caps.number_of("CAP_CHECKPOINT_RESTORE") == 40
    assert [caps.name_of(n) for n in (5, 39)] == ["CAP_KILL", "CAP_BPF"]
    assert len(caps.all_names()) == caps.last_cap() + 1


def test_docker_default_mask_is_what_proc_status_shows_in_docker():
    assert f"{caps.mask(caps.DOCKER_DEFAULT):016x}" == "00000000a80425fb"
    assert len(caps.DOCKER_DEFAULT) == 14
    assert sorted(caps.names_of(0xa80425fb)) == sorted(caps.DOCKER_DEFAULT)


def test_default_capabilities_root_and_non_root():
    d = caps.default_capabilities()
    assert set(d) == {"bounding", "effective", "inheritable", "permitted", "ambient"}
    assert d["bounding"] == d["effective"] == d["permitted"]
    assert d["inheritable"] == d["ambient"] == []
    u = caps.default_capabilities(uid=1000)
    assert u["effective"] == [] and u["permitted"] == d["permitted"]


def test_unknown_name_is_a_one_line_security_error():
    with pytest.raises(SecurityError) as exc:
        caps.number_of("CAP_FLY")
    assert isinstance(exc.value, MiniContainerError) and "\n" not in str(exc.value)
    assert "CAP_FLY" in str(exc.value)


def test_cap_add_and_drop():
    c = caps.from_flags(["NET_ADMIN"], ["CAP_MKNOD", "chown"])
    assert "CAP_NET_ADMIN" in c["bounding"]
    assert "CAP_MKNOD" not in c["bounding"] and "CAP_CHOWN" not in c["effective"]
    assert len(c["bounding"]) == 14 + 1 - 2


def test_cap_drop_all_then_add():
    c = caps.from_flags(["NET_BIND_SERVICE"], ["ALL"])
    assert c["bounding"] == c["effective"] == ["CAP_NET_BIND_SERVICE"]


def test_cap_add_all_minus_drop():
    c = caps.from_flags(["ALL"], ["SYS_ADMIN"])
    assert "CAP_SYS_ADMIN" not in c["bounding"]
    assert c["bounding"] == [n for n in caps.available_names() if n != "CAP_SYS_ADMIN"]


def test_add_wins_over_drop_of_the_same_cap():
    assert "CAP_KILL" in caps.from_flags(["KILL"], ["KILL"])["bounding"]


def test_privileged_gets_every_capability_available_here(monkeypatch):
    c = caps.from_flags(privileged=True)
    assert caps.mask(c["bounding"]) == caps.bounding_mask() & ((1 << (caps.last_cap() + 1)) - 1)
    # a runtime whose own bounding set lacks one (a nested host: CAP_SYS_RESOURCE, 24) cannot hand
    # it on, and runc refuses a config that asks: Docker leaves it out, so do we
    full = (1 << (caps.last_cap() + 1)) - 1
    monkeypatch.setattr(caps, "bounding_mask", lambda: full & ~(1 << 24))
    for c in (caps.from_flags(privileged=True), caps.from_flags(["ALL"])):
        assert caps.mask(c["bounding"]) == full & ~(1 << 24)
        assert "CAP_SYS_RESOURCE" not in c["effective"]
    monkeypatch.setattr(caps, "bounding_mask", lambda: full)
    assert caps.mask(caps.from_flags(privileged=True)["bounding"]) == full


def test_bad_flag_names_the_flag():
    with pytest.raises(SecurityError, match=r"--cap-add NET_FLY"):
        caps.from_flags(["NET_FLY"])


def test_validate_rejects_effective_outside_permitted_and_bad_sets():
    with pytest.raises(SecurityError, match="effective but not permitted"):
        caps.validate({"effective": ["CAP_CHOWN"], "permitted": []})
    with pytest.raises(SecurityError, match="unknown set"):
        caps.validate({"bonding": []})
    with pytest.raises(SecurityError, match="ambient"):
        caps.validate({"permitted": ["CAP_KILL"], "ambient": ["CAP_KILL"]})
    m = caps.validate(caps.default_capabilities())
    assert m["bounding"] == 0xa80425fb and m["ambient"] == 0
