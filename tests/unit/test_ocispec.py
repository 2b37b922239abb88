"""The engine's record as an OCI runtime spec (runtime/ocispec.py): what `run` flags become, no root."""

import json

import pytest

from minicontainer.errors import ConfigError
from minicontainer.runtime.config import ContainerConfig
from minicontainer.runtime.ocispec import spec


def _rec(tmp_path, **flags):
    cfg = ContainerConfig("busybox", ["sh", "-c", "echo hi"], **flags).validate()
    cid = "ab" * 32
    return {"id": cid, "name": "web", "config": cfg.to_dict(), "argv": ["sh", "-c", "echo hi"],
            "env": ["PATH=/bin", "A=1"], "workdir": "/srv", "cgroup": f"mc-{cid[:16]}"}


def test_flags_become_the_specs_fields(tmp_path, monkeypatch):
    monkeypatch.setattr("minicontainer.security.apparmor._enabled", False)    # no AppArmor: no field
    vol = tmp_path / "data"
    vol.mkdir()
    rec = _rec(tmp_path, name="web", hostname="h1", user="1000:1001", memory="64m", cpus="0.5",
               pids_limit="20", network="none", volumes=[f"{vol}:/data:ro"], read_only=True, tty=True)
    s = spec(rec, "/var/lib/x/merged", cgroup_parent="minicontainer")
    assert json.loads(json.dumps(s)) == s                       # config.json as is
    caps = s["process"].pop("capabilities")
    assert s["process"] == {"terminal": True, "user": {"uid": 1000, "gid": 1001},
                            "args": ["sh", "-c", "echo hi"], "env": ["PATH=/bin", "A=1"], "cwd": "/srv",
                            "noNewPrivileges": False}
    assert caps["effective"] == [] and "CAP_CHOWN" in caps["bounding"]     # -u 1000: none effective
    assert s["root"] == {"path": "/var/lib/x/merged", "readonly": True} and s["hostname"] == "h1"
    lin = s["linux"]
    assert lin.pop("seccomp")["defaultAction"] == "SCMP_ACT_ERRNO"
    assert lin["resources"].pop("devices")[0] == {"allow": False, "access": "rwm"}
    assert lin["resources"] == {"memory": {"limit": 64 << 20, "swap": 128 << 20},
                                "cpu": {"quota": 50000, "period": 100000}, "pids": {"limit": 20}}
    assert lin["cgroupsPath"] == "minicontainer/mc-abababababababab"
    assert [n["type"] for n in lin["namespaces"]] == ["pid", "ipc", "uts", "mount", "cgroup", "network"]
    assert "/proc/kcore" in lin["maskedPaths"] and "/proc/sys" in lin["readonlyPaths"]
    bind = s["mounts"][-1]
    assert bind == {"destination": "/data", "type": "bind", "source": str(vol.resolve()),
                    "options": ["rbind", "rprivate", "ro"]}
    assert {m["destination"] for m in s["mounts"]} >= {"/proc", "/dev", "/dev/pts", "/sys"}


@pytest.mark.parametrize("enabled, flags, want", [
    (True, {}, "minicontainer-default"),
    (True, {"privileged": True}, "unconfined"),
    (True, {"security_opt": ["apparmor=unconfined"]}, "unconfined"),
    (True, {"security_opt": ["apparmor=my-prof"]}, "my-prof"),
    (False, {}, None),                          # Docker leaves it out on a kernel without AppArmor
    (False, {"security_opt": ["apparmor=unconfined"]}, None),
])
def test_apparmor_profile(tmp_path, monkeypatch, enabled, flags, want):
    monkeypatch.setattr("minicontainer.security.apparmor._enabled", enabled)
    s = spec(_rec(tmp_path, network="none", **flags), "/r")
    assert s["process"].get("apparmorProfile") == want


def test_network_modes_are_namespaces(tmp_path):
    host = spec(_rec(tmp_path, network="host"), "/r")
    assert "network" not in [n["type"] for n in host["linux"]["namespaces"]]
    peer = spec(_rec(tmp_path, network="container:db"), "/r", peer_pid=4242)
    assert {"type": "network", "path": "/proc/4242/ns/net"} in peer["linux"]["namespaces"]
    with pytest.raises(ConfigError):
        spec(_rec(tmp_path, network="container:db"), "/r")


def test_cgroupns_private_by_default_host_on_request_and_privileged_sysfs_rw(tmp_path):
    """Docker's defaults on v2: a cgroup namespace of the container's own (--cgroupns host shares the
    host's); /sys read-only unless --privileged."""
    types = lambda s: [n["type"] for n in s["linux"]["namespaces"]]  # noqa: E731
    sysfs = lambda s: next(m for m in s["mounts"] if m["type"] == "sysfs")["options"]  # noqa: E731
    default = spec(_rec(tmp_path, network="none"), "/r")
    assert "cgroup" in types(default) and "ro" in sysfs(default)
    assert "cgroup" not in types(spec(_rec(tmp_path, network="none", cgroupns="host"), "/r"))
    assert "ro" not in sysfs(spec(_rec(tmp_path, network="none", privileged=True), "/r"))
    with pytest.raises(ConfigError, match="cgroupns"):
        ContainerConfig(image="busybox", cgroupns="shared").validate()


def test_working_directory_is_an_absolute_path_never_an_integer():
    """An image's WorkingDir of 5 would be os.chdir(5), an fchdir to whatever fd 5 is (CVE-2024-21626)."""
    from minicontainer.runtime.container import _workdir
    cfg = ContainerConfig(image="busybox")
    assert _workdir(cfg, {"WorkingDir": "/srv"}) == "/srv" and _workdir(cfg, {}) == "/"
    for bad in (5, "srv", "proc/self/fd/3"):
        with pytest.raises(ConfigError, match="WorkingDir"):
            _workdir(cfg, {"WorkingDir": bad})
    with pytest.raises(ConfigError, match="working directory"):
        ContainerConfig(image="busybox", workdir="relative").validate()


def test_no_limits_no_resources_and_root_by_default(tmp_path):
    s = spec(_rec(tmp_path, network="none"), "/r")
    assert list(s["linux"]["resources"]) == ["devices"] and s["process"]["user"] == {"uid": 0, "gid": 0}
    assert s["hostname"] == "ab" * 6


def test_dockers_security_defaults_and_flags_are_the_specs_fields(tmp_path):
    """Notebook 07's fields: Docker's 14 capabilities, its seccomp profile, the device rules; each
    flag changes its field (--privileged: all of them off)."""
    s = spec(_rec(tmp_path, network="none"), "/r")
    caps = s["process"]["capabilities"]
    assert len(caps["bounding"]) == 14 and caps["effective"] == caps["permitted"] == caps["bounding"]
    assert caps["inheritable"] == caps["ambient"] == [] and s["process"]["noNewPrivileges"] is False
    assert "seccomp" in s["linux"] and s["linux"]["devices"] == []
    s = spec(_rec(tmp_path, network="none", cap_drop=["ALL"], security_opt=["no-new-privileges",
                                                                             "seccomp=unconfined"]), "/r")
    assert s["process"]["capabilities"]["bounding"] == [] and s["process"]["noNewPrivileges"] is True
    assert "seccomp" not in s["linux"]
    s = spec(_rec(tmp_path, network="none", privileged=True), "/r")
    assert "CAP_SYS_ADMIN" in s["process"]["capabilities"]["bounding"] and "seccomp" not in s["linux"]
    assert s["linux"]["maskedPaths"] == [] and s["linux"]["resources"]["devices"] == [
        {"allow": True, "type": "a", "access": "rwm"}]


@pytest.mark.parametrize("flags, words", [
    ({"cap_add": ["FLY"]}, "--cap-add FLY: unknown capability"),
    ({"security_opt": ["label=maybe"]}, "not supported"),
    ({"devices": ["dev/null"]}, "not an absolute path"),
])
def test_bad_security_flags_are_config_errors(flags, words):
    with pytest.raises(ConfigError, match=words):
        ContainerConfig("busybox", ["true"], **flags).validate()


def test_a_remapped_record_has_a_user_namespace_and_its_maps(tmp_path):
    rec = _rec(tmp_path, network="none", userns="remap")
    idmap = {"uidMappings": [{"containerID": 0, "hostID": 165536, "size": 65536}],
             "gidMappings": [{"containerID": 0, "hostID": 165536, "size": 65536}]}
    lin = spec(dict(rec, idmap=idmap), "/r", cgroup_parent="minicontainer")["linux"]
    assert lin["namespaces"][0] == {"type": "user"}
    assert (lin["uidMappings"], lin["gidMappings"]) == (idmap["uidMappings"], idmap["gidMappings"])
    plain = spec(_rec(tmp_path, network="none"), "/r", cgroup_parent="minicontainer")["linux"]
    assert "uidMappings" not in plain and {"type": "user"} not in plain["namespaces"]
    # container:NAME of a remapped peer: its network namespace is its user namespace's, joined too
    rec = _rec(tmp_path, network="container:db", userns="remap")
    lin = spec(dict(rec, idmap=idmap), "/r", cgroup_parent="minicontainer", peer_pid=4242)["linux"]
    assert lin["namespaces"][0] == {"type": "user", "path": "/proc/4242/ns/user"}
    assert {"type": "network", "path": "/proc/4242/ns/net"} in lin["namespaces"]


def test_init_is_dockers_shape_tini_bound_read_only(tmp_path, monkeypatch):
    """--init: process.args is `/sbin/docker-init -- ARGV...` and the host's static init is a
    read-only bind there (Docker's spec for --init); without --init neither appears."""
    tini = tmp_path / "tini"
    tini.write_bytes(b"\x7fELF")
    tini.chmod(0o755)
    monkeypatch.setenv("MC_INIT_BINARY", str(tini))
    s = spec(_rec(tmp_path, network="none", init=True), "/r")
    assert s["process"]["args"] == ["/sbin/docker-init", "--", "sh", "-c", "echo hi"]
    assert s["mounts"][-1] == {"destination": "/sbin/docker-init", "type": "bind", "source": str(tini),
                               "options": ["bind", "ro", "nosuid", "nodev"]}
    assert s["annotations"]["org.minicontainer.init"] == "true"
    plain = spec(_rec(tmp_path, network="none"), "/r")
    assert plain["process"]["args"] == ["sh", "-c", "echo hi"]
    assert "/sbin/docker-init" not in [m["destination"] for m in plain["mounts"]]


def test_init_binary_default_override_and_missing(tmp_path, monkeypatch):
    """The host's tini-static by default; MC_INIT_BINARY overrides it (dockerd's --init-path); a
    missing one is one line, exit 125, naming the file and how to install it — at validate(),
    before anything of a container exists."""
    from minicontainer.errors import NotFoundError
    from minicontainer.runtime import init
    monkeypatch.delenv("MC_INIT_BINARY", raising=False)
    real = tmp_path / "tini-0.19"
    real.write_bytes(b"\x7fELF")
    real.chmod(0o755)
    (tmp_path / "tini-static").symlink_to(real)             # the host's own links are followed
    monkeypatch.setattr(init, "DEFAULT_BINARY", str(tmp_path / "tini-static"))
    assert init.host_binary({}) == str(real)
    with pytest.raises(NotFoundError) as e:
        init.host_binary({"MC_INIT_BINARY": str(tmp_path / "nope")})
    assert e.value.exit_code == 125 and str(tmp_path / "nope") in str(e.value) and "\n" not in str(e.value)
    monkeypatch.setenv("MC_INIT_BINARY", str(tmp_path / "nope"))
    with pytest.raises(NotFoundError, match="nope"):
        ContainerConfig("busybox", ["true"], init=True).validate()
    ContainerConfig("busybox", ["true"]).validate()                 # without --init: not needed
    with pytest.raises(ConfigError, match="absolute"):
        init.host_binary({"MC_INIT_BINARY": "tini"})
    with pytest.raises(ConfigError, match="not an executable"):
        init.host_binary({"MC_INIT_BINARY": str(tmp_path)})
    # the default's message says how to get it
    monkeypatch.setattr(init, "DEFAULT_BINARY", str(tmp_path / "tini-static-missing"))
    with pytest.raises(NotFoundError, match="apt install tini") as e:
        init.host_binary({})
    assert str(tmp_path / "tini-static-missing") in str(e.value)


def test_ulimits_docker_form_to_spec_rlimits(tmp_path):
    from minicontainer.runtime.config import parse_ulimit
    assert parse_ulimit("nofile=1024:4096") == ("RLIMIT_NOFILE", 1024, 4096)
    assert parse_ulimit("nproc=50") == ("RLIMIT_NPROC", 50, 50)
    assert parse_ulimit("core=-1") == ("RLIMIT_CORE", -1, -1)
    for bad in ("nofile", "nofile=", "nofile=a:b", "nofile=10:5", "nofile=-1:5", "bogus=1", "NOFILE=1",
                "nofile=1:２"):
        with pytest.raises(ConfigError, match="--ulimit"):
            parse_ulimit(bad)
    s = spec(_rec(tmp_path, ulimits=["nofile=1024:4096", "core=-1"]), str(tmp_path))
    assert s["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096},
                                       {"type": "RLIMIT_CORE", "soft": 2**64 - 1, "hard": 2**64 - 1}]
    with pytest.raises(ConfigError, match="--ulimit"):
        ContainerConfig(image="busybox", ulimits=["nofile=9:1"]).validate()


def test_tmpfs_docker_form(tmp_path):
    from minicontainer import syscalls as sc
    from minicontainer.runtime.config import parse_tmpfs
    dflt = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
    assert parse_tmpfs("/run") == ("/run", dflt, "")
    assert parse_tmpfs("/c/:size=64m,mode=1770,exec,ro") == ("/c", (dflt & ~sc.MS_NOEXEC) | sc.MS_RDONLY,
                                                            "size=64m,mode=1770")
    from minicontainer.runtime.config import owned_tmpfs_data
    assert owned_tmpfs_data(parse_tmpfs("/run")[2], (100000, 100000)) == "uid=100000,gid=100000"
    assert owned_tmpfs_data("size=1m,uid=5", (100000, 100000)) == "size=1m,uid=5,gid=100000"
    for bad in ("run", "/", "/proc/x", "/dev", "/etc/hosts", "/run:size=", "/run:size=1x", "/run:bogus",
                "/run:mode=0o7", "/run:uid=-1"):
        with pytest.raises(ConfigError, match="--tmpfs"):
            parse_tmpfs(bad)
    s = spec(_rec(tmp_path, tmpfs=["/run:size=1m"]), str(tmp_path))
    assert {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "noexec", "size=1m"]} in s["mounts"]
