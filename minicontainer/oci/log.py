"""runc's log lines: ``--log FILE --log-format text|json``.

conmon and containerd-shim read the runtime's errors from that file (the shim parses the JSON
lines' "msg"), so an error goes there as well as to stderr. Text is logrus's format, as runc writes
it: ``time="2026-11-30T04:28:15Z" level=error msg="container does not exist"``.
"""
from __future__ import annotations

import os
import sys
import time

from .. import fastjson

_file: str | None = None
_format = "text"


def configure(path: str | None, fmt: str = "text") -> None:
    global _file, _format
    _file, _format = path, fmt


def _line(level: str, msg: str, fmt: str) -> str:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if fmt == "json":
        return fastjson.dumps({"level": level, "msg": msg, "time": now}, ensure_ascii=False)
    return f'time="{now}" level={level} msg={fastjson.dumps(msg, ensure_ascii=False)}'


def log(level: str, msg: str) -> None:
    """To the --log file (if any) in its format, and to stderr as text."""
    if _file:
        try:
            fd = os.open(_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, (_line(level, msg, _format) + "\n").encode())
            finally:
                os.close(fd)
        except OSError:
            pass
    try:
        sys.stderr.write(_line(level, msg, "text") + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
