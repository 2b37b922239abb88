"""Checks for notebook 08's exercises (the OCI runtime: a bundle's config.json, and ``state``'s status).

Both are graded by running ``minicontainer-oci`` for real: 08.1 starts the learner's config.json and
reads the kernel's state of the container (its namespaces, its cgroup's files, what it prints);
08.2 compares the learner's status with the runtime's own ``state`` for containers that really are
created, running and stopped, and for records whose pid is alive but not theirs (pid reuse) or a zombie.
Everything lives under a temp dir (bundle, ``--root``); the containers' cgroups go with ``delete``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from . import ExerciseFailed, exercise

#: the command 08.1's container runs: what it prints is checked, then it waits to be looked at
PROBE = ["sh", "-c", "echo $(hostname) $GREETING $(pwd); "
         "touch /probe 2>/dev/null && echo writable || echo read-only; exec sleep 30"]


class _Bundle:
    """A busybox bundle and a private ``--root`` in a temp dir; ``oci(…)`` runs the runtime there."""

    def __init__(self, prefix: str):
        from ..busybox import build_rootfs
        from ..oci.clients import runtime_binary
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.root = self.dir / "root"
        self.bin = runtime_binary()
        self.ids: list[str] = []
        build_rootfs(self.dir / "rootfs")

    def oci(self, *args, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run([self.bin, "--root", str(self.root), *args], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def create(self, cid: str, cfg: dict) -> tuple[subprocess.CompletedProcess, Path]:
        """``create`` with the container's stdout and stderr in files (a pipe would stay open as long
        as the container runs, and reading it to its end would wait for the container)."""
        (self.dir / "config.json").write_text(json.dumps(cfg))
        out, err = self.dir / f"{cid}.out", self.dir / f"{cid}.err"
        self.ids.append(cid)
        with open(out, "w") as o, open(err, "w") as e:
            try:
                p = subprocess.run([self.bin, "--root", str(self.root), "create", "--bundle", str(self.dir), cid],
                                   stdin=subprocess.DEVNULL, stdout=o, stderr=e, timeout=30)
            except subprocess.TimeoutExpired:
                raise ExerciseFailed(f"minicontainer-oci create {cid} did not finish within 30 s") from None
        p.stderr = err.read_text()
        return p, out

    def state(self, cid: str) -> dict:
        p = self.oci("state", cid)
        if p.returncode:
            raise ExerciseFailed(f"minicontainer-oci state {cid}: {p.stderr.strip()}")
        return json.loads(p.stdout)

    def close(self) -> None:
        for cid in self.ids:
            self.oci("delete", "--force", cid)
        shutil.rmtree(self.dir, ignore_errors=True)


def _cgroup_file(pid: int, controller: str, v1_name: str, v2_name: str) -> str:
    """The file ``v1_name`` (v1) or ``v2_name`` (v2) of the group ``pid`` is in, for ``controller``."""
    from ..cgroups import detect_layout
    lay = detect_layout()
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [ln.rstrip("\n").split(":", 2) for ln in f]
    if lay.backend == "v2":
        rel = next(p for h, c, p in lines if h == "0" and c == "")
        return os.path.join(lay.v2 + rel, v2_name)
    rel = next(p for h, c, p in lines if controller in c.split(","))
    return os.path.join(lay.v1[controller] + rel, v1_name)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as exc:
        return f"<{exc.strerror}>"


@exercise("08.1")
def check_config_for(config_for) -> str:
    """Build exercise: the learner's config.json for `docker run --hostname web --memory 64m
    --pids-limit 20 --read-only -e GREETING=hello -w /tmp busybox ARGV`, started by minicontainer-oci;
    graded by what the container prints, its namespaces and its cgroup's files."""
    cfg = config_for(list(PROBE))
    try:
        cfg = json.loads(json.dumps(cfg))
    except (TypeError, ValueError) as exc:
        raise ExerciseFailed(f"the config must be JSON (dicts, lists, strings, numbers): {exc}") from None
    if not isinstance(cfg, dict):
        raise ExerciseFailed(f"expected a dict (config.json's object), got {type(cfg).__name__}")
    b = _Bundle("mcoci-ex081-")
    try:
        cid = "ex081"
        p, out = b.create(cid, cfg)
        if p.returncode:
            raise ExerciseFailed(f"minicontainer-oci create refused the config: {p.stderr.strip()[-300:]}")
        pid = b.state(cid)["pid"]
        p = b.oci("start", cid)
        if p.returncode:
            raise ExerciseFailed(f"minicontainer-oci start: {p.stderr.strip()}")
        deadline = time.monotonic() + 10
        while len(out.read_text().splitlines()) < 2 and time.monotonic() < deadline:
            if b.state(cid)["status"] == "stopped":
                break
            time.sleep(0.05)
        lines = out.read_text().split("\n")
        if b.state(cid)["status"] != "running":
            raise ExerciseFailed(f"the container is not running the command (it should sleep after its "
                                 f"two lines); it printed {lines[:2]!r}, stderr {(b.dir / (cid + '.err')).read_text()[-200:]!r}")
        if lines[:2] != ["web hello /tmp", "read-only"]:
            raise ExerciseFailed(f"inside, `hostname`, $GREETING, `pwd` and a write to / gave {lines[:2]!r}; "
                                 f"expected ['web hello /tmp', 'read-only'] (hostname, process.env, "
                                 f"process.cwd, root.readonly)")
        shared = [k for k in ("pid", "mnt", "uts", "ipc", "net")
                  if os.readlink(f"/proc/{pid}/ns/{k}") == os.readlink(f"/proc/self/ns/{k}")]
        if shared:
            raise ExerciseFailed(f"the container shares these namespaces with the host: {shared} "
                                 f"(docker run gives it its own pid, mount, uts, ipc and network namespace)")
        mem = _read(_cgroup_file(pid, "memory", "memory.limit_in_bytes", "memory.max"))
        if mem != str(64 << 20):
            raise ExerciseFailed(f"--memory 64m: the container's cgroup has memory limit {mem}, "
                                 f"expected {64 << 20} (linux.resources.memory.limit, in bytes)")
        pids = _read(_cgroup_file(pid, "pids", "pids.max", "pids.max"))
        if pids != "20":
            raise ExerciseFailed(f"--pids-limit 20: the container's cgroup has pids.max {pids} "
                                 f"(linux.resources.pids.limit)")
    finally:
        b.close()
    return ("started by minicontainer-oci: hostname web, GREETING, cwd /tmp, a read-only root, "
            "its own 5 namespaces, memory limit 64 MiB and pids.max 20 in its cgroup")


def _zombie() -> int:
    """A child that has exited and is not reaped yet: it is in /proc, state Z."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    break
        except OSError:
            break
        time.sleep(0.005)
    return pid


def _start_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rsplit(b")", 1)[1].split()[19])


def _fake_record(b: _Bundle, cid: str, pid: int, start: int) -> None:
    """A record as create writes it, for a pid that is alive but is not (or no longer) the container."""
    d = b.root / cid
    d.mkdir(mode=0o700, parents=True)
    (d / "state.json").write_text(json.dumps({"id": cid, "pid": pid, "pid_start": start,
                                              "bundle": str(b.dir), "created": "", "annotations": {}}))


@exercise("08.2")
def check_oci_status(oci_status) -> str:
    """Build exercise: the learner's status of containers that really are created, running and
    stopped, and of records whose pid is alive but another process (pid reuse) or a zombie; compared
    with what `minicontainer-oci state` says and with what each one is."""
    b = _Bundle("mcoci-ex082-")
    zombie = None
    try:
        base = {"ociVersion": "1.0.2", "root": {"path": "rootfs"},
                "process": {"args": ["sleep", "30"], "cwd": "/", "env": ["PATH=/bin"]},
                "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}}
        cases = []
        for cid, start, why in (("created", False, "created, not started: exec.fifo is there"),
                                ("running", True, "started, its process alive"),
                                ("exited", True, "started, its command already exited")):
            cfg = json.loads(json.dumps(base))
            if cid == "exited":
                cfg["process"]["args"] = ["true"]
            p, _ = b.create(cid, cfg)
            if p.returncode:
                raise ExerciseFailed(f"the checker could not create a container: {p.stderr.strip()}")
            if start:
                b.oci("start", cid)
            cases.append((cid, {"created": "created", "running": "running", "exited": "stopped"}[cid], why))
        deadline = time.monotonic() + 10
        while b.state("exited")["status"] != "stopped" and time.monotonic() < deadline:
            time.sleep(0.02)
        # alive, but not the container's: this very process, with another start time (pid reuse)
        _fake_record(b, "reused", os.getpid(), _start_ticks(os.getpid()) + 1)
        cases.append(("reused", "stopped", "its pid now belongs to another process (different start time)"))
        zombie = _zombie()
        _fake_record(b, "zombie", zombie, _start_ticks(zombie))
        cases.append(("zombie", "stopped", "its process is a zombie (state Z): it has exited"))
        checked = []
        for cid, want, why in cases:
            runtime_says = b.state(cid)["status"]
            if runtime_says != want:
                raise ExerciseFailed(f"the checker's own setup: {cid} should be {want}, the runtime says "
                                     f"{runtime_says} (run the check again)")
            got = oci_status(str(b.root), cid)
            if got != want:
                raise ExerciseFailed(f"container {cid!r} ({why}): expected {want!r} as "
                                     f"`minicontainer-oci state` says, got {got!r}")
            checked.append(cid)
    finally:
        if zombie:
            os.waitpid(zombie, 0)
        for cid in ("reused", "zombie"):
            shutil.rmtree(b.root / cid, ignore_errors=True)
        b.close()
    return (f"{len(checked)} records: created, running, stopped (exited, pid reused, zombie) — "
            "as `minicontainer-oci state` says")
