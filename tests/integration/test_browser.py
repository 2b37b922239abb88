"""The course in a real browser: JupyterLab + headless Chromium, as a learner would use it.

nbval runs the notebooks' code in a kernel but never renders them; this test is the one that sees
what a learner sees. For each notebook it starts JupyterLab from the venv (loopback, free port,
token), opens the notebook in Debian's headless `chromium` driven by Playwright, clicks Run → Run All
Cells, waits until the kernel is idle with every cell executed, then checks that no cell shows an
error and, where the notebook uses ipywidgets, that a widget rendered (the widget manager extension
works), and saves a screenshot to build/screenshots/NN.png. A second test reads the course as a
website (`make site`) in the same browser.

Why Playwright with the system chromium (executable_path) and not `playwright install`: the browser
comes from Debian's archive like every other package of the course (Makefile APT_PACKAGES), and no
download from a browser CDN is needed. Why not Selenium: it needs a matching chromedriver as well.
The notebook is served from a copy in a temporary directory so JupyterLab's autosave never writes
outputs into the committed notebook.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
# MC_BROWSER_NOTEBOOK: run another notebook the same way (e.g. while writing one)
NOTEBOOK = os.environ.get("MC_BROWSER_NOTEBOOK", "00_a_container_is_just_a_process.ipynb")
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                       reason=f"no {CHROMIUM}: install Debian's chromium (`sudo make test` does)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path, request):
    """A JupyterLab server on a copy of the notebook (the test's parameter, else NOTEBOOK); yields
    (base_url, token, served_dir)."""
    notebook = getattr(request, "param", NOTEBOOK)
    served = tmp_path / "notebooks"
    served.mkdir()
    shutil.copy(ROOT / "notebooks" / notebook, served / notebook)
    port, token = _free_port(), os.urandom(16).hex()
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "ws"))
    log = open(tmp_path / "lab.log", "w+")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "jupyter"), "lab", "--allow-root", "--no-browser",
         "--ip=127.0.0.1", f"--port={port}", f"--ServerApp.root_dir={served}",
         f"--IdentityProvider.token={token}", f"--LabApp.workspaces_dir={tmp_path / 'ws'}"],
        cwd=served, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"jupyter lab exited:\n{(tmp_path / 'lab.log').read_text()}"
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline, f"no answer:\n{(tmp_path / 'lab.log').read_text()}"
                time.sleep(0.3)
        yield base, token, served
    finally:
        # shut the kernels down through the API first: they run as root and may hold kernel objects
        try:
            for k in json.load(urllib.request.urlopen(f"{base}/api/kernels?token={token}", timeout=5)):
                req = urllib.request.Request(f"{base}/api/kernels/{k['id']}?token={token}", method="DELETE")
                urllib.request.urlopen(req, timeout=30).read()
        except OSError:
            pass
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


# What "done" means, read from the page: every code cell has a numbered prompt (none is "[*]" or
# empty), and the notebook's kernel status indicator says idle.
_STATE_JS = """() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]
      .map(p => p.textContent.trim());
  const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
  return {prompts, status: ind ? ind.getAttribute('data-status') : null};
}"""


_KERNEL_READY_JS = """() => !document.querySelector('.jp-Dialog')
  && document.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status') === 'idle'
  && !/No Kernel/.test(document.querySelector('.jp-KernelName')?.textContent ?? 'No Kernel')"""


# MC_BROWSER_NOTEBOOK picks one notebook; by default every numbered notebook is run, each in a
# JupyterLab of its own (a smoke test per notebook: it opens, its kernel starts, Run All reaches the
# cleanup cell with no error shown — exercises unsolved, as a learner first sees them).
_ALL = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BROWSER_NOTEBOOKS = [os.environ["MC_BROWSER_NOTEBOOK"]] if os.environ.get("MC_BROWSER_NOTEBOOK") else _ALL


@pytest.mark.parametrize("lab", BROWSER_NOTEBOOKS, indirect=True, ids=lambda n: n[:2])
def test_notebook_runs_in_chromium(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    base, token, served = lab
    NOTEBOOK = next(served.glob("*.ipynb")).name          # noqa: N806 - this test's notebook
    wants_widgets = "ipywidgets" in (served / NOTEBOOK).read_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / (NOTEBOOK.split("_")[0] + ".png")
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}")
            page.locator(".jp-Notebook .jp-Cell").first.wait_for()
            # a notebook opened for the first time may ask which kernel to start: take the proposed one
            deadline = time.monotonic() + 120
            while True:
                dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
                if dialog.count():
                    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
                elif page.evaluate(_KERNEL_READY_JS):
                    break
                assert time.monotonic() < deadline, "the kernel did not start"
                page.wait_for_timeout(500)

            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

            deadline = time.monotonic() + float(os.environ.get("MC_BROWSER_TIMEOUT", 300))
            while True:
                state = page.evaluate(_STATE_JS)
                done = (state["prompts"] and state["status"] == "idle"
                        and all(p.startswith("[") and p[1:-2].isdigit() for p in state["prompts"]))
                if done:
                    break
                if time.monotonic() > deadline:
                    page.screenshot(path=str(shot))
                    pytest.fail(f"the notebook did not finish running (screenshot: {shot}): {state}")
                time.sleep(1)

            # errors as the learner sees them: a rendered traceback in any output area
            tracebacks = page.evaluate("""() => [...document.querySelectorAll(
                  '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
                .map(e => e.textContent).filter(t => /Traceback|Error\\b/.test(t))""")
            # a widget rendered by the ipywidgets manager (not its "Loading widget..." placeholder)
            widgets = page.locator(".jp-OutputArea-output .jupyter-widgets.widget-inline-hbox, "
                                   ".jp-OutputArea-output .jupyter-widgets.widget-box, "
                                   ".jp-OutputArea-output .jupyter-widgets.widget-inline-vbox, "
                                   ".jp-OutputArea-output .jupyter-widgets.widget-html, "
                                   ".jp-OutputArea-output .jupyter-widgets.widget-label, "
                                   ".jp-OutputArea-output .jupyter-widgets.widget-output")
            n_widgets = widgets.count()
            failed_widgets = page.locator(".jp-OutputArea-output", has_text="Error displaying widget").count()
            no_news = page.get_by_role("button", name="No", exact=True)
            if no_news.count():
                no_news.first.click()      # the "official Jupyter news?" toast: no, and out of the picture
                page.wait_for_timeout(800)
            if n_widgets:                  # scroll the notebook so the first widget is in the picture
                page.wait_for_timeout(500)
                widgets.first.evaluate(
                    "e => { const panel = e.closest('.jp-WindowedPanel-outer') || e.closest('.jp-Notebook');"
                    " panel.scrollTop += e.getBoundingClientRect().top - 300; }")
                page.wait_for_timeout(500)
            page.screenshot(path=str(shot))

            # and the saved notebook: no output of type "error" in any cell
            page.keyboard.press("Control+s")
            page.wait_for_timeout(1500)
        finally:
            browser.close()

    saved = json.loads((served / NOTEBOOK).read_text())
    errors = [(i, o.get("ename"), o.get("evalue")) for i, c in enumerate(saved["cells"])
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    executed = [c for c in saved["cells"] if c["cell_type"] == "code" and c.get("execution_count")]
    code_cells = [c for c in saved["cells"] if c["cell_type"] == "code"]

    assert not tracebacks, f"cells show errors in the browser:\n" + "\n---\n".join(tracebacks)
    assert not errors, f"error outputs in the executed notebook: {errors}"
    assert len(executed) == len(code_cells) > 0, "not every code cell was executed"
    assert failed_widgets == 0, "a widget failed to render ('Error displaying widget')"
    if wants_widgets:
        assert n_widgets > 0, (f"no ipywidgets widget rendered in {NOTEBOOK} (screenshot: {shot}); "
                               "the notebook is expected to display one")
    assert shot.stat().st_size > 10_000


# ---------------------------------------------------------------------------------------------------
# The course as a website (make site): built for a few notebooks, read in headless Chromium.

SITE_NOTEBOOKS = os.environ.get("MC_SITE_NOTEBOOKS", "00 03 04").split()


def test_site_pages_load_in_chromium(tmp_path):
    """`make site` for a few notebooks (all of them: MC_SITE_NOTEBOOKS="00 01 02 03 04 05 06 07"): every
    page loads from file:// with nothing fetched from the network, its previous/next/index links lead
    to pages that exist, every code cell shows its output area, no output is a traceback, and each page
    whose notebook draws a figure shows it as an image."""
    from playwright.sync_api import sync_playwright

    from minicontainer.course import notebooks as nbs
    from minicontainer.course import site

    if os.geteuid() != 0:
        pytest.skip("building the site executes the notebooks: needs root")
    dest = tmp_path / "site"
    pages = site.build(ROOT / "notebooks", dest, SITE_NOTEBOOKS)
    assert len(pages) == len(SITE_NOTEBOOKS)
    figures = {p.stem for p in nbs.numbered_notebooks(ROOT / "notebooks")
               if "plt.show()" in p.read_text()}
    external = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            # nothing leaves the machine: the CDN scripts nbconvert links (require.js, MathJax) are refused
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://")
                       else (external.append(route.request.url), route.abort()))
            page.goto((dest / "index.html").as_uri())
            listed = page.eval_on_selector_all(".mc-index a", "as => as.map(a => a.getAttribute('href'))")
            assert listed == [f"{pg.name}" for pg in pages]
            for pg in pages:
                page.goto(pg.as_uri())
                info = page.evaluate("""() => ({
                  title: document.querySelector('h1')?.textContent ?? '',
                  links: [...document.querySelectorAll('nav.mc-nav a')].map(a => a.getAttribute('href')),
                  cells: document.querySelectorAll('.jp-CodeCell').length,
                  outputs: document.querySelectorAll('.jp-CodeCell .jp-OutputArea-output').length,
                  errors: [...document.querySelectorAll('.jp-OutputArea-output')]
                            .map(e => e.textContent).filter(t => /Traceback \\(most recent call last\\)/.test(t)),
                  images: [...document.querySelectorAll('.jp-OutputArea-output img')]
                            .filter(i => i.complete && i.naturalWidth > 100).length,
                })""")
                assert info["title"].startswith(pg.stem[:2]), (pg.name, info["title"])
                assert "index.html" in info["links"], (pg.name, info["links"])
                for href in info["links"]:
                    assert (dest / href).is_file(), f"{pg.name} links to {href}, which was not built"
                assert info["cells"] > 0 and info["outputs"] >= info["cells"] // 2, (pg.name, info)
                assert not info["errors"], f"{pg.name} shows a traceback: {info['errors'][0][:300]}"
                if pg.stem in figures:
                    assert info["images"] >= 1, f"{pg.name}: its notebook draws a figure, the page shows none"
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOTS / f"site-{pg.stem[:2]}.png"), full_page=True)
        finally:
            browser.close()
    assert all(not u.startswith(("http://127.", "file:")) for u in external)
