"""``run -it`` / ``exec -it``: a real terminal for the container (notebook 06).

What docker (and runc's ``--console-socket``) do, in miniature: the runtime opens a pseudo-terminal
pair; the container gets the *slave* side as stdin/stdout/stderr and makes it its controlling terminal
(``setsid`` + ``TIOCSCTTY``, in :func:`make_controlling`), so job control, ^C and line editing work
inside. The runtime keeps the *master* side and relays bytes between it and the user's terminal, which
it puts in raw mode (every key goes straight through; the container's line discipline does the
echoing) and restores afterwards — also when the container fails to start. Window size changes
(SIGWINCH) are passed on with ``TIOCSWINSZ``.

Rejected: handing the user's own terminal to the container. Its process group would then fight the
runtime for the terminal, and a container could leave it in raw mode or inject input with ``TIOCSTI``.
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
    """``with Terminal() as t:`` — ``t.slave`` goes to the container as fds 0-2; call
    :meth:`start_relay` once the container runs (``close_slave`` first: the relay ends when the last
    slave fd closes, i.e. when the container's processes are gone)."""

    def __init__(self, stdin: int = 0, stdout: int = 1):
        if not os.isatty(stdin):
            raise ConfigError("the input device is not a TTY", hint="drop -t, or run from a terminal")
        self.stdin, self.stdout = stdin, stdout
        self.master, self.slave = os.openpty()
        self._saved = None
        self._thread: threading.Thread | None = None
        self._old_winch = None

    def __enter__(self) -> "Terminal":
        _copy_winsize(self.stdin, self.master)
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
            self._old_winch = signal.signal(signal.SIGWINCH,
                                            lambda *_: _copy_winsize(self.stdin, self.master))
        return self

    def close_slave(self) -> None:
        if self.slave is not None:
            os.close(self.slave)
            self.slave = None

    def start_relay(self) -> None:
        self.close_slave()
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
            self.close_slave()
            if self._thread is not None:
                self._thread.join(timeout=2)    # drain what the container wrote last
        finally:
            if self._saved is not None:
                termios.tcsetattr(self.stdin, termios.TCSADRAIN, self._saved)
            if self._old_winch is not None:
                signal.signal(signal.SIGWINCH, self._old_winch)
            os.close(self.master)
