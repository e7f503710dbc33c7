"""G1JointTrajectory: the robot motion the tracking controller executes."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from exoactor.g1.joints import G1_JOINT_NAMES, NUM_BODY_JOINTS


class RetargetingError(RuntimeError):
    """Retargeting failed (IK diverged, non-finite output...)."""


@dataclass
class G1JointTrajectory:
    """T frames at ``fps`` in Unitree motor order.

    positions_rad, velocities_rad_s: (T, 29); root_pos_world_m: (T, 3) floating-base (pelvis)
    position from the IK; root_quat_wxyz: (T, 4) its orientation (w, x, y, z); ik_residual_m:
    (T,) the IK's largest position error over its pelvis, feet and hand targets per frame (m),
    when the retargeter reports it; hand_closure: (T, 2) how closed the human's left and right
    hands are, 0 open .. 1 a fist (:func:`exoactor.motion.hands.hand_closure_signal`), when the motion has hands.
    """

    fps: float
    positions_rad: np.ndarray
    velocities_rad_s: np.ndarray
    root_pos_world_m: np.ndarray
    root_quat_wxyz: np.ndarray
    ik_residual_m: np.ndarray | None = None
    hand_closure: np.ndarray | None = None

    def __post_init__(self) -> None:
        t = len(self.positions_rad)
        if self.hand_closure is not None:
            self.hand_closure = np.asarray(self.hand_closure, dtype=np.float64)
            if self.hand_closure.shape != (t, 2) or not np.all(np.isfinite(self.hand_closure)):
                raise RetargetingError(f"hand_closure must be finite and ({t}, 2), got {self.hand_closure.shape}")
            self.hand_closure = np.clip(self.hand_closure, 0.0, 1.0)
        if self.positions_rad.shape != (t, NUM_BODY_JOINTS) or self.velocities_rad_s.shape != (t, NUM_BODY_JOINTS):
            raise RetargetingError(f"trajectory arrays must be (T, {NUM_BODY_JOINTS})")
        if t < 1 or not np.all(np.isfinite(self.positions_rad)) or not np.all(np.isfinite(self.velocities_rad_s)):
            raise RetargetingError("trajectory is empty or contains NaN/Inf")

    @property
    def num_frames(self) -> int:
        return len(self.positions_rad)

    @property
    def duration_s(self) -> float:
        return (self.num_frames - 1) / self.fps

    @property
    def joint_names(self) -> tuple[str, ...]:
        return G1_JOINT_NAMES

    def interpolate(self, per_frame: np.ndarray, t_s: float) -> np.ndarray:
        """Row of ``per_frame`` (T, ...) linearly interpolated at time t_s (clamped to the ends): the
        one time -> frame mapping for positions, velocities and anything prepared per frame."""
        x = min(max(t_s * self.fps, 0.0), self.num_frames - 1.0)
        i = int(np.floor(x))
        j = min(i + 1, self.num_frames - 1)
        a = x - i
        return (1 - a) * per_frame[i] + a * per_frame[j]

    def sample(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Linearly interpolated (q, dq) at time t_s (clamped to the ends)."""
        return self.interpolate(self.positions_rad, t_s), self.interpolate(self.velocities_rad_s, t_s)

    def hand_closure_at(self, t_s: float) -> np.ndarray | None:
        """(2,) left and right hand closure at time t_s (nearest frame), or None without hands."""
        if self.hand_closure is None:
            return None
        return self.hand_closure[int(round(min(max(t_s * self.fps, 0.0), self.num_frames - 1.0)))]

    def save(self, path: Path | str, **extra: np.ndarray) -> Path:
        if self.ik_residual_m is not None:
            extra = {"ik_residual_m": self.ik_residual_m, **extra}
        if self.hand_closure is not None:
            extra = {"hand_closure": self.hand_closure, **extra}
        np.savez_compressed(path, fps=self.fps, joint_names=np.array(G1_JOINT_NAMES), positions_rad=self.positions_rad,
                            velocities_rad_s=self.velocities_rad_s, root_pos_world_m=self.root_pos_world_m,
                            root_quat_wxyz=self.root_quat_wxyz, **extra)
        return Path(path)

    @classmethod
    def load(cls, path: Path | str) -> "G1JointTrajectory":
        with np.load(path) as z:
            return cls(float(z["fps"]), z["positions_rad"], z["velocities_rad_s"], z["root_pos_world_m"],
                       z["root_quat_wxyz"], z["ik_residual_m"] if "ik_residual_m" in z.files else None,
                       z["hand_closure"] if "hand_closure" in z.files else None)

