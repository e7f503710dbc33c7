"""build_episode_media: the four-panel video, the plots and index.html of one episode folder."""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from exoactor.g1.joints import NUM_BODY_JOINTS
from exoactor.media.episode_data import EpisodeData, load_episode
from exoactor.media.episode_video import build_video
from exoactor.media.page import build_page
from exoactor.media.panels import PANEL_H, PANEL_W, fit_geometry
from exoactor.media.plots import plot_specs
from exoactor.media.robot_render import RobotRenderer
from exoactor.media.schedule import Schedule
from exoactor.progress import ProgressCallback, no_progress

VIDEO_STEM = "episode"
"""The video is ``episode.webm`` (VP8; ``episode.mp4`` only where OpenCV lacks VP8)."""
INDEX = "index.html"
FPS = 15.0

T = TypeVar("T")


def _attempt(warnings: list[str], what: str, fn: Callable[[], T], default: T = None) -> T:
    """``fn()``, or ``default`` with a warning: one piece failing never costs the others."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - build_episode_media never raises: a failed piece becomes a note
        warnings.append(f"{what}: {type(e).__name__}: {e}")
        return default


def build_episode_media(episode_dir: Path | str, progress: ProgressCallback | None = None) -> dict:
    """(Re)build an episode's media in its folder; never raises.

    Writes ``episode.webm`` (four panels: camera image, imagined human, estimated skeleton, the G1
    re-rendered from the measured joints; step labels, timeline bar), ``plot_tracking.png``,
    ``plot_root_path.png``, ``plot_timeline.png`` and ``index.html``. A failed or canceled goal
    left fewer files: what can be built is built and what is missing is listed in ``warnings``
    (also shown on the page).

    Returns ``{"index_html": Path | None, "video": Path | None, "plots": [Path], "warnings": [str],
    "seconds": float}``.

    Cost (single threaded, measured on 2 cores): ~3 s fixed (G1 model, matplotlib, plots) plus
    ~0.075 s per video frame (MuJoCo's software OpenGL re-renders the robot whenever it moved, VP8
    encoding). The video lasts the robot's motion (ramps included) + at most 1.5 s per idle stretch
    + 1 s, at 15 fps: a one-step episode (3 s motion) took 9 s, a two-step one 19 s; on a machine
    loaded by other work it is 2-3x that. Run it after the goal, in a thread or a child process
    (``python -m exoactor.media --nice 10 DIR``), never in the tracking controller's process.
    """
    t0 = time.monotonic()
    out = {"index_html": None, "video": None, "plots": [], "warnings": [], "seconds": 0.0}
    warnings: list[str] = out["warnings"]
    user_progress = progress or no_progress

    def report(done: int, total: int, detail: str) -> None:
        _attempt(warnings, "progress callback failed", lambda: user_progress(done, total, detail))

    path = Path(episode_dir)
    ep = _attempt(warnings, "cannot read the episode", lambda: load_episode(path)) or EpisodeData(path=path)
    warnings.extend(ep.warnings)
    if not path.is_dir():
        out["seconds"] = round(time.monotonic() - t0, 2)
        return out
    report(0, 100, "episode read")
    sched = _attempt(warnings, "cannot place the steps on the timeline",
                     lambda: Schedule(ep, stand_rad=np.zeros(NUM_BODY_JOINTS)))
    video_playable = False
    if sched is not None and sched.windows:
        robot = _attempt(warnings, "robot panel not rendered (G1 model or offscreen OpenGL unavailable)",
                         lambda: _robot_renderer(ep))
        if robot is not None:
            sched.stand_rad = robot.stand_rad
        report(10, 100, "robot model loaded")

        def video_progress(done: int, total: int, detail: str) -> None:
            report(10 + int(70 * done / max(total, 1)), 100, detail)

        made = _attempt(warnings, "episode video failed",
                        lambda: build_video(ep, sched, path / VIDEO_STEM, robot, FPS, video_progress))
        if robot is not None:
            _attempt(warnings, "closing the renderer failed", robot.close)
        if made is not None:
            out["video"], notes, out["video_stats"] = made
            warnings.extend(notes)
            video_playable = bool(out["video_stats"].get("browser_playable"))
    elif sched is not None:
        warnings.append("no step video and no executed step: no episode video")
    report(80, 100, "plots")
    if sched is not None:
        for name, draw, why in plot_specs(ep, sched):
            drawn = _attempt(warnings, f"{name} failed", lambda draw=draw, name=name: draw(path / name), False)
            if drawn is None:
                warnings.append(f"{name} not drawn: {why}")
            elif drawn:
                out["plots"].append(drawn)
    report(95, 100, "index.html")
    out["index_html"] = _attempt(warnings, "index.html failed", lambda: build_page(
        ep, sched, out["video"], video_playable, out["plots"], warnings, path / INDEX))
    out["seconds"] = round(time.monotonic() - t0, 2)
    report(100, 100, f"episode media built in {out['seconds']:.1f} s")
    return out


def _robot_renderer(ep: EpisodeData) -> RobotRenderer:
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    _s, _x, _y, width, height = fit_geometry(ep.camera.width, ep.camera.height, PANEL_W, PANEL_H)
    return RobotRenderer(ep.camera, width, height)  # the camera's aspect, as panels (a)-(c) show it
