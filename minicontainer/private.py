"""Files the runtime writes are root's alone (issue 17 item 2; Docker's fix for CVE-2021-41091).

A container's record holds its ``-e DB_PASSWORD=…``; its writable layer (upperdir) holds whatever
the container wrote, setuid-root binaries and device nodes included. If another host user can reach
either, root in a container hands it to them: ``/var/lib/minicontainer/containers/<id>/upper/bin/sh``
made setuid by the container runs as root for uid 65534 on the host. So every directory the runtime
makes under its roots is 0700, every file 0600, and both roots are 0700 (a root made 0755 by an older
version is tightened the first time it is opened: nothing below it depends on those bits).

Why 0700 and not Docker's 0710: dockerd needs the group bit for a user-namespace-remapped root
that must traverse ``/var/lib/docker`` to its own rootfs. We have no remapped root: the kernel
resolves a container's paths from its new root (pivot_root), and overlayfs reaches upperdir and
lowerdirs with the credentials of whoever mounted it (root). Nothing else has to walk these paths.

Created with the mode, never chmod'ed after: between a create at 0644 and a chmod there is a window
in which another user opens the file and keeps the descriptor. The mode given to mkdir/open is also
masked by the umask — a served command's worker takes the command's umask — which can only take bits
away. Rejected: a global ``os.umask(0o077)`` at start (a worker must keep the caller's umask for the
files it writes on the caller's behalf: ``save -o``, ``export``).
"""

from __future__ import annotations

import os

_tightened: set[str] = set()


#: in a root whose old entries have been closed (:func:`tighten_root`); it holds the version of that
#: closing — absent or older means "not yet" (2: a layer's own ``layer.json`` and ``diff`` as well)
MARK = ".private"
_MARK_VERSION = b"2"


def tighten_root(path) -> None:
    """An existing root (``state_root()``, ``data_root()``, the OCI root) that others may enter is
    made 0700; once per process and root (a stat). What an older version left open below it is
    closed once per root (then :data:`MARK` says so): the root's entries and theirs (``names/*``,
    ``images/*.json``, ``containers/<id>``, ``layers/<id>``) and each layer's ``layer.json`` and
    ``diff`` directory itself — the runtime's own, never deeper, where a layer's or an upper dir's
    files are the image's and keep their modes."""
    p = os.fspath(path)
    if p in _tightened:
        return
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return
    if st.st_uid == os.geteuid():
        if st.st_mode & 0o077:
            os.chmod(p, 0o700)
        if not _marked(p):
            _close_entries(p, depth=2)
            _close_layers(os.path.join(p, "layers"))
            # in place, not write()'s temp file + rename: threads of one process (the server's)
            # would share that temp name; each writes the same bytes, and a reader that catches
            # the file empty only closes the entries once more
            fd = create(os.path.join(p, MARK))
            try:
                os.write(fd, _MARK_VERSION)
            finally:
                os.close(fd)
    _tightened.add(p)


def _marked(root: str) -> bool:
    try:
        with open(os.path.join(root, MARK), "rb") as f:
            return f.read().strip() == _MARK_VERSION
    except OSError:
        return False


def _close_layers(layers: str) -> None:
    """``layers/<id>/layer.json`` 0600 and ``layers/<id>/diff`` 0700, as the store makes them now
    (images/store.py add_layer_dir); the files inside ``diff`` are the image's."""
    try:
        ids = [e.path for e in os.scandir(layers) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for d in ids:
        for name, mode in (("layer.json", 0o600), ("diff", 0o700)):
            q = os.path.join(d, name)
            try:
                if not os.path.islink(q) and os.lstat(q).st_mode & 0o077:
                    os.chmod(q, mode)
            except OSError:
                continue


def _close_entries(d: str, depth: int) -> None:
    try:
        entries = list(os.scandir(d))
    except OSError:
        return
    for e in entries:
        try:
            if e.is_symlink():
                continue
            mode = e.stat(follow_symlinks=False).st_mode
            is_dir = e.is_dir(follow_symlinks=False)
            if mode & 0o077:
                os.chmod(e.path, 0o700 if is_dir else (mode & 0o700) | 0o600)
            if is_dir and depth > 1:
                _close_entries(e.path, depth - 1)
        except OSError:
            continue


def make_dir(path, *, root=None):
    """``mkdir -p`` with 0700 for every directory it creates at or below ``root`` (default: the state
    or data root ``path`` is in, else ``path`` itself); above it ordinary 0755 directories (e.g.
    ``/var/lib``). Returns ``path``. ``root`` is tightened if it existed (:func:`tighten_root`) — by
    default only our own roots: a directory a caller names (an OCI ``--root`` of containerd's) keeps
    its mode, as runc leaves it."""
    p = os.fspath(path)
    top = os.fspath(root) if root is not None else _root_of(p)
    ours = root is not None or top != p or p in _roots()
    try:
        os.mkdir(p, 0o700 if _below(p, top) else 0o755)
    except FileExistsError:
        if not os.path.isdir(p):
            raise
    except FileNotFoundError:
        parent = os.path.dirname(p.rstrip("/"))
        if not parent or parent == p:
            raise
        make_dir(parent, root=top)
        try:
            os.mkdir(p, 0o700 if _below(p, top) else 0o755)
        except FileExistsError:
            pass
    if ours:
        tighten_root(top)
    return path


def _roots() -> tuple[str, str]:
    from . import paths
    return paths._state_root(), paths._data_root()      # strings: no pathlib on the OCI runtime's path


def _root_of(p: str) -> str:
    for r in _roots():
        if _below(p, r):
            return r
    return p


def _below(p: str, top: str) -> bool:
    p, top = os.path.normpath(p), os.path.normpath(top)
    return p == top or p.startswith(top.rstrip("/") + "/")


def create(path, flags: int = os.O_WRONLY | os.O_TRUNC) -> int:
    """Open ``path`` for writing, created 0600 if missing, never through a symlink; the fd."""
    return os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


def write(path, data: str | bytes) -> None:
    """Replace ``path`` atomically (a 0600 temp file next to it, then rename): readers see the old
    content or the new, never half, and never a moment at another mode."""
    p = os.fspath(path)
    tmp = f"{os.path.dirname(p) or '.'}/.{os.path.basename(p)}.tmp{os.getpid()}"
    fd = create(tmp)
    try:
        with open(fd, "wb" if isinstance(data, bytes) else "w", closefd=True) as f:
            f.write(data)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def lock_file(path) -> int:
    """A lock file's fd (O_RDWR, created 0600)."""
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
