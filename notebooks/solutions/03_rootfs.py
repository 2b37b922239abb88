# Solutions for notebook 03. Try the exercises first!

# %% Exercise 03.1
# Exercise 03.1 — is_mount_point(path): is something mounted exactly at `path`?
import os

def is_mount_point(path: str) -> bool:
    """Field 5 of each /proc/self/mountinfo line is the mount point (octal-escaped)."""
    want = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == want:
                return True
    return False

# %% Exercise 03.2
# Exercise 03.2 — propagation_of(mount_point): "shared", "slave" or "private"
def propagation_of(mount_point: str) -> str:
    """The optional fields (after field 6, up to '-') hold shared:N and/or master:N."""
    with open("/proc/self/mountinfo") as f:
        lines = [l.split() for l in f]
    for fields in reversed(lines):  # the last mount on a point is the visible one
        if fields[4] == mount_point:
            opt = fields[6:fields.index("-")]
            if any(o.startswith("master:") for o in opt):
                return "slave"
            if any(o.startswith("shared:") for o in opt):
                return "shared"
            return "private"
    raise ValueError(f"{mount_point} is not a mount point")


# %% Exercise 03.3
import os

from minicontainer import syscalls as sc


def enter_root(root: str) -> None:
    """Make ``root`` this process's ``/`` for good (we are in a mount namespace of our own whose
    ``/`` is shared, as systemd makes it)."""
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)   # leave every peer group first
    sc.mount(root, root, None, sc.MS_BIND | sc.MS_REC)      # new_root must be a mount point
    os.chdir(root)
    sc.pivot_root(".", ".")                                 # put_old stacked under the new root...
    sc.umount2(".", sc.MNT_DETACH)                          # ...and detached: the host is gone
    os.chdir("/")
