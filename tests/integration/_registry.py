"""Test counterparts for the registry tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1
with its storage in a temp dir, a small token server (RS256 JWTs signed with openssl), a proxy that
injects faults, and images pushed with skopeo. Nothing listens anywhere but loopback."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from pathlib import Path

# The registry, its token server and the fault proxy live in the package (notebook 09 starts them too).
from minicontainer.images.lab import (ISSUER, PASSWORD, SERVICE, USER, FaultProxy, Registry,  # noqa: F401
                                      TokenServer, free_port)


def skopeo_copy(src: str, dst: str, *, creds: bool = True, fmt: str | None = None, all_: bool = False) -> None:
    argv = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]

    if creds:
        argv += ["--dest-creds", f"{USER}:{PASSWORD}"]
    if fmt:
        argv += ["--format", fmt]
    if all_:
        argv += ["--all"]
    subprocess.run(argv + [src, dst], check=True, capture_output=True, timeout=120)


def oci_layout_with_two_platforms(src_oci_tar: Path, dest: Path, other_arch: str) -> str:
    """An OCI layout dir whose index lists the busybox image (host platform) and a second image for
    ``other_arch`` whose one layer holds /ARCH (a file naming its platform). Returns the other's
    layer content."""
    dest.mkdir()
    with tarfile.open(src_oci_tar) as t:
        t.extractall(dest)  # our own archive, made above
    index = json.loads((dest / "index.json").read_text())
    host_desc = index["manifests"][0]
    host_man = json.loads((dest / "blobs/sha256" / host_desc["digest"].split(":")[1]).read_bytes())
    host_cfg = json.loads((dest / "blobs/sha256" / host_man["config"]["digest"].split(":")[1]).read_bytes())

    def blob(data: bytes) -> dict:
        d = hashlib.sha256(data).hexdigest()
        (dest / "blobs/sha256" / d).write_bytes(data)
        return {"digest": f"sha256:{d}", "size": len(data)}

    import io
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = f"{other_arch}\n".encode()
        ti = tarfile.TarInfo("ARCH")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    tar = buf.getvalue()
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob(tar)}
    cfg = {"architecture": other_arch, "os": "linux", "config": {"Cmd": ["/bin/sh"]},
           "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(tar).hexdigest()}"]}}
    cdesc = {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(json.dumps(cfg).encode())}
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cdesc,
           "layers": [layer]}
    mdesc = {"mediaType": man["mediaType"], **blob(json.dumps(man).encode()),
             "platform": {"os": "linux", "architecture": other_arch}}
    host_desc = {k: v for k, v in host_desc.items() if k != "annotations"}
    host_desc["platform"] = {"os": "linux", "architecture": host_cfg["architecture"]}
    inner = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [mdesc, host_desc]}
    idesc = {"mediaType": inner["mediaType"], **blob(json.dumps(inner).encode()),
             "annotations": {"org.opencontainers.image.ref.name": "multi"}}
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [idesc]}))
    return f"{other_arch}\n"


def oci_layout_zstd(src_oci_tar: Path, dest: Path) -> None:
    """The same image with its layers recompressed as zstd (skopeo 1.9 keeps gzip layers as they are)."""
    import gzip
    import zstandard
    dest.mkdir()
    with tarfile.open(src_oci_tar) as t:
        t.extractall(dest)  # our own archive
    index = json.loads((dest / "index.json").read_text())
    blobs = dest / "blobs/sha256"
    desc = index["manifests"][0]
    man = json.loads((blobs / desc["digest"].split(":")[1]).read_bytes())
    for layer in man["layers"]:
        raw = gzip.decompress((blobs / layer["digest"].split(":")[1]).read_bytes())
        z = zstandard.ZstdCompressor().compress(raw)
        d = hashlib.sha256(z).hexdigest()
        (blobs / d).write_bytes(z)
        layer.update(mediaType="application/vnd.oci.image.layer.v1.tar+zstd", digest=f"sha256:{d}", size=len(z))
    data = json.dumps(man).encode()
    d = hashlib.sha256(data).hexdigest()
    (blobs / d).write_bytes(data)
    desc.update(digest=f"sha256:{d}", size=len(data))
    (dest / "index.json").write_text(json.dumps(index))
