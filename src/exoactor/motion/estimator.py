"""Interface of motion-estimation backends: a video -> a world-grounded :class:`HumanMotion`."""
from __future__ import annotations

import abc
from pathlib import Path

from exoactor.geometry import PinholeCamera
from exoactor.motion.human_motion import HumanMotion
from exoactor.progress import CancelToken, ProgressCallback


class MotionEstimator(abc.ABC):
    name = "abstract"

    @abc.abstractmethod
    def estimate(self, video_path: Path, camera: PinholeCamera, progress: ProgressCallback,
                 cancel: CancelToken) -> HumanMotion:
        """Estimate the motion; raise MotionEstimationError (user-facing reason) or
        :class:`exoactor.progress.Canceled`."""
