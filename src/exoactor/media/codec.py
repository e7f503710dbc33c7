"""A video file browsers play, written with the OpenCV in the environment.

OpenCV's pip wheels carry no H.264 encoder (``avc1``/``H264`` fail to open) and their default
``mp4v`` (MPEG-4 Part 2) does not play in Chromium or Firefox; VP8 in WebM does, and encodes
fast. So: VP8/WebM, falling back to mp4v/MP4 (downloadable, not playable inline) if VP8 is missing.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

CODECS: tuple[tuple[str, str, bool], ...] = (("VP80", ".webm", True), ("mp4v", ".mp4", False))
"""(fourcc, file suffix, plays in browsers), in order of preference."""


class BrowserVideoWriter:
    """Writes RGB frames to ``<stem>.webm`` (VP8), else ``<stem>.mp4``; renamed into place on close."""

    def __init__(self, stem: Path | str, fps: float, width: int, height: int):
        stem = Path(stem)
        self.size = (int(width), int(height))
        self.frames = 0
        self._w = None
        for fourcc, suffix, plays in CODECS:
            tmp = stem.with_name(f".{stem.name}.tmp{suffix}")
            w = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), float(fps), self.size)
            if w.isOpened():
                self._w, self._tmp, self.path, self.fourcc, self.browser_playable = w, tmp, stem.with_suffix(
                    suffix), fourcc, plays
                break
            w.release()
            if tmp.exists():
                tmp.unlink()
        if self._w is None:
            raise OSError(f"OpenCV cannot write any of {', '.join(c for c, _, _ in CODECS)} videos")

    def write(self, rgb: np.ndarray) -> None:
        if rgb.shape[1::-1] != self.size:
            raise ValueError(f"frame size {rgb.shape[1::-1]} != video size {self.size}")
        self._w.write(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> Path | None:
        """The finished file, or None if no frame was written."""
        self._w.release()
        if self.frames:
            os.replace(self._tmp, self.path)
            return self.path
        if self._tmp.exists():
            self._tmp.unlink()
        return None
