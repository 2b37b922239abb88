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


def test_flags_become_the_specs_fields(tmp_path):
    vol = tmp_path / "data"
    vol.mkdir()
    rec = _rec(tmp_path, name="web", hostname="h1", user="1000:1001", memory="64m", cpus="0.5",
               pids_limit="20", network="none", volumes=[f"{vol}:/data:ro"], read_only=True, tty=True)
    s = spec(rec, "/var/lib/x/merged", cgroup_parent="minicontainer")
    assert json.loads(json.dumps(s)) == s                       # config.json as is
    assert s["process"] == {"terminal": True, "user": {"uid": 1000, "gid": 1001},
                            "args": ["sh", "-c", "echo hi"], "env": ["PATH=/bin", "A=1"], "cwd": "/srv"}
    assert s["root"] == {"path": "/var/lib/x/merged", "readonly": True} and s["hostname"] == "h1"
    lin = s["linux"]
    assert lin["resources"] == {"memory": {"limit": 64 << 20, "swap": 128 << 20},
                                "cpu": {"quota": 50000, "period": 100000}, "pids": {"limit": 20}}
    assert lin["cgroupsPath"] == "minicontainer/mc-abababababababab"
    assert [n["type"] for n in lin["namespaces"]] == ["pid", "ipc", "uts", "mount", "network"]
    assert "/proc/kcore" in lin["maskedPaths"] and "/proc/sys" in lin["readonlyPaths"]
    bind = s["mounts"][-1]
    assert bind == {"destination": "/data", "type": "bind", "source": str(vol.resolve()),
                    "options": ["rbind", "rprivate", "ro"]}
    assert {m["destination"] for m in s["mounts"]} >= {"/proc", "/dev", "/dev/pts", "/sys"}


def test_network_modes_are_namespaces(tmp_path):
    host = spec(_rec(tmp_path, network="host"), "/r")
    assert "network" not in [n["type"] for n in host["linux"]["namespaces"]]
    peer = spec(_rec(tmp_path, network="container:db"), "/r", peer_pid=4242)
    assert {"type": "network", "path": "/proc/4242/ns/net"} in peer["linux"]["namespaces"]
    with pytest.raises(ConfigError):
        spec(_rec(tmp_path, network="container:db"), "/r")


def test_no_limits_no_resources_and_root_by_default(tmp_path):
    s = spec(_rec(tmp_path, network="none"), "/r")
    assert s["linux"]["resources"] == {} and s["process"]["user"] == {"uid": 0, "gid": 0}
    assert s["hostname"] == "ab" * 6
