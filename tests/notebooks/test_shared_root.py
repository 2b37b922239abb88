"""The notebooks, run under a *shared* `/` (issue 22).

systemd makes `/` shared on most hosts (the classroom VM included): a mount namespace copied from it
keeps its mounts as peers of the host's, so a notebook cell that forgets `MS_REC|MS_PRIVATE` (or makes
`/` shared again) leaks its mounts onto the host. CI's own `/` is private and would never see that, so
this test gives nbval a mount namespace of its own with `mount --make-rshared /` — systemd's
setting — and runs the solved notebook there with the usual leak check (conftest.py). The leak lands in
that throwaway namespace, where the check sees it, never on the machine.

Notebook 03 failed here before issue 22's fix (its cell 10 bind-mounted the busybox root in a copy made
rshared: "03_rootfs.ipynb left behind: mounts: ('/tmp/mcrf-nb03-…/root', …)").
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from minicontainer.course import notebooks as nbs

ROOT = Path(__file__).resolve().parents[2]
#: every notebook: most mount in new mount namespaces (01 propagation and /proc, 03 pivot_root, 04
#: overlay, 05 /run/netns, 06 the by-hand container and the runtime), and the issue asks that CI see
#: the whole course as a systemd host would
MOUNTING = tuple(p.name[:2] for p in nbs.numbered_notebooks(ROOT / "notebooks"))

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="runs notebooks in a mount namespace: needs root"),
    pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare"),
]


@pytest.mark.parametrize("nn", MOUNTING)
def test_notebook_leaves_nothing_under_shared_root(nn):
    # under the repository, so that the inner pytest loads conftest.py (the leak check)
    dest = ROOT / "build" / f"solved-shared-{nn}"
    written = nbs.write_solved(ROOT / "notebooks", dest, [nn])
    assert written, f"no notebook {nn}_*.ipynb"
    inner = (f"mount --make-rshared / && exec {sys.executable} -m pytest {dest} -q "
             f"--nbval-lax --nbval-current-env -p no:cacheprovider "
             f"--nbval-sanitize-with tests/notebooks/sanitize.cfg")
    try:
        proc = subprocess.run(["unshare", "-m", "sh", "-c", inner], cwd=ROOT, capture_output=True,
                              text=True, timeout=240)
    finally:
        shutil.rmtree(dest, ignore_errors=True)
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
    assert proc.returncode == 0, f"notebook {nn} under a shared /:\n{tail}"
