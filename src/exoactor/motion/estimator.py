"""Interface of motion-estimation backends: a video -> a world-grounded :class:`HumanMotion`."""
from __future__ import annotations

import abc
from pathlib import Path

from exoactor.geometry import PinholeCamera
from exoactor.motion.human_motion import HumanMotion, MotionEstimationError
from exoactor.progress import CancelToken, ProgressCallback
from exoactor.video.io import VideoReadError, video_info


def input_video_info(video_path: Path) -> tuple[float, int, int, int]:
    """(fps, frame count, width, height) of an estimator's input; MotionEstimationError if unreadable."""
    try:
        return video_info(video_path)
    except VideoReadError as e:
        raise MotionEstimationError(str(e)) from e


def camera_for_video(camera: PinholeCamera, width: int, height: int) -> PinholeCamera:
    """The calibration at the video's size (same field of view and pose); MotionEstimationError if
    the video's aspect does not match it."""
    try:
        return camera.at_size(width, height)
    except ValueError as e:
        raise MotionEstimationError(str(e)) from None


class MotionEstimator(abc.ABC):
    name = "abstract"

    @abc.abstractmethod
    def estimate(self, video_path: Path, camera: PinholeCamera, progress: ProgressCallback,
                 cancel: CancelToken) -> HumanMotion:
        """Estimate the motion; raise MotionEstimationError (user-facing reason) or
        :class:`exoactor.progress.Canceled`."""
