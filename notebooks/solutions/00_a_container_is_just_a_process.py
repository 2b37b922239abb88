# Solutions for notebook 00. Try the exercises first!

# %% Exercise 00.1
# Exercise 00.1 — shared_namespaces(pid_a, pid_b): the namespace names two processes share
import os

def shared_namespaces(pid_a: int, pid_b: int) -> set[str]:
    """Two processes share a namespace when their /proc/<pid>/ns/<name> links point to the same inode."""
    names = {n for n in os.listdir(f"/proc/{pid_a}/ns") if not n.endswith("_for_children")}
    return {n for n in names
            if os.readlink(f"/proc/{pid_a}/ns/{n}") == os.readlink(f"/proc/{pid_b}/ns/{n}")}

# %% Exercise 00.2
# Exercise 00.2 — cgroup_layout(mountinfo_text): "v1", "v2", "hybrid" or "none"
def cgroup_layout(mountinfo_text: str) -> str:
    """The file system type is the first field after ' - '; v1 hierarchies are type cgroup."""
    types = {line.partition(" - ")[2].split()[0] for line in mountinfo_text.splitlines() if " - " in line}
    v1, v2 = "cgroup" in types, "cgroup2" in types
    return "hybrid" if v1 and v2 else "v1" if v1 else "v2" if v2 else "none"

# %% Exercise 00.3
# Exercise 00.3 — start_box(hostname, workdir): a running process with new uts/ipc/net namespaces
import subprocess


def start_box(hostname: str, workdir: str) -> int:
    """unshare(1) makes the namespaces and execs sh inside them; sh sets the hostname there (only
    there) and execs sleep, so the pid Popen returns is the sleeping process's. Popen's cwd= is the
    working directory the process starts with."""
    box = subprocess.Popen(["unshare", "--uts", "--ipc", "--net",
                            "sh", "-c", 'hostname "$1" && exec sleep 60', "box", hostname],
                           cwd=workdir)
    return box.pid
