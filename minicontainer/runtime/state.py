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
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from .. import paths, private
from .. import fastjson  # json without the package's import (fastjson.py)
from ..errors import ContainerError, NotFoundError, from_oserror

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
        private.write(d / "state.json", fastjson.dumps(rec, sort_keys=True))
    except OSError as exc:
        raise from_oserror(exc, "write the container's record", d / "state.json") from exc


def update(cid: str, **changes) -> dict:
    with locked():
        rec = read(cid)
        rec.update(changes)
        write(rec)
        return rec


class BrokenRecordError(ContainerError):
    """A record that is not what this runtime writes (truncated, hand-edited, another version's)."""

    def __init__(self, cid: str, why: str):
        self.cid, self.why = cid, why
        super().__init__(f"container {cid[:12]}: its record {root() / cid / 'state.json'} is broken ({why})",
                         hint="remove it with `minicontainer rm` or `minicontainer gc`")


#: what every record has, with its type; and the types of the optional keys the runtime reads
_REQUIRED = {"id": str, "status": str, "config": dict}
_OPTIONAL = {"name": (str, type(None)), "pid": (int, type(None)), "start_time": (str, type(None)),
             "owner": (list, type(None)), "cgroup": (str, type(None)), "argv": list, "env": list,
             "exit_code": (int, type(None)), "network": (dict, type(None)), "workdir": str}


def _why_broken(rec, cid: str) -> str | None:
    """What is wrong with a parsed record (None: nothing). Every reader gets a record of the right
    shape or this answer: before, a ``[]`` or ``{}`` in state.json made ps, inspect, rm and gc end in
    a traceback (KeyError, TypeError), and gc could not repair what it could not read."""
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}, not an object"
    for key, t in _REQUIRED.items():
        if not isinstance(rec.get(key), t):
            return f"{key!r} missing or not a {t.__name__}"
    if rec["id"] != cid:
        return "its id is not its directory's name"
    if rec["status"] not in STATES:
        return f"unknown status {rec['status'][:20]!r}"
    if not isinstance(rec["config"].get("image"), str):
        return "config has no image"
    for key, t in _OPTIONAL.items():
        if key in rec and not isinstance(rec[key], t) or isinstance(rec.get(key), bool):
            return f"{key!r} has the wrong type"
    if rec.get("owner") is not None and len(rec["owner"]) != 2:
        return "'owner' is not [pid, start time]"
    return None


def _load(cid: str) -> dict:
    """The record of ``cid``: FileNotFoundError when there is none, BrokenRecordError when it is not
    a record of ours."""
    try:
        rec = fastjson.loads((root() / cid / "state.json").read_text())
    except (FileNotFoundError, NotADirectoryError):
        raise
    except OSError as exc:
        raise BrokenRecordError(cid, f"unreadable: {os.strerror(exc.errno or 0)}") from None
    except ValueError:
        raise BrokenRecordError(cid, "not valid JSON") from None
    why = _why_broken(rec, cid)
    if why:
        raise BrokenRecordError(cid, why)
    return rec


def read(cid: str) -> dict:
    """A valid record (NotFoundError: none; BrokenRecordError: one of the wrong shape)."""
    try:
        return _load(cid)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFoundError(f"no such container: {cid}", hint="see `minicontainer ps -a`") from None


def broken(cid: str, why: str, name: str | None = None) -> dict:
    """The stand-in for a broken record: enough for ps, inspect, rm and gc (status "broken")."""
    return {"id": cid, "name": name, "status": "broken", "config": {}, "error": why}


def _is_id(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def all_records() -> list[dict]:
    """Every record of this root; a broken one as its :func:`broken` stand-in."""
    out = []
    r = root()
    if not r.is_dir():
        return out
    for d in sorted(r.iterdir()):
        # Only records: other modules keep their own files here (network leases under network/).
        if _is_id(d.name) and d.is_dir():
            try:
                out.append(_load(d.name))
            except BrokenRecordError as exc:
                out.append(broken(d.name, exc.why))
            except OSError:
                out.append(broken(d.name, "no state.json"))
    return out


def find(ref: str, *, broken_ok: bool = False) -> dict:
    """A record by name, full id or unique id prefix (as docker). A broken record raises
    BrokenRecordError unless ``broken_ok`` (inspect, rm): then its :func:`broken` stand-in."""
    cid = None
    try:                                            # a name: one file, no scan
        cid = _name_file(ref).read_text().strip()
        return read(cid)
    except BrokenRecordError as exc:
        if not broken_ok:
            raise
        return broken(cid, exc.why, ref)
    except (OSError, NotFoundError, ValueError):
        pass
    recs = all_records()
    hits = [r for r in recs if r.get("name") == ref or r["id"] == ref][:1] \
        or [r for r in recs if len(ref) >= 3 and r["id"].startswith(ref)]
    if len(hits) == 1:
        if hits[0]["status"] == "broken" and not broken_ok:
            raise BrokenRecordError(hits[0]["id"], hits[0]["error"])
        return hits[0]
    raise NotFoundError(f"no such container: {ref}", hint="see `minicontainer ps -a`")


def remove(cid: str, name: str | None = None) -> None:
    """Remove the record and release its name (read from the record unless given)."""
    if name is None:
        try:
            name = read(cid).get("name")
        except (NotFoundError, ContainerError, ValueError, OSError):
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
