"""``exec``: a new process in a running container (notebook 06; docker's ``exec``, runc's
``exec``/``setns`` path). The process joins the container's cgroup first (so its limits hold
from the first instruction), then every namespace of PID 1 (ipc, uts, net, pid, mnt — not net for
``--network host``), forks once more so that the new PID namespace applies, and execs with the
container's environment, working directory and user (docker's rule; ``exec -u`` overrides it).
Nothing of the caller's open files follows it in (standard_init.close_inherited). Errors come back as one line on an O_CLOEXEC pipe,
with docker's 126/127 for a command that cannot be run or found. A ``--userns=remap`` container's
user namespace is joined last, after the mount and PID namespaces, which the host's user namespace
owns (userns.py): then the process is the container's root, a subordinate uid on the host.
"""

from __future__ import annotations

import errno
import os

from ..errors import ConflictError, ExecError, MiniContainerError, exit_code, from_oserror
from .lifecycle import running
from .config import ContainerConfig
from .standard_init import close_inherited


def exec_in(ref: str, argv: list[str], *, env=(), workdir: str | None = None, stdio=(None, None, None),
            tty: bool = False, on_started=None, user: str | None = None, pty=None) -> int:
    """Join every namespace and the cgroup of a running container and run ``argv`` there.

    The runtime makes itself non-dumpable first (PR_SET_DUMPABLE 0): runc's CVE-2019-5736 let a
    process in the container open /proc/<runtime>/exe and overwrite the runtime binary. ``pty``
    (``-t``): the terminal is opened inside the container (its /dev/ptmx, once the mount namespace is
    joined) and ``pty(master)`` gets its master (tty.py says why)."""
    from .. import syscalls as sc
    from ..cgroups import Cgroup
    from ..namespaces import enter
    rec = running(ref)
    if tty:
        from .tty import make_controlling   # before the fork: after setns the package is out of reach
    # docker: the container's user (-u of its run, else the image's User)
    user = user if user is not None else (rec["config"].get("user") or rec.get("image_user"))
    if user is not None:
        from ..images.userdb import parse_spec
        parse_spec(user)                  # a bad -u is an error here, before anything is forked
    cg = Cgroup.open(rec["cgroup"])
    # A frozen group freezes whatever joins it: the child would hang in D state at its first
    # instruction, holding the caller forever. Docker refuses the same way (exit 125). The group's
    # own state is asked too: a pause by hand (or by another runtime) leaves the record "running".
    if rec["status"] == "paused" or cg.frozen:
        raise ConflictError(f"exec in container {rec['name'] or rec['id'][:12]}: container is paused",
                            hint="unpause it first (`minicontainer unpause`)")
    from . import confine
    security, _ = confine.prepared(ContainerConfig.from_dict(rec["config"]))
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    if pty is not None:
        import socket
        pty_back, pty_send = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(err_r)
            if pty is not None:
                pty_back.close()
                from .. import fdpass            # now: after setns the package is out of reach
            sc.set_dumpable(False)
            confine.load_for_container()  # before setns: then the container's root is ours
            from ..security import apply
            aa = security.get("apparmor_profile")
            if aa and aa != "unconfined":
                # AppArmor's exec transition now, through the host's /proc: this process does not
                # enter the container's PID namespace (only its child below does), so the
                # container's /proc has no /proc/self for it. The kernel keeps the transition across
                # the fork until the child's execve; security.apply then writes nothing more.
                from ..security.apparmor import change_onexec
                change_onexec(aa)
            cg.add(os.getpid())
            names = ["ipc", "uts", "net", "pid", "mnt"]
            if rec["config"]["network"] == "host":
                names.remove("net")
            if rec["config"].get("cgroupns", "private") != "host":
                names.append("cgroup")        # after cg.add: the namespace's root is our group
            userns_fd = -1
            if rec.get("idmap"):          # now: after setns(mnt) /proc and the package are the container's
                from . import userns
                userns_fd = os.open(f"/proc/{rec['pid']}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
            enter(rec["pid"], names)
            if userns_fd >= 0:
                userns.enter(userns_fd)
                os.close(userns_fd)
            envd = dict(e.split("=", 1) for e in rec["env"])
            envd.update(e.split("=", 1) for e in env)
            wd = workdir or rec["workdir"]
            try:
                if not isinstance(wd, str) or not wd.startswith("/"):
                    raise OSError(errno.EINVAL, "not an absolute path")
                os.chdir(wd)
                os.getcwd()       # ENOENT: the path led outside the root (a magic link)
            except OSError as exc:
                raise from_oserror(exc, "chdir to working directory", wd) from exc
            # Confined *before* the fork that makes the process visible in the container's PID
            # namespace: the container's capabilities, seccomp filter, no_new_privs and user, and
            # non-dumpable (set above; setresuid keeps it off, the default suid_dumpable is 0), so
            # nothing in the container can ptrace it or open its /proc/PID/{exe,map_files} while it
            # is still the host's interpreter (CVE-2019-5736's pattern). The process that stays out
            # only waits: it needs nothing the filter denies.
            if pty is not None:
                master, slave = os.openpty()       # the container's /dev/ptmx: its mount namespace
                fdpass.send(pty_send, b"pty", [master])
                os.close(master)
                pty_send.close()
                stdio = (slave,) * 3
            confined = confine.in_container(security, user, envd)
            confined.apparmor_profile = ""           # written above
            apply(confined)
            if os.fork():
                _, status = os.waitpid(-1, 0)
                os._exit(exit_code(status))
            for i, fd in enumerate(stdio):
                if fd is not None:
                    os.dup2(fd, i)
            close_inherited(err_w)
            if tty:
                make_controlling(0)
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
                if isinstance(exc, MiniContainerError):
                    line = f"{exc.exit_code} {exc}"
                elif isinstance(exc, OSError):
                    line = "125 " + str(from_oserror(exc, "exec in container " + rec["name"]))
                else:
                    line = f"125 exec in container {rec['name']}: {type(exc).__name__}: {exc}"
                os.write(err_w, line.encode())
            finally:
                os._exit(125)
        finally:
            os._exit(125)
    os.close(err_w)
    if pty is not None:
        from .. import fdpass
        pty_send.close()
        try:
            _, fds = fdpass.recv(pty_back, 16, 1)    # none: the child failed first (its line says why)
        finally:
            pty_back.close()
        if fds:
            pty(fds[0])
    if on_started:
        on_started()
    _, status = os.waitpid(pid, 0)
    msg = os.read(err_r, 4096).decode(errors="replace")
    os.close(err_r)
    if msg:
        code, _, text = msg.partition(" ")
        raise ExecError(text, exit_code=int(code))
    return exit_code(status)

