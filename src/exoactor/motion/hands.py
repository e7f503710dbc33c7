"""Hands: 21 points per hand from MediaPipe Hands, on the body's wrists, and how closed each hand is.

Hands are a few dozen pixels wide in an exocentric video, too small for MediaPipe's palm detector
on the whole frame. :class:`MediaPipeHands` crops a square around each wrist the body estimator
found (MediaPipe Pose's wrist, pinky, index and thumb landmarks), scales it to ``crop_px`` and
runs one MediaPipe Hands tracker per side on it, so a hand is always assigned to its own wrist.
Each detection gives the hand's shape in metres (MediaPipe's hand world landmarks, camera-oriented
axes) relative to its wrist; :func:`attach_hands` turns it into world points hung on the body's
estimated wrist. Point order and sides: :data:`exoactor.skeleton.HAND_KEYPOINTS`, ``HAND_SIDES``.

MediaPipe's points are its own (trained on people's hands; its wrist is at the wrist crease), not
the body model's hand joints; the points are used as detected (a learned per-point correction in
the hand's frame did not generalise to held-out bodies and views, see benchmarks/motion.py).
"""
from __future__ import annotations

import numpy as np

from exoactor.geometry import PinholeCamera, axis_angle_to_quat_wxyz, quat_wxyz_to_matrix
from exoactor.skeleton import HAND_KEYPOINTS, HAND_SIDES

POSE_HAND_LANDMARKS = {"left": (15, 17, 19, 21), "right": (16, 18, 20, 22)}
"""MediaPipe Pose landmarks of each hand: wrist, pinky, index, thumb."""

FINGER_CHAINS = tuple(tuple(range(1 + 4 * f, 5 + 4 * f)) for f in range(1, 5))
"""The four fingers (not the thumb) as point indices from knuckle to tip."""

OPEN_RATIO, FIST_RATIO = 0.97, 0.50
"""Wrist-to-tip distance over the finger's length along its bones for a flat hand and a fist
(the synthetic human at grip 0 and 1: 0.98 and 0.49)."""


def nearest_detected(confidence: np.ndarray) -> np.ndarray | None:
    """(T,) for each frame the index of the nearest frame whose ``confidence`` (T,) is > 0, or None
    when there is none."""
    seen = np.flatnonzero(np.asarray(confidence) > 0)
    if seen.size == 0:
        return None
    return seen[np.abs(np.arange(len(confidence))[:, None] - seen[None, :]).argmin(1)]


def hand_closure(hand_points: np.ndarray) -> np.ndarray:
    """How closed each hand is, 0 (flat) to 1 (a fist): (..., 21, 3) -> (...).

    The mean over the four fingers of how much shorter the wrist-to-tip distance is than the
    finger's length along its bones; independent of the hand's size, position and orientation.
    Hands whose points all coincide (not detected) give 0."""
    p = np.asarray(hand_points, dtype=np.float64)
    if p.shape[-2:] != (len(HAND_KEYPOINTS), 3):
        raise ValueError(f"hand points must be (..., {len(HAND_KEYPOINTS)}, 3), got {p.shape}")
    ratios = []
    for chain in FINGER_CHAINS:
        pts = p[..., (0, *chain), :]
        along = np.linalg.norm(np.diff(pts, axis=-2), axis=-1).sum(-1)
        direct = np.linalg.norm(pts[..., -1, :] - pts[..., 0, :], axis=-1)
        ratios.append(np.where(along > 1e-6, direct / np.maximum(along, 1e-6), OPEN_RATIO))
    r = np.mean(ratios, axis=0)
    return np.clip((OPEN_RATIO - r) / (OPEN_RATIO - FIST_RATIO), 0.0, 1.0)


class MediaPipeHands:
    """MediaPipe Hands (the bundled full model) on a crop around each of the body's wrists.

    One tracker per side in video mode, so a hand found once is followed from frame to frame
    without running the palm detector again. A hand that was not found (hidden behind the body) is
    looked for again every ``retry_every`` frames, not every frame: the palm detector is the
    expensive part."""

    def __init__(self, min_detection_confidence: float = 0.5, crop_px: int = 256, crop_scale: float = 3.0,
                 min_crop_px: int = 48, retry_every: int = 3):
        import mediapipe as mp  # noqa: PLC0415

        if crop_px < 64:
            raise ValueError(f"hands crop_px must be >= 64, got {crop_px}")
        self.crop_px = int(crop_px)
        self.crop_scale = float(crop_scale)
        self.min_crop_px = int(min_crop_px)
        self.retry_every = max(1, int(retry_every))
        self._misses = [0] * len(HAND_SIDES)
        self._trackers = [mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=1, model_complexity=1,
                                                   min_detection_confidence=float(min_detection_confidence),
                                                   min_tracking_confidence=0.5) for _ in HAND_SIDES]

    def close(self) -> None:
        for t in self._trackers:
            t.close()

    def __enter__(self) -> "MediaPipeHands":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def detect(self, frame_rgb: np.ndarray, pose_px: np.ndarray | None, pose_visibility: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Both hands in one frame.

        frame_rgb: (H, W, 3) uint8. pose_px: (33, 2) MediaPipe Pose landmarks in this frame's
        pixels, or None (no person). Returns (rel_optical_m (2, 21, 3): points relative to the
        wrist in camera axes (x right, y down, z forward), metres; confidence (2,), 0 where the
        hand was not found; px (2, 21, 2): the points in this frame's pixels, zeros where not found)."""
        import cv2  # noqa: PLC0415

        rel = np.zeros((len(HAND_SIDES), len(HAND_KEYPOINTS), 3))
        conf = np.zeros(len(HAND_SIDES))
        px = np.zeros((len(HAND_SIDES), len(HAND_KEYPOINTS), 2))
        if pose_px is None:
            return rel, conf, px
        h, w = frame_rgb.shape[:2]
        for i, side in enumerate(HAND_SIDES):
            if self._misses[i] % self.retry_every:
                self._misses[i] += 1
                continue
            self._misses[i] += 1  # reset below when found
            idx = POSE_HAND_LANDMARKS[side]
            pts = np.asarray(pose_px)[list(idx)]
            if pose_visibility is not None and pose_visibility[idx[0]] < 0.2:
                continue
            centre = pts[1:].mean(0) * 0.7 + pts[0] * 0.3  # towards the knuckles, from the wrist
            span = float(np.linalg.norm(pts[1:] - pts[0], axis=1).max())
            size = max(self.crop_scale * span, float(self.min_crop_px))
            x0, y0 = centre - size / 2
            if x0 + size < 0 or y0 + size < 0 or x0 > w or y0 > h:
                continue
            k = self.crop_px / size  # crop pixels per frame pixel
            warp = np.array([[k, 0.0, -k * x0], [0.0, k, -k * y0]])
            crop = cv2.warpAffine(frame_rgb, warp, (self.crop_px, self.crop_px), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT)
            res = self._trackers[i].process(crop)
            if not res.multi_hand_landmarks or not res.multi_hand_world_landmarks:
                continue
            lm = np.array([[p.x, p.y] for p in res.multi_hand_landmarks[0].landmark]) * self.crop_px
            hand_px = lm / k + [x0, y0]
            if np.linalg.norm(hand_px[0] - pts[0]) > 0.6 * size:  # not this wrist's hand
                continue
            wl = np.array([[p.x, p.y, p.z] for p in res.multi_hand_world_landmarks[0].landmark])
            rel[i] = wl - wl[0]
            px[i] = hand_px
            score = res.multi_handedness[0].classification[0].score if res.multi_handedness else 1.0
            conf[i] = float(np.clip(score, 0.0, 1.0))
            self._misses[i] = 0
        return rel, conf, px


def refine_hand_rotation(rel_optical_m: np.ndarray, hand_px: np.ndarray, confidence: np.ndarray,
                         wrists_world_m: np.ndarray, camera: PinholeCamera, pixel_sigma: float = 2.0,
                         prior_rad: float = 0.35, iterations: int = 6) -> np.ndarray:
    """Turn each detected hand about its wrist until it projects onto its own 2D points.

    MediaPipe's 3D hand (``rel_optical_m`` (T, 2, 21, 3), wrist-relative, camera axes) is a guess of
    depth from one crop; its 2D points ``hand_px`` (T, 2, 21, 2, camera pixels) are what it measures
    best. Per detected hand-frame (``confidence`` (T, 2) > 0), a rotation about the body's wrist
    (``wrists_world_m`` (T, 2, 3)) is solved by Gauss-Newton: the hand's points, hung on the wrist and
    projected through the calibrated camera, should lie where they were seen relative to the wrist
    (``pixel_sigma``), with MediaPipe's own orientation as the prior (``prior_rad``: it decides the
    sign of a tilt out of the image plane, which a distant hand's image barely shows). The shape is
    kept; only its orientation changes. Returns the rotated (T, 2, 21, 3)."""
    rel = np.asarray(rel_optical_m, dtype=np.float64)
    px = np.asarray(hand_px, dtype=np.float64)
    conf = np.asarray(confidence, dtype=np.float64)
    wrists = np.asarray(wrists_world_m, dtype=np.float64)
    t = rel.shape[0]
    if (rel.shape != (t, len(HAND_SIDES), len(HAND_KEYPOINTS), 3) or px.shape != rel.shape[:-1] + (2,)
            or conf.shape != (t, len(HAND_SIDES)) or wrists.shape != (t, len(HAND_SIDES), 3)):
        raise ValueError(f"expected (T, 2, 21, 3), (T, 2, 21, 2), (T, 2), (T, 2, 3); got {rel.shape}, {px.shape}, "
                         f"{conf.shape}, {wrists.shape}")
    out = rel.copy()
    sel = (conf > 0) & np.isfinite(px).all((-1, -2)) & np.isfinite(wrists).all(-1)
    if not sel.any():
        return out
    shape = rel[sel]                                                      # (N, 21, 3)
    w_opt = (wrists[sel] - camera.pos_world_m) @ np.asarray(camera.rot_world_from_optical)  # (N, 3)
    seen = px[sel] - px[sel][:, :1]                                       # (N, 21, 2) offsets from the wrist
    f = np.array([camera.fx, camera.fy])

    def project(p):
        return p[..., :2] / np.maximum(p[..., 2:], 1e-3) * f

    def rotations(rotvec):
        return quat_wxyz_to_matrix(axis_angle_to_quat_wxyz(rotvec))

    def residual(v):  # v: rotation vector (3) and log scale (1)
        pts = w_opt[:, None] + np.exp(v[:, 3:])[:, None] * shape @ rotations(v[:, :3]).transpose(0, 2, 1)
        r2d = (project(pts[:, 1:]) - project(w_opt)[:, None] - seen[:, 1:]) / pixel_sigma
        return np.concatenate([r2d.reshape(len(v), -1), v[:, :3] / prior_rad], axis=1)

    v = np.zeros((len(shape), 4))
    eps = 1e-5
    for _ in range(iterations):
        r = residual(v)
        jac = np.stack([(residual(v + eps * np.eye(4)[k]) - r) / eps for k in range(4)], axis=-1)
        jtj = jac.transpose(0, 2, 1) @ jac
        step = np.linalg.solve(jtj + 1e-9 * np.eye(4), -(jac.transpose(0, 2, 1) @ r[..., None]))[..., 0]
        v = v + np.clip(step, -0.5, 0.5)
    out[sel] = shape @ rotations(v[:, :3]).transpose(0, 2, 1)
    return out


def attach_hands(wrists_world_m: np.ndarray, rel_optical_m: np.ndarray, confidence: np.ndarray,
                 camera: PinholeCamera, smooth_sigma_frames: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """World hand points on the body's wrists.

    wrists_world_m: (T, 2, 3) the estimated left and right wrists. rel_optical_m: (T, 2, 21, 3)
    detections relative to their wrist in camera axes; confidence (T, 2), 0 = not detected.
    Frames without a detection take the nearest detection's shape (confidence stays 0); a hand
    never detected has all its points at the wrist. The shapes are smoothed over time (Gaussian,
    ``smooth_sigma_frames``, over detected frames only). Returns ((T, 2, 21, 3), (T, 2))."""
    rel = np.asarray(rel_optical_m, dtype=np.float64) @ np.asarray(camera.rot_world_from_optical).T
    conf = np.asarray(confidence, dtype=np.float64)
    t = rel.shape[0]
    if rel.shape != (t, len(HAND_SIDES), len(HAND_KEYPOINTS), 3) or conf.shape != (t, len(HAND_SIDES)):
        raise ValueError(f"hand detections must be (T, 2, 21, 3) and (T, 2), got {rel.shape} and {conf.shape}")
    out = np.zeros_like(rel)
    smoothed = rel.copy()
    for s in range(len(HAND_SIDES)):
        nearest = nearest_detected(conf[:, s])
        if nearest is None:
            continue
        seen = np.flatnonzero(conf[:, s] > 0)
        if smooth_sigma_frames > 0 and seen.size > 1:
            d = seen[:, None] - seen[None, :]
            wgt = np.exp(-0.5 * (d / smooth_sigma_frames) ** 2)
            smoothed[seen, s] = np.einsum("ij,jkc->ikc", wgt / wgt.sum(1, keepdims=True), rel[seen, s])
        out[:, s] = smoothed[nearest, s]
    return np.asarray(wrists_world_m)[:, :, None, :] + out, conf


def hand_closure_signal(hand_points_world_m: np.ndarray, hand_confidence: np.ndarray) -> np.ndarray:
    """(T, 2) hand open/close signal from a motion's hands ((T, 2, 21, 3), (T, 2)): the closure of
    each detected frame, held from the nearest detected frame elsewhere; a hand never detected
    reads 0 (open: the safe state of a robot hand)."""
    c = hand_closure(hand_points_world_m)
    out = np.zeros_like(c)
    for s in range(c.shape[1]):
        nearest = nearest_detected(hand_confidence[:, s])
        if nearest is not None:
            out[:, s] = c[nearest, s]
    return out
