import pytest

from minicontainer import namespaces, syscalls
from minicontainer.errors import ConfigError


def test_flags_for_combines_bits():
    assert namespaces.flags_for(["uts", "pid"]) == syscalls.CLONE_NEWUTS | syscalls.CLONE_NEWPID


def test_flags_for_unknown_name():
    with pytest.raises(ConfigError, match="unknown namespace 'bogus'"):
        namespaces.flags_for(["uts", "bogus"])
