"""Interface of video-generation backends (one video segment per planned step)."""
from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path

from exoactor.geometry import PinholeCamera
from exoactor.planning.vocabulary import Step
from exoactor.progress import CancelToken, ProgressCallback


class VideoGenerationError(RuntimeError):
    """Generation failed for a reason the user can act on; the message says which."""




@dataclass
class VideoRequest:
    """One segment to generate.

    steps: the whole plan (backends may need context); segment_index: which step to render.
    camera: intrinsics and pose of the reference image's camera (world frame, see geometry.py).
    """

    episode_dir: Path
    steps: list[Step]
    segment_index: int
    reference_image_path: Path | None
    start_image_path: Path | None
    camera: PinholeCamera
    end_image_path: Path | None = None
    """Optional image the segment should end on (Veo ``lastFrame``, Kling ``image_tail``)."""

    @property
    def step(self) -> Step:
        return self.steps[self.segment_index]


@dataclass
class VideoSegment:
    """A generated segment on disk."""

    video_path: Path
    last_frame_path: Path
    fps: float
    num_frames: int
    width: int
    height: int
    message: str = ""


class VideoGenerator(abc.ABC):
    """A backend: ``generate`` writes ``segment_XX.mp4`` and ``segment_XX_last.png``."""

    name = "abstract"
    PARAMETERS: dict[str, tuple[object, str]] = {}
    """Backend options: key -> (default, description); nodes declare them as ``<name>.<key>``
    parameters and pass them to ``__init__`` as keyword arguments."""
    max_concurrency: int = 1
    """How many segments this backend may generate at once (remote backends: more)."""

    def stats(self) -> dict:
        """Remote calls, retries and seconds spent so far (remote backends), else {}."""
        return {}

    @abc.abstractmethod
    def generate(self, request: VideoRequest, progress: ProgressCallback,
                 cancel: CancelToken) -> VideoSegment:
        """Generate one segment; raise VideoGenerationError or Canceled."""

    @staticmethod
    def segment_paths(request: VideoRequest) -> tuple[Path, Path]:
        d = Path(request.episode_dir)
        k = request.segment_index
        return d / f"segment_{k:02d}.mp4", d / f"segment_{k:02d}_last.png"
