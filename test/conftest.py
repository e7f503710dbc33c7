"""Shared fixtures. Tests run against the colcon-installed package (source install/setup.bash)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    # The Menagerie G1 is used offline from ../shared (never copied into this repository).
    if not os.environ.get("MENAGERIE_ROOT"):
        shared = REPO.parent / "shared" / "assets" / "menagerie"
        if (shared / "unitree_g1" / "g1.xml").is_file():
            os.environ["MENAGERIE_ROOT"] = str(shared)
    policy = REPO.parent / "shared" / "assets" / "unitree_rl_gym" / "g1" / "motion.pt"
    if not os.environ.get("EXOACTOR_LEG_POLICY") and policy.is_file():
        os.environ["EXOACTOR_LEG_POLICY"] = str(policy)
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


@pytest.fixture(scope="session")
def g1_model():
    from exoactor.g1.model import load_g1_model

    return load_g1_model(with_floor=False)


STANDING_KEYPOINTS_M = {
    "pelvis": (0, 0, 0.9), "left_hip": (0, 0.09, 0.9), "right_hip": (0, -0.09, 0.9), "spine": (0, 0, 1.15),
    "neck": (0, 0, 1.42), "head": (0.08, 0, 1.6), "left_shoulder": (0, 0.18, 1.42), "right_shoulder": (0, -0.18, 1.42),
    "left_elbow": (0, 0.2, 1.15), "right_elbow": (0, -0.2, 1.15), "left_wrist": (0, 0.2, 0.9),
    "right_wrist": (0, -0.2, 0.9), "left_hand": (0, 0.2, 0.82), "right_hand": (0, -0.2, 0.82),
    "left_knee": (0.02, 0.09, 0.5), "right_knee": (0.02, -0.09, 0.5),
    "left_ankle": (0, 0.09, 0.09), "right_ankle": (0, -0.09, 0.09), "left_heel": (-0.05, 0.09, 0.03),
    "right_heel": (-0.05, -0.09, 0.03), "left_toe": (0.15, 0.09, 0.02), "right_toe": (0.15, -0.09, 0.02)}
"""A standing adult (~1.72 m) facing +x, feet on the floor, world frame, metres."""


@pytest.fixture(scope="session")
def standing_keypoints():
    """(J, 3) STANDING_KEYPOINTS_M in HUMAN_KEYPOINTS order."""
    import numpy as np

    from exoactor.motion.human_motion import HUMAN_KEYPOINTS

    return np.array([STANDING_KEYPOINTS_M[n] for n in HUMAN_KEYPOINTS], float)
