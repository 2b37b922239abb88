"""Pull a ~100 MB image from a loopback registry: `minicontainer pull` against `skopeo copy` to a dir.

    .venv/bin/python bench/pull.py [N] [MB]

Debian's docker-registry on 127.0.0.1 (storage in a temp dir, no auth); an image of four layers of
random bytes (incompressible: gzip costs what it costs on real data's worst case) made here and pushed
with skopeo. Then, interleaved N times (default 5), each into an empty place:

- minicontainer: `python -m minicontainer.cli pull -q REF` into an empty data root — download, verify
  both digests, gunzip and unpack each layer into the store;
- skopeo: `skopeo copy docker://REF dir:DIR` — download and verify only (blobs stay compressed files).

Not like for like: skopeo copy to a dir does not unpack. Medians in seconds; nothing asserted.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration._registry import Registry, skopeo_copy  # noqa: E402


def make_image(dest: Path, mb: int, layers: int = 4) -> None:
    """An OCI layout at ``dest`` (tag ``bench``) of ``layers`` gzip layers of random files."""
    blobs = dest / "blobs/sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> dict:
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return {"digest": f"sha256:{d}", "size": len(data)}
    descs, diff_ids = [], []
    per = mb * 1_000_000 // layers
    for i in range(layers):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            for j in range(8):
                data = os.urandom(per // 8)
                ti = tarfile.TarInfo(f"data/l{i}/f{j}")
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
        raw = buf.getvalue()
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      **blob(gzip.compress(raw, 1, mtime=0))})
    cfg = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
           "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(json.dumps(cfg).encode())},
           "layers": descs}
    mdesc = {"mediaType": man["mediaType"], **blob(json.dumps(man).encode()),
             "annotations": {"org.opencontainers.image.ref.name": "bench"}}
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [mdesc]}))
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    mb = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    work = Path(tempfile.mkdtemp(prefix="mc-bench-pull-"))
    reg = None
    try:
        make_image(work / "oci", mb)
        (work / "reg").mkdir()
        reg = Registry(work / "reg", None)
        ref = f"{reg.host}/bench/big:latest"
        skopeo_copy(f"oci:{work / 'oci'}:bench", f"docker://{ref}", creds=False)
        env = dict(os.environ, MINICONTAINER_NO_SERVER="1")
        times = {"minicontainer pull": [], "skopeo copy → dir": []}
        for i in range(n):
            data = work / f"data{i}"
            env["MINICONTAINER_DATA_ROOT"] = str(data)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "minicontainer.cli", "pull", "-q", ref], env=env, check=True,
                           stdout=subprocess.DEVNULL, cwd=ROOT)
            times["minicontainer pull"].append(time.perf_counter() - t0)
            shutil.rmtree(data)
            out = work / f"dir{i}"
            t0 = time.perf_counter()
            subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{ref}", f"dir:{out}"],
                           check=True)
            times["skopeo copy → dir"].append(time.perf_counter() - t0)
            shutil.rmtree(out)
        base = statistics.median(times["skopeo copy → dir"])
        print(f"pull of a {mb} MB image (4 gzip layers of random bytes) from 127.0.0.1, N={n}, interleaved")
        for k, v in times.items():
            med = statistics.median(v)
            print(f"  {k:20} median {med:6.2f} s  (min {min(v):.2f}, max {max(v):.2f})  {med / base:.2f} x skopeo")
    finally:
        if reg:
            reg.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
