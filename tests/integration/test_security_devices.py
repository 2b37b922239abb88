"""Device rules on real cgroups: v1's devices files here, and v2's eBPF program on the nearly empty
unified tree beside them (or the only tree, in the VM). A forked child joins the group and opens
/dev/null (allowed) and a /dev/kmsg node made in a temp dir (EPERM)."""

import errno
import json
import os
import uuid

import pytest

from minicontainer.cgroups import Cgroup, default_backend, detect_layout
from minicontainer.cgroups.v2 import V2Backend
from minicontainer.security import devices

LAYOUT = detect_layout()


def _backends():
    out = []
    if LAYOUT.backend == "v1" and "devices" in LAYOUT.v1:
        out.append(pytest.param("v1", id="v1-devices"))
    if LAYOUT.v2:
        out.append(pytest.param("v2", id="v2-bpf"))
    return out or [pytest.param(None, marks=pytest.mark.skip(reason="no devices controller"))]


@pytest.fixture
def group(request):
    kind = request.param
    backend = V2Backend(LAYOUT.v2) if kind == "v2" else default_backend()
    cg = Cgroup.create(f"mcsec-{uuid.uuid4().hex[:8]}", backend=backend)
    try:
        yield cg
    finally:
        cg.destroy()


@pytest.fixture
def kmsg(tmp_path):
    p = tmp_path / "kmsg"
    os.mknod(p, 0o600 | 0o020000, os.makedev(1, 11))     # S_IFCHR
    yield p
    p.unlink()


def _try(path, flags):
    try:
        os.close(os.open(path, flags | os.O_NONBLOCK))
        return "ok"
    except OSError as exc:
        return errno.errorcode[exc.errno]


def _try_mknod(path):
    try:
        os.mknod(path, 0o600 | 0o020000, os.makedev(1, 11))
        os.unlink(path)
        return "ok"
    except OSError as exc:
        return errno.errorcode[exc.errno]


def in_group(cg, kmsg):
    """A child that waits until it is in the group, then opens the nodes; its answers come back."""
    r, w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.close(go_w)
            os.read(go_r, 1)
            out = {"null": _try("/dev/null", os.O_RDWR), "kmsg": _try(kmsg, os.O_RDONLY),
                   "mknod": _try_mknod(str(kmsg) + "2")}
        except BaseException as exc:   # noqa: BLE001
            out = {"error": repr(exc)}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    os.close(go_r)
    try:
        cg.add(pid)
    finally:
        os.write(go_w, b"x")
        os.close(go_w)
    data = b""
    while chunk := os.read(r, 4096):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


@pytest.mark.parametrize("group", _backends(), indirect=True)
def test_without_rules_kmsg_opens(group, kmsg):
    # the failure first: a group without rules lets a root process read the host's kernel log
    assert in_group(group, kmsg) == {"null": "ok", "kmsg": "ok", "mknod": "ok"}


@pytest.mark.parametrize("group", _backends(), indirect=True)
def test_default_rules_block_kmsg_but_not_null(group, kmsg):
    devices.apply(group, devices.default_rules())
    assert in_group(group, kmsg) == {"null": "ok", "kmsg": "EPERM", "mknod": "EPERM"}


@pytest.mark.parametrize("group", _backends(), indirect=True)
def test_an_added_read_only_rule(group, kmsg):
    devices.apply(group, devices.default_rules() + [{"allow": True, "type": "c", "major": 1, "minor": 11,
                                                     "access": "r"}])
    got = in_group(group, kmsg)
    assert got["kmsg"] == "ok" and got["null"] == "ok"


@pytest.mark.parametrize("group", _backends(), indirect=True)
def test_applying_again_replaces_the_rules(group, kmsg):
    devices.apply(group, devices.default_rules())
    devices.apply(group, devices.default_rules() + [{"allow": True, "type": "c", "major": 1, "minor": 11,
                                                     "access": "rwm"}])
    assert in_group(group, kmsg)["kmsg"] == "ok"
    devices.apply(group, devices.default_rules())
    assert in_group(group, kmsg)["kmsg"] == "EPERM"
    if group.backend.version == 2:
        fd = os.open(group.dirs()["unified"], os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert len(devices.attached(fd)) == 1
        finally:
            os.close(fd)


@pytest.mark.parametrize("group", _backends(), indirect=True)
def test_a_long_rule_list_as_containerd_sends(group, kmsg):
    """containerd's default spec allows `c *:* m`, `b *:* m` and a dozen nodes more than ours: the
    v2 program grows past what a 4 KiB verifier log holds, and a load that asked for a log failed
    with ENOSPC although the kernel accepted the program (seen in the VM: `ctr run` exited 1)."""
    rules = devices.default_rules() + [
        {"allow": True, "type": "c", "major": None, "minor": None, "access": "m"},
        {"allow": True, "type": "b", "major": None, "minor": None, "access": "m"},
        {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
    ] + [{"allow": True, "type": "c", "major": 4, "minor": n, "access": "rwm"} for n in range(24)]
    devices.apply(group, rules)
    assert in_group(group, kmsg) == {"null": "ok", "kmsg": "EPERM", "mknod": "ok"}
