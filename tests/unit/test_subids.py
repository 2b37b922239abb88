"""/etc/subuid and /etc/subgid for --userns=remap (minicontainer/subids.py): parsing, the mapping
and its errors, and `ensure` (make setup) — on copies in tmp_path, never the host's files."""

from __future__ import annotations

import pytest

from minicontainer import subids
from minicontainer.errors import ConfigError
from minicontainer.runtime.config import ContainerConfig


@pytest.fixture
def files(tmp_path, monkeypatch):
    uid, gid = tmp_path / "subuid", tmp_path / "subgid"
    monkeypatch.setenv("MINICONTAINER_SUBUID", str(uid))
    monkeypatch.setenv("MINICONTAINER_SUBGID", str(gid))
    # the host's users and groups are not part of these tests: nobody's ids only
    monkeypatch.setattr(subids, "_taken", lambda: [(s, c) for p in (uid, gid) if p.exists()
                                                   for _, s, c in subids.parse(p.read_text())])
    return uid, gid


def test_parse_skips_comments_blank_and_malformed_lines():
    text = ("# comment\n\nalice:100000:65536\nbroken line\nbob:x:5\ncarol:1:0\n"
            " minicontainer:231072:65536 \nmallory:5:6:7\n")
    assert subids.parse(text) == [("alice", 100000, 65536), ("minicontainer", 231072, 65536)]


def test_find_takes_the_first_entry_of_the_name():
    entries = subids.parse("minicontainer:300000:10\nminicontainer:400000:65536\n")
    assert subids.find(entries) == (300000, 10)
    assert subids.find(entries, "alice") is None


def test_suggest_skips_every_overlapping_range():
    assert subids.suggest([]) == 100000
    assert subids.suggest([(100000, 65536)]) == 165536
    # a later range that the first move runs into: moved past it too
    assert subids.suggest([(170000, 10), (100000, 65536)]) == 170010
    assert subids.suggest([(0, 1), (65534, 1), (300000, 5)]) == 100000


def test_mapping_reads_both_files(files):
    uid, gid = files
    uid.write_text("alice:100000:65536\nminicontainer:165536:65536\n")
    gid.write_text("minicontainer:200000:1000\n")
    m = subids.mapping()
    assert m == {"uidMappings": [{"containerID": 0, "hostID": 165536, "size": 65536}],
                 "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 1000}]}


def test_mapping_without_an_entry_names_the_file_and_the_fix(files):
    uid, gid = files
    uid.write_text("alice:100000:65536\n")
    gid.write_text("minicontainer:165536:65536\n")
    with pytest.raises(ConfigError) as e:
        subids.mapping()
    assert e.value.exit_code == 125
    msg = str(e.value)
    assert f"no 'minicontainer' entry in {uid}" in msg
    assert "sudo make setup" in msg and "'minicontainer:165536:65536'" not in msg   # that one is taken
    assert "minicontainer:231072:65536" in msg


def test_mapping_refuses_a_range_that_holds_host_root(files):
    uid, gid = files
    uid.write_text("minicontainer:0:65536\n")
    gid.write_text("minicontainer:100000:65536\n")
    with pytest.raises(ConfigError, match="starts at 0"):
        subids.mapping()


def test_missing_files_are_no_entry(files):
    with pytest.raises(ConfigError, match="no 'minicontainer' entry"):
        subids.mapping()


def test_ensure_appends_once_and_never_touches_other_lines(files):
    uid, gid = files
    uid.write_text("alice:100000:65536\nbob:165536:65536")       # no final newline
    gid.write_text("alice:100000:65536\n")
    added = subids.ensure()
    assert added == [f"added minicontainer:231072:65536 to {uid}", f"added minicontainer:231072:65536 to {gid}"]
    assert uid.read_text() == "alice:100000:65536\nbob:165536:65536\nminicontainer:231072:65536\n"
    assert gid.read_text() == "alice:100000:65536\nminicontainer:231072:65536\n"
    assert subids.ensure() == []                                   # idempotent
    assert uid.read_text().count("minicontainer") == 1
    assert subids.mapping()["uidMappings"][0]["hostID"] == 231072


def test_ensure_completes_the_other_file_with_the_same_start(files):
    uid, gid = files
    uid.write_text("minicontainer:300000:65536\n")
    gid.write_text("")
    assert subids.ensure() == [f"added minicontainer:300000:65536 to {gid}"]
    assert uid.read_text() == "minicontainer:300000:65536\n"


def test_ensure_picks_another_start_when_the_same_is_taken(files):
    uid, gid = files
    uid.write_text("minicontainer:300000:65536\n")
    gid.write_text("alice:300000:65536\n")
    assert subids.ensure() == [f"added minicontainer:100000:65536 to {gid}"]   # the lowest free


def test_ensure_creates_a_missing_file(files):
    uid, gid = files
    subids.ensure()
    assert uid.read_text() == gid.read_text() == "minicontainer:100000:65536\n"
    assert oct(uid.stat().st_mode & 0o777) == "0o644"


def test_main_is_the_setup_step(files, capsys):
    uid, _ = files
    assert subids.main(["ensure"]) == 0
    assert "added minicontainer:100000:65536" in capsys.readouterr().out
    assert subids.main(["ensure"]) == 0 and capsys.readouterr().out == ""
    assert subids.main([]) == 2


@pytest.mark.parametrize("opts, msg", [
    ({"userns": "private"}, "invalid --userns"),
    ({"userns": "remap", "privileged": True}, "--privileged is incompatible"),
    ({"userns": "remap", "network": "host"}, "--network host is not supported"),
])
def test_config_refuses_what_remap_cannot_do(opts, msg):
    with pytest.raises(ConfigError, match=msg):
        ContainerConfig(image="busybox", command=["true"], **opts).check_userns()


IDMAP = {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
         "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}


def test_container_network_is_checked_against_the_peers_user_namespace():
    """--network container:NAME with remap: allowed by the flags; the peer decides (both remapped
    with the same maps, or neither), checked at create and at start with the peer's record."""
    from minicontainer.runtime.userns import check_peer
    ContainerConfig(image="busybox", userns="remap", network="container:web").check_userns()
    check_peer(IDMAP, {"name": "web", "idmap": dict(IDMAP)}, "web")
    check_peer(None, {"name": "web", "idmap": None}, "web")
    with pytest.raises(ConfigError, match="container web runs with --userns=remap and this one with "
                                          "--userns=host.*run this one with --userns=remap too"):
        check_peer(None, {"name": "web", "idmap": IDMAP}, "web")
    with pytest.raises(ConfigError, match="--userns=host and this one with --userns=remap.*--userns=host too"):
        check_peer(IDMAP, {"name": "web"}, "web")
    other = {k: [dict(v[0], hostID=200000)] for k, v in IDMAP.items()}
    with pytest.raises(ConfigError, match="remapped with other ids.*restart web"):
        check_peer(IDMAP, {"name": "web", "idmap": other}, "web")


def test_config_default_is_host():
    cfg = ContainerConfig(image="busybox")
    assert cfg.userns == "host"
    cfg.check_userns()
    assert ContainerConfig.from_dict({"image": "busybox"}).userns == "host"   # an older record
