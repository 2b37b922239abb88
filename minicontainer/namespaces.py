"""Namespaces: start a process in new ones, compare two processes', join a running one's.

Introduced by notebook 01 (``notebooks/01_namespaces.ipynb``); the runtime (notebook 06) uses
:func:`flags_for` and :func:`enter`, ``minicontainer exec`` uses :func:`enter`.

:func:`spawn` is ``unshare --fork`` as a library call. Its process tree::

    caller ──fork──▶ child: unshare(flags) ─[user: caller writes uid_map/gid_map]─▶
                       │   writes timens_offsets (time)
                       └─fork──▶ grandchild (only for pid/time: both apply to *children* only)
                                  = PID 1 of the new PID namespace; private mounts, /proc, hostname;
                                  then the target runs

Why a second fork and not ``clone(CLONE_NEWPID)``: ctypes cannot safely run Python on a fresh clone
stack, and ``unshare(CLONE_NEWPID)`` never moves the caller itself, only its next child (the same
holds for the time namespace). The middle process waits for the grandchild and exits with its status,
as ``unshare --fork`` does. Synchronisation is explicit: the child reports on a pipe ("user", "pid N",
or a pickled error), and the write end is close-on-exec, so end-of-file tells the caller that setup
finished and the target is running (or exec'd). No forked process ever returns into the caller's
code: every one ends in ``os._exit``.
"""
from __future__ import annotations

import errno
import os
# _signal, not signal (which imports enum); no `typing`: the annotations are strings (the
# __future__ import), and typing's import was the largest part of the OCI runtime's child before
# its unshare (bench/README.md)
import _signal as signal

from . import syscalls
from .errors import ConfigError, MiniContainerError, NamespaceError, NotFoundError, exit_code, from_oserror

KINDS = ("mnt", "uts", "ipc", "net", "pid", "user", "cgroup", "time")

# nsenter's order: user first (it grants the capabilities for the rest), mnt last (after it,
# /proc/<pid>/ns paths of the target may no longer resolve from our view).
ENTER_ORDER = ("user", "cgroup", "ipc", "uts", "net", "pid", "time", "mnt")

# Namespaces that apply to the caller's *children* only: spawn forks once more for them.
_CHILDREN_ONLY = {"pid", "time"}
_SETUP_TIMEOUT = 10.0


def flags_for(names: Iterable[str]) -> int:
    """Map namespace names ("uts", "pid", …) to CLONE_* bits; unknown name → ConfigError."""
    flags = 0
    for name in names:
        try:
            flags |= syscalls.NAMESPACE_FLAGS[name]
        except KeyError:
            raise ConfigError(f"unknown namespace {name!r}",
                              hint="choose from " + ", ".join(sorted(syscalls.NAMESPACE_FLAGS))) from None
    return flags


def ids(pid: int | str = "self") -> dict[str, str]:
    """``{"uts": "uts:[4026531838]", …}`` for ``pid``; a missing process → NotFoundError."""
    out = {}
    for name in KINDS:
        path = f"/proc/{pid}/ns/{name}"
        try:
            out[name] = os.readlink(path)
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}"):
                raise NotFoundError(f"readlink {path}: ENOENT", hint=f"no process with pid {pid}") from None
        except OSError as exc:
            raise from_oserror(exc, "readlink", path, cls=NamespaceError) from exc
    return out


def compare(pid_a: int | str, pid_b: int | str) -> dict[str, bool]:
    """Which namespaces two processes share: ``{"uts": False, "mnt": True, …}`` (True = shared).

    Two processes share a namespace exactly when ``/proc/<pid>/ns/<kind>`` names the same inode.
    """
    a, b = ids(pid_a), ids(pid_b)
    return {name: a[name] == b.get(name) for name in a}


def enter(pid: int, names: Iterable[str]) -> None:
    """setns into the namespaces ``names`` of ``pid`` (what nsenter / docker exec do).

    All fds are opened before the first setns: after joining mnt the target's /proc may differ.
    Joining pid moves only later children. user/mnt need a single-threaded caller (fork first).
    """
    wanted = set(names)
    flags_for(wanted)  # validates names
    fds = []
    try:
        for name in ENTER_ORDER:
            if name not in wanted:
                continue
            path = f"/proc/{pid}/ns/{name}"
            try:
                fds.append((os.open(path, os.O_RDONLY | os.O_CLOEXEC), name, path))
            except FileNotFoundError:
                raise NotFoundError(f"open {path}: ENOENT", hint=f"no process with pid {pid}") from None
            except OSError as exc:
                raise from_oserror(exc, "open", path, cls=NamespaceError) from exc
        for fd, name, path in fds:
            syscalls.setns(fd, syscalls.NAMESPACE_FLAGS[name], path=path)
    finally:
        for fd, _, _ in fds:
            os.close(fd)


def run_in(pid: int, names: Iterable[str], func: Callable[..., Any], *args, timeout: float = 30.0) -> Any:
    """Call ``func(*args)`` inside the namespaces ``names`` of ``pid`` and return its result.

    A forked child joins them (this process stays where it is); for "pid" it forks once more, because
    setns to a PID namespace only places the joiner's *children* in it — the same rule ``nsenter``
    and ``docker exec`` follow.
    """
    from .course import run_in_child

    wanted = list(names)
    flags_for(wanted)
    ids(pid)  # a missing pid → NotFoundError here, not in the child
    if "pid" in wanted:
        return run_in_child(run_in_child, func, *args, before=lambda: enter(pid, wanted), timeout=timeout)
    return run_in_child(func, *args, before=lambda: enter(pid, wanted), timeout=timeout)


def write_id_maps(pid: int, uid_map: str, gid_map: str, *, setgroups: str | None = "deny",
                  hint: str | None = None) -> None:
    """Write setgroups, uid_map and gid_map of ``pid`` (the parent does it while the child waits).

    ``setgroups="deny"`` is what an unprivileged writer needs (and what notebook 01 shows); a runtime
    writing as root leaves it out (``None``): the container may then call setgroups, as runc allows."""
    files = (("setgroups", setgroups),) if setgroups is not None else ()
    for fname, data in files + (("uid_map", uid_map), ("gid_map", gid_map)):
        path = f"/proc/{pid}/{fname}"
        try:
            with open(path, "w") as f:
                f.write(data if data.endswith("\n") else data + "\n")
        except FileNotFoundError:
            raise NotFoundError(f"write {path}: ENOENT", hint=f"no process with pid {pid}") from None
        except OSError as exc:
            why = hint or ("the kernel refused the map: each line is 'inside outside count', ranges must "
                           "not overlap, and a map can be written only once")
            raise from_oserror(exc, "write", path, cls=NamespaceError,
                               hint=why if exc.errno in (errno.EINVAL, errno.EPERM) or hint else None) from exc


def _check_map(what: str, text: str) -> str:
    lines = [ln.split() for ln in text.strip().splitlines()]
    if not lines or any(len(ln) != 3 or not all(x.isdigit() for x in ln) for ln in lines):
        raise ConfigError(f"{what} {text!r}: not 'inside outside count' lines",
                          hint="e.g. '0 100000 65536' maps uids 0-65535 inside to 100000-165535 outside")
    return text


# --- spawn ---------------------------------------------------------------------------------------

class Process:
    """A process spawned into new namespaces. ``pid`` is its pid *on the host* (it is 1 inside a
    new PID namespace). Use it as a context manager: leaving the block kills and reaps it."""

    def __init__(self, pid: int, namespaces: frozenset[str], reap: int):
        self.pid = pid
        self.namespaces = namespaces
        self._reap = reap                     # the process we wait for (the middle one, for pid/time)
        self.returncode: int | None = None

    def __repr__(self) -> str:
        return f"Process(pid={self.pid}, namespaces={sorted(self.namespaces)}, returncode={self.returncode})"

    def poll(self) -> int | None:
        if self.returncode is None:
            done, status = os.waitpid(self._reap, os.WNOHANG)
            if done:
                self.returncode = exit_code(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Exit code, docker's way: the code, or 128+N when killed by signal N."""
        if timeout is None:
            if self.returncode is None:
                self.returncode = exit_code(os.waitpid(self._reap, 0)[1])
            return self.returncode
        import time
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise NamespaceError("wait", str(self.pid), errno.ETIMEDOUT,
                                     hint=f"still running after {timeout} s; kill() it")
            time.sleep(0.01)
        return self.returncode

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def ids(self) -> dict[str, str]:
        return ids(self.pid)

    def __enter__(self) -> "Process":
        return self

    def __exit__(self, *exc) -> None:
        if self.poll() is None:
            self.kill()
            self.wait()


def _send(fd: int, kind: str, value: Any = None) -> None:
    import pickle
    data = pickle.dumps((kind, value))
    os.write(fd, len(data).to_bytes(4, "big") + data)


def _recv(fd: int, timeout: float) -> tuple[str, Any] | None:
    """One message, or None at end-of-file (every writer closed: setup is done)."""
    import pickle
    import select

    def exactly(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                raise NamespaceError("spawn", None, errno.ETIMEDOUT,
                                     hint=f"the child did not finish its setup within {timeout:.0f} s")
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                return buf
            buf += chunk
        return buf
    head = exactly(4)
    if not head:
        return None
    return pickle.loads(exactly(int.from_bytes(head, "big")))


def _error_payload(exc: BaseException) -> BaseException:
    import pickle
    import traceback
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - anything unpicklable goes back as text
        return MiniContainerError("".join(traceback.format_exception_only(exc)).strip())


def spawn(target: Callable[[], int | None] | Sequence[str], namespaces: Iterable[str], *,
          hostname: str | None = None, uid_map: str | None = None, gid_map: str | None = None,
          time_offsets: Mapping[str, float] | None = None, propagation: str | None = "private",
          mount_proc: bool = False) -> Process:
    """Start ``target`` in new ``namespaces`` and return once its setup is done.

    ``target`` is an argv list (exec'd) or a callable (its return value is the exit code).
    ``hostname`` needs "uts"; ``uid_map``/``gid_map`` ("inside outside count" lines, written by this
    process while the child waits; ``gid_map`` defaults to ``uid_map``) need "user", and the child
    then becomes the first mapped ids (root inside, say); ``time_offsets`` (``{"monotonic": s, "boottime": s}``)
    need "time"; ``mount_proc`` (a /proc of the new PID namespace, like ``unshare --mount-proc``) needs
    "mnt". With "mnt", mounts are made ``propagation`` first (recursively; "private" by default,
    "slave" keeps receiving the host's mounts, None leaves them shared — then the child's mounts
    appear on the host: notebook 01 shows it). Errors are raised here; no child is left behind.
    """
    wanted = frozenset(namespaces)
    flags = flags_for(wanted)
    if hostname is not None:
        if "uts" not in wanted:
            raise ConfigError("hostname needs a new uts namespace", hint="add 'uts', or you rename the host")
        if not 0 < len(hostname.encode()) <= 64:
            raise ConfigError(f"hostname {hostname!r}: must be 1-64 bytes")
    if (uid_map or gid_map) and "user" not in wanted:
        raise ConfigError("uid_map/gid_map need a new user namespace", hint="add 'user'")
    uid_map = _check_map("uid_map", uid_map) if uid_map else None
    gid_map = _check_map("gid_map", gid_map) if gid_map else uid_map
    offsets = dict(time_offsets or {})
    if offsets and "time" not in wanted:
        raise ConfigError("time_offsets need a new time namespace", hint="add 'time'")
    if set(offsets) - {"monotonic", "boottime"}:
        raise ConfigError(f"time_offsets {sorted(offsets)}: only 'monotonic' and 'boottime' can be offset",
                          hint="CLOCK_REALTIME is not namespaced")
    if mount_proc and "mnt" not in wanted:
        raise ConfigError("mount_proc needs a new mnt namespace", hint="add 'mnt', or you hide the host's /proc")
    if propagation not in (None, "private", "slave"):
        raise ConfigError(f"propagation {propagation!r}: choose 'private', 'slave' or None")
    if isinstance(target, (str, bytes)):
        raise ConfigError("target: pass an argv list such as ['sh', '-c', 'hostname'], not a string")

    rp, wp = os.pipe2(os.O_CLOEXEC)        # child → caller: messages; EOF = setup done
    rg, wg = os.pipe2(os.O_CLOEXEC)        # caller → child: "maps written, go on"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        ids_inside = (int(uid_map.split()[0]), int(gid_map.split()[0])) if uid_map else None
        _child(target, wanted, flags, rp, wp, rg, wg, hostname, offsets, propagation, mount_proc, ids_inside)
    os.close(wp)
    os.close(rg)
    proc = Process(pid, wanted, reap=pid)
    try:
        while (msg := _recv(rp, _SETUP_TIMEOUT)) is not None:
            kind, value = msg
            if kind == "user":
                if uid_map:
                    write_id_maps(pid, uid_map, gid_map)
                os.write(wg, b"g")
            elif kind == "pid":
                proc.pid = value
            elif kind == "error":
                raise value
    except BaseException:
        _kill_and_reap(pid)
        raise
    finally:
        os.close(rp)
        os.close(wg)
    return proc


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)      # the grandchild has pdeathsig SIGKILL: it goes too
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _child(target, wanted, flags, rp, wp, rg, wg, hostname, offsets, propagation, mount_proc, ids_inside):
    """The forked child: never returns."""
    code = 125
    try:
        os.close(rp)
        os.close(wg)
        syscalls.set_pdeathsig(signal.SIGKILL)
        syscalls.unshare(flags)
        if "user" in wanted:
            _send(wp, "user")
            if os.read(rg, 1) != b"g":          # the caller gave up: leave quietly
                os._exit(code)
        if offsets:
            # Written after unshare(CLONE_NEWTIME) and before any process enters the namespace.
            import math
            text = "".join(f"{clock} {math.floor(sec)} {round((sec - math.floor(sec)) * 1e9)}\n"
                           for clock, sec in offsets.items())
            try:
                with open("/proc/self/timens_offsets", "w") as f:
                    f.write(text)
            except OSError as exc:
                raise from_oserror(exc, "write", "/proc/self/timens_offsets", cls=NamespaceError) from exc
        if ids_inside:
            # The maps name ids; our credentials are still the host's (kuid 0, shown as the
            # overflow id 65534 inside). Become the first mapped id, e.g. root inside = 100000
            # outside. Changing credentials clears the parent-death signal and the dumpable flag
            # (which would leave /proc/self owned by the host's root): set both again. The time
            # offsets above were written first, while /proc/self was still ours.
            uid, gid = ids_inside
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            syscalls.set_pdeathsig(signal.SIGKILL)
            syscalls.set_dumpable(True)
        if wanted & _CHILDREN_ONLY:
            inner = os.fork()
            if inner:
                _send(wp, "pid", inner)
                os.close(wp)
                os.close(rg)
                code = exit_code(os.waitpid(inner, 0)[1])
                os._exit(code)
            syscalls.set_pdeathsig(signal.SIGKILL)
        _setup_and_run(target, wanted, wp, rg, hostname, propagation, mount_proc)
    except BaseException as exc:  # noqa: BLE001 - reported to the caller
        try:
            _send(wp, "error", _error_payload(exc))
        except OSError:
            pass
    finally:
        os._exit(code)


def _setup_and_run(target, wanted, wp, rg, hostname, propagation, mount_proc):
    code = 125
    try:
        if "mnt" in wanted and propagation:
            # rprivate: nothing we mount propagates to the host. runc's pivot uses rslave for the old
            # root instead, so that host unmounts still reach it and it can be detached cleanly.
            mode = syscalls.MS_PRIVATE if propagation == "private" else syscalls.MS_SLAVE
            syscalls.mount(None, "/", None, syscalls.MS_REC | mode)
        if mount_proc:
            syscalls.mount("proc", "/proc", "proc", syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC)
        if hostname is not None:
            syscalls.sethostname(hostname)
        os.close(rg)
        if callable(target):
            os.close(wp)                       # EOF: the caller's spawn() returns
            code = 1
            result = target()
            code = result if isinstance(result, int) else 0
        else:
            try:
                os.execvp(target[0], list(target))   # wp is close-on-exec: EOF on success
            except OSError as exc:
                from .errors import ExecError
                code = 127 if exc.errno == errno.ENOENT else 126
                _send(wp, "error", ExecError(f"exec {target[0]}: {errno.errorcode.get(exc.errno, exc.errno)}",
                                             exit_code=code, hint="is it installed and on PATH?"))
    except BaseException as exc:  # noqa: BLE001
        if code == 125:
            try:
                _send(wp, "error", _error_payload(exc))
            except OSError:
                pass
        else:
            import traceback
            traceback.print_exc()
    finally:
        os._exit(code)
