"""Video backend that uses videos the user supplies, one file per planned step."""
from __future__ import annotations

from pathlib import Path

from exoactor.progress import Canceled, CancelToken, ProgressCallback
from exoactor.video.base import VideoGenerationError, VideoGenerator, VideoRequest, VideoSegment
from exoactor.video.io import VideoReadError, VideoWriter, read_video_frames, video_info, write_image_rgb


class FileVideoGenerator(VideoGenerator):
    """``video_paths[k]`` is the video of step k; it is validated and copied into the episode."""

    name = "file"

    def __init__(self, video_paths: list[str] | None = None, **_ignored):
        self.video_paths = [Path(p).expanduser() for p in (video_paths or []) if p]

    def generate(self, request: VideoRequest, progress: ProgressCallback, cancel: CancelToken) -> VideoSegment:
        k = request.segment_index
        if not self.video_paths:
            raise VideoGenerationError("the file backend has no videos: set the 'file.video_paths' parameter")
        if len(self.video_paths) != len(request.steps):
            raise VideoGenerationError(
                f"the file backend has {len(self.video_paths)} video(s) for {len(request.steps)} planned step(s); "
                "give one video per step")
        src = self.video_paths[k]
        try:
            fps, n, w, h = video_info(src)
        except VideoReadError as e:
            raise VideoGenerationError(str(e)) from e
        video_path, last_path = self.segment_paths(request)
        frame = None
        with VideoWriter(video_path, fps, w, h) as out:
            for i, frame in enumerate(read_video_frames(src)):
                if cancel.is_set():
                    raise Canceled("video generation canceled")
                out.write(frame)
                if i % 15 == 0:
                    progress(i + 1, n, f"copied {i + 1}/{n} frames from {src.name}")
            count = out.frames
        if frame is None:
            raise VideoGenerationError(f"no frame could be decoded from {src}")
        write_image_rgb(last_path, frame)
        return VideoSegment(video_path, last_path, fps, count, w, h, f"copied {count} frames of {src}")
