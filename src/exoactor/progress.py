"""Progress reporting and cancellation: the one definition every core stage uses.

A long-running core function takes ``progress: ProgressCallback`` and ``cancel: CancelToken``;
it calls ``progress(done, total, detail)`` now and then and checks ``cancel.is_set()`` often
(at least every 0.2 s while it waits), raising :class:`Canceled` when it is set.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Protocol

ProgressCallback = Callable[[int, int, str], None]
"""progress(done, total, detail): ``done`` of ``total`` units of work finished; ``detail`` for people."""


class CancelToken(Protocol):
    """Anything with ``is_set()`` (``threading.Event``, the ROS stage's cancel flag)."""

    def is_set(self) -> bool: ...


class Canceled(RuntimeError):
    """The work was canceled while running."""


NEVER_CANCELED: CancelToken = threading.Event()
"""A token that is never set (for callers that cannot cancel)."""


def no_progress(_done: int, _total: int, _detail: str) -> None:
    """A ProgressCallback that ignores reports."""


def check_cancel(cancel: CancelToken, what: str = "work") -> None:
    """Raise :class:`Canceled` if ``cancel`` is set."""
    if cancel.is_set():
        raise Canceled(f"{what} canceled")


def sleep_cancellable(seconds: float, cancel: CancelToken, what: str = "wait", step_s: float = 0.1) -> None:
    """Sleep ``seconds`` but wake at least every ``step_s`` to raise :class:`Canceled` when asked."""
    deadline = time.monotonic() + max(0.0, seconds)
    while True:
        check_cancel(cancel, what)
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(step_s, left))
