"""What ``--userns=remap`` costs, with idmapped layers and with its fallback, a chowned copy (measured,
never asserted).

    flock -o /work/kernel.lock .venv/bin/python bench/userns.py [N]      # root

- ``run --rm --network none busybox true``: ``--userns=host``, ``--userns=remap`` (idmapped layers)
  and ``--userns=remap`` with ``MINICONTAINER_USERNS_LAYERS=copy`` (the copy cached), alternated, N
  each (the remapped start adds the helper's fork, the maps, three setns, one idmapped mount per
  layer and one setns at the end: runtime/userns.py);
- the copy's first run: the same run with the busybox layer's copy removed before each (the copy is
  built at ``create``: userns_layers.py);
- idmapped layers: open_tree + mount_setattr(MOUNT_ATTR_IDMAP) + move_mount of the busybox layer in
  a forked child's private mount namespace (what G does per layer);
- the copy alone (images/shifted.copy_shifted of the busybox layer) and its size, and of Debian
  bookworm's root when the integration tests' cache has it (its scale); and ``auto``'s probe
  (userns_layers.probe: once per store and kernel release).

Private state and data roots and subuid/subgid copies in a temp dir (removed at the end).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 20
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def q(xs):
    xs = sorted(xs)
    qs = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return f"{statistics.median(xs):7.2f} ms ({qs[0]:.2f}–{qs[2]:.2f}, n={len(xs)})"


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="mcrt-bench-userns-"))
    env = dict(os.environ, MINICONTAINER_STATE_ROOT=str(base / "state"), MINICONTAINER_DATA_ROOT=str(base / "data"),
               MINICONTAINER_NO_SERVER="1", MINICONTAINER_SUBUID=str(base / "subuid"),
               MINICONTAINER_SUBGID=str(base / "subgid"))
    for f in ("subuid", "subgid"):
        host = Path("/etc") / f
        (base / f).write_text(host.read_text() if host.exists() else "")
    os.environ.update({k: env[k] for k in ("MINICONTAINER_SUBUID", "MINICONTAINER_SUBGID",
                                           "MINICONTAINER_DATA_ROOT", "MINICONTAINER_STATE_ROOT")})
    from minicontainer import subids
    subids.ensure()
    idmap = subids.mapping()
    mc = [str(ROOT / ".venv/bin/minicontainer")]
    try:
        kinds = {"host": ("host", env), "remap": ("remap", env),
                 "remap, copy": ("remap", dict(env, MINICONTAINER_USERNS_LAYERS="copy"))}
        runs = {k: [] for k in kinds}

        def once(kind):
            mode, e = kinds[kind]
            t = time.perf_counter()
            subprocess.run(mc + ["run", "--rm", "--network", "none", f"--userns={mode}", "busybox", "true"],
                           env=e, check=True)
            return (time.perf_counter() - t) * 1e3
        for kind in kinds:                           # warm-up: busybox image, seccomp cache, the copy
            once(kind)
        for _ in range(N):
            for kind in kinds:
                runs[kind].append(once(kind))
        for kind, xs in runs.items():
            print(f"run --userns={kind:11s} busybox true: {q(xs)}")

        from minicontainer.images import ImageStore
        from minicontainer.images.shifted import copy_shifted
        from minicontainer.runtime import userns_layers
        store = ImageStore()
        img = store.ensure_busybox()
        cached = userns_layers.copy_dir(store, img.layers[0], idmap)
        firsts = []
        for _ in range(max(3, N // 4)):
            shutil.rmtree(cached)
            os.sync()              # no writeback of an earlier copy in the figure (it varied 10x)
            firsts.append(once("remap, copy"))
        print(f"run --userns=remap, copy  busybox true, first run (copy built): {q(firsts)}")
        layer = img.lowerdirs[0]
        print(f"busybox layer: {layer}")
        print(f"idmapped clone of the layer (open_tree + mount_setattr + move_mount): {q(_idmap_ms(layer, idmap))}")
        copies = []
        for i in range(max(3, N // 4)):
            dst = base / f"copy{i}"
            os.sync()
            t = time.perf_counter()
            copy_shifted(layer, dst, idmap)
            copies.append((time.perf_counter() - t) * 1e3)
        size = subprocess.run(["du", "-sk", str(base / "copy0")], capture_output=True, text=True).stdout.split()[0]
        print(f"the copy alone (shifted.copy_shifted): {q(copies)}, {size} KiB per range")
        debian = sorted(Path(os.environ.get("MINICONTAINER_TEST_CACHE", "/var/tmp/minicontainer-test-cache"))
                        .glob("debian-bookworm-*.tar"))
        if debian:                 # a distribution's root (the integration tests' cache): the copy's scale
            root = base / "debian"
            root.mkdir()
            subprocess.run(["tar", "-xpf", str(debian[-1]), "-C", str(root), "--xattrs"], check=True)
            size = subprocess.run(["du", "-sk", str(root)], capture_output=True, text=True).stdout.split()[0]
            os.sync()
            t = time.perf_counter()
            n = copy_shifted(root, base / "debian-copy", idmap)
            print(f"the copy alone, Debian bookworm's root ({n} entries, {size} KiB): "
                  f"{(time.perf_counter() - t) * 1e3:.0f} ms (n=1)")
        probes = []
        for _ in range(max(3, N // 4)):
            t = time.perf_counter()
            ok, why = userns_layers.probe(store, idmap)
            probes.append((time.perf_counter() - t) * 1e3)
        print(f"auto's probe (idmap {'taken' if ok else 'refused: ' + why}): {q(probes)}")
    finally:
        subprocess.run(mc + ["gc"], env=env, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _idmap_ms(layer: str, idmap: dict) -> list[float]:
    """In a forked child (a private mount namespace, a user namespace of the maps made as C does):
    the per-layer cost, N times."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            from minicontainer import syscalls as sc
            from minicontainer.runtime import userns
            sc.unshare(sc.CLONE_NEWNS)
            sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
            ufd = userns.make(idmap, [])
            out = []
            for _ in range(N):
                t = time.perf_counter()
                userns.idmap_layers([layer], ufd)
                out.append((time.perf_counter() - t) * 1e3)
                sc.umount2(layer, sc.MNT_DETACH)
            os.write(w, " ".join(map(str, out)).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = os.read(r, 1 << 16).decode()
    os.close(r)
    os.waitpid(pid, 0)
    return [float(x) for x in data.split()]


if __name__ == "__main__":
    main()
