"""The files the runtime writes for a container's /etc: ``hostname``, ``hosts``, ``resolv.conf``.

They live *outside* the container's root, in its state directory on the host
(``<state root>/<id>/hosts`` …), and are bind-mounted over ``/etc/hostname``, ``/etc/hosts`` and
``/etc/resolv.conf`` before pivot_root (rootfs.enter_root) — what Docker does with
``/var/lib/docker/containers/<id>/hosts``. Root in the container may still edit its /etc/hosts (as in
Docker), unmount it or put anything at that path of its root: that changes only its own view. When the
runtime rewrites a file later (the /etc/hosts refresh when a container joins or leaves the bridge,
network.refresh_hosts), it opens its own file in its own directory — never a path the container
controls.

Rejected (the first version, issue 17 item 1): a tmpfs copy inside the container, rewritten through
``/proc/<pid>/root/etc/hosts``. Every component of that path belongs to the container: one had
unmounted the copy and put a device node there (``mknod /etc/hosts c 1 3``), and the refresh — under
the host-wide network lock — read it to EOF and wrote into it; a block device would have been
overwritten, a FIFO would have blocked every start. ``O_NOFOLLOW`` stops symlinks, not device nodes;
checking the type through the opened fd still *opens* what the container chose (a FIFO blocks in open,
a tty changes state).

Modes: each file is 0644 — a non-root user in the container must read /etc/hosts — and unreachable to
other host users because the state directory above it is closed; the bind mount, not the path, is
how the container reaches it. A ``--userns=remap`` container's root is a subordinate id on the host:
its files get the group of that root and 0664, so root inside may edit them as in Docker (which
chowns them to the remapped root); the owner stays ours, so a refresh still finds its own file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from . import paths
from .errors import ContainerError, from_oserror

#: the first lines of every generated /etc/hosts (Docker's)
LOCALHOST = ("127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback")


def hosts_of_its_own(hostname: str) -> str:
    """/etc/hosts of a container without an address of its own (``--network none``): localhost and
    its name on 127.0.1.1, Debian's convention (``sudo``, ``hostname -f`` resolve it)."""
    return "\n".join((*LOCALHOST, f"127.0.1.1\t{hostname}")) + "\n"


#: container path -> file name in the container's state directory (Docker's names)
NAMES = {"/etc/hostname": "hostname", "/etc/hosts": "hosts", "/etc/resolv.conf": "resolv.conf"}


def directory(cid: str) -> Path:
    """The container's state directory (its record lives there too)."""
    return paths.state_root() / cid


def write(cid: str, files: dict[str, str], group: int | None = None) -> dict[str, str]:
    """Write each generated file (container path -> text) into the container's state directory;
    returns container path -> host path, for the bind mounts. ``group``: the host gid of a remapped
    container's root (its files become 0664 of that group)."""
    out = {}
    for target, text in files.items():
        if target not in NAMES:
            raise ContainerError(f"no generated file for {target}", hint="one of " + ", ".join(NAMES))
        p = directory(cid) / NAMES[target]
        _put(p, text, create=True, group=group)
        out[target] = str(p)
    return out


def rewrite(cid: str, target: str, text: str) -> bool:
    """Replace the text of a container's generated file *in place* (its bind mount holds the inode:
    a new file renamed over it would never reach the container). True when it changed; False when it
    was already ``text`` or there is no such file (the container is gone, or was started before this
    layout: nothing of the container's is opened instead)."""
    try:
        return _put(directory(cid) / NAMES[target], text, create=False)
    except FileNotFoundError:
        return False


def _put(path: Path, text: str, *, create: bool, group: int | None = None) -> bool:
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path, flags, 0o644)
    except FileNotFoundError:
        if create:
            raise from_oserror(FileNotFoundError(2, "No such file or directory"),
                               "write the container's generated file", path,
                               hint="its state directory is gone: was the container removed?") from None
        raise
    except OSError as exc:
        raise from_oserror(exc, "open the container's generated file", path) from exc
    try:
        st = os.fstat(fd)
        # our own directory, so a regular file of ours; anything else was not made by us: leave it
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            raise ContainerError(f"{path} is not a regular file of ours",
                                 hint="remove it; `minicontainer rm` and run the container again")
        gid = st.st_gid
        if group is not None and gid != group:
            os.fchown(fd, -1, group)
            gid = group
        want = 0o644 if gid == os.getegid() else 0o664     # 0664: a remapped root's group (above)
        if stat.S_IMODE(st.st_mode) != want:  # the umask of whoever ran us
            os.fchmod(fd, want)
        data = text.encode()
        if st.st_size == len(data) and os.pread(fd, len(data), 0) == data:
            return False
        os.pwrite(fd, data, 0)                 # then cut: a reader never sees an empty file
        os.ftruncate(fd, len(data))
        return True
    except OSError as exc:
        raise from_oserror(exc, "write the container's generated file", path) from exc
    finally:
        os.close(fd)
