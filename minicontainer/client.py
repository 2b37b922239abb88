"""The ``minicontainer`` command's first milliseconds, and its way to a running server (notebook 06).

Most of a served ``minicontainer run`` is the command starting Python before it sends its first
byte: ``site`` (the venv's ``.pth`` files, the system's ``sitecustomize``), ``os`` (mostly
``collections.abc``), our own modules, and tearing the interpreter down again at exit (the split is
in bench/README.md). None of that is needed to forward a command. So the installed command is a
*launcher* (``install`` below writes it; ``make setup`` runs it):

    #!/…/.venv/bin/python -S                # no `site` at start
    import sys; sys.path.insert(0, "…")     # where the package is
    from minicontainer.client import main; main()

and this module imports only what is built into the interpreter (``posix``, ``_socket``,
``_signal``; not ``os``, ``socket`` or ``signal``, whose Python parts import ``enum`` and
``collections.abc``), and of ours the plain-data commands.py (the verb table, the request's format)
and fdpass.py. The launcher sits *above* the command line: when it runs a verb itself it imports
cli.py, which never imports this module (tests/unit/test_structure.py). When the command is served it leaves with ``posix._exit``: the server did
the work and wrote to our stdout and stderr itself. When it is not (no server, not root, ``-t``,
``MINICONTAINER_NO_SERVER``, the server says "run it yourself"), ``main`` loads ``site`` then —
the venv's packages become importable exactly as in a normal start — and runs the verb in-process
through :func:`minicontainer.cli.execute`. Rejected: a client in C or shell (the course is Python,
and ``sh`` → ``python`` costs an exec more); a ``python -S`` flag in ``[project.scripts]``
(pip rewrites a script's ``#!python`` line and drops its flags), so ``pip install`` alone gives
the ordinary, slower, equally correct script.

The protocol (the server's side is in server.py, the request's bytes in commands.py), one Unix
stream connection per command. Client →
server: ``MC1`` + 4-byte length + the NUL-separated request (kind, cwd, umask, argc, argv…,
environment…) with fds 0, 1, 2 attached (SCM_RIGHTS); later ``S<signal>\\n`` lines. Server →
client: one line, ``W<wait status>`` (done), ``F<reason>`` (run it yourself) or ``E<message>``
(refused); the command then acknowledges with ``A\\n``, so that a command that goes away *before*
its answer (killed) can be told from one that has it.
"""

import posix
import sys

from .commands import MAGIC, SERVED, request, socket_path  # noqa: F401 (MAGIC, request: for the tests)
#: signals the command forwards to its worker (docker run's --sig-proxy forwards these too)
FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
_FSENC = sys.getfilesystemencoding()


def main() -> None:
    """The installed command (the launcher's only call). Never returns."""
    argv = sys.argv[1:]
    env = {k.decode(_FSENC, "surrogateescape"): v.decode(_FSENC, "surrogateescape")
           for k, v in posix.environ.items()}
    code = served(argv, env)
    if code is not None:
        sys.stderr.flush()
        posix._exit(code)
    if sys.flags.no_site:
        import site             # what `python` without -S would have done at start
        site.main()
    from minicontainer.cli import execute
    code = execute(argv)
    if argv and argv[0] in QUICK_EXIT:
        leave(code)
    sys.exit(code)


#: verbs run in-process that leave without the interpreter's teardown (:func:`leave`): the ones on
#: the start path (issue 15's plain `run`, and create/start/rm), whose files are all closed by then
QUICK_EXIT = ("run", "create", "start", "rm")


def leave(code: int) -> None:
    """Exit with ``code`` as ``sys.exit`` would, but without the interpreter's teardown (freeing
    every module and object: a visible share of a plain ``run``, bench/README.md). What that
    teardown does that a caller could see is done here first: atexit's handlers, stdout and stderr
    flushed. Returns (the caller then uses ``sys.exit``) when that is not the whole story: a
    non-daemon thread still runs (the interpreter would wait for it), or a flush fails (the
    interpreter reports it and exits 120). Rejected: ``_exit`` for every verb (``serve`` and the
    image verbs hold threads, connections and files of their own)."""
    threading = sys.modules.get("threading")
    if threading is not None and any(not t.daemon for t in threading.enumerate()
                                     if t is not threading.main_thread()):
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    import atexit
    atexit._run_exitfuncs()          # clears them: a later sys.exit does not run them twice
    try:
        sys.stdout.flush()           # what a handler printed
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    posix._exit(code)


def wants_terminal(argv: list[str]) -> bool:
    """Does the command ask for a terminal (``-t``, ``-it``, ``--tty``)? Errs on the side of yes: a
    false yes only means running in-process."""
    return any(a == "--tty" or (a.startswith("-") and not a.startswith("--") and "t" in a[1:]
                                and a[1:].isalpha()) for a in argv)


def served(argv: list[str], env) -> "int | None":
    """Run the command through a running server and return its exit code; None when it is not for
    a server (no verb, ``serve`` itself, a terminal, ``MINICONTAINER_NO_SERVER``, not root) or no
    server listens: the caller then runs it itself."""
    if (not argv or argv[0] not in SERVED or env.get("MINICONTAINER_NO_SERVER")
            or wants_terminal(argv) or posix.geteuid() != 0):
        return None
    import _socket
    path = socket_path(env)
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        try:
            s.connect(path)
        except OSError:             # no socket, or a server that died without removing it: run here
            return None
        return converse(s, request(b"run", argv, env), path)
    finally:
        s.close()


def converse(s, req: bytes, path: str = "") -> "int | None":
    """Send the request with our stdio, relay signals until the answer, acknowledge it; the exit
    code, or None for "run it yourself". A worker killed by signal N makes us die of N too."""
    import _signal
    from . import fdpass
    try:
        fdpass.send(s, req, fdpass.stdio())
        sent = True
    except OSError:         # the server answered at once and hung up (busy): its answer is below
        sent = False

    def relay(signum, _frame):
        try:
            s.send(b"S%d\n" % signum)
        except OSError:
            pass
    old = {}
    for name in FORWARDED:
        n = getattr(_signal, name)
        old[n] = _signal.signal(n, relay)
    try:
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = s.recv(256)
            if not chunk:
                break
            reply += chunk
    finally:
        for n, h in old.items():
            _signal.signal(n, h)
    try:
        s.send(b"A\n")      # answered: our worker may go on cleaning up after we leave
    except OSError:
        pass
    line = reply.split(b"\n", 1)[0]        # the worker's answer; the server's own may follow it
    kind, text = line[:1], line[1:].strip().decode(errors="replace")
    if kind == b"F" or (not sent and not reply):     # nothing ran there: run it here
        return None
    if kind == b"W":
        status = int(text)
        if posix.WIFSIGNALED(status):
            sig = posix.WTERMSIG(status)
            sys.stdout.flush()
            _signal.signal(sig, _signal.SIG_DFL)
            posix.kill(posix.getpid(), sig)     # die as the runtime died: the shell sees the same
            return 128 + sig
        return posix.WEXITSTATUS(status)
    print(f"minicontainer: the server {'refused: ' + text if kind == b'E' else 'went away'} ({path})",
          file=sys.stderr)
    return 125


#: the commands that get a launcher: module whose main() runs, and what its -S means
LAUNCHED = {
    "minicontainer": ("minicontainer.client",
                      "-S: no `site` at start; the command loads it only to run a verb itself (see client.py)."),
    # runc's role: conmon and the shim run it three times per container (create, start, delete)
    "minicontainer-oci": ("minicontainer.oci.cli",
                          "-S: no `site`: the OCI runtime needs only the standard library and its package."),
}


def launcher_text(python: str, package_parent: str, command: str = "minicontainer") -> str:
    """The launcher's text: ``python -S``, the package's directory first on sys.path."""
    module, why = LAUNCHED[command]
    return (f"#!{python} -S\n"
            f"# {command}, written by `python -m minicontainer.client install` (make setup).\n"
            f"# {why}\n"
            "import sys\n"
            f"PACKAGE = {package_parent!r}\n"
            "sys.path.insert(0, PACKAGE)\n"
            "try:\n"
            f"    from {module} import main\n"
            "except (ImportError, OSError) as exc:  # a non-root user, a package only root can read (a venv in /root)\n"
            "    import posix\n"
            f"    sys.stderr.write('{command}: cannot import its package from %s as uid %d (%s): run it as root '\n"
            f"                     '(sudo {command} ...) or install it where this user can read it\\n'\n"
            "                     % (PACKAGE, posix.getuid(), exc))\n"
            "    sys.exit(126)\n"
            "main()\n")


def install(target: str) -> str:
    """Write the launcher to ``target`` (the command pip installed there is replaced), for this
    interpreter and this copy of the package; the command is the target's name (LAUNCHED).
    Returns what it did, for the installer's log."""
    import os
    python = os.path.abspath(sys.executable)   # the venv's python (not resolved: its pyvenv.cfg counts)
    parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    command = os.path.basename(target) if os.path.basename(target) in LAUNCHED else "minicontainer"
    line = f"#!{python} -S"
    # the kernel splits a #! line at the first blank and reads at most 255 bytes of it
    if any(c.isspace() for c in python) or len(line) > 255:
        return f"kept pip's {target}: {python} cannot stand in a #! line"
    tmp = f"{target}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(launcher_text(python, parent, command))
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)
    return f"wrote {target} ({line})"


if __name__ == "__main__":
    if sys.argv[1:2] != ["install"] or len(sys.argv) != 3:
        sys.exit("usage: python -m minicontainer.client install PATH")
    print(install(sys.argv[2]))
