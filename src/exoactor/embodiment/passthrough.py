"""Offline embodiment transfer that paints nothing: the reference image is the robot image.

Downstream, the ``synthetic`` video backend renders its human over this image at the robot's
place, so the offline pipeline still produces a human-in-the-scene video.
"""
from __future__ import annotations

import numpy as np

from exoactor.embodiment.base import EmbodimentTransfer, check_robot_image
from exoactor.progress import NEVER_CANCELED, CancelToken, ProgressCallback, check_cancel, no_progress


class PassthroughTransfer(EmbodimentTransfer):
    name = "passthrough"
    paints_human = False

    def __init__(self, **_ignored):
        pass

    def transfer(self, robot_rgb: np.ndarray, progress: ProgressCallback = no_progress,
                 cancel: CancelToken = NEVER_CANCELED) -> np.ndarray:
        check_cancel(cancel, "embodiment transfer")
        check_robot_image(robot_rgb)
        progress(1, 1, "passthrough: reference image is the robot image")
        return robot_rgb.copy()
