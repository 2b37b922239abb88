"""Snapshots of every kernel object a test, a notebook or the runtime could leak.

A test (or a whole notebook under nbval) takes a snapshot before and after; any difference is a
leak and fails it, naming what was left. What is compared:

- mounts of this mount namespace (mount point, type, source): new ones, and ones that went;
- cgroups below the project's parent, in every hierarchy (v1 controllers and v2);
- network links, named network namespaces, firewall rules (iptables-save, nft);
- minicontainer's state and data roots (container records, writable layers);
- child processes of the test process (a forked child left running or unreaped).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

from minicontainer import paths, private


def _mounts() -> Counter:
    out = Counter()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        f = left.split()
        r = right.split()
        out[(f[4], r[0], r[1] if len(r) > 1 else "")] += 1
    return out


def _cgroup_mounts() -> list[str]:
    roots = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[0] in ("cgroup", "cgroup2"):
            roots.append(left.split()[4])
    return roots


def _cgroups() -> set[str]:
    found = set()
    for root in _cgroup_mounts():
        top = Path(root, paths.CGROUP_PARENT)
        if not top.is_dir():
            continue
        found.add(str(top))       # the parent itself: an empty one left behind is a leak too
        for dirpath, dirnames, _ in os.walk(top):
            for d in dirnames:
                found.add(os.path.join(dirpath, d))
    return found


def _links() -> set[str]:
    try:
        return set(os.listdir("/sys/class/net"))
    except OSError:
        return set()


def _netns() -> set[str]:
    try:
        return set(os.listdir("/run/netns"))
    except OSError:
        return set()


_COUNTERS = re.compile(r"\[\d+:\d+\]")
_NFT_COUNTERS = re.compile(r"counter packets \d+ bytes \d+")  # nft's live counters are not rules


def _firewall() -> Counter:
    lines: list[str] = []
    for cmd in (["iptables-save"], ["ip6tables-save"], ["nft", "list", "ruleset"]):
        if not shutil.which(cmd[0]):
            continue
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        for line in out.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            lines.append(f"{cmd[0]}: {_NFT_COUNTERS.sub('counter', _COUNTERS.sub('', line))}")
    return Counter(lines)


def _state() -> set[str]:
    """Files under the state root (records, leases) and container layers under the data root.

    Directories, ``*.lock`` files and the root's ``.private`` mark (private.MARK: the root was closed
    once) may stay (like /run/runc itself); records and leases may not.
    """
    found = set()
    root = paths.state_root()
    if root.is_dir():
        for dirpath, _, files in os.walk(root):
            # seccomp/<key>.bpf: the compiled-profile cache (security/seccomp.py), one file per
            # profile for every container — a cache like the image store, not a container's state;
            # apparmor/minicontainer-default: the AppArmor profile as loaded into the kernel, once
            # per boot for every container (security/apparmor.py)
            rel = os.path.relpath(dirpath, root)
            found.update(os.path.join(dirpath, f) for f in files
                         if not f.endswith(".lock") and not (rel == "seccomp" and f.endswith(".bpf"))
                         and not (rel == "apparmor" and f == "minicontainer-default")
                         and not (rel == "." and f == private.MARK))
    layers = paths.data_root() / "containers"
    if layers.is_dir():
        found.update(str(p) for p in layers.iterdir())
    return found


def _children() -> set[int]:
    me = os.getpid()
    kids = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == me:
            kids.add(int(d))
    return kids


def snapshot() -> dict:
    return {
        "mounts": _mounts(),
        "cgroups": _cgroups(),
        "links": _links(),
        "netns": _netns(),
        "firewall": _firewall(),
        "state": _state(),
        "children": _children(),
    }


def leaks(before: dict, after: dict, ignore_children: set[int] = frozenset()) -> list[str]:
    """Human-readable list of what ``after`` has that ``before`` did not — and of mounts ``before``
    had that ``after`` has not: a test must not unmount what it did not mount (under a shared ``/``
    an unmount in a namespace of ours propagates to the host: mmdebstrap's unshare did that to
    /sys/fs/cgroup in the VM, and only a later test noticed)."""
    out = []
    for key in before:
        b, a = before[key], after[key]
        extra = a - b
        if key == "children":
            extra = {pid for pid in extra if pid not in ignore_children}
        for item in sorted(extra, key=str):
            out.append(f"{key}: {item}")
    for item in sorted(before["mounts"] - after["mounts"], key=str):
        out.append(f"mounts gone: {item}")
    return out
