"""``--init``: a tiny PID 1 that reaps zombies and forwards signals (notebook 06).

PID 1 of a PID namespace inherits every orphan, and gets no default signal actions: a shell or a
server as PID 1 leaves zombies piling up and ignores ``docker stop``'s SIGTERM. This init forks the
real command, forwards the usual signals to it, reaps every child that ends, and exits with the
command's status (128+N when a signal killed it) — what tini/docker-init do, in a dozen lines.
Rejected alternative: a subreaper in the runtime — the orphans of a PID namespace go to its PID 1,
never to a process outside it.
"""

from __future__ import annotations

import os
import signal

from ..errors import exit_code

FORWARD = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def run_init(exec_command, close=()) -> None:
    """Fork ``exec_command()`` (which execs and never returns), then reap until it ends. Never returns."""
    child = os.fork()
    if child == 0:
        try:
            for s in FORWARD:
                signal.signal(s, signal.SIG_DFL)
            exec_command()
        finally:
            os._exit(127)
    for fd in close:
        os.close(fd)
    for s in FORWARD:
        signal.signal(s, lambda sig, _f: os.kill(child, sig))
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(0)
        if pid == child:
            os._exit(exit_code(status))
