"""``-u NAME[:GROUP]`` and an image's ``User``, resolved in the image's /etc/passwd and /etc/group.

Docker's rules (runc's ``libcontainer/user.GetExecUser``):

* ``USER`` is a name or a number; ``GROUP`` (optional) a name or a number;
* a name must exist in /etc/passwd (else an error); a number need not (then gid 0, home ``/``);
* no ``GROUP``: the primary gid is the passwd entry's, and the *supplementary* groups are every
  /etc/group entry that lists the user's name; with ``GROUP``: that group only, no supplementary;
* ``HOME`` comes from the passwd entry when the environment has none.

The files are the container's, so nothing in them is trusted: /etc is reached with
:func:`minicontainer.rootfs.open_in_root` (no symlink followed on the way — after ``pivot_root`` the
root is the container's own, but called with another root, e.g. a layer directory from the host,
an image's ``/etc -> /host/etc`` must not lead out), the file itself is opened with ``O_NOFOLLOW``
and ``O_NONBLOCK`` (a FIFO planted as /etc/passwd must not hang the start), must be a regular file,
and at most ``MAX_BYTES`` are read.
"""

from __future__ import annotations

import os
import stat

from ..errors import ConfigError, ContainerError

MAX_BYTES = 4 << 20


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``www-data:adm`` → ("www-data", "adm"); refuses empty parts and more than one ``:``."""
    user, sep, group = spec.partition(":")
    # POSIX's portable name characters (ASCII only: '²'.isalnum() and '①'.isdigit() are True, and
    # int('²') raises late); a number must fit the kernel's id type without being (uid_t)-1
    ok = lambda s: s and s.isascii() and all(c.isalnum() or c in "._-$" for c in s)   # noqa: E731
    if not ok(user) or (sep and not ok(group)) or ":" in group:
        raise ConfigError(f"invalid user {spec!r}", hint="use -u USER[:GROUP] (names or numbers)")
    for part in (user, group if sep else ""):
        if part.isdigit() and int(part) >= 2**32 - 1:
            raise ConfigError(f"invalid user {spec!r}: id {part} is out of range",
                              hint="numeric ids go from 0 to 4294967294")
    return user, (group if sep else None)


def read_etc(root: str, name: str) -> list[list[str]]:
    """The ``:``-separated entries of ``root``/etc/``name``; [] if it is missing or not a regular file."""
    from ..rootfs import open_in_root
    try:
        dfd = open_in_root(root, "etc")
    except (OSError, Exception):  # noqa: BLE001 - missing, a symlink, not a directory: no entries
        return []
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    except OSError:
        return []
    finally:
        os.close(dfd)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return []
        data = f.read(MAX_BYTES)
    out = []
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line.split(":"))
    return out


def home_of(uid: int, root: str = "/") -> str:
    """``HOME`` for a process of ``uid`` whose environment has none: the passwd entry's directory,
    else ``/`` (runc's rule, which is where ``docker run busybox env``'s HOME=/root comes from).
    Never an error: a container that named no user does not fail over its /etc/passwd."""
    entry = next((e for e in read_etc(root, "passwd") if len(e) >= 7 and _num(e[2]) == uid), None)
    return (entry[5] or "/") if entry is not None else "/"


def _num(s: str) -> int | None:
    return int(s) if s.isascii() and s.isdigit() and int(s) < 2**32 - 1 else None


def resolve_user(spec: str, root: str = "/") -> tuple[int, int, list[int], str]:
    """(uid, gid, supplementary gids, home) for ``spec`` in the image at ``root``."""
    user, group = parse_spec(spec)
    passwd = [e for e in read_etc(root, "passwd") if len(e) >= 7]
    uid, gid, name, home = _num(user), 0, None, "/"
    entry = next((e for e in passwd if e[0] == user), None) if uid is None else \
        next((e for e in passwd if _num(e[2]) == uid), None)
    if entry is None and uid is None:
        raise ContainerError(f"unable to find user {user}: no matching entries in the image's /etc/passwd",
                             hint="use a numeric -u UID[:GID], or add the user to the image")
    if entry is not None:
        name, uid, home = entry[0], _num(entry[2]), entry[5] or "/"
        gid = _num(entry[3]) if _num(entry[3]) is not None else 0
        if uid is None:
            raise ContainerError(f"user {user}: bad uid {entry[2]!r} in the image's /etc/passwd")
    groups: list[int] = []
    gfile = [e for e in read_etc(root, "group") if len(e) >= 3] if (group or name) else []
    if group is not None:
        g = _num(group)
        if g is None:
            hit = next((e for e in gfile if e[0] == group and _num(e[2]) is not None), None)
            if hit is None:
                raise ContainerError(f"unable to find group {group}: no matching entries in the image's "
                                     "/etc/group", hint="use a numeric GID, or add the group to the image")
            g = _num(hit[2])
        gid = g
    elif name:
        for e in gfile:
            members = e[3].split(",") if len(e) > 3 and e[3] else []
            if name in members and _num(e[2]) is not None and _num(e[2]) not in groups:
                groups.append(_num(e[2]))
    return uid, gid, groups, home


def switch_user(spec: str, env: dict, root: str = "/") -> None:
    """In the container, before exec: setgroups, setgid, setuid (in that order: after setuid we could
    no longer drop groups) and HOME when the environment has none."""
    uid, gid, groups, home = resolve_user(spec, root)
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)
    env.setdefault("HOME", home)
