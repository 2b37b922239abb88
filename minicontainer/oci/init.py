"""The container's side of ``create`` and ``exec`` (runc init's role). Everything here runs in forked
children and ends in ``os._exit`` or ``execve``; nothing returns into the runtime's code.

Two processes, as runc's nsexec has stages::

    runtime (create.py) ──fork──▶ C: waits until the runtime put it in the cgroup ("go"),
        │                          joins namespaces given by path, unshares user (the runtime writes
        │                          uid_map/gid_map meanwhile), then the others; forks G and exits
        │                                └──fork──▶ G = the container's process (PID 1 of a new PID
        │                                           namespace): mounts, hooks, pivot_root, hostname,
        │                                           sysctl, console; says "ready"; then BLOCKS opening
        │                                           exec.fifo for writing — until `start` opens it for
        │                                           reading; then security.apply and execve.
        └── writes the pid file and exits: conmon / the shim (subreapers) inherit G when C exits.

Why a second fork: unshare(CLONE_NEWPID) moves only the caller's *children*; and ctypes cannot run
Python on a raw clone() stack. Why exec.fifo (runc's design): opening a FIFO for writing blocks until
someone opens it for reading, so "wait for start" needs no process of ours to stay behind, survives
the runtime exiting, and `start` is just an open + read. The runtime opens the FIFO O_PATH before
the fork and the init reopens it through /proc/self/fd after pivot_root (runc's way: no search
permission on the 0700 state directory is needed, which a user namespace's root lacks); an O_PATH
fd of the directory is the fallback for a container without /proc.

Messages to the runtime go over one SOCK_SEQPACKET socket (pickled tuples); EOF from the runtime
means it died: the child exits instead of going on with a half-made container.
"""
from __future__ import annotations

import os
# The C halves, not `pickle` and `signal`: both Python modules import re/enum (in every create,
# before its fork); the functions and constants are the same ones. syscalls (ctypes) is
# imported by the forked stages themselves (_sc), not by the runtime, which never calls it: in the
# child it runs while the runtime joins the cgroup (bench/README.md).
import _pickle as pickle
import _signal as signal

from ..errors import ContainerError, ExecError, MiniContainerError, exit_code
from . import _security

#: runtime ↔ child message size bound
MSG = 1 << 20



def _chdir(cwd) -> None:
    """chdir to process.cwd after pivot_root, then check we are still under the root, as runc does
    since CVE-2024-21626: a cwd through a magic link (/proc/self/fd/N of a directory fd we hold)
    lands outside it, and getcwd(2) then fails with ENOENT ("unreachable")."""
    from ..errors import from_oserror
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        raise MiniContainerError(f"chdir to process.cwd {cwd!r}: not an absolute path",
                                 hint="config.json's process.cwd must be an absolute path")
    try:
        os.chdir(cwd)
        os.getcwd()
    except OSError as exc:
        raise from_oserror(exc, "chdir to the working directory (process.cwd; outside the container's "
                                "root?)", cwd) from exc


class Context:
    """What the forked stages need (they are forks: plain attributes, nothing pickled)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def recv_until(sock, deadline: float, what: str) -> tuple:
    """The next message from a stage, or ContainerError once ``deadline`` (time.monotonic) passed."""
    import time
    left = deadline - time.monotonic()
    sock.settimeout(max(0.1, left))
    try:
        return recv(sock)
    except TimeoutError:
        raise ContainerError(f"{what}: the container's process did not answer in time") from None


def send(sock, kind: str, value=None) -> None:
    sock.send(pickle.dumps((kind, value)))


def recv(sock) -> tuple:
    data = sock.recv(MSG)
    if not data:
        return ("eof", None)
    return pickle.loads(data)


def _payload(exc: BaseException) -> BaseException:
    """What a stage sends back for ``exc``: one of ours (a raw OSError as operation + path + errno,
    for create and exec alike), else the exception itself, else its text."""
    if isinstance(exc, OSError):
        from ..errors import from_oserror
        exc = from_oserror(exc, "set up the container's process", exc.filename)
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - anything unpicklable goes back as text
        import traceback
        return MiniContainerError("".join(traceback.format_exception_only(exc)).strip())


def _fail(sock, exc: BaseException) -> None:
    try:
        send(sock, "error", _payload(exc))
    except OSError:
        pass
    os._exit(1)


def _die_at(step: str) -> None:
    if os.environ.get("MINICONTAINER_OCI_TEST_DIE_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)


def lookup(args0: str, env) -> str:
    """The executable for ``args0`` in the container (PATH from the process's env, as runc)."""
    if "/" in args0:
        cands = [args0]
    else:
        path = next((e[5:] for e in env if e.startswith("PATH=")),
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        cands = [os.path.join(d or ".", args0) for d in path.split(":")]
    for c in cands:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    if "/" in args0 and os.path.exists(args0):
        raise ExecError(f'exec: "{args0}": permission denied', exit_code=126)
    if "/" in args0:
        raise ExecError(f'exec: "{args0}": stat {args0}: no such file or directory', exit_code=127)
    raise ExecError(f'exec: "{args0}": executable file not found in $PATH', exit_code=127)


def _reset_signals() -> None:
    # Python ignores SIGPIPE and SIGXFSZ; an ignored signal stays ignored across execve
    for s in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
        signal.signal(s, signal.SIG_DFL)


def preload(terminal: bool, hooks: bool, proc=None) -> None:
    """Import now what is needed after pivot_root or setns(mnt): from then on the host's Python
    library is out of reach, and a lazy import fails (ModuleNotFoundError inside the container)."""
    if proc is not None and not _has_home(proc):
        from .. import rootfs  # noqa: F401 - userdb reads /etc through rootfs.open_in_root
        from ..images import userdb  # noqa: F401
    if terminal:
        import fcntl, struct, termios  # noqa: F401,E401
        from .. import fdpass  # noqa: F401
    if hooks:
        import subprocess  # noqa: F401
        from . import hooks as _h  # noqa: F401
    _security.preload()


def _has_home(proc) -> bool:
    return any(e.startswith("HOME=") for e in proc.env)


def _environ(proc) -> dict:
    """process.env for execve, with HOME from the container's /etc/passwd when it names none: runc's
    rule (ctr's default spec has PATH only; a shell, git or pip wants a HOME). After pivot_root or
    setns(mnt): the passwd read is the container's, through userdb's untrusting reader."""
    env = dict(e.split("=", 1) if "=" in e else (e, "") for e in proc.env)
    if "HOME" not in env:
        from ..images.userdb import home_of
        env["HOME"] = home_of(proc.user.uid)
    return env


def _terminal(console_sock, size) -> None:
    """A pty inside the container (its devpts), the master to the caller over SCM_RIGHTS, the
    slave as our stdin/out/err and controlling terminal (runc's --console-socket)."""
    import fcntl
    import struct
    import termios
    from .. import fdpass
    master, slave = os.openpty()
    if size and size[0] and size[1]:
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    fdpass.send(console_sock, b"/dev/ptmx", [master])
    os.close(master)
    console_sock.close()
    name = os.ttyname(slave)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    return name


def _prepare_fds(preserve: int) -> None:
    """fds 0-2 and the caller's 3..3+N-1 go to the program; any other inherited fd is closed at exec."""
    for fd in range(3, 3 + preserve):
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else ():
        fd = int(name)
        if fd >= 3 + preserve:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass


# --- create ------------------------------------------------------------------------------------------

def _fork_announced(sock, stage, *args) -> int:
    """Fork the next stage (a new PID namespace applies to children only) and tell the runtime its
    pid *before* it runs: the child waits on a pipe, so the runtime knows whom to kill or wait for
    even if the child fails at its first step. Returns the child's pid; the child never returns."""
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(w)
        if os.read(r, 1) != b"g":
            os._exit(1)
        os.close(r)
        stage(*args)                 # never returns
        os._exit(1)
    os.close(r)
    send(sock, "pid", pid)
    os.write(w, b"g")
    os.close(w)
    return pid


def _sc():
    from .. import syscalls
    return syscalls


def create_stage1(ctx, sock) -> None:
    """C. Never returns."""
    try:
        sc = _sc()
        sc.set_dumpable(False)        # /proc/<pid>/exe is the host's python: not for the container
        from .. import namespaces
        # What the container's process imports later, now: after unshare(CLONE_NEWUSER) we are the
        # mapped uid on the host, and a checkout only root may enter (a 0700 home) is out of reach.
        # Before the "go", not after it: the runtime is writing our pid into cgroup.procs meanwhile
        # (on v1 the first write waits for an RCU grace period, ~6 ms here), so the two overlap
        # instead of adding up (bench/README.md). Imports charge a few pages to the caller's cgroup
        # instead of the container's; runc's nsexec runs before the join too. The hooks' modules
        # (subprocess) only when the config has hooks.
        from . import hooks, mounts  # noqa: F401
        preload(ctx.spec.process.terminal, any(ctx.spec.hooks.values()), ctx.spec.process)
        if recv(sock)[0] != "go":
            os._exit(1)
        _die_at("child-go")
        lin = ctx.spec.linux
        joined = {ns.type: ns.path for ns in lin.namespaces if ns.path}
        fds = []
        for kind in namespaces.ENTER_ORDER:
            if kind in joined:
                fds.append((os.open(joined[kind], os.O_RDONLY | os.O_CLOEXEC), kind, joined[kind]))
        for fd, kind, path in fds:
            sc.setns(fd, sc.NAMESPACE_FLAGS[kind], path=path)
            os.close(fd)
        new = {ns.type for ns in lin.namespaces if not ns.path}
        if "user" in new:
            sc.unshare(sc.CLONE_NEWUSER)
            send(sock, "maps", os.getpid())
            if recv(sock)[0] != "go":
                os._exit(1)
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
            sc.set_dumpable(False)
        flags = 0
        for kind in new - {"user"}:
            flags |= sc.NAMESPACE_FLAGS[kind]
        if flags:
            sc.unshare(flags)
        _fork_announced(sock, create_stage2, ctx, sock, "user" in new, "cgroup" in new, "mnt" in new)
        os._exit(0)
    except BaseException as exc:  # noqa: BLE001 - reported to the runtime
        _fail(sock, exc)


def create_stage2(ctx, sock, userns: bool, cgroupns: bool, mntns: bool) -> None:
    """G: the container's process. Never returns."""
    from . import hooks, mounts
    spec, proc = ctx.spec, ctx.spec.process
    try:
        sc = _sc()
        sc.set_pdeathsig(0)
        os.setsid()
        _die_at("child-mounts")
        root = None
        if mntns:
            root = mounts.prepare(spec, ctx.bundle, ctx.cgroup, userns=userns, new_cgroupns=cgroupns,
                                  terminal=proc.terminal)
        if spec.hooks.get("prestart") or spec.hooks.get("createRuntime"):
            send(sock, "hooks", None)
            if recv(sock)[0] != "go":
                os._exit(1)
        if spec.hooks.get("createContainer"):
            hooks.run("createContainer", spec.hooks["createContainer"], ctx.state)
        preload(proc.terminal, bool(spec.hooks.get("startContainer")))
        if mntns:
            mounts.enter(root, no_pivot=ctx.no_pivot, readonly=spec.root_readonly,
                         propagation=spec.linux.rootfs_propagation)
        else:
            os.chroot(spec.root_path)
            os.chdir("/")
        if spec.hostname:
            sc.sethostname(spec.hostname)
        if spec.domainname:
            sc.setdomainname(spec.domainname)
        if spec.linux.sysctl and not mntns:
            mounts.sysctl(spec.linux.sysctl)
        if proc.terminal:
            name = _terminal(ctx.console, proc.console_size)
            if mntns:
                mounts.console(name)
        os.makedirs(proc.cwd, 0o755, exist_ok=True)
        _chdir(proc.cwd)
        exe = lookup(proc.args[0], proc.env)
        _prepare_fds(ctx.preserve_fds)
        env = _environ(proc)
        send(sock, "ready", None)
        sock.close()
    except BaseException as exc:  # noqa: BLE001 - reported to the runtime
        _fail(sock, exc)
    # From here on nobody listens: errors go to the container's stderr, as runc's do.
    try:
        try:                                                        # blocks until `start`
            fd = os.open(f"/proc/self/fd/{ctx.fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError:                                   # no /proc in the container
            fd = os.open("exec.fifo", os.O_WRONLY | os.O_CLOEXEC, dir_fd=ctx.dir_fd)
        os.write(fd, b"0")
        os.close(fd)
        os.close(ctx.fifo_fd)
        os.close(ctx.dir_fd)
        if spec.hooks.get("startContainer"):
            hooks.run("startContainer", spec.hooks["startContainer"], ctx.state)
        _security.apply(ctx.prepared)
        _reset_signals()
        os.execve(exe, list(proc.args), env)
    except BaseException as exc:  # noqa: BLE001
        code = getattr(exc, "exit_code", 1)
        if isinstance(exc, OSError):
            code = 127 if exc.errno == 2 else 126
        os.write(2, f"minicontainer-oci: exec failed: {exc}\n".encode())
        os._exit(code if code != 125 else 1)


# --- exec ----------------------------------------------------------------------------------------
# One exec for every caller: ``minicontainer-oci exec`` (podman exec, ctr task exec) and the engine's
# ``minicontainer exec`` (runtime/exec.py), which calls oci/exec.run in-process.

def exec_stage1(ctx, sock) -> None:
    """C of ``exec``: joins the container's namespaces (those that differ from ours), enters the
    working directory and takes the process's confinement, then forks G into the PID namespace.

    Confined *before* that fork, not in G as runc's init does: once G exists it is visible in the
    container's PID namespace while it is still the host's interpreter, and a process in there
    with CAP_SYS_PTRACE (``--cap-add``, ``--privileged``) could attach to it before it confined
    itself (CVE-2019-5736's pattern); non-dumpable alone does not stop a capable tracer. C only
    forks and waits afterwards: nothing the seccomp filter denies. AppArmor's exec transition is
    written first, through the host's /proc: C never enters the PID namespace, so the container's
    /proc has no /proc/self for it (the kernel keeps the transition across the fork until G's
    execve)."""
    try:
        sc = _sc()
        sc.set_dumpable(False)
        proc, prepared = ctx.process, ctx.prepared
        preload(proc.terminal, False, proc)
        if recv(sock)[0] != "go":
            os._exit(1)
        from .. import namespaces
        kinds = [k for k in namespaces.KINDS if _differs(ctx.pid, k)]
        aa = prepared.apparmor_profile
        if aa and aa != "unconfined":
            from ..security.apparmor import change_onexec
            change_onexec(aa)
            prepared.apparmor_profile = ""           # written: apply writes nothing more
        # the user namespace last: as host root we may join the others whichever user namespace
        # owns them (the engine's --userns=remap container: its mnt and pid are the host's user
        # namespace's), and after it we are root only in there
        # (opened first: once in its mount namespace, /proc is the container's and has no ctx.pid)
        userns = os.open(f"/proc/{ctx.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC) if "user" in kinds else -1
        namespaces.enter(ctx.pid, [k for k in kinds if k != "user"])
        if userns >= 0:
            sc.setns(userns, sc.CLONE_NEWUSER, path="the container's user namespace")
            os.close(userns)
        _chdir(proc.cwd)
        _security.apply(prepared)
        pid = _fork_announced(sock, exec_stage2, ctx, sock)
        sock.close()
        if ctx.detach:
            os._exit(0)
        _reset_signals()
        os._exit(exit_code(os.waitpid(pid, 0)[1]))
    except BaseException as exc:  # noqa: BLE001
        _fail(sock, exc)


def _differs(pid: int, kind: str) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}") != os.readlink(f"/proc/self/ns/{kind}")
    except FileNotFoundError:
        return False


def exec_stage2(ctx, sock) -> None:
    """G of ``exec``, in the container's PID namespace and already confined (exec_stage1): its
    stdio, a terminal if asked, the program looked up in the container's PATH, execve."""
    proc = ctx.process
    try:
        sc = _sc()
        sc.set_pdeathsig(0)
        for i, fd in enumerate(ctx.stdio or ()):
            if fd is not None:
                os.dup2(fd, i)
        if proc.terminal:
            os.setsid()
            _terminal(ctx.console, proc.console_size)
        exe = lookup(proc.args[0], proc.env)
        _prepare_fds(ctx.preserve_fds)
        env = _environ(proc)
        send(sock, "ready", None)
        sock.close()
        _reset_signals()
        os.execve(exe, list(proc.args), env)
    except BaseException as exc:  # noqa: BLE001
        try:
            send(sock, "error", _payload(exc))
        except OSError:
            os.write(2, f"minicontainer-oci: exec failed: {exc}\n".encode())
        code = 127 if isinstance(exc, FileNotFoundError) else getattr(exc, "exit_code", 1)
        os._exit(code if code != 125 else 1)
