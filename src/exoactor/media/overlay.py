"""The estimated skeleton drawn on the video it was estimated from: ``segment_XX_overlay.mp4``.

Full resolution (hands are a few dozen pixels wide): the body's bones (left blue, right red, trunk
white) and, where detected, both hands' 21 points and bones, on every frame of the generated clip.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from exoactor.geometry import PinholeCamera
from exoactor.media.panels import draw_hands, draw_skeleton
from exoactor.motion.human_motion import HumanMotion
from exoactor.progress import Canceled, CancelToken
from exoactor.video.io import VideoWriter, read_video_frames


def write_overlay_video(video_path: Path, motion: HumanMotion, camera: PinholeCamera, out_path: Path,
                        cancel: CancelToken | None = None) -> tuple[Path, int]:
    """Draw ``motion`` on ``video_path``'s frames into ``out_path``; (path, frames with hands drawn).

    ``camera`` is the calibration the motion was estimated with (scaled to the video's size)."""
    writer = None
    hands = 0
    try:
        for t, frame in enumerate(read_video_frames(video_path)):
            if cancel is not None and cancel.is_set():
                raise Canceled("overlay canceled")
            if t >= motion.num_frames:
                break
            h, w = frame.shape[:2]
            if writer is None:
                writer = VideoWriter(out_path, motion.fps, w, h)
            img = np.ascontiguousarray(frame)
            draw_skeleton(img, camera, motion.keypoints_world_m[t], motion.keypoint_names, motion.confidence[t])
            if motion.has_hands:
                hands += draw_hands(img, camera, motion.hand_keypoints_world_m[t], motion.hand_confidence[t]) > 0
            writer.write(img)
    finally:
        if writer is not None:
            writer.close()
    return Path(out_path), hands
