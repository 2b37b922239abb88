"""``--init``: a small static init from the host as the container's PID 1 (Docker's docker-init).

PID 1 of a PID namespace inherits every orphan and gets no default signal actions: a shell or a
server as PID 1 leaves zombies piling up and ignores ``stop``'s SIGTERM. An init in front of the
command fixes both: it forks the command, forwards signals to it, reaps every child that ends, and
exits with the command's status (128+N when signal N killed it). Notebook 06 builds one by hand.

The runtime runs Docker's: the host's ``tini-static`` (Debian's ``tini`` package; dockerd ships the
same program as ``docker-init``), bind-mounted read-only, nosuid and nodev at ``/sbin/docker-init``
in the container's own mount namespace (rootfs.py: the mount point is made in the container's
writable layer, symlink-safe; the mount dies with the container), and the container's process is
``/sbin/docker-init -- ARGV...`` — exec'd after the container's capabilities, seccomp filter and
user are applied, so they bind the init as they bind the command.

Rejected: our own init in Python (what ``--init`` was). PID 1 would be the host's interpreter,
*inside* the container's PID namespace for the container's whole life: its ``/proc/1/exe`` and
``/proc/1/map_files`` name the host's python, libpython and the package's files — the door runc's
CVE-2019-5736 went through to overwrite the runtime's binary from a container — and its memory holds
the runtime's code. A static binary maps nothing but itself, and that is a read-only bind of a file
the container cannot write. Rejected too: copying the binary into the container's layer (one copy
per container, and a copy the container can write).

``MC_INIT_BINARY`` names another static init (dockerd's ``--init-path``): read by the runtime
process that starts the container (a served command's own environment), never by the container.
"""

from __future__ import annotations

import os
import stat

from ..errors import ConfigError, NotFoundError

#: where the init appears inside the container (Docker's inits.ContainerInitPath)
CONTAINER_PATH = "/sbin/docker-init"
#: Debian's and Ubuntu's ``tini`` package
DEFAULT_BINARY = "/usr/bin/tini-static"
#: the override (dockerd's --init-path)
ENV = "MC_INIT_BINARY"


def host_binary(environ=None) -> str:
    """The host's init binary for ``--init``, resolved (the host's own symlinks, not a container's):
    ``$MC_INIT_BINARY`` or /usr/bin/tini-static. NotFoundError (exit 125) when it is missing."""
    env = os.environ if environ is None else environ
    given = env.get(ENV) or DEFAULT_BINARY
    how = (f"set {ENV} to a static init binary, or unset it to use {DEFAULT_BINARY}" if env.get(ENV)
           else "install Debian's tini package: `apt install tini` (`make setup` does)")
    if not os.path.isabs(given):
        raise ConfigError(f"--init: {ENV}={given!r} is not an absolute path", hint=how)
    path = os.path.realpath(given)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise NotFoundError(f"--init needs {given}: {exc.strerror.lower()}", hint=how) from None
    if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o111:
        raise ConfigError(f"--init needs {given}: not an executable file", hint=how)
    return path


def command(argv: list[str]) -> list[str]:
    """The container's process with ``--init``: Docker's exact shape."""
    return [CONTAINER_PATH, "--", *argv]


def oci_mount(host: str) -> dict:
    """The bind mount of the OCI spec (ocispec.py) for ``--init``."""
    return {"destination": CONTAINER_PATH, "type": "bind", "source": host,
            "options": ["bind", "ro", "nosuid", "nodev"]}
