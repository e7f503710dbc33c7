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

Hands: ``wilor_command`` (or ``wilor_output_file``) runs the user's WiLoR (WiLoR-mini) the same way
and reads its per-frame hands (:func:`parse_wilor_hands`), hung on the body's wrists like the
MediaPipe hands (:func:`exoactor.motion.hands.attach_hands`).

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
from exoactor.motion.estimator import MotionEstimator, camera_for_video, input_video_info
from exoactor.motion.grounding import motion_from_keypoints
from exoactor.motion.hands import attach_hands
from exoactor.motion.human_motion import HumanMotion, MotionEstimationError
from exoactor.motion.smpl_body import SmplBody, SmplModelError, SmplParams
from exoactor.progress import Canceled, CancelToken, ProgressCallback
from exoactor.skeleton import HAND_KEYPOINTS, HAND_SIDES, KP

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
    "wilor_command": ("", "command line that runs WiLoR on {video} and writes wilor_hands.pt under {output_dir} "
                      "(see exoactor/motion/external.py parse_wilor_hands); empty: no hands"),
    "wilor_output_file": ("", "read WiLoR's hands from this file instead of running wilor_command"),
}

WILOR_OUTPUT_NAME = "wilor_hands.pt"
"""The hands file a WiLoR command writes (found anywhere under its output folder)."""


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
                 model_type: str = "", wilor_command: str = "", wilor_output_file: str = "", **_ignored):
        self.command = command.strip() or self.DEFAULT_COMMAND
        self.output_file = output_file.strip()
        self.timeout_s = float(timeout_s)
        self.model_dir = model_dir
        self.gender = gender
        if frame not in ("incam", "global"):
            raise ValueError(f"{self.name}.frame must be incam or global, got {frame!r}")
        self.frame = frame
        self.model_type = model_type.strip() or self.MODEL_TYPE
        self.wilor_command = wilor_command.strip()
        self.wilor_output_file = wilor_output_file.strip()
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
        cam = camera_for_video(camera, w, h)
        path = self._result_path(self.name, self.command, self.output_file, self.OUTPUT_NAME, video_path, cam, fps,
                                 progress, cancel)
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
        motion = motion_from_keypoints(kp, conf, np.zeros(len(kp), np.uint8), fps, self.name)
        if self.wilor_command or self.wilor_output_file:
            hands_path = self._result_path("wilor", self.wilor_command, self.wilor_output_file, WILOR_OUTPUT_NAME,
                                           video_path, cam, fps, progress, cancel)
            rel, hand_conf = parse_wilor_hands(_load_result(hands_path, "wilor"), motion.num_frames)
            wrists = motion.keypoints_world_m[:, [KP[f"{s}_wrist"] for s in HAND_SIDES]]
            motion.hand_keypoints_world_m, motion.hand_confidence = attach_hands(wrists, rel, hand_conf, cam)
            motion.source = f"{self.name}+wilor"
            motion.validate()
        return motion

    def _result_path(self, tool: str, command: str, output_file: str, output_name: str, video: Path,
                     cam: PinholeCamera, fps: float, progress: ProgressCallback, cancel: CancelToken) -> Path:
        """The tool's result: ``output_file`` if given, else what ``command`` writes."""
        if output_file:
            path = Path(output_file).expanduser()
            if not path.is_file():
                raise MotionEstimationError(f"{tool}: output_file {path} does not exist")
            return path
        out_dir = Path(tempfile.mkdtemp(prefix=f"{tool}_", dir=Path(video).parent))
        self._run(tool, command, video, out_dir, cam, fps, progress, cancel)
        return _find_output(out_dir, output_name, tool)

    def _run(self, tool: str, command: str, video: Path, out_dir: Path, cam: PinholeCamera, fps: float,
             progress: ProgressCallback, cancel: CancelToken) -> None:
        param = "command" if tool == self.name else f"{tool}_command"
        if not command:
            raise MotionEstimationError(f"{tool}: no command configured (parameter {self.name}.{param}, "
                                        "or an output file computed beforehand)")
        values = {"video": str(Path(video).resolve()), "output_dir": str(out_dir), "fps": f"{fps:g}",
                  "width": str(cam.width), "height": str(cam.height), "fx": f"{cam.fx:.3f}", "fy": f"{cam.fy:.3f}",
                  "cx": f"{cam.cx:.3f}", "cy": f"{cam.cy:.3f}"}
        try:
            argv = [part.format(**values) for part in shlex.split(command)]
        except (ValueError, KeyError, IndexError) as e:
            raise MotionEstimationError(f"{self.name}.{param} is not a valid command line ({e}); placeholders: "
                                        f"{', '.join('{' + k + '}' for k in values)}") from e
        log = out_dir / "command.log"
        progress(0, 1, f"running {Path(argv[0]).name}")
        t0 = time.monotonic()
        with open(log, "wb") as out:
            try:
                proc = subprocess.Popen(argv, cwd=out_dir, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
            except OSError as e:
                raise MotionEstimationError(f"{tool}: cannot run {argv[0]!r}: {e}") from e
            try:
                while proc.poll() is None:
                    if cancel.is_set():
                        raise Canceled("motion estimation canceled")
                    if time.monotonic() - t0 > self.timeout_s:
                        raise MotionEstimationError(f"{tool}: the command ran longer than {self.timeout_s:g} s")
                    time.sleep(0.1)
            finally:
                if proc.poll() is None:
                    _kill_group(proc)
        if proc.returncode != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise MotionEstimationError(f"{tool}: the command exited with status {proc.returncode}"
                                        + (f": {' | '.join(tail)}" if tail else "") + f" (log: {log})")


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


def parse_wilor_hands(result: dict, num_frames: int, left_mirrored: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """WiLoR's per-frame hands -> (wrist-relative points (T, 2, 21, 3) in camera axes, confidence (T, 2)).

    The file (``wilor_hands.pt``, written by the user's command around WiLoR-mini's
    ``WiLorHandPose3dEstimationPipeline.predict`` for every frame) is a dict with ``frames``: one
    list per video frame of the hands found in it, each a dict of WiLoR's own outputs:
    ``is_right`` (0/1), ``pred_keypoints_3d`` (21, 3) in OpenPose hand order (the same as MediaPipe
    Hands': wrist, then thumb to little finger, knuckle to tip), camera axes (OpenCV), metres, and
    optionally ``score`` (the detector's) and the MANO ``global_orient`` / ``hand_pose`` / ``betas``
    (not needed: the keypoints are MANO's already). WiLoR, like HaMeR, runs left hands mirrored:
    their x is flipped back (``left_mirrored``). Where a frame has two hands of one side the more
    confident one is kept; frames past ``num_frames`` are an error, missing ones have no hands."""
    r = numpy_tree(result)
    frames = r.get("frames") if isinstance(r, dict) else None
    if not isinstance(frames, list):
        raise MotionEstimationError("wilor: the hands file has no 'frames' list (one list of hands per video frame)")
    if len(frames) > num_frames:
        raise MotionEstimationError(f"wilor: the hands file has {len(frames)} frames, the video {num_frames}")
    rel = np.zeros((num_frames, len(HAND_SIDES), len(HAND_KEYPOINTS), 3))
    conf = np.zeros((num_frames, len(HAND_SIDES)))
    for t, hands in enumerate(frames):
        if not isinstance(hands, list):
            raise MotionEstimationError(f"wilor: frame {t} is a {type(hands).__name__}, expected a list of hands")
        for k, hand in enumerate(hands):
            try:
                kp = np.asarray(hand["pred_keypoints_3d"], dtype=np.float64).reshape(-1, 3)
                right = bool(np.asarray(hand["is_right"]).reshape(-1)[0] > 0.5)
                score = float(np.asarray(hand.get("score", 1.0)).reshape(-1)[0])
            except (KeyError, TypeError, ValueError, IndexError) as e:
                raise MotionEstimationError(f"wilor: hand {k} of frame {t} is not a WiLoR hand "
                                            f"(needs is_right and pred_keypoints_3d): {type(e).__name__}: {e}") from e
            if kp.shape != (len(HAND_KEYPOINTS), 3) or not np.all(np.isfinite(kp)):
                raise MotionEstimationError(f"wilor: hand {k} of frame {t} has keypoints of shape {kp.shape} "
                                            f"(expected finite ({len(HAND_KEYPOINTS)}, 3))")
            if not right and left_mirrored:
                kp = kp * [-1.0, 1.0, 1.0]
            s = HAND_SIDES.index("right" if right else "left")
            score = float(np.clip(score, 1e-3, 1.0))
            if score > conf[t, s]:
                rel[t, s], conf[t, s] = kp - kp[0], score
    return rel, conf
