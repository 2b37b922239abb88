"""Checks for notebook 09's exercises (registries), graded against a throwaway local registry."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile

from . import ExerciseFailed, exercise, run_in_child

_REPO = "course/busybox"
_SCOPE = f"repository:{_REPO}:pull"


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _get(client, path: str, accept: str | None = None) -> bytes:
    headers = {"Accept": accept} if accept else {}
    _, body = client.request("GET", path, scope=_SCOPE, headers=headers, what=f"check: GET {path}")
    return body


def _largest_layer(client) -> dict:
    man = json.loads(_get(client, f"/v2/{_REPO}/manifests/1", "application/vnd.oci.image.manifest.v1+json"))
    return max(man["layers"], key=lambda d: d["size"])


@exercise("09.1")
def check_download_blob(download_blob) -> str:
    """Build exercise: the learner's downloader is run against a real registry, then through a proxy that
    flips one byte, then through one that cuts the connection halfway. Graded by the files on disk: the
    good blob is there with the right sha256; after a bad transfer nothing is left in the directory."""
    from ..images.lab import FaultProxy, RegistryLab

    with RegistryLab() as lab:
        client = lab.client()
        try:
            layer = _largest_layer(client)
            auth = {"Authorization": client._tokens[_SCOPE]}
        finally:
            client.close()
        digest, size = layer["digest"], layer["size"]
        out = tempfile.mkdtemp(prefix="mc09-ex-")
        try:
            dest = os.path.join(out, "blob")
            url = f"http://{lab.host}/v2/{_REPO}/blobs/{digest}"
            run_in_child(download_blob, url, auth, digest, dest, timeout=60)
            if not os.path.isfile(dest):
                raise ExerciseFailed(f"no file at {dest} after downloading {digest[:19]}…")
            got = _sha256_file(dest)
            if got != digest or os.path.getsize(dest) != size:
                raise ExerciseFailed(f"{dest}: {os.path.getsize(dest)} bytes, {got[:19]}…; expected {size} "
                                     f"bytes, {digest[:19]}… (write the bytes exactly as they arrive)")
            extra = sorted(set(os.listdir(out)) - {"blob"})
            if extra:
                raise ExerciseFailed(f"after a good download {out} also holds {extra}: remove scratch files")
            os.unlink(dest)
            for mode, story in (("flip", "one byte changed on the way"), ("truncate", "a connection cut halfway")):
                proxy = FaultProxy(lab.host, mode)
                try:
                    bad = f"http://{proxy.host}/v2/{_REPO}/blobs/{digest}"
                    try:
                        run_in_child(download_blob, bad, auth, digest, dest, timeout=60)
                    except NotImplementedError:
                        raise
                    except ExerciseFailed:
                        raise
                    except Exception:  # noqa: BLE001 - any error is the right answer here
                        pass
                    else:
                        raise ExerciseFailed(f"a blob with {story} was accepted: compare the sha256 of what "
                                             f"arrived with {digest[:19]}… and raise when they differ")
                finally:
                    proxy.close()
                left = sorted(os.listdir(out))
                if left:
                    raise ExerciseFailed(f"after a failed download ({story}) {out} still holds {left}: "
                                         f"remove what you wrote before raising")
        finally:
            shutil.rmtree(out, ignore_errors=True)
    return (f"{digest[:19]}… ({size} bytes) streamed and verified; a flipped byte and a cut connection "
            f"refused, nothing left behind")


_HUB_LIKE = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    {"digest": "sha256:" + "1" * 64, "platform": {"os": "windows", "architecture": "amd64"}},
    {"digest": "sha256:" + "2" * 64, "platform": {"os": "linux", "architecture": "amd64"}},
    {"digest": "sha256:" + "3" * 64, "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
    {"digest": "sha256:" + "4" * 64, "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
    {"digest": "sha256:" + "5" * 64, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    {"digest": "sha256:" + "6" * 64, "platform": {"os": "unknown", "architecture": "unknown"},
     "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
    {"digest": "sha256:" + "7" * 64},
]}
_CASES = [(("linux", "amd64", None), "2"), (("windows", "amd64", None), "1"), (("linux", "arm", "v7"), "4"),
          (("linux", "arm", "v6"), "3"), (("linux", "arm64", None), "5"), (("linux", "arm64", "v8"), "5"),
          (("linux", "s390x", None), None), (("linux", "arm", "v5"), None)]


@exercise("09.2")
def check_pick_manifest(pick_manifest) -> str:
    """Synthetic indexes (Docker Hub's shape: windows first, arm variants, an attestation, an entry without a
    platform), then the lab registry's real index: the digest picked must name a manifest the registry
    serves, whose config (host) or only file /ARCH (the other platform) is of the platform asked for."""
    from ..images.lab import RegistryLab, other_arch
    from ..images.pull import host_platform

    for (os_name, arch, variant), want in _CASES:
        got = pick_manifest(json.loads(json.dumps(_HUB_LIKE)), os_name, arch, variant)
        plat = "/".join(x for x in (os_name, arch, variant) if x)
        if want is None:
            if got is not None:
                raise ExerciseFailed(f"{plat}: the index has no such entry, expected None, got {got!r}")
            continue
        if not isinstance(got, dict) or got.get("digest") != "sha256:" + want * 64:
            expected = next(d for d in _HUB_LIKE["manifests"] if d["digest"] == "sha256:" + want * 64)
            raise ExerciseFailed(f"{plat}: expected the entry {expected.get('platform')}, got {got!r}")
    here = host_platform()["architecture"]
    there = other_arch(here)
    with RegistryLab() as lab:
        client = lab.client()
        try:
            index = json.loads(_get(client, f"/v2/{_REPO}/manifests/multi",
                                    "application/vnd.oci.image.index.v1+json"))
            seen = {}
            for arch in (here, there):
                d = pick_manifest(json.loads(json.dumps(index)), "linux", arch, None)
                if not isinstance(d, dict) or "digest" not in d:
                    raise ExerciseFailed(f"linux/{arch} in the lab's index: expected a descriptor, got {d!r}")
                man = json.loads(_get(client, f"/v2/{_REPO}/manifests/{d['digest']}",
                                      "application/vnd.oci.image.manifest.v1+json"))
                cfg = json.loads(_get(client, f"/v2/{_REPO}/blobs/{man['config']['digest']}"))
                if cfg.get("architecture") != arch:
                    raise ExerciseFailed(f"linux/{arch}: the manifest you picked is for "
                                         f"{cfg.get('os')}/{cfg.get('architecture')}")
                seen[arch] = d["digest"]
            man = json.loads(_get(client, f"/v2/{_REPO}/manifests/{seen[there]}",
                                  "application/vnd.oci.image.manifest.v1+json"))
            layer = _get(client, f"/v2/{_REPO}/blobs/{man['layers'][0]['digest']}")
            with tarfile.open(fileobj=io.BytesIO(layer)) as t:
                arch_file = t.extractfile("ARCH").read().decode().strip()
            if arch_file != there:
                raise ExerciseFailed(f"linux/{there}: its layer's /ARCH says {arch_file!r}")
        finally:
            client.close()
    return (f"{len(_CASES)} platforms chosen from a Hub-like index; from the lab registry's index: "
            f"linux/{here} → {seen[here][:19]}…, linux/{there} → {seen[there][:19]}… (its /ARCH: {arch_file})")
