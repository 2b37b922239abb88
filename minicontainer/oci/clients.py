"""Real clients of ``minicontainer-oci``, each private to a temp dir: a containerd, a podman (notebook 08).

Docker's split, for real: containerd (through containerd-shim-runc-v2) and podman (through conmon)
call an OCI runtime by its command line, as they call runc. Notebook 08 and the integration tests
(tests/integration/test_oci_containerd.py, test_oci_podman.py) start them here, each with everything
it keeps under one temporary directory, and remove it all afterwards:

* :class:`Containerd` — a containerd of our own (config, root, state, socket, plugin dirs in the temp
  dir, the CRI plugin off); the system's containerd, if any, is never touched. ``ctr run
  --runc-binary`` sets the shim's ``BinaryName`` option, as a ``runtimes.minicontainer`` section does
  for the CRI plugin; ``--rootfs`` runs a plain directory, so no image and no network.
* :class:`Podman` — podman with ``--root/--runroot/--tmpdir`` and its own containers.conf in the temp
  dir, vfs storage, cgroupfs, the file events backend; the image is a local tar ``podman import``ed.

Rejected: the system's daemons and storage (``/var/lib/containers``, ``/run/containerd``). A course
cell or a test must leave the host as it found it, and a learner's machine may run real containers.
Both are context managers; leaving the ``with`` removes containers, daemons, cgroups and files.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tarfile
import time
from pathlib import Path

from ..errors import MiniContainerError

#: podman asks for RLIMIT_NOFILE 1048576 by default, above the hard limit of some hosts (20000 here)
ULIMITS = ("--ulimit", "nofile=1024:4096", "--ulimit", "nproc=1024:1024")
PODMAN_IMAGE = "localhost/mcbusybox:latest"


class ClientError(MiniContainerError):
    """A client (containerd, podman) could not be started here."""


def runtime_binary() -> str:
    """The installed ``minicontainer-oci`` (``make setup`` puts it beside this interpreter)."""
    import sys
    cand = os.path.join(os.path.dirname(sys.executable), "minicontainer-oci")
    found = cand if os.access(cand, os.X_OK) else shutil.which("minicontainer-oci")
    if not found:
        raise ClientError("minicontainer-oci: not installed", hint="run `make setup` (pip install -e .)")
    return found


def _need(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        raise ClientError(f"{', '.join(missing)}: not installed", hint="`make setup` installs them (Debian packages)")


def _cgroup_dirs_named(name: str) -> set[str]:
    """``name`` directly below each mounted cgroup hierarchy's root, where it exists."""
    out = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] in ("cgroup", "cgroup2"):
                d = os.path.join(left.split()[4], name)
                if os.path.isdir(d):
                    out.add(d)
    return out


def _rmdir_tree(d: str) -> None:
    """A cgroup directory and its sub-groups, deepest first (rmdir is how a group goes)."""
    subs = sorted((os.path.join(r, x) for r, ds, _ in os.walk(d) for x in ds), reverse=True)
    for p in subs + [d]:
        try:
            os.rmdir(p)
        except OSError:
            pass


class Containerd:
    """A private containerd: ``with Containerd(base, rootfs) as c: c.ctr("run", …)``."""

    NS = "mctest"

    def __init__(self, base, rootfs=None, runtime: str | None = None, namespace: str = NS):
        _need("containerd", "ctr", "containerd-shim-runc-v2")
        self.base = Path(base)
        self.sock = self.base / "containerd.sock"
        self.rootfs = Path(rootfs) if rootfs else self.base / "rootfs"
        self.runtime = runtime or runtime_binary()
        self.ns = namespace
        self.env = dict(os.environ, MINICONTAINER_STATE_ROOT=str(self.base / "mcstate"))
        self.daemon = None
        self._made_run: list[str] = []

    def __enter__(self) -> "Containerd":
        b = self.base
        b.mkdir(parents=True, exist_ok=True)
        # the shim makes these if missing; we remove the ones it made
        self._made_run = [p for p in ("/run/containerd/s", "/run/containerd/fifo", "/run/containerd")
                          if not os.path.exists(p)]
        (b / "config.toml").write_text(f"""version = 2
root = "{b}/root"
state = "{b}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{self.sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{b}/opt"
""")
        try:
            self._log = open(b / "containerd.log", "w")
            self.daemon = subprocess.Popen(["containerd", "--config", str(b / "config.toml")], stdout=self._log,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + 20
            while not self.sock.exists() and time.monotonic() < deadline and self.daemon.poll() is None:
                time.sleep(0.05)
            if not self.sock.exists():
                tail = (b / "containerd.log").read_text()[-300:].strip().splitlines()
                raise ClientError(f"containerd: no socket at {self.sock} after 20 s",
                                  hint=f"its log says: {tail[-1] if tail else '(empty)'}")
            if not (self.rootfs / "bin").exists():
                from ..busybox import build_rootfs
                build_rootfs(self.rootfs)
        except BaseException:
            self.close()
            raise
        return self

    def ctr(self, *args, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        """``ctr -a SOCK -n NS ARGS…``, captured (text)."""
        kw.setdefault("capture_output", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(["ctr", "-a", str(self.sock), "-n", self.ns, *args], env=self.env, text=True,
                              timeout=timeout, **kw)

    def runc_args(self, runtime: str | None = None) -> list[str]:
        """What makes ``ctr run`` use our runtime (the shim's BinaryName) on the busybox directory."""
        return ["--runc-binary", runtime or self.runtime, "--runc-root", str(self.base / "runc"),
                "--rootfs", str(self.rootfs)]

    def close(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            for cid in self.ctr("containers", "ls", "-q").stdout.split():
                self.ctr("task", "kill", "-s", "SIGKILL", cid)
                time.sleep(0.2)
                self.ctr("task", "rm", "-f", cid)
                self.ctr("containers", "rm", cid)
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(20)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        if getattr(self, "_log", None):
            self._log.close()
        subprocess.run(["umount", "-R", str(self.base)], capture_output=True)
        for p in self._made_run:
            try:
                os.rmdir(p)
            except OSError:
                pass
        shutil.rmtree(self.base, ignore_errors=True)

    def __exit__(self, *exc) -> None:
        self.close()


class Podman:
    """A private podman: ``with Podman(base, rootfs) as p: p("run", "--rm", *ULIMITS, PODMAN_IMAGE, …)``."""

    def __init__(self, base, rootfs=None, runtime: str | None = None, image: str = PODMAN_IMAGE):
        _need("podman", "conmon")
        self.base = Path(base)
        self.rootfs = Path(rootfs) if rootfs else self.base / "rootfs"
        self.runtime = runtime or runtime_binary()
        self.image = image
        conf = self.base / "containers.conf"
        self.env = dict(os.environ, CONTAINERS_CONF=str(conf), MINICONTAINER_STATE_ROOT=str(self.base / "mcstate"))
        self.env.pop("XDG_RUNTIME_DIR", None)
        self.cmd = ["podman", "--runtime", self.runtime, "--cgroup-manager", "cgroupfs", "--storage-driver", "vfs",
                    "--root", str(self.base / "root"), "--runroot", str(self.base / "runroot"),
                    "--tmpdir", str(self.base / "tmp"), "--events-backend", "file"]

    def __enter__(self) -> "Podman":
        self.base.mkdir(parents=True, exist_ok=True)
        self._cgroups_before = _cgroup_dirs_named("libpod_parent")
        self._lock_before = os.path.exists("/dev/shm/libpod_lock")          # podman's SHM locks
        (self.base / "containers.conf").write_text(
            "[engine]\nevents_logger = \"file\"\ncgroup_manager = \"cgroupfs\"\n"
            f"[engine.runtimes]\nminicontainer = [\"{self.runtime}\"]\n")
        try:
            if not (self.rootfs / "bin").exists():
                from ..busybox import build_rootfs
                build_rootfs(self.rootfs)
            with tarfile.open(self.base / "rootfs.tar", "w") as t:
                t.add(self.rootfs, arcname=".")
            p = self("import", str(self.base / "rootfs.tar"), self.image)
            if p.returncode:
                raise ClientError(f"podman import {self.base / 'rootfs.tar'}: exit {p.returncode}",
                                  hint=(p.stderr.strip().splitlines() or ["(no message)"])[-1])
        except BaseException:
            self.close()
            raise
        return self

    def __call__(self, *args, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        """``podman --root … ARGS…``, captured (text)."""
        kw.setdefault("capture_output", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(self.cmd + list(args), env=self.env, text=True, timeout=timeout, **kw)

    def close(self) -> None:
        if (self.base / "root").exists():
            self("rm", "--all", "--force", "--time", "0")
            self("rmi", "--all", "--force")
            self("system", "reset", "--force")
        # conmon's and the runtime's groups below libpod_parent: podman made the parent, we remove it
        for d in sorted(_cgroup_dirs_named("libpod_parent") - self._cgroups_before, reverse=True):
            _rmdir_tree(d)
        if not self._lock_before:
            try:
                os.unlink("/dev/shm/libpod_lock")
            except FileNotFoundError:
                pass
        subprocess.run(["umount", "-R", str(self.base)], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)

    def __exit__(self, *exc) -> None:
        self.close()
