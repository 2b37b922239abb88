"""``run -it`` / ``exec -it``: a real terminal for the container (notebook 06).

What docker (and runc's ``--console-socket``) do, in miniature: the pseudo-terminal pair is opened
*inside* the container — its own ``/dev/ptmx``, the devpts instance mounted for it — and the master
side comes back to the runtime over the container's socket (SCM_RIGHTS). The container keeps the
*slave* side as stdin/stdout/stderr and makes it its controlling terminal (``setsid`` +
``TIOCSCTTY``, in :func:`make_controlling`), so job control, ^C and line editing work inside, and
``tty`` names ``/dev/pts/0`` as in Docker. The runtime relays bytes between the master and the
user's terminal, which it puts in raw mode (every key goes straight through; the container's line
discipline does the echoing) and restores afterwards — also when the container fails to start.
Window size changes (SIGWINCH) are passed on with ``TIOCSWINSZ``.

Rejected: a pair opened on the host's devpts (what this module did first): the container's fds then
named a /dev/pts/N that its own /dev/pts does not have — ``tty`` said "not a tty", ``ttyname`` and
the programs that use it failed. Rejected too: handing the user's own terminal to the container. Its
process group would then fight the runtime for the terminal, and a container could leave it in raw
mode or inject input with ``TIOCSTI``.
"""
from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import struct
import termios
import threading

from ..errors import ConfigError


def make_controlling(fd: int = 0) -> None:
    """In the container's PID 1, before exec: a new session whose controlling terminal is ``fd``."""
    os.setsid()
    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)


def _copy_winsize(src: int, dst: int) -> None:
    try:
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)
    except OSError:
        pass


class Terminal:
    """``with Terminal() as t:`` — the container opens the pair and hands the master to
    :meth:`adopt`; call :meth:`start_relay` once the container runs (the relay ends when the last
    slave fd closes, i.e. when the container's processes are gone)."""

    def __init__(self, stdin: int = 0, stdout: int = 1):
        if not os.isatty(stdin):
            raise ConfigError("the input device is not a TTY", hint="drop -t, or run from a terminal")
        self.stdin, self.stdout = stdin, stdout
        self.master: int | None = None
        self._saved = None
        self._thread: threading.Thread | None = None
        self._old_winch = None

    def __enter__(self) -> "Terminal":
        self._saved = termios.tcgetattr(self.stdin)
        raw = termios.tcgetattr(self.stdin)
        # cfmakeraw: no echo, no line buffering, no signals from keys, no output processing (the
        # container's terminal already turns "\n" into "\r\n"; doing it twice shows "\r\r\n")
        raw[1] &= ~termios.OPOST
        raw[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR
                    | termios.IGNCR | termios.ICRNL | termios.IXON)
        raw[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
        raw[2] = (raw[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
        raw[6][termios.VMIN], raw[6][termios.VTIME] = 1, 0
        termios.tcsetattr(self.stdin, termios.TCSAFLUSH, raw)
        if threading.current_thread() is threading.main_thread():
            self._old_winch = signal.signal(signal.SIGWINCH, lambda *_: self._winch())
        return self

    def _winch(self) -> None:
        if self.master is not None:
            _copy_winsize(self.stdin, self.master)

    def adopt(self, master: int) -> None:
        """The master side of the pair the container opened in its own devpts."""
        self.master = master
        _copy_winsize(self.stdin, master)

    def start_relay(self) -> None:
        if self.master is None:
            return
        self._thread = threading.Thread(target=self._relay, name="mc-tty", daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        fds = [self.stdin, self.master]
        while True:
            try:
                ready, _, _ = select.select(fds, [], [])
            except InterruptedError:
                continue
            if self.master in ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError as exc:          # EIO: every slave fd is closed, the container is gone
                    if exc.errno == errno.EIO:
                        return
                    raise
                if not data:
                    return
                os.write(self.stdout, data)
            if self.stdin in ready:
                data = os.read(self.stdin, 65536)
                if not data:                    # the user's side closed: stop sending
                    fds.remove(self.stdin)
                    continue
                os.write(self.master, data)

    def __exit__(self, *exc) -> None:
        try:
            if self._thread is not None:
                self._thread.join(timeout=2)    # drain what the container wrote last
        finally:
            if self._saved is not None:
                termios.tcsetattr(self.stdin, termios.TCSADRAIN, self._saved)
            if self._old_winch is not None:
                signal.signal(signal.SIGWINCH, self._old_winch)
            if self.master is not None:
                os.close(self.master)
