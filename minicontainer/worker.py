"""What runs in a forked worker of ``minicontainer serve`` (server.py): it becomes the command.

A worker takes over the command's stdin, stdout and stderr (passed as file descriptors), its working
directory, umask and environment, runs the command line's ``execute`` — the very function the
command would have run by itself — answers the command with its exit code, and exits. The *spare*
is a worker forked before any request: it parks the next container's first processes
(runtime/parked.py) and then waits for a request like any worker.

The server hands the worker the command line's entry points (``execute``, ``parser_for``) instead
of this module importing cli.py: the command line starts the server (``minicontainer serve``), so
it sits above it (tests/unit/test_structure.py: no import circles).
"""

from __future__ import annotations

import os
import sys

from .commands import RUN_VALUE_FLAGS, RUN_VALUE_LETTERS, parse_request, parse_run


def fork(run) -> int:
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


def leave_server(server) -> None:
    """In a forked worker: drop the server's signal handling and its sockets (else a `run -d`
    monitor would hold other commands' connections open). The worker's own command is not
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
    for p in server.pending.values():     # requests still arriving, and the stdio they came with
        p.close()
    if server.spare is not None:
        server.spare[1].close()


def worker(server, conn, fds, cwd, umask, argv, env) -> int:
    """In the forked worker: become the command and run it."""
    leave_server(server)
    code = _become(server.execute, fds, cwd, umask, argv, env)
    _answer(conn.sock.fileno(), code)
    return code


def _answer(fd: int, code: int) -> None:
    """Tell the command its exit code ourselves, before exiting: the server's own answer comes only
    after our exit and its reaping (~1.5 ms later). If we die by a signal, the server's is the only one."""
    try:
        os.write(fd, b"W%d\n" % ((code & 0xFF) << 8))
    except OSError:
        pass


def _become(execute, fds, cwd, umask, argv, env) -> int:
    """Take over the command's stdio, cwd, umask and environment; run it here; return its code."""
    for i, fd in enumerate(fds[:3]):
        os.dup2(fd, i)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.umask(umask)
    # Only what differs (a few variables: PWD, SHLVL, _…). Rejected: clearing and refilling them
    # all — each putenv/unsetenv touches a copy-on-write page of the forked server.
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


def _warm_up(parser_for) -> None:
    """While the spare waits: parse a `run` once, as the request will be (commands.parse_run; argparse
    for a line it leaves to argparse). The first touch of each page after the fork copies it (the
    server's pages are shared copy-on-write): paid before the request instead."""
    line = ["--rm", "--network", "none", "-e", "A=1", "busybox", "true"]
    parse_run(line)
    parser_for("run").parse_args(["run", *line])


def spare(sock, execute, parser_for) -> int:
    """The spare worker: park the next container's first process (parked.park: cgroup made and
    joined), wait for a request from the server, then run it like any worker. A `run` finds the
    parked child (container.set_parked); anything unused is removed before exiting."""
    from . import fdpass
    from .runtime import container, parked
    try:
        child = parked.park_spare()
    except Exception:                   # noqa: BLE001 — no cgroups here: the request runs as usual
        child = None
    _warm_up(parser_for)
    try:
        body, fds = fdpass.recv(sock, 1 << 20, 4)
        sock.close()
        if not body:                    # the server stops
            return 0
        container.set_parked(child)
        child = None
        _kind, cwd, umask, argv, env = parse_request(body)
        code = _become(execute, fds[:3], cwd, umask, argv, env)
        _answer(fds[3], code)           # then clean up what the command did not use
        return code
    finally:
        if child is not None:
            child.discard()
        container.discard_parked()


def foreground_run(argv: list[str]) -> bool:
    """Is this `run` without -d? (A detached run starts its container from a monitor process, which
    cannot use a child parked by another; guessing wrong only costs that parked child.)"""
    if not argv or argv[0] != "run":
        return False
    values = parse_run(argv[1:])
    if values is not None:
        return not values["detach"]
    it = iter(argv[1:])                 # a line argparse will refuse or read its own way: a guess
    for a in it:
        if a in ("-d", "--detach"):
            return False
        if a in RUN_VALUE_FLAGS:
            next(it, None)
        elif a.startswith("--"):
            continue
        elif a.startswith("-") and len(a) > 1:
            for ch in a[1:]:
                if ch == "d":
                    return False
                if ch in RUN_VALUE_LETTERS:     # the rest of the cluster is that option's value
                    break
        else:
            return True                 # the image: the options end here
    return True


# --- the verb ------------------------------------------------------------------------------------

