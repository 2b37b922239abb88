"""``minicontainer push``: blobs first, manifest last. Notebook 09.

For each blob (layers, then the config): ``HEAD /v2/<name>/blobs/<digest>`` — 200 means the registry
has it already (skip: that is why a second push is fast); else ``POST /v2/<name>/blobs/uploads/``
→ 202 with a ``Location`` → ``PUT <Location>?digest=<digest>`` with the bytes (a monolithic upload;
chunked ``PATCH`` uploads are for resuming very large blobs). Last, ``PUT
/v2/<name>/manifests/<tag>`` with the manifest's media type as ``Content-Type``: the registry
refuses a manifest whose blobs it does not have, so the order is the protocol's, not ours.
"""

from __future__ import annotations

import urllib.parse

from ..errors import ConfigError
from .export import image_blobs
from .pull import client_for
from .reference import parse
from .store import ImageStore, _rmtree


def push(ref_s: str, *, fmt: str = "v2s2", store: ImageStore | None = None, insecure=(),
         credentials=None, progress=None, timeout: float = 60.0) -> str:
    """Push image ``ref_s`` (a name in the store that says where: ``HOST/REPO:TAG``); returns the
    manifest digest."""
    from .progress import PullProgress
    store = store or ImageStore()
    ref = parse(ref_s)
    if not ref.tag:
        raise ConfigError(f"push {ref_s}: push needs a tag, not a digest", hint="push NAME:TAG")
    img = store.get(ref_s)
    prog = progress if progress is not None else PullProgress()
    client = client_for(ref, insecure, credentials, timeout)
    scope = f"repository:{ref.path}:pull,push"
    tmp = store.tmpdir("push-")
    try:
        prog.status(f"The push refers to repository [{ref.repository}]")
        cfg, layers, man = image_blobs(store, img, tmp, fmt)
        for blob in [*layers, cfg]:
            _push_blob(client, ref, scope, blob, prog)
        with open(man.path, "rb") as f:
            body = f.read()
        resp, _ = client.request("PUT", f"/v2/{ref.path}/manifests/{ref.tag}", scope=scope,
                                 headers={"Content-Type": man.media_type,
                                          "Content-Length": str(len(body))},
                                 body=body, ok=(200, 201), what=f"push manifest {ref.familiar}")
        digest = resp.getheader("Docker-Content-Digest") or man.digest
        prog.status(f"{ref.tag}: digest: {man.digest} size: {man.size}")
        store.set_digest(ref.familiar_name, man.digest, img.id)
        return man.digest
    finally:
        _rmtree(tmp)
        client.close()
        prog.close()


def _push_blob(client, ref, scope, blob, prog) -> None:
    what = f"push blob {blob.digest[:19]}…"
    resp, _ = client.request("HEAD", f"/v2/{ref.path}/blobs/{blob.digest}", scope=scope, what=what,
                             ok=(200, 404))
    if resp.status == 200:
        prog.layer(blob.digest, "Layer already exists")
        return
    prog.layer(blob.digest, "Preparing")
    resp, _ = client.request("POST", f"/v2/{ref.path}/blobs/uploads/", scope=scope, what=what,
                             headers={"Content-Length": "0"}, body=b"", ok=(202,))
    loc = resp.getheader("Location")
    if not loc:
        raise ConfigError(f"{what}: the registry gave no upload Location")
    url = urllib.parse.urljoin(client.url("/v2/"), loc)
    url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": blob.digest})
    with open(blob.path, "rb") as raw:
        f = _Counting(raw, lambda n: prog.layer(blob.digest, "Pushing", done=n, total=blob.size))
        client.request("PUT", url, scope=scope, what=what, body=f, ok=(201,),
                       headers={"Content-Type": "application/octet-stream",
                                "Content-Length": str(blob.size)})
    prog.layer(blob.digest, "Pushed")


class _Counting:
    """A file for http.client's body: reports the bytes sent so far (it reads 8 KiB at a time)."""

    def __init__(self, f, report):
        self.f, self.report, self.n = f, report, 0

    def read(self, size=-1):
        data = self.f.read(size)
        self.n += len(data)
        if data:
            self.report(self.n)
        return data

    def seek(self, pos, whence=0):
        self.n = pos if whence == 0 else self.n
        return self.f.seek(pos, whence)
