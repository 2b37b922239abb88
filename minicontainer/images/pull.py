"""``minicontainer pull``: index → manifest → config → layers, each digest checked. Notebook 09.

Order of work, and why:

1. the manifest (its sha256 checked against ``Docker-Content-Digest`` and the digest asked for);
   an index (OCI) or manifest list (Docker) → the entry for our platform, fetched by digest;
2. the config blob — its ``rootfs.diff_ids`` are the store's layer ids, so a layer already in the
   store is known *before* downloading anything and is not downloaded again;
3. the missing layers, ``MAX_PARALLEL`` at a time (threads: the work is waiting on sockets and
   zlib, which releases the GIL), each streamed through sha256 → gunzip/zstd → sha256 → our safe
   tar extractor into a scratch directory; a dropped connection resumes with ``Range``;
4. only when every layer is verified: all layers and the image go into the store at once, under
   the store's lock. A failure anywhere before leaves nothing but removed scratch directories; two
   pulls of one image at the same time both arrive at the same ids and store one copy.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import platform as _platform
import threading
import time

from ..errors import ConfigError, ImageError, NotFoundError
from .reference import Reference, parse
from .registry import INDEX_TYPES, MANIFEST_TYPES, MAX_MANIFEST, Client, RegistryError
from .store import Image, ImageStore, _rmtree

MAX_PARALLEL = 3          #: docker's max-concurrent-downloads default
RETRIES = 3               #: resumed attempts per blob after a dropped connection
SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
           "application/vnd.docker.distribution.manifest.v1+prettyjws")
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm", "i686": "386",
         "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_platform() -> dict:
    m = _platform.machine()
    p = {"os": "linux", "architecture": _ARCH.get(m, m)}
    if m.startswith("armv"):
        p["variant"] = "v" + m[4]
    return p


def parse_platform(s: str | None) -> dict:
    """``linux/arm64/v8`` → {os, architecture, variant}; None → the host's."""
    if not s:
        return host_platform()
    parts = s.split("/")
    if not 2 <= len(parts) <= 3 or not all(parts):
        raise ConfigError(f"invalid platform {s!r}", hint="use OS/ARCH[/VARIANT], e.g. linux/arm64")
    out = {"os": parts[0], "architecture": _ARCH.get(parts[1], parts[1])}
    if len(parts) == 3:
        out["variant"] = parts[2]
    return out


def select_platform(index: dict, want: dict, what: str) -> dict:
    """The descriptor of ``index`` for platform ``want`` (attestations, ``unknown/unknown``, skipped)."""
    have = []
    for d in index.get("manifests") or []:
        p = d.get("platform") or {}
        if p.get("os") == "unknown":
            continue
        have.append("/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x))
        if p.get("os") == want["os"] and p.get("architecture") == want["architecture"] and \
                (not want.get("variant") or p.get("variant") in (None, want["variant"])):
            return d
    plat = "/".join(x for x in (want["os"], want["architecture"], want.get("variant")) if x)
    raise ImageError(f"{what}: no manifest for {plat} in the index (it has: {', '.join(have) or 'none'})",
                     hint="choose one with --platform OS/ARCH")


def _check_digest(data: bytes, expected: str | None, what: str) -> str:
    got = "sha256:" + hashlib.sha256(data).hexdigest()
    if expected and expected != got:
        raise ImageError(f"{what}: content is {got[:19]}…, expected {expected[:19]}…",
                         hint="the registry or something between sent corrupt data; nothing was stored")
    return got


def fetch_manifest(client: Client, ref: Reference, selector: str, scope: str) -> tuple[dict, str, str]:
    """(manifest JSON, media type, digest) — digest checked against the header and the selector."""
    what = f"manifest {ref.repository}:{selector}" if ":" not in selector else \
        f"manifest {ref.repository}@{selector[:19]}…"
    resp, body = client.request("GET", f"/v2/{ref.path}/manifests/{selector}", scope=scope, what=what,
                                headers={"Accept": ", ".join(MANIFEST_TYPES)})
    if len(body) > MAX_MANIFEST:
        raise ImageError(f"{what}: larger than {MAX_MANIFEST} bytes", hint="not a manifest")
    digest = _check_digest(body, selector if selector.startswith("sha256:") else None, what)
    header = resp.getheader("Docker-Content-Digest")
    if header and header.startswith("sha256:") and header != digest:
        raise ImageError(f"{what}: body's digest {digest[:19]}… differs from Docker-Content-Digest "
                         f"{header[:19]}…", hint="corrupt transfer or a misbehaving proxy; retry")
    try:
        doc = json.loads(body)
        if not isinstance(doc, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        raise ImageError(f"{what}: not JSON ({exc})", hint="the registry sent no manifest") from None
    mtype = doc.get("mediaType") or (resp.getheader("Content-Type") or "").split(";")[0].strip()
    if not doc.get("mediaType") and "manifests" in doc and mtype not in INDEX_TYPES:
        mtype = INDEX_TYPES[0]
    if mtype in SCHEMA1 or doc.get("schemaVersion") == 1:
        raise ImageError(f"{what}: Docker schema 1 manifests are not supported (deprecated since 2017)",
                         hint="push the image again with a current client")
    return doc, mtype, digest


class BlobStream(io.RawIOBase):
    """A blob's body as a file: sha256 and size checked when it ends; a dropped connection is
    resumed with ``Range: bytes=N-`` (up to RETRIES times) so the consumer never notices."""

    def __init__(self, client: Client, ref: Reference, desc: dict, scope: str,
                 on_bytes=None):
        self.client, self.ref, self.scope = client, ref, scope
        self.digest, self.size = desc["digest"], desc.get("size")
        self.h = hashlib.sha256()
        self.pos, self.retries, self.on_bytes = 0, 0, on_bytes
        self.what = f"blob {self.digest[:19]}… of {ref.repository}"
        self.resp = self._open()
        self.done = False

    def readable(self):
        return True

    def _open(self):
        headers = {"Range": f"bytes={self.pos}-"} if self.pos else {}
        resp = self.client.request("GET", f"/v2/{self.ref.path}/blobs/{self.digest}", scope=self.scope,
                                   what=self.what, headers=headers, ok=(200, 206), stream=True)
        if self.pos and resp.status != 206:          # no range support: skip what we have
            left = self.pos
            while left:
                chunk = resp.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
        return resp

    def readinto(self, b) -> int:
        if self.done:
            return 0
        while True:
            try:
                n = self.resp.readinto(b)
            except (http.client.IncompleteRead, OSError, http.client.HTTPException) as exc:
                n, err = 0, exc
            else:
                err = None
            if n:
                self.h.update(b[:n])
                self.pos += n
                if self.on_bytes:
                    self.on_bytes(self.pos)
                return n
            if err is None and (self.size is None or self.pos >= self.size):
                self._finish()
                return 0
            # ended early (the server closed, a reset, a timeout): resume where we are
            self.resp.close()
            self.client._drop(self.client.scheme, self.client.host)
            if self.retries >= RETRIES:
                why = f"{type(err).__name__}" if err else "connection closed"
                raise RegistryError(f"{self.what}: download ended at {self.pos} of {self.size} bytes "
                                    f"({why}) after {RETRIES} resumed attempts",
                                    hint="the network or the registry drops connections; retry the pull")
            self.retries += 1
            time.sleep(0.2 * self.retries)
            self.resp = self._open()

    def _finish(self) -> None:
        self.done = True
        got = "sha256:" + self.h.hexdigest()
        if self.size is not None and self.pos != self.size:
            raise ImageError(f"{self.what}: {self.pos} bytes, the manifest says {self.size}",
                             hint="the registry sent a different blob; nothing was stored")
        if got != self.digest:
            raise ImageError(f"{self.what}: content is {got[:19]}…, expected {self.digest[:19]}…",
                             hint="the blob was corrupted on its way; nothing was stored")

    def close(self):
        try:
            self.resp.close()
        finally:
            super().close()


def _fetch_json_blob(client: Client, ref: Reference, desc: dict, scope: str) -> dict:
    s = BlobStream(client, ref, desc, scope)
    data = b""
    while True:
        chunk = s.read(1 << 20)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_MANIFEST:
            raise ImageError(f"config {desc['digest'][:19]}…: larger than {MAX_MANIFEST} bytes")
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ImageError(f"config {desc['digest'][:19]}… of {ref.repository}: not JSON ({exc})") from None


def resolve_manifest(client: Client, ref: Reference, platform: dict, scope: str) -> tuple[dict, str]:
    """(image manifest for ``platform``, the digest the reference names — the index's if any)."""
    doc, mtype, digest = fetch_manifest(client, ref, ref.selector, scope)
    if mtype in INDEX_TYPES or "manifests" in doc:
        d = select_platform(doc, platform, f"pull {ref.familiar}")
        doc, mtype, _ = fetch_manifest(client, ref, d["digest"], scope)
        if "manifests" in doc:
            raise ImageError(f"pull {ref.familiar}: an index inside an index is not supported")
    if "config" not in doc or "layers" not in doc:
        raise ImageError(f"pull {ref.familiar}: the manifest ({mtype or 'no media type'}) has no "
                         "config or layers", hint="not an image manifest (an artifact?)")
    return doc, digest


def client_for(ref: Reference, insecure=(), credentials=None, timeout: float = 30.0) -> Client:
    if credentials is None:
        from .credentials import lookup
        credentials = lookup(ref.domain)
    return Client(ref.registry_host, credentials=credentials, insecure=insecure, timeout=timeout)


def pull(ref_s: str, *, store: ImageStore | None = None, platform: str | None = None,
         insecure=(), credentials=None, progress=None, timeout: float = 30.0) -> Image:
    """Pull ``ref_s`` into the store; returns the Image (named by the reference's tag)."""
    from .progress import PullProgress
    store = store or ImageStore()
    ref = parse(ref_s)
    prog = progress if progress is not None else PullProgress()
    want = parse_platform(platform)
    store.clean_tmp()                             # what a killed pull left (SIGKILL skips finally)
    client = client_for(ref, insecure, credentials, timeout)
    scope = f"repository:{ref.path}:pull"
    tmps: list = []
    try:
        man, digest = resolve_manifest(client, ref, want, scope)
        # (after the manifest: a bad name or a refusal is then the only line the user sees)
        prog.status(f"{ref.tag or ref.digest[:19]}: Pulling from {ref.familiar_name}")
        cfg = _fetch_json_blob(client, ref, man["config"], scope)
        layers = man["layers"]
        diff_ids = list((cfg.get("rootfs") or {}).get("diff_ids") or [])
        if len(diff_ids) != len(layers):
            raise ImageError(f"pull {ref.familiar}: the config lists {len(diff_ids)} layers, "
                             f"the manifest {len(layers)}", hint="a broken image; nothing was stored")
        ids = [d.partition(":")[2] for d in diff_ids]
        todo = []
        for desc, lid in zip(layers, ids):
            if store.has_layer(lid):
                prog.layer(desc["digest"], "Already exists")
            elif lid not in [t[1] for t in todo]:
                todo.append((desc, lid))
                prog.layer(desc["digest"], "Pulling fs layer", total=desc.get("size"))
        results: dict[str, tuple] = {}
        _download_all(client, ref, scope, store, todo, prog, results, tmps)
        with store.lock():                       # everything verified: commit in one go
            for desc, lid in todo:
                tmp, _ = results[lid]
                store.add_layer_dir(tmp / "diff", digest=lid, source=f"pull {ref.repository}@{desc['digest']}")
            c = dict(cfg.get("config") or {}, Created=cfg.get("created"))
            img = store.add_image(ids, c, name=ref.familiar if ref.tag else None)
            store.set_digest(ref.familiar_name, ref.digest or digest, img.id)
        prog.status(f"Digest: {ref.digest or digest}")
        prog.status(f"Status: {'Downloaded newer image' if todo else 'Image is up to date'} "
                    f"for {ref.familiar}")
        return store.get(img.id)
    finally:
        for t in tmps:
            _rmtree(t)
        client.close()
        prog.close()


def _download_all(client, ref, scope, store, todo, prog, results, tmps) -> None:
    """Each missing layer in a thread (at most MAX_PARALLEL); the first error stops the rest."""
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
    from .importer import unpack_layer
    stop = threading.Event()

    def one(desc, lid):
        if stop.is_set():
            return
        total = desc.get("size")

        def on_bytes(n):
            if stop.is_set():
                raise ImageError("pull cancelled")
            prog.layer(desc["digest"], "Downloading", done=n, total=total)
        blob = BlobStream(client, ref, desc, scope, on_bytes)
        try:
            tmp, got = unpack_layer(store, blob, label=desc["digest"].partition(":")[2][:12],
                                    expected="sha256:" + lid)
        finally:
            blob.close()
            client.close()                       # this thread's connections
        tmps.append(tmp)
        results[lid] = (tmp, got)
        prog.layer(desc["digest"], "Pull complete")

    if len(todo) <= 1:
        for desc, lid in todo:
            one(desc, lid)
        return
    with ThreadPoolExecutor(min(MAX_PARALLEL, len(todo))) as ex:
        futs = [ex.submit(one, d, lid) for d, lid in todo]
        done, _ = wait(futs, return_when=FIRST_EXCEPTION)
        for f in done:
            if f.exception():
                stop.set()
                for g in futs:
                    g.cancel()
        wait(futs)
        for f in futs:
            if not f.cancelled() and f.exception():
                raise f.exception()


def ensure_image(ref_s: str, policy: str = "missing", *, store: ImageStore | None = None,
                 **kw) -> Image | None:
    """For ``run --pull missing|always|never``: the image, pulled if the policy says so."""
    if policy not in ("missing", "always", "never"):
        raise ConfigError(f"invalid --pull {policy!r}", hint="use missing, always or never")
    store = store or ImageStore()
    if policy != "always":
        try:
            return store.get(ref_s)
        except NotFoundError:
            if policy == "never":
                raise
    try:
        parse(ref_s)
    except ConfigError:
        if policy == "always":
            raise
        return store.get(ref_s)                 # an id prefix: only local
    return pull(ref_s, store=store, **kw)

