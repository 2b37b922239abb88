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
working directory, umask and environment, runs the same ``cli.execute(argv)`` the command would have run,
and exits. The server sends the worker's wait status back; the command exits with that code, or kills
itself with the same signal. Signals the command receives (Ctrl-C, SIGTERM) are forwarded to the
worker. A command that dies makes the server SIGKILL its worker, as if the runtime itself had died:
the container follows through its parent-death signal, and ``gc`` cleans up — as without a server.

The *spare*: one worker is forked before any request, and parks the next container's first
processes (``runtime.parked.park_spare``: a fresh id, layer and cgroup; namespaces made, cgroup
joined, overlay and /proc mounted). A foreground ``run`` of that image with a network namespace of
its own takes it: the slow cgroup join (an RCU grace period, 7–16 ms here) was paid before the
request. Anything else gets a plain worker, and an unused spare is discarded (all of it removed). A
new spare is made only when no command runs: its cgroup write would slow every fork meanwhile. The
worker answers the command itself before it cleans up; the command acknowledges (below).

The command silently runs in-process instead when no server listens, when it is not root, when it
asks for a terminal (``-t``: the pty relay stays local), when it is not the server's twin (other
capabilities, namespaces or root: it must not get more than it could do itself — intake.py), when its ``MINICONTAINER_*`` settings differ
from the server's (some are read once, at import: the cgroup parent, the bridge), or when the package
changed on disk since the server started (the server then exits; the next ``serve`` runs new code).

Rejected alternatives: running commands in threads of one process (a crash or a ``setns`` in one
would hit all; the runtime forks and joins namespaces per process), and exec'ing a fresh interpreter
per request (that is the cost we are avoiding). Only root may connect: the socket is 0600 in the
state root, and the server checks the peer's uid (SO_PEERCRED) as well. Requests are read without
blocking the loop, with a size limit and a deadline (intake.py): a slow client delays no one.

The command's side — the launcher that starts without ``site``, and the protocol (``MC1`` request
with fds 0, 1, 2 attached; ``W``/``F``/``E`` answer; ``A`` acknowledgement) — is in client.py.
"""

from __future__ import annotations

import os

from . import paths
from .commands import VERB_NAMES, parse_request, request
from .intake import Pending as _Pending
from .pkgwatch import PackageWatch as _PackageWatch
from .worker import fork as _fork, foreground_run as _foreground_run, leave_server as _leave_server, \
    spare as _spare, worker as _worker

#: settings read per call, so they may differ between the command and the server
_PER_CALL = ("MINICONTAINER_DEBUG", "MINICONTAINER_TEST_DIE_AT", "MINICONTAINER_NO_SERVER")


def _settings(env) -> dict:
    return {k: v for k, v in env.items() if k.startswith("MINICONTAINER_") and k not in _PER_CALL}


# --- the server's side ---------------------------------------------------------------------------

def _preload(parser_for) -> None:
    """Import what any verb may need, once, before the first fork (that is the whole point)."""
    import argparse  # noqa: F401
    import json  # noqa: F401
    from . import rootfs, syscalls, namespaces, busybox, host  # noqa: F401
    from .cgroups import Cgroup, v1, v2  # noqa: F401
    from .images import ImageStore  # noqa: F401
    from .runtime import (container, exec, garbage, init, lifecycle, monitor, netattach,  # noqa: F401
                          parked, standard_init, start_path, state, teardown)
    for verb in (*VERB_NAMES, None):
        parser_for(verb)
    try:
        # pyroute2 itself, not only network/ (which imports it lazily: every worker of a bridge
        # container paid the import again, the largest part of a served bridge start)
        from .network import _pyroute2  # noqa: F401
    except ImportError:
        pass
    # Every fork shares these objects copy-on-write; a collection in a worker would walk them all
    # and copy the pages it touches (Instagram's gc.freeze for pre-fork servers).
    import gc
    gc.collect()
    gc.freeze()


class _Conn:
    def __init__(self, sock):
        self.sock = sock
        self.pid: int | None = None
        self.answered = False      # the command got its exit code (it acknowledges with "A")


class Server:
    """``minicontainer serve``: accept commands, fork a worker for each, report its wait status."""

    def __init__(self, execute, parser_for, path: str | None = None, idle: float = 0):
        self.execute, self.parser_for = execute, parser_for     # the command line's (worker.py)
        self.path = path or paths.server_socket()
        self.idle = idle
        self.served = 0
        self.workers: dict[int, _Conn] = {}
        self.conns: dict[int, _Conn] = {}
        self.listener = None
        self.watch: _PackageWatch | None = None
        self.stopping = False
        self.spare: tuple[int, object] | None = None     # (pid, socket) of the waiting spare worker
        self.pending: dict[int, object] = {}              # fd → intake.Pending: requests still arriving

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
        from .intake import server_facts
        self.facts = server_facts()       # what a caller must share with us to be served (intake.py)

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
        _preload(self.parser_for)
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
                if self.pending:
                    due = min(p.deadline for p in self.pending.values()) - time.monotonic()
                    timeout = max(0.0, due if timeout is None else min(timeout, due))
                events = sel.select(timeout)
                if not events and timeout is not None and not self.workers and not self.pending:
                    self._stop()                            # idle: nobody asked for a while
                self._expire()
                for key, _ in events:
                    last = time.monotonic()
                    if key.data == "accept":
                        self._accept()
                    elif isinstance(key.data, _Pending):
                        self._more(key.data)
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
            for p in list(self.pending.values()):
                p.close()
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
        """A new connection: who is it (now, while its pid is fresh), then read its request as it
        comes, never waiting for it here (intake.py)."""
        import selectors
        import socket
        import struct
        from .intake import MAX_PENDING, differs, say
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        try:
            _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                                  struct.calcsize("3i")))
        except OSError:
            return sock.close()
        if uid != 0:
            say(sock, b"Eonly root may use the minicontainer server\n")
            return sock.close()
        if len(self.pending) >= MAX_PENDING:
            say(sock, b"Fthe server is busy: %d requests are still arriving\n" % len(self.pending))
            return sock.close()
        p = _Pending(sock, differs(sock, self.facts))
        self.pending[sock.fileno()] = p
        self._sel.register(sock, selectors.EVENT_READ, p)
        self._more(p)             # the request is usually there already: no second trip round the loop

    def _more(self, p) -> None:
        """More of a pending request has arrived: once it is complete, answer or run it."""
        from .intake import Refused, say
        try:
            body = p.read()
        except Refused as exc:
            say(p.sock, b"E%s\n" % str(exc).encode(errors="replace"))
            return self._unpend(p, close=True)
        except OSError:
            return self._unpend(p, close=True)
        if body is None:
            return
        self._unpend(p, close=False)
        try:
            self._dispatch(p.sock, body, p.fds, p.why_not)
        finally:
            for fd in p.fds:
                os.close(fd)

    def _unpend(self, p, *, close: bool) -> None:
        if self.pending.pop(p.sock.fileno(), None) is not None:
            self._sel.unregister(p.sock)
        if close:
            p.close()

    def _expire(self) -> None:
        """Drop requests not complete in time (intake.REQUEST_TIMEOUT): a slow client holds nothing."""
        import time
        from .intake import REQUEST_TIMEOUT, say
        now = time.monotonic()
        for p in [p for p in self.pending.values() if p.deadline <= now]:
            say(p.sock, b"Ethe request did not arrive within %d s\n" % REQUEST_TIMEOUT)
            self._unpend(p, close=True)

    def _dispatch(self, sock, body: bytes, fds: list[int], why_not: str | None) -> None:
        import selectors
        from .intake import say
        try:
            kind, cwd, umask, argv, env = parse_request(body)
        except (ValueError, IndexError) as exc:
            say(sock, b"Ebad request: %s\n" % str(exc).encode(errors="replace"))
            return sock.close()
        if kind == b"status":
            say(sock, b"W0 pid=%d served=%d\n" % (os.getpid(), self.served))
            return sock.close()
        if kind == b"stop":
            if why_not:
                say(sock, b"Erefused: %s\n" % why_not.encode(errors="replace"))
            else:
                self._stop()
                say(sock, b"W0 pid=%d\n" % os.getpid())
            return sock.close()
        why = why_not or self._refuse(env)
        if why:
            say(sock, b"F" + why.encode(errors="replace") + b"\n")     # the command runs it itself
            return sock.close()
        sock.setblocking(True)
        conn = _Conn(sock)
        try:
            if self.spare is not None and _foreground_run(argv):
                try:
                    conn.pid = self._hand_to_spare(body, fds, sock)
                except OSError:          # e.g. EMSGSIZE, an environment too big for one message
                    self._drop_spare()
            if conn.pid is None:
                conn.pid = self._fork_worker(conn, fds, cwd, umask, argv, env)
        except OSError as exc:
            say(sock, b"Ecannot run the command: %s\n" % str(exc).encode(errors="replace"))
            return sock.close()
        self.served += 1
        self.workers[conn.pid] = conn
        self.conns[sock.fileno()] = conn
        self._sel.register(sock, selectors.EVENT_READ, conn)

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
            # too, the running command's included (bench/README.md).
            self._fork_spare()

    # -- the spare: a worker forked in advance, its container's first process already parked ------
    def _fork_spare(self) -> None:
        import socket
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)

        def spare() -> int:
            a.close()
            _leave_server(self)
            return _spare(b, self.execute, self.parser_for)
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


def serve(execute, parser_for, *, detach: bool = False, idle: float = 0) -> int:
    """``minicontainer serve [-d] [--idle SECONDS]``: run the server (in the background with -d).
    ``execute(argv)`` runs one command, ``parser_for(verb)`` builds a verb's parser (cli.py's).

    First a daemon closes every descriptor it inherited (≥ 3): a shell's ``exec 7</`` would
    otherwise live on in the server, in every worker it forks and so in every container a worker
    starts (``run -w /proc/self/fd/7`` read the host through it). Nothing of ours is open yet."""
    os.closerange(3, 1 << 20)           # one close_range(2)
    server = Server(execute, parser_for, idle=idle)
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
    if not reply.startswith("W"):          # e.g. a --stop from a caller that is not the server's twin
        from .errors import ContainerError
        raise ContainerError(f"the server on {path} answered: {reply[1:] or 'nothing'}",
                             hint="run it as the user, with the capabilities and namespaces, that started it")
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
