"""config/exoactor.rviz shows the robot from robot_description + TF and the camera through TF."""
from __future__ import annotations

from pathlib import Path

import yaml

RVIZ = Path(__file__).resolve().parents[2] / "config" / "exoactor.rviz"


def _displays() -> dict[str, dict]:
    manager = yaml.safe_load(RVIZ.read_text())["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "world"
    return {d["Class"].split("/")[-1] + ":" + d["Name"]: d for d in manager["Displays"]}


def test_robot_model_reads_the_latched_robot_description():
    [robot] = [d for k, d in _displays().items() if k.startswith("RobotModel:")]
    assert robot["Enabled"] and robot["Description Source"] == "Topic"
    assert robot["Description Topic"]["Value"] == "/robot_description"
    assert robot["Description Topic"]["Durability Policy"] == "Transient Local"  # as robot_state_publisher


def test_camera_display_overlays_the_scene_on_the_exocentric_image():
    displays = _displays()
    [camera] = [d for k, d in displays.items() if k.startswith("Camera:")]
    # rviz2 takes camera_info from the image topic's sibling, placed by TF at its header.frame_id
    assert camera["Topic"]["Value"] == "/exoactor/camera/image_raw"
    assert camera["Image Rendering"] == "background and overlay"
    assert any(k.startswith("TF:") and d["Enabled"] for k, d in displays.items())
    assert displays["MarkerArray:G1 mesh markers (fallback)"]["Enabled"] is False  # not drawn twice by default
    assert displays["MarkerArray:Estimated human"]["Topic"]["Value"] == "/exoactor/human_skeleton"
