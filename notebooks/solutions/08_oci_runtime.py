# Solutions for notebook 08. Try the exercises first!

# %% Exercise 08.1
# Exercise 08.1 — config_for(argv): config.json for a set of docker run flags
def config_for(argv: list[str]) -> dict:
    """docker run --hostname web --memory 64m --pids-limit 20 --read-only -e GREETING=hello -w /tmp busybox ARGV"""
    return {
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs", "readonly": True},                              # --read-only
        "hostname": "web",                                                          # --hostname web
        "process": {"args": list(argv), "cwd": "/tmp",                              # -w /tmp
                    "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hello"],  # -e GREETING=hello
                    "user": {"uid": 0, "gid": 0}},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "mount", "uts", "ipc", "network")],
            "resources": {"memory": {"limit": 64 * 1024 * 1024},                    # --memory 64m, in bytes
                          "pids": {"limit": 20}},                                   # --pids-limit 20
        },
    }


# %% Exercise 08.2
# Exercise 08.2 — oci_status(root, cid): created, running or stopped, from the record and /proc
import json, os

def oci_status(root: str, cid: str) -> str:
    """The record's pid must still be the same process (start time) and not a zombie."""
    d = os.path.join(root, cid)
    with open(os.path.join(d, "state.json")) as f:
        rec = json.load(f)
    pid = rec.get("pid") or 0
    if not pid:
        return "stopped"
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return "stopped"
    fields = data[data.rindex(b")") + 2:].split()          # after "pid (comm) ": field 3 onwards
    state, start = fields[0].decode(), int(fields[19])      # field 3: state; field 22: starttime
    if start != rec.get("pid_start") or state in ("Z", "X"):
        return "stopped"
    return "created" if os.path.exists(os.path.join(d, "exec.fifo")) else "running"
