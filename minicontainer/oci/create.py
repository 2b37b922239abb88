"""``create``: a bundle in, one container out, blocked before its program until ``start`` — and then
this process EXITS. The caller (conmon, containerd-shim) is a subreaper: once our middle child is
gone, the container's process is its child, and it waits for it itself. Nothing of ours stays.

Steps, each named for fault injection (``MINICONTAINER_OCI_TEST_DIE_AT=<step>`` SIGKILLs the runtime
there; a test then checks that ``delete --force`` leaves nothing): ``validated`` → ``state`` (the id
is taken, the record names the cgroup *before* it exists) → ``cgroup`` → ``fifo`` → ``forked`` →
``hooks`` → ``ready`` (the record holds the pid) → ``pidfile``. The cgroup is the handle on every
process we made: whatever step we die at, ``delete --force`` kills what is in it and removes it,
and the container's mounts live in its own mount namespace, so they go with its last process.
The children notice a dead runtime as EOF on their socket and exit.
"""
from __future__ import annotations

import os
# The C modules, not `signal` and `socket`: those wrap them in enums (an import of enum in every
# create, bench/README.md); a _socket.socket has the same send/recv/settimeout/connect/close, and its timeout is
# TimeoutError, as socket.timeout is.
import _signal as signal
import _socket as socket
import time

from ..errors import ContainerError, exit_code
from . import _security, cgroup as cgroups, init, spec as specmod, state as statemod
from .state import destroy

STEPS = ("validated", "state", "cgroup", "fifo", "forked", "hooks", "ready", "pidfile")
_TIMEOUT = 30.0


def die_at(step: str) -> None:
    if os.environ.get("MINICONTAINER_OCI_TEST_DIE_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _console(path: str | None):
    if not path:
        raise ContainerError("process.terminal is true but there is no --console-socket",
                             hint="give --console-socket PATH (a Unix socket that receives the pty master)")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as exc:
        s.close()
        raise ContainerError(f"connect to console socket {path}: {os.strerror(exc.errno)}") from None
    return s


def _write_maps(pid: int, lin) -> None:
    um = "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in lin.uid_mappings)
    gm = "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in lin.gid_mappings) or um
    if not um:
        return
    # setgroups stays "allow" (root writes the maps, so the kernel allows it, and the container may
    # need setgroups): "deny" is for unprivileged writers only
    from ..namespaces import write_id_maps
    write_id_maps(pid, um, gm, setgroups=None,
                  hint="linux.uidMappings/gidMappings: each 'inside outside count' must fit and not overlap")


def create(root: str, cid: str, bundle: str, *, pid_file: str | None = None, console_socket: str | None = None,
           no_pivot: bool = False, preserve_fds: int = 0, systemd_cgroup: bool = False) -> int:
    bundle = os.path.abspath(bundle)
    spec = specmod.load(bundle)
    statemod.check_id(cid)
    proc = spec.process
    prepared = _security.prepare(_security.process_security(proc, spec.linux.seccomp))
    cgpath = cgroups.resolve(spec.linux.cgroups_path, cid, systemd_cgroup)
    cgroups.limits(spec.linux.resources)              # bad resource values: before anything exists
    console = _console(console_socket) if proc.terminal else None
    die_at("validated")
    me = statemod.start_time(os.getpid())
    st = statemod.State.new(root, cid, {
        "ociVersion": spec.oci_version, "id": cid, "pid": 0, "bundle": bundle, "rootfs": spec.root_path,
        "created": statemod.rfc3339(), "annotations": spec.annotations, "cgroup": cgpath,
        "cgroup_owned": False, "creator": [os.getpid(), me[0] if me else 0],
        "hooks": {k: [_hook(h) for h in v] for k, v in spec.hooks.items() if k in ("poststart", "poststop")},
        "seccomp": spec.linux.seccomp, "apparmor": proc.apparmor_profile})
    pid = 0
    try:
        die_at("state")
        cg_exists = cgroups.open_path(cgpath).exists()
        st.data["cgroup_owned"] = not cg_exists
        st.data["cgroup_ancestors"] = cgroups.missing_levels(cgpath)
        st.save()
        cg, owned = cgroups.create(cgpath, spec.linux.resources, [])
        _security.apply_devices(cg, spec.linux.resources.devices)
        die_at("cgroup")
        os.mkfifo(st.fifo, 0o600)
        _chown_to_container_root(st.fifo, spec.linux)
        # opened here, O_PATH: the container's init reopens it through /proc/self/fd (no search
        # permission on our 0700 directory needed, which a mapped root lacks); the directory fd is
        # the fallback for a container without /proc
        fifo_fd = os.open(st.fifo, os.O_PATH | os.O_CLOEXEC)
        dir_fd = os.open(st.dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        die_at("fifo")
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ctx = init.Context(spec=spec, bundle=bundle, cgroup=cg, fifo_fd=fifo_fd, dir_fd=dir_fd, no_pivot=no_pivot,
                      preserve_fds=preserve_fds, prepared=prepared, console=console,
                      state=st.oci("creating"))
        c = os.fork()
        if c == 0:
            parent.close()
            init.create_stage1(ctx, child)       # never returns
        child.close()
        os.close(fifo_fd)
        os.close(dir_fd)
        if console is not None:
            console.close()
        try:
            pid = _drive(parent, c, cg, st, spec)
        finally:
            parent.close()
            try:
                os.waitpid(c, 0)
            except ChildProcessError:
                pass
        ps = statemod.start_time(pid)
        st.data.update(pid=pid, pid_start=ps[0] if ps else 0)
        st.data.pop("creator", None)
        st.save()
        die_at("ready")
        if pid_file:
            statemod.write_pid_file(pid_file, pid)
        die_at("pidfile")
    except BaseException:
        destroy(st)
        raise
    return 0


def _chown_to_container_root(path: str, lin) -> None:
    """In a user namespace the container's root is another uid on the host (runc does the same)."""
    uid = next((m.host_id for m in lin.uid_mappings if m.container_id == 0), None)
    gid = next((m.host_id for m in lin.gid_mappings if m.container_id == 0), None)
    if uid is not None or gid is not None:
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)


def _hook(h) -> dict:
    return {"path": h.path, "args": list(h.args), "env": list(h.env), "timeout": h.timeout}


def _drive(sock, c: int, cg, st, spec) -> int:
    """Talk to the children until the container is ready; returns its pid."""
    deadline = time.monotonic() + _TIMEOUT
    cg.add(c)
    die_at("forked")
    init.send(sock, "go")
    pid = 0
    while True:
        kind, value = init.recv_until(sock, deadline, "create")
        if kind == "maps":
            _write_maps(value, spec.linux)
            init.send(sock, "go")
        elif kind == "pid":
            pid = value
            st.data["pid"] = pid
            ps = statemod.start_time(pid)
            st.data["pid_start"] = ps[0] if ps else 0
            st.save()
        elif kind == "hooks":
            from . import hooks
            state = st.oci("creating")
            state["pid"] = pid
            hooks.run("prestart", spec.hooks.get("prestart", ()), state)
            hooks.run("createRuntime", spec.hooks.get("createRuntime", ()), state)
            die_at("hooks")
            init.send(sock, "go")
        elif kind == "ready":
            return pid
        elif kind == "error":
            raise value
        else:   # eof: a child died without a word
            status = os.waitpid(c, os.WNOHANG)[1] if c else 0
            raise ContainerError("create: the container's init ended before it was ready"
                                 + (f" (exit {exit_code(status)})" if status else ""))
