"""Background playback of a finished result on a topic (videos and skeletons for rviz2)."""
from __future__ import annotations

import threading
import time
from typing import Callable, Iterable

from exoactor.nodes.spin import join_all


class Playback:
    """Publishes ``publish(item)`` for each item at ``rate_hz``; a new play() stops the previous one."""

    def __init__(self):
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def play(self, items: Iterable, rate_hz: float, publish: Callable) -> None:
        self.stop()
        self._stop = stop = threading.Event()

        def run() -> None:
            period = 1.0 / max(rate_hz, 0.1)
            t = time.monotonic()
            for item in items:
                if stop.is_set():
                    return
                try:
                    publish(item)
                except Exception:  # noqa: BLE001 - a preview must never take the node down (e.g. at shutdown)
                    return
                t += period
                stop.wait(max(0.0, t - time.monotonic()))

        self._thread = threading.Thread(target=run, daemon=True, name="playback")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        join_all([self._thread])
        self._thread = None
