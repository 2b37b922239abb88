"""Container records on disk (notebook 06): ``state_root()/<id>/state.json`` plus a global lock.

States follow the OCI runtime spec: created → running ⇄ paused → stopped. Every write is atomic
(write a temp file, ``os.replace``), and every read-modify-write holds an ``fcntl.flock`` on
``state_root()/.lock`` so two commands at once never corrupt a record or give one name twice
(runc uses a per-container lock file the same way). Rejected alternative: a single JSON database
file — one corrupt write would lose every container.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from .. import paths, private
from ..errors import NotFoundError, from_oserror

_ROOT_HINT = "the state root must be writable by root (MINICONTAINER_STATE_ROOT moves it)"

STATES = ("created", "running", "paused", "stopped")


def root() -> Path:
    return paths.state_root()


@contextmanager
def locked():
    r = root()
    try:
        private.make_dir(r, root=r)               # 0700, and tightened if an older version made it 0755
        fd = private.lock_file(r / ".lock")
    except OSError as exc:
        raise from_oserror(exc, "open the state lock", r / ".lock",
                           hint=_ROOT_HINT if exc.errno in (errno.EACCES, errno.EROFS) else None) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write(rec: dict) -> None:
    d = root() / rec["id"]
    try:
        private.make_dir(d, root=root())
        # no indent: json's C encoder only serves indent=None (the Python one is slower). 0600: the
        # record holds the container's environment (-e DB_PASSWORD=…)
        private.write(d / "state.json", json.dumps(rec, sort_keys=True))
    except OSError as exc:
        raise from_oserror(exc, "write the container's record", d / "state.json") from exc


def update(cid: str, **changes) -> dict:
    with locked():
        rec = read(cid)
        rec.update(changes)
        write(rec)
        return rec


def read(cid: str) -> dict:
    try:
        return json.loads((root() / cid / "state.json").read_text())
    except (FileNotFoundError, NotADirectoryError):
        raise NotFoundError(f"no such container: {cid}", hint="see `minicontainer ps -a`") from None


def all_records() -> list[dict]:
    out = []
    r = root()
    if not r.is_dir():
        return out
    for d in sorted(r.iterdir()):
        # Only records: other modules keep their own files here (network leases under network/).
        if d.is_dir() and len(d.name) == 64 and all(c in "0123456789abcdef" for c in d.name):
            try:
                out.append(json.loads((d / "state.json").read_text()))
            except (OSError, ValueError):
                out.append({"id": d.name, "name": None, "status": "broken"})
    return out


def find(ref: str) -> dict:
    """A record by name, full id or unique id prefix (as docker)."""
    try:                                            # a name: one file, no scan
        return read(_name_file(ref).read_text().strip())
    except (OSError, NotFoundError, ValueError):
        pass
    recs = all_records()
    for r in recs:
        if r.get("name") == ref or r["id"] == ref:
            return r
    hits = [r for r in recs if len(ref) >= 3 and r["id"].startswith(ref)]
    if len(hits) == 1:
        return hits[0]
    raise NotFoundError(f"no such container: {ref}", hint="see `minicontainer ps -a`")


def remove(cid: str, name: str | None = None) -> None:
    """Remove the record and release its name (read from the record unless given)."""
    if name is None:
        try:
            name = read(cid).get("name")
        except (NotFoundError, ValueError, OSError):
            name = None
    d = root() / cid
    try:                                  # a record's directory holds state.json only, normally
        os.unlink(d / "state.json")
        os.rmdir(d)
    except OSError:
        shutil.rmtree(d, ignore_errors=True)
    if name:
        release_name(name, cid)


# --- names: state/names/<name> holds the id, so that `run --name` is O(1) -----------------------
# Reading every record to see whether a name is taken cost ~0.1 ms per existing container (10 ms of
# each start with 100 containers, bench/scaling.py). A file per name, created with O_EXCL under the
# state lock, answers at once; a name file whose record is gone (a crash between the two) is stale
# and taken over.

def _name_file(name: str) -> Path:
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"not a container name: {name!r}")
    return root() / "names" / name


def _held(name_file: Path) -> bool:
    """Does the record the name file points to exist?"""
    try:
        return (root() / name_file.read_text().strip() / "state.json").exists()
    except FileNotFoundError:
        return False


def claim_name(name: str, cid: str) -> bool:
    """Reserve ``name`` for ``cid`` (call under :func:`locked`); False if a live record holds it."""
    f = _name_file(name)
    private.make_dir(f.parent, root=root())
    try:
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        if _held(f):
            return False
        fd = os.open(f, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)      # stale: take it over
    with os.fdopen(fd, "w") as out:
        out.write(cid)
    return True


def release_name(name: str, cid: str) -> None:
    f = _name_file(name)
    try:
        if f.read_text().strip() == cid:
            f.unlink()
    except FileNotFoundError:
        pass


def remove_stale_names() -> list[str]:
    """Remove name files whose record is gone (``gc``); returns their names."""
    d = root() / "names"
    if not d.is_dir():
        return []
    with locked():
        stale = [f for f in d.iterdir() if not _held(f)]
        for f in stale:
            f.unlink(missing_ok=True)
    return [f.name for f in stale]


def alive(pid: int | None, start_time: str | None = None) -> bool:
    """Is ``pid`` still the process we started? (pid reuse: compare /proc/<pid>/stat's start time)."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return False
    return start_time is None or fields[19] == start_time


def start_time_of(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None
