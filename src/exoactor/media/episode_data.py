"""Reading an episode folder for its media, whatever a failed or canceled goal left behind.

Every loader returns what it could read and notes in ``warnings`` what was missing or unreadable;
nothing here raises for a missing or damaged file.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from exoactor.geometry import PinholeCamera, matrix_to_quat_wxyz, quat_wxyz_to_matrix
from exoactor.motion.human_motion import HumanMotion, MotionEstimationError
from exoactor.video.io import VideoReadError, read_image_rgb, video_info

CAMERA_FILE = "camera.json"
"""Optional calibration of the exocentric camera (:func:`save_camera`); without it the default
exocentric calibration of the simulator (config/params.yaml) is assumed."""

DEFAULT_CAMERA = {"fovy_deg": 50.0, "eye_m": [2.6, -1.3, 1.3], "target_m": [0.0, 0.0, 0.8]}
"""The simulator's and camera node's default calibration (``camera.*`` / ``calibration.*`` parameters)."""


def save_camera(path: Path | str, cam: PinholeCamera) -> Path:
    """Write ``cam`` as JSON (intrinsics in pixels, optical frame pose in the world, quaternion w, x, y, z)."""
    path = Path(path)
    path.write_text(json.dumps(camera_to_dict(cam), indent=2) + "\n")
    return path


def camera_to_dict(cam: PinholeCamera) -> dict:
    return {"width": int(cam.width), "height": int(cam.height), "fx": float(cam.fx), "fy": float(cam.fy),
            "cx": float(cam.cx), "cy": float(cam.cy), "pos_world_m": [float(v) for v in cam.pos_world_m],
            "quat_wxyz_world_from_optical": [float(v) for v in matrix_to_quat_wxyz(cam.rot_world_from_optical)]}


def camera_from_dict(d: dict) -> PinholeCamera:
    return PinholeCamera(int(d["width"]), int(d["height"]), float(d["fx"]), float(d["fy"]), float(d["cx"]),
                         float(d["cy"]), np.asarray(d["pos_world_m"], dtype=np.float64),
                         quat_wxyz_to_matrix(np.asarray(d["quat_wxyz_world_from_optical"], dtype=np.float64)))


def scaled_camera(cam: PinholeCamera, width: int, height: int) -> PinholeCamera:
    """The same camera seen at another image size (pixel centres kept)."""
    sx, sy = width / cam.width, height / cam.height
    return PinholeCamera(width, height, cam.fx * sx, cam.fy * sy, (cam.cx + 0.5) * sx - 0.5,
                         (cam.cy + 0.5) * sy - 0.5, cam.pos_world_m, cam.rot_world_from_optical)


@dataclass
class StepData:
    """What the episode holds for one planned step (None: not there)."""

    index: int
    action: str = ""
    side: str = ""
    label: str = ""
    segment: Path | None = None
    segment_last: Path | None = None
    motion: object | None = None
    """HumanMotion of the step."""
    trajectory: dict | None = None
    """Arrays of trajectory_XX.npz (positions_rad, ..., log_t_s, log_commanded_rad, log_measured_rad)."""
    summary: dict = field(default_factory=dict)
    """The step's entry of result.json's ``steps`` (tracking RMSE, clamped commands)."""

    @property
    def log(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(t s since the tracking goal started, commanded (N, 29), measured (N, 29)), or None if empty."""
        tr = self.trajectory
        if not tr or "log_t_s" not in tr or len(tr["log_t_s"]) < 1:
            return None
        t, c, m = (np.asarray(tr[k], dtype=np.float64) for k in ("log_t_s", "log_commanded_rad", "log_measured_rad"))
        if c.ndim != 2 or m.shape != c.shape or len(t) != len(c) or c.shape[1] < 29:
            return None
        return t, c, m


@dataclass
class EpisodeData:
    path: Path
    request: dict = field(default_factory=dict)
    result: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    timeline: dict = field(default_factory=dict)
    task_video: dict = field(default_factory=dict)
    remote_calls: dict = field(default_factory=dict)
    planner_backend: str = ""
    steps: list[StepData] = field(default_factory=list)
    input_image: np.ndarray | None = None
    reference_image: np.ndarray | None = None
    camera: PinholeCamera | None = None
    camera_assumed: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def instruction(self) -> str:
        return str(self.request.get("instruction", ""))

    @property
    def activities(self) -> list[dict]:
        out = []
        for a in self.timeline.get("activities", []) or []:
            try:
                out.append({"stage": str(a["stage"]), "step": int(a.get("step", 0)),
                            "start_s": float(a["start_s"]), "end_s": float(a["end_s"])})
            except (KeyError, TypeError, ValueError):
                continue
        return out

    def activity(self, stage: str, step: int) -> dict | None:
        hits = [a for a in self.activities if a["stage"] == stage and a["step"] == step]
        return hits[-1] if hits else None

    @property
    def time_to_first_motion_s(self) -> float:
        for src in (self.result, self.timeline):
            try:
                v = float(src.get("time_to_first_motion_s", -1.0))
            except (TypeError, ValueError):
                continue
            if v >= 0:
                return v
        return -1.0


def _json(path: Path, warnings: list[str], required: bool = True) -> dict:
    if not path.is_file():
        if required:
            warnings.append(f"{path.name} is missing")
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        warnings.append(f"{path.name} is unreadable ({type(e).__name__})")
        return {}
    return data if isinstance(data, dict) else {}


def _image(path: Path, warnings: list[str]) -> np.ndarray | None:
    if not path.is_file():
        warnings.append(f"{path.name} is missing")
        return None
    try:
        return read_image_rgb(path)
    except VideoReadError:
        warnings.append(f"{path.name} is not a readable image")
        return None


def step_label(action: str, side: str) -> str:
    return action.replace("_", " ") + (f" ({side})" if side else "")


def load_episode(path: Path | str) -> EpisodeData:
    """Everything the media need from an episode folder (missing pieces noted in ``warnings``)."""
    path = Path(path)
    ep = EpisodeData(path=path)
    w = ep.warnings
    if not path.is_dir():
        w.append(f"episode folder {path} does not exist")
        return ep
    ep.request = _json(path / "request.json", w, required=False)
    ep.result = _json(path / "result.json", w)
    ep.timings = _json(path / "timings.json", w, required=False)
    ep.timeline = _json(path / "timeline.json", w)
    ep.task_video = _json(path / "task_video.json", w, required=False)
    ep.remote_calls = _json(path / "remote_calls.json", w, required=False)
    plan = _json(path / "steps.json", w)
    ep.planner_backend = str(plan.get("backend", ""))
    ep.input_image = _image(path / "input.png", w)
    ep.reference_image = _image(path / "reference.png", w) if (path / "reference.png").is_file() else None
    planned = [s for s in plan.get("steps", []) or [] if isinstance(s, dict)]
    indices = set(range(len(planned)))
    for f in path.iterdir():
        m = re.fullmatch(r"(?:segment|motion|trajectory)_(\d{2,3})(?:\.mp4|\.npz)", f.name)
        if m:
            indices.add(int(m.group(1)))
    summaries = [s for s in ep.result.get("steps", []) or [] if isinstance(s, dict)]
    for k in sorted(indices):
        plan_k = planned[k] if k < len(planned) else {}
        sd = StepData(index=k, action=str(plan_k.get("action", "")), side=str(plan_k.get("side", "")))
        sd.label = step_label(sd.action or "step", sd.side)
        seg = path / f"segment_{k:02d}.mp4"
        if seg.is_file():
            try:
                video_info(seg)
                sd.segment = seg
            except VideoReadError as e:
                w.append(f"{seg.name} is unreadable ({e})")
        last = path / f"segment_{k:02d}_last.png"
        sd.segment_last = last if last.is_file() else None
        mot = path / f"motion_{k:02d}.npz"
        if mot.is_file():
            try:
                sd.motion = HumanMotion.load(mot)
            except (OSError, ValueError, KeyError, MotionEstimationError) as e:
                w.append(f"{mot.name} is unreadable ({type(e).__name__})")
        trj = path / f"trajectory_{k:02d}.npz"
        if trj.is_file():
            try:
                with np.load(trj, allow_pickle=False) as z:
                    sd.trajectory = {name: z[name] for name in z.files}
            except (OSError, ValueError, KeyError) as e:
                w.append(f"{trj.name} is unreadable ({type(e).__name__})")
        for name, have in ((seg.name, sd.segment), (mot.name, sd.motion), (trj.name, sd.trajectory)):
            if have is None and not any(name in x for x in w):
                w.append(f"step {k + 1}: {name} is missing")
        if sd.trajectory is not None and sd.log is None:
            w.append(f"step {k + 1}: {trj.name} has no tracking log (the step was not executed)")
        # result.json lists executed steps in order; a step is matched by its trajectory file name.
        sd.summary = next((s for s in summaries if Path(str(s.get("trajectory", ""))).name == trj.name),
                          summaries[k] if k < len(summaries) else {})
        ep.steps.append(sd)
    if not ep.steps:
        w.append("no step was planned or produced")
    cam = _json(path / CAMERA_FILE, w, required=False)
    if cam:
        try:
            ep.camera = camera_from_dict(cam)
        except (KeyError, TypeError, ValueError) as e:
            w.append(f"{CAMERA_FILE} is invalid ({type(e).__name__}: {e})")
    if ep.camera is None:
        size = _image_size(ep)
        ep.camera = PinholeCamera.look_at(size[0], size[1], DEFAULT_CAMERA["fovy_deg"], DEFAULT_CAMERA["eye_m"],
                                          DEFAULT_CAMERA["target_m"])
        ep.camera_assumed = True
        w.append(f"{CAMERA_FILE} is missing: assuming the default exocentric calibration "
                 f"(eye {DEFAULT_CAMERA['eye_m']} m, target {DEFAULT_CAMERA['target_m']} m, "
                 f"fovy {DEFAULT_CAMERA['fovy_deg']:g} deg)")
    return ep


def _image_size(ep: EpisodeData) -> tuple[int, int]:
    """(width, height) of the camera images: input.png, else the first segment, else 640x480."""
    if ep.input_image is not None:
        return ep.input_image.shape[1], ep.input_image.shape[0]
    for s in ep.steps:
        if s.segment is not None:
            try:
                _fps, _n, width, height = video_info(s.segment)
                return width, height
            except VideoReadError:
                continue
    return 640, 480
