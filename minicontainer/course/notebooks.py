"""Reading the course's notebooks: exercise cells, solutions, the template, solved copies.

Used by the tests (template, exercises both ways) and by ``make test``, which runs nbval on *solved
copies*: every exercise cell replaced by its solution block, so that each check cell must pass.

    python -m minicontainer.course.notebooks solve notebooks/ build/solved/ [01 02 …]

Only the standard library: notebooks are JSON.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

EXERCISE_RE = re.compile(r"^#\s*Exercise\s+(\d\d\.\d+)\b", re.M)
CHECK_RE = re.compile(r"""check\(\s*["'](\d\d\.\d+)["']\s*,\s*([A-Za-z_]\w*)\s*\)""")
SOLUTION_SPLIT_RE = re.compile(r"^# %% Exercise (\d\d\.\d+)\b.*$", re.M)
NOTEBOOK_RE = re.compile(r"^(\d\d)_[a-z0-9_]+\.ipynb$")

#: The template's section headings, in order (notebooks/TEMPLATE.md explains each).
TEMPLATE_SECTIONS = (
    "Learning objectives",
    "You are here",
    "Concept",
    "Build it by hand",
    "Observe",
    "The package's version",
    "Exercises",
    "Recap",
    "What we added to minicontainer",
    "Cleanup",
)


def source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def tags(cell: dict) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def numbered_notebooks(directory: Path) -> list[Path]:
    return sorted(p for p in Path(directory).glob("*.ipynb") if NOTEBOOK_RE.match(p.name))


@dataclass
class Exercise:
    notebook: Path
    ex_id: str
    cell_index: int
    stub: str
    func_name: str
    solution: str | None


def solution_file(notebook: Path) -> Path:
    return notebook.parent / "solutions" / (notebook.stem + ".py")


def solutions(notebook: Path) -> dict[str, str]:
    """``{"01.1": "<source of that block>"}`` from ``solutions/<notebook stem>.py``."""
    f = solution_file(notebook)
    if not f.exists():
        return {}
    text = f.read_text()
    parts = SOLUTION_SPLIT_RE.split(text)
    # parts = [preamble, id1, body1, id2, body2, ...]
    return {parts[i]: parts[i + 1].strip("\n") + "\n" for i in range(1, len(parts), 2)}


def exercises(notebook: Path) -> list[Exercise]:
    nb = load(notebook)
    sols = solutions(notebook)
    cells = nb["cells"]
    out = []
    for i, cell in enumerate(cells):
        if "exercise" not in tags(cell):
            continue
        src = source(cell)
        m = EXERCISE_RE.search(src)
        if not m:
            raise ValueError(f"{notebook.name} cell {i}: exercise cell without '# Exercise NN.K' line")
        ex_id = m.group(1)
        func = None
        for later in cells[i + 1:]:
            if "check" in tags(later):
                cm = CHECK_RE.search(source(later))
                if cm and cm.group(1) == ex_id:
                    func = cm.group(2)
                break
        if func is None:
            raise ValueError(f"{notebook.name}: exercise {ex_id} has no check cell "
                             f"`check(\"{ex_id}\", <function>)` right after it")
        out.append(Exercise(notebook, ex_id, i, src, func, sols.get(ex_id)))
    return out


def solved(notebook: Path) -> dict:
    """The notebook with every exercise cell replaced by its solution and all outputs cleared."""
    nb = load(notebook)
    for ex in exercises(notebook):
        if ex.solution is None:
            raise ValueError(f"{notebook.name}: no solution block '# %% Exercise {ex.ex_id}' in "
                             f"{solution_file(notebook)}")
        nb["cells"][ex.cell_index]["source"] = ex.solution
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    nb.get("metadata", {}).pop("widgets", None)
    return nb


def write_solved(src_dir: Path, dest_dir: Path, only: list[str] = ()) -> list[Path]:
    """Write solved copies of the numbered notebooks (or of those whose name starts with ``only``)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    for old in dest_dir.glob("*.ipynb"):
        old.unlink()
    written = []
    for nb_path in numbered_notebooks(src_dir):
        if only and not nb_path.name.startswith(tuple(only)):
            continue
        out = dest_dir / nb_path.name
        out.write_text(json.dumps(solved(nb_path), indent=1, ensure_ascii=False) + "\n")
        written.append(out)
    return written


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[0] != "solve":
        print("usage: python -m minicontainer.course.notebooks solve SRC_DIR DEST_DIR [NN …]",
              file=sys.stderr)
        return 2
    written = write_solved(Path(argv[1]), Path(argv[2]), argv[3:])
    print(f"wrote {len(written)} solved notebook(s) to {argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
