"""One container, three ways: the engine's `minicontainer run`, the same record as an OCI bundle
(runtime/ocispec.py, the engine's half of the seam) run by minicontainer-oci, and that bundle run
by runc. What the process sees from inside — capabilities, seccomp, no_new_privs, ids, umask, HOME,
the API file systems and their flags, masked paths, /dev, the cgroup limits, the cwd, a writable
root or not — must be the same: the engine and the OCI runtime are two start paths, and this is
where a default that one of them applies and the other forgets shows up.

Written after the first run of it found four: minicontainer-oci made /dev/null 0644 (the caller's
umask; a non-root process could not write it); neither path set HOME for a process that named no
user (runc does: Docker's HOME=/root); `--privileged` asked for capabilities this host's bounding
set lacks (runc refused the config) and gave none of the host's devices (Docker gives them all);
the engine's `--cgroupns host` left /sys/fs/cgroup empty and its `--read-only` root was nosuid
as well.

Known and kept differences with runc (not with our two paths): runc leaves the v1 tmpfs at
/sys/fs/cgroup writable (its hierarchies read-only), ours is read-only too; runc masks a file with
its container's /dev/null (tmpfs), ours with the host's (devtmpfs). The root's source differs by
design (the engine's overlay; a bundle's directory). runc joins and shows v1's ``name=systemd``
hierarchy as well; we make no group there, and show none (the engine showed it, and a hybrid host's
``unified``, rooted at the host's root group: found by this test, now both paths show the
hierarchies where the container has a group of its own). Found in the cgroup v2 VM (2026-12-08): runc
leaks its Go runtime's raised soft RLIMIT_NOFILE into a container whose spec names none, and with
``--cgroupns host`` mounts the host's whole cgroup2 tree where we bind the container's group (both
normalized in _for_runc); runc enables every available controller down from the root, the
root included (hugetlb, rdma, misc): our parent now enables all it is offered, the root stays as
it is (its extra files in runc's group are left out of the comparison); a device node whose name holds ":" (/dev/bsg/0:0:0:0) was missing from
``--privileged`` containers (read as a --device HOST:CTR spec).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.oci_latency import cgroup_parents as _cgroup_parents, remove_new_parents
from tests.integration._shared import module_roots
from tests.integration.oci_helpers import Subreaper, oci, write_config
from tests.integration.test_runtime_cli import _nothing_left, mc

SCRIPT = r'''
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|Seccomp|NoNewPrivs):' /proc/self/status | tr -s '\t ' ' ' | sed 's/: / /'
echo "id $(id)"
echo "umask $(umask)"
echo "hostname $(hostname)"
for m in / /proc /sys /dev /dev/pts /dev/shm /dev/mqueue /sys/fs/cgroup /tmp \
         /proc/kcore /proc/keys /proc/timer_list /proc/scsi /sys/firmware \
         /proc/sys /proc/bus /proc/fs /proc/irq /proc/sysrq-trigger /data /sbin/docker-init; do
  # the file system's type is the field after " - ": optional fields (shared:N, master:N) come
  # before it, as many as the mount's propagation has
  echo "mnt$m $(awk -v m="$m" '$5==m {for (i = 7; $i != "-"; i++) ; print $(i+1), ($6 ~ /(^|,)ro(,|$)/ ? "ro" : "rw"), $6}' /proc/self/mountinfo | tail -1)"
done
echo "dev $(ls /dev | tr '\n' ' ')"
echo "devnull $(echo x 2>&1 > /dev/null && echo writable)"
echo "memory $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>&1 | grep -v 'No such')"
echo "pids $(cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>&1 | grep -v 'No such')"
echo "cgroup $(grep -E ':memory:|^0::' /proc/self/cgroup | head -1 | cut -d: -f3)"
echo "cgroupfs $(ls /sys/fs/cgroup | tr '\n' ' ')"
echo "nofile $(ulimit -n) $(ulimit -Hn)"
echo "core $(ulimit -c) $(ulimit -Hc)"
echo "cwd $(pwd)"
echo "rootfs $(touch /probe 2>/dev/null && echo writable || echo read-only)"
echo "env $(env | cut -d= -f1 | sort | tr '\n' ' ')"
echo "home $HOME"
echo "pid1 $(tr '\0' ' ' < /proc/1/cmdline | cut -d' ' -f1)"
echo "data $(ls /data 2>&1 | tr '\n' ' ') $(touch /data/new 2>/dev/null && echo writable || echo read-only)"
echo "fuse $(ls -l /dev/fuse 2>/dev/null | cut -c1-10)"
'''

#: flag sets, each a container of its own (all with --network none: networking is notebook 05's)
CASES = {
    "default": [],
    "read-only": ["--read-only"],
    "caps": ["--cap-drop", "ALL", "--cap-add", "NET_ADMIN", "--cap-add", "CHOWN"],
    "user": ["-u", "1000:1000"],
    "limits": ["--memory", "64m", "--pids-limit", "20"],
    "no-new-privileges": ["--security-opt", "no-new-privileges"],
    "privileged": ["--privileged"],
    "cgroupns-host": ["--cgroupns", "host"],
    "workdir-env-hostname": ["-w", "/tmp", "-e", "GREETING=hi", "--hostname", "box"],
    "systempaths": ["--security-opt", "systempaths=unconfined"],
    "seccomp-unconfined": ["--security-opt", "seccomp=unconfined"],
    "cap-add-all": ["--cap-add", "ALL"],
    "user-by-name-home-given": ["-u", "nobody", "-e", "HOME=/somewhere"],
    "volume-ro": ["-v", "VOLUME:/data:ro"],
    "device": ["--device", "/dev/fuse"],
    "init": ["--init"],
    "ulimits": ["--ulimit", "nofile=1000:2000", "--ulimit", "core=-1"],   # -1: the spec's 2**64-1
    "tmpfs": ["--read-only", "--tmpfs", "/data:size=1m,mode=1777,exec"],
}

#: masked with a bind; the source's type differs between runc and us (see above)
MASKED = ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/scsi", "/sys/firmware")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    yield from module_roots(tmp_path_factory, "mcvs")


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    d = tmp_path_factory.mktemp("vsvol")
    (d / "on-the-host").write_text("x")
    return d


def _parse(out: str, name: str | None) -> dict:
    """The script's lines as {key: value}; the container's own name (its cgroup's) and a hostname
    that is an id (each container has its own) made alike."""
    d = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        d[key] = value.replace(name, "NAME") if name else value
    h = d.get("hostname", "")
    if len(h) == 12 and all(c in "0123456789abcdef" for c in h):
        d["hostname"] = "ID"
    return d


def _engine(env, flags) -> dict:
    p = mc(env, "run", "--rm", "--network", "none", *flags, "busybox", "sh", "-c", SCRIPT)
    assert p.returncode == 0, p.stderr
    cg = next((v for k, v in _parse(p.stdout, None).items() if k == "cgroup"), "")
    return _parse(p.stdout, os.path.basename(cg) if cg != "/" else None)


def _record(env, flags) -> dict:
    """The engine's own record of such a container (create, read, rm): what ocispec.spec takes."""
    p = mc(env, "create", "--network", "none", *flags, "busybox", "sh", "-c", SCRIPT)
    assert p.returncode == 0, p.stderr
    cid = p.stdout.strip()
    rec = json.loads((Path(env["MINICONTAINER_STATE_ROOT"]) / cid / "state.json").read_text())
    mc(env, "rm", cid, check=0)
    return rec


def _bundle(tmp: Path, rec: dict, name: str) -> Path:
    """A bundle with a fresh root of its own, as each engine container has its own layer: a bundle's
    root is written to (the probe's file, a volume's mount point), and no other run may see that."""
    from minicontainer.busybox import build_rootfs
    from minicontainer.runtime.ocispec import spec
    b = tmp / name
    b.mkdir(parents=True)
    build_rootfs(b / "rootfs")
    s = spec(dict(rec, cgroup=name), str(b / "rootfs"))
    # absolute, so that runc does not put it below its own group (this test's, on a v1 host's
    # memory hierarchy); the parents runc makes and leaves are removed in _runc
    s["linux"]["cgroupsPath"] = f"/minicontainer/{name}"
    write_config(b, s)
    return b


def _ours(tmp: Path, b: Path, name: str) -> dict:
    env = dict(os.environ, MINICONTAINER_STATE_ROOT=str(tmp / "ocistate"))
    with open(tmp / f"{name}.out", "w+") as out, Subreaper():
        p = oci(env, "create", "--bundle", str(b), "--pid-file", str(tmp / f"{name}.pid"), name,
                stdout=out, stderr=out)
        assert p.returncode == 0, p.stderr
        try:
            pid = int((tmp / f"{name}.pid").read_text())
            assert oci(env, "start", name).returncode == 0
            assert Subreaper.wait(pid) == 0
        finally:
            oci(env, "delete", "--force", name)
        out.seek(0)
        return _parse(out.read(), name)


def _runc(tmp: Path, b: Path, name: str) -> dict:
    before = _cgroup_parents()
    try:
        p = subprocess.run(["runc", "--root", str(tmp / "runcstate"), "run", "--bundle", str(b), name],
                           capture_output=True, text=True, timeout=60)
    finally:
        remove_new_parents(before)                      # runc removes the container's group only
    assert p.returncode == 0, p.stderr
    return _parse(p.stdout, name)


def _for_runc(d: dict, case: str) -> dict:
    d = dict(d)
    if case != "ulimits":
        # runc built with Go >= 1.19 raises its own soft RLIMIT_NOFILE to the hard limit at start, and
        # a container whose spec names no rlimits inherits that (containerd/containerd#8249); ours
        # keep the caller's soft limit. Seen where soft < hard: a systemd host's 1024:524288.
        d["nofile"] = " ".join(d.get("nofile", "").split()[1:])
    if case == "cgroupns-host" and _v2():
        # runc mounts a fresh cgroup2 in the host's cgroup namespace: the host's whole tree, with
        # no memory.max or pids.max at its root; ours binds the container's own group (kept: a
        # container sees its limits and nothing of the host's groups)
        for k in ("cgroupfs", "memory", "pids"):
            d.pop(k, None)
    d.pop("mnt/sys/fs/cgroup", None)
    d["cgroupfs"] = " ".join(h for h in d.get("cgroupfs", "").split() if h != "systemd")
    for m in MASKED:
        d["mnt" + m] = " ".join(d.get("mnt" + m, "").split()[1:2])     # masked (ro/rw), any source
    d["mnt/"] = " ".join(d.get("mnt/", "").split()[1:2])              # ro/rw
    return d


def _v2() -> bool:
    from minicontainer.cgroups import default_backend
    return default_backend().version == 2


@pytest.mark.parametrize("case", list(CASES))
def test_the_engine_and_the_oci_runtime_agree_and_runc_too(env, volume, tmp_path, case):
    flags = [str(volume) + f[len("VOLUME"):] if f.startswith("VOLUME:") else f for f in CASES[case]]
    if case == "device" and not os.path.exists("/dev/fuse"):
        pytest.skip("this host has no /dev/fuse")
    if case == "init" and not os.path.exists("/usr/bin/tini-static"):
        pytest.skip("no tini-static on this host (make setup installs Debian's tini)")
    engine = _engine(env, flags)
    name = f"mcvs-{case}"[:30]
    rec = _record(env, flags)
    ours = _ours(tmp_path, _bundle(tmp_path / "ours", rec, name), name)
    e, o = dict(engine), dict(ours)
    e["mnt/"], o["mnt/"] = (" ".join(x.get("mnt/", "").split()[1:2]) for x in (e, o))   # overlay vs dir
    assert e == o, {k: (e.get(k), o.get(k)) for k in set(e) | set(o) if e.get(k) != o.get(k)}
    # the facts the fixes above are about, said once more in words
    assert engine["devnull"] == "writable"
    home = {"user-by-name-home-given": "/somewhere", "user": "/"}.get(case, "/root")   # 1000: no entry
    assert engine["home"] == home, engine["home"]
    if case == "privileged":     # Docker's --privileged: the host's devices, each of them
        from minicontainer.security.devices import host_devices
        top = {p.split("/")[2] for p in host_devices()}
        assert top <= set(engine["dev"].split()), top - set(engine["dev"].split())
    if case == "cgroupns-host":
        assert engine["memory"] and engine["pids"], engine
    if case == "tmpfs":       # a writable tmpfs in a read-only root, exec asked for: no noexec
        assert engine["mnt/data"].startswith("tmpfs rw") and "noexec" not in engine["mnt/data"], engine
        assert engine["data"].endswith("writable") and engine["rootfs"] == "read-only", engine
    if case == "read-only":
        assert engine["mnt/"].split()[2].split(",")[0] == "ro" and "nosuid" not in engine["mnt/"]
    if shutil.which("runc"):
        r = _runc(tmp_path, _bundle(tmp_path / "runc", rec, name), name)
        e, r = _for_runc(engine, case), _for_runc(r, case)
        if _v2() and "cgroupfs" in r:
            # runc enables every available controller at every level from the root down — the
            # root's own subtree_control included, which is not ours to change (we enable there
            # only what accounting and limits need, everything offered in our parent). So a
            # controller runc turned on at the root first (misc, rdma) shows in its group only: the
            # VM's first case failed so, the later ones (runc had run) passed. Compared: the
            # files of the controllers our group has; one of those missing in runc's still fails.
            ours = {f.split(".")[0] for f in e.get("cgroupfs", "").split()}
            r["cgroupfs"] = " ".join(f for f in r["cgroupfs"].split() if f.split(".")[0] in ours)
        assert e == r, {k: (e.get(k), r.get(k)) for k in set(e) | set(r) if e.get(k) != r.get(k)}
    _nothing_left(env)


# --- exec: a process joining a running container, the same three ways ------------------------------

EXEC_SCRIPT = r'''
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|Seccomp|NoNewPrivs):' /proc/self/status | tr -s '\t ' ' ' | sed 's/: / /'
echo "id $(id)"
echo "home $HOME"
echo "cwd $(pwd)"
echo "env $(env | cut -d= -f1 | sort | tr '\n' ' ')"
echo "pid1 $(tr '\0' ' ' < /proc/1/cmdline)"
echo "cgroup $(grep -E ':memory:|^0::' /proc/self/cgroup | head -1 | cut -d: -f3)"
echo "devnull $(echo x 2>&1 > /dev/null && echo writable)"
'''

EXEC_CASES = {k: CASES[k] for k in ("default", "user", "caps", "no-new-privileges", "privileged",
                                     "workdir-env-hostname")}


@pytest.mark.parametrize("case", list(EXEC_CASES))
def test_exec_agrees_too(env, tmp_path, case):
    flags = EXEC_CASES[case]
    name = f"mcvx-{case}"[:30]
    p = mc(env, "run", "-d", "--name", name, "--network", "none", *flags, "busybox", "sleep", "60")
    assert p.returncode == 0, p.stderr
    try:
        p = mc(env, "exec", name, "sh", "-c", EXEC_SCRIPT)
        assert p.returncode == 0, p.stderr
        engine = _parse(p.stdout, None)
    finally:
        mc(env, "rm", "-f", name)
    rec = _record(env, [*flags])
    rec["argv"] = ["sleep", "60"]
    results = {}
    for runtime in ("ours", "runc") if shutil.which("runc") else ("ours",):
        b = _bundle(tmp_path / runtime, rec, name)
        proc = json.loads((b / "config.json").read_text())["process"]
        (tmp_path / runtime / "p.json").write_text(json.dumps(dict(proc, args=["sh", "-c", EXEC_SCRIPT])))
        results[runtime] = _exec_in(tmp_path / runtime, b, name, runtime)
    for runtime, got in results.items():
        for d in (engine, got):                 # the container's own group's name: each its own
            d["cgroup"] = "/" if d.get("cgroup") == "/" else "NAME"
        assert engine == got, (runtime, {k: (engine.get(k), got.get(k))
                                         for k in set(engine) | set(got) if engine.get(k) != got.get(k)})
    assert engine["home"] == {"user": "/"}.get(case, "/root") and engine["pid1"].startswith("sleep 60")
    _nothing_left(env)


def _exec_in(tmp: Path, b: Path, name: str, runtime: str) -> dict:
    """Start the bundle's container (sleep), exec p.json in it, end it; the exec's output, parsed."""
    if runtime == "ours":
        env = dict(os.environ, MINICONTAINER_STATE_ROOT=str(tmp / "ocistate"))
        with Subreaper():
            p = oci(env, "create", "--bundle", str(b), "--pid-file", str(tmp / "pid"), name,
                    stdout=open(os.devnull, "w"))
            assert p.returncode == 0, p.stderr
            try:
                pid = int((tmp / "pid").read_text())
                assert oci(env, "start", name).returncode == 0
                p = oci(env, "exec", "--process", str(tmp / "p.json"), name)
                assert p.returncode == 0, p.stderr
                return _parse(p.stdout, None)
            finally:
                oci(env, "delete", "--force", name)
                Subreaper.wait(pid)
    before = _cgroup_parents()
    root = ["runc", "--root", str(tmp / "runcstate")]
    try:
        # the container inherits runc's stdio: a file, not a pipe (its end would never come)
        with open(tmp / "runc.err", "w+") as err:
            p = subprocess.run([*root, "run", "--detach", "--bundle", str(b), name], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=err, timeout=60)
            err.seek(0)
            assert p.returncode == 0, err.read()
        p = subprocess.run([*root, "exec", "--process", str(tmp / "p.json"), name], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return _parse(p.stdout, None)
    finally:
        subprocess.run([*root, "delete", "--force", name], capture_output=True, timeout=60)
        remove_new_parents(before)


def test_through_the_server_every_case_looks_the_same(env, volume, tmp_path):
    """`minicontainer serve` starts a container from a spare parked before the request (its cgroup
    joined, its root mounted): a default it applied early must still be the request's. Every case
    above, served, against the same case run in-process."""
    from tests.integration.test_server import _served
    served = dict(env, MINICONTAINER_STATE_ROOT=str(tmp_path / "state"),
                  MINICONTAINER_DATA_ROOT=env["MINICONTAINER_DATA_ROOT"])
    served.pop("MINICONTAINER_NO_SERVER")
    assert "listening on" in mc(served, "serve", "-d", check=0).stdout
    try:
        n, runs = _served(served), 0
        for case, flags in CASES.items():
            if (case == "device" and not os.path.exists("/dev/fuse")) or \
                    (case == "init" and not os.path.exists("/usr/bin/tini-static")):
                continue
            flags = [str(volume) + f[len("VOLUME"):] if f.startswith("VOLUME:") else f for f in flags]
            plain, via_server = _engine(env, flags), _engine(served, flags)
            runs += 1
            assert plain == via_server, (case, {k: (plain.get(k), via_server.get(k)) for k in
                                                set(plain) | set(via_server) if plain.get(k) != via_server.get(k)})
        assert _served(served) == n + runs     # every one went through the server
    finally:
        assert "stopped the server" in mc(served, "serve", "--stop", check=0).stdout
    _nothing_left(env)
