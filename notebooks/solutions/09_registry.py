# Solutions for notebook 09. Try the exercises first!

# %% Exercise 09.1
# Exercise 09.1 — download_blob(url, headers, digest, dest): a blob streamed to a file, its digest checked
import hashlib
import os
import urllib.request


def download_blob(url: str, headers: dict, digest: str, dest: str) -> None:
    """Hash each chunk as it arrives and write it to a scratch file beside ``dest``; only a blob whose
    digest matches is renamed into place (a rename is atomic: nobody ever sees half a blob). On any
    failure the scratch file goes, so a retry starts clean."""
    algorithm, _, expected = digest.partition(":")
    h = hashlib.new(algorithm)
    part = dest + ".part"
    try:
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as resp, open(part, "wb") as out:
            while chunk := resp.read(1 << 16):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != expected:
            raise ValueError(f"{url}: content is {algorithm}:{h.hexdigest()[:12]}…, expected {digest[:19]}…")
        os.replace(part, dest)
    finally:
        if os.path.exists(part):
            os.unlink(part)

# %% Exercise 09.2
# Exercise 09.2 — pick_manifest(index, os_name, arch, variant): the index entry for one platform
def pick_manifest(index: dict, os_name: str, arch: str, variant: str | None = None) -> dict | None:
    """The first entry whose platform has this os and architecture (and variant, when one is asked
    for). Entries without a platform (or attestations, os "unknown") never match."""
    for desc in index.get("manifests") or []:
        p = desc.get("platform") or {}
        if p.get("os") == os_name and p.get("architecture") == arch and \
                (variant is None or p.get("variant") == variant):
            return desc
    return None
