"""Exercises that check themselves. Introduced in notebook 00.

The one mechanism every notebook uses (see ``notebooks/TEMPLATE.md``):

* an **exercise cell** (tag ``exercise``) starts with ``# Exercise NN.K — …`` and defines one
  function whose body is ``raise NotImplementedError(...)``: the learner replaces it;
* the **check cell** right after it (tag ``check``) is exactly ``check("NN.K", the_function)``;
* the **solution** lives in ``notebooks/solutions/NN_topic.py`` as a block starting with
  ``# %% Exercise NN.K``. Each exercise cell and each solution block is self-contained (its own
  imports), so both can be run on their own.

``check`` runs the checker registered for that id (in ``minicontainer/course/nbNN.py``) against the
learner's function and prints one line:

* ``✓ Exercise 01.1 passed: …`` — and returns True;
* ``✗ Exercise 01.1 not solved yet: …`` — when the function still raises NotImplementedError; it
  returns False *without raising*, so "Run All" goes on to the cleanup cell and leaves nothing behind;
* a wrong attempt raises :class:`ExerciseFailed` with what was expected and what came back.

CI proves every check both ways (``tests/notebooks/test_exercises.py``): on the stub it must not
pass, on the solution it must pass. ``evaluate`` is the same check without printing, for those tests.
"""

from __future__ import annotations

import importlib
import os
import pickle
import signal
import traceback
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["call_in_x", "check", "evaluate", "exercise", "ExerciseFailed", "Result", "run_in_child"]

_CHECKERS: dict[str, Callable[[Callable], str | None]] = {}


class ExerciseFailed(AssertionError):
    """A wrong answer: the message says what was expected and what came back."""


@dataclass
class Result:
    exercise: str
    status: str          # "passed" | "unsolved" | "failed"
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def exercise(ex_id: str):
    """Register the decorated function as the checker of exercise ``ex_id`` ("01.2").

    A checker takes the learner's function, calls it (directly or via :func:`run_in_child`), raises
    :class:`ExerciseFailed` on a wrong answer and returns a short summary of what it verified.
    """
    def deco(fn):
        _CHECKERS[ex_id] = fn
        return fn
    return deco


def _checker(ex_id: str):
    if ex_id not in _CHECKERS:
        module = f"minicontainer.course.nb{ex_id.split('.')[0]}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            raise KeyError(f"no checks module {module} for exercise {ex_id}") from exc
    try:
        return _CHECKERS[ex_id]
    except KeyError:
        raise KeyError(f"no checker registered for exercise {ex_id}") from None


def evaluate(ex_id: str, candidate: Callable) -> Result:
    """Run exercise ``ex_id``'s checker on ``candidate``; never prints, never raises for a wrong answer."""
    checker = _checker(ex_id)
    try:
        summary = checker(candidate)
    except NotImplementedError:
        return Result(ex_id, "unsolved",
                      "the function still raises NotImplementedError — replace that line with your code")
    except ExerciseFailed as exc:
        return Result(ex_id, "failed", str(exc))
    return Result(ex_id, "passed", summary or "all checks hold")


def check(ex_id: str, candidate: Callable) -> bool:
    """The check cell's call: print one line; raise :class:`ExerciseFailed` on a wrong attempt."""
    result = evaluate(ex_id, candidate)
    if result.status == "passed":
        print(f"✓ Exercise {ex_id} passed: {result.message}")
        return True
    if result.status == "unsolved":
        print(f"✗ Exercise {ex_id} not solved yet: {result.message}. "
              f"(A solution is in notebooks/solutions/.)")
        return False
    raise ExerciseFailed(f"Exercise {ex_id}: {result.message}")


def run_in_child(func: Callable[..., Any], *args, before: Callable[[], None] | None = None,
                 timeout: float = 30.0) -> Any:
    """Call ``func(*args)`` in a forked child and return its result (pickled through a pipe).

    For checkers whose candidate must run somewhere else (a new namespace, a cgroup): ``before`` runs
    first in the child (e.g. an ``unshare``). An exception in the child — NotImplementedError
    included — is raised again here. The child never returns into our code: it ends with
    ``os._exit``. A child that hangs past ``timeout`` seconds is killed.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(r)
            if before is not None:
                before()
            payload = ("ok", func(*args))
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
            code = 1
            try:
                pickle.dumps(exc)
                payload = ("err", exc)
            except Exception:  # noqa: BLE001
                payload = ("err", RuntimeError("".join(traceback.format_exception(exc))))
        try:
            with os.fdopen(w, "wb") as f:
                pickle.dump(payload, f)
        finally:
            os._exit(code)
    os.close(w)
    import select
    try:
        with os.fdopen(r, "rb") as f:
            ready, _, _ = select.select([f], [], [], timeout)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                raise ExerciseFailed(f"the function did not finish within {timeout:.0f} s")
            data = f.read()
    finally:
        os.waitpid(pid, 0)
    if not data:
        raise ExerciseFailed("the function's process died without an answer")
    kind, value = pickle.loads(data)
    if kind == "err":
        raise value
    return value


def call_in_x(func, *args, before=None, timeout: float = 20.0):
    """Call ``func(*args)`` in a throwaway child X of ours and keep X alive until the returned
    ``done()`` is called; X then kills the pid it returned and reaps everything it started.

    Returns (X's pid, the function's result, done). The answer comes back length-prefixed: a process
    the learner forks inherits the pipe's write end, so EOF would never come."""
    import select

    res_r, res_w = os.pipe()
    done_r, done_w = os.pipe()
    x = os.fork()
    if x == 0:
        code = 0
        try:
            os.close(res_r)
            os.close(done_w)
            try:
                if before is not None:
                    before()
                payload = ("ok", func(*args))
            except BaseException as exc:  # noqa: BLE001 - goes back to the checker
                code = 1
                try:
                    pickle.dumps(exc)
                    payload = ("err", exc)
                except Exception:  # noqa: BLE001
                    payload = ("err", RuntimeError(repr(exc)))
            blob = pickle.dumps(payload)
            os.write(res_w, len(blob).to_bytes(8, "big") + blob)
            os.close(res_w)
            os.read(done_r, 1)
            if payload[0] == "ok" and isinstance(payload[1], int) and payload[1] > 1:
                try:
                    os.kill(payload[1], signal.SIGKILL)
                except OSError:
                    pass
            while True:                       # reap whatever the learner's function started
                try:
                    os.waitpid(-1, 0)
                except ChildProcessError:
                    break
        finally:
            os._exit(code)
    os.close(res_w)
    os.close(done_r)

    def done():
        try:
            os.write(done_w, b"d")
            os.close(done_w)
        except OSError:
            pass
        os.close(res_r)
        os.waitpid(x, 0)

    try:
        ready, _, _ = select.select([res_r], [], [], timeout)
        if not ready:
            os.kill(x, signal.SIGKILL)
            raise ExerciseFailed(f"the function did not return within {timeout:.0f} s")
        data = b""
        while len(data) < 8 or len(data) < 8 + int.from_bytes(data[:8], "big"):
            chunk = os.read(res_r, 65536)
            if not chunk:
                raise ExerciseFailed("the process calling the function died without an answer")
            data += chunk
    except BaseException:
        done()
        raise
    kind, value = pickle.loads(data[8:])
    if kind == "err":
        done()
        raise value
    return x, value, done
