"""The episode video's clock: which step, which video frame and which robot pose at each moment.

Everything is placed on the task's time axis (seconds since the goal started, as in
timeline.json). Step k's tracking log (``log_t_s``, seconds since its tracking goal began to move
the robot) is anchored at the end of step k's ``tracking`` activity; the step's video plays while
the step is tracked (frame i at ``i / fps`` after tracking starts), so the imagined human, the
estimated skeleton and the robot line up. Video generation ran earlier than execution; that is
what the timeline bar shows. Stretches where nothing moves (planning, waiting for a video,
holding between steps) are fast-forwarded to at most ``max_idle_s`` of video.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exoactor.media.episode_data import EpisodeData, StepData
from exoactor.video.io import VideoReadError, video_info

END_LAG_S = 0.15
"""Typical time from the last logged sample to the end of the tracking activity (loop poll, file write)."""


@dataclass
class StepWindow:
    """Where one step lies on the task time axis."""

    step: StepData
    start_s: float
    """Ramp-in begins (or, for a step that was not executed, its video begins)."""
    track_start_s: float
    track_end_s: float
    video_duration_s: float
    executed: bool
    log_t_s: np.ndarray | None = None
    """Task times of the measured samples."""
    log_measured_rad: np.ndarray | None = None
    log_commanded_rad: np.ndarray | None = None


@dataclass
class Moment:
    """What the video shows at one task time."""

    t_s: float
    window: StepWindow | None
    phase: str
    """'preparing', 'ramp-in', 'tracking', 'holding', 'video only' (not executed) or 'done'."""
    video_time_s: float
    """Time in the window's step video (its last frame while holding), -1 for none."""
    speed: float
    """Task seconds per video second here (1 = real time)."""


def video_duration(step: StepData) -> float:
    if step.segment is not None:
        try:
            fps, n, _w, _h = video_info(step.segment)
            return n / fps
        except VideoReadError:
            pass
    if step.motion is not None:
        return float(step.motion.duration_s)
    tr = step.trajectory
    if tr and "positions_rad" in tr and "fps" in tr:
        return (len(tr["positions_rad"]) - 1) / float(tr["fps"])
    return 0.0


class Schedule:
    """Step windows on the task axis and the mapping from video frames to task time."""

    def __init__(self, ep: EpisodeData, stand_rad: np.ndarray, max_idle_s: float = 1.5, tail_s: float = 1.0):
        self.ep = ep
        self.stand_rad = np.asarray(stand_rad, dtype=np.float64)
        self.windows: list[StepWindow] = []
        prev_end = 0.0
        for st in ep.steps:
            w = self._place(st, prev_end)
            if w is not None:
                self.windows.append(w)
                prev_end = max(prev_end, w.track_end_s)
        self.end_s = max([prev_end + tail_s] + [a["end_s"] for a in ep.activities])
        try:
            self.end_s = max(self.end_s, float(ep.result.get("total_time_s", 0.0) or 0.0))
        except (TypeError, ValueError):
            pass
        self._task_knots, self._video_knots = self._knots(max_idle_s)

    def _place(self, st: StepData, prev_end: float) -> StepWindow | None:
        dur = video_duration(st)
        log = st.log
        if log is not None:
            t, c, m = log
            act = self.ep.activity("tracking", st.index)
            offset = (act["end_s"] - t[-1] - END_LAG_S) if act else prev_end
            if act:
                offset = max(offset, act["start_s"])
            offset = max(offset, prev_end)
            return StepWindow(st, offset, offset + t[0], offset + t[-1], dur or float(t[-1] - t[0]), True,
                              offset + t, m[:, :29], c[:, :29])
        if st.segment is None or dur <= 0:
            return None
        gen = self.ep.activity("video_generation", st.index)
        start = max(prev_end, gen["end_s"] if gen else 0.0)
        return StepWindow(st, start, start, start + dur, dur, False)

    def _knots(self, max_idle_s: float) -> tuple[np.ndarray, np.ndarray]:
        busy = sorted((w.start_s, w.track_end_s) for w in self.windows)
        task, video = [0.0], [0.0]

        def add(t_to: float, idle: bool) -> None:
            span = t_to - task[-1]
            if span <= 1e-9:
                return
            video.append(video[-1] + (min(span, max_idle_s) if idle else span))
            task.append(t_to)

        for a, b in busy:
            add(a, idle=True)
            add(b, idle=False)
        add(self.end_s, idle=True)
        return np.array(task), np.array(video)

    @property
    def duration_s(self) -> float:
        """Length of the episode video (s)."""
        return float(self._video_knots[-1])

    def task_time(self, video_t_s: float) -> float:
        return float(np.interp(video_t_s, self._video_knots, self._task_knots))

    def speed(self, video_t_s: float) -> float:
        i = int(np.clip(np.searchsorted(self._video_knots, video_t_s, side="right") - 1, 0,
                        len(self._video_knots) - 2)) if len(self._video_knots) > 1 else 0
        if len(self._video_knots) < 2:
            return 1.0
        dv = self._video_knots[i + 1] - self._video_knots[i]
        return float((self._task_knots[i + 1] - self._task_knots[i]) / dv) if dv > 0 else 1.0

    def moment(self, video_t_s: float) -> Moment:
        t = self.task_time(video_t_s)
        speed = self.speed(video_t_s)
        before = [w for w in self.windows if w.start_s <= t + 1e-9]
        if not before:
            return Moment(t, None, "preparing", -1.0, speed)
        w = before[-1]
        if t > w.track_end_s:
            last = w is self.windows[-1]
            return Moment(t, w, "done" if last else "holding", w.video_duration_s, speed)
        if not w.executed:
            return Moment(t, w, "video only", min(t - w.start_s, w.video_duration_s), speed)
        if t < w.track_start_s:
            return Moment(t, w, "ramp-in", 0.0, speed)
        return Moment(t, w, "tracking", float(np.clip(t - w.track_start_s, 0.0, w.video_duration_s)), speed)

    def joints_at(self, t_s: float) -> np.ndarray:
        """Measured joint positions (29,) at task time ``t_s``: the log while tracking, a minimum-jerk ramp
        from the previous pose during ramp-in (not logged), the last pose while holding."""
        q_prev = self.stand_rad
        for w in self.windows:
            if not w.executed:
                continue
            if t_s < w.start_s:
                return q_prev
            first = w.log_measured_rad[0]
            if t_s < w.track_start_s:
                s = (t_s - w.start_s) / max(w.track_start_s - w.start_s, 1e-6)
                s = s * s * s * (10 - 15 * s + 6 * s * s)
                return q_prev + s * (first - q_prev)
            if t_s <= w.track_end_s:
                tt = w.log_t_s
                return np.array([np.interp(t_s, tt, w.log_measured_rad[:, j]) for j in range(29)])
            q_prev = w.log_measured_rad[-1]
        return q_prev

    def activities_at(self, t_s: float) -> list[dict]:
        return [a for a in self.ep.activities if a["start_s"] <= t_s < a["end_s"]]
