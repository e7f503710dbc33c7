"""Turning camera-oriented, hip-centred 3D keypoints into world-grounded motion.

Inputs per frame: keypoints relative to the pelvis in the camera's optical axes (metres) and
their pixel positions. The camera's calibration rotates them into the world; the foot that is
lowest is assumed to touch the floor (z = sole height), and the ray through its pixel fixes the
absolute position. Gaps are filled by interpolation and flagged; a non-causal Gaussian filter
removes jitter without lag. With ``fit`` (the default) that per-frame estimate only starts
:func:`exoactor.motion.clip_fit.fit_clip`, which fits one skeleton to the whole clip.
"""
from __future__ import annotations

import numpy as np

from exoactor.geometry import PinholeCamera, matrix_to_quat_wxyz
from exoactor.motion.clip_fit import FOOT_POINTS, SOLE_HEIGHT_M, fit_clip
from exoactor.motion.filters import fill_gaps, gaussian_smooth
from exoactor.motion.human_motion import (FLAG_INTERPOLATED, FLAG_NO_PERSON, FLAG_OTHER_PERSON, FLAG_PARTIAL,
                                         HumanMotion, MotionEstimationError)
from exoactor.skeleton import KP


def ground_motion(rel_optical_m: np.ndarray, pixels_uv: np.ndarray, confidence: np.ndarray,
                  detected: np.ndarray, camera: PinholeCamera, fps: float, source: str,
                  smooth_sigma_frames: float = 1.5, min_detected_fraction: float = 0.5,
                  fit: bool = True, max_subject_jump_m: float = 1.0,
                  other_person: np.ndarray | None = None) -> HumanMotion:
    """World-grounded motion from per-frame relative keypoints.

    rel_optical_m: (T, J, 3) keypoints minus pelvis, in the camera optical axes, metres.
    pixels_uv: (T, J, 2) pixel coordinates; confidence: (T, J); detected: (T,) bool.
    other_person: (T,) bool, frames where the estimator found someone else instead of the subject
    (:mod:`exoactor.motion.subject`); flagged like those this function finds itself.
    """
    t_count = len(detected)
    if t_count < 2:
        raise MotionEstimationError(f"the video has {t_count} frame(s); at least 2 are needed")
    detected = np.asarray(detected, bool)
    if not detected.any():
        raise MotionEstimationError("no person was detected in any frame of the video")
    # The main subject: a detection standing far from where the clip's person stands around that
    # frame is someone else (the detector switched people); those frames count as without the person.
    rel_w = rel_optical_m @ camera.rot_world_from_optical.T
    other = other_person_frames(rel_w, pixels_uv, detected, camera, max_subject_jump_m)
    if other_person is not None:
        if np.shape(other_person) != (t_count,):
            raise ValueError(f"other_person must be ({t_count},), got {np.shape(other_person)}")
        other = other | np.asarray(other_person, bool)
    detected = detected & ~other
    frac = float(np.mean(detected))
    if frac < min_detected_fraction:
        raise MotionEstimationError(
            f"a person was detected in only {frac:.0%} of the frames (need {min_detected_fraction:.0%})")
    rel_w = fill_gaps(rel_w, detected)
    uv = fill_gaps(pixels_uv, detected)
    conf = np.where(detected[:, None], confidence, 0.0)
    root = _floor_root(rel_w, uv, camera)  # absolute position: the lowest foot landmark touches the floor
    bad = ~np.all(np.isfinite(root), axis=1)
    if bad.all():
        raise MotionEstimationError("the person's feet are not on the floor as seen from the camera "
                                    "(check the camera pose calibration)")
    root = fill_gaps(np.where(bad[:, None], 0.0, root), ~bad)
    root = gaussian_smooth(root, smooth_sigma_frames)
    rel_w = gaussian_smooth(rel_w, smooth_sigma_frames)
    kp = root[:, None, :] + rel_w
    if fit:
        try:
            kp = fit_clip(kp, rel_w, uv, conf, camera, fps).keypoints_world_m
        except FloatingPointError as e:
            raise MotionEstimationError(f"the skeleton fit failed: {e}") from e
    flags = np.where(detected, 0, FLAG_INTERPOLATED | FLAG_NO_PERSON).astype(np.uint8)
    flags[other] |= FLAG_OTHER_PERSON
    partial = detected & (np.mean(np.asarray(confidence) >= 0.5, axis=1) < 0.6)
    flags[partial] |= FLAG_PARTIAL
    return motion_from_keypoints(kp, conf, flags, fps, source)


def _floor_root(rel_w: np.ndarray, uv: np.ndarray, camera: PinholeCamera) -> np.ndarray:
    """(N, 3) root per frame from its lowest foot landmark touching the floor (NaN where its ray misses)."""
    foot_idx = np.array([KP[n] for n in FOOT_POINTS])
    sole = np.array([SOLE_HEIGHT_M[n] for n in FOOT_POINTS])
    lowest = np.argmin(rel_w[:, foot_idx, 2] - sole[None], axis=1)
    j = foot_idx[lowest]
    rows = np.arange(len(rel_w))
    return camera.intersect_horizontal_plane(uv[rows, j], sole[lowest]) - rel_w[rows, j]


def other_person_frames(rel_w: np.ndarray, uv: np.ndarray, detected: np.ndarray, camera: PinholeCamera,
                        max_jump_m: float, window: int = 31) -> np.ndarray:
    """(T,) bool: detected frames whose person stands (horizontally) over ``max_jump_m`` from the median
    position of the detections within +-``window`` // 2 detected frames around it."""
    idx = np.flatnonzero(detected)
    out = np.zeros(len(detected), bool)
    if len(idx) < 3 or max_jump_m <= 0:
        return out
    root = _floor_root(rel_w[idx], uv[idx], camera)[:, :2]
    finite = np.all(np.isfinite(root), axis=1)
    half = window // 2
    for k, t in enumerate(idx):
        near = root[max(0, k - half):k + half + 1]
        near = near[np.all(np.isfinite(near), axis=1)]
        if finite[k] and len(near) >= 3 and np.linalg.norm(root[k] - np.median(near, axis=0)) > max_jump_m:
            out[t] = True
    return out


def motion_from_keypoints(kp: np.ndarray, conf: np.ndarray, flags: np.ndarray, fps: float,
                          source: str) -> HumanMotion:
    """HumanMotion from world keypoints (T, J, 3): root = pelvis keypoint, pelvis orientation
    (y = left hip - right hip made horizontal, z = up, x = y x z: the facing), height from head to heel."""
    t_count = len(kp)
    left = kp[:, KP["left_hip"]] - kp[:, KP["right_hip"]]
    left[:, 2] = 0.0
    left /= np.maximum(np.linalg.norm(left, axis=1, keepdims=True), 1e-9)
    up = np.tile([0.0, 0.0, 1.0], (t_count, 1))
    fwd = np.cross(left, up)
    rot = np.stack([fwd, left, up], axis=2)
    quat = matrix_to_quat_wxyz(rot)
    head_to_heel = kp[:, KP["head"], 2] - np.minimum(kp[:, KP["left_heel"], 2], kp[:, KP["right_heel"], 2])
    height = float(np.percentile(head_to_heel, 90) + 0.12)
    return HumanMotion(fps=fps, keypoints_world_m=kp, confidence=conf, root_pos_world_m=kp[:, KP["pelvis"]].copy(),
                       root_quat_wxyz=quat, height_m=height, frame_flags=flags, source=source)
