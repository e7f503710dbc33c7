"""The four-panel episode video: (a) camera image, (b) imagined human, (c) estimated skeleton, (d) robot.

Panels (b) and (c) play step k's generated video while step k is executed (see
:mod:`exoactor.media.schedule`); (d) re-renders the simulated G1 from the measured joint log.
A header names the step and what the robot does; the footer is the task's timeline with a cursor.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from exoactor.media import panels as P
from exoactor.media.codec import BrowserVideoWriter
from exoactor.media.episode_data import EpisodeData
from exoactor.media.schedule import Moment, Schedule
from exoactor.progress import ProgressCallback, no_progress


class _SegmentCursor:
    """Frames of one step video at panel size, read forward only (a whole episode never sits in memory)."""

    def __init__(self, path: Path | None, last_png: Path | None):
        self.path, self.last_png = path, last_png
        self._cap = None
        self._index = -1
        self._frame: np.ndarray | None = None
        self.fps = 30.0
        self.count = 0
        if path is not None:
            cap = cv2.VideoCapture(str(path))
            if cap.isOpened():
                self._cap = cap
                self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 30.0) or 30.0
                self.count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    def frame_at(self, video_time_s: float) -> np.ndarray | None:
        want = int(np.floor(video_time_s * self.fps + 1e-6))
        if self.count:
            want = min(want, self.count - 1)
        if self._cap is not None and want < self._index:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._index = -1
        while self._cap is not None and self._index < want:
            ok, bgr = self._cap.read()
            if not ok:
                self._cap.release()
                self._cap = None
                break
            self._index += 1
            if self._index >= want:
                self._frame = P.fit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        if self._frame is None and self.last_png is not None:
            img = cv2.imread(str(self.last_png), cv2.IMREAD_COLOR)
            if img is not None:
                self._frame = P.fit(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        return self._frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def _dim(img: np.ndarray, f: float = 0.55) -> np.ndarray:
    return (img.astype(np.float32) * f).astype(np.uint8)


def _phase_text(m: Moment, n_steps: int, sched: Schedule) -> str:
    if m.window is None:
        doing = sorted({a["stage"].replace("_", " ") + f" {a['step'] + 1}" for a in sched.activities_at(m.t_s)})
        return "preparing" + (f": {', '.join(doing)}" if doing else "")
    st = m.window.step
    return f"step {st.index + 1}/{n_steps}: {st.label} - {m.phase}"


def build_video(ep: EpisodeData, sched: Schedule, out_stem: Path, robot=None, fps: float = 15.0,
                progress: ProgressCallback = no_progress) -> tuple[Path | None, list[str], dict]:
    """Write the episode video; returns (path or None, warnings, stats). ``robot``: a
    :class:`~exoactor.media.robot_render.RobotRenderer` or None (panel d then says so)."""
    warnings: list[str] = []
    n_frames = int(np.ceil(sched.duration_s * fps))
    if not sched.windows or n_frames < 2:
        return None, ["no step video and no executed step: no episode video"], {}
    n_steps = max(len(ep.steps), 1)
    panel_a = P.title(P.camera_panel(ep.input_image, ep.reference_image), "(a) camera")
    backdrop = P.fit(ep.reference_image if ep.reference_image is not None else ep.input_image)
    bar = P.TimelineBar(sched.end_s, ep.activities, sched.windows, ep.time_to_first_motion_s)
    cursors = {w.step.index: _SegmentCursor(w.step.segment, w.step.segment_last) for w in sched.windows}
    cam = ep.camera
    writer = BrowserVideoWriter(out_stem, fps, P.FRAME_W, P.FRAME_H)
    if not writer.browser_playable:
        warnings.append(f"no VP8 encoder: {writer.path.name} is {writer.fourcc} (download it; browsers do not play it)")
    skeleton_frames = robot_frames = 0
    instruction = ep.instruction
    try:
        for i in range(n_frames):
            m = sched.moment(i / fps)
            # (b) the imagined human and (c) the skeleton on it
            if m.window is None:
                frame_b = _dim(backdrop, 0.7)
                P.put_text(frame_b, "imagining the task...", (12, P.PANEL_H // 2), 0.5)
                frame_c = P.placeholder("no motion yet")
            else:
                st = m.window.step
                cur = cursors[st.index]
                raw = cur.frame_at(m.video_time_s)
                frame_b = raw.copy() if raw is not None else P.placeholder(f"step {st.index + 1}: no video")
                if m.phase in ("holding", "done", "ramp-in"):
                    P.put_text(frame_b, "(held)" if m.phase != "ramp-in" else "(first frame, ramp-in)",
                               (8, P.PANEL_H - 10), 0.4, (220, 220, 220))
                if st.motion is not None and raw is not None:
                    frame_c = _dim(raw)
                    mot = st.motion
                    j = int(np.clip(np.round(m.video_time_s * mot.fps), 0, mot.num_frames - 1))
                    if P.draw_skeleton(frame_c, cam, mot.keypoints_world_m[j], mot.keypoint_names, mot.confidence[j]):
                        skeleton_frames += 1
                    if mot.has_hands:
                        P.draw_hands(frame_c, cam, mot.hand_keypoints_world_m[j], mot.hand_confidence[j])
                else:
                    frame_c = P.placeholder(f"step {st.index + 1}: no motion estimate")
            P.title(frame_b, "(b) imagined human")
            P.title(frame_c, "(c) estimated skeleton")
            # (d) the robot
            if robot is not None:
                frame_d = P.fit(robot.render(sched.joints_at(m.t_s)))
                robot_frames += 1
            else:
                frame_d = P.placeholder("robot render unavailable")
            P.title(frame_d, "(d) simulated G1")
            head = P.header(_phase_text(m, n_steps, sched), instruction)
            fast = f"   fast-forward x{m.speed:.0f}" if m.speed > 1.5 else ""
            first = ep.time_to_first_motion_s
            foot = bar.render(m.t_s, f"t = {m.t_s:5.1f} s of {sched.end_s:.1f} s"
                              + (f"   first motion {first:.1f} s" if first >= 0 else "") + fast)
            writer.write(P.compose(panel_a, frame_b, frame_c, frame_d, head, foot))
            if i % 15 == 0:
                progress(i, n_frames, f"episode video frame {i}/{n_frames}")
    finally:
        path = writer.close()
        for c in cursors.values():
            c.close()
    progress(n_frames, n_frames, "episode video written")
    return path, warnings, {"frames": n_frames, "fps": fps, "duration_s": round(n_frames / fps, 2),
                            "skeleton_frames": skeleton_frames, "robot_frames": robot_frames,
                            "codec": writer.fourcc, "browser_playable": writer.browser_playable}
