#!/usr/bin/env python3
"""Learn how MediaPipe's 33 landmarks map onto the body's joints; writes exoactor/motion/mediapipe_regressor.py.

    source scripts/env.sh && python scripts/fit_mediapipe_regressor.py [--fps 10] [--cameras 5]

MediaPipe's landmarks are surface points (the nose, the tip of the foot, the outside of the
hips), not the joints of a body model: the ground truth here is the synthetic human's own
skeleton (anny's bone heads, the pelvis between the hip joints). Each joint becomes an affine
combination (weights summing to one, so a translation of the image moves it alike) of a few
nearby landmarks, fitted by least squares on the 2D pixel positions of every action of the
vocabulary, rendered through several random camera placements (seeded) with a body shape that
the benchmark (benchmarks/motion.py) does not use, so its figures are on held-out bodies and views.
The same weights apply to MediaPipe's 3D world landmarks. A ridge term keeps the weights near the
hand-made mapping (mid-points) where the data say little.
"""
from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "exoactor" / "motion" / "mediapipe_regressor.py"
TRAIN_SHAPE = {"gender": 0.2, "height": 0.35, "weight": 0.4}
"""A shorter, lighter, mostly male body: not one of the benchmark's shapes."""
RIDGE = 0.02
"""Weight of the pull towards the hand-made mapping, relative to the data term."""

CANDIDATES: dict[str, tuple[int, ...]] = {
    "pelvis": (23, 24, 11, 12), "left_hip": (23, 24, 11), "right_hip": (24, 23, 12),
    "spine": (11, 12, 23, 24), "neck": (11, 12, 0, 7, 8), "head": (0, 2, 5, 7, 8, 11, 12),
    "left_shoulder": (11, 12, 23), "right_shoulder": (12, 11, 24),
    "left_elbow": (13, 11, 15), "right_elbow": (14, 12, 16),
    "left_wrist": (15, 13, 17, 19, 21), "right_wrist": (16, 14, 18, 20, 22),
    "left_hand": (17, 19, 21, 15), "right_hand": (18, 20, 22, 16),
    "left_knee": (25, 23, 27), "right_knee": (26, 24, 28),
    "left_ankle": (27, 29, 31, 25), "right_ankle": (28, 30, 32, 26),
    "left_heel": (29, 27, 31), "right_heel": (30, 28, 32),
    "left_toe": (31, 29, 27), "right_toe": (32, 30, 28),
}
"""Joint -> the MediaPipe landmark indices it may combine (its own landmark first)."""


def solve_affine(a: np.ndarray, b: np.ndarray, w0: np.ndarray, ridge: float) -> np.ndarray:
    """argmin |a w - b|^2 / n + ridge |w - w0|^2  subject to  sum(w) = 1 (KKT system)."""
    n, k = a.shape
    h = a.T @ a / n + ridge * np.eye(k)
    g = a.T @ b / n + ridge * w0
    kkt = np.block([[2 * h, np.ones((k, 1))], [np.ones((1, k)), np.zeros((1, 1))]])
    sol = np.linalg.solve(kkt, np.concatenate([2 * g, [1.0]]))
    return sol[:k]


def collect(fps: float, n_cameras: int, seed: int):
    """Per frame: MediaPipe pixel landmarks (33, 2), visibility (33,), and the true joints' pixels (22, 2)."""
    import mediapipe as mp  # noqa: PLC0415

    sys.path.insert(0, str(REPO / "benchmarks"))
    from motion import ACTIONS, background_image  # noqa: PLC0415

    from exoactor.geometry import LookAtCalibration  # noqa: PLC0415
    from exoactor.planning.vocabulary import VOCABULARY, Step  # noqa: PLC0415
    from exoactor.video.anny_body import AnnyBody, OffscreenHumanRenderer  # noqa: PLC0415
    from exoactor.video.choreography import segment_poses  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    body = AnnyBody(TRAIN_SHAPE)
    w, h = 640, 480
    bg = background_image(w, h)
    lms, vis, truth_px = [], [], []
    for c in range(n_cameras):
        az = rng.uniform(-1.6, 1.6)  # around the front of the body (facing +x)
        dist = rng.uniform(2.4, 3.6)
        eye = (dist * np.cos(az), dist * np.sin(az), rng.uniform(0.8, 2.0))
        cam = LookAtCalibration(w, h, 50.0, eye, (0.0, 0.0, 0.8)).camera()
        renderer = OffscreenHumanRenderer(body, cam)
        try:
            with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1, smooth_landmarks=True,
                                        enable_segmentation=False, min_detection_confidence=0.5) as pose:
                for action in ACTIONS:
                    spec = VOCABULARY[action]
                    step = Step(action=action, side=("left", "right")[c % 2] if spec.has_side else "",
                                amount=spec.default_amount, amount_unit=spec.amount_unit,
                                direction="forward" if spec.amount_unit == "m" else "",
                                duration_s=spec.default_duration_s)
                    for posed in body.pose_batch(segment_poses([step], 0, fps)):
                        frame = renderer.render(posed, bg)
                        res = pose.process(np.ascontiguousarray(frame))
                        if res.pose_landmarks is None:
                            continue
                        lm = res.pose_landmarks.landmark
                        lms.append([[p.x * w, p.y * h] for p in lm])
                        vis.append([p.visibility for p in lm])
                        truth_px.append(cam.project(posed.keypoints_world_m)[0])
        finally:
            renderer.close()
        print(f"camera {c + 1}/{n_cameras} at {np.round(eye, 2)}: {len(lms)} frames so far", flush=True)
    return np.array(lms), np.array(vis), np.array(truth_px)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fps", type=float, default=10.0, help="frames per second sampled from each action")
    ap.add_argument("--cameras", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from exoactor.motion.mediapipe_estimator import MEDIAPIPE_SOURCES  # noqa: PLC0415
    from exoactor.skeleton import HUMAN_KEYPOINTS  # noqa: PLC0415

    lms, vis, truth = collect(args.fps, args.cameras, args.seed)
    # per frame: centre on the mid-hips and scale by the person's size, so near and far views count alike
    centre = 0.5 * (lms[:, 23] + lms[:, 24])
    size = np.linalg.norm(0.5 * (lms[:, 11] + lms[:, 12]) - centre, axis=-1)[:, None, None] + 1e-6
    x = (lms - centre[:, None]) / size
    y = (truth - centre[:, None]) / size
    weights: dict[str, dict[int, float]] = {}
    lines = []
    for j, name in enumerate(HUMAN_KEYPOINTS):
        cand = CANDIDATES[name]
        keep = vis[:, list(cand)].min(axis=1) > 0.3
        a = np.concatenate([x[keep][:, cand, 0], x[keep][:, cand, 1]])
        b = np.concatenate([y[keep][:, j, 0], y[keep][:, j, 1]])
        w0 = np.array([1.0 / len(MEDIAPIPE_SOURCES[name]) if i in MEDIAPIPE_SOURCES[name] else 0.0 for i in cand])
        w = solve_affine(a, b, w0, RIDGE)
        before = np.sqrt(np.mean((a @ w0 - b) ** 2))
        after = np.sqrt(np.mean((a @ w - b) ** 2))
        weights[name] = {int(i): round(float(v), 4) for i, v in zip(cand, w)}
        lines.append(f"{name:15s} rms {before:.3f} -> {after:.3f} (torso lengths) from {keep.sum()} frames")
    print("\n".join(lines))
    body = ",\n".join(f"    {name!r}: {{{', '.join(f'{i}: {v}' for i, v in ws.items())}}}" for name, ws in weights.items())
    args.out.write_text(
        '"""MediaPipe landmark -> body joint weights, learned by scripts/fit_mediapipe_regressor.py (do not edit).\n\n'
        "Each joint of HUMAN_KEYPOINTS is an affine combination (weights sum to one) of the MediaPipe\n"
        "Pose landmarks listed for it, fitted on 2D renders of the synthetic human\n"
        f"(shape {TRAIN_SHAPE}, {args.cameras} camera placements, seed {args.seed}, every action at {args.fps:g} fps).\n"
        '"""\n\n'
        f"WEIGHTS: dict[str, dict[int, float]] = {{\n{body},\n}}\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
