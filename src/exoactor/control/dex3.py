"""The G1's Dex3 hands driven by the human's hand open/close signal.

Dex3 (3 fingers, 7 motors per hand) listens on ``/dex3/{left,right}/cmd`` (``unitree_hg/HandCmd``:
7 ``MotorCmd``, no CRC). Motor order, as in Unitree's ``g1_dex3_example`` and the G1 model with
hands: thumb_0, thumb_1, thumb_2, middle_0, middle_1, index_0, index_1. A closure c in [0, 1]
(:func:`exoactor.motion.hands.hand_closure_signal`) commands the joints at ``open + c * (closed -
open)``, always inside the joint limits below (the menagerie model's ranges, radians).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEX3_JOINTS: tuple[str, ...] = ("thumb_0", "thumb_1", "thumb_2", "middle_0", "middle_1", "index_0", "index_1")
"""HandCmd motor order (the model's ``{side}_hand_{name}_joint``)."""

DEX3_LIMITS_RAD = {
    "left": (np.array([-1.0472, -0.724312, 0.0, -1.5708, -1.74533, -1.5708, -1.74533]),
             np.array([1.0472, 1.0472, 1.74533, 0.0, 0.0, 0.0, 0.0])),
    "right": (np.array([-1.0472, -1.0472, -1.74533, 0.0, 0.0, 0.0, 0.0]),
              np.array([1.0472, 0.724312, 0.0, 1.5708, 1.74533, 1.5708, 1.74533])),
}
"""(lower, upper) per side, in DEX3_JOINTS order."""

_OPEN = np.zeros(7)
_CLOSED_LEFT = np.array([0.0, 0.6, 1.2, -1.3, -1.5, -1.3, -1.5])
"""A power grasp: the thumb across, both fingers bent (left hand; the right one mirrors the signs)."""
DEX3_POSES_RAD = {
    "left": (_OPEN, _CLOSED_LEFT),
    "right": (_OPEN, _CLOSED_LEFT * np.array([1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0])),
}
"""(open, closed) joint positions per side."""


@dataclass(frozen=True)
class Dex3Command:
    """One hand's command: q (7,) radians in DEX3_JOINTS order, gains, and the motor mode bytes."""

    q_rad: np.ndarray
    kp: float
    kd: float
    mode: tuple[int, ...]


def dex3_mode(motor: int, enabled: bool = True) -> int:
    """Dex3's mode byte: motor id (bits 0-3), status (bits 4-6: 1 = enabled), timeout (bit 7: 0)."""
    return (motor & 0x0F) | ((1 if enabled else 0) << 4)


_MODES = tuple(dex3_mode(i) for i in range(len(DEX3_JOINTS)))
"""Every motor enabled."""


def _check_side(side: str) -> None:
    if side not in DEX3_POSES_RAD:
        raise ValueError(f"side must be left or right, got {side!r}")


class Dex3Hands:
    """Closure -> Dex3 joint targets, checked and clamped. kp / kd: the hands' PD gains."""

    KP_MAX, KD_MAX = 5.0, 1.0
    """Upper bounds on the gains (the Dex3 examples use about 1.5 / 0.1)."""

    def __init__(self, kp: float = 1.5, kd: float = 0.1):
        if not (0.0 <= kp <= self.KP_MAX and 0.0 <= kd <= self.KD_MAX):
            raise ValueError(f"dex3 gains must be 0 <= kp <= {self.KP_MAX} and 0 <= kd <= {self.KD_MAX}, "
                             f"got kp {kp}, kd {kd}")
        self.kp, self.kd = float(kp), float(kd)

    def command(self, side: str, closure: float) -> Dex3Command:
        """The command that closes ``side``'s hand by ``closure`` (clipped to [0, 1]; NaN: open)."""
        _check_side(side)
        c = float(closure)
        c = 0.0 if not np.isfinite(c) else min(max(c, 0.0), 1.0)
        open_, closed = DEX3_POSES_RAD[side]
        lo, hi = DEX3_LIMITS_RAD[side]
        q = np.clip(open_ + c * (closed - open_), lo, hi)
        return Dex3Command(q, self.kp, self.kd, _MODES)

    def damp(self, side: str) -> Dex3Command:
        """No stiffness, a little damping: what a stop sends (the hand goes limp, it does not snap)."""
        _check_side(side)
        return Dex3Command(np.zeros(len(DEX3_JOINTS)), 0.0, self.kd, _MODES)
