"""pyroute2's ``IPRoute`` and ``NetNS`` without the package's catch-all ``__init__``.

``import pyroute2`` imports every part of the library (IPDB, NDB, conntrack, ipset, wireguard,
nl80211 …: ~85 modules more than IPRoute needs), and any ``from pyroute2.iproute.linux import
IPRoute`` runs that ``__init__`` first, as Python imports a package before its submodules. It was
the largest part of a bridge container's start (bench/README.md). So the package module is made
here without running its ``__init__`` — the same spec, the same ``__path__``, so its submodules
import as usual — and the ``__init__`` runs on the first attribute anyone asks of the package
itself (PEP 562's module ``__getattr__``): a notebook's ``from pyroute2 import NDB`` in the same
process gets the whole library, as without us.

Rejected: importing pyroute2 in ``minicontainer serve`` only (the plain ``run`` would still pay it);
hand-written netlink (the course uses pyroute2 on purpose: notebook 05 teaches it).
"""

from __future__ import annotations

import sys
import _thread

_lock = _thread.allocate_lock()


def _package_without_init() -> None:
    if "pyroute2" in sys.modules:
        return
    import importlib
    import importlib.util
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return                       # not installed as a package: the plain import says why below
    mod = importlib.util.module_from_spec(spec)

    def __getattr__(name):
        # a submodule (`from pyroute2 import config`, as pyroute2's own modules say): just that
        if not name.startswith("__") and importlib.util.find_spec(f"pyroute2.{name}") is not None:
            return importlib.import_module(f"pyroute2.{name}")
        # the package's own names (IPRoute, NDB, __version__ …): run its __init__ once, then ask
        # again; a name it does not define stays an AttributeError
        with _lock:
            if mod.__dict__.pop("__getattr__", None) is not None:
                spec.loader.exec_module(mod)
        return mod.__dict__[name] if name in mod.__dict__ else _missing(name)

    def _missing(name):
        raise AttributeError(f"module 'pyroute2' has no attribute {name!r}")

    mod.__getattr__ = __getattr__
    sys.modules["pyroute2"] = mod


with _lock:
    _package_without_init()

from pyroute2.iproute.linux import IPRoute, NetNS  # noqa: E402,F401
