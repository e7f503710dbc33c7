"""Unitree G1 29-DoF joint order and default gains.

The project's single robot joint order is Unitree's motor order (index into
``unitree_hg/LowCmd.motor_cmd``); Menagerie's ``g1.xml`` lists joints and actuators in the same
order. Other orders (IsaacLab, used by SONIC) are converted at the edges with
:data:`ISAACLAB_FROM_UNITREE`.
"""
from __future__ import annotations

import numpy as np

NUM_BODY_JOINTS = 29
"""Body motors of the 29-DoF G1."""
NUM_MOTOR_SLOTS = 35
"""Length of LowCmd.motor_cmd / LowState.motor_state; slots 29..34 are unused by the body."""

_SIDE_LEG = ["hip_pitch", "hip_roll", "hip_yaw", "knee", "ankle_pitch", "ankle_roll"]
_SIDE_ARM = ["shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow",
             "wrist_roll", "wrist_pitch", "wrist_yaw"]

G1_JOINT_NAMES: tuple[str, ...] = tuple(
    [f"left_{j}_joint" for j in _SIDE_LEG]
    + [f"right_{j}_joint" for j in _SIDE_LEG]
    + ["waist_yaw_joint", "waist_roll_joint", "waist_pitch_joint"]
    + [f"left_{j}_joint" for j in _SIDE_ARM]
    + [f"right_{j}_joint" for j in _SIDE_ARM]
)
"""29 joint names (URDF/MJCF names) in Unitree motor order."""

LEG_INDICES = np.arange(0, 12)
WAIST_INDICES = np.arange(12, 15)
ARM_INDICES = np.arange(15, 29)
UPPER_BODY_INDICES = np.arange(12, 29)

# Official low-level example gains (unitree_sdk2 g1 ankle-swing example), motor order.
DEFAULT_KP = np.array(
    [60, 60, 60, 100, 40, 40] * 2 + [60, 40, 40] + [40] * 14, dtype=np.float64)
"""Position gains, N*m/rad, Unitree motor order."""
DEFAULT_KD = np.array(
    [1, 1, 1, 2, 1, 1] * 2 + [1, 1, 1] + [1] * 14, dtype=np.float64)
"""Velocity gains, N*m*s/rad, Unitree motor order."""
DAMPING_KD = 8.0
"""kd of the damping mode (kp = 0) used when the controller has to let go safely."""

# IsaacLab order as documented for SONIC (models-and-apis.md), expressed as Unitree indices.
_ISAACLAB_NAMES = [
    "left_hip_pitch", "right_hip_pitch", "waist_yaw", "left_hip_roll", "right_hip_roll",
    "waist_roll", "left_hip_yaw", "right_hip_yaw", "waist_pitch", "left_knee", "right_knee",
    "left_shoulder_pitch", "right_shoulder_pitch", "left_ankle_pitch", "right_ankle_pitch",
    "left_shoulder_roll", "right_shoulder_roll", "left_ankle_roll", "right_ankle_roll",
    "left_shoulder_yaw", "right_shoulder_yaw", "left_elbow", "right_elbow", "left_wrist_roll",
    "right_wrist_roll", "left_wrist_pitch", "right_wrist_pitch", "left_wrist_yaw",
    "right_wrist_yaw"]
ISAACLAB_FROM_UNITREE = np.array([G1_JOINT_NAMES.index(n + "_joint") for n in _ISAACLAB_NAMES])
"""``q_isaaclab = q_unitree[ISAACLAB_FROM_UNITREE]``."""
