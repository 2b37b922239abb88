"""The layer store: images as ordered, content-addressed layers plus a config. Notebook 04.

Layout under the data root (``/var/lib/minicontainer``, like ``/var/lib/docker``)::

    layers/<sha256>/diff/        one layer, unpacked in overlay form (whiteouts, opaque xattrs)
    layers/<sha256>/layer.json   where it came from, its size
    layers/<sha256>/userns/<maps>/  its chowned copy for a --userns=remap range (runtime/userns_layers.py)
    images/<sha256>.json         {"layers": [bottom … top], "config": {...}, "parent": …}
    refs.json                    {"busybox:latest": "<image id>", …}
    cache/<key>                  build cache: parent + instruction → image id
    containers/<cid>/upper,work  a container's writable layer; ``image`` names the image it uses

A layer's id is the sha256 of its content: of the uncompressed tar for an imported layer (docker's
``diff_id``, so it can be checked against the image config's ``rootfs.diff_ids``), or of a canonical
walk of the directory for a layer we made (build, commit). The same content is stored once, and an
image id is the sha256 of its layer list and config, so importing the same image twice is a no-op.

Why a directory per layer and not one tarball per layer (as a registry stores them)? overlayfs
mounts directories; unpacking once at import makes every container start free.
"""

from __future__ import annotations

import fcntl
import os
import re
import stat
import time
from contextlib import contextmanager
from .._record import factory, record
from pathlib import Path

from .. import paths, private
from .. import fastjson  # json without the package's import (fastjson.py)
from ..errors import ConfigError, ConflictError, ImageError, NotFoundError, from_oserror
from .overlay import OPAQUE_XATTR
from .trees import _rmtree, copy_tree, tree_digest  # noqa: F401 - importable from here too

DEFAULT_CONFIG = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                  "Cmd": ["/bin/sh"], "Entrypoint": [], "WorkingDir": "/"}
_HINT = "see `minicontainer images`; get it with `minicontainer pull NAME`, `import FILE NAME` or `build`"


def normalize_ref(ref: str) -> str:
    """``busybox`` → ``busybox:latest``, ``docker.io/library/busybox`` → ``busybox:latest``,
    ``127.0.0.1:5000/app`` → ``127.0.0.1:5000/app:latest``: Docker's familiar form (see
    :mod:`.reference`), so a pulled image and a built one share one namespace of names."""
    from .reference import parse
    r = parse(ref.strip() if isinstance(ref, str) else ref)
    if r.tag is None:
        raise ConfigError(f"invalid image name {ref!r}: a name needs a tag, not only a digest",
                          hint="use NAME[:TAG]")
    return r.familiar


#: kept from an image's config besides the four every image has, when present (Docker's keys)
_EXTRA_CONFIG = ("User", "ExposedPorts", "StopSignal", "Labels", "Volumes", "Created")


def _clean_config(cfg: dict | None) -> dict:
    cfg = cfg or {}
    out = {"Env": list(cfg.get("Env") or []), "Cmd": list(cfg.get("Cmd") or []),
           "Entrypoint": list(cfg.get("Entrypoint") or []), "WorkingDir": cfg.get("WorkingDir") or "/"}
    for key in _EXTRA_CONFIG:         # only when set: an image without them keeps its old id
        if cfg.get(key):
            out[key] = cfg[key]
    return out


@record
class Image:
    """An image: its id, the names pointing at it, its layers (bottom first) and its config."""
    id: str
    layers: list[str]
    config: dict
    store_root: Path
    names: list[str] = factory(list)
    parent: str | None = None
    created: float = 0.0

    @property
    def name(self) -> str:
        return self.names[0] if self.names else self.id[:12]

    @property
    def lowerdirs(self) -> list[str]:
        """The layers' directories in overlay order: top-most first."""
        return [str(self.store_root / "layers" / lid / "diff") for lid in reversed(self.layers)]

    def size(self) -> int:
        from .overlay import du
        return sum(du(d) for d in self.lowerdirs)


@record
class ContainerLayer:
    """A container's writable layer: ``upperdir`` and ``workdir`` (same file system) under ``path``."""
    path: Path
    upperdir: Path
    workdir: Path


class ImageStore:
    """The on-disk store (see the module docstring). ``root`` defaults to ``paths.data_root()``."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else paths.data_root()
        self._lock_depth = 0

    # --- paths and locking ----------------------------------------------------------------------
    def _dirs(self) -> None:
        for d in ("layers", "images", "cache", "containers", "tmp"):
            try:
                private.make_dir(self.root / d, root=self.root)     # 0700 (private.py)
            except OSError as exc:
                raise from_oserror(exc, "create image store", self.root / d) from exc

    @contextmanager
    def lock(self):
        """One writer at a time (a flock on ``.lock``), re-entrant within this store object.

        Imports and builds hold it from their first layer to their image record, so that a
        concurrent ``rmi``/``prune`` never sees their new layers as unused and removes them."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        self._dirs()
        fd = private.lock_file(self.root / ".lock")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._lock_depth = 1
            yield
        finally:
            self._lock_depth = 0
            os.close(fd)

    def tmpdir(self, prefix: str = "mcim-") -> Path:
        """A scratch directory on the store's file system (so a finished layer is moved by rename)."""
        self._dirs()
        import tempfile  # lazily: off the start path of `run`
        return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}.", dir=self.root / "tmp"))

    def clean_tmp(self) -> list[str]:
        """Remove scratch directories of processes that are gone (a pull or import killed with
        SIGKILL could not remove its own). The owner's pid is in the name; a live pid keeps it."""
        out = []
        d = self.root / "tmp"
        for entry in d.iterdir() if d.is_dir() else ():
            pid = entry.name.rpartition("-")[2].partition(".")[0]
            if not pid.isdigit() or os.path.exists(f"/proc/{pid}"):
                continue
            _rmtree(entry)
            out.append(f"removed scratch {entry.name}")
        return out

    def _refs(self) -> dict[str, str]:
        try:
            return fastjson.loads((self.root / "refs.json").read_text())
        except FileNotFoundError:
            return {}

    def _digests(self) -> dict[str, str]:
        """``{"127.0.0.1:5000/app@sha256:…": image id}``: the manifest digests images were pulled by
        (Docker's RepoDigests), kept apart from tags: a digest names content, a tag moves."""
        try:
            return fastjson.loads((self.root / "digests.json").read_text())
        except FileNotFoundError:
            return {}

    def set_digest(self, name: str, digest: str, iid: str) -> None:
        """Record that ``name`` (familiar repository) at manifest ``digest`` is image ``iid``."""
        with self.lock():
            d = self._digests()
            d[f"{name}@{digest}"] = iid
            self._write_json(self.root / "digests.json", d)

    def digests_of(self, iid: str) -> list[str]:
        return sorted(k for k, v in self._digests().items() if v == iid)

    def _write_json(self, path: Path, data) -> None:
        private.write(path, fastjson.dumps(data, indent=1, sort_keys=True))

    # --- layers ---------------------------------------------------------------------------------
    def layer_dir(self, layer_id: str) -> Path:
        return self.root / "layers" / layer_id / "diff"

    def has_layer(self, layer_id: str) -> bool:
        return self.layer_dir(layer_id).is_dir()

    def add_layer_dir(self, src: str | os.PathLike, *, digest: str | None = None,
                      source: str = "") -> str:
        """Move the finished directory ``src`` (on the store's file system) into the store as a layer.

        ``digest`` is its id if already known (an imported tar's sha256), else :func:`tree_digest`.
        If the layer exists already, ``src`` is removed instead: content is stored once.
        """
        src = Path(src)
        lid = digest or tree_digest(src)
        final = self.root / "layers" / lid
        with self.lock():
            if (final / "diff").is_dir():
                _rmtree(src)
                return lid
            tmp = self.tmpdir("layer-")
            os.rename(src, tmp / "diff")
            # the store's directory, not the image's: its own mode is in neither the layer's digest
            # nor its export, and a container's "/" is its upper dir's. 0700 while still in the
            # 0700 tmp dir: never a moment open to other users once in layers/
            os.chmod(tmp / "diff", 0o700)
            from .overlay import du
            private.write(tmp / "layer.json", fastjson.dumps({"id": lid, "source": source,
                                                          "size": du(tmp / "diff"), "created": time.time()}))
            os.rename(tmp, final)
        return lid

    # --- images ---------------------------------------------------------------------------------
    def add_image(self, layers: list[str], config: dict | None, name: str | None = None,
                  parent: str | None = None) -> Image:
        """Record an image (layers bottom first) and point ``name`` at it; returns the Image."""
        for lid in layers:
            if not self.has_layer(lid):
                raise ImageError(f"add image: layer {lid[:12]} is not in the store {self.root}")
        from .archive import check_config        # wrong types (Env: [1, 2]) fail here, not at run
        if config is not None and not isinstance(config, dict):
            raise ImageError("add image: the image config is not a JSON object")
        check_config(config or {}, "add image")
        if name:
            normalize_ref(name)                   # a bad name: before the image record exists
        cfg = _clean_config(config)
        import hashlib  # lazily: off the start path of `run`
        iid = hashlib.sha256(fastjson.dumps({"layers": layers, "config": cfg}, sort_keys=True)
                             .encode()).hexdigest()
        with self.lock():
            rec = self.root / "images" / f"{iid}.json"
            if not rec.exists():
                self._write_json(rec, {"id": iid, "layers": layers, "config": cfg, "parent": parent,
                                       "created": time.time()})
            if name:
                refs = self._refs()
                refs[normalize_ref(name)] = iid
                self._write_json(self.root / "refs.json", refs)
        return self._load(iid)

    def _load(self, iid: str) -> Image:
        try:
            d = fastjson.loads((self.root / "images" / f"{iid}.json").read_text())
        except FileNotFoundError:
            raise NotFoundError(f"image {iid[:12]}: no such image in {self.root}", hint=_HINT) from None
        names = sorted(r for r, i in self._refs().items() if i == iid)
        return Image(d["id"], d["layers"], d["config"], self.root, names, d.get("parent"),
                     d.get("created", 0.0))

    def resolve(self, ref: str) -> str:
        """Image id for a name (``busybox``, ``busybox:latest``), ``NAME@sha256:…`` (a manifest
        digest it was pulled by), ``sha256:…`` (a manifest digest or an image id) or an id prefix."""
        refs = self._refs()
        if ref.startswith("sha256:") and not re.fullmatch(r"[0-9a-f]{4,64}", ref[7:]):
            # an empty (or short) hex part would prefix-match every image: `run sha256:` ran one
            raise ConfigError(f"invalid reference format: {ref!r}",
                              hint="sha256: needs at least 4 hex digits of an image id or digest")
        if "@" in ref or ref.startswith("sha256:"):
            from .reference import parse
            digests = self._digests()
            if "@" in ref:
                r = parse(ref)
                key = f"{r.familiar_name}@{r.digest}"
                if key in digests:
                    return digests[key]
            else:
                hits = {v for k, v in digests.items() if k.endswith("@" + ref)}
                if len(hits) == 1:
                    return hits.pop()
        try:
            key = normalize_ref(ref)
        except ConfigError:
            key = None
        if key and key in refs:
            return refs[key]
        if len(ref) >= 4 and all(c in "0123456789abcdef" for c in ref.removeprefix("sha256:")):
            ids = [p.stem for p in (self.root / "images").glob(f"{ref.removeprefix('sha256:')}*.json")]
            if len(ids) == 1:
                return ids[0]
            if len(ids) > 1:
                raise ConflictError(f"image id prefix {ref!r} is ambiguous ({len(ids)} images)",
                                    hint="give more digits")
        raise NotFoundError(f"image {ref!r} not found in {self.root}", hint=_HINT)

    def get(self, ref: str) -> Image:
        return self._load(self.resolve(ref))

    def images(self, *, all: bool = False) -> list[Image]:
        """Named images (``all=True``: also the unnamed intermediate images of builds)."""
        d = self.root / "images"
        if not d.is_dir():
            return []
        imgs = [self._load(p.stem) for p in sorted(d.glob("*.json"))]
        named = set(self._digests().values())
        return [i for i in imgs if all or i.names or i.id in named]

    def tag(self, ref: str, name: str) -> Image:
        iid = self.resolve(ref)
        with self.lock():
            refs = self._refs()
            refs[normalize_ref(name)] = iid
            self._write_json(self.root / "refs.json", refs)
        return self._load(iid)

    def ensure_busybox(self) -> Image:
        """The embedded busybox image (notebook 00's rootfs) as image ``busybox``; a no-op once there."""
        from .. import busybox
        bb_digest = busybox.digest(cache=self.root / "busybox.digest")
        try:
            img = self.get("busybox")
            meta = fastjson.loads((self.layer_dir(img.layers[0]).parent / "layer.json").read_text())
            if meta.get("source") == f"busybox {bb_digest[:16]}":
                return img
        except (NotFoundError, OSError, IndexError, ValueError):
            pass
        tmp = self.tmpdir("busybox-")
        try:
            busybox.build_rootfs(tmp / "rootfs")
            with self.lock():                   # layer and image at once: gc sweeps unnamed layers
                lid = self.add_layer_dir(tmp / "rootfs", source=f"busybox {bb_digest[:16]}")
                return self.add_image([lid], dict(DEFAULT_CONFIG), name="busybox")
        finally:
            _rmtree(tmp)

    # --- removal --------------------------------------------------------------------------------
    def users(self, image_id: str) -> list[str]:
        """Containers whose writable layer records this image (``mark_in_use``)."""
        out = []
        cdir = self.root / "containers"
        if cdir.is_dir():
            for c in sorted(cdir.iterdir()):
                try:
                    if (c / "image").read_text().strip() == image_id:
                        out.append(c.name)
                except OSError:
                    pass
        return out

    def remove_image(self, ref: str, *, force: bool = False) -> list[str]:
        """``rmi``: drop the name (or, for an id, every name) and, once no name is left, the image and
        the layers no other image uses. Refused while a container uses the image. Returns what was
        removed (``untagged: …``, ``deleted: …``)."""
        iid = self.resolve(ref)
        users = self.users(iid)
        if users:
            raise ConflictError(f"remove image {ref}: in use by container {', '.join(users)}",
                                hint="remove the container first (`minicontainer rm`)")
        out = []
        with self.lock():
            refs = self._refs()
            try:
                key = normalize_ref(ref)
            except ConfigError:
                key = None
            dropped = [key] if key in refs else [r for r, i in refs.items() if i == iid]
            for r in dropped:
                refs.pop(r, None)
                out.append(f"untagged: {r}")
            self._write_json(self.root / "refs.json", refs)
            # Docker's rule: the last tag gone (or removal by id/digest) takes the digests along
            if force or not any(i == iid for i in refs.values()):
                digests = self._digests()
                for k in [k for k, v in digests.items() if v == iid]:
                    digests.pop(k)
                    out.append(f"untagged: {k}")
                self._write_json(self.root / "digests.json", digests)
                (self.root / "images" / f"{iid}.json").unlink(missing_ok=True)
                out.append(f"deleted: {iid[:12]}")
        out += self.prune(images=False)
        return out

    def prune(self, *, images: bool = True, min_age: float = 0.0) -> list[str]:
        """Remove unnamed images (``images=True``), stale cache entries and unused layers (``gc``:
        ``images=False``, only layers older than ``min_age`` seconds — what a crash between a layer
        and its image left; every writer commits both under this lock)."""
        out = []
        with self.lock():
            used_imgs = set(self._refs().values()) | set(self._digests().values())
            in_use = set()
            cdir = self.root / "containers"
            for c in cdir.iterdir() if cdir.is_dir() else ():
                try:
                    in_use.add((c / "image").read_text().strip())
                except OSError:
                    pass
            keep_layers: set[str] = set()
            for rec in (self.root / "images").glob("*.json"):
                iid = rec.stem
                if images and iid not in used_imgs and iid not in in_use:
                    rec.unlink()
                    out.append(f"deleted: {iid[:12]}")
                    continue
                try:
                    keep_layers.update(fastjson.loads(rec.read_text())["layers"])
                except (OSError, ValueError, KeyError, TypeError):
                    return out                  # an unreadable image record: keep every layer
            for entry in (self.root / "cache").iterdir():
                if not (self.root / "images" / f"{entry.read_text().strip()}.json").exists():
                    entry.unlink()
            for ldir in (self.root / "layers").iterdir():
                if ldir.name not in keep_layers and time.time() - ldir.stat().st_mtime >= min_age:
                    _rmtree(ldir)
                    out.append(f"deleted layer: {ldir.name[:12]}")
        return out

    # --- build cache ----------------------------------------------------------------------------
    def cache_get(self, key: str) -> Image | None:
        try:
            return self._load((self.root / "cache" / key).read_text().strip())
        except (FileNotFoundError, NotFoundError):
            return None

    def cache_put(self, key: str, image_id: str) -> None:
        self._dirs()
        private.write(self.root / "cache" / key, image_id)

    # --- containers' writable layers ------------------------------------------------------------
    def _cdir(self, cid: str) -> Path:
        if not cid or "/" in cid or cid in (".", ".."):
            raise ConfigError(f"invalid container id {cid!r}")
        return self.root / "containers" / cid

    def layer_paths(self, cid: str) -> ContainerLayer:
        """Where ``cid``'s writable layer is (or will be): nothing is created."""
        path = self._cdir(cid)
        return ContainerLayer(path, path / "upper", path / "work")

    def create_container_layer(self, cid: str, owner: tuple[int, int] | None = None) -> ContainerLayer:
        """Make ``containers/<cid>/{upper,work}`` (fresh and empty); ``owner`` (uid, gid) owns the
        upper dir — a remapped container's root on the host (runtime/userns.py)."""
        self._dirs()
        layer = self.layer_paths(cid)
        try:
            layer.path.mkdir(0o700, exist_ok=True)
            # upperdir's mode is the container's "/" (overlayfs shows the upper root): 0755 whatever
            # the umask, as an image's root. Only root reaches it: containers/<cid> is 0700.
            layer.upperdir.mkdir(0o755)
            os.chmod(layer.upperdir, 0o755)
            if owner is not None:
                os.chown(layer.upperdir, *owner)
            layer.workdir.mkdir(0o700)
        except FileExistsError:
            raise ConflictError(f"container layer {layer.path} exists already",
                                hint="the container id is in use") from None
        except OSError as exc:
            raise from_oserror(exc, "create container layer", layer.path) from exc
        return layer

    def container_layer(self, cid: str) -> ContainerLayer:
        layer = self.layer_paths(cid)
        if not layer.upperdir.is_dir():
            raise NotFoundError(f"container {cid}: no writable layer under {layer.path}")
        return layer

    def remove_container_layer(self, cid: str) -> None:
        """Remove ``containers/<cid>`` (idempotent). Its overlay must be unmounted (it is, when it was
        mounted only in the container's own mount namespace and the container has ended).

        Refused while something is mounted below it in *this* mount namespace: removing a tree
        through a mount point would delete what the mount shows (a bind-mounted volume, say)."""
        path = self._cdir(cid)
        prefix = os.path.realpath(path) + "/"
        busy = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
                if (line.split()[4] + "/").startswith(prefix)]
        if busy:
            raise ConflictError(f"remove container layer {path}: {busy[0]} is still mounted",
                                hint=f"unmount it first (umount -l {busy[0]})")
        _rmtree(path)

    def mark_in_use(self, image_id: str, cid: str) -> None:
        """Record that container ``cid`` uses ``image_id``: ``rmi`` refuses it until ``release``."""
        path = self._cdir(cid)
        private.make_dir(path, root=self.root)
        private.write(path / "image", image_id)

    def release(self, image_id: str, cid: str) -> None:
        try:
            if (self._cdir(cid) / "image").read_text().strip() == image_id:
                (self._cdir(cid) / "image").unlink()
        except FileNotFoundError:
            pass

    def image_of(self, cid: str) -> str | None:
        try:
            return (self._cdir(cid) / "image").read_text().strip()
        except FileNotFoundError:
            return None
