"""An image of the store as registry blobs: layer tars, a config, a manifest. For push and save.

A stored layer is a directory in overlay form; a registry wants tar streams in the OCI form. The
conversions (the reverse of :mod:`.importer`): a whiteout (char device 0/0) becomes an empty file
``.wh.NAME``; a directory with ``trusted.overlay.opaque=y`` gets a ``.wh..wh..opq`` entry; hard
links stay hard links (tarfile tracks inodes). Entries are sorted and owner names dropped, so the
same directory gives the same tar (and digest) each time — mtimes are kept, as Docker keeps them.

The tar's sha256 is the layer's ``diff_id`` in the new config; the gzip's sha256 is its blob digest.
gzip with ``mtime=0`` so that two pushes of one image upload identical blobs.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
import tarfile
from pathlib import Path


from .overlay import is_opaque, is_whiteout
from .store import Image, ImageStore, _rmtree

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


class _Hashing:
    """A write-only file that hashes and counts, in front of another."""

    def __init__(self, f):
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        return self.f.write(b) if self.f is not None else len(b)

    def flush(self):
        if self.f is not None:
            self.f.flush()


def write_layer_tar(layer_dir: str | os.PathLike, out) -> None:
    """Write ``layer_dir`` (overlay form) as an OCI layer tar to the file object ``out``."""
    root = os.fspath(layer_dir)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, root)
            if rel_dir != "." and is_opaque(dirpath):
                ti = tarfile.TarInfo(f"{rel_dir}/.wh..wh..opq")
                ti.mtime = 0
                tar.addfile(ti)
            for name in sorted([*dirnames, *filenames]):
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                st = os.lstat(path)
                if is_whiteout(path):
                    ti = tarfile.TarInfo(os.path.join(os.path.dirname(rel), ".wh." + name))
                    ti.mtime = int(st.st_mtime)
                    tar.addfile(ti)
                    continue
                if stat.S_ISSOCK(st.st_mode):
                    continue
                ti = tar.gettarinfo(path, arcname=rel)
                ti.uname = ti.gname = ""
                if ti.isreg():
                    with open(path, "rb") as f:
                        tar.addfile(ti, f)
                else:
                    tar.addfile(ti)


class Blob:
    """A blob in a scratch file: ``digest``, ``size``, ``path``, ``media_type``."""

    def __init__(self, path: Path, digest: str, size: int, media_type: str):
        self.path, self.digest, self.size, self.media_type = path, digest, size, media_type

    def descriptor(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


def _write_blob(tmp: Path, data: bytes, media_type: str) -> Blob:
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    p = tmp / d.partition(":")[2]
    p.write_bytes(data)
    return Blob(p, d, len(data), media_type)


def image_blobs(store: ImageStore, img: Image, tmp: Path, fmt: str = "oci") -> tuple[Blob, list[Blob], Blob]:
    """(config, layers bottom first, manifest) of ``img`` as blobs in ``tmp``. ``fmt``: oci|v2s2."""
    layer_type = OCI_LAYER_GZIP if fmt == "oci" else DOCKER_LAYER_GZIP
    layers, diff_ids = [], []
    for i, lid in enumerate(img.layers):
        part = tmp / f"layer-{i}.part"
        with open(part, "wb") as raw:
            outer = _Hashing(raw)
            with gzip.GzipFile(fileobj=outer, mode="wb", mtime=0, compresslevel=6) as gz:
                inner = _Hashing(gz)
                write_layer_tar(store.layer_dir(lid), inner)
        digest = "sha256:" + outer.h.hexdigest()
        final = tmp / digest.partition(":")[2]
        os.replace(part, final)
        layers.append(Blob(final, digest, outer.n, layer_type))
        diff_ids.append("sha256:" + inner.h.hexdigest())
    c = img.config or {}
    cfg_inner = {k: v for k, v in c.items() if k != "Created"}
    config = {"architecture": _arch(), "os": "linux", "config": cfg_inner,
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    if c.get("Created"):
        config["created"] = c["Created"]
    cfg_blob = _write_blob(tmp, json.dumps(config, sort_keys=True, separators=(",", ":")).encode(),
                           OCI_CONFIG if fmt == "oci" else DOCKER_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST if fmt == "oci" else DOCKER_MANIFEST,
                "config": cfg_blob.descriptor(), "layers": [b.descriptor() for b in layers]}
    man_blob = _write_blob(tmp, json.dumps(manifest, indent=2).encode(), manifest["mediaType"])
    return cfg_blob, layers, man_blob


def _arch() -> str:
    from .pull import host_platform
    return host_platform()["architecture"]


def save(ref: str, output: str | os.PathLike, *, fmt: str = "docker", store: ImageStore | None = None) -> Path:
    """``save -o FILE REF``: a docker-save tar (``manifest.json``) or an OCI layout tar
    (``oci-layout``, ``index.json``, ``blobs/sha256/``). Written beside ``output`` and renamed:
    a failure leaves no half-written file."""
    store = store or ImageStore()
    img = store.get(ref)
    out = Path(output)
    tmp = store.tmpdir("save-")
    part = out.with_name(f".{out.name}.part")
    try:
        cfg, layers, man = image_blobs(store, img, tmp, "oci" if fmt == "oci" else "v2s2")
        name = ref if "@" not in ref and not ref.startswith("sha256:") else (img.names or [None])[0]
        try:
            with tarfile.open(part, "w", format=tarfile.PAX_FORMAT) as tar:
                def add_bytes(arc, data: bytes):
                    ti = tarfile.TarInfo(arc)
                    ti.size = len(data)
                    import io
                    tar.addfile(ti, io.BytesIO(data))
                if fmt == "oci":
                    add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
                    desc = man.descriptor()
                    if name:
                        from .store import normalize_ref
                        desc["annotations"] = {"org.opencontainers.image.ref.name": normalize_ref(name).rsplit(":", 1)[1],
                                               "io.containerd.image.name": normalize_ref(name)}
                    add_bytes("index.json", json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                        "manifests": [desc]}).encode())
                    for b in (cfg, *layers, man):
                        tar.add(b.path, f"blobs/sha256/{b.digest.partition(':')[2]}")
                else:
                    from .store import normalize_ref
                    entry = {"Config": f"{cfg.digest.partition(':')[2]}.json",
                             "RepoTags": [normalize_ref(name)] if name else [],
                             "Layers": [f"{b.digest.partition(':')[2]}/layer.tar.gz" for b in layers]}
                    add_bytes("manifest.json", json.dumps([entry]).encode())
                    tar.add(cfg.path, entry["Config"])
                    for b, arc in zip(layers, entry["Layers"]):
                        tar.add(b.path, arc)
            os.replace(part, out)
        except OSError as exc:
            from ..errors import from_oserror
            raise from_oserror(exc, "save image", out) from exc
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        _rmtree(tmp)
    return out



