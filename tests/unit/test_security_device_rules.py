"""Device rules: defaults, v1 lines, the eBPF program's shape, --device parsing (no root)."""

import struct

import pytest

from minicontainer.security import SecurityError, devices


def test_default_rules_deny_first_then_allow_the_default_nodes():
    rules = devices.default_rules()
    assert rules[0] == {"allow": False, "access": "rwm"}
    allowed = {(r["major"], r["minor"]) for r in rules[1:] if r["allow"]}
    assert allowed == {(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2), (136, None)}
    assert (1, 11) not in allowed                      # /dev/kmsg


def test_default_nodes_are_oci_devices():
    paths = {d["path"]: (d["type"], d["major"], d["minor"]) for d in devices.default_nodes()}
    assert paths["/dev/null"] == ("c", 1, 3) and paths["/dev/tty"] == ("c", 5, 0)
    assert set(paths) == {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}


def test_v1_lines():
    lines = devices.v1_lines(devices.default_rules())
    assert lines[0] == ("devices.deny", "a")
    assert ("devices.allow", "c 1:3 rwm") in lines and ("devices.allow", "c 136:* rwm") in lines
    assert devices.v1_lines([{"allow": True, "type": "a", "major": 8, "access": "r"}]) == [
        ("devices.allow", "c 8:* r"), ("devices.allow", "b 8:* r")]


def test_program_is_whole_ebpf_instructions_ending_in_deny():
    prog = devices.program(devices.default_rules())
    assert len(prog) % 8 == 0
    last2 = [struct.unpack("<BBhi", prog[i:i + 8]) for i in (len(prog) - 16, len(prog) - 8)]
    assert last2 == [(0xB7, 0, 0, 0), (0x95, 0, 0, 0)]    # r0 = 0; exit


def _run(prog, typ, access, major, minor):
    """A tiny interpreter for the instructions program() emits: proves the jump offsets."""
    regs = [0] * 11
    ctx = {0: access << 16 | typ, 4: major, 8: minor}
    ins = [struct.unpack("<BBhi", prog[i:i + 8]) for i in range(0, len(prog), 8)]
    pc = 0
    while True:
        code, r, off, imm = ins[pc]
        dst, src = r & 0xF, r >> 4
        pc += 1
        if code == 0x61:
            regs[dst] = ctx[off]
        elif code == 0x57:
            regs[dst] &= imm & 0xFFFFFFFFFFFFFFFF
        elif code == 0x77:
            regs[dst] >>= imm
        elif code == 0xB7:
            regs[dst] = imm
        elif code == 0xBF:
            regs[dst] = regs[src]
        elif code == 0x55:
            if regs[dst] != imm:
                pc += off
        elif code == 0x95:
            return regs[0]
        else:
            raise AssertionError(hex(code))


@pytest.mark.parametrize("typ, access, major, minor, verdict", [
    (2, 2 | 4, 1, 3, 1),        # read+write /dev/null
    (2, 2, 1, 11, 0),           # read /dev/kmsg
    (2, 1, 1, 11, 0),           # mknod /dev/kmsg
    (1, 2, 8, 0, 0),            # read a disk
    (2, 2, 136, 7, 1),          # a pts
    (2, 2, 5, 2, 1),            # ptmx
])
def test_program_verdicts(typ, access, major, minor, verdict):
    assert _run(devices.program(devices.default_rules()), typ, access, major, minor) == verdict


def test_a_rule_that_matches_everything_ends_the_program():
    # the verifier rejects unreachable instructions: nothing may follow an unconditional verdict
    prog = devices.program([{"allow": False, "access": "rwm"}])
    assert [struct.unpack("<BBhi", prog[i:i + 8])[0] for i in range(0, len(prog), 8)][-2:] == [0xB7, 0x95]
    assert len(devices.program([{"allow": True, "type": "c", "major": 1, "minor": 3},
                                {"allow": True, "access": "rwm"}])) // 8 == 6 + 2


def test_later_rules_win_and_access_subsets():
    rules = devices.default_rules() + [{"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"},
                                       {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"}]
    prog = devices.program(rules)
    assert _run(prog, 2, 2, 1, 11) == 1 and _run(prog, 2, 4, 1, 11) == 0
    assert _run(prog, 2, 4, 1, 3) == 0 and _run(prog, 2, 2, 1, 3) == 1


@pytest.mark.parametrize("spec, expected", [
    ("/dev/fuse", ("/dev/fuse", "/dev/fuse", "rwm")),
    ("/dev/sdc:/dev/xvdc", ("/dev/sdc", "/dev/xvdc", "rwm")),
    ("/dev/sdc:/dev/xvdc:r", ("/dev/sdc", "/dev/xvdc", "r")),
    ("/dev/kvm:mw", ("/dev/kvm", "/dev/kvm", "wm")),
])
def test_parse_device(spec, expected):
    assert devices.parse_device(spec) == expected


@pytest.mark.parametrize("spec", ["", "dev/fuse", "/a:/b:/c:r", "/dev/x:rr", "/dev/x:relative"])
def test_parse_device_errors(spec):
    with pytest.raises(SecurityError) as exc:
        devices.parse_device(spec)
    assert "\n" not in str(exc.value)


def test_from_host_stats_the_node():
    node, rule = devices.from_host("/dev/null:/dev/mynull:r")
    assert (node["path"], node["type"], node["major"], node["minor"]) == ("/dev/mynull", "c", 1, 3)
    assert rule == {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"}
    with pytest.raises(SecurityError, match="not a device"):
        devices.from_host("/etc/hostname")


@pytest.mark.parametrize("bad", [[{"access": "rwm"}], [{"allow": True, "type": "x"}],
                                 [{"allow": True, "access": "rwx"}], [{"allow": True, "major": "1"}], "a"])
def test_validate_errors(bad):
    with pytest.raises(SecurityError):
        devices.validate(bad)


def test_host_devices_are_the_hosts_nodes_without_the_containers_own():
    """--privileged's list (Docker's HostDevices): character and block nodes of the host's /dev, never
    a pts, shm, mqueue or fd entry, the console, ptmx or a default node (made anyway)."""
    import os
    import stat
    from minicontainer.security.devices import host_devices
    found = host_devices()
    assert found == sorted(found)
    for p in found:
        parts = p.split("/")
        assert parts[1] == "dev" and not {"pts", "shm", "mqueue", "fd", "console", "ptmx"} & set(parts), p
        assert p not in ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty")
        m = os.lstat(p).st_mode
        assert stat.S_ISCHR(m) or stat.S_ISBLK(m), p
    assert host_devices("/nonexistent") == []


def test_privileged_keeps_nodes_whose_names_hold_colons(monkeypatch):
    # a v2 VM's /dev/bsg/0:0:0:0 was missing from --privileged containers: read as HOST:CTR:ACCESS
    import os
    import stat as st
    from minicontainer.security.options import from_docker_flags
    node = "/dev/bsg/0:0:0:0"
    real = os.stat
    monkeypatch.setattr(devices, "host_devices", lambda top="/dev": [node])
    monkeypatch.setattr(devices.os, "stat", lambda p, *a, **k: os.stat_result(
        (st.S_IFCHR | 0o600, 0, 0, 1, 0, 0, 0, 0, 0, 0)) if p == node else real(p, *a, **k))
    monkeypatch.setattr(devices.os, "major", lambda rdev: 247)
    monkeypatch.setattr(devices.os, "minor", lambda rdev: 0)
    paths = [n["path"] for n in from_docker_flags(privileged=True)["linux"]["devices"]]
    assert node in paths
    with pytest.raises(SecurityError):
        devices.from_host(node)              # as a --device spec it is not a path: 3 fields
