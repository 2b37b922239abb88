"""The runtime's server, ``minicontainer serve`` (notebook 06; figures in bench/README.md).

Why it exists: a ``minicontainer`` command spends most of its start in Python, not in the kernel —
~9 ms to start the interpreter and ~25 ms importing argparse, json, pathlib, ctypes and the runtime
before the first syscall that makes a container. runc and crun are compiled and pay none of that.
Docker's answer is a daemon: the ``docker`` command only sends the request. This is the smallest
server that keeps every verb behaving exactly as without it — a *fork server*:

    minicontainer serve -d                    # once: imports everything, listens on a socket
    minicontainer run --rm busybox true       # finds the socket and forwards itself

For each request the server forks a *worker*, a copy of itself with everything imported. The worker
takes over the command's stdin, stdout and stderr (passed as file descriptors, SCM_RIGHTS), its
working directory, umask and environment, runs the same ``cli.main(argv)`` the command would have run,
and exits. The server sends the worker's wait status back; the command exits with that code, or kills
itself with the same signal. Signals the command receives (Ctrl-C, SIGTERM) are forwarded to the
worker. A command that dies makes the server SIGKILL its worker, as if the runtime itself had died:
the container follows through its parent-death signal, and ``gc`` cleans up — as without a server.

The *spare*: one worker is forked before any request, and parks the next container's first
processes (``runtime.process.park_spare``: a fresh id, layer and cgroup; namespaces made, cgroup
joined, overlay and /proc mounted). A foreground ``run`` of that image with a network namespace of
its own takes it: the slow cgroup join (an RCU grace period, 7–16 ms here) was paid before the
request. Anything else gets a plain worker, and an unused spare is discarded (all of it removed). A
new spare is made only when no command runs: its cgroup write would slow every fork meanwhile. The
worker answers the command itself before it cleans up; the command acknowledges (below).

The command silently runs in-process instead when no server listens, when it is not root, when it
asks for a terminal (``-t``: the pty relay stays local), when its ``MINICONTAINER_*`` settings differ
from the server's (some are read once, at import: the cgroup parent, the bridge), or when the package
changed on disk since the server started (the server then exits; the next ``serve`` runs new code).

Rejected alternatives: running commands in threads of one process (a crash or a ``setns`` in one
would hit all; the runtime forks and joins namespaces per process), and exec'ing a fresh interpreter
per request (that is the cost we are avoiding). Only root may connect: the socket is 0600 in the
state root, and the server checks the peer's uid (SO_PEERCRED) as well.

The command's side — the launcher that starts without ``site``, and the protocol (``MC1`` request
with fds 0, 1, 2 attached; ``W``/``F``/``E`` answer; ``A`` acknowledgement) — is in client.py.
"""

from __future__ import annotations

import os
import sys

from . import paths
from .client import MAGIC, VERBS, request

#: settings read per call, so they may differ between the command and the server
_PER_CALL = ("MINICONTAINER_DEBUG", "MINICONTAINER_TEST_DIE_AT", "MINICONTAINER_NO_SERVER")


def _settings(env) -> dict:
    return {k: v for k, v in env.items() if k.startswith("MINICONTAINER_") and k not in _PER_CALL}


# --- the server's side ---------------------------------------------------------------------------

def _preload() -> None:
    """Import what any verb may need, once, before the first fork (that is the whole point)."""
    import argparse  # noqa: F401
    import json  # noqa: F401
    from . import cli, rootfs, syscalls, namespaces, busybox, host  # noqa: F401
    from .cgroups import Cgroup, v1, v2  # noqa: F401
    from .images import ImageStore  # noqa: F401
    from .runtime import init, process, state  # noqa: F401
    for verb in (*VERBS, None):
        cli.parser_for(verb)
    try:
        from . import network  # noqa: F401  (pyroute2: ~60 ms to import; bridge is the default)
    except ImportError:
        pass
    # Every fork shares these objects copy-on-write; a collection in a worker would walk them all
    # and copy the pages it touches (Instagram's gc.freeze for pre-fork servers).
    import gc
    gc.collect()
    gc.freeze()


class _PackageWatch:
    """Has the package changed on disk since the server imported it? inotify on its directories
    (not __pycache__): asking costs one non-blocking read. Rejected: stat'ing every source file
    per request (~0.3 ms each time, what this replaced)."""

    def __init__(self, root: str | None = None) -> None:
        from . import syscalls as sc
        self.fd = sc.inotify_init()
        self.changed = False
        mask = sc.IN_MODIFY | sc.IN_ATTRIB | sc.IN_CREATE | sc.IN_DELETE | sc.IN_MOVED_FROM | sc.IN_MOVED_TO
        for d, dirs, _files in os.walk(root or os.path.dirname(os.path.abspath(__file__))):
            dirs[:] = [x for x in dirs if x != "__pycache__"]
            sc.inotify_add_watch(self.fd, d, mask)

    def stale(self) -> bool:
        from . import syscalls as sc
        while not self.changed:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            self.changed = any(name.endswith(".py") or (mask & sc.IN_ISDIR and name != "__pycache__")
                               for _wd, mask, name in sc.inotify_events(data))
        return self.changed

    def close(self) -> None:
        os.close(self.fd)


class _Conn:
    def __init__(self, sock):
        self.sock = sock
        self.pid: int | None = None
        self.answered = False      # the command got its exit code (it acknowledges with "A")


def _parse(body: bytes) -> tuple[bytes, str, int, list[str], dict]:
    fields = body.split(b"\0")
    kind, cwd, umask, argc = fields[0], os.fsdecode(fields[1]), int(fields[2]), int(fields[3])
    argv = [os.fsdecode(a) for a in fields[4:4 + argc]]
    env = {}
    for item in fields[4 + argc:]:
        k, _, v = item.partition(b"=")
        if k:
            env[os.fsdecode(k)] = os.fsdecode(v)
    return kind, cwd, umask, argv, env


def _read_request(sock) -> tuple[bytes, list[int]]:
    from . import fdpass
    fds: list[int] = []
    data = b""
    need = None
    while need is None or len(data) < need:
        msg, got = fdpass.recv(sock, 65536, 3)
        fds += got
        if not msg:
            raise ConnectionError("the command hung up mid-request")
        data += msg
        if need is None and len(data) >= 7:
            if data[:3] != MAGIC:
                raise ConnectionError("not a minicontainer request")
            need = 7 + int.from_bytes(data[3:7], "big")
    return data[7:need], fds


class Server:
    """``minicontainer serve``: accept commands, fork a worker for each, report its wait status."""

    def __init__(self, path: str | None = None, idle: float = 0):
        self.path = path or paths.server_socket()
        self.idle = idle
        self.served = 0
        self.workers: dict[int, _Conn] = {}
        self.conns: dict[int, _Conn] = {}
        self.listener = None
        self.watch: _PackageWatch | None = None
        self.stopping = False
        self.spare: tuple[int, object] | None = None     # (pid, socket) of the waiting spare worker

    # -- life --
    def bind(self) -> None:
        import socket
        from .errors import ConflictError, from_oserror
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        if _listens(self.path):
            raise ConflictError(f"a server already listens on {self.path}",
                                hint="stop it first: minicontainer serve --stop")
        remove_stale_socket(self.path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o077)                         # 0600 from the start: no window for others
        try:
            s.bind(self.path)
        except OSError as exc:
            s.close()
            raise from_oserror(exc, "bind", self.path) from exc
        finally:
            os.umask(old)
        s.listen(128)
        self.listener = s
        self.watch = _PackageWatch()
        self.settings = _settings(os.environ)

    def close(self) -> None:
        if self.watch is not None:
            self.watch.close()
            self.watch = None
        if self.listener is not None:
            self.listener.close()
            self.listener = None
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def serve_forever(self, ready=None) -> None:
        import selectors
        import signal
        import time
        _preload()
        sel = selectors.DefaultSelector()
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda *_: None)       # the wakeup fd tells the loop which one
        sel.register(self.listener, selectors.EVENT_READ, "accept")
        sel.register(wake_r, selectors.EVENT_READ, "signal")
        self._sel, self._wake = sel, (wake_r, wake_w)
        if ready:
            ready()
        last = time.monotonic()
        try:
            self._fork_spare()
            while not (self.stopping and not self.workers):
                timeout = None if not self.idle or self.stopping else \
                    max(0.0, self.idle - (time.monotonic() - last))
                events = sel.select(timeout)
                if not events and timeout is not None and not self.workers:
                    self._stop()                            # idle: nobody asked for a while
                for key, _ in events:
                    last = time.monotonic()
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "signal":
                        for b in os.read(wake_r, 512):
                            if b in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                                self._stop()
                        self._reap()
                    else:
                        self._from_client(key.data)
        finally:
            self.close()
            signal.set_wakeup_fd(-1)
            for c in list(self.conns.values()):
                c.sock.close()
            sel.close()
            os.close(wake_r)
            os.close(wake_w)

    def _stop(self) -> None:
        self.stopping = True
        self._drop_spare()
        if self.listener is not None:
            self._sel.unregister(self.listener)
            self.close()                              # no new commands; running ones finish

    # -- requests --
    def _accept(self) -> None:
        import socket
        import struct
        sock, _ = self.listener.accept()
        fds: list[int] = []
        try:
            sock.settimeout(5)
            pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                                 struct.calcsize("3i")))
            if uid != 0:
                sock.sendall(b"Eonly root may use the minicontainer server\n")
                return sock.close()
            body, fds = _read_request(sock)
            kind, cwd, umask, argv, env = _parse(body)
            if kind == b"stop":
                self._stop()
                sock.sendall(b"W0 pid=%d\n" % os.getpid())
                return sock.close()
            if kind == b"status":
                sock.sendall(b"W0 pid=%d served=%d\n" % (os.getpid(), self.served))
                return sock.close()
            why = self._refuse(env)
            if why:
                sock.sendall(b"F" + why.encode() + b"\n")
                return sock.close()
            sock.settimeout(None)
            conn = _Conn(sock)
            if self.spare is not None and _foreground_run(argv):
                try:
                    conn.pid = self._hand_to_spare(body, fds, sock)
                except OSError:          # e.g. EMSGSIZE, an environment too big for one message
                    self._drop_spare()
            if conn.pid is None:
                conn.pid = self._fork_worker(conn, fds, cwd, umask, argv, env)
            self.served += 1
            self.workers[conn.pid] = conn
            self.conns[sock.fileno()] = conn
            import selectors
            self._sel.register(sock, selectors.EVENT_READ, conn)
        except (OSError, ValueError, IndexError) as exc:
            try:
                sock.sendall(b"Ebad request: %s\n" % str(exc).encode(errors="replace"))
            except OSError:
                pass
            sock.close()
        finally:
            for fd in fds:
                os.close(fd)

    def _refuse(self, env: dict) -> str | None:
        if _settings(env) != self.settings:
            return "settings differ"       # MINICONTAINER_* read at import time would be wrong
        if self.watch.stale():
            self._stop()
            return "package changed on disk"
        return None

    def _from_client(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(256)
        except OSError:
            data = b""
        if b"A\n" in data:
            conn.answered = True
        if not data:                                  # the command died: so does its runtime
            if conn.pid in self.workers and not conn.answered:
                try:
                    os.kill(conn.pid, 9)
                except ProcessLookupError:
                    pass
            self._drop(conn)
            return
        for line in data.split(b"\n"):
            if line.startswith(b"S") and line[1:].isdigit() and conn.pid in self.workers:
                try:
                    os.kill(conn.pid, int(line[1:]))
                except ProcessLookupError:
                    pass

    def _drop(self, conn: _Conn) -> None:
        if self.conns.pop(conn.sock.fileno(), None) is not None:
            self._sel.unregister(conn.sock)
        conn.sock.close()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = self.workers.pop(pid, None)
            if self.spare is not None and pid == self.spare[0]:    # died waiting: another below
                self.spare[1].close()
                self.spare = None
            if conn is not None and conn.sock is not None and conn.sock.fileno() >= 0:
                try:
                    conn.sock.sendall(b"W%d\n" % status)
                except OSError:
                    pass
                self._drop(conn)
        if self.spare is None and not self.workers and not self.stopping:
            # Not while a command runs: parking writes cgroup.procs, and while that write waits for
            # its RCU grace period every fork on the host (cgroup_threadgroup_rwsem, read side) waits
            # too — it made the running command ~10 ms slower.
            self._fork_spare()

    # -- the spare: a worker forked in advance, its container's first process already parked ------
    def _fork_spare(self) -> None:
        import socket
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)

        def spare() -> int:
            a.close()
            _leave_server(self)
            return _spare(b)
        pid = _fork(spare)
        b.close()
        self.spare = (pid, a)

    def _hand_to_spare(self, body: bytes, fds: list[int], client) -> int:
        from . import fdpass
        pid, sock = self.spare
        fdpass.send(sock, body, [*fds[:3], client.fileno()])
        self.spare = None
        sock.close()
        return pid          # the next spare is made once no command runs (see _reap)

    def _drop_spare(self) -> None:
        if self.spare is not None:
            pid, sock = self.spare
            sock.close()                          # EOF: it discards its child and exits
            self.workers[pid] = _Conn(None)       # wait for it like a worker
            self.spare = None

    def _fork_worker(self, conn, fds, cwd, umask, argv, env) -> int:
        return _fork(lambda: _worker(self, conn, fds, cwd, umask, argv, env))


def _fork(run) -> int:
    """Fork a child that runs ``run()`` and exits with what it returns; a forked child never returns
    into the server's loop (an exception is printed, exit 125)."""
    pid = os.fork()
    if pid:
        return pid
    code = 125
    try:
        code = run()
    except BaseException:  # noqa: BLE001
        import traceback
        traceback.print_exc()
    finally:
        os._exit(code)


def _leave_server(server: Server) -> None:
    """In a forked worker: drop the server's signal handling and its sockets (else a `run -d`
    supervisor would hold other commands' connections open). The worker's own command is not
    registered yet when it is forked: it keeps that one, to answer on."""
    import signal
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.close(server._wake[0])
    os.close(server._wake[1])
    if server.listener is not None:
        server.listener.close()
    if server.watch is not None:
        server.watch.close()
    for c in server.conns.values():
        c.sock.close()
    if server.spare is not None:
        server.spare[1].close()


def _worker(server: Server, conn: _Conn, fds, cwd, umask, argv, env) -> int:
    """In the forked worker: become the command and run it."""
    _leave_server(server)
    code = _become(fds, cwd, umask, argv, env)
    _answer(conn.sock.fileno(), code)
    return code


def _answer(fd: int, code: int) -> None:
    """Tell the command its exit code ourselves, before exiting: the server's own answer comes only
    after our exit and its reaping (~1.5 ms later). If we die by a signal, the server's is the only one."""
    try:
        os.write(fd, b"W%d\n" % ((code & 0xFF) << 8))
    except OSError:
        pass


def _become(fds, cwd, umask, argv, env) -> int:
    """Take over the command's stdio, cwd, umask and environment; run it here; return its code."""
    for i, fd in enumerate(fds[:3]):
        os.dup2(fd, i)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.umask(umask)
    # Only what differs (a few variables: PWD, SHLVL, _…): clearing and refilling all ~35 cost
    # ~0.8 ms, each putenv/unsetenv touching a copy-on-write page of the forked server.
    cur = os.environ
    for k in [k for k in cur if k not in env]:
        del cur[k]
    for k, v in env.items():
        if cur.get(k) != v:
            cur[k] = v
    sys.argv = ["minicontainer", *argv]
    sys.stdin = open(0, "r", closefd=False)
    sys.stdout = open(1, "w", closefd=False)           # line-buffered when it is a terminal
    sys.stderr = open(2, "w", closefd=False, buffering=1, errors="backslashreplace")
    try:
        os.chdir(cwd)
    except OSError as exc:
        print(f"minicontainer: working directory {cwd}: {exc.strerror}", file=sys.stderr)
        return 125
    from .cli import execute
    try:
        code = execute(argv)
    except SystemExit as exc:                          # argparse: --help, usage errors
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        code = 130
    finally:
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except (OSError, ValueError):
                pass
    return code


def _warm_up() -> None:
    """While the spare waits: parse a `run` once. Parsing touches argparse's objects, and the first
    touch of each page after the fork copies it (the server's pages are shared copy-on-write):
    ~0.8 ms of the request's parsing, paid before the request instead."""
    from . import cli
    cli.parser_for("run").parse_args(["run", "--rm", "--network", "none", "-e", "A=1", "busybox", "true"])


def _spare(sock) -> int:
    """The spare worker: park the next container's first process (process.park: cgroup made and
    joined), wait for a request from the server, then run it like any worker. A `run` finds the
    parked child (process.set_parked); anything unused is removed before exiting."""
    from . import fdpass
    from .runtime import process
    try:
        child = process.park_spare()
    except Exception:                   # noqa: BLE001 — no cgroups here: the request runs as usual
        child = None
    _warm_up()
    try:
        body, fds = fdpass.recv(sock, 1 << 20, 4)
        sock.close()
        if not body:                    # the server stops
            return 0
        process.set_parked(child)
        child = None
        _kind, cwd, umask, argv, env = _parse(body)
        code = _become(fds[:3], cwd, umask, argv, env)
        _answer(fds[3], code)           # then clean up what the command did not use
        return code
    finally:
        if child is not None:
            child.discard()
        process.discard_parked()


#: options of `run` that take a value (the spare is only for a foreground `run`)
_RUN_VALUE_OPTS = {"--name", "--hostname", "-e", "--env", "-w", "--workdir", "-u", "--user", "--memory",
                   "--cpus", "--pids-limit", "--network", "-p", "--publish", "-v", "--volume"}


def _foreground_run(argv: list[str]) -> bool:
    """Is this `run` without -d? (A detached run starts its container from a supervisor process, which
    cannot use a child parked by another; guessing wrong only costs that parked child.)"""
    if not argv or argv[0] != "run":
        return False
    it = iter(argv[1:])
    for a in it:
        if a in ("-d", "--detach"):
            return False
        if a in _RUN_VALUE_OPTS:
            next(it, None)
        elif a.startswith("--"):
            continue
        elif a.startswith("-") and len(a) > 1:
            for ch in a[1:]:
                if ch == "d":
                    return False
                if ch in "ewupv":       # the rest of the cluster is that option's value
                    break
        else:
            return True                 # the image: the options end here
    return True


# --- the verb ------------------------------------------------------------------------------------

def serve(*, detach: bool = False, idle: float = 0) -> int:
    """``minicontainer serve [-d] [--idle SECONDS]``: run the server (in the background with -d)."""
    server = Server(idle=idle)
    server.bind()
    if not detach:
        print(f"minicontainer server listening on {server.path} (pid {os.getpid()})", flush=True)
        server.serve_forever()
        return 0
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setsid()
            if os.fork():
                os._exit(0)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.chdir("/")
            server.serve_forever(ready=lambda: (os.write(w, b"%d\n" % os.getpid()), os.close(w)))
        finally:
            os._exit(0)
    os.close(w)
    server.listener.close()          # the server's copy listens; ours must not unlink the socket
    server.listener = None
    os.waitpid(pid, 0)
    data = os.read(r, 64)
    os.close(r)
    if not data:
        from .errors import ContainerError
        raise ContainerError(f"the server did not start on {server.path}")
    print(f"minicontainer server listening on {server.path} (pid {int(data)})")
    return 0


def control(kind: str) -> str | None:
    """``serve --stop`` / ``serve --status``: ask the running server; None when none runs."""
    import socket
    import time
    path = paths.server_socket()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            s.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            return None
        s.sendall(request(kind.encode(), [], {}))
        reply = s.makefile("rb").readline().decode().strip()
    finally:
        s.close()
    # (not SO_PEERCRED: that names whoever bound the socket — the `serve -d` that forked the server)
    pid = int(reply.partition("pid=")[2].split()[0])
    if kind == "stop":               # wait until it has finished its running commands and exited
        deadline = time.monotonic() + 30
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.01)
        return f"stopped the server (pid {pid})"
    return f"listening on {path}, " + reply[1:].strip().removeprefix("0 ")


def _listens(path: str) -> bool:
    """Does a server answer on ``path``? (False: no socket, or a dead server's.)"""
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except (FileNotFoundError, ConnectionRefusedError):
        return False
    finally:
        s.close()


def remove_stale_socket(path: str | None = None) -> list[str]:
    """``gc`` (and ``serve``): remove a socket no server listens on any more (the server was killed)."""
    path = path or paths.server_socket()
    if not os.path.exists(path) or _listens(path):
        return []
    os.unlink(path)
    return [f"server socket {path} (no server)"]
