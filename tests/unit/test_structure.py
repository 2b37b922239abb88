"""The package's shape (GUIDE.md: "no module over ~500 lines, no import circles").

Imports are read from the source with ``ast``, at *every* level: a module's top, and inside its
functions and methods. A lazy import (inside a function, to keep the command's start light) still
says "this module uses that one", and two modules that use each other are one module in two files,
however late each import runs. So the rule is layering, as runc's: errors and syscalls at the
bottom, then the primitives (namespaces, cgroups, rootfs, images, network), the runtime and the
engine above them, and the command line (cli, client, server) at the top; nothing imports upwards.

Not counted: ``if TYPE_CHECKING:`` blocks (never run), and a module's ``if __name__ == "__main__":``
block — that code runs only when the file is the program (``python -m minicontainer.cli``), where
the module is ``__main__``, a separate module object that nothing imports, so it cannot close a
circle; it is a user of the package like any script.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "minicontainer"
MAX_LINES = 500
#: modules allowed over MAX_LINES, each with its reason (keep this empty)
OVERSIZE: dict[str, str] = {}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _skipped(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` and ``if __name__ == "__main__":`` (see the module's docstring)."""
    if not isinstance(node, ast.If):
        return False
    t = node.test
    if isinstance(t, ast.Name) and t.id == "TYPE_CHECKING":
        return True
    if isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING":
        return True
    return (isinstance(t, ast.Compare) and isinstance(t.left, ast.Name) and t.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in t.comparators))


def _imports(tree: ast.AST):
    """Every Import/ImportFrom node, at any depth, outside the skipped blocks."""
    todo = [tree]
    while todo:
        node = todo.pop()
        for child in ast.iter_child_nodes(node):
            if _skipped(child):
                todo.extend(child.orelse)            # an `else:` of such a block does run
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            todo.append(child)


def import_graph() -> dict[str, set[str]]:
    """module → the package's modules it imports (a name imported from a package counts as the
    submodule when there is one, else as the package's ``__init__``)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        here = mod.split(".") if is_pkg else mod.split(".")[:-1]
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = here[:len(here) - node.level + 1]
                    base = ".".join(base + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                while t and t not in mods and "." in t:
                    t = t.rsplit(".", 1)[0]       # `import a.b.c` of something not a module of ours
                if t in mods and t != mod:
                    graph[mod].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out = []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_is_read():
    """The walker finds what it must (else an empty graph would pass the next test)."""
    g = import_graph()
    assert "minicontainer.errors" in g["minicontainer.syscalls"]            # top level
    assert "minicontainer.runtime.state" in g["minicontainer.cli"]           # inside a function
    assert "minicontainer.cgroups" in g["minicontainer.runtime.config"] or \
        "minicontainer.cgroups.values" in g["minicontainer.runtime.config"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle():
    found = cycles(import_graph())
    assert not found, "modules that import each other (directly or round a circle): " + \
        "; ".join(" ↔ ".join(c) for c in found)


def test_no_module_over_the_limit():
    long = {m: n for m, p in _modules().items()
            if (n := len(p.read_text().splitlines())) > MAX_LINES and m not in OVERSIZE}
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"


def test_one_table_of_verbs():
    """commands.py's table is the only list: every row has its handler in cli.py, and the parser,
    the launcher and the server read the same rows."""
    from minicontainer import cli, commands, worker
    rows = {name for name, *_ in commands.VERBS}
    missing = {r for r in rows if "_" + r.replace(" ", "_").replace("-", "_") not in vars(cli)}
    assert not missing, f"verbs without a handler in cli.py: {missing}"
    # in-process only: `serve` itself, and `network` (create starts a DNS responder daemon)
    assert commands.SERVED == commands.VERB_NAMES - {"serve", "network"}
    assert cli._VERBS == commands.VERB_NAMES
    # the server's reading of `run`'s options follows the table: a new value option is skipped as one
    assert worker.foreground_run(["run", "--name", "-d", "busybox"]) is True
    assert {"--memory", "-e", "--network"} <= commands.RUN_VALUE_FLAGS and "--rm" not in commands.RUN_VALUE_FLAGS


def test_test_files_have_unique_names():
    """tests/ has no __init__ in its kinds' folders: two test files with one basename stop pytest's
    collection of the whole session ("import file mismatch") — and only `make test`, which collects
    every folder at once, would show it."""
    from collections import Counter
    root = Path(__file__).resolve().parents[1]
    names = Counter(p.name for p in root.rglob("test_*.py"))
    assert not [n for n, c in names.items() if c > 1], names.most_common(3)
