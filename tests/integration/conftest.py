"""Fixtures shared by several integration test files."""

import pytest

from tests.integration import _debian


@pytest.fixture(scope="session")
def debian_layout(tmp_path_factory):
    """An OCI layout of Debian bookworm (tags ``bookworm`` and ``nginx``; see _debian.py), made once
    per session from the cached mmdebstrap root file system."""
    return _debian.make_layout(tmp_path_factory.mktemp("debian"))
