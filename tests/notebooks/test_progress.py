"""The instructor's progress report: every check run against a learner's own saved notebooks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minicontainer.course import notebooks as nbs
from minicontainer.course.progress import progress

ROOT = Path(__file__).resolve().parents[2]
NB_DIR = ROOT / "notebooks"
ALL = [ex for nb in nbs.numbered_notebooks(NB_DIR) for ex in nbs.exercises(nb)]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="exercise checks touch the kernel: need root")


def _digest(directory: Path) -> dict:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


def test_stub_notebooks_report_not_yet_and_stay_unchanged(tmp_path):
    for nb in nbs.numbered_notebooks(NB_DIR):
        (tmp_path / nb.name).write_bytes(nb.read_bytes())
    before = _digest(tmp_path)
    rows = progress([tmp_path])
    assert [(r.notebook, r.exercise) for r in rows] == [(e.notebook.name, e.ex_id) for e in ALL]
    assert {r.status for r in rows} == {"not yet"}, [r for r in rows if r.status != "not yet"]
    assert _digest(tmp_path) == before  # the learner's files are read, never written


def test_solved_copies_report_solved(tmp_path):
    nbs.write_solved(NB_DIR, tmp_path)
    rows = progress([tmp_path])
    assert len(rows) == len(ALL)
    assert [r for r in rows if r.status != "solved"] == []


def test_one_wrong_answer_reports_the_checks_message(tmp_path):
    """A learner who answered one exercise wrongly (and the others not at all), through the command."""
    ex = next(e for e in ALL if e.ex_id == "06.1")
    nb = nbs.load(ex.notebook)
    nb["cells"][ex.cell_index]["source"] = (
        f"# Exercise 06.1 — a wrong answer\ndef {ex.func_name}(status):\n    return 0\n")
    learner = tmp_path / ex.notebook.name
    learner.write_text(json.dumps(nb))
    out = subprocess.run([sys.executable, "-m", "minicontainer.course", "progress", str(learner), "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = {r["exercise"]: r for r in json.loads(out.stdout)}
    assert rows["06.1"]["status"] == "error"
    assert "expected" in rows["06.1"]["message"].lower() or "got" in rows["06.1"]["message"].lower(), rows
    assert "\n" not in rows["06.1"]["message"]
    assert all(r["status"] == "not yet" for k, r in rows.items() if k != "06.1")


def test_not_a_notebook_is_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "minicontainer.course", "progress", str(tmp_path / "nope.txt")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "not a notebook" in out.stderr and "Traceback" not in out.stderr
