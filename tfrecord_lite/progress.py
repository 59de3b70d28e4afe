"""Progress of long jobs: a tqdm bar on an interactive stderr, log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Callable, Protocol

logger = logging.getLogger("tfrecord_lite")


class Progress(Protocol):
    def update(self, n: int = 1) -> Any: ...
    def close(self) -> Any: ...


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class _LogProgress:
    """Logs ``done/total`` at most every ``interval`` seconds, and once at the end."""

    def __init__(self, total: int, desc: str, interval: float = 10.0) -> None:
        self.total = total
        self.desc = desc
        self.done = 0
        self.interval = interval
        self.start = self._last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            rate = self.done / max(now - self.start, 1e-9)
            logger.info("%s: %d/%d items (%.0f/s)", self.desc, self.done, self.total, rate)

    def close(self) -> None:
        pass


class _CallbackProgress:
    def __init__(self, total: int, fn: Callable[[int, int], Any]) -> None:
        self.total = total
        self.done = 0
        self.fn = fn

    def update(self, n: int = 1) -> None:
        self.done += n
        self.fn(self.done, self.total)

    def close(self) -> None:
        pass



def make_progress(progress: bool | Callable[[int, int], Any], total: int, desc: str) -> Progress:
    """``False``: nothing; a callable: called with ``(done, total)``; ``True``: tqdm on an
    interactive stderr (when tqdm is installed), else log lines every 10 s."""
    if progress is False or progress is None:
        return _Silent()
    if callable(progress):
        return _CallbackProgress(total, progress)
    if sys.stderr is not None and sys.stderr.isatty():
        try:
            from tqdm import tqdm
        except ImportError:
            pass
        else:
            return tqdm(total=total, desc=desc, unit="img", file=sys.stderr,
                        dynamic_ncols=True, smoothing=0.1)
    return _LogProgress(total, desc)
