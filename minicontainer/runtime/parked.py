"""The container's first processes, made before the request's details: parked (notebook 06).

:class:`Parked` is a container whose namespaces, cgroup and root file system exist, waiting for its
*release* (what to run, with which stdio). ``start`` parks one and releases it at once;
``minicontainer serve`` parks a *spare* before any request (:func:`park_spare`; container.py holds
it for the ``run`` that fits). What runs inside, C and G, is in standard_init.py.
"""

from __future__ import annotations

import os
from contextlib import ExitStack

from .. import private
from .. import fastjson  # json without the package's import (fastjson.py)
from ..errors import ExecError, MiniContainerError, from_oserror
from . import standard_init, teardown
from .container import find_image, image_store, me


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
    ``minicontainer serve`` keeps a spare parked in advance (worker.py), so a ``run`` finds its
    container half made (container.py's spare slot). Errors come back as one line on an O_CLOEXEC
    pipe (standard_init.py).
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

    def hand_over(self) -> None:
        """A detached container's C ends here, once G is in the cgroup: G becomes our child, so the
        monitor (we are it) waits for PID 1 itself and one process of ours stays on the host, not
        two (waiter.py). While C dies we are a child subreaper (PR_SET_CHILD_SUBREAPER): the kernel
        gives C's orphan to its nearest subreaper ancestor instead of the host's init. C never
        reaped G (standard_init.child), so G's pid is still ours even if G has ended meanwhile."""
        from .. import syscalls as sc
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
        try:
            teardown.reap(self.pid)
            self.pid = self.gpid                      # C's pid is free now: never signal it again
        finally:
            sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 0)   # only C's orphan: not whatever we start later
        try:                 # C ended before we were its subreaper (a stray signal): G went to init
            os.waitid(os.P_PID, self.gpid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            raise ExecError("start the container: its PID 1 was not handed over to the monitor (the "
                            "intermediate process ended early); run it again", exit_code=125) from None

    def claim_layer(self) -> None:
        """``create`` takes the spare's writable layer (same id, same place) for its record."""
        self.owns_layer = False
        try:
            os.unlink(os.path.join(os.path.dirname(self.spec["upperdir"]), "spare"))
        except FileNotFoundError:
            pass

    def release(self, rec: dict, etc: dict, stdio=(None, None, None), security: dict | None = None,
                nodes=(), init: str | None = None, pty=None) -> None:
        """G's orders: the record, the /etc files (container path -> host file to bind), the prepared
        security settings (confine.py), the ``--device`` nodes, ``--init``'s host binary (init.py), and
        its stdin/stdout/stderr (``stdio``, else ours). ``pty`` (``-t``): G opens a terminal in the
        container's own devpts and sends its master back on the same socket; ``pty(master)`` gets it
        (G's stdio until then: /dev/null, never the user's terminal)."""
        from .. import fdpass
        msg = {"rec": rec, "etc": etc, "security": security, "nodes": list(nodes), "init": init,
               "pty": pty is not None}
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC) if pty is not None else -1
        try:
            fdpass.send(self.sock, fastjson.dumps(msg).encode(), fdpass.stdio((null,) * 3 if pty else stdio))
            if pty is not None:
                _, fds = fdpass.recv(self.sock, 16, 1)     # b"" and none: G failed (its line says why)
                if not fds:
                    self.close()
                    raise self.error() or ExecError("set up the container's terminal: G ended", exit_code=125)
                pty(fds[0])
        except OSError as exc:
            self.close()                          # a live G sees EOF and ends: the pipe reaches EOF
            # G died while preparing: its line says why; else our send itself failed
            raise (self.error() or from_oserror(exc, "release the container to its command")) from None
        finally:
            if null >= 0:
                os.close(null)
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
        teardown.reap(self.pid)
        if self.err_r >= 0:
            os.close(self.err_r)
            self.err_r = -1
        teardown.release_cgroup(self.cg)
        if self.owns_layer:
            teardown.release_layer(self.cid)


def park(spec: dict, cgroup_name: str | None = None, limits=None) -> Parked:
    """Create the cgroup (``limits`` applied first), fork C (and through it G) into it, parked.
    Each resource registers its release the moment it exists; any failure releases them all.
    ``spec["slim"]`` (a detached start, in the monitor; the server's spare, in its worker): C is
    ended once G is in the cgroup, and the returned Parked's ``pid`` is G's (:meth:`Parked.hand_over`)."""
    import _socket
    from ..cgroups import Cgroup
    if spec.get("slim"):     # G checks its parent against this: our pid as the host's /proc shows it
        spec = dict(spec, monitor=int(os.readlink("/proc/self")))
    with ExitStack() as undo:
        cg = Cgroup.create(cgroup_name or f"mc-{os.urandom(8).hex()}", limits,
                           controllers=None if cgroup_name else {"memory", "cpu", "pids"})
        undo.callback(teardown.release_cgroup, cg)
        # the device rules before any process joins the group (v1 files, v2 a BPF program):
        # Docker's default unless the request's flags say otherwise (confine.device_rules)
        from ..security import devices
        rules = spec.get("device_rules")
        devices.apply(cg, devices.default_rules() if rules is None else rules)
        teardown.die_at("cgroup")
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        undo.callback(a.close)
        # The release is one message: room for MAX_ARGS_BYTES twice (config and argv/env) next to
        # the image's own config. wmem_max (~208 KiB) is too small for that, and root may force a
        # bigger buffer (the kernel doubles it: ~1 MiB, G's receive buffer, standard_init.py).
        try:
            a.setsockopt(_socket.SOL_SOCKET, 32, 512 << 10)       # SO_SNDBUFFORCE (not in _socket)
        except OSError:
            pass                          # no CAP_NET_ADMIN: the default; a bigger release fails in one line
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            try:
                a.close()
                os.close(err_r)
                standard_init.child(spec, b, err_w)
            finally:
                os._exit(125)
        b.close()
        os.close(err_w)
        child = Parked(cg, spec, pid, a, err_r)
        undo.pop_all()
    try:
        cg.add(pid)            # the slow write: meanwhile C unshares, forks G, and G mounts
        child._read_gpid()
        cg.add(child.gpid)     # G may have been forked just before C joined: make sure (fast now)
        if spec.get("slim"):
            child.hand_over()
    except BaseException as exc:
        # End C and G first (G waits for its release, C for G): only then does the error pipe
        # reach EOF. If G died preparing (a missing layer, a failed mount), its line is the cause.
        child.close()
        teardown.reap(child.pid)
        failure = child.error() if isinstance(exc, MiniContainerError) else None
        child.discard()
        if failure is not None:
            raise failure from None
        raise
    teardown.die_at("forked")
    return child


def park_spare(image: str = "busybox") -> Parked:
    """For ``minicontainer serve``: a container for the next ``run`` of ``image`` with its own network
    namespace, parked before anyone asked — its id, layer and cgroup are fresh and random, and it is
    discarded unless a request that fits takes it. A ``spare`` file in its layer keeps ``gc`` away."""
    store = image_store()
    img = find_image(store, image)
    cid = os.urandom(32).hex()
    with ExitStack() as undo:
        layer = store.create_container_layer(cid)
        undo.callback(teardown.release_layer, cid)
        private.write(layer.path / "spare", fastjson.dumps(me()))
        # slim: C is ended now, while nobody waits, and G is the spare worker's own child — the
        # request's worker, which then waits for PID 1 itself. A C left waiting would add its wake-up
        # and its exit (a forked runtime's: ~1 ms, bench/README.md) after the command's end.
        spec = {"cid": cid, "names": ["uts", "ipc", "pid", "net"], "join_net": None,
                "lowerdirs": img.lowerdirs, "upperdir": str(layer.upperdir),
                "workdir_ovl": str(layer.workdir), "image_id": img.id, "slim": True}
        child = park(spec)
        undo.pop_all()
    child.owns_layer = True
    # Docker's default confinement prepared now, while nobody waits (the seccomp program read from
    # its cache, names to numbers): the request's create and start find it memoized (confine.py)
    from .config import ContainerConfig
    from .confine import prepared
    prepared(ContainerConfig(image=image))
    return child
