"""Offline embodiment transfer that paints nothing: the reference image is the robot image.

Downstream, the ``synthetic`` video backend renders its human over this image at the robot's
place, so the offline pipeline still produces a human-in-the-scene video.
"""
from __future__ import annotations

import numpy as np

from exoactor.embodiment.base import EmbodimentTransfer, EmbodimentTransferError


class PassthroughTransfer(EmbodimentTransfer):
    name = "passthrough"
    paints_human = False

    def __init__(self, **_ignored):
        pass

    def transfer(self, robot_rgb: np.ndarray) -> np.ndarray:
        if robot_rgb.ndim != 3 or robot_rgb.shape[2] != 3 or robot_rgb.dtype != np.uint8:
            raise EmbodimentTransferError(f"expected an (H, W, 3) uint8 image, got {robot_rgb.shape} {robot_rgb.dtype}")
        if min(robot_rgb.shape[:2]) < 16:
            raise EmbodimentTransferError(f"image too small: {robot_rgb.shape[1]}x{robot_rgb.shape[0]}")
        return robot_rgb.copy()
