"""What ``--userns=remap`` costs, and what its rejected alternative would (measured, never asserted).

    flock -o /work/kernel.lock .venv/bin/python bench/userns.py [N]      # root

- ``run --rm --network none busybox true``: ``--userns=host`` and ``--userns=remap`` alternated, N
  each (the remapped start adds the helper's fork, the maps, three setns, one idmapped mount per
  layer and one setns at the end: runtime/userns.py);
- idmapped layers: open_tree + mount_setattr(MOUNT_ATTR_IDMAP) + move_mount of the busybox layer in
  a forked child's private mount namespace (what G does per layer);
- the rejected alternative: a chowned copy of the same layer (``cp -a`` + a lchown walk, what
  Docker's overlay2 does once per image and range with --userns-remap), and its size.

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
        runs = {"host": [], "remap": []}
        for mode in ("host", "remap"):               # warm-up: busybox image, seccomp cache
            subprocess.run(mc + ["run", "--rm", "--network", "none", f"--userns={mode}", "busybox", "true"],
                           env=env, check=True)
        for _ in range(N):
            for mode in ("host", "remap"):
                t = time.perf_counter()
                subprocess.run(mc + ["run", "--rm", "--network", "none", f"--userns={mode}", "busybox", "true"],
                               env=env, check=True)
                runs[mode].append((time.perf_counter() - t) * 1e3)
        for mode, xs in runs.items():
            print(f"run --userns={mode:5s} busybox true: {q(xs)}")

        from minicontainer.images import ImageStore
        layer = ImageStore().ensure_busybox().lowerdirs[0]
        print(f"busybox layer: {layer}")
        print(f"idmapped clone of the layer (open_tree + mount_setattr + move_mount): {q(_idmap_ms(layer, idmap))}")
        copies = []
        for i in range(max(3, N // 4)):
            dst = base / f"copy{i}"
            t = time.perf_counter()
            subprocess.run(["cp", "-a", layer, str(dst)], check=True)
            _chown_walk(dst, idmap["uidMappings"][0]["hostID"], idmap["gidMappings"][0]["hostID"])
            copies.append((time.perf_counter() - t) * 1e3)
        size = subprocess.run(["du", "-sk", str(base / "copy0")], capture_output=True, text=True).stdout.split()[0]
        print(f"rejected: chowned copy of the layer (cp -a + lchown walk): {q(copies)}, {size} KiB per range")
    finally:
        subprocess.run(mc + ["gc"], env=env, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _chown_walk(tree: Path, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(tree):
        for n in (*dirnames, *filenames):
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            os.chown(p, uid + st.st_uid, gid + st.st_gid, follow_symlinks=False)
    st = os.lstat(tree)
    os.chown(tree, uid + st.st_uid, gid + st.st_gid)


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
