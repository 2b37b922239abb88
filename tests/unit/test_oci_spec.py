"""The OCI runtime's input checks and pure helpers (no root, no kernel changes)."""
from __future__ import annotations

import json
import os

import pytest

from minicontainer.errors import ConfigError, NotFoundError
from minicontainer.oci import cgroup, lifecycle, mounts, spec, state


def _cfg(**over):
    c = spec.example(args=("sh", "-c", "true"), terminal=False)
    c.update(over)
    return c


def _bundle(tmp_path, cfg):
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    (tmp_path / "config.json").write_text(json.dumps(cfg) if not isinstance(cfg, str) else cfg)
    return str(tmp_path)


def test_example_parses_with_every_part(tmp_path):
    c = _cfg()
    c["process"]["user"] = {"uid": 1000, "gid": 100, "additionalGids": [5, 6], "umask": 0o22}
    c["process"]["consoleSize"] = {"height": 24, "width": 80}
    c["process"]["capabilities"] = {"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"]}
    c["process"]["oomScoreAdj"] = 100
    c["linux"].update(uidMappings=[{"containerID": 0, "hostID": 100000, "size": 65536}],
                      gidMappings=[{"containerID": 0, "hostID": 100000, "size": 65536}],
                      cgroupsPath="/libpod_parent/libpod-x", sysctl={"net.ipv4.ip_forward": "1"},
                      rootfsPropagation="rslave",
                      devices=[{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666}],
                      resources={"memory": {"limit": 64 << 20, "swap": 128 << 20}, "pids": {"limit": 20},
                                 "cpu": {"quota": 50000, "period": 100000, "shares": 512},
                                 "devices": [{"allow": False, "access": "rwm"}]})
    c["linux"]["namespaces"].append({"type": "user"})
    c["hooks"] = {"poststop": [{"path": "/bin/true", "args": ["true"], "timeout": 5}]}
    c["annotations"] = {"a": "b"}
    s = spec.load(_bundle(tmp_path, c))
    assert s.root_path == str(tmp_path / "rootfs") and s.root_readonly
    assert s.process.user.additional_gids == (5, 6) and s.process.user.umask == 0o22
    assert s.process.console_size == (24, 80) and s.process.rlimits == (("RLIMIT_NOFILE", 1024, 1024),)
    assert s.linux.namespace("net").path == "" and s.linux.namespace("mnt")
    assert s.linux.uid_mappings[0].host_id == 100000
    r = s.linux.resources
    assert (r.memory, r.memory_swap, r.pids, r.cpu_quota, r.cpu_shares) == (64 << 20, 128 << 20, 20, 50000, 512)
    lim = cgroup.limits(r)
    assert lim.memory == 64 << 20 and lim.cpus == 0.5 and lim.pids == 20
    assert s.hooks["poststop"][0].timeout == 5 and s.annotations == {"a": "b"}
    assert s.linux.devices[0].file_mode == 0o666


@pytest.mark.parametrize("mutate, words", [
    (lambda c: c["process"].__setitem__("args", "sh"), "process.args: expected an array"),
    (lambda c: c["process"]["user"].__setitem__("uid", "0"), "process.user.uid: expected an integer"),
    (lambda c: c["process"].__setitem__("terminal", "yes"), "process.terminal: expected a boolean"),
    (lambda c: c["process"].__setitem__("cwd", "tmp"), "process.cwd: 'tmp' is not an absolute path"),
    (lambda c: c["process"].__setitem__("args", []), "process.args: empty"),
    (lambda c: c.__setitem__("mounts", [{"destination": "/x", "options": "ro"}]), "mounts[0].options"),
    (lambda c: c["linux"]["namespaces"].append({"type": "bogus"}), "unknown namespace 'bogus'"),
    (lambda c: c["linux"]["namespaces"].append({"type": "pid"}), "'pid' given twice"),
    (lambda c: c["linux"].__setitem__("resources", {"memory": {"limit": "64m"}}), "memory.limit: expected an integer"),
    (lambda c: c["linux"].__setitem__("rootfsPropagation", "bad"), "rootfsPropagation"),
    (lambda c: c.__setitem__("ociVersion", "2.0.0"), "not supported"),
    (lambda c: c.pop("root"), "root: missing"),
    (lambda c: c["linux"].__setitem__("cgroupsPath", "/a/../../b"), "contains '..'"),
    (lambda c: c["linux"].__setitem__("namespaces", [{"type": "mount"}]), "no new uts namespace"),
])
def test_bad_fields_are_one_line_naming_the_field(tmp_path, mutate, words):
    c = _cfg()
    mutate(c)
    with pytest.raises(ConfigError) as e:
        spec.load(_bundle(tmp_path, c))
    assert words in str(e.value) and "\n" not in str(e.value)


def test_missing_bundle_invalid_json_missing_rootfs(tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        spec.load(str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="invalid JSON"):
        spec.load(_bundle(tmp_path, "{not json"))
    c = _cfg()
    c["root"]["path"] = "elsewhere"
    with pytest.raises(NotFoundError, match="root.path"):
        spec.load(_bundle(tmp_path, c))


def test_signals():
    assert lifecycle.parse_signal("TERM") == 15 == lifecycle.parse_signal("SIGTERM")
    assert lifecycle.parse_signal("9") == 9 and lifecycle.parse_signal("kill") == 9
    for bad in ("FOO", "0", "999", "SIG", "__class__"):
        with pytest.raises(ConfigError, match='unknown signal'):
            lifecycle.parse_signal(bad)


def test_cgroup_paths():
    assert cgroup.resolve("/libpod_parent/libpod-abc", "abc") == "libpod_parent/libpod-abc"
    assert cgroup.resolve("", "abc").endswith("/abc")
    assert cgroup.resolve("machine-libpod.slice:libpod:abc", "abc", systemd=True) == \
        "machine.slice/machine-libpod.slice/libpod-abc.scope"
    with pytest.raises(ConfigError):
        cgroup.resolve("/", "x")


def test_mount_options():
    flags, pflags, data = mounts.parse_options(["nosuid", "noexec", "rw", "rprivate", "mode=755", "size=1k"])
    import minicontainer.syscalls as sc
    assert flags == sc.MS_NOSUID | sc.MS_NOEXEC and pflags == sc.MS_PRIVATE | sc.MS_REC
    assert data == "mode=755,size=1k"
    assert mounts.parse_options(["rbind", "ro"])[0] == sc.MS_BIND | sc.MS_REC | sc.MS_RDONLY


def test_secure_join_stays_inside(tmp_path):
    root = tmp_path / "r"
    (root / "etc").mkdir(parents=True)
    os.symlink("../../../../../etc/shadow", root / "etc" / "evil")
    os.symlink("/etc", root / "link")
    assert mounts.secure_join(str(root), "/etc/evil") == "/etc/shadow"
    assert mounts.secure_join(str(root), "/link/x/../y") == "/etc/y"
    assert mounts.secure_join(str(root), "/../../a") == "/a"


def test_state_ids_and_time(tmp_path):
    with pytest.raises(ConfigError):
        state.check_id("../x")
    assert state.rfc3339(0.5) == "1970-01-01T00:00:00.5Z"
    st = state.State.new(str(tmp_path), "c1", {"pid": os.getpid(), "pid_start": state.start_time(os.getpid())[0]})
    assert oct(os.stat(st.dir).st_mode & 0o777) == "0o700"
    assert oct(os.stat(os.path.join(st.dir, "state.json")).st_mode & 0o777) == "0o600"
    assert state.State.load(str(tmp_path), "c1").status() == "running"
    st.data["pid_start"] += 1                                    # the pid reused by another process
    assert st.status() == "stopped"
    from minicontainer.errors import ConflictError
    with pytest.raises(ConflictError, match="already exists"):
        state.State.new(str(tmp_path), "c1", {})
    st.remove()
    with pytest.raises(NotFoundError, match="container does not exist"):
        state.State.load(str(tmp_path), "c1")


def test_command_line_as_conmon_and_the_shim_write_it():
    from minicontainer.oci.cli import UsageError, parse
    a = parse(["--root", "/run/x", "--log", "/l.json", "--log-format", "json", "--systemd-cgroup", "create",
               "--bundle", "/b", "--pid-file", "/p", "--console-socket", "/c.sock", "--no-new-keyring",
               "--preserve-fds", "2", "id1"])
    assert (a.root, a.log, a.log_format, a.systemd_cgroup, a.verb, a.bundle, a.pid_file, a.console_socket,
            a.preserve_fds, a.id) == ("/run/x", "/l.json", "json", True, "create", "/b", "/p", "/c.sock", 2, "id1")
    a = parse(["exec", "--process", "/p.json", "--detach", "--pid-file=/x", "-t", "id2"])
    assert (a.process, a.detach, a.pid_file, a.tty, a.id) == ("/p.json", True, "/x", True, "id2")
    a = parse(["kill", "--all", "id3", "9"])
    assert (a.all, a.id, a.signal) == (True, "id3", "9")
    assert parse(["kill", "id3"]).signal == "SIGTERM"
    assert parse(["create", "-bundle", "/b", "i"]).bundle == "/b"        # Go's single-dash long form
    assert parse(["delete", "-f", "i"]).force
    for bad in (["create"], ["bogus", "x"], ["--nope", "state", "x"], ["state", "--nope", "x"],
                ["exec", "x"], ["state", "a", "b"], ["--log-format", "xml", "state", "x"]):
        with pytest.raises(UsageError):
            parse(bad)
