# Solutions for notebook 04. Try the exercises first!

# %% Exercise 04.1
# Exercise 04.1 — mount_union(target, lowerdirs, upperdir, workdir): an overlay mount by hand
from minicontainer import syscalls

def mount_union(target: str, lowerdirs: list[str], upperdir: str, workdir: str) -> None:
    """lowerdirs are top-most first, joined with ':'; upperdir and workdir complete the data string."""
    data = f"lowerdir={':'.join(lowerdirs)},upperdir={upperdir},workdir={workdir}"
    syscalls.mount("overlay", target, "overlay", 0, data)

# %% Exercise 04.2
# Exercise 04.2 — safe_path(root, name): where a tar entry may land inside root, or ValueError
import os

def safe_path(root: str, name: str) -> str:
    """Refuse absolute names, '..' components and any existing symlink on the way; create nothing."""
    if name.startswith("/"):
        raise ValueError(f"{name!r} is absolute")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"{name!r} contains '..'")
    path = root
    for part in parts:
        path = os.path.join(path, part)
        if os.path.islink(path):
            raise ValueError(f"{name!r} passes through the symlink {path!r}")
    return path
