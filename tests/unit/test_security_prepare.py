"""prepare(): validation and the picklable / JSON-able result (no root: nothing is applied)."""

import json
import pickle

import pytest

from minicontainer.security import (ProcessSecurity, SecurityError, default_capabilities, default_seccomp,
                                    from_dict, prepare, to_dict)


@pytest.fixture(autouse=True)
def private_state(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICONTAINER_STATE_ROOT", str(tmp_path))


def test_prepared_round_trips_through_json_and_pickle():
    p = prepare(ProcessSecurity(uid=1000, gid=1000, additional_gids=(10,), umask=0o022,
                                capabilities=default_capabilities(1000), seccomp=default_seccomp(),
                                rlimits=(("NOFILE", 1024, 2048),), oom_score_adj=10, no_new_privileges=True))
    assert from_dict(json.loads(json.dumps(to_dict(p)))) == p
    assert pickle.loads(pickle.dumps(p)) == p
    assert p.caps["effective"] == 0 and p.caps["bounding"] == 0xa80425fb
    assert p.summary["CapBnd"] == "00000000a80425fb"


def test_unlimited_is_minus_one_or_the_specs_uint64_max():
    import resource
    p = prepare(ProcessSecurity(rlimits=(("CORE", -1, -1), ("RLIMIT_NOFILE", 10, 2**64 - 1))))
    assert p.rlimits == ((resource.RLIMIT_CORE, resource.RLIM_INFINITY, resource.RLIM_INFINITY),
                         (resource.RLIMIT_NOFILE, 10, resource.RLIM_INFINITY))


def test_privileged_keeps_everything_and_has_no_program():
    p = prepare(ProcessSecurity())
    assert p.caps is None and p.seccomp_program is None and p.summary["seccomp"] == "unconfined"


@pytest.mark.parametrize("sec, words", [
    (ProcessSecurity(uid="root"), "uid"),
    (ProcessSecurity(umask=0o1777), "umask"),
    (ProcessSecurity(additional_gids=(-5,)), "additional gid"),
    (ProcessSecurity(rlimits=(("RLIMIT_NOFILE", 10, 5),)), "soft"),
    (ProcessSecurity(rlimits=(("RLIMIT_NOFILE",),)), "rlimit"),
    (ProcessSecurity(rlimits=(("RLIMIT_NOFILE", 2**63, 2**63),)), "not a number"),
    (ProcessSecurity(capabilities={"effective": ["CAP_CHOWN"]}), "not permitted"),
    (ProcessSecurity(seccomp={"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"],
                     "action": "SCMP_ACT_NOTIFY"}]}), "action"),
    ("not a ProcessSecurity", "ProcessSecurity"),
])
def test_bad_input(sec, words):
    with pytest.raises(SecurityError) as exc:
        prepare(sec)
    assert words in str(exc.value) and "\n" not in str(exc.value) and exc.value.exit_code == 125
