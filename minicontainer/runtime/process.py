"""The start path and the lifecycle verbs (notebook 06).

``run`` = create + start + wait + cleanup. The path (see /work/shared/design-notes.md):

1. validate the config (nothing exists yet), resolve the image, take a name under the state lock;
2. create the writable layer and the cgroup (limits applied *before* any user code runs);
3. fork. The child unshares mnt/uts/ipc/net/pid and blocks on a pipe. A PID namespace only applies to
   the *next* child, so it forks once more: the grandchild is PID 1 of the container;
4. the parent adds the child to the cgroup, plugs in the network (veth moved by pid), then releases it
   with the generated /etc files;
5. the grandchild mounts the overlay inside its own mount namespace (it vanishes with the container:
   nothing on the host to leak), calls ``rootfs.setup_root``, sets the hostname, ids, workdir, and execs.
   Any failure is written as one line (``CODE message``) to an O_CLOEXEC error pipe: the user sees
   the real cause, and a failed exec gives docker's 127 (ENOENT) or 126 (EACCES/ENOEXEC);
6. the parent waits, maps the status (128+N for signal N), removes the cgroup, network and, with
   ``--rm``, the record and layer.

Fault injection for tests: ``MINICONTAINER_TEST_DIE_AT=<step>`` SIGKILLs the runtime at that step;
``minicontainer gc`` must then leave nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import time
from contextlib import ExitStack

from .. import paths
from .._record import record
from ..errors import ConflictError, ContainerError, ExecError, MiniContainerError, NotFoundError, exit_code
from . import state
from .config import ContainerConfig

STEPS = ("validated", "record", "layer", "cgroup", "forked", "network", "released")


def _die_at(step: str) -> None:
    if os.environ.get("MINICONTAINER_TEST_DIE_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _cgroup_name(cid: str) -> str:
    return f"mc-{cid[:16]}"


def _store():
    from ..images import ImageStore
    return ImageStore()


def _image(store, ref: str):
    if ref == "busybox":
        return store.ensure_busybox()
    return store.get(ref)


@record
class Result:
    exit_code: int
    stdout: str
    stderr: str


# --- create -------------------------------------------------------------------------------------
def create(cfg: ContainerConfig) -> dict:
    """Validate, resolve the image, write the record (state "created"), make the writable layer."""
    cfg.validate()
    store = _store()
    img = _image(store, cfg.image)
    icfg = img.config or {}
    argv = list(icfg.get("Entrypoint") or []) + (list(cfg.command) or list(icfg.get("Cmd") or []))
    if not argv:
        raise ContainerError("no command given and the image has none",
                             hint="add a command: minicontainer run IMAGE CMD…", )
    _die_at("validated")
    spare = _parked_for(img.id, cfg)    # made by `minicontainer serve` for such a run: take its id
    cid = spare.cid if spare else os.urandom(32).hex()   # not `secrets`: its import costs ~5 ms
    layer = store.layer_paths(cid)
    with state.locked():
        name = cfg.name
        if name is not None and not state.claim_name(name, cid):
            raise ConflictError(f"container name {name!r} is already in use",
                                hint=f"remove it (minicontainer rm {name}) or choose another --name")
        if name is None:
            i = 0
            while not state.claim_name(f"mc_{cid[:8]}{i or ''}", cid):
                i += 1
            name = f"mc_{cid[:8]}{i or ''}"
        rec = {"id": cid, "name": name, "status": "created", "config": cfg.to_dict(),
               "image_id": img.id, "argv": argv, "lowerdirs": img.lowerdirs,
               "env": _env(icfg, cfg), "workdir": cfg.workdir or icfg.get("WorkingDir") or "/",
               "created": time.time(), "pid": None, "owner": _me(), "exit_code": None,
               "cgroup": spare.cg.name if spare else _cgroup_name(cid),
               # the layer's place is known before it exists: one write of the record, not two (a
               # write costs ~0.5 ms where /run is not a tmpfs); `gc` removes a layer that a crash
               # left half made, or never made, with the record
               "upperdir": str(layer.upperdir), "workdir_ovl": str(layer.workdir)}
        try:
            state.write(rec)
        except BaseException:
            state.release_name(name, cid)
            raise
    _die_at("record")
    try:
        if spare:
            spare.claim_layer()
        else:
            store.create_container_layer(cid)
        store.mark_in_use(img.id, cid)
        _die_at("layer")
    except BaseException:
        _remove_all(rec)
        raise
    return rec


def _me() -> list:
    """The process managing a record now (pid + start time, against pid reuse): gc leaves it alone
    while it lives, and cleans up after it once it died without finishing."""
    return [os.getpid(), state.start_time_of(os.getpid())]


def _env(icfg: dict, cfg: ContainerConfig) -> list[str]:
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    for e in list(icfg.get("Env") or []) + list(cfg.env):
        k, _, v = e.partition("=")
        env[k] = v
    env.setdefault("HOSTNAME", cfg.hostname or "")
    if cfg.tty:
        env.setdefault("TERM", "xterm")
    return [f"{k}={v}" for k, v in env.items()]


# --- start --------------------------------------------------------------------------------------
def start(rec: dict, *, stdio=(None, None, None), on_started=None, detached: bool = False) -> int:
    """Start a created container and wait for it; returns docker's exit code. Cleans up cgroup and
    network; the record ends "stopped" (removed with --rm), also when starting fails and on Ctrl-C
    (KeyboardInterrupt: the container was killed on the way out, exit code 130)."""
    try:
        return _start(rec, stdio=stdio, on_started=on_started, detached=detached)
    except BaseException as exc:
        cfg = ContainerConfig.from_dict(rec["config"])
        _finish(rec, 130 if isinstance(exc, KeyboardInterrupt) else 125, cfg)
        raise


def _start(rec: dict, *, stdio=(None, None, None), on_started=None, detached: bool = False) -> int:
    cfg = ContainerConfig.from_dict(rec["config"])
    if rec["status"] != "created":
        raise ContainerError(f"container {rec['name']} is {rec['status']}, not created",
                             hint="only a created container can be started; run a new one")
    peer = _network_peer(cfg) if cfg.network.startswith("container:") else None
    child = _take_parked()
    if child is not None and child.cid != rec["id"]:
        child.discard()                      # made for another kind of request: not this one
        child = None
    if rec.get("owner") != _me():            # `start` of a created one (create wrote ours, and
        state.update(rec["id"], owner=_me())   # the spare's cgroup when it took the spare's id)
    with ExitStack() as stack:
        if child is None:
            child = park(dict(_spec(rec, cfg, peer), slim=detached), rec["cgroup"], cfg.limits())
        else:
            limits = cfg.limits()
            if limits is not None:
                child.cg.set_limits(limits)   # still before any code of the container runs
        stack.callback(_cleanup_cgroup, child.cg)
        stack.callback(_reap_child, child.pid)
        stack.callback(child.close)
        pid, cg = child.pid, child.cg
        etc = {"/etc/hostname": (cfg.hostname or rec["id"][:12]) + "\n"}
        net = None
        if cfg.network not in ("host", "none") and peer is None:   # bridge or a user-defined network
            from .. import network
            stack.callback(_detach, network, rec["id"])
            net = _attach(network, rec, cfg, pid)
            etc["/etc/hosts"] = net.hosts_file()
            etc["/etc/resolv.conf"] = net.resolv_conf()
        elif peer is not None:
            # container:NAME — the child joined the peer's network namespace (setns) instead of
            # making one: same interfaces, addresses, ports; and the peer's /etc/hosts view.
            from .. import network
            if peer.get("network"):
                other = network.Attachment.from_dict(peer["network"])
                etc["/etc/hosts"] = other.hosts_file()
                etc["/etc/resolv.conf"] = other.resolv_conf()
            net = network.Attachment(rec["id"], rec["name"], f"container:{peer['name']}")
        _die_at("network")
        child.release(rec, etc, stdio)
        err = child.error()                   # None: EOF on the error pipe, G exec'd the command
        if err is None:
            state.update(rec["id"], status="running", pid=child.gpid, runtime_pid=pid,
                         start_time=state.start_time_of(child.gpid), started=time.time(),
                         network=net.to_dict() if net else None)
            _die_at("released")
            if on_started:
                on_started(rec)
            if detached:                      # the supervisor: wait as a bare interpreter (waiter.py)
                _become_waiter("supervise", pid, json.dumps({"id": rec["id"], "cgroup": cg.name,
                                                             "network": cfg.network, "path": sys.path}))
        _, status = os.waitpid(pid, 0)
        stack.pop_all()
        _free(cg, cfg.network, rec["id"])
        if err is not None:
            raise err
        code = exit_code(status)
        _finish(rec, code, cfg)
        return code


def _spec(rec: dict, cfg, peer) -> dict:
    """What the container's first processes need before the request's details: namespaces, layers."""
    own_net = cfg.network != "host" and peer is None
    return {"cid": rec["id"], "names": ["uts", "ipc", "pid"] + (["net"] if own_net else []),
            "join_net": peer["pid"] if peer else None, "lowerdirs": rec["lowerdirs"],
            "upperdir": rec["upperdir"], "workdir_ovl": rec["workdir_ovl"]}


def _become_waiter(role: str, *args) -> None:
    """exec waiter.py (a bare interpreter instead of a fork of the runtime; see there); returns only
    if the exec failed, and then the caller simply goes on waiting itself."""
    from . import waiter
    # (no sys.stdout.flush(): in a notebook it is ipykernel's stream, whose thread a fork does not
    # have — it made C die before the network could be plugged in; we never print here anyway)
    try:
        os.execv(sys.executable, waiter.argv(role, *args))
    except Exception:                             # noqa: BLE001 — then we wait here, as before
        pass


def _free(cg, network_mode: str, cid: str) -> None:
    """Once the container's processes are gone: its cgroup, and its place on the bridge."""
    if cg is not None:
        _cleanup_cgroup(cg, ended=True)
    if network_mode not in ("host", "none") and not network_mode.startswith("container:"):
        from .. import network
        _detach(network, cid)


def finish_detached(job: str, status: int) -> None:
    """The supervisor's last step, in waiter.py once C has ended: what `_start` does after its
    wait — the cgroup, the network, then the record (stopped, or removed with --rm)."""
    from ..cgroups import Cgroup
    j = json.loads(job)
    try:
        cg = Cgroup.open(j["cgroup"])
    except NotFoundError:
        cg = None
    _free(cg, j["network"], j["id"])
    try:
        rec = state.read(j["id"])
    except NotFoundError:
        return                                    # removed meanwhile (rm -f)
    _finish(rec, exit_code(status), ContainerConfig.from_dict(rec["config"]))


# --- the container's first processes, parked ---------------------------------------------------
class Parked:
    """The container's first processes, made and moved into their cgroup before the request's details.

    Joining a cgroup is the slowest step of a start: the first write to ``cgroup.procs`` after a
    quiet moment waits for an RCU grace period (the kernel's cgroup_threadgroup_rwsem entering its
    writer mode), 7–16 ms on the 2-core CI VM — longer than all the rest. So :func:`park` forks C,
    which unshares the namespaces and forks G (PID 1 of the new PID namespace), and *while* the
    runtime's write waits, G mounts the overlay and the API file systems (``rootfs.prepare_root``).
    Then G waits on a socket for its *release*: the record (command, env, user, volumes…), the
    generated /etc files and its stdin/stdout/stderr as file descriptors (SCM_RIGHTS: a spare's
    request did not exist when G was forked). ``start`` parks on the spot and releases at once;
    ``minicontainer serve`` keeps a spare parked in advance (server.py), so a ``run`` finds its
    container half made. Errors come back as one line on an O_CLOEXEC pipe, as before.
    """

    def __init__(self, cg, spec: dict, pid: int, sock, err_r: int):
        self.cg, self.spec, self.pid, self.sock, self.err_r = cg, spec, pid, sock, err_r
        self.cid = spec["cid"]
        self.gpid: int | None = None
        self.owner = os.getpid()
        self.owns_layer = False            # a spare made its layer; a record owns it once claimed
        self._data = b""

    def _read_gpid(self) -> None:
        """C's first line: G's pid on the host. An error line instead: raise it."""
        while b"\n" not in self._data and self.err_r >= 0:
            chunk = os.read(self.err_r, 4096)
            if not chunk:
                break
            self._data += chunk
        first = self._data.split(b"\n", 1)[0]
        if not first.isdigit():
            raise self.error() or ExecError("container set-up failed before PID 1 existed", exit_code=125)
        self.gpid = int(first)

    def error(self) -> ExecError | None:
        """The error line C or G wrote (``CODE message``), as the exception to raise; None when G
        exec'd the command. Reads the error pipe to its end."""
        err = next((ln for ln in self.outcome() if ln and not ln.isdigit()), None)
        if err is None:
            return None
        code, _, msg = err.partition(" ")
        return ExecError(msg, exit_code=int(code) if code.isdigit() else 125)

    def claim_layer(self) -> None:
        """``create`` takes the spare's writable layer (same id, same place) for its record."""
        self.owns_layer = False
        try:
            os.unlink(os.path.join(os.path.dirname(self.spec["upperdir"]), "spare"))
        except FileNotFoundError:
            pass

    def release(self, rec: dict, etc: dict, stdio=(None, None, None)) -> None:
        """G's orders: the record, the /etc files, and its stdin/stdout/stderr (``stdio``, else ours)."""
        from .. import fdpass
        try:
            fdpass.send(self.sock, json.dumps({"rec": rec, "etc": etc}).encode(), fdpass.stdio(stdio))
        except OSError as exc:
            self.close()                          # a live G sees EOF and ends: the pipe reaches EOF
            # G died while preparing: its line says why; else our send itself failed
            raise (self.error() or ContainerError(f"release the container: {exc.strerror or exc}")) from None
        self.close()

    def outcome(self) -> list[str]:
        """Everything C and G wrote: G's pid, then nothing (it exec'd) or an error line."""
        while self.err_r >= 0:
            chunk = os.read(self.err_r, 4096)
            if not chunk:
                os.close(self.err_r)
                self.err_r = -1
                break
            self._data += chunk
        return self._data.decode(errors="replace").splitlines()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def discard(self) -> None:
        """Not needed after all (the server stops, or the request did not fit): leave nothing."""
        self.close()
        _reap_child(self.pid)
        if self.err_r >= 0:
            os.close(self.err_r)
            self.err_r = -1
        _cleanup_cgroup(self.cg)
        if self.owns_layer:
            _store().remove_container_layer(self.cid)


def park(spec: dict, cgroup_name: str | None = None, limits=None) -> Parked:
    """Create the cgroup (``limits`` applied first), fork C (and through it G) into it, parked."""
    import _socket
    from ..cgroups import Cgroup
    cg = Cgroup.create(cgroup_name or f"mc-{os.urandom(8).hex()}", limits,
                       controllers=None if cgroup_name else {"memory", "cpu", "pids"})
    _die_at("cgroup")
    try:
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            try:
                a.close()
                os.close(err_r)
                _child(spec, b, err_w)
            finally:
                os._exit(125)
        b.close()
        os.close(err_w)
        child = Parked(cg, spec, pid, a, err_r)
    except BaseException:
        _cleanup_cgroup(cg)
        raise
    try:
        cg.add(pid)            # the slow write: meanwhile C unshares, forks G, and G mounts
        child._read_gpid()
        cg.add(child.gpid)     # G may have been forked just before C joined: make sure (fast now)
    except BaseException as exc:
        # End C and G first (G waits for its release, C for G): only then does the error pipe
        # reach EOF. If G died preparing (a missing layer, a failed mount), its line is the cause.
        child.close()
        _reap_child(child.pid)
        failure = child.error() if isinstance(exc, MiniContainerError) else None
        child.discard()
        if failure is not None:
            raise failure from None
        raise
    _die_at("forked")
    return child


def park_spare(image: str = "busybox") -> Parked:
    """For ``minicontainer serve``: a container for the next ``run`` of ``image`` with its own network
    namespace, parked before anyone asked — its id, layer and cgroup are fresh and random, and it is
    discarded unless a request that fits takes it. A ``spare`` file in its layer keeps ``gc`` away."""
    store = _store()
    img = _image(store, image)
    cid = os.urandom(32).hex()
    layer = store.create_container_layer(cid)
    (layer.path / "spare").write_text(json.dumps(_me()))
    spec = {"cid": cid, "names": ["uts", "ipc", "pid", "net"], "join_net": None,
            "lowerdirs": img.lowerdirs, "upperdir": str(layer.upperdir), "workdir_ovl": str(layer.workdir),
            "image_id": img.id}
    try:
        child = park(spec)
    except BaseException:
        store.remove_container_layer(cid)
        raise
    child.owns_layer = True
    return child


_parked: Parked | None = None


def set_parked(child: Parked | None) -> None:
    """The server's spare (server.py): the next ``run`` in this process uses it if it fits."""
    global _parked
    _parked = child


def _parked_for(image_id: str, cfg) -> Parked | None:
    """The parked spare, if this process may use it for ``cfg``: same image, a network namespace of
    its own (bridge or none), and started here (not by a ``run -d`` supervisor)."""
    c = _parked
    if c is None or c.owner != os.getpid() or c.spec.get("image_id") != image_id \
            or cfg.network not in ("bridge", "none"):
        return None
    return c


def _take_parked() -> Parked | None:
    global _parked
    child, _parked = _parked, None
    if child is not None and child.owner != os.getpid():
        return None       # a forked supervisor (run -d): the child is not ours to wait for
    return child


def discard_parked() -> None:
    child = _take_parked()
    if child is not None:
        child.discard()


def _network_peer(cfg) -> dict:
    """The running container whose network namespace ``--network container:NAME`` shares."""
    ref = cfg.network.split(":", 1)[1]
    try:
        peer = state.find(ref)
    except NotFoundError:
        raise NotFoundError(f"--network container:{ref}: no such container",
                            hint="name a running container (see `minicontainer ps`)") from None
    if peer.get("status") not in ("running", "paused") or not state.alive(peer.get("pid"), peer.get("start_time")):
        raise ConflictError(f"--network container:{ref}: container {peer['name']} is not running",
                            hint="start it first: its network namespace lives as long as its processes")
    return peer


@contextlib.contextmanager
def _net_lock():
    """Host-wide lock around plugging containers in and out: two first starts at once raced creating
    the bridge (pyroute2 NetlinkError 17 "File exists"), and a last detach deleting the bridge could
    race a start plugging into it."""
    import fcntl
    fd = os.open("/run/lock/minicontainer-net.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _attach(network, rec, cfg, pid):
    """network.attach under the network lock; the other containers learn the new name. Unexpected
    library errors become one-line ContainerErrors."""
    try:
        with _net_lock():
            net = network.attach(rec["id"], pid, name=rec["name"], hostname=cfg.hostname or rec["id"][:12],
                                 ports=[network.parse_publish(p) for p in cfg.ports], mode=cfg.network)
            network.refresh_hosts(_bridge_containers(rec["id"]))
            return net
    except MiniContainerError:
        raise
    except Exception as exc:  # pyroute2's NetlinkError and friends
        raise ContainerError(f"network attach {rec['name']}: {exc}") from exc


def _bridge_containers(exclude: str) -> list[dict]:
    """Records of the other running containers on the bridge (for their /etc/hosts)."""
    return [r for r in state.all_records()
            if r["id"] != exclude and r.get("status") in ("running", "paused")
            and (r.get("network") or {}).get("mode") == "bridge" and state.alive(r.get("pid"), r.get("start_time"))]


def _detach(network, cid: str) -> None:
    """network.detach under the network lock; the other containers forget the name."""
    with _net_lock():
        network.detach(cid)
        network.refresh_hosts(_bridge_containers(cid))


def _finish(rec, code, cfg) -> None:
    if cfg.rm:
        _remove_all(rec)
    else:
        try:
            state.update(rec["id"], status="stopped", exit_code=code, finished=time.time(), pid=None,
                         owner=None)
        except NotFoundError:
            pass


def _cleanup_cgroup(cg, ended: bool = False) -> None:
    """Kill what is left in the container's cgroup and remove it. ``ended``: its PID 1 has been
    reaped, and with it the whole PID namespace (the kernel kills and reaps the rest before PID 1's
    parent hears of its end), so the group is normally empty: one rmdir per hierarchy, and only if
    the kernel says busy (a process that joined the group but not the namespace — an `exec` caught
    half way — or one not quite gone) kill and wait. Reading cgroup.procs in 9 v1 hierarchies to
    find them empty cost ~0.7 ms of every foreground run."""
    if ended:
        try:
            cg.delete(wait=False)
            return
        except MiniContainerError:
            pass
    try:
        cg.kill()
    except MiniContainerError:
        pass
    cg.delete()


def _reap_child(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _child(spec: dict, sock, err_w) -> None:
    """C: unshare, fork G (PID 1), report G's pid, wait for it. Never returns (the caller's finally
    does os._exit)."""
    from .. import syscalls as sc
    from ..namespaces import flags_for

    def fail(code: int, msg: str):
        os.write(err_w, f"\n{code} {msg}\n".encode())
        os._exit(code)
    fail.fd = err_w

    try:
        sc.set_pdeathsig(signal.SIGKILL)
        sc.unshare(flags_for(spec["names"]))
        if spec.get("join_net"):
            from ..namespaces import enter
            enter(spec["join_net"], ["net"])
        gpid = os.fork()
        if gpid:
            os.write(err_w, f"{gpid}\n".encode())
            os.close(err_w)
            sock.close()
            if spec.get("slim"):          # a detached container: wait as a bare interpreter
                _become_waiter("child", gpid)
            signal.signal(signal.SIGTERM, lambda s, f: os.kill(gpid, s))
            signal.signal(signal.SIGINT, lambda s, f: os.kill(gpid, s))
            while True:
                try:
                    _, status = os.waitpid(gpid, 0)
                    break
                except InterruptedError:
                    continue
            os._exit(exit_code(status))
        sc.set_pdeathsig(signal.SIGKILL)  # the runtime (or supervisor) died: so does the container
        _container_init(spec, sock, fail)
    except MiniContainerError as exc:
        fail(getattr(exc, "exit_code", 125), str(exc))
    except OSError as exc:
        fail(125, f"container set-up: {exc}")


def _container_init(spec: dict, sock, fail) -> None:
    """G, PID 1 of the container: overlay and API file systems, then wait for the release; then
    volumes, /etc, pivot_root, hostname, ids, exec."""
    from .. import fdpass, syscalls as sc
    from ..images.overlay import mount_overlay
    from ..rootfs import enter_root, prepare_root
    from .init import run_init  # now: after pivot_root the package's files are out of reach
    # G, not C, makes the mount namespace: pivot_root moves the root of every process of the
    # namespace that had the old one, and C must keep the host's (waiter.py execs a host binary).
    sc.unshare(sc.CLONE_NEWNS)
    merged = os.path.join(os.path.dirname(spec["upperdir"]), "merged")
    os.makedirs(merged, exist_ok=True)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_SLAVE)
    mount_overlay(merged, spec["lowerdirs"], spec["upperdir"], spec["workdir_ovl"])
    root = prepare_root(merged)

    body, fds = fdpass.recv(sock, 1 << 20, 3)
    if not body:
        os._exit(0)                 # discarded: nobody needs this container after all
    sock.close()
    for i, fd in enumerate(fds[:3]):
        os.dup2(fd, i)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    msg = json.loads(body)
    rec = msg["rec"]
    cfg = ContainerConfig.from_dict(rec["config"])
    if cfg.tty:
        from .tty import make_controlling   # only then: it pulls in termios and threading
    enter_root(root, volumes=cfg.volumes, readonly=cfg.read_only, etc_files=msg["etc"])
    sc.sethostname(cfg.hostname or rec["id"][:12])
    try:
        os.chdir(rec["workdir"])
    except OSError as exc:
        fail(125, f"chdir to working directory {rec['workdir']}: {exc.strerror}")
    if cfg.user:
        uid, _, gid = cfg.user.partition(":")
        os.setgroups([])
        os.setgid(int(gid or uid))
        os.setuid(int(uid))
    env = dict(e.split("=", 1) for e in rec["env"])
    argv = rec["argv"]

    def exec_command():
        try:
            os.execvpe(argv[0], argv, env)
        except FileNotFoundError:
            fail(127, f"exec {argv[0]}: executable file not found in $PATH")
        except OSError as exc:
            fail(126, f"exec {argv[0]}: {exc.strerror}")

    if cfg.tty and os.isatty(0):
        make_controlling(0)  # noqa: F821 - imported above when cfg.tty
    if cfg.init:
        # The error pipe must reach EOF when the command execs: our init keeps no copy of it.
        run_init(exec_command, close=(fail.fd,))
    exec_command()


# --- the one-liners -------------------------------------------------------------------------------
def run(image: str, command=(), *, capture: bool = True, **opts) -> Result:
    """Run a container to completion and return its exit code and output (the notebooks' API).
    ``opts`` are :class:`ContainerConfig` fields; ``rm`` defaults to True, ``network`` to "none"."""
    import tempfile
    opts.setdefault("rm", True)
    opts.setdefault("network", "none")
    cfg = ContainerConfig(image=image, command=list(command), **opts)
    rec = create(cfg)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            code = start(rec, stdio=(os.open(os.devnull, os.O_RDONLY), out.fileno(), err.fileno())
                         if capture else (None, None, None))
        except BaseException:
            if cfg.rm:
                _remove_all(rec)
            raise
        out.seek(0)
        err.seek(0)
        return Result(code, out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def run_detached(cfg: ContainerConfig, rec: dict | None = None) -> dict:
    """``run -d`` (and ``start`` of a created container, ``rec``): a small supervisor process (setsid)
    waits for the container, writes its output to ``<state>/<id>/log`` and records its exit status and
    time. Returns once the container runs."""
    rec = rec or create(cfg)
    log = state.root() / rec["id"] / "log"
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        code = 125
        try:
            os.close(r)
            os.setsid()
            if os.fork():
                os._exit(0)
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            null = os.open(os.devnull, os.O_RDONLY)
            # Let go of the caller's terminal/pipes at once (else `$(minicontainer run -d …)` hangs).
            os.dup2(null, 0)
            os.dup2(fd, 1)
            os.dup2(fd, 2)

            def started(_rec):
                os.write(w, b"ok\n")
                os.close(w)
            try:
                start(rec, stdio=(null, fd, fd), on_started=started, detached=True)
                code = 0
            except MiniContainerError as exc:
                try:
                    os.write(w, f"{exc.exit_code} {exc}\n".encode())
                except OSError:
                    pass
        finally:
            os._exit(code)
    os.close(w)
    os.waitpid(pid, 0)
    # One line, not EOF: the container's intermediate process inherits the write end.
    data = b""
    while not data.endswith(b"\n") and (chunk := os.read(r, 4096)):
        data += chunk
    os.close(r)
    text = data.decode().strip()
    if text != "ok":
        code, _, msg = text.partition(" ")
        _remove_all(rec)
        raise ExecError(msg or "container failed to start", exit_code=int(code) if code.isdigit() else 125)
    return state.read(rec["id"])


# --- lifecycle verbs ------------------------------------------------------------------------------
def _live(ref: str) -> dict:
    rec = state.find(ref)
    if rec["status"] in ("running", "paused") and not state.alive(rec.get("pid"), rec.get("start_time")):
        rec["status"] = "stopped"
    return rec


def _running(ref: str) -> dict:
    rec = _live(ref)
    if rec["status"] not in ("running", "paused"):
        raise ContainerError(f"container {rec['name']} is not running ({rec['status']})")
    return rec


def kill(ref: str, sig: str | int = "KILL") -> None:
    rec = _running(ref)
    os.kill(rec["pid"], parse_signal(sig))


def parse_signal(sig) -> int:
    from ..errors import ConfigError
    if isinstance(sig, int) or str(sig).isdigit():
        n = int(sig)
        if 0 < n < signal.NSIG:
            return n
    else:
        s = str(sig).upper()
        s = s if s.startswith("SIG") else "SIG" + s
        if hasattr(signal.Signals, s) and s not in ("SIG_DFL", "SIG_IGN"):
            return int(signal.Signals[s])
    raise ConfigError(f"invalid signal: {sig}", hint="use a name such as TERM, KILL, HUP or a number")


def stop(ref: str, timeout: float = 10) -> None:
    """SIGTERM to PID 1, then after ``timeout`` SIGKILL to the whole cgroup (as docker stop)."""
    rec = _live(ref)
    if rec["status"] not in ("running", "paused"):
        return
    from ..cgroups import Cgroup
    try:
        cg = Cgroup.open(rec["cgroup"])
        if rec["status"] == "paused":
            cg.thaw()
    except NotFoundError:
        cg = None
    try:
        os.kill(rec["pid"], signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and state.alive(rec["pid"], rec.get("start_time")):
        time.sleep(0.02)
    if state.alive(rec["pid"], rec.get("start_time")) and cg is not None:
        try:
            cg.kill()
        except MiniContainerError:
            if state.alive(rec["pid"], rec.get("start_time")):  # else: it ended and its group went
                raise
    _wait_stopped(rec["id"])


def _wait_stopped(cid: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if state.read(cid)["status"] == "stopped":
                return
        except NotFoundError:
            return
        time.sleep(0.02)


def pause(ref: str) -> None:
    from ..cgroups import Cgroup
    rec = _running(ref)
    Cgroup.open(rec["cgroup"]).freeze()
    state.update(rec["id"], status="paused")


def unpause(ref: str) -> None:
    from ..cgroups import Cgroup
    rec = _running(ref)
    if rec["status"] != "paused":
        raise ContainerError(f"container {rec['name']} is not paused")
    Cgroup.open(rec["cgroup"]).thaw()
    state.update(rec["id"], status="running")


def remove(ref: str, force: bool = False) -> str:
    rec = _live(ref)
    if rec["status"] in ("running", "paused"):
        if not force:
            raise ConflictError(f"container {rec['name']} is {rec['status']}",
                                hint="stop it first or use rm -f")
        stop(rec["id"], timeout=0)
    _remove_all(rec)
    return rec["name"]


def _remove_all(rec: dict) -> None:
    try:     # (its `image` file, which marks the image in use, goes with the layer's directory)
        _store().remove_container_layer(rec["id"])
    except MiniContainerError:
        pass
    state.remove(rec["id"], rec.get("name"))


def list_containers(all: bool = False) -> list[dict]:
    out = []
    for rec in state.all_records():
        if rec.get("status") in ("running", "paused") and not state.alive(rec.get("pid"), rec.get("start_time")):
            rec["status"] = "stopped"
        if all or rec.get("status") in ("running", "paused"):
            out.append(rec)
    return out


def inspect(ref: str) -> dict:
    return _live(ref)


def stats(ref: str) -> dict:
    from ..cgroups import Cgroup
    rec = _running(ref)
    return {"name": rec["name"], **Cgroup.open(rec["cgroup"]).stats()}


def logs_path(ref: str):
    rec = state.find(ref)
    return state.root() / rec["id"] / "log"


def exec_in(ref: str, argv: list[str], *, env=(), workdir: str | None = None, stdio=(None, None, None),
            tty: bool = False, on_started=None) -> int:
    """Join every namespace and the cgroup of a running container and run ``argv`` there.

    The runtime makes itself non-dumpable first (PR_SET_DUMPABLE 0): runc's CVE-2019-5736 let a
    process in the container open /proc/<runtime>/exe and overwrite the runtime binary."""
    from .. import syscalls as sc
    from ..cgroups import Cgroup
    from ..namespaces import enter
    rec = _running(ref)
    cg = Cgroup.open(rec["cgroup"])
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(err_r)
            sc.set_dumpable(False)
            cg.add(os.getpid())
            names = ["ipc", "uts", "net", "pid", "mnt"]
            if rec["config"]["network"] == "host":
                names.remove("net")
            enter(rec["pid"], names)
            if os.fork():
                _, status = os.waitpid(-1, 0)
                os._exit(exit_code(status))
            for i, fd in enumerate(stdio):
                if fd is not None:
                    os.dup2(fd, i)
            if tty:
                from .tty import make_controlling
                make_controlling(0)
            envd = dict(e.split("=", 1) for e in rec["env"])
            envd.update(e.split("=", 1) for e in env)
            os.chdir(workdir or rec["workdir"])
            try:
                os.execvpe(argv[0], argv, envd)
            except FileNotFoundError:
                os.write(err_w, f"127 exec {argv[0]}: executable file not found in $PATH".encode())
                os._exit(127)
            except OSError as exc:
                os.write(err_w, f"126 exec {argv[0]}: {exc.strerror}".encode())
                os._exit(126)
        except BaseException as exc:  # noqa: BLE001 — a forked child reports and exits, never returns
            try:
                os.write(err_w, f"125 exec: {exc}".encode())
            finally:
                os._exit(125)
        finally:
            os._exit(125)
    os.close(err_w)
    if on_started:
        on_started()
    _, status = os.waitpid(pid, 0)
    msg = os.read(err_r, 4096).decode(errors="replace")
    os.close(err_r)
    if msg:
        code, _, text = msg.partition(" ")
        raise ExecError(text, exit_code=int(code))
    return exit_code(status)


def _gc_orphan_cgroups(named: set[str], min_age: float = 2.0) -> list[str]:
    """Container groups (``mc-…``) that no record names: a runtime killed between creating the group and
    writing it down, or a record removed by hand. All state roots share the cgroup parent, so a group is
    only taken when it is also *empty* and older than ``min_age`` seconds: another root's running
    container always has a process in its group, and one being started gets its first process within
    milliseconds of the mkdir."""
    from ..cgroups import Cgroup, list_groups
    removed = []
    for name in list_groups():
        if not re.fullmatch(r"mc-[0-9a-f]{16}", name) or name in named:
            continue
        cg = Cgroup.open(name)
        try:
            age = time.time() - min(d.stat().st_mtime for d in cg.dirs().values())
        except FileNotFoundError:
            continue                                    # removed meanwhile by its owner
        if age < min_age or cg.procs():
            continue
        cg.delete()
        removed.append(f"cgroup {name} (no container record)")
    return removed


def _spare_alive(layer_dir) -> bool:
    """Is this layer a spare of a running `minicontainer serve` (park_spare)? Then it is not litter."""
    try:
        owner = json.loads((layer_dir / "spare").read_text())
    except (OSError, ValueError):
        return False
    return state.alive(*owner)


def gc() -> list[str]:
    """Remove what crashed runs left (``minicontainer gc``): records whose managing process died
    without finishing, their cgroups, writable layers and network leases/veths. Only what a record
    of *this* state root names is touched (another root's containers may be running)."""
    from ..cgroups import Cgroup
    removed = []
    for rec in state.all_records():
        owner = rec.get("owner")
        if rec.get("status") == "broken":
            _remove_all(rec)
            removed.append(f"state {rec['id'][:12]} (unreadable)")
            continue
        if not owner or state.alive(*owner):
            continue
        if rec.get("pid") and state.alive(rec["pid"], rec.get("start_time")):
            continue
        try:
            cg = Cgroup.open(rec["cgroup"])
            cg.kill()
            cg.delete()
            removed.append(f"cgroup {rec['cgroup']}")
        except NotFoundError:
            pass
        if rec.get("network"):
            from .. import network
            _detach(network, rec["id"])
            removed.append(f"network {rec['id'][:12]}")
        if rec.get("config", {}).get("rm") or rec.get("status") == "created":
            _remove_all(rec)
            removed.append(f"state {rec['id'][:12]}")
        else:
            state.update(rec["id"], status="stopped", pid=None, owner=None, exit_code=137)
            removed.append(f"process of {rec['id'][:12]} (marked stopped)")
    known = {r["id"] for r in state.all_records()}
    removed += [f"name {n} (no container record)" for n in state.remove_stale_names()]
    removed += _gc_orphan_cgroups({r.get("cgroup") or _cgroup_name(r["id"]) for r in state.all_records()})
    cdir = paths.data_root() / "containers"
    if cdir.is_dir():
        for d in cdir.iterdir():
            if d.name not in known and len(d.name) == 64 and time.time() - d.stat().st_mtime > 2 \
                    and not _spare_alive(d):
                _remove_all({"id": d.name})
                removed.append(f"layer {d.name[:12]}")
    if (state.root() / "network").exists():
        from .. import network
        removed += network.gc()
    from ..server import remove_stale_socket
    removed += remove_stale_socket()
    return removed
