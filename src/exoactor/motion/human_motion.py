"""HumanMotion: a world-grounded clip of human body keypoints, the pipeline's motion currency.

World frame: REP 103, z up, metres, origin on the floor under the robot's pelvis at task start,
x along the robot's facing direction (see msg/HumanMotion.msg).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from exoactor.skeleton import HAND_KEYPOINTS, HAND_SIDES, HUMAN_KEYPOINTS

FLAG_INTERPOLATED = 1
FLAG_NO_PERSON = 2
FLAG_PARTIAL = 4
"""The person is only partly seen (most keypoints with low confidence)."""
FLAG_OTHER_PERSON = 8
"""The detector found someone far from the clip's subject (another person): treated as no person."""


class MotionEstimationError(RuntimeError):
    """Estimation failed for a reason the user can act on (no person, unreadable video...)."""


@dataclass
class HumanMotion:
    """A motion clip. T frames, J keypoints.

    keypoints_world_m: (T, J, 3) world positions, metres.
    confidence: (T, J) in [0, 1].
    root_pos_world_m: (T, 3) pelvis position, metres.
    root_quat_wxyz: (T, 4) pelvis orientation (w, x, y, z); pelvis x axis = facing direction.
    frame_flags: (T,) uint8 bit set of FLAG_INTERPOLATED / FLAG_NO_PERSON / FLAG_PARTIAL / FLAG_OTHER_PERSON.
    hand_keypoints_world_m: (T, 2, 21, 3) world positions of the left and right hands' points
        (HAND_SIDES, HAND_KEYPOINTS), metres; None when the estimator gives no hands.
    hand_confidence: (T, 2) per frame and hand in [0, 1]; 0 where the hand was not detected (its
        points are then filled from the nearest detection, moved with the wrist).
    """

    fps: float
    keypoints_world_m: np.ndarray
    confidence: np.ndarray
    root_pos_world_m: np.ndarray
    root_quat_wxyz: np.ndarray
    height_m: float
    keypoint_names: tuple[str, ...] = HUMAN_KEYPOINTS
    frame_flags: np.ndarray = field(default=None)  # type: ignore[assignment]
    source: str = ""
    hand_keypoints_world_m: np.ndarray | None = None
    hand_confidence: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.keypoints_world_m = np.asarray(self.keypoints_world_m, dtype=np.float64)
        t = self.keypoints_world_m.shape[0]
        if self.frame_flags is None:
            self.frame_flags = np.zeros(t, dtype=np.uint8)
        if self.hand_keypoints_world_m is not None:
            self.hand_keypoints_world_m = np.asarray(self.hand_keypoints_world_m, dtype=np.float64)
            if self.hand_confidence is None:
                self.hand_confidence = np.ones((t, len(HAND_SIDES)))
            self.hand_confidence = np.asarray(self.hand_confidence, dtype=np.float64)
        elif self.hand_confidence is not None:
            raise MotionEstimationError("invalid motion: hand_confidence given without hand_keypoints_world_m")
        self.validate()

    @property
    def has_hands(self) -> bool:
        return self.hand_keypoints_world_m is not None

    @property
    def num_frames(self) -> int:
        return int(self.keypoints_world_m.shape[0])

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps

    def keypoint(self, name: str) -> np.ndarray:
        """(T, 3) trajectory of one keypoint."""
        return self.keypoints_world_m[:, self.keypoint_names.index(name)]

    def validate(self) -> None:
        """Raise MotionEstimationError if shapes disagree or values are not finite."""
        t = self.num_frames
        j = len(self.keypoint_names)
        checks = [
            (self.keypoints_world_m.shape == (t, j, 3),
             f"keypoints shape {self.keypoints_world_m.shape} != ({t}, {j}, 3)"),
            (np.shape(self.confidence) == (t, j), f"confidence shape {np.shape(self.confidence)} != ({t}, {j})"),
            (np.shape(self.root_pos_world_m) == (t, 3), "root_pos_world_m must be (T, 3)"),
            (np.shape(self.root_quat_wxyz) == (t, 4), "root_quat_wxyz must be (T, 4)"),
            (np.shape(self.frame_flags) == (t,), "frame_flags must be (T,)"),
            (t >= 2, f"a motion needs at least 2 frames, got {t}"),
            (self.fps > 0, f"fps must be positive, got {self.fps}"),
        ]
        if self.has_hands:
            h = (t, len(HAND_SIDES), len(HAND_KEYPOINTS))
            checks += [(self.hand_keypoints_world_m.shape == (*h, 3),
                        f"hand_keypoints_world_m shape {self.hand_keypoints_world_m.shape} != {(*h, 3)}"),
                       (np.shape(self.hand_confidence) == h[:2],
                        f"hand_confidence shape {np.shape(self.hand_confidence)} != {h[:2]}")]
        for ok, msg in checks:
            if not ok:
                raise MotionEstimationError(f"invalid motion: {msg}")
        arrays = ("keypoints_world_m", "confidence", "root_pos_world_m", "root_quat_wxyz")
        for name in arrays + (("hand_keypoints_world_m", "hand_confidence") if self.has_hands else ()):
            if not np.all(np.isfinite(getattr(self, name))):
                raise MotionEstimationError(f"invalid motion: {name} contains NaN or Inf")

    def save(self, path: Path | str) -> Path:
        """Write a .npz (arrays plus fps, height_m, source, keypoint_names; hands when present)."""
        path = Path(path)
        hands = ({"hand_keypoints_world_m": self.hand_keypoints_world_m, "hand_confidence": self.hand_confidence}
                 if self.has_hands else {})
        np.savez_compressed(
            path, fps=self.fps, keypoints_world_m=self.keypoints_world_m, confidence=self.confidence,
            root_pos_world_m=self.root_pos_world_m, root_quat_wxyz=self.root_quat_wxyz,
            height_m=self.height_m, keypoint_names=np.array(self.keypoint_names),
            frame_flags=self.frame_flags, source=self.source, **hands)
        return path

    @classmethod
    def load(cls, path: Path | str) -> "HumanMotion":
        with np.load(path, allow_pickle=False) as z:
            return cls(fps=float(z["fps"]), keypoints_world_m=z["keypoints_world_m"],
                       confidence=z["confidence"], root_pos_world_m=z["root_pos_world_m"],
                       root_quat_wxyz=z["root_quat_wxyz"], height_m=float(z["height_m"]),
                       keypoint_names=tuple(str(s) for s in z["keypoint_names"]),
                       frame_flags=z["frame_flags"], source=str(z["source"]),
                       hand_keypoints_world_m=z["hand_keypoints_world_m"] if "hand_keypoints_world_m" in z else None,
                       hand_confidence=z["hand_confidence"] if "hand_confidence" in z else None)
