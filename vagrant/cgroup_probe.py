"""pytest plugin for vagrant/vm-test.sh: records which backend of minicontainer.cgroups the tests drove.

Loaded with `-p cgroup_probe` (vagrant/ on PYTHONPATH). It counts calls to the public methods of
V1Backend and V2Backend — the real ones, not mocks — and at the end prints one line
`cgroup backend calls: v2=N (create=…, apply=…) v1=M` and writes the counts to
$MC_CGROUP_PROBE_OUT (JSON), so the VM test can assert that the v2 backend was exercised on a
cgroup v2 guest. Why not coverage.py: it is not among the project's dependencies, and a call count
per backend method is exactly the claim we make.
"""
import collections
import functools
import json
import os

_calls = {"v1": collections.Counter(), "v2": collections.Counter()}


def _wrap(cls, key):
    for name, fn in list(vars(cls).items()):
        if name.startswith("_") or not callable(fn):
            continue

        def make(fn=fn, name=name):
            @functools.wraps(fn)
            def counted(*args, **kwargs):
                _calls[key][name] += 1
                return fn(*args, **kwargs)
            return counted
        setattr(cls, name, make())


def pytest_configure(config):
    from minicontainer.cgroups.v1 import V1Backend
    from minicontainer.cgroups.v2 import V2Backend
    _wrap(V1Backend, "v1")
    _wrap(V2Backend, "v2")


def pytest_terminal_summary(terminalreporter):
    parts = []
    for key in ("v2", "v1"):
        c = _calls[key]
        detail = ", ".join(f"{k}={v}" for k, v in sorted(c.items()))
        parts.append(f"{key}={sum(c.values())}" + (f" ({detail})" if detail else ""))
    terminalreporter.write_line("cgroup backend calls: " + " ".join(parts))
    out = os.environ.get("MC_CGROUP_PROBE_OUT")
    if out:
        with open(out, "w") as f:
            json.dump({k: dict(v) for k, v in _calls.items()}, f)
