"""What a private cgroup namespace costs a start on this host: /sys/fs/cgroup inside (issue 16).

A child is moved into a fresh group of ours (``bench-cgfs-<pid>`` in every hierarchy), makes its own
mount namespace and cgroup namespace, and times, on a tmpfs of its own that stands for the
container's root (nothing reaches the host's mounts; the child's namespace dies with it):

- ``package``: ``rootfs.mount_cgroupfs`` — what the container's PID 1 does (a tmpfs, one cgroupfs
  per hierarchy of /proc/self/cgroup, read-only);
- ``fresh``: the mount(2) calls alone, one new cgroupfs mount per hierarchy;
- ``bind``: runc's v1 way instead, a bind of our group's directory from the host's mount of each
  hierarchy (plus the read-only remount a bind needs).

Then the parent times reaping the child (its mounts go with its namespace) and removing the group.
Interleaved, medians in ms. ``.venv/bin/python bench/cgroupfs_cost.py [N]`` (root; under the lock).
"""

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minicontainer import rootfs, syscalls as sc  # noqa: E402
from minicontainer.cgroups import Cgroup  # noqa: E402

FLAGS = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_RDONLY


def _hierarchies():
    """(directory name, fstype, data, host directory of our group) for each line of /proc/self/cgroup."""
    points = {}
    for line in open("/proc/self/mountinfo"):
        left, _, right = line.partition(" - ")
        f, r = left.split(), right.split()
        if r[0] == "cgroup2":
            points.setdefault("", (f[3], f[4]))
        elif r[0] == "cgroup":
            points.setdefault(frozenset(r[2].split(",")), (f[3], f[4]))
    out = []
    lines = [ln.rstrip("\n").split(":", 2) for ln in open("/proc/self/cgroup") if ln.strip()]
    for hid, ctrls, path in lines:
        if hid == "0":
            root, point = points[""]
            name = "unified" if len(lines) > 1 else "."
            out.append((name, "cgroup2", None, point + path[len(root.rstrip("/")):]))
        else:
            root, point = next(v for k, v in points.items() if k and set(ctrls.split(",")) <= k)
            out.append((ctrls.removeprefix("name="), "cgroup",
                        f"none,{ctrls}" if ctrls.startswith("name=") else ctrls,
                        point + path[len(root.rstrip("/")):]))
    return out


def _child(variant: str, base: str, w: int) -> None:
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_SLAVE)
    sc.mount("tmpfs", base, "tmpfs", 0, "size=64k")
    os.makedirs(f"{base}/sys/fs/cgroup")
    hs = _hierarchies()                   # the host's view: read before the namespace hides it
    sc.unshare(sc.CLONE_NEWCGROUP)
    t = time.perf_counter()
    if variant == "package":
        rootfs.mount_cgroupfs(base)
    else:
        for name, fstype, data, src in hs:
            target = f"{base}/sys/fs/cgroup/{name}"
            os.makedirs(target, exist_ok=True)
            if variant == "fresh":
                sc.mount(fstype, target, fstype, FLAGS, data)
            else:
                sc.mount(src, target, None, sc.MS_BIND)
                sc.mount(None, target, None, sc.MS_REMOUNT | sc.MS_BIND | FLAGS)
    os.write(w, f"{(time.perf_counter() - t) * 1e3:.4f}".encode())
    os._exit(0)


def _one(variant: str) -> tuple[float, float, float]:
    base = tempfile.mkdtemp(prefix="mc-cgfs-")
    cg = Cgroup.create(f"bench-cgfs-{os.getpid()}")
    try:
        r, w = os.pipe()
        go_r, go_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                os.read(go_r, 1)          # in the group first: the namespace's root is our group
                _child(variant, base, w)
            finally:
                os._exit(1)
        os.close(w)
        cg.add(pid)
        os.write(go_w, b"g")
        mounts = float(os.read(r, 64) or "nan")
        t = time.perf_counter()
        os.waitpid(pid, 0)
        reap = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        cg.delete()
        rmdir = (time.perf_counter() - t) * 1e3
        for fd in (r, go_r, go_w):
            os.close(fd)
        return mounts, reap, rmdir
    finally:
        cg.destroy()
        os.rmdir(base)


def main(n: int) -> None:
    variants = ("package", "fresh", "bind")
    got = {v: [] for v in variants}
    for i in range(n):
        for v in variants if i % 2 == 0 else variants[::-1]:
            time.sleep(0.05)
            got[v].append(_one(v))
    print(f"{'':8} {'mounts ms':>10} {'reap ms':>9} {'rmdir ms':>9}   (medians, n={n})")
    for v, xs in got.items():
        print(f"{v:8} " + " ".join(f"{statistics.median(x[i] for x in xs):{k}.3f}"
                                   for i, k in enumerate((10, 9, 9))))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
