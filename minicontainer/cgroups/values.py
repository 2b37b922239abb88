"""Docker-style resource values, parsed and checked before anything exists. Introduced in notebook 02.

``--memory 64m``, ``--cpus 0.5``, ``--pids-limit 20``: the user's words become numbers here, and a bad
value is a :class:`~minicontainer.errors.ConfigError` *before* a cgroup is made (docker behaves the
same: ``docker run --memory abc`` creates no container). We parse memory as docker's
``units.RAMInBytes`` does — binary multiples, ``k``/``m``/``g`` with an optional ``b`` — rather than
``humanfriendly``-style decimal units, because ``64m`` must mean the same thing as in docker.

:class:`Limits` is the one value both backends translate: docker's words (``cpu_shares``,
``blkio_weight``, ``memory_swap`` = memory *plus* swap) are kept, and each backend converts them to its
own files (v2's ``cpu.weight`` scale 1–10000 with runc's formula, v1's ``cpu.shares`` as given).
"""

from __future__ import annotations

import os
from .._record import record

from ..errors import ConfigError

__all__ = ["Limits", "parse_memory", "parse_cpus", "parse_pids", "parse_cpuset",
           "shares_to_weight", "blkio_to_io_weight", "MIN_MEMORY", "CPU_PERIOD_US"]

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
# ASCII digits only: ``\d`` would take "٣" or "²"-like digits that docker refuses
_MEMORY_RE = r"(?i)^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(?:i?b)?\s*$"
MAX_MEMORY = (1 << 63) - 1    # docker's: a size is an int64; also what the kernel files take
_CPUSET_RE = r"^\d+(-\d+)?(,\d+(-\d+)?)*$"
_compiled: dict[str, object] = {}


def _match(pattern: str, text: str):
    """re, compiled on first use: the OCI runtime imports this module for every create and delete,
    most of which parse no value (re imports enum; see v1.py)."""
    rx = _compiled.get(pattern)
    if rx is None:
        import re
        rx = _compiled[pattern] = re.compile(pattern)
    return rx.match(text)

MIN_MEMORY = 6 << 20          # docker's minimum: below this the runtime itself cannot start
CPU_PERIOD_US = 100_000       # the CFS period docker and runc use (100 ms)


def parse_memory(value: str | int, *, what: str = "--memory", minimum: int = 1) -> int:
    """``"64m"`` → 67108864, ``"512k"`` → 524288. Integers are bytes. ConfigError for anything else or
    below ``minimum`` (:class:`Limits` asks for docker's 6 MiB for a memory limit)."""
    if isinstance(value, bool):
        raise ConfigError(f"{what} {value!r}: not a size", hint="use e.g. 64m, 512k, 1g")
    if isinstance(value, int):
        n = value
    else:
        m = _match(_MEMORY_RE, str(value))
        if not m:
            raise ConfigError(f"{what} {value!r}: not a size",
                              hint="use a number with an optional unit b, k, m or g, e.g. 64m")
        # Decimal, not float: 400 nines made float() infinite and int() raise OverflowError
        from decimal import Decimal
        n = int(Decimal(m.group(1)) * _UNITS[m.group(2).lower()])
    if n > MAX_MEMORY:
        raise ConfigError(f"{what} {_short(value)}: too large", hint=f"at most {MAX_MEMORY} bytes (8 EiB), as docker")
    if n < minimum:
        raise ConfigError(f"{what} {value!r}: too small ({n} bytes)",
                          hint="the minimum is 6m, as in docker" if minimum == MIN_MEMORY else
                          f"use at least {minimum} bytes")
    return n


def _short(value) -> str:
    """The user's value for a one-line message: a 400-digit size is cut, not printed whole."""
    r = repr(value)
    return r if len(r) <= 40 else r[:37] + "…'"


def parse_cpus(value: str | float, *, what: str = "--cpus") -> float:
    """``"0.5"`` → 0.5 CPUs; must be > 0 and at most the number of CPUs of this host."""
    try:
        n = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} {value!r}: not a number", hint="use e.g. --cpus 0.5") from None
    ncpu = os.cpu_count() or 1
    if not (0.01 <= n <= ncpu):          # also rejects nan and inf
        raise ConfigError(f"{what} {value!r}: out of range",
                          hint=f"the range of CPUs is from 0.01 to {ncpu} on this host")
    return n


def parse_pids(value: str | int, *, what: str = "--pids-limit") -> int:
    """``"20"`` → 20: the most tasks (processes and threads) the group may hold; at least 1."""
    try:
        if isinstance(value, bool) or isinstance(value, float):
            raise ValueError
        n = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} {value!r}: not an integer", hint="use e.g. --pids-limit 20") from None
    if n < 1:
        raise ConfigError(f"{what} {value!r}: must be at least 1",
                          hint="a group that may hold no task could not even hold its first process")
    return n


def parse_cpuset(value: str, *, what: str = "--cpuset-cpus") -> str:
    """``"0-1,3"``: the kernel's list format; each CPU must exist on this host."""
    text = str(value).strip()
    if not _match(_CPUSET_RE, text):
        raise ConfigError(f"{what} {value!r}: not a CPU list", hint="use e.g. 0 or 0-1 or 0,2")
    ncpu = os.cpu_count() or 1
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        if int(hi or lo) >= ncpu or int(lo) > int(hi or lo):
            raise ConfigError(f"{what} {value!r}: no such CPU range {part}",
                              hint=f"this host has CPUs 0-{ncpu - 1}")
    return text


def shares_to_weight(shares: int) -> int:
    """v1 ``cpu.shares`` (2–262144, default 1024) → v2 ``cpu.weight`` (1–10000), runc's formula."""
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight: int) -> int:
    """v1 ``blkio.weight`` (10–1000) → v2 ``io.weight`` (1–10000), runc's formula."""
    return 1 + ((weight - 10) * 9999) // 990


def _int_in(name: str, value, lo: int, hi: int) -> int:
    try:
        if isinstance(value, (bool, float)):
            raise ValueError
        n = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} {value!r}: not an integer") from None
    if not lo <= n <= hi:
        raise ConfigError(f"{name} {value!r}: out of range", hint=f"use {lo}–{hi}")
    return n


@record(frozen=True)
class Limits:
    """What a group may use, in docker's words. Validated on construction; ``None`` = no limit.

    - ``memory``: bytes (or ``"64m"``); ``memory_swap``: memory *plus* swap, docker's ``--memory-swap``
      (``-1`` = unlimited swap; unset with ``memory`` set = as much swap as memory, docker's default);
    - ``cpus``: docker's ``--cpus`` (CFS quota / period); ``cpu_shares``: ``--cpu-shares`` (2–262144);
    - ``pids``: ``--pids-limit``; ``cpuset``: ``--cpuset-cpus``; ``blkio_weight``: ``--blkio-weight``.
    """

    memory: int | str | None = None
    memory_swap: int | str | None = None
    cpus: float | str | None = None
    cpu_shares: int | None = None
    pids: int | str | None = None
    cpuset: str | None = None
    blkio_weight: int | None = None

    def __post_init__(self):
        put = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen record
        if self.memory is not None:
            put("memory", parse_memory(self.memory, minimum=MIN_MEMORY))
        if self.memory_swap is not None:
            if self.memory_swap in (-1, "-1"):
                put("memory_swap", -1)
            else:
                put("memory_swap", parse_memory(self.memory_swap, what="--memory-swap", minimum=MIN_MEMORY))
                if self.memory is None or self.memory_swap < self.memory:
                    raise ConfigError(f"--memory-swap {self.memory_swap}: must be at least --memory",
                                      hint="--memory-swap is memory plus swap; set --memory too")
        if self.cpus is not None:
            put("cpus", parse_cpus(self.cpus))
        if self.cpu_shares is not None:
            put("cpu_shares", _int_in("--cpu-shares", self.cpu_shares, 2, 262144))
        if self.pids is not None:
            put("pids", parse_pids(self.pids))
        if self.cpuset is not None:
            put("cpuset", parse_cpuset(self.cpuset))
        if self.blkio_weight is not None:
            put("blkio_weight", _int_in("--blkio-weight", self.blkio_weight, 10, 1000))

    @property
    def swap_total(self) -> int | None:
        """Memory plus swap as the kernel gets it (None: leave the kernel's default, -1: unlimited)."""
        if self.memory is None:
            return None
        if self.memory_swap is None:
            return 2 * self.memory            # docker: "as much swap as --memory"
        return self.memory_swap

    @property
    def cpu_quota_us(self) -> int | None:
        return None if self.cpus is None else max(1000, round(self.cpus * CPU_PERIOD_US))

    def controllers(self) -> set[str]:
        """Controllers these limits need (v2 names)."""
        need = set()
        if self.memory is not None:
            need.add("memory")
        if self.cpus is not None or self.cpu_shares is not None:
            need.add("cpu")
        if self.pids is not None:
            need.add("pids")
        if self.cpuset is not None:
            need.add("cpuset")
        if self.blkio_weight is not None:
            need.add("io")
        return need
