"""Repository-wide pytest hooks: leak checks around every notebook run by nbval.

Tests under tests/integration get the same check from an autouse fixture
(tests/integration/conftest.py); notebooks are nbval items, which fixtures do not reach, so the
snapshot is taken before a notebook's first cell and compared after its last.
"""

import os

import pytest

# No traffic leaves the machine: a container's resolv.conf names its own loopback, so a name lookup
# from any test's or notebook's container stays inside that container's network namespace (the
# host's nameserver is on a private network this machine must not send test traffic to).
os.environ.setdefault("MINICONTAINER_DNS", "127.0.0.1")

_before: dict = {}


def _is_nb_cell(item) -> bool:
    return type(item).__name__ == "IPyNbCell"


def _category(nodeid: str) -> str:
    if nodeid.endswith(".ipynb") or ".ipynb::" in nodeid:
        return "notebook cells"
    for part in ("unit", "integration", "notebooks"):
        if nodeid.startswith(f"tests/{part}/"):
            return {"notebooks": "exercise checks"}.get(part, part)
    return "other"


def pytest_terminal_summary(terminalreporter):
    """One line per kind of test, so the run shows it covered unit, integration and notebooks."""
    counts: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        for rep in terminalreporter.stats.get(outcome, []):
            if getattr(rep, "when", "call") not in ("call", "setup") or not hasattr(rep, "nodeid"):
                continue
            if outcome == "passed" and rep.when != "call":
                continue
            cat = counts.setdefault(_category(rep.nodeid), {})
            cat[outcome] = cat.get(outcome, 0) + 1
    if counts:
        terminalreporter.section("tests by kind")
        for cat in ("unit", "integration", "exercise checks", "notebook cells", "other"):
            if cat in counts:
                parts = ", ".join(f"{n} {o}" for o, n in counts[cat].items())
                terminalreporter.write_line(f"{cat}: {parts}")
    # the course's time budget is 5 minutes of nbval on 2 cores: show where it goes (measured, not asserted)
    per_nb: dict[str, float] = {}
    for reports in terminalreporter.stats.values():
        for rep in reports:
            nodeid = getattr(rep, "nodeid", "")
            if ".ipynb::" in nodeid:
                nb = nodeid.split("::")[0].rsplit("/", 1)[-1]
                per_nb[nb] = per_nb.get(nb, 0.0) + getattr(rep, "duration", 0.0)
    if per_nb:
        terminalreporter.section("notebook run times (nbval)")
        for nb, secs in sorted(per_nb.items()):
            terminalreporter.write_line(f"{secs:6.1f} s  {nb}")
        terminalreporter.write_line(f"{sum(per_nb.values()):6.1f} s  in all (budget 300 s)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if _is_nb_cell(item) and item.parent.nodeid not in _before and os.geteuid() == 0:
        from tests import leakcheck
        _before[item.parent.nodeid] = leakcheck.snapshot()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    if not _is_nb_cell(item):
        return
    if nextitem is not None and nextitem.parent is item.parent:
        return
    before = _before.pop(item.parent.nodeid, None)
    if before is None:
        return
    from tests import leakcheck
    # the notebook's kernel is a child of pytest; it is still alive until nbval shuts it down
    left = leakcheck.leaks(before, leakcheck.snapshot(), ignore_children=leakcheck._children())
    if left:
        pytest.fail(f"{item.parent.name} left behind:\n  " + "\n  ".join(left), pytrace=False)
