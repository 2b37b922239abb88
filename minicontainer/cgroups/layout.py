"""Which cgroup layout does this host have? Introduced in notebook 02.

Read from ``/proc/self/mountinfo``, never guessed from paths: v1 hosts differ (``cpu,cpuacct``
co-mounted at ``/sys/fs/cgroup/cpu,cpuacct`` on Debian/Ubuntu, separate trees elsewhere) and a
cgroup namespace or a container may mount the hierarchies anywhere. Field 5 is the mount point;
after `` - `` come the file-system type (``cgroup`` or ``cgroup2``), the source and the super-block
options, which for v1 list the controllers bound to that hierarchy (``rw,cpu,cpuacct``).

- ``v2``: one ``cgroup2`` tree and no v1 controllers (every current distribution);
- ``v1``: only ``cgroup`` trees;
- ``hybrid``: v1 controllers plus a ``cgroup2`` tree (systemd's "unified" mount beside them). The
  controllers are all bound to v1 then, so the v1 backend is used; the v2 tree holds no controllers;
- ``none``: no cgroup file system mounted.
"""

from __future__ import annotations

from .._record import factory, record

__all__ = ["Layout", "detect_layout", "V1_CONTROLLERS"]

# the v1 controllers we use, each in its own hierarchy (or co-mounted with others); devices: the
# device rules of notebook 07 (security/devices.py)
V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids", "freezer", "blkio", "devices")


def _unescape(path: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (``\\040``)."""
    return path.encode().decode("unicode_escape") if "\\" in path else path


@record(frozen=True)
class Layout:
    kind: str                                    # "v2" | "v1" | "hybrid" | "none"
    v1: dict[str, str] = factory(dict)   # controller → mount point
    v2: str | None = None                        # the cgroup2 mount point, if any

    @property
    def backend(self) -> str:
        """The backend that owns the controllers here: "v1" on v1 and hybrid hosts, "v2" on v2."""
        return {"hybrid": "v1"}.get(self.kind, self.kind)


def mount_points(mountinfo: str | None = None) -> list[str]:
    """Every cgroup and cgroup2 mount point, named hierarchies (``name=systemd``) included."""
    if mountinfo is None:
        with open("/proc/self/mountinfo") as fh:     # not pathlib: see v1.py
            mountinfo = fh.read()
    points = []
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if sep and len(fields) >= 5 and rest and rest[0] in ("cgroup", "cgroup2"):
            points.append(_unescape(fields[4]))
    return points


def detect_layout(mountinfo: str | None = None) -> Layout:
    """Parse ``/proc/self/mountinfo`` (or the text given) into a :class:`Layout`."""
    if mountinfo is None:
        with open("/proc/self/mountinfo") as fh:     # not pathlib: see v1.py
            mountinfo = fh.read()
    v1: dict[str, str] = {}
    v2: str | None = None
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, rest = left.split(), right.split()
        if len(fields) < 5 or len(rest) < 1:
            continue
        fstype, point = rest[0], _unescape(fields[4])
        if fstype == "cgroup2":
            v2 = v2 or point          # the first one wins (a later bind mount is the same tree)
        elif fstype == "cgroup" and len(rest) >= 3:
            for opt in rest[2].split(","):
                if opt in V1_CONTROLLERS:
                    v1.setdefault(opt, point)
    if v1 and v2:
        kind = "hybrid"
    elif v1:
        kind = "v1"
    elif v2:
        kind = "v2"
    else:
        kind = "none"
    return Layout(kind, v1, v2)
