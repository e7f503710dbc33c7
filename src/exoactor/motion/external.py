"""Estimators that run the user's own installation of a GPU model (GVHMR, GENMO/GEM) and parse its output.

The backend runs ``command`` (a command line with placeholders, split like a shell would, never
run through one) in a fresh folder inside the episode, waits for it (cancellable; the whole
process group is killed on cancel or timeout), finds the tool's documented output file under that
folder and turns it into a :class:`HumanMotion`:

- SMPL-family parameters in the camera frame (OpenCV axes: x right, y down, z forward) are evaluated
  with ``smplx`` and the user's body model files, then placed in the world through the calibrated
  camera (``frame: incam``, the default: the camera is static and calibrated here);
- or the tool's own gravity-aligned world (y up; ``frame: global``) is turned z up and aligned to
  the camera placement of the first frame (heading and position), for tools whose camera moves;
- the clip is grounded: a constant vertical shift puts the feet on the floor (z = sole height)
  where they are lowest.

Placeholders: ``{video}``, ``{output_dir}``, ``{fps}``, ``{width}``, ``{height}`` and the calibrated
intrinsics ``{fx}``, ``{fy}``, ``{cx}``, ``{cy}`` (pixels, at the video's size). ``output_file``
instead of a command reads a result computed beforehand.
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from exoactor.geometry import PinholeCamera
from exoactor.motion.clip_fit import FOOT_POINTS, SOLE_HEIGHT_M
from exoactor.motion.estimator import MotionEstimator, input_video_info
from exoactor.motion.grounding import motion_from_keypoints
from exoactor.motion.human_motion import HumanMotion, MotionEstimationError
from exoactor.motion.smpl_body import SmplBody, SmplModelError, SmplParams
from exoactor.progress import Canceled, CancelToken, ProgressCallback
from exoactor.skeleton import KP

Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""Rotation taking a y-up world (gravity along -y) to a z-up one: (x, y, z) -> (x, -z, y)."""

COMMON_PARAMETERS = {
    "command": ("", "command line run once per video ({video}, {output_dir}, {fps}, {width}, {height}, "
                    "{fx}, {fy}, {cx}, {cy} are replaced); empty: the backend's default"),
    "output_file": ("", "read this result file instead of running the command (computed beforehand)"),
    "timeout_s": (1800.0, "longest the command may run (s)"),
    "model_dir": ("~/.exoactor/body_models", "folder with the licence-gated SMPL / SMPL-X files, laid out "
                  "as smplx.create expects (smpl/SMPL_NEUTRAL.pkl, smplx/SMPLX_NEUTRAL.npz)"),
    "gender": ("neutral", "body model gender: neutral, male or female"),
    "model_type": ("", "body model the tool's parameters are for: smpl, smplh or smplx; empty: the backend's"),
    "frame": ("incam", "incam: the tool's camera-frame result placed through the calibrated camera; "
              "global: the tool's gravity-aligned world, aligned to the camera placement at the first frame"),
}


class ExternalEstimator(MotionEstimator):
    """Base of the adapters: run (or skip) the command, find ``OUTPUT_NAME``, parse it."""

    OUTPUT_NAME = "result.pt"
    """The tool's result file (found anywhere under the command's output folder)."""
    INCAM_KEY = "smpl_params_incam"
    GLOBAL_KEY = "smpl_params_global"
    """Keys of the camera-frame and the y-up world parameter dicts in the result."""
    DEFAULT_COMMAND = ""
    MODEL_TYPE = "smplx"
    PARAMETERS = COMMON_PARAMETERS

    def __init__(self, command: str = "", output_file: str = "", timeout_s: float = 1800.0,
                 model_dir: str = "~/.exoactor/body_models", gender: str = "neutral", frame: str = "incam",
                 model_type: str = "", **_ignored):
        self.command = command.strip() or self.DEFAULT_COMMAND
        self.output_file = output_file.strip()
        self.timeout_s = float(timeout_s)
        self.model_dir = model_dir
        self.gender = gender
        if frame not in ("incam", "global"):
            raise ValueError(f"{self.name}.frame must be incam or global, got {frame!r}")
        self.frame = frame
        self.model_type = model_type.strip() or self.MODEL_TYPE
        self._body: SmplBody | None = None

    # -- the tool's output -> (camera-frame params, global params) ---------------------------------
    def parse(self, result: dict) -> tuple[SmplParams, SmplParams | None]:
        """(camera-frame parameters, world parameters or None) from the loaded result."""
        r = numpy_tree(result)
        incam = SmplParams.from_dict(r[self.INCAM_KEY])
        world = SmplParams.from_dict(r[self.GLOBAL_KEY]) if self.GLOBAL_KEY in r else None
        return incam, world

    def body(self) -> SmplBody:
        if self._body is None:
            try:
                self._body = SmplBody(self.model_dir, self.model_type, self.gender)
            except SmplModelError as e:
                raise MotionEstimationError(str(e)) from e
        return self._body

    def estimate(self, video_path: Path, camera: PinholeCamera, progress: ProgressCallback,
                 cancel: CancelToken) -> HumanMotion:
        fps, n, w, h = input_video_info(video_path)
        if n < 2 or fps <= 0:
            raise MotionEstimationError(f"the video {Path(video_path).name} has {n} frame(s) at {fps:g} fps")
        cam = _camera_at(camera, w, h)
        if self.output_file:
            path = Path(self.output_file).expanduser()
            if not path.is_file():
                raise MotionEstimationError(f"{self.name}: output_file {path} does not exist")
        else:
            out_dir = Path(tempfile.mkdtemp(prefix=f"{self.name}_", dir=Path(video_path).parent))
            self._run(video_path, out_dir, cam, fps, progress, cancel)
            path = _find_output(out_dir, self.OUTPUT_NAME, self.name)
        progress(0, 1, f"reading {path.name}")
        result = _load_result(path, self.name)
        try:
            incam, world = self.parse(result)
        except (KeyError, TypeError, ValueError, SmplModelError) as e:
            raise MotionEstimationError(f"{self.name}: {path.name} is not a result this adapter reads: "
                                        f"{type(e).__name__}: {e}") from e
        body = self.body()
        try:
            kp_cam = body.keypoints(incam)
            kp = kp_cam @ cam.rot_world_from_optical.T + cam.pos_world_m
            if self.frame == "global":
                if world is None:
                    raise MotionEstimationError(f"{self.name}: the result has no global parameters")
                kp = align_global_to(body.keypoints(world) @ Y_UP_TO_Z_UP.T, kp)
        except SmplModelError as e:
            raise MotionEstimationError(f"{self.name}: {e}") from e
        kp = put_feet_on_floor(kp)
        progress(1, 1, f"{len(kp)} frames from {self.name}")
        conf = np.ones(kp.shape[:2])
        return motion_from_keypoints(kp, conf, np.zeros(len(kp), np.uint8), fps, self.name)

    def _run(self, video: Path, out_dir: Path, cam: PinholeCamera, fps: float, progress: ProgressCallback,
             cancel: CancelToken) -> None:
        if not self.command:
            raise MotionEstimationError(f"{self.name}: no command configured (parameter {self.name}.command, "
                                        "or output_file for a result computed beforehand)")
        values = {"video": str(Path(video).resolve()), "output_dir": str(out_dir), "fps": f"{fps:g}",
                  "width": str(cam.width), "height": str(cam.height), "fx": f"{cam.fx:.3f}", "fy": f"{cam.fy:.3f}",
                  "cx": f"{cam.cx:.3f}", "cy": f"{cam.cy:.3f}"}
        try:
            argv = [part.format(**values) for part in shlex.split(self.command)]
        except (ValueError, KeyError, IndexError) as e:
            raise MotionEstimationError(f"{self.name}.command is not a valid command line ({e}); placeholders: "
                                        f"{', '.join('{' + k + '}' for k in values)}") from e
        log = out_dir / "command.log"
        progress(0, 1, f"running {Path(argv[0]).name}")
        t0 = time.monotonic()
        with open(log, "wb") as out:
            try:
                proc = subprocess.Popen(argv, cwd=out_dir, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
            except OSError as e:
                raise MotionEstimationError(f"{self.name}: cannot run {argv[0]!r}: {e}") from e
            try:
                while proc.poll() is None:
                    if cancel.is_set():
                        raise Canceled("motion estimation canceled")
                    if time.monotonic() - t0 > self.timeout_s:
                        raise MotionEstimationError(f"{self.name}: the command ran longer than {self.timeout_s:g} s")
                    time.sleep(0.1)
            finally:
                if proc.poll() is None:
                    _kill_group(proc)
        if proc.returncode != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise MotionEstimationError(f"{self.name}: the command exited with status {proc.returncode}"
                                        + (f": {' | '.join(tail)}" if tail else "") + f" (log: {log})")


def _camera_at(camera: PinholeCamera, w: int, h: int) -> PinholeCamera:
    """The calibration at the video's size (same field of view and pose)."""
    if (w, h) == (camera.width, camera.height):
        return camera
    sx, sy = w / camera.width, h / camera.height
    if abs(sx - sy) > 0.02:
        raise MotionEstimationError(f"video aspect {w}x{h} does not match the camera calibration "
                                    f"{camera.width}x{camera.height}")
    return PinholeCamera(w, h, camera.fx * sx, camera.fy * sy, (camera.cx + 0.5) * sx - 0.5,
                         (camera.cy + 0.5) * sy - 0.5, camera.pos_world_m, camera.rot_world_from_optical)


def _kill_group(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=3.0)
            return
        except subprocess.TimeoutExpired:
            continue


def _find_output(out_dir: Path, name: str, backend: str) -> Path:
    found = sorted(out_dir.rglob(name), key=lambda p: p.stat().st_mtime)
    if not found:
        raise MotionEstimationError(f"{backend}: the command finished but wrote no {name} under {out_dir}")
    return found[-1]


def _load_result(path: Path, backend: str) -> dict:
    import torch  # noqa: PLC0415

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user-facing failure
        raise MotionEstimationError(f"{backend}: cannot read {path.name} as a tensor file: {e}") from e
    if not isinstance(data, dict):
        raise MotionEstimationError(f"{backend}: {path.name} holds a {type(data).__name__}, expected a dict")
    return data


def numpy_tree(value):
    """Tensors (nested in dicts/lists) -> float64 numpy arrays."""
    if isinstance(value, dict):
        return {k: numpy_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [numpy_tree(v) for v in value]
    if hasattr(value, "detach"):
        return value.detach().cpu().double().numpy()
    return value


def align_global_to(kp_global: np.ndarray, kp_placed: np.ndarray) -> np.ndarray:
    """``kp_global`` (z up) moved by the yaw and translation that put its first frame's hips on
    ``kp_placed``'s first frame (the camera-based placement): the tool's trajectory, our world."""
    def heading(k):
        left = k[KP["left_hip"]] - k[KP["right_hip"]]
        return np.arctan2(-left[0], left[1])  # facing = left x up

    yaw = heading(kp_placed[0]) - heading(kp_global[0])
    c, s = np.cos(yaw), np.sin(yaw)
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    out = kp_global @ rz.T
    return out + (kp_placed[0, KP["pelvis"]] - out[0, KP["pelvis"]])


def put_feet_on_floor(kp: np.ndarray) -> np.ndarray:
    """Shift the clip vertically so its foot points rest on the floor where they are lowest
    (the 5th percentile over the clip of each frame's lowest foot point above its sole height)."""
    idx = [KP[n] for n in FOOT_POINTS]
    sole = np.array([SOLE_HEIGHT_M[n] for n in FOOT_POINTS])
    lowest = (kp[:, idx, 2] - sole).min(axis=1)
    out = kp.copy()
    out[..., 2] -= float(np.percentile(lowest, 5))
    return out
