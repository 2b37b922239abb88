"""File trees of the image store: a layer's content digest, its removal, its copy.

Apart from store.py because they work on any directory (a layer, a build's scratch root, a
pulled layer before it joins the store), not on the store's bookkeeping.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from ..errors import ImageError
from .overlay import OPAQUE_XATTR


def tree_digest(root: str | os.PathLike) -> str:
    """sha256 over a canonical walk of ``root``: paths, types, modes, owners, contents, link targets,
    device numbers and the overlay opaque xattr. mtimes are left out, so equal content → equal id."""
    import hashlib  # lazily: off the start path of `run`
    h = hashlib.sha256()
    root = os.fspath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted([*dirnames, *filenames]):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            h.update(f"{rel}\0{st.st_mode:o}\0{st.st_uid}\0{st.st_gid}\0".encode(errors="surrogateescape"))
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
            elif stat.S_ISLNK(st.st_mode):
                h.update(os.fsencode(os.readlink(p)))
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                h.update(f"{st.st_rdev}".encode())
            elif stat.S_ISDIR(st.st_mode):
                try:
                    h.update(os.getxattr(p, OPAQUE_XATTR, follow_symlinks=False))
                except OSError:
                    pass
            h.update(b"\n")
    return h.hexdigest()


def _rmtree(path: str | os.PathLike) -> None:
    """Remove a tree that may hold whiteouts and root-owned read-only dirs; a missing path is fine."""
    p = Path(path)
    if not os.path.lexists(p):
        return
    if p.is_symlink() or not p.is_dir():
        p.unlink()
        return

    def onerror(func, fpath, exc_info):
        try:
            os.chmod(os.path.dirname(fpath), 0o700)
            func(fpath)
        except OSError:
            pass
    shutil.rmtree(p, onerror=onerror)
    if p.exists():
        import subprocess  # lazily: off the start path of `run`
        subprocess.run(["rm", "-rf", "--one-file-system", "--", str(p)], check=False)


def copy_tree(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy a layer directory keeping owners, modes, whiteouts (char 0/0) and trusted.* xattrs:
    ``cp -a`` does all of that as root; shutil.copytree would try to *read* a whiteout device."""
    import subprocess  # lazily: off the start path of `run`
    r = subprocess.run(["cp", "-a", "--", f"{os.fspath(src)}/.", os.fspath(dst)],
                       capture_output=True, text=True)
    if r.returncode:
        raise ImageError(f"copy {src} → {dst}: {r.stderr.strip()}")
