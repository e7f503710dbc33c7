"""Filters over time (axis 0) for keypoint clips: gap filling and zero-lag smoothing."""
from __future__ import annotations

import numpy as np

from exoactor.motion.human_motion import MotionEstimationError


def fill_gaps(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Linear interpolation over time (axis 0) of frames where ``valid`` is False."""
    out = values.copy()
    t = np.arange(len(values))
    if valid.sum() == 0:
        raise MotionEstimationError("no person was detected in any frame of the video")
    flat = out.reshape(len(values), -1)
    for c in range(flat.shape[1]):
        flat[~valid, c] = np.interp(t[~valid], t[valid], flat[valid, c])
    return flat.reshape(values.shape)


def gaussian_smooth(values: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Zero-lag Gaussian smoothing along axis 0 (edges padded by reflection)."""
    if sigma_frames <= 0 or len(values) < 3:
        return values
    r = int(np.ceil(3 * sigma_frames))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_frames) ** 2)
    k /= k.sum()
    pad = np.concatenate([values[r:0:-1], values, values[-2:-r - 2:-1]], axis=0) if len(values) > r + 1 else \
        np.concatenate([np.repeat(values[:1], r, 0), values, np.repeat(values[-1:], r, 0)], axis=0)
    flat = pad.reshape(len(pad), -1)
    out = np.stack([np.convolve(flat[:, c], k, mode="valid") for c in range(flat.shape[1])], axis=1)
    return out.reshape(values.shape)
