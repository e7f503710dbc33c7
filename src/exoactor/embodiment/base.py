"""Interface of embodiment-transfer backends."""
from __future__ import annotations

import abc

import numpy as np


class EmbodimentTransferError(RuntimeError):
    """Transfer failed for a reason the user can act on."""


class EmbodimentTransfer(abc.ABC):
    name = "abstract"
    paints_human = True
    """False for backends that return the robot image unchanged."""

    @abc.abstractmethod
    def transfer(self, robot_rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB robot image -> (H', W', 3) uint8 RGB image with a human instead."""
