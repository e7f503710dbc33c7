"""The command safety layer: every joint target leaves through :meth:`CommandLimits.apply`.

It rejects non-finite targets outright and clamps finite ones into the joint position
window (shrunk by a margin) and the joint speed bound, counting every change it makes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class UnsafeCommandError(ValueError):
    """A command that cannot be made safe by clamping (NaN/Inf, wrong shape)."""


@dataclass(frozen=True)
class CommandLimits:
    """Per-joint command bounds in Unitree motor order (29 entries each).

    q_min_rad/q_max_rad: joint position window already shrunk by the safety margin;
    dq_max_rad_s: absolute joint speed bound for commanded velocities and for the change of
    the position target between two control ticks.
    """

    q_min_rad: np.ndarray
    q_max_rad: np.ndarray
    dq_max_rad_s: np.ndarray

    @classmethod
    def from_ranges(cls, q_range_rad: np.ndarray, dq_max_rad_s: float | np.ndarray,
                    margin_rad: float = 0.02) -> "CommandLimits":
        """Build from (29, 2) joint ranges; ``margin_rad`` keeps targets off the hard stops."""
        q_range_rad = np.asarray(q_range_rad, dtype=np.float64)
        lo = q_range_rad[:, 0] + margin_rad
        hi = q_range_rad[:, 1] - margin_rad
        if np.any(lo > hi):
            raise ValueError("safety margin larger than a joint range")
        dq = np.broadcast_to(np.asarray(dq_max_rad_s, dtype=np.float64), lo.shape).copy()
        return cls(lo, hi, dq)

    def check_finite(self, q: np.ndarray, what: str = "command") -> None:
        """Raise UnsafeCommandError unless ``q`` has the right shape and is finite."""
        q = np.asarray(q)
        if q.shape[-1:] != self.q_min_rad.shape:
            raise UnsafeCommandError(f"{what}: expected {self.q_min_rad.shape[0]} joints, got shape {q.shape}")
        if not np.all(np.isfinite(q)):
            bad = np.argwhere(~np.isfinite(q))[:3].tolist()
            raise UnsafeCommandError(f"{what}: non-finite joint values at {bad}")

    def apply(self, q_rad: np.ndarray, dq_rad_s: np.ndarray,
              q_prev_rad: np.ndarray | None = None, dt_s: float | None = None
              ) -> tuple[np.ndarray, np.ndarray, int]:
        """Clamp one command; returns (q, dq, number of joints changed).

        With ``q_prev_rad`` and ``dt_s`` the position target may move at most
        ``dq_max_rad_s * dt_s`` from the previous target.
        """
        self.check_finite(q_rad, "position target")
        self.check_finite(dq_rad_s, "velocity target")
        q = np.clip(q_rad, self.q_min_rad, self.q_max_rad)
        if q_prev_rad is not None and dt_s is not None:
            step = self.dq_max_rad_s * dt_s
            q = np.clip(q, q_prev_rad - step, q_prev_rad + step)
            q = np.clip(q, self.q_min_rad, self.q_max_rad)
        dq = np.clip(dq_rad_s, -self.dq_max_rad_s, self.dq_max_rad_s)
        changed = int(np.count_nonzero((np.abs(q - q_rad) > 1e-9) | (np.abs(dq - dq_rad_s) > 1e-9)))
        return q, dq, changed

    def contains(self, q_rad: np.ndarray, tol: float = 1e-6) -> bool:
        """True when every position lies inside the (margin-shrunk) window."""
        q = np.asarray(q_rad)
        return bool(np.all(q >= self.q_min_rad - tol) and np.all(q <= self.q_max_rad + tol))
