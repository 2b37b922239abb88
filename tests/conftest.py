"""Shared test set-up.

- tests/unit: no root, no kernel changes.
- tests/integration and tests/notebooks: root and the real kernel. Without root they are skipped
  with the reason stated (never passed silently); each test is checked for leaks.
"""

import os

import pytest

from tests import leakcheck

_KERNEL_DIRS = ("tests/integration", "tests/notebooks")


def _needs_kernel(item) -> bool:
    return any(d in str(item.fspath) for d in _KERNEL_DIRS)


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root and the real kernel: run `sudo make test`")
    for item in items:
        if _needs_kernel(item):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def no_leaks(request):
    """Fail the test if it leaves a mount, cgroup, link, netns, rule, state file or child behind."""
    if os.geteuid() != 0 or not _needs_kernel(request.node):
        yield
        return
    before = leakcheck.snapshot()
    yield
    left = leakcheck.leaks(before, leakcheck.snapshot())
    if left:
        pytest.fail("leaked:\n  " + "\n  ".join(left), pytrace=False)
