"""CPU motion estimator: MediaPipe Pose and Hands (weights inside the mediapipe 0.10.21 wheel).

MediaPipe's 33 landmarks are surface points (nose, foot tip, outside of the hips); each joint of
HUMAN_KEYPOINTS is an affine combination of a few of them, learned on renders of the synthetic
human against its own skeleton (:mod:`exoactor.motion.mediapipe_regressor`, made by
``scripts/fit_mediapipe_regressor.py``; ``regressor=False``: the hand-made mid-points). Its
``pose_world_landmarks`` (metric, hip-centred, camera-oriented) give the 3D shape and
:mod:`exoactor.motion.grounding` places it in the world. Hands (``hands=True``): MediaPipe Hands on
a crop around each wrist, hung on the fitted wrists (:mod:`exoactor.motion.hands`).
"""
from __future__ import annotations

import contextlib
import importlib
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from exoactor.geometry import PinholeCamera
from exoactor.motion.estimator import MotionEstimator, input_video_info
from exoactor.motion.grounding import ground_motion
from exoactor.motion.hands import MediaPipeHands, attach_hands, refine_hand_rotation
from exoactor.motion.human_motion import HumanMotion, MotionEstimationError
from exoactor.motion.mediapipe_regressor import WEIGHTS
from exoactor.motion.subject import SUBJECT_RULES, SubjectTracker
from exoactor.progress import Canceled, CancelToken, ProgressCallback
from exoactor.skeleton import HAND_KEYPOINTS, HAND_SIDES, HUMAN_KEYPOINTS, KP
from exoactor.video.io import read_video_frames

# HUMAN_KEYPOINTS -> MediaPipe landmark indices averaged to make it: the hand-made mapping, the
# prior of the learned one (mediapipe_regressor.WEIGHTS) and used with ``regressor=False``.
MEDIAPIPE_SOURCES: dict[str, tuple[int, ...]] = {
    "pelvis": (23, 24), "left_hip": (23,), "right_hip": (24,), "spine": (11, 12, 23, 24),
    "neck": (11, 12), "head": (0,), "left_shoulder": (11,), "right_shoulder": (12,),
    "left_elbow": (13,), "right_elbow": (14,), "left_wrist": (15,), "right_wrist": (16,),
    "left_hand": (17, 19), "right_hand": (18, 20), "left_knee": (25,), "right_knee": (26,),
    "left_ankle": (27,), "right_ankle": (28,), "left_heel": (29,), "right_heel": (30,),
    "left_toe": (31,), "right_toe": (32,),
}


TORSO_LANDMARKS = (11, 12, 23, 24)
"""MediaPipe Pose's shoulders and hips: whether two detections are one person is judged on these."""


def landmark_map(learned: bool = True) -> np.ndarray:
    """(22, 33) weights: HUMAN_KEYPOINTS from MediaPipe's landmarks (rows sum to one)."""
    m = np.zeros((len(HUMAN_KEYPOINTS), 33))
    for j, name in enumerate(HUMAN_KEYPOINTS):
        if learned:
            for i, w in WEIGHTS[name].items():
                m[j, i] = w
        else:
            for i in MEDIAPIPE_SOURCES[name]:
                m[j, i] = 1.0 / len(MEDIAPIPE_SOURCES[name])
    return m


class MediaPipeEstimator(MotionEstimator):
    """MediaPipe Pose in video mode (model_complexity=1: the only one bundled offline)."""

    name = "mediapipe"
    PARAMETERS = {
        "min_detection_confidence": (0.5, "person detection threshold 0..1"),
        "regressor": (True, "map MediaPipe landmarks to body joints with the learned weights "
                            "(exoactor/motion/mediapipe_regressor.py); false = hand-made mid-points"),
        "hands": (False, "estimate both hands' 21 points with MediaPipe Hands on a crop around each wrist "
                         "(about +0.8 s of CPU per second of 640x480 video on 2 cores)"),
        "subject": ("center", "which person to follow when several appear: center (nearest the frame's "
                              "vertical centre line, among those at least half as tall as the tallest) or "
                              "largest (see exoactor/motion/subject.py)"),
        "max_video_s": (300.0, "longer videos are refused with a clear error (the clip fit solves the whole clip "
                               "at once); split them"),
        "hands_refine": (True, "turn each detected hand about its wrist until it projects onto its own 2D points "
                                "(exoactor.motion.hands.refine_hand_rotation); false = MediaPipe's 3D orientation"),
        "hands_crop_px": (256, "side of the square each wrist's crop is scaled to for MediaPipe Hands (pixels)"),
    }

    def __init__(self, min_detection_confidence: float = 0.5, smooth_sigma_frames: float = 1.5,
                 min_detected_fraction: float = 0.5, fit: bool = True, regressor: bool = True,
                 hands: bool = False, hands_crop_px: int = 256, hands_refine: bool = True, subject: str = "center",
                 max_video_s: float = 300.0, **_ignored):
        self.min_detection_confidence = float(min_detection_confidence)
        self.smooth_sigma_frames = float(smooth_sigma_frames)
        self.min_detected_fraction = float(min_detected_fraction)
        self.fit = bool(fit)
        if self.fit:  # import torch now, in the background, not during the first clip (seconds of CPU)
            threading.Thread(target=importlib.import_module, args=("torch",), name="import-torch", daemon=True).start()
        self._map = landmark_map(bool(regressor))
        self.hands = bool(hands)
        self.hands_crop_px = int(hands_crop_px)
        self.hands_refine = bool(hands_refine)
        if subject not in SUBJECT_RULES:
            raise ValueError(f"mediapipe.subject must be one of {', '.join(SUBJECT_RULES)}, got {subject!r}")
        self.subject = subject
        self.max_video_s = float(max_video_s)
        if not self.max_video_s > 0:
            raise ValueError(f"mediapipe.max_video_s must be positive, got {max_video_s}")
        if self.hands_crop_px < 64:
            raise ValueError(f"mediapipe.hands_crop_px must be at least 64, got {self.hands_crop_px}")

    def estimate(self, video_path: Path, camera: PinholeCamera, progress: ProgressCallback,
                 cancel: CancelToken) -> HumanMotion:
        import mediapipe as mp  # noqa: PLC0415

        fps, n, w, h = input_video_info(video_path)
        if min(w, h) < 64:
            raise MotionEstimationError(f"the video is {w}x{h}; at least 64 pixels per side are needed")
        if n / fps > self.max_video_s:
            raise MotionEstimationError(f"the video is {n / fps:.0f} s long ({n} frames at {fps:g} fps); at most "
                                        f"{self.max_video_s:g} s (mediapipe.max_video_s) is estimated at once: split it")
        sx, sy = camera.width / w, camera.height / h
        if abs(sx - sy) > 0.02:
            raise MotionEstimationError(
                f"video aspect {w}x{h} does not match the camera calibration {camera.width}x{camera.height}")
        rel, uv, conf, det, other = [], [], [], [], []
        hand_rel, hand_conf, hand_px = [], [], []
        scale = 1.0 if max(w, h) <= 1280 else 1280.0 / max(w, h)
        fw, fh = (int(w * scale), int(h * scale)) if scale != 1.0 else (w, h)
        to_camera = np.array([camera.width / fw, camera.height / fh])
        hands_or_none = (MediaPipeHands(self.min_detection_confidence, self.hands_crop_px) if self.hands
                         else contextlib.nullcontext())
        pose_options = {"model_complexity": 1, "smooth_landmarks": True, "enable_segmentation": False,
                        "min_detection_confidence": self.min_detection_confidence}
        # Hands of frame t run in a thread of their own while Pose reads frame t + 1 (MediaPipe's graphs
        # release the GIL): at most one frame in flight, results kept in frame order.
        hands_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hands") if self.hands else None
        pending: Future | None = None
        with hands_or_none as hands, mp.solutions.pose.Pose(static_image_mode=False, **pose_options) as video_pose, \
                mp.solutions.pose.Pose(static_image_mode=True, **pose_options) as image_pose, \
                (hands_thread or contextlib.nullcontext()):
            subject = SubjectTracker(_pose_detector(video_pose), _pose_detector(image_pose), fw, fh,
                                     rule=self.subject, anchors=TORSO_LANDMARKS)
            for i, frame in enumerate(read_video_frames(video_path)):
                if cancel.is_set():
                    raise Canceled("motion estimation canceled")
                if frame.shape[:2] != (h, w):
                    raise MotionEstimationError(
                        f"frame {i} of {video_path.name} is {frame.shape[1]}x{frame.shape[0]}, the video says {w}x{h}")
                if scale != 1.0:
                    frame = cv2.resize(frame, (fw, fh), interpolation=cv2.INTER_AREA)
                found = subject.step(frame)
                other.append(found.other_person)
                if found.detection is None:
                    rel.append(np.zeros((len(HUMAN_KEYPOINTS), 3)))
                    uv.append(np.zeros((len(HUMAN_KEYPOINTS), 2)))
                    conf.append(np.zeros(len(HUMAN_KEYPOINTS)))
                    det.append(False)
                    hand_rel.append(np.zeros((len(HAND_SIDES), len(HAND_KEYPOINTS), 3)))
                    hand_conf.append(np.zeros(len(HAND_SIDES)))
                    hand_px.append(np.zeros((len(HAND_SIDES), len(HAND_KEYPOINTS), 2)))
                else:
                    frame_px, (world, vis) = found.detection
                    px = frame_px * to_camera
                    k3 = self._map @ world
                    rel.append(k3 - k3[0])
                    uv.append(self._map @ px)
                    conf.append(np.clip(np.abs(self._map) @ vis / np.abs(self._map).sum(1), 0.0, 1.0))
                    det.append(True)
                    if hands is not None:
                        if pending is not None:
                            pending.result()  # one frame in flight: memory stays bounded
                        pending = hands_thread.submit(hands.detect, np.ascontiguousarray(frame), frame_px, vis)
                        hand_rel.append(pending)
                        hand_conf.append(None)
                        hand_px.append(None)
                if i % 10 == 0 or i + 1 == n:
                    progress(i + 1, n, f"pose{' and hands' if hands else ''} in frame {i + 1}/{n}")
            for k, job in enumerate(hand_rel):
                if isinstance(job, Future):
                    hand_rel[k], hand_conf[k], px_k = job.result()
                    hand_px[k] = px_k * to_camera
        if not det:
            raise MotionEstimationError(f"no frame could be decoded from {video_path}")
        motion = ground_motion(np.array(rel), np.array(uv), np.array(conf), np.array(det), camera, fps,
                               source=self.name, smooth_sigma_frames=self.smooth_sigma_frames,
                               min_detected_fraction=self.min_detected_fraction, fit=self.fit,
                               other_person=np.array(other))
        if hands is not None:
            wrists = motion.keypoints_world_m[:, [KP[f"{s}_wrist"] for s in HAND_SIDES]]
            rel_hands = refine_hand_rotation(np.array(hand_rel), np.array(hand_px), np.array(hand_conf), wrists,
                                             camera) if self.hands_refine else np.array(hand_rel)
            motion.hand_keypoints_world_m, motion.hand_confidence = attach_hands(
                wrists, rel_hands, np.array(hand_conf), camera)
            motion.validate()
        return motion


def _pose_detector(pose) -> Callable[[np.ndarray], tuple[np.ndarray, tuple[np.ndarray, np.ndarray]] | None]:
    """MediaPipe Pose as a :mod:`exoactor.motion.subject` detector: an RGB image -> (landmark pixels
    (33, 2) in that image, (world landmarks (33, 3) metres, visibility (33,))), or None."""
    def detect(image: np.ndarray):
        res = pose.process(image)
        if res.pose_landmarks is None or res.pose_world_landmarks is None:
            return None
        h, w = image.shape[:2]
        lm = res.pose_landmarks.landmark
        px = np.array([[p.x * w, p.y * h] for p in lm])
        world = np.array([[p.x, p.y, p.z] for p in res.pose_world_landmarks.landmark])
        vis = np.array([p.visibility for p in lm])
        return px, (world, vis)
    return detect
