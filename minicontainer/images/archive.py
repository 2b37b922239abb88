"""Reading an image archive — ``docker save`` tarballs and OCI image layouts — without trusting it.
Notebook 04 (importer.py unpacks the layers this module finds).

An archive is the sender's to shape, so every read here is bounded and every value checked before
use: a member is followed through at most :data:`MAX_LINKS` links of the archive itself (a symlink
loop for ``layer.tar`` made ``import`` spin forever holding the image store's lock), never out of it;
an OCI index descends at most :data:`MAX_DEPTH` levels and never into a blob twice (an index whose
blob names itself did the same); a file of a directory layout is opened without blocking and must be
a regular file (a fifo would block); JSON documents are capped at :data:`MAX_JSON` bytes; and the
manifest, index and config must have the shape the importer reads (``{}``, ``[]``, ``Config: 5`` or
``Env: [1, 2]`` ended in a traceback). Each refusal is one :class:`~minicontainer.errors.ImageError`.
"""

from __future__ import annotations

import json
import os
import posixpath
import stat
import tarfile
from pathlib import Path

from ..errors import ImageError

MAX_LINKS = 8           #: links followed inside an archive for one member (docker save links layers)
MAX_DEPTH = 4           #: image indexes nested inside each other
MAX_JSON = 16 << 20     #: bytes of one manifest, index or config


class Archive:
    """A docker-save or OCI-layout archive, as a tarball (possibly gzip) or a directory."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise ImageError(f"import {self.path}: no such file or directory")
        self.tar = None
        if self.path.is_file():
            try:
                self.tar = tarfile.open(self.path, "r:*")
                self.members = {norm(m.name): m for m in self.tar.getmembers()}
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise ImageError(f"import {self.path}: not a tar archive ({exc})",
                                 hint="expected `docker save` output or an OCI image layout") from exc
        elif not self.path.is_dir():
            raise ImageError(f"import {self.path}: not a file or a directory")

    def has(self, name: str) -> bool:
        if self.tar is not None:
            return name in self.members
        return (self.path / name).is_file()

    def size(self, name: str) -> int:
        return self.members[name].size if self.tar is not None else (self.path / name).stat().st_size

    def _member(self, name: str) -> tarfile.TarInfo:
        """The regular file ``name`` names, through at most MAX_LINKS links inside the archive."""
        m = self.members[name]
        for _ in range(MAX_LINKS):
            if not (m.issym() or m.islnk()):
                break
            if m.issym():
                target = posixpath.normpath(posixpath.join(posixpath.dirname(name), m.linkname))
            else:
                target = m.linkname
            if target.startswith(("/", "../")) or target == "..":
                raise ImageError(f"import {self.path}: {name!r} links outside the archive")
            name = norm(target)
            m = self.members[name]
        else:
            raise ImageError(f"import {self.path}: {name!r}: more than {MAX_LINKS} links (a loop?)",
                             hint="the archive is corrupt or hostile")
        if not m.isreg():
            raise ImageError(f"import {self.path}: {name!r} is not a regular file")
        return m

    def open(self, name: str):
        name = norm(name)
        if ".." in name.split("/") or name.startswith("/"):
            raise ImageError(f"import {self.path}: manifest names {name!r} outside the archive")
        try:
            if self.tar is not None:
                return self.tar.extractfile(self._member(name))
            return self._open_file(name)
        except KeyError:
            raise ImageError(f"import {self.path}: {name!r} is missing from the archive") from None

    def _open_file(self, name: str):
        """A regular file of a directory layout: resolved inside it, opened without blocking (a fifo
        would wait for a writer forever), checked through the descriptor."""
        base = os.path.realpath(self.path)
        p = os.path.realpath(self.path / name)
        if not (p + "/").startswith(base + "/"):
            raise ImageError(f"import {self.path}: {name!r} points outside the archive")
        try:
            fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise KeyError(name) from None
        except OSError as exc:
            raise ImageError(f"import {self.path}: open {name}: {os.strerror(exc.errno or 0)}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ImageError(f"import {self.path}: {name!r} is not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")

    def json(self, name: str):
        with self.open(name) as f:
            data = f.read(MAX_JSON + 1)
        if len(data) > MAX_JSON:
            raise ImageError(f"import {self.path}: {name} is larger than {MAX_JSON} bytes")
        try:
            return json.loads(data)
        except ValueError as exc:
            raise ImageError(f"import {self.path}: {name} is not valid JSON ({exc})") from exc

    def close(self):
        if self.tar is not None:
            self.tar.close()


def norm(name: str) -> str:
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def blob(digest) -> str:
    algo, _, hexd = digest.partition(":") if isinstance(digest, str) else ("", "", "")
    if not algo or not hexd or "/" in hexd or hexd in (".", ".."):
        raise ImageError(f"invalid digest {str(digest)[:80]!r}", hint="the archive is corrupt")
    return f"blobs/{algo}/{hexd}"


def _shape(ok: bool, arc: Archive, what: str) -> None:
    if not ok:
        raise ImageError(f"import {arc.path}: {what}", hint="the archive is corrupt, or not an image archive")


def _is_strs(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _oci_manifest(arc: Archive, tag: str | None) -> tuple[dict, str | None]:
    index = arc.json("index.json")
    _shape(isinstance(index, dict), arc, "index.json is not a JSON object")
    manifests = index.get("manifests") or []
    seen: set[str] = set()
    for _depth in range(MAX_DEPTH):
        _shape(isinstance(manifests, list) and all(isinstance(m, dict) and isinstance(m.get("digest"), str)
                                                   for m in manifests), arc, "an index's manifests are not "
               "a list of {digest: …}")
        if not manifests:
            raise ImageError(f"import {arc.path}: index.json lists no manifest")
        chosen = manifests[0]
        if tag:
            named = [m for m in manifests if (m.get("annotations") or {}).get(
                "org.opencontainers.image.ref.name") == tag]
            chosen = named[0] if named else chosen
        else:
            amd = [m for m in manifests if (m.get("platform") or {}).get("architecture") in (None, "amd64")]
            chosen = amd[0] if amd else chosen
        ref = (chosen.get("annotations") or {}).get("org.opencontainers.image.ref.name")
        if chosen["digest"] in seen:
            raise ImageError(f"import {arc.path}: the index {chosen['digest'][:19]} names itself (a loop)",
                             hint="the archive is corrupt or hostile")
        seen.add(chosen["digest"])
        doc = arc.json(blob(chosen["digest"]))
        _shape(isinstance(doc, dict), arc, f"blob {chosen['digest'][:19]} is not a JSON object")
        if "manifests" in doc:                     # an image index (multi-platform): descend
            manifests, tag = doc["manifests"], None
            continue
        _shape(isinstance(doc.get("config"), dict) and isinstance(doc.get("layers"), list)
               and all(isinstance(x, dict) for x in doc["layers"]), arc,
               f"manifest {chosen['digest'][:19]} has no config and layers")
        return doc, None if ref is None else str(ref)
    raise ImageError(f"import {arc.path}: image indexes nested more than {MAX_DEPTH} deep")


def _config(arc: Archive, name: str, nlayers: int) -> tuple[dict, list]:
    cfg = arc.json(name)
    _shape(isinstance(cfg, dict), arc, f"the image config {name[:40]} is not a JSON object")
    inner = cfg.get("config") if "config" in cfg else cfg.get("Config")
    _shape(inner is None or isinstance(inner, dict), arc, "the image config's config is not an object")
    check_config(inner or {}, f"import {arc.path}")
    rootfs = cfg.get("rootfs") or {}
    _shape(isinstance(rootfs, dict), arc, "the image config's rootfs is not an object")
    diff_ids = rootfs.get("diff_ids") or [None] * nlayers
    _shape(_is_strs(diff_ids) or diff_ids == [None] * nlayers, arc, "rootfs.diff_ids is not a list of digests")
    return cfg, list(diff_ids)


def check_config(c: dict, where: str) -> None:
    """The keys of an image's config the runtime reads, of the types it reads them as (Docker's)."""
    for key in ("Env", "Cmd", "Entrypoint"):
        if c.get(key) is not None and not _is_strs(c[key]):
            raise ImageError(f"{where}: the image config's {key} is not a list of strings",
                             hint="the image is corrupt")
    if any("=" not in e for e in c.get("Env") or []):
        raise ImageError(f"{where}: the image config's Env has an entry without '='", hint="the image is corrupt")
    for key in ("WorkingDir", "User", "StopSignal"):
        if c.get(key) is not None and not isinstance(c[key], str):
            raise ImageError(f"{where}: the image config's {key} is not a string", hint="the image is corrupt")
    for key in ("ExposedPorts", "Labels", "Volumes"):
        if c.get(key) is not None and not isinstance(c[key], dict):
            raise ImageError(f"{where}: the image config's {key} is not an object", hint="the image is corrupt")


def read_archive(arc: Archive, tag: str | None = None) -> tuple[list[str], dict, list[str | None], str | None]:
    """(layer blob names bottom first, image config JSON, expected diff_ids, the archive's own tag)."""
    if arc.has("manifest.json"):
        mans = arc.json("manifest.json")
        _shape(isinstance(mans, list) and mans, arc, "manifest.json is not a non-empty list")
        for m in mans:
            _shape(isinstance(m, dict) and isinstance(m.get("Config"), str) and _is_strs(m.get("Layers"))
                   and (m.get("RepoTags") is None or _is_strs(m["RepoTags"])), arc,
                   "a manifest.json entry lacks Config (a file name) or Layers (a list of file names)")
        man = mans[0]
        if tag:
            man = next((m for m in mans if any(t == tag or t.endswith(":" + tag)
                                               for t in m.get("RepoTags") or [])), man)
        cfg, diff_ids = _config(arc, man["Config"], len(man["Layers"]))
        own = (man.get("RepoTags") or [None])[0]
        return list(man["Layers"]), cfg, diff_ids, own
    if arc.has("index.json") or arc.has("oci-layout"):
        man, own = _oci_manifest(arc, tag)
        cfg, diff_ids = _config(arc, blob(man["config"].get("digest")), len(man["layers"]))
        return [blob(layer.get("digest")) for layer in man["layers"]], cfg, diff_ids, own
    raise ImageError(f"import {arc.path}: neither manifest.json (docker save) nor index.json (OCI layout)",
                     hint="make one with `docker save`, `skopeo copy … docker-archive:` or `umoci`")
