"""Reading and writing videos and images (OpenCV), RGB uint8 arrays of shape (H, W, 3)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np


class VideoReadError(RuntimeError):
    """A video or image file is missing, empty or not decodable."""


def write_image_rgb(path: Path | str, rgb: np.ndarray) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write image {path}")
    os.replace(tmp, path)
    return path


def read_image_rgb(path: Path | str) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise VideoReadError(f"cannot read image {path} (missing or not an image)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class VideoWriter:
    """MP4 writer; frames are written to a temporary file renamed on close (no half files)."""

    def __init__(self, path: Path | str, fps: float, width: int, height: int):
        self.path = Path(path)
        self._tmp = self.path.with_name(f".{self.path.stem}.tmp.mp4")
        self._w = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
        if not self._w.isOpened():
            raise OSError(f"cannot open video writer for {self.path}")
        self.size = (width, height)
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        if rgb.shape[1::-1] != self.size:
            raise ValueError(f"frame size {rgb.shape[1::-1]} != video size {self.size}")
        self._w.write(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        self._w.release()
        if self.frames:
            os.replace(self._tmp, self.path)
        elif self._tmp.exists():
            self._tmp.unlink()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_video(path: Path | str, frames: Iterable[np.ndarray], fps: float) -> int:
    """Write RGB frames to an MP4; returns the number of frames."""
    it = iter(frames)
    first = next(it)
    with VideoWriter(path, fps, first.shape[1], first.shape[0]) as w:
        w.write(first)
        for f in it:
            w.write(f)
        return w.frames


def video_info(path: Path | str) -> tuple[float, int, int, int]:
    """(fps, frame count, width, height) of a video; raises VideoReadError if unreadable."""
    if not Path(path).is_file():
        raise VideoReadError(f"video file not found: {path}")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise VideoReadError(f"cannot open video {path} (corrupt or unsupported format)")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        cap.release()
    if n <= 0 or w <= 0 or h <= 0:
        raise VideoReadError(f"video {path} has no frames")
    if not (0.5 <= fps <= 240):
        raise VideoReadError(f"video {path} reports an implausible frame rate {fps}")
    return fps, n, w, h


def read_video_frames(path: Path | str) -> Iterator[np.ndarray]:
    """Yield RGB frames of a video."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoReadError(f"cannot open video {path}")
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()
