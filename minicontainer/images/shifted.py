"""A layer's copy with its owners shifted into a user namespace's range (``--userns=remap``'s fallback).

Where the kernel refuses idmapped mounts for the store's file system, a remapped container's lower
layers are chowned copies instead (runtime/userns_layers.py decides and caches; Docker's overlay2
does the same with ``--userns-remap``). This module is the file work only: :func:`shift` maps one
id, :func:`copy_shifted` copies a tree. The rules:

* **owners**: on-disk id N becomes the range's host id for N (``uidMappings``/``gidMappings``, the
  kernel's ``inside outside count`` rule, :func:`shift`); an id the maps do not cover becomes
  :data:`NOBODY` (65534, the host's overflow id), which no remapped container maps either: inside it
  shows as 65534, as the same file does through an idmapped mount (the kernel's INVALID_UID), and root
  inside may not chown or write it — the same behaviour either way. POSIX ACLs' user and group
  entries are shifted by the same rule;
* **file capabilities** (``security.capability``) name the root they belong to: a v2 value (an
  image's, written on a host) is the host root's, honoured in every user namespace; a v3 value
  carries a ``rootid`` and is honoured only where that id is root (the namespace and those below
  it). The copy gets the v3 form with ``rootid`` = the range's host id for 0, a v3 value's rootid
  shifted like an owner: what an idmapped mount shows the same file as, so both ways give the
  container the same file capabilities (and a copy's ``ping`` is the range's, not the host's);
* **everything else is kept**: modes (setuid/setgid included: ``chown`` clears them, so the mode is
  set after the owner), every xattr (``trusted.overlay.opaque``, overlay's xattr whiteouts, file
  capabilities — which ``chown`` also drops, so they are set after it too), whiteouts (character
  devices 0/0, made again with ``mknod``), other device nodes, fifos, hard links (one inode, linked
  again), symlinks (``lchown``, never followed), mtimes;
* **nothing is followed**: every entry is ``lstat``'ed, files are opened ``O_NOFOLLOW``, a directory
  is entered only when ``lstat`` says it is one. The layer's content is the image author's; the
  tree's place (the store, root's 0700) is not.

Rejected: ``cp -a`` and a chown walk (trees.copy_tree + bench/userns.py's measurement) — two passes,
and the walk's ``chown`` would clear setuid bits and file capabilities that ``cp`` had kept.
"""

from __future__ import annotations

import os
import stat
import struct

from ..errors import ImageError, from_oserror

#: the owner of an id the maps do not cover (the kernel's default overflowuid/overflowgid)
NOBODY = 65534
_ACLS = ("system.posix_acl_access", "system.posix_acl_default")
_ACL_USER, _ACL_GROUP = 0x02, 0x08


def shift(n: int, mappings) -> int:
    """The host id of on-disk id ``n`` under OCI-shaped ``mappings`` (``containerID``, ``hostID``,
    ``size``): the first mapping whose range holds ``n``; :data:`NOBODY` when none does."""
    for m in mappings:
        start, size = m["containerID"], m["size"]
        if start <= n < start + size:
            return m["hostID"] + n - start
    return NOBODY


def shift_acl(value: bytes, uids, gids) -> bytes:
    """A ``system.posix_acl_*`` xattr with its ACL_USER and ACL_GROUP ids shifted (the others carry
    no id). A value of another shape is returned as it is (the kernel will judge it)."""
    if len(value) < 4 or (len(value) - 4) % 8:
        return value
    out = bytearray(value[:4])
    for off in range(4, len(value), 8):
        tag, perm, n = struct.unpack_from("<HHI", value, off)
        if tag == _ACL_USER:
            n = shift(n, uids)
        elif tag == _ACL_GROUP:
            n = shift(n, gids)
        out += struct.pack("<HHI", tag, perm, n)
    return bytes(out)


_FCAPS = "security.capability"
_VFS_CAP_REVISION_MASK, _VFS_CAP_REVISION_2, _VFS_CAP_REVISION_3 = 0xFF000000, 0x02000000, 0x03000000
_FCAPS_V2_SIZE, _FCAPS_V3_SIZE = 20, 24       # magic + 2 × (permitted, inheritable); v3: + rootid


def shift_fcaps(value: bytes, uids) -> bytes:
    """A ``security.capability`` xattr for the range: v2 → v3 with rootid = the host id of root 0,
    v3 with its rootid shifted. Another shape (v1, garbage) is returned as it is (the kernel judges)."""
    if len(value) not in (_FCAPS_V2_SIZE, _FCAPS_V3_SIZE):
        return value
    magic = struct.unpack_from("<I", value)[0]
    rev = magic & _VFS_CAP_REVISION_MASK
    if rev == _VFS_CAP_REVISION_2 and len(value) == _FCAPS_V2_SIZE:
        root = 0
    elif rev == _VFS_CAP_REVISION_3 and len(value) == _FCAPS_V3_SIZE:
        root = struct.unpack_from("<I", value, _FCAPS_V2_SIZE)[0]
    else:
        return value
    flags = magic & ~_VFS_CAP_REVISION_MASK
    return (struct.pack("<I", _VFS_CAP_REVISION_3 | flags) + value[4:_FCAPS_V2_SIZE]
            + struct.pack("<I", shift(root, uids)))


def copy_shifted(src, dst, idmap: dict, *, progress=None) -> int:
    """Copy the tree ``src`` to ``dst`` (which must not exist; same file system is best: in-kernel
    copies) with every owner shifted by ``idmap`` (OCI-shaped, a record's ``idmap``). ``progress()``
    is called after each entry (tests kill the copy half way with it). Returns the number of
    entries. ImageError / KernelError with the path on failure; ``dst`` is then left for the caller
    to remove (it copies into a scratch directory)."""
    src, dst = os.fspath(src), os.fspath(dst)
    uids, gids = idmap["uidMappings"], idmap["gidMappings"]
    links: dict[tuple[int, int], str] = {}
    dirs: list[tuple[str, str, os.stat_result]] = []
    count = 0
    todo = [(src, dst)]
    while todo:
        s, d = todo.pop()
        try:
            st = os.lstat(s)
        except OSError as exc:
            raise from_oserror(exc, "copy layer: lstat", s) from exc
        mode = st.st_mode
        try:
            if stat.S_ISDIR(mode):
                os.mkdir(d, 0o700)
                dirs.append((s, d, st))          # owner, mode and mtime once its entries are in
                todo.extend((os.path.join(s, n), os.path.join(d, n)) for n in sorted(os.listdir(s)))
                count += 1
                continue
            first = links.setdefault((st.st_dev, st.st_ino), d) if st.st_nlink > 1 else d
            if first != d:
                os.link(first, d, follow_symlinks=False)      # one inode: its attributes are set
            elif stat.S_ISREG(mode):
                _copy_data(s, d)
            elif stat.S_ISLNK(mode):
                os.symlink(os.readlink(s), d)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                os.mknod(d, stat.S_IFMT(mode) | 0o600, st.st_rdev)   # whiteouts: char 0/0
            else:
                raise ImageError(f"copy layer: {s} is of an unknown file type ({oct(mode)})")
            if first == d:
                _attributes(s, d, st, uids, gids)
        except OSError as exc:
            raise from_oserror(exc, "copy layer to", d,
                               hint="is the store's file system full? `minicontainer gc` removes "
                                    "an incomplete copy") from exc
        count += 1
        if progress is not None:
            progress()
    for s, d, st in reversed(dirs):            # deepest first: a parent's mtime after its entries
        try:
            _attributes(s, d, st, uids, gids)
        except OSError as exc:
            raise from_oserror(exc, "copy layer: set the owner of", d) from exc
    return count


def _copy_data(s: str, d: str) -> None:
    fin = os.open(s, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fout = os.open(d, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            try:
                while os.copy_file_range(fin, fout, 1 << 30):   # in the kernel (a reflink where it can)
                    pass
            except OSError:                      # a file system without it: plain reads and writes
                os.lseek(fin, 0, os.SEEK_SET)
                os.lseek(fout, 0, os.SEEK_SET)
                os.ftruncate(fout, 0)
                while chunk := os.read(fin, 1 << 20):
                    os.write(fout, chunk)
        finally:
            os.close(fout)
    finally:
        os.close(fin)


def _attributes(s: str, d: str, st: os.stat_result, uids, gids) -> None:
    """Owner first (it clears setuid bits and file capabilities), then the xattrs, then the mode
    (not of a symlink: it has none of its own), then the times."""
    os.chown(d, shift(st.st_uid, uids), shift(st.st_gid, gids), follow_symlinks=False)
    for name in os.listxattr(s, follow_symlinks=False):
        value = os.getxattr(s, name, follow_symlinks=False)
        if name in _ACLS:
            value = shift_acl(value, uids, gids)
        elif name == _FCAPS:
            value = shift_fcaps(value, uids)
        os.setxattr(d, name, value, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(d, stat.S_IMODE(st.st_mode))
    os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
