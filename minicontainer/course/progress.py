"""Where a learner stands: every exercise check run against the learner's own saved notebooks.

    python -m minicontainer.course progress NOTEBOOK_OR_DIR [...] [--json]

For an instructor (``docs/instructors.md``): point it at a learner's notebook, or at a directory of
them, and it prints one line per exercise — ``solved``, ``not yet`` (the function still raises
``NotImplementedError``) or ``error`` with the check's own message — the same verdict the learner's
check cell gives. ``--json`` prints a list of rows for a spreadsheet.

What it promises:

* it reads the notebooks and never writes them (no execution of the notebook itself: only each
  exercise cell, which the template makes self-contained, and only to define the learner's function);
* each exercise runs in a forked process of its own, with a time limit: a learner's crash, hang or
  ``sys.exit`` in one answer cannot hide the others, and an answer's imports do not leak into the next;
* the checks are the notebooks' own (``minicontainer.course.nbNN``), which undo whatever they create
  on the kernel, so a report leaves nothing behind.

Rejected alternative: running the whole notebook with nbclient would grade the learner's *outputs*
from their last session and repeat every demo cell (minutes per learner, and the demos change the
kernel). The exercise cell alone is what the check needs.
"""

from __future__ import annotations

import json
import os
import pickle
import select
import signal
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from . import notebooks as nbs

__all__ = ["Row", "progress", "main"]

#: seconds one exercise may take (its check included) before it counts as an error
TIMEOUT = 120.0

STATUS = {"passed": "solved", "unsolved": "not yet", "failed": "error"}


@dataclass
class Row:
    notebook: str
    exercise: str
    status: str        # "solved" | "not yet" | "error"
    message: str


def _grade(ex: nbs.Exercise) -> tuple[str, str]:
    """In a forked child: define the learner's function from their cell and run its check."""
    from . import evaluate
    ns: dict = {"__name__": "__exercise__"}
    try:
        exec(compile(ex.stub, f"<{ex.notebook.name} exercise {ex.ex_id}>", "exec"), ns)  # noqa: S102
    except NotImplementedError:
        return "not yet", "the cell still raises NotImplementedError"
    except BaseException as exc:  # noqa: BLE001 - the learner's cell: anything can come out
        return "error", f"the exercise cell does not run: {type(exc).__name__}: {exc}"
    func = ns.get(ex.func_name)
    if not callable(func):
        return "error", f"the exercise cell no longer defines {ex.func_name}()"
    try:
        result = evaluate(ex.ex_id, func)
    except BaseException as exc:  # noqa: BLE001 - e.g. a TypeError raised by the learner's code
        return "error", f"{type(exc).__name__}: {exc}"
    return STATUS[result.status], result.message


def _one_line(text: str) -> str:
    return " | ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _in_child(ex: nbs.Exercise, timeout: float) -> tuple[str, str]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into the caller
        try:
            os.close(r)
            os.setpgid(0, 0)  # a hang is ended with everything the answer started
            try:
                verdict = _grade(ex)
            except BaseException as exc:  # noqa: BLE001
                verdict = ("error", f"{type(exc).__name__}: {exc}")
            os.write(w, pickle.dumps(tuple(_one_line(v) for v in verdict)))
        finally:
            os._exit(0)
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], timeout)
        if not ready:
            for target in (-pid, pid):
                try:
                    os.kill(target, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return "error", f"the check did not finish within {timeout:.0f} s"
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    if not data:
        return "error", "the answer's process died without a verdict"
    return pickle.loads(data)


def _notebooks(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(nbs.numbered_notebooks(p))
        elif p.suffix == ".ipynb" and p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: not a notebook (.ipynb) or a directory of notebooks")
    return out


def _exercises(nb_path: Path) -> list[nbs.Exercise]:
    """The exercise cells of a learner's notebook, by their tag.

    Lenient where ``notebooks.exercises`` (the course's own files) is strict: a learner may have
    deleted the ``# Exercise NN.K`` line, so the id also comes from the check cell after it.
    """
    cells = nbs.load(nb_path)["cells"]
    out = []
    for i, cell in enumerate(cells):
        if "exercise" not in nbs.tags(cell):
            continue
        src = nbs.source(cell)
        header = nbs.EXERCISE_RE.search(src)
        check = next((nbs.CHECK_RE.search(nbs.source(c)) for c in cells[i + 1:]
                      if "check" in nbs.tags(c)), None)
        ex_id = header.group(1) if header else check.group(1) if check else None
        if ex_id is None or check is None or check.group(1) != ex_id:
            raise ValueError(f"cell {i}: an exercise cell without its check cell after it")
        out.append(nbs.Exercise(nb_path, ex_id, i, src, check.group(2), None))
    return out


def progress(paths: list[Path], timeout: float = TIMEOUT) -> list[Row]:
    """One row per exercise of every notebook under ``paths`` (files or directories)."""
    rows = []
    for nb_path in _notebooks([Path(p) for p in paths]):
        try:
            exercises = _exercises(nb_path)
        except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
            rows.append(Row(nb_path.name, "-", "error", f"cannot read the notebook: {exc}"))
            continue
        for ex in exercises:
            status, message = _in_child(ex, timeout)
            rows.append(Row(nb_path.name, ex.ex_id, status, message))
    return rows


def main(argv: list[str] | None = None) -> int:
    import argparse
    parser = argparse.ArgumentParser(
        prog="python -m minicontainer.course progress",
        description="Run every exercise check against a learner's saved notebook(s); one line each.")
    parser.add_argument("paths", nargs="+", type=Path, metavar="NOTEBOOK_OR_DIR")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds per exercise")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("progress: the exercise checks touch the kernel (namespaces, cgroups, mounts): "
              "run it as root (sudo)", file=sys.stderr)
        return 1
    try:
        rows = progress(args.paths, args.timeout)
    except FileNotFoundError as exc:
        print(f"progress: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=1, ensure_ascii=False))
    else:
        width = max((len(r.notebook) for r in rows), default=0)
        for r in rows:
            print(f"{r.notebook:<{width}}  {r.exercise:<5}  {r.status:<7}  {r.message}")
        solved = sum(r.status == "solved" for r in rows)
        print(f"{solved} of {len(rows)} exercises solved")
    return 0
