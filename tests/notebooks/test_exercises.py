"""Every exercise check, both ways: the unsolved stub must not pass, the solution must pass."""

import os
from pathlib import Path

import pytest

from minicontainer.course import evaluate
from minicontainer.course import notebooks as nbs

NB_DIR = Path(__file__).resolve().parents[2] / "notebooks"
EXERCISES = [ex for nb in nbs.numbered_notebooks(NB_DIR) for ex in nbs.exercises(nb)]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="exercise checks touch the kernel: need root")


def _function(src: str, name: str):
    ns: dict = {"__name__": "__exercise__"}
    exec(compile(src, f"<exercise {name}>", "exec"), ns)  # noqa: S102 - our own course files
    return ns[name]


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.ex_id)
def test_stub_does_not_pass(ex):
    result = evaluate(ex.ex_id, _function(ex.stub, ex.func_name))
    assert result.status == "unsolved", result


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.ex_id)
def test_solution_passes(ex):
    assert ex.solution, f"no solution block for {ex.ex_id}"
    result = evaluate(ex.ex_id, _function(ex.solution, ex.func_name))
    assert result.status == "passed", result.message
