"""The leak check itself (tests/leakcheck.py): what it reports between two snapshots."""

from collections import Counter

from tests import leakcheck


def _snap(mounts=(), children=()):
    return {"mounts": Counter(mounts), "cgroups": set(), "links": set(), "netns": set(),
            "firewall": Counter(), "state": set(), "children": set(children)}


CG = ("/sys/fs/cgroup", "tmpfs", "tmpfs")
ROOT = ("/tmp/x/root", "ext4", "/dev/vda1")


def test_a_new_mount_is_a_leak_and_a_mount_gone_is_one_too():
    assert leakcheck.leaks(_snap([CG]), _snap([CG, ROOT])) == [f"mounts: {ROOT}"]
    # unmounted by the test (in a shared peer group, also on the host): it was not the test's to remove
    assert leakcheck.leaks(_snap([CG, ROOT]), _snap([ROOT])) == [f"mounts gone: {CG}"]
    assert leakcheck.leaks(_snap([CG, ROOT]), _snap([ROOT, CG])) == []


def test_a_mount_stacked_twice_counts_twice():
    assert leakcheck.leaks(_snap([CG]), _snap([CG, CG])) == [f"mounts: {CG}"]
    assert leakcheck.leaks(_snap([CG, CG]), _snap([CG])) == [f"mounts gone: {CG}"]


def test_children_to_ignore_are_ignored():
    assert leakcheck.leaks(_snap(children=[1]), _snap(children=[1, 7, 8]), {8}) == ["children: 7"]


def test_mountinfo_is_read_as_mount_point_type_source():
    here = leakcheck._mounts()
    assert here and all(len(k) == 3 and k[0].startswith("/") for k in here)
    assert any(k[0] == "/" for k in here)
