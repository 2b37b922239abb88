"""Import real image archives — ``docker save`` tarballs and OCI image layouts. Notebook 04.

"An image is in essence a compressed archive": a manifest lists the layers (tar, often gzip) bottom
first and names a JSON config (Env, Cmd, Entrypoint, WorkingDir). We read both formats:

* docker save / ``skopeo copy … docker-archive:`` — ``manifest.json`` → ``Config`` + ``Layers``;
* OCI image layout (``umoci``, ``skopeo copy … oci:``, ``docker save`` ≥ 25) — ``index.json`` →
  manifest blob → config blob + layer blobs, under ``blobs/sha256/``; as a directory or a tarball.

Each layer is unpacked into its own directory with :func:`extract_layer`, our own in-root filter.
Why not ``tarfile``'s ``data`` filter (PEP 706)? It refuses what real images contain — setuid bits,
absolute symlinks (``/bin/sh -> /bin/busybox`` is fine inside a container root) and device-less
whiteouts — while ``fully_trusted`` would let a hostile layer write anywhere on the host. Ours:

* refuses absolute names, ``..`` components, writes *through* any symlink (a layer's own entries
  never need that; a symlink to ``/etc`` followed by ``x/passwd`` is the classic escape), hard
  links whose target is absolute, uses ``..``, is not a file already in this layer, or passes a
  symlink; whiteouts naming ``.``/``..``;
* *skips* block and character devices with a one-line warning (a container gets its /dev from the
  runtime; a device node in an image is only a way to reach host hardware). Refusing the image was
  rejected: real root file systems (debootstrap's, umoci's) carry /dev/console and /dev/null, and
  containers/storage skips them too when it cannot create them;
* caps a layer at ``max_bytes`` of content and ``max_entries`` entries (a tar bomb);
* never follows a symlink when it creates, replaces or changes an entry (``O_NOFOLLOW``, ``lchown``).

Every refusal is an :class:`~minicontainer.errors.ImageError` naming the layer and the entry.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import stat
import tarfile
import zlib
from pathlib import Path
from typing import Callable, Iterator

from ..errors import ImageError, from_oserror
from .archive import Archive, norm as _norm, read_archive
from .overlay import make_opaque, make_whiteout
from .store import Image, ImageStore, _rmtree, normalize_ref

MAX_LAYER_BYTES = 8 << 30        #: 8 GiB of file content per layer (MINICONTAINER_MAX_LAYER_SIZE)
MAX_IMAGE_BYTES = 16 << 30       #: 16 GiB for all layers of one import (MINICONTAINER_MAX_IMAGE_SIZE)
_LIMIT_HINT = "a tar bomb? if not, raise MINICONTAINER_MAX_LAYER_SIZE / MINICONTAINER_MAX_IMAGE_SIZE (e.g. 32g)"
MAX_LAYER_ENTRIES = 1_000_000
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"

Progress = Callable[[str, int, int], None]


class _Reader(io.RawIOBase):
    """A file object that hashes (and counts) what passes through it; ``hashing=False`` only counts
    (the compressed side of a pull is hashed by the blob stream already: a second sha256 pass over
    it cost ~55 ms per 100 MB for a digest nobody read)."""

    def __init__(self, f, on_read: Callable[[int], None] | None = None, hashing: bool = True):
        self.f, self.n, self.on_read = f, 0, on_read
        self.h = hashlib.sha256() if hashing else None
        self._readinto = getattr(f, "readinto", None)

    def readable(self):
        return True

    def readinto(self, b):
        if self._readinto is not None:         # straight into the caller's buffer: no copy
            n = self._readinto(b) or 0
            if self.h is not None and n:
                with memoryview(b) as mv, mv[:n] as part:   # released now: the caller may resize b
                    self.h.update(part)
        else:
            data = self.f.read(len(b))
            n = len(data)
            b[:n] = data
            if self.h is not None:
                self.h.update(data)
        self.n += n
        if self.on_read and n:
            self.on_read(self.n)
        return n

    def drain(self) -> str:
        while self.read(1 << 20):
            pass
        return self.h.hexdigest()


def _refuse(layer: str, entry: str, why: str) -> ImageError:
    return ImageError(f"layer {layer}: entry {entry!r}: {why}",
                      hint="the archive is unsafe or corrupt; nothing of this layer was kept")


def _clean_name(layer: str, name: str, what: str = "entry") -> str:
    """``./usr/bin/`` → ``usr/bin``; refuses absolute names and ``..`` components."""
    if name.startswith("/"):
        raise _refuse(layer, name, f"{what} is an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _refuse(layer, name, f"{what} contains '..' (it would escape the layer)")
    return "/".join(parts)


def _parent_dir(root: str, rel: str, layer: str, entry: str) -> str:
    """The directory that will hold ``rel``, created as needed; refuses to pass a symlink or a file."""
    cur = root
    for part in rel.split("/")[:-1]:
        cur = os.path.join(cur, part)
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            os.mkdir(cur, 0o755)
            continue
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(cur)
            where = ("outside the layer" if target.startswith("/") or
                     posixpath.normpath(posixpath.join(posixpath.dirname(os.path.relpath(cur, root)),
                                                       target)).startswith("..") else "elsewhere")
            raise _refuse(layer, entry, f"would be written through the symlink "
                          f"{os.path.relpath(cur, root)!r} → {target!r} ({where})")
        if not stat.S_ISDIR(st.st_mode):
            raise _refuse(layer, entry, f"{os.path.relpath(cur, root)!r} is not a directory")
    return cur


def _remove_existing(path: str, keep_dir: bool) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if not keep_dir:
            _rmtree(path)
    else:
        os.unlink(path)


def warn_stderr(line: str) -> None:
    import sys
    print(f"minicontainer: warning: {line}", file=sys.stderr, flush=True)


def extract_layer(tar: tarfile.TarFile, dest: str | os.PathLike, *, layer: str = "layer",
                  max_bytes: int = MAX_LAYER_BYTES, max_entries: int = MAX_LAYER_ENTRIES,
                  warn: Callable[[str], None] | None = warn_stderr) -> int:
    """Unpack a layer tar (opened in stream mode is fine) into ``dest`` in overlay form.

    Returns the number of content bytes written. On any refusal raises ImageError; the caller
    removes ``dest`` (which is inside the store's scratch space). Device nodes are skipped and
    reported in one line through ``warn``.
    """
    root = os.fspath(dest)
    total = 0
    skipped: list[str] = []
    dirs: list[tuple[str, tarfile.TarInfo]] = []
    for count, m in enumerate(tar, 1):
        if count > max_entries:
            raise _refuse(layer, m.name, f"more than {max_entries} entries (a tar bomb?)")
        rel = _clean_name(layer, m.name)
        if not rel:
            continue                                   # "./" itself: the layer root
        base = rel.rsplit("/", 1)[-1]
        parent = _parent_dir(root, rel, layer, m.name)
        if base == OPAQUE:
            make_opaque(parent)
            continue
        if base.startswith(WHITEOUT):
            if base.startswith(WHITEOUT + WHITEOUT):
                continue                               # other aufs metadata (.wh..wh.plnk …)
            hidden = base[len(WHITEOUT):]
            if hidden in ("", ".", ".."):
                raise _refuse(layer, m.name, f"whiteout names {hidden!r}")
            target = os.path.join(parent, hidden)
            _remove_existing(target, keep_dir=False)
            make_whiteout(target)
            continue
        path = os.path.join(parent, base)
        if m.isreg():
            total += m.size
            if total > max_bytes:
                raise ImageError(f"layer {layer}: entry {m.name!r}: the content exceeds {max_bytes} bytes "
                                 "(the size limit)", hint=_LIMIT_HINT)
            _remove_existing(path, keep_dir=False)
            src = tar.extractfile(m)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                written = 0
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    written += len(chunk)
                    if written > m.size:
                        raise _refuse(layer, m.name, "more data than its header says")
                    out.write(chunk)
        elif m.isdir():
            _remove_existing(path, keep_dir=True)
            if not os.path.isdir(path):
                os.mkdir(path, 0o755)
            dirs.append((path, m))
            continue                                   # mode and times after its content
        elif m.issym():
            _remove_existing(path, keep_dir=False)
            os.symlink(m.linkname, path)
        elif m.islnk():
            lrel = _clean_name(layer, m.linkname, "hard link target")
            if not lrel:
                raise _refuse(layer, m.name, "hard link to the layer root")
            lparent = _parent_dir(root, lrel, layer, m.name)
            lpath = os.path.join(lparent, lrel.rsplit("/", 1)[-1])
            try:
                lst = os.lstat(lpath)
            except FileNotFoundError:
                raise _refuse(layer, m.name, f"hard link target {m.linkname!r} is not in this layer") from None
            if not stat.S_ISREG(lst.st_mode):
                raise _refuse(layer, m.name, f"hard link target {m.linkname!r} is not a regular file")
            _remove_existing(path, keep_dir=False)
            os.link(lpath, path, follow_symlinks=False)
            continue                                   # a hard link shares the target's inode
        elif m.isfifo():
            _remove_existing(path, keep_dir=False)
            os.mkfifo(path, 0o600)
        elif m.ischr() or m.isblk():
            skipped.append(f"/{rel} ({m.devmajor}:{m.devminor})")
            continue
        else:
            raise _refuse(layer, m.name, f"unsupported tar entry type {m.type!r}")
        _apply_meta(path, m)
    for path, m in reversed(dirs):
        _apply_meta(path, m)
    if skipped and warn:
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        warn(f"layer {layer}: skipped {len(skipped)} device node{'s' * (len(skipped) > 1)} "
             f"({', '.join(skipped[:3])}{more}): the runtime gives each container its own /dev")
    return total


def _apply_meta(path: str, m: tarfile.TarInfo) -> None:
    os.lchown(path, m.uid, m.gid)
    if not m.issym():
        os.chmod(path, m.mode & 0o7777)             # after chown: chown clears setuid bits
    os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)


# --- reading archives: archive.py -------------------------------------------------------------
_Archive = Archive            # the name notebooks and older code use


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _decompressed(f) -> tuple[object, bool]:
    """gzip, zstd or plain tar, told by the magic bytes (a media type can lie; the bytes cannot).
    zstd needs the PyPI package ``zstandard`` (Python 3.11's standard library has no zstd)."""
    head = f.peek(4)[:4] if hasattr(f, "peek") else b""
    if head[:2] == b"\x1f\x8b":
        from .gunzip import GunzipReader
        return GunzipReader(f), True
    if head == ZSTD_MAGIC:
        try:
            import zstandard
        except ImportError:
            raise ImageError("zstd layers need the Python package zstandard",
                             hint="pip install zstandard") from None
        return zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True), True
    return f, False


def import_layer(store: ImageStore, fileobj, *, label: str, expected: str | None = None,
                 on_read: Callable[[int], None] | None = None, max_bytes: int | None = None,
                 max_entries: int = MAX_LAYER_ENTRIES) -> str:
    """Unpack one (maybe gzip) layer tar into the store; returns its id (sha256 of the tar)."""
    tmp, digest = unpack_layer(store, fileobj, label=label, expected=expected, on_read=on_read,
                               max_bytes=max_bytes, max_entries=max_entries)
    try:
        return store.add_layer_dir(tmp / "diff", digest=digest, source=f"import {label}")
    finally:
        _rmtree(tmp)


def size_limit(var: str, default: int) -> int:
    """A size limit a user can raise: ``var`` in the environment (bytes, or with k/m/g/t), else
    ``default``. Docker has none; a 317 KB gzip that expands to 300 MB is why we do."""
    raw = os.environ.get(var, "").strip().lower()
    if not raw:
        return default
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    num, mult = (raw[:-1], units[raw[-1]]) if raw[-1:] in units else (raw.removesuffix("b"), 1)
    if not (num.isascii() and num.isdigit()) or len(num) > 18:
        raise ImageError(f"{var}={raw[:40]!r} is not a size", hint="use bytes or a number with k, m, g or t")
    return int(num) * mult


def unpack_layer(store: ImageStore, fileobj, *, label: str, expected: str | None = None,
                 on_read: Callable[[int], None] | None = None, max_bytes: int | None = None,
                 max_entries: int = MAX_LAYER_ENTRIES, sizes: list | None = None) -> tuple[Path, str]:
    """Unpack one layer (gzip, zstd or plain tar) into a scratch dir of the store, not yet in it:
    returns (scratch dir holding ``diff/``, sha256 of the tar). The caller commits it with
    ``store.add_layer_dir(tmp / "diff", digest=…)`` and removes ``tmp`` — a pull commits all its
    layers at once, so a failure in the third leaves nothing of the first two. ``max_bytes`` (None:
    MINICONTAINER_MAX_LAYER_SIZE or 8 GiB) caps its content; ``sizes`` gets the content's bytes."""
    import io as _io
    raw = _io.BufferedReader(_Reader(fileobj, on_read, hashing=False), 1 << 20)
    data, _ = _decompressed(raw)
    hashed = _Reader(data)
    if max_bytes is None:
        max_bytes = size_limit("MINICONTAINER_MAX_LAYER_SIZE", MAX_LAYER_BYTES)
    tmp = store.tmpdir("import-")
    try:
        diff = tmp / "diff"
        diff.mkdir(mode=0o755)
        try:
            with tarfile.open(fileobj=hashed, mode="r|", bufsize=1 << 20) as tar:
                n = extract_layer(tar, diff, layer=label, max_bytes=max_bytes, max_entries=max_entries)
            if sizes is not None:
                sizes.append(n)
            digest = hashed.drain()
            while raw.read(1 << 20):                # the compressed stream's end (its digest check)
                pass
        except ImageError:
            raise
        except tarfile.TarError as exc:
            raise ImageError(f"layer {label}: not a valid tar stream ({exc})") from exc
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise ImageError(f"layer {label}: corrupt or truncated compressed data ({exc})") from exc
        except OSError as exc:
            raise from_oserror(exc, f"unpack layer {label}") from exc
        except Exception as exc:                    # zstandard.ZstdError and the like
            if type(exc).__module__.startswith("zstandard"):
                raise ImageError(f"layer {label}: corrupt zstd data ({exc})") from exc
            raise
        if expected and expected.partition(":")[2] != digest:
            raise ImageError(f"layer {label}: content sha256:{digest[:12]} does not match the config's "
                             f"diff_id {expected[:19]}", hint="the archive is corrupt")
    except BaseException:
        _rmtree(tmp)
        raise
    return tmp, digest


def import_archive(path: str | os.PathLike, name: str | None = None, *, store: ImageStore | None = None,
                   progress: Progress | None = None, tag: str | None = None, max_bytes: int | None = None,
                   max_entries: int = MAX_LAYER_ENTRIES, max_total: int | None = None) -> Image:
    """Import a docker-save or OCI-layout archive as image ``name`` (default: the archive's own tag).

    ``progress(label, done_bytes, total_bytes)`` is called as each layer's (compressed) bytes are
    read — :class:`TextProgress` prints a bar; the notebook passes an ipywidgets one. ``max_bytes``
    caps each layer's content, ``max_total`` all of them (None: MINICONTAINER_MAX_LAYER_SIZE and
    MINICONTAINER_MAX_IMAGE_SIZE, else 8 and 16 GiB).

    All or nothing: the name is checked first, every layer is unpacked into scratch space, and only
    then are the layers and the image committed, together, under the store's lock (held only for
    those renames: never across a read of the archive). Before, a rejected second layer kept the
    first, and ``import good.tar 'Bad Tag!'`` kept an unnamed image.
    """
    store = store or ImageStore()
    if name is not None:
        normalize_ref(name)                          # a bad NAME: before anything is read
    arc = Archive(path)
    scratch: list[tuple[Path, str]] = []
    try:
        img_name, c, layers = _unpack_all(store, arc, path, name, progress, tag, max_bytes, max_entries,
                                          max_total, scratch)
        with store.lock():
            ids = [store.add_layer_dir(tmp / "diff", digest=digest, source=f"import {label}")
                   for (tmp, digest), label in zip(scratch, layers)]
            return store.add_image(ids, c, name=img_name)
    finally:
        arc.close()
        for tmp, _ in scratch:
            _rmtree(tmp)


def _unpack_all(store: ImageStore, arc: Archive, path, name: str | None, progress: Progress | None,
                tag: str | None, max_bytes: int | None, max_entries: int, max_total: int | None,
                scratch: list) -> tuple[str, dict, list[str]]:
    """Check the archive, unpack each layer into ``scratch`` (appended as it exists, so the caller
    removes it whatever happens): (image name, its config, the layers' labels)."""
    layers, cfg, diff_ids, own = read_archive(arc, tag)
    if not name and not own:
        raise ImageError(f"import {path}: the archive names no image", hint="give a NAME")
    name = name or own.removeprefix("docker.io/library/")
    normalize_ref(name)                              # the archive's own tag, checked as a NAME is
    c = cfg.get("config") or cfg.get("Config") or {}
    c = dict(c, Created=cfg.get("created"))         # the store keeps its keys
    per_layer = size_limit("MINICONTAINER_MAX_LAYER_SIZE", MAX_LAYER_BYTES) if max_bytes is None else max_bytes
    left = size_limit("MINICONTAINER_MAX_IMAGE_SIZE", MAX_IMAGE_BYTES) if max_total is None else max_total
    total = sum(arc.size(_norm(b)) if arc.tar is None or _norm(b) in arc.members else 0 for b in layers)
    done_before = 0
    labels = []
    for i, blob in enumerate(layers):
        short = blob.rsplit("/", 1)[-1][:12] if blob.startswith("blobs/") else blob
        label = f"{i + 1}/{len(layers)} {short}"
        cb = None
        if progress:
            def cb(n, _base=done_before, _label=label):
                progress(_label, _base + n, total)
        sizes: list[int] = []
        with arc.open(blob) as f:
            scratch.append(unpack_layer(store, f, label=label, expected=diff_ids[i] if i < len(diff_ids) else None,
                                        on_read=cb, max_bytes=min(per_layer, left), max_entries=max_entries,
                                        sizes=sizes))
        left -= sizes[0] if sizes else 0
        labels.append(label)
        done_before += arc.size(_norm(blob)) if arc.tar is None or _norm(blob) in arc.members else 0
    if progress:
        progress("done", total, total)
    return name, c, labels


class TextProgress:
    """A text progress bar for terminals: ``import  2/3 5f70bf18a086 [#####-----]  48%``."""

    def __init__(self, stream=None, width: int = 30):
        import sys
        self.stream, self.width, self._last = stream or sys.stderr, width, -1

    def __call__(self, label: str, done: int, total: int) -> None:
        pct = int(100 * done / total) if total else 100
        if pct == self._last and label != "done":
            return
        self._last = pct
        fill = self.width * pct // 100
        end = "\n" if label == "done" else ""
        self.stream.write(f"\rimport {label:<18} [{'#' * fill}{'-' * (self.width - fill)}] {pct:3d}%{end}")
        self.stream.flush()


def iter_layer_names(path: str | os.PathLike) -> Iterator[str]:
    """The names of the layer blobs of an archive, bottom first (for the notebook's tour)."""
    arc = Archive(path)
    try:
        yield from read_archive(arc)[0]
    finally:
        arc.close()
