"""Interface of embodiment-transfer backends."""
from __future__ import annotations

import abc

import numpy as np

from exoactor.progress import NEVER_CANCELED, CancelToken, ProgressCallback, no_progress

MIN_INPUT_SIDE_PX = 16


class EmbodimentTransferError(RuntimeError):
    """Transfer failed for a reason the user can act on."""


def check_robot_image(robot_rgb: np.ndarray) -> None:
    """Raise :class:`EmbodimentTransferError` unless ``robot_rgb`` is a usable (H, W, 3) uint8 image."""
    if not isinstance(robot_rgb, np.ndarray) or robot_rgb.ndim != 3 or robot_rgb.shape[2] != 3 \
            or robot_rgb.dtype != np.uint8:
        shape = getattr(robot_rgb, "shape", None)
        raise EmbodimentTransferError(f"expected an (H, W, 3) uint8 image, got {shape} "
                                      f"{getattr(robot_rgb, 'dtype', type(robot_rgb).__name__)}")
    if min(robot_rgb.shape[:2]) < MIN_INPUT_SIDE_PX:
        raise EmbodimentTransferError(f"image too small: {robot_rgb.shape[1]}x{robot_rgb.shape[0]}")


class EmbodimentTransfer(abc.ABC):
    """A backend: robot image -> the same scene with a human in the robot's place.

    ``PARAMETERS = {key: (default, description)}`` are declared by the node as ROS parameters
    ``<backend>.<key>`` and passed to ``__init__`` (see :mod:`exoactor.registry`). Remote backends
    raise :class:`exoactor.remote.RemoteError` when the service fails.
    """

    name = "abstract"
    paints_human = True
    """False for backends that return the robot image unchanged."""
    PARAMETERS: dict[str, tuple[object, str]] = {}

    @abc.abstractmethod
    def transfer(self, robot_rgb: np.ndarray, progress: ProgressCallback = no_progress,
                 cancel: CancelToken = NEVER_CANCELED) -> np.ndarray:
        """(H, W, 3) uint8 RGB robot image -> (H, W, 3) uint8 RGB image with a human instead.

        ``progress(done, total, detail)`` is called as the work advances; when ``cancel`` is set
        the call raises :class:`exoactor.progress.Canceled`.
        """

    def stats(self) -> dict:
        """Call statistics of remote backends (:meth:`exoactor.remote.RemoteStats.as_dict`); {} otherwise."""
        return {}
