"""The human skeleton every stage shares: keypoint names, their indices and the bones between them.

Estimators produce keypoints in this order (:class:`exoactor.motion.human_motion.HumanMotion`),
the synthetic video backend renders its ground truth in it, and rviz2 markers and episode media
draw :data:`HUMAN_BONES`. Below both ``motion`` and ``video``: neither imports the other for it.
"""
from __future__ import annotations

HUMAN_KEYPOINTS: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine", "neck", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_toe", "right_toe",
)
"""Keypoint set of estimators in this project (names follow SMPL where SMPL has the joint): body
joints, not skin landmarks. The synthetic renderer's truth defines them (anny's bone heads: the
hip joints, "spine" at mid-back, "neck" at the base of the neck, "head" at the base of the skull,
"hand" at the middle knuckle, "toe" at the front of the foot; "pelvis" between the hip joints); an
estimator maps its detector's landmarks onto them (MediaPipe: a learned regressor)."""

KP = {name: i for i, name in enumerate(HUMAN_KEYPOINTS)}
"""Keypoint name -> index in HUMAN_KEYPOINTS."""

HUMAN_BONES: tuple[tuple[str, str], ...] = (
    ("pelvis", "spine"), ("spine", "neck"), ("neck", "head"), ("left_hip", "right_hip"),
    ("left_shoulder", "right_shoulder"), *(
        (f"{s}_{a}", f"{s}_{b}") for s in ("left", "right") for a, b in (
            ("hip", "knee"), ("knee", "ankle"), ("ankle", "heel"), ("heel", "toe"), ("ankle", "toe"),
            ("shoulder", "elbow"), ("elbow", "wrist"), ("wrist", "hand"))))
"""The bones drawn between keypoints (body skeleton)."""

HAND_SIDES: tuple[str, ...] = ("left", "right")
"""Order of the hand axis in hand arrays ((T, 2, 21, ...): index 0 = left hand, 1 = right hand)."""

HAND_KEYPOINTS: tuple[str, ...] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)
"""The 21 points of a hand, in MediaPipe Hands' order: the wrist, then per finger (thumb first)
its three joints and its tip. The synthetic renderer's truth defines them: anny's wrist and finger
bone heads, and the fingertip's skin vertex."""

HAND_BONES: tuple[tuple[int, int], ...] = tuple(
    (0 if k == 0 else 1 + 4 * f + k - 1, 1 + 4 * f + k) for f in range(5) for k in range(4)) + (
    (5, 9), (9, 13), (13, 17))
"""The bones drawn between hand points (indices into HAND_KEYPOINTS): each finger from the wrist,
and the knuckles across the palm."""
