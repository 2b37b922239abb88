"""Every numbered notebook follows notebooks/TEMPLATE.md and is saved clean."""

import re
from pathlib import Path

import pytest

from minicontainer.course import notebooks as nbs

NB_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = nbs.numbered_notebooks(NB_DIR)


def test_the_course_has_notebooks():
    assert NOTEBOOKS, f"no numbered notebooks in {NB_DIR}"
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(len(numbers))), f"notebooks are not numbered 00, 01, …: {numbers}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_sections_in_template_order(path):
    cells = nbs.load(path)["cells"]
    md = [nbs.source(c) for c in cells if c["cell_type"] == "markdown"]
    assert re.match(rf"# {path.name[:2]} — \S", md[0]), "first cell must be '# NN — Title'"
    headings = [m.group(1).strip() for text in md for m in re.finditer(r"^## (.+)$", text, re.M)]
    positions = []
    for section in nbs.TEMPLATE_SECTIONS:
        hits = [i for i, h in enumerate(headings) if h.startswith(section)]
        assert hits, f"{path.name}: missing section '## {section}'"
        positions.append(hits[0])
    assert positions == sorted(positions), f"{path.name}: sections out of template order: {headings}"
    assert "Previous" in md[-1] or "Next" in md[-1], "last cell must link previous/next notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_saved_clean_with_cleanup_cell_and_exercises(path):
    nb = nbs.load(path)
    assert "widgets" not in nb.get("metadata", {}), "widget state must be stripped"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") for c in code), "saved notebooks carry no outputs"
    ids = [c.get("id") for c in nb["cells"]]
    assert all(ids) and len(set(ids)) == len(ids), "every cell has a unique id (nbformat ≥ 4.5)"
    cleanup = [c for c in code if "cleanup" in nbs.tags(c)]
    assert len(cleanup) == 1, "exactly one code cell tagged 'cleanup'"
    exercises = nbs.exercises(path)
    minimum = 1 if path.name.startswith("00") else 2
    assert len(exercises) >= minimum, f"{path.name}: at least {minimum} exercises"
    for ex in exercises:
        assert ex.solution, f"{path.name}: exercise {ex.ex_id} has no solution block"
        assert "NotImplementedError" in ex.stub, f"exercise {ex.ex_id}: the stub must raise NotImplementedError"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_module_body_pasted(path):
    """Notebooks import the package's version; they never carry a copy of a package function.

    A notebook may build a *small* version by hand first (and name its helpers as it likes); what it must
    not do is paste a module's function body: any notebook function whose code is nearly the same as a
    package function of more than 8 lines fails.
    """
    import ast
    import difflib
    import importlib
    import inspect
    import pkgutil
    import textwrap

    import minicontainer

    def normalised(fn_source: str) -> str:
        node = ast.parse(textwrap.dedent(fn_source)).body[0]
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
            body = body[1:]                                  # docstrings do not count
        return "\n".join(ast.unparse(b) for b in body)

    package = {}
    for mod in pkgutil.walk_packages(minicontainer.__path__, "minicontainer."):
        if mod.name.startswith(("minicontainer.course", "minicontainer.cli")):
            continue
        try:
            m = importlib.import_module(mod.name)
        except Exception:  # noqa: BLE001 - a module needing an optional dependency
            continue
        for name, obj in vars(m).items():
            if inspect.isfunction(obj) and obj.__module__ == m.__name__:
                src = inspect.getsource(obj)
                if len(src.splitlines()) > 8:
                    package[f"{m.__name__}.{name}"] = normalised(src)
    pasted = []
    for cell in nbs.load(path)["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse(nbs.source(cell))
        except SyntaxError:
            continue                                         # IPython magics; nothing pasted there
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                mine = normalised(ast.unparse(node))
                for qualname, theirs in package.items():
                    if difflib.SequenceMatcher(None, mine, theirs, autojunk=False).quick_ratio() > 0.8 and \
                            difflib.SequenceMatcher(None, mine, theirs, autojunk=False).ratio() > 0.8:
                        pasted.append(f"{node.name}() ≈ {qualname}")
    assert not pasted, f"{path.name} pastes package code instead of importing it: {pasted}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_links_to_other_notebooks_resolve(path):
    """A learner clicking 'Previous'/'Next' (or any notebook link) lands on a notebook that exists."""
    md = "\n".join(nbs.source(c) for c in nbs.load(path)["cells"] if c["cell_type"] == "markdown")
    targets = re.findall(r"\]\(([^)#\s]+\.ipynb)", md)
    missing = [t for t in targets if not (path.parent / t).exists()]
    assert not missing, f"{path.name} links to missing notebooks: {missing}"
