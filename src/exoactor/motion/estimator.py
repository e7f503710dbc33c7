"""Interface of motion-estimation backends: a video -> a world-grounded :class:`HumanMotion`."""
from __future__ import annotations

import abc
import threading
from pathlib import Path
from typing import Callable

from exoactor.geometry import PinholeCamera
from exoactor.motion.human_motion import HumanMotion

ProgressCallback = Callable[[int, int, str], None]


class EstimationCanceled(RuntimeError):
    """The request was canceled while running."""


class MotionEstimator(abc.ABC):
    name = "abstract"

    @abc.abstractmethod
    def estimate(self, video_path: Path, camera: PinholeCamera, progress: ProgressCallback,
                 cancel: threading.Event) -> HumanMotion:
        """Estimate the motion; raise MotionEstimationError (user-facing reason) or EstimationCanceled."""
