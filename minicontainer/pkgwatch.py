"""Has the package changed on disk since ``minicontainer serve`` imported it? (server.py: a server
running old code would answer for new code; it exits, and the next ``serve`` runs the new.)"""

from __future__ import annotations

import os


class PackageWatch:
    """Has the package changed on disk since the server imported it? inotify on its directories
    (not __pycache__): asking costs one non-blocking read. Rejected: stat'ing every source file
    per request (what this replaced; its cost is in bench/README.md)."""

    def __init__(self, root: str | None = None) -> None:
        from . import syscalls as sc
        self.fd = sc.inotify_init()
        self.changed = False
        mask = sc.IN_MODIFY | sc.IN_ATTRIB | sc.IN_CREATE | sc.IN_DELETE | sc.IN_MOVED_FROM | sc.IN_MOVED_TO
        for d, dirs, _files in os.walk(root or os.path.dirname(os.path.abspath(__file__))):
            dirs[:] = [x for x in dirs if x != "__pycache__"]
            sc.inotify_add_watch(self.fd, d, mask)

    def stale(self) -> bool:
        from . import syscalls as sc
        while not self.changed:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            self.changed = any(name.endswith(".py") or (mask & sc.IN_ISDIR and name != "__pycache__")
                               for _wd, mask, name in sc.inotify_events(data))
        return self.changed

    def close(self) -> None:
        os.close(self.fd)
