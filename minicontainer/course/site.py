"""The course as a static website: every notebook solved, executed and rendered to HTML, with outputs
and figures, an index page and previous/next links — so a learner can read the course, with what the
kernel answered, before installing anything.

    sudo python -m minicontainer.course.site build/site [NN …]      (make site)

Each notebook is solved (exercise cells replaced by their solutions, as CI runs them), executed in a
kernel of this interpreter with nbclient — one at a time, with the notebook's own cleanup cell, so the
machine is left as it was — and exported with nbconvert's HTMLExporter (the JupyterLab look). Links
between notebooks (``02_cgroups.ipynb``) are rewritten to the pages (``02_cgroups.html``). Executing
needs root, like the notebooks themselves.

Rejected: Jupyter Book / Sphinx (a second toolchain and its theme for seven pages); executing in place
in ``notebooks/`` (outputs must never be written into the committed notebooks).
"""

from __future__ import annotations

import html
import json
import re
import sys
import time
from pathlib import Path

from . import notebooks as nbs

_STYLE = """
<style>
.mc-nav { font: 15px/1.4 system-ui, sans-serif; display: flex; justify-content: space-between;
          padding: 10px 16px; background: #f4f6f8; border-bottom: 1px solid #d0d7de; }
.mc-nav a { text-decoration: none; }
.mc-index { font: 16px/1.5 system-ui, sans-serif; max-width: 820px; margin: 40px auto; }
.mc-index li { margin: 8px 0; }
</style>
"""


def title_of(nb: dict, fallback: str) -> str:
    """``03 — The root file system: …`` from the first markdown cell's ``#`` heading."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            m = re.search(r"^#\s+(.+)$", nbs.source(cell), re.M)
            if m:
                return m.group(1).strip()
    return fallback


def _nav(prev: tuple[str, str] | None, nxt: tuple[str, str] | None) -> str:
    left = f'<a rel="prev" href="{prev[0]}">← {html.escape(prev[1])}</a>' if prev else "<span></span>"
    right = f'<a rel="next" href="{nxt[0]}">{html.escape(nxt[1])} →</a>' if nxt else "<span></span>"
    return f'<nav class="mc-nav">{left}<a href="index.html">Course index</a>{right}</nav>'


def _link_pages(body: str, names: set[str]) -> str:
    """``href="02_cgroups.ipynb"`` → ``href="02_cgroups.html"`` for the pages we build."""
    def repl(m):
        stem = m.group(2)
        return f'href={m.group(1)}{stem}.html' if stem in names else m.group(0)
    return re.sub(r'href=(["\'])(\d\d_[a-z0-9_]+)\.ipynb', repl, body)


def _node(nb_dict: dict):
    """A NotebookNode with each cell's source one string (the saved JSON has lists of lines)."""
    import nbformat
    return nbformat.reads(json.dumps(nb_dict), as_version=4)


def execute(nb_dict: dict, cwd: Path, timeout: int = 300) -> dict:
    from nbclient import NotebookClient
    nb = _node(nb_dict)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=False,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def render(nb, extra_head: str, nav: str, names: set[str]) -> str:
    from nbconvert import HTMLExporter
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    body = _link_pages(body, names)
    body = body.replace("</head>", extra_head + "</head>", 1)
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav, body, count=1)
    return body.replace("</body>", nav + "</body>", 1)


def build(src: Path, dest: Path, only: list[str] = (), *, execute_cells: bool = True) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    paths = [p for p in nbs.numbered_notebooks(src) if not only or p.name.startswith(tuple(only))]
    solved = {p.stem: nbs.solved(p) for p in paths}
    titles = {stem: title_of(nb, stem) for stem, nb in solved.items()}
    stems = list(solved)
    names = set(stems)
    written = []
    for i, stem in enumerate(stems):
        t0 = time.monotonic()
        nb = solved[stem]
        if execute_cells:
            nb = execute(nb, cwd=src)
        else:
            nb = _node(nb)
        prev = (f"{stems[i - 1]}.html", titles[stems[i - 1]]) if i else None
        nxt = (f"{stems[i + 1]}.html", titles[stems[i + 1]]) if i + 1 < len(stems) else None
        out = dest / f"{stem}.html"
        out.write_text(render(nb, _STYLE, _nav(prev, nxt), names))
        written.append(out)
        print(f"{stem}: {time.monotonic() - t0:.1f} s → {out}", flush=True)
    items = "\n".join(f'<li><a href="{s}.html">{html.escape(titles[s])}</a></li>' for s in stems)
    (dest / "index.html").write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>minicontainer — the course</title>"
        f"{_STYLE}</head><body><main class='mc-index'><h1>minicontainer — a container runtime, one kernel "
        f"feature at a time</h1><p>Every page below was executed on a real kernel; the outputs and figures "
        f"are what it answered. To run it yourself: <code>sudo make lab</code>.</p><ol>{items}</ol>"
        f"</main></body></html>\n")
    (dest / "pages.json").write_text(json.dumps(stems) + "\n")
    return written


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print("usage: python -m minicontainer.course.site DEST_DIR [NN …]", file=sys.stderr)
        return 2
    src = Path(__file__).resolve().parents[2] / "notebooks"
    written = build(src, Path(argv[0]), argv[1:])
    print(f"wrote {len(written)} page(s) and index.html to {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
