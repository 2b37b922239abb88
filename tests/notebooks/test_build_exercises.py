"""Every notebook has at least one *build* exercise (issue 19), and every exercise has its prose.

A build exercise (tag ``build`` next to ``exercise``) asks the learner to make a mechanism — limit a
cgroup, pivot into a root, wire a veth, write a reaper — and its checker grades the kernel's state, not a
return value. Its markdown cell says what to build, why, and how it is checked, and gives hints in tiers,
collapsed (``<details>``): hint 1, hint 2, then where the solution is. No root needed: this reads the
notebooks only (the checks themselves are proven both ways in test_exercises.py).
"""

from pathlib import Path

import pytest

from minicontainer.course import notebooks as nbs

NB_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = nbs.numbered_notebooks(NB_DIR)


def _prose_before(cells: list, index: int) -> str:
    """The markdown cell introducing the exercise at ``index`` (skipping nothing but markdown itself)."""
    prev = cells[index - 1]
    return nbs.source(prev) if prev.get("cell_type") == "markdown" else ""


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_at_least_one_build_exercise(nb):
    cells = nbs.load(nb)["cells"]
    builds = [ex for ex in nbs.exercises(nb) if "build" in nbs.tags(cells[ex.cell_index])]
    assert len(builds) >= 1, f"{nb.name}: no exercise cell tagged 'build'"
    for ex in builds:
        prose = _prose_before(cells, ex.cell_index)
        for part in ("**Build:**", "**Why:**", "**How it is checked:**"):
            assert part in prose, f"{nb.name} exercise {ex.ex_id}: its markdown lacks {part}"


@pytest.mark.parametrize("nb", nbs.numbered_notebooks(NB_DIR), ids=lambda p: p.name[:2])
def test_every_exercise_has_prose_and_tiered_hints(nb):
    cells = nbs.load(nb)["cells"]
    for ex in nbs.exercises(nb):
        prose = _prose_before(cells, ex.cell_index)
        assert f"Exercise {ex.ex_id}" in prose, \
            f"{nb.name}: exercise {ex.ex_id} has no markdown cell right before it naming it"
        order = [prose.find(s) for s in ("<summary>Hint 1</summary>", "<summary>Hint 2</summary>",
                                         "<summary>Solution</summary>")]
        assert -1 not in order and order == sorted(order), \
            f"{nb.name} exercise {ex.ex_id}: hints must be collapsed, in tiers: Hint 1, Hint 2, Solution"
        assert "raise NotImplementedError" in ex.stub


@pytest.mark.parametrize("nb", nbs.numbered_notebooks(NB_DIR), ids=lambda p: p.name[:2])
def test_what_docker_does_box(nb):
    """Each notebook shows the Docker/containerd/runc counterpart of what it built, with a command."""
    boxes = [nbs.source(c) for c in nbs.load(nb)["cells"]
             if c.get("cell_type") == "markdown" and nbs.source(c).startswith("### What Docker does")]
    assert boxes, f"{nb.name}: no '### What Docker does' markdown cell"
    assert "```" in boxes[0] and ("docker " in boxes[0] or "runc" in boxes[0]), \
        f"{nb.name}: the box should show the command that shows it on a Docker host"
