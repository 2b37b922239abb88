"""network/_pyroute2.py: IPRoute and NetNS without pyroute2's catch-all __init__, and the whole
library still there for whoever asks for it (a notebook's `from pyroute2 import NDB`). Each check
runs in a fresh interpreter: the import state is the thing under test."""

import subprocess
import sys


def _py(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_iproute_without_the_rest_of_the_library():
    out = _py("import sys\n"
              "from minicontainer.network._pyroute2 import IPRoute, NetNS\n"
              "print(IPRoute.__module__, 'pyroute2.ndb.main' in sys.modules, 'pyroute2.ipdb' in sys.modules)")
    assert out == "pyroute2.iproute.linux False False"


def test_the_whole_library_on_first_use_of_the_package():
    out = _py("import sys\n"
              "from minicontainer.network._pyroute2 import IPRoute\n"
              "import pyroute2\n"
              "from pyroute2 import NDB, IPRoute as I2, netns\n"
              "print(I2 is IPRoute, NDB.__module__, netns.__name__, bool(pyroute2.__version__))\n"
              "try:\n"
              "    pyroute2.no_such_name\n"
              "except AttributeError as e:\n"
              "    print(e)")
    assert out.splitlines() == ["True pyroute2.ndb.main pyroute2.netns True",
                                "module 'pyroute2' has no attribute 'no_such_name'"]


def test_after_a_plain_import_it_is_the_plain_module():
    out = _py("import pyroute2\n"
              "from minicontainer.network._pyroute2 import IPRoute\n"
              "print(IPRoute is pyroute2.IPRoute, '__getattr__' in vars(pyroute2))")
    assert out == "True False"


def test_the_server_preloads_pyroute2():
    """Each served command is a fork of the server: what the server has not imported, every bridge
    start imports again (it did: `from . import network` imports pyroute2 only inside functions)."""
    out = _py("import sys\n"
              "from minicontainer import cli, server\n"
              "server._preload(cli.parser_for)\n"
              "print('pyroute2.iproute.linux' in sys.modules)")
    assert out == "True"
