"""``exec``: a new process in a running container (notebook 06; docker's ``exec``).

The engine's half only: which container (a running one, not paused), and what to run there in the
OCI runtime's words — a ``process`` (docker's rules: the container's environment plus ``-e``, its
working directory unless ``-w``, its user — ``-u`` of its run, else the image's ``User`` — unless
``exec -u``) and the container's confinement (confine.py) with that user resolved to numbers in
the container's own /etc (through ``/proc/PID/root``, with userdb's reader that follows no
symlink). Then the OCI runtime runs it, in-process (oci/exec.py ``run``): the same code that
``minicontainer-oci exec`` runs for podman and containerd — it joins the cgroup and every namespace
of PID 1 that differs from ours, confines, forks into the PID namespace and execs, with docker's
126/127 for a command that cannot be run or found. Rejected: the engine's own copy of those steps
(it was one until issue 15; two copies of the same security-critical steps drift apart).
"""

from __future__ import annotations

from ..errors import ConfigError, ConflictError, ExecError
from .lifecycle import running
from .config import ContainerConfig


def exec_in(ref: str, argv: list[str], *, env=(), workdir: str | None = None, stdio=(None, None, None),
            tty: bool = False, on_started=None, user: str | None = None, pty=None) -> int:
    """Run ``argv`` in the running container ``ref``; its docker exit code. ``stdio``: its fds 0-2
    (default: ours); ``pty`` (``-t``): the terminal is opened inside the container (its own
    /dev/ptmx) and ``pty(master)`` gets its master, then ``on_started()`` is called."""
    from ..cgroups import Cgroup
    from ..oci import exec as oci_exec
    from ..oci.spec import Process, User
    from . import confine
    rec = running(ref)
    # docker: the container's user (-u of its run, else the image's User)
    user = user if user is not None else (rec["config"].get("user") or rec.get("image_user"))
    if user is not None:
        from ..images.userdb import parse_spec
        parse_spec(user)                  # a bad -u is an error here, before anything is forked
    for e in env:                         # run's rule (config.py): before anything is forked
        if "=" not in e or e.startswith("="):
            raise ConfigError(f"invalid environment variable {e!r}", hint="use -e KEY=VALUE")
    wd = workdir or rec["workdir"]
    if not isinstance(wd, str) or not wd.startswith("/"):
        raise ConfigError(f"exec -w {wd!r}: not an absolute path", hint="give the working directory as /PATH")
    cg = Cgroup.open(rec["cgroup"])
    # A frozen group freezes whatever joins it: the child would hang in D state at its first
    # instruction, holding the caller forever. Docker refuses the same way (exit 125). The group's
    # own state is asked too: a pause by hand (or by another runtime) leaves the record "running".
    if rec["status"] == "paused" or cg.frozen:
        raise ConflictError(f"exec in container {rec['name'] or rec['id'][:12]}: container is paused",
                            hint="unpause it first (`minicontainer unpause`)")
    security, _ = confine.prepared(ContainerConfig.from_dict(rec["config"]))
    envd = dict(e.split("=", 1) for e in rec["env"])
    envd.update(e.split("=", 1) for e in env)
    prepared = confine.in_container(security, user, envd, root=f"/proc/{rec['pid']}/root")
    proc = Process(args=tuple(argv), env=tuple(f"{k}={v}" for k, v in envd.items()), cwd=wd,
                   terminal=pty is not None,
                   user=User(uid=prepared.uid, gid=prepared.gid, additional_gids=tuple(prepared.groups)))
    console = on_ready = None
    if pty is not None:
        import socket
        console, back = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

        def on_ready():
            from .. import fdpass
            try:
                _, fds = fdpass.recv(back, 16, 1)
            finally:
                back.close()
            if not fds:
                raise ExecError("exec: the process's terminal did not arrive", exit_code=125)
            pty(fds[0])
            if on_started:
                on_started()
    elif on_started:
        on_ready = on_started
    try:
        return oci_exec.run(rec["pid"], cg, proc, prepared, console=console, on_ready=on_ready, stdio=stdio)
    finally:
        if pty is not None and back.fileno() >= 0:
            back.close()
