# Solutions for notebook 02. Try the exercises first!

# %% Exercise 02.1
# Exercise 02.1 — cgroup_of(pid, controller): the path of pid's group in that controller's hierarchy
def cgroup_of(pid: int, controller: str) -> str:
    """Each line of /proc/<pid>/cgroup is `hierarchy-id:controllers:path`; v2's line is `0::path`."""
    v2 = None
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            hid, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                return path
            if hid == "0":
                v2 = path
    return v2

# %% Exercise 02.2
# Exercise 02.2 — cpu_fraction(cg, seconds): how many CPUs the group used over `seconds`
import time

def cpu_fraction(cg, seconds: float) -> float:
    """Two readings of the group's CPU time, divided by the wall time between them."""
    t0, u0 = time.monotonic(), cg.stats()["cpu_usage_usec"]
    time.sleep(seconds)
    t1, u1 = time.monotonic(), cg.stats()["cpu_usage_usec"]
    return (u1 - u0) / 1e6 / (t1 - t0)


# %% Exercise 02.3
from pathlib import Path


def limit_memory(group: str, limit_bytes: int, pid: int) -> None:
    """Limit the memory of the cgroup directory ``group`` (v2, or v1's memory hierarchy) to
    ``limit_bytes``, swap included, and move ``pid`` into it."""
    g = Path(group)
    if (g / "memory.max").exists():                       # cgroup v2
        (g / "memory.max").write_text(str(limit_bytes))
        if (g / "memory.swap.max").exists():
            (g / "memory.swap.max").write_text("0")
    else:                                                 # cgroup v1: memsw >= memory at every moment
        (g / "memory.limit_in_bytes").write_text(str(limit_bytes))
        if (g / "memory.memsw.limit_in_bytes").exists():
            (g / "memory.memsw.limit_in_bytes").write_text(str(limit_bytes))
    (g / "cgroup.procs").write_text(str(pid))
