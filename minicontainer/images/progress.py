"""Progress of pulls and pushes, like ``docker pull``'s. Notebook 09.

On a terminal: one line per layer, redrawn in place (``a1b2c3d4e5f6: Downloading  12.3MB/45.6MB
8.1MB/s``) with ANSI cursor movement. Otherwise (a pipe, a log, CI): one plain line per change of
state, never per chunk. The notebook passes its own object with the same three methods.
"""

from __future__ import annotations

import sys
import threading
import time


def human(n: float | None) -> str:
    """Docker's units (powers of 1000): 5.2MB."""
    if n is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.3g}{unit}"
        n /= 1000
    return f"{n}"


class PullProgress:
    """``status(line)``, ``layer(digest, state, done=, total=)``, ``close()``; thread-safe."""

    def __init__(self, stream=None, tty: bool | None = None, interval: float = 0.1):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.lock = threading.Lock()
        self.rows: dict[str, str] = {}          # short id → current text
        self.order: list[str] = []
        self.started: dict[str, float] = {}
        self.last_draw, self.interval, self.drawn = 0.0, interval, 0

    def status(self, line: str) -> None:
        with self.lock:
            self._write(line + "\n")

    def layer(self, digest: str, state: str, done: int | None = None, total: int | None = None) -> None:
        short = digest.partition(":")[2][:12]
        with self.lock:
            if short not in self.rows:
                self.order.append(short)
                self.drawn += 0
            if state == "Downloading" or state == "Pushing":
                t0 = self.started.setdefault(short, time.monotonic())
                rate = (done or 0) / max(time.monotonic() - t0, 1e-3)
                text = f"{state} {human(done):>7}/{human(total)} {human(rate)}/s"
            else:
                text = state
            changed = self.rows.get(short, "").split(" ")[0] != text.split(" ")[0]
            self.rows[short] = text
            if self.tty:
                now = time.monotonic()
                if changed or now - self.last_draw >= self.interval:
                    self.last_draw = now
                    self._redraw()
            elif changed:
                self._write(f"{short}: {text}\n")

    def _redraw(self) -> None:
        out = "\x1b[%dA" % self.drawn if self.drawn else ""
        for short in self.order:
            out += f"\r\x1b[2K{short}: {self.rows[short]}\n"
        self.drawn = len(self.order)
        self._write(out, counted=False)

    def _write(self, text: str, counted: bool = True) -> None:
        if self.tty and counted and self.drawn:  # a status line below the layer rows
            self.drawn = 0
            self.order = []
            self.rows = {}
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        pass


class Quiet(PullProgress):
    def __init__(self):
        super().__init__(stream=None, tty=False)

    def status(self, line):
        pass

    def layer(self, *a, **k):
        pass


class WidgetProgress:
    """The same three methods as ipywidgets for a notebook: one bar per layer, a status line.

    ``pull(ref, progress=WidgetProgress())`` in a cell shows the bars as the layers stream."""

    def __init__(self):
        import ipywidgets as w   # lazily: the command line never imports it
        from IPython.display import display
        self.w = w
        self.box = w.VBox([])
        self.status_line = w.HTML("")
        self.bars: dict[str, object] = {}
        self.lock = threading.Lock()
        self.started: dict[str, float] = {}
        display(w.VBox([self.status_line, self.box]))

    def status(self, line: str) -> None:
        self.status_line.value = line

    def layer(self, digest: str, state: str, done: int | None = None, total: int | None = None) -> None:
        short = digest.partition(":")[2][:12]
        with self.lock:
            bar = self.bars.get(short)
            if bar is None:
                bar = self.bars[short] = self.w.FloatProgress(value=0, min=0, max=1, description=short,
                                                             layout={"width": "60%"})
                bar.label = self.w.Label(state)
                self.box.children = (*self.box.children, self.w.HBox([bar, bar.label]))
        if done is not None and total:
            t0 = self.started.setdefault(short, time.monotonic())
            bar.value = done / total
            rate = done / max(time.monotonic() - t0, 1e-3)
            bar.label.value = f"{state} {human(done)}/{human(total)} {human(rate)}/s"
        else:
            if state in ("Pull complete", "Already exists", "Pushed", "Layer already exists"):
                bar.value = 1
            bar.label.value = state

    def close(self) -> None:
        pass
