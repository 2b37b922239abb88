"""Subordinate ids: the host uids and gids a remapped container's root and users become (issue 16).

``run --userns=remap`` maps the container's uids 0..N-1 to a range of host ids that belong to nobody:
the ``minicontainer`` entry of ``/etc/subuid`` and ``/etc/subgid`` (shadow-utils' format, one
``NAME:START:COUNT`` a line, as ``useradd`` writes them for users and ``dockerd --userns-remap``
reads them for ``dockremap``). ``sudo make setup`` (and the VM's provisioning) adds the entry when
there is none: ``python -m minicontainer.subids ensure``.

The rules, each tested in tests/unit/test_subids.py:

* the first ``minicontainer`` entry of a file is the range (as Docker takes its user's first);
  comments, blank and malformed lines are skipped, never rewritten;
* a range that contains id 0 is refused: container root would be host root;
* ``ensure`` only *appends* one line to a file that has no entry — other users' lines are never
  touched — at the lowest start from 100000 (useradd's SUB_UID_MIN) that overlaps no range of either
  file and no uid or gid of /etc/passwd and /etc/group; the same start in both files, so a container's
  uid and gid are the same number on the host.

The files' paths can be moved with ``MINICONTAINER_SUBUID`` / ``MINICONTAINER_SUBGID`` (tests use a
copy: the host's files are never changed by a test). Pure file work, no kernel: the kernel part is
runtime/userns.py.
"""

from __future__ import annotations

import os
import sys

from .errors import ConfigError, from_oserror

NAME = "minicontainer"
#: how many ids a container gets: 0..65535 (what `useradd` and Docker's dockremap give a user)
COUNT = 65536
#: the lowest start ``ensure`` picks (useradd's SUB_UID_MIN default)
FIRST = 100000


def paths() -> tuple[str, str]:
    """(/etc/subuid, /etc/subgid), or the environment's copies (tests)."""
    return (os.environ.get("MINICONTAINER_SUBUID", "/etc/subuid"),
            os.environ.get("MINICONTAINER_SUBGID", "/etc/subgid"))


def parse(text: str) -> list[tuple[str, int, int]]:
    """The entries ``(name, start, count)`` of a subuid/subgid file's text; comments, blank and
    malformed lines (not three fields, not numbers, a count of 0) are skipped."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or not parts[2].isdigit():
            continue
        start, count = int(parts[1]), int(parts[2])
        if count > 0:
            out.append((parts[0], start, count))
    return out


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise from_oserror(exc, "read", path) from exc


def find(entries, name: str = NAME) -> tuple[int, int] | None:
    """``(start, count)`` of ``name``'s first entry, or None."""
    return next(((s, c) for n, s, c in entries if n == name), None)


def _overlap(a: int, n: int, b: int, m: int) -> bool:
    return a < b + m and b < a + n


def suggest(taken=()) -> int:
    """The lowest start >= FIRST whose COUNT ids overlap none of ``taken`` (ranges ``(start, count)``)."""
    start = FIRST
    moved = True
    while moved:
        moved = False
        for s, c in sorted(taken):
            if _overlap(start, COUNT, s, c):
                start, moved = s + c, True
    return start


def _taken() -> list[tuple[int, int]]:
    """Every range of both files, and every uid/gid the host's users and groups have."""
    import grp
    import pwd
    ranges = [(s, c) for p in paths() for _, s, c in parse(_read(p))]
    ranges += [(u.pw_uid, 1) for u in pwd.getpwall()] + [(g.gr_gid, 1) for g in grp.getgrall()]
    return ranges


def free_start() -> int:
    """Where ``ensure`` would put the range on this host now."""
    return suggest(_taken())


def _fix() -> str:
    start = free_start()
    uid, gid = paths()
    return (f"run `sudo make setup` (it adds one), or add the line '{NAME}:{start}:{COUNT}' to {uid} "
            f"and {gid}")


def mapping() -> dict:
    """The container's id maps, OCI-shaped (``uidMappings``/``gidMappings``: containerID, hostID,
    size), from the ``minicontainer`` entries. ConfigError (exit 125) with the fix when one is
    missing or maps host root."""
    out = {}
    for key, path in zip(("uidMappings", "gidMappings"), paths()):
        found = find(parse(_read(path)))
        if found is None:
            raise ConfigError(f"--userns=remap: no '{NAME}' entry in {path}", hint=_fix())
        start, count = found
        if start == 0:
            raise ConfigError(f"--userns=remap: the '{NAME}' entry of {path} starts at 0: container "
                              "root would be host root", hint=_fix())
        out[key] = [{"containerID": 0, "hostID": start, "size": count}]
    return out


def ensure() -> list[str]:
    """Append ``minicontainer:START:65536`` to each file that has no entry (same START in both when
    free); returns what was added, one message per file. Idempotent; other lines are never touched."""
    uid_path, gid_path = paths()
    have = {p: find(parse(_read(p))) for p in (uid_path, gid_path)}
    missing = list(dict.fromkeys(p for p in (uid_path, gid_path) if have[p] is None))
    if not missing:
        return []
    existing = [v for v in have.values() if v is not None]
    start = free_start()
    if existing:
        # the other file's start when it is free here too: the same host number for uid and gid
        other = [(s, c) for p in missing for _, s, c in parse(_read(p))]
        if not any(_overlap(existing[0][0], COUNT, s, c) for s, c in other):
            start = existing[0][0]
    added = []
    for path in missing:
        text = _read(path)
        line = f"{NAME}:{start}:{COUNT}\n"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, (("\n" if text and not text.endswith("\n") else "") + line).encode())
            finally:
                os.close(fd)
        except OSError as exc:
            raise from_oserror(exc, "append to", path, hint="run as root: sudo make setup") from exc
        added.append(f"added {line.strip()} to {path}")
    return added


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["ensure"]:
        print("usage: python -m minicontainer.subids ensure", file=sys.stderr)
        return 2
    try:
        for msg in ensure():
            print(msg)
    except ConfigError as exc:
        print(f"minicontainer.subids: {exc}", file=sys.stderr)
        return 125
    except Exception as exc:  # noqa: BLE001 - the setup step's one line
        print(f"minicontainer.subids: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
