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
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


@pytest.fixture(scope="session")
def g1_model():
    from exoactor.g1.model import load_g1_model

    return load_g1_model(with_floor=False)
