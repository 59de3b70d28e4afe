"""Ctrl-C while the command line starts up: a one-line message and exit status 130 (as a
process that SIGINT ends), not a traceback from whichever import it interrupted.

The package imports this first. It acts only when the process was started as the
command (``python -m tfrecord_lite``, or the ``tfrecord-lite`` script), never in a
program that imports the package; ``cli.main`` hands SIGINT back to Python's handler
(``KeyboardInterrupt``) once it can clean up after a job (``release``).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

EXIT_INTERRUPTED = 130  # 128 + SIGINT
_SCRIPTS = ("tfrecord-lite", "tfrecord-lite.exe")


def _started_as_command() -> bool:
    if os.path.basename(sys.argv[0]) in _SCRIPTS:
        return True
    # While `python -m NAME` imports NAME's package, sys.argv[0] is "-m".
    given = list(getattr(sys, "orig_argv", []))
    return (sys.argv[:1] == ["-m"] and "-m" in given
            and given[given.index("-m") + 1:][:1] == ["tfrecord_lite"])


def _quiet_exit(signum: int, frame: FrameType | None) -> None:
    sys.stderr.write("tfrecord-lite: interrupted while starting; nothing was written\n")
    raise SystemExit(EXIT_INTERRUPTED)


def install() -> None:
    """Exit quietly on Ctrl-C from now on, if this process is the command."""
    if threading.current_thread() is threading.main_thread() and _started_as_command():
        signal.signal(signal.SIGINT, _quiet_exit)


def release() -> None:
    """Ctrl-C raises ``KeyboardInterrupt`` again, if ``install`` changed it."""
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is _quiet_exit):
        signal.signal(signal.SIGINT, signal.default_int_handler)


install()
