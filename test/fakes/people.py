"""Clips with more than one person: anny bodies rendered together, the farthest first.

Each actor is a body and its poses (one per frame); the renderer composites one body over the
frame so far, so bodies are drawn back to front by their distance from the camera (a person in
front hides the one behind). The truth of every actor is returned.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from exoactor.geometry import LookAtCalibration, PinholeCamera
from exoactor.planning.vocabulary import default_step
from exoactor.video.choreography import BodyPose, segment_poses
from exoactor.video.io import VideoWriter

CAMERA_EYE_M, CAMERA_TARGET_M = (2.6, -1.3, 1.3), (0.0, 0.0, 0.8)
"""The benchmark's default camera: the subject stands at the origin, facing +x."""


def camera(width: int = 640, height: int = 480) -> PinholeCamera:
    return LookAtCalibration(width, height, 50.0, CAMERA_EYE_M, CAMERA_TARGET_M).camera()


def action_poses(action: str, frames: int, fps: float = 30.0) -> list[BodyPose]:
    """``frames`` poses of a vocabulary action at its defaults (the last pose held if it is shorter)."""
    poses = segment_poses([default_step(action)], 0, fps)
    return [poses[min(i, len(poses) - 1)].copy() for i in range(frames)]


def render_people(path: Path, cam: PinholeCamera, actors: list[tuple[object, list[BodyPose]]],
                  fps: float = 30.0) -> list[np.ndarray]:
    """Write the clip; returns each actor's (T, J, 3) true keypoints (world, metres)."""
    from exoactor.video.anny_body import OffscreenHumanRenderer, plain_room_rgb  # noqa: PLC0415

    frames = len(actors[0][1])
    posed = [body.pose_batch(poses) for body, poses in actors]
    renderer = OffscreenHumanRenderer(actors[0][0], cam)  # one GL context; anny bodies share their topology
    bg = plain_room_rgb(cam.width, cam.height)
    writer = VideoWriter(path, fps, cam.width, cam.height)
    try:
        for t in range(frames):
            far_first = sorted(range(len(actors)), key=lambda a: -np.linalg.norm(
                np.array([*actors[a][1][t].xy_world_m, 0.9]) - cam.pos_world_m))
            img = bg
            for a in far_first:
                img = renderer.render(posed[a][t], img)
            writer.write(img)
    finally:
        writer.close()
        renderer.close()
    return [np.array([p.keypoints_world_m for p in ps]) for ps in posed]
