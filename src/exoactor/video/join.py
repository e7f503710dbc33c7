"""One video of a whole task from its per-step segments, with per-step timestamps."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from exoactor.video.io import VideoReadError, VideoWriter, read_video_frames, video_info


class SegmentJoiner:
    """Appends segments in step order to one MP4 (size and frame rate of the first segment).

    Frames of a segment with another size are resized; another frame rate is resampled by
    nearest frame so that every segment keeps its duration. ``steps`` lists, per appended step,
    ``{"step", "start_s", "end_s", "frames", "source"}`` on the joined video's time axis.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._writer: VideoWriter | None = None
        self.fps = 0.0
        self.steps: list[dict] = []

    def append(self, step: int, segment_path: Path | str) -> dict:
        fps, n, w, h = video_info(segment_path)
        if self._writer is None:
            self.fps = fps
            self._writer = VideoWriter(self.path, fps, w, h)
        out_w, out_h = self._writer.size
        start = self._writer.frames
        ratio = fps / self.fps
        src_i, out_i = 0, 0
        for frame in read_video_frames(segment_path):
            if frame.shape[1::-1] != (out_w, out_h):
                frame = cv2.resize(frame, (out_w, out_h), interpolation=cv2.INTER_AREA)
            # Output frame j shows the source frame nearest to time j / self.fps.
            while int(np.floor(out_i * ratio + 1e-9)) == src_i:
                self._writer.write(frame)
                out_i += 1
            src_i += 1
        if self._writer.frames == start:
            raise VideoReadError(f"no frame could be decoded from {segment_path}")
        entry = {"step": int(step), "start_s": round(start / self.fps, 3),
                 "end_s": round(self._writer.frames / self.fps, 3), "frames": self._writer.frames - start,
                 "source": Path(segment_path).name}
        self.steps.append(entry)
        return entry

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
