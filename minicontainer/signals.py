"""Signal names and numbers as users write them: ``TERM``, ``SIGTERM``, ``sigkill``, ``15``,
``SIGRTMIN+3`` — for ``kill``, ``stop``, an image's ``StopSignal``, a Containerfile's ``STOPSIGNAL``
and ``minicontainer-oci kill``. One reader; each caller words its own refusal (docker's "invalid
signal", runc's "unknown signal").

``_signal``, not ``signal``: the C module has the same constants, and ``signal`` imports enum (~3 ms
on a verb's start path).
"""
from __future__ import annotations

import _signal


def number(text) -> int | None:
    """The signal's number, or None when ``text`` names none (0, ``SIG_IGN``, a typo)."""
    t = str(text).strip()
    if t.isascii() and t.isdigit():
        n = int(t)
        return n if 0 < n <= _signal.SIGRTMAX else None
    name = t.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    if name.startswith("SIGRTMIN+") and name[9:].isascii() and name[9:].isdigit():
        n = _signal.SIGRTMIN + int(name[9:])
        return n if n <= _signal.SIGRTMAX else None
    sig = getattr(_signal, name, None) if name.isidentifier() and not name.startswith("SIG_") else None
    return sig if isinstance(sig, int) and 0 < sig <= _signal.SIGRTMAX else None
