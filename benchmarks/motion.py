#!/usr/bin/env python3
"""Motion-estimation benchmark: rendered actions with known joints, estimated back from the video.

    source scripts/env.sh && python benchmarks/motion.py [--actions wave,squat] [--size 640x480]
        [--compare] [--keep DIR] [--out result.json]

For every body shape x camera placement x action of the vocabulary, the synthetic backend's
human (``anny``) performs the action and is rendered through that camera (pyrender, llvmpipe);
the truth is the renderer's own body joints (``segment_XX_truth.npz``: anny's bone heads, mid-hips
for the pelvis). The motion estimator (MediaPipe + the clip fit; ``--compare`` also runs it
without the fit) reads the video back, and per action the script prints:

- MPJPE (mm): mean keypoint distance in the world frame;
- PA-MPJPE (mm): the same after a per-frame similarity (Procrustes) alignment, i.e. pose error;
- root error (cm): pelvis position, world frame;
- foot skating (cm per planted frame): horizontal motion of an estimated foot point between two
  frames where the true one is planted (within 2 cm of its lowest height and slower than 5 cm/s);
- jitter ratio: mean keypoint acceleration of the estimate over that of the truth;
- hand error (mm): wrist-relative hand point error (each hand's 20 finger points minus its wrist,
  estimate against truth) over the frames where that hand was detected, and the detection rate
  (% of hand-frames); closure error: mean |estimated - true| hand closure (0 flat .. 1 fist) on
  those frames, the open/close signal the retargeter forwards;
- s/s: seconds of estimation per second of 30 fps video (this machine's cores, as set up).

Rendering time is not counted. Means at the bottom are over every (shape, camera, action).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

CAMERAS = {  # name -> (eye, target), world frame, metres; the human stands at the origin facing +x
    "default": ((2.6, -1.3, 1.3), (0.0, 0.0, 0.8)),
    "front_high": ((3.2, 0.4, 2.0), (0.0, 0.0, 0.8)),
    "left_side_low": ((0.6, 3.0, 0.9), (0.0, 0.0, 0.8)),
}
SHAPES = {  # anny phenotype (each in [0, 1]; unset = anny's average)
    "average": {},
    "tall_heavy_female": {"gender": 1.0, "height": 0.8, "weight": 0.8},
}
ACTIONS = ("wave", "raise_arm", "reach", "bend", "squat", "sit", "grasp", "place", "walk", "step", "turn", "idle")
PLANTED_HEIGHT_M = 0.02
PLANTED_SPEED_M_S = 0.05
FOOT = ("left_heel", "right_heel", "left_toe", "right_toe")


def procrustes_aligned(est: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """(T, J, 3) ``est`` after the per-frame similarity transform that best fits it to ``ref``."""
    out = np.empty_like(est)
    for t in range(len(est)):
        a, b = est[t], ref[t]
        ma, mb = a.mean(0), b.mean(0)
        a0, b0 = a - ma, b - mb
        u, s, vt = np.linalg.svd(a0.T @ b0)
        d = np.sign(np.linalg.det(u @ vt))
        dm = np.diag([1.0, 1.0, d])
        r = u @ dm @ vt
        scale = (s * np.diag(dm)).sum() / max((a0 ** 2).sum(), 1e-12)
        out[t] = scale * a0 @ r + mb
    return out


def metrics(est: np.ndarray, truth: np.ndarray, fps: float) -> dict[str, float]:
    from exoactor.skeleton import KP  # noqa: PLC0415

    err = np.linalg.norm(est - truth, axis=-1)
    pa = np.linalg.norm(procrustes_aligned(est, truth) - truth, axis=-1)
    root = np.linalg.norm(est[:, KP["pelvis"]] - truth[:, KP["pelvis"]], axis=-1)
    acc_e = np.linalg.norm(est[2:] - 2 * est[1:-1] + est[:-2], axis=-1).mean()
    acc_t = np.linalg.norm(truth[2:] - 2 * truth[1:-1] + truth[:-2], axis=-1).mean()
    idx = [KP[n] for n in FOOT]
    tz = truth[:, idx, 2]
    tv = np.linalg.norm(np.diff(truth[:, idx, :2], axis=0), axis=-1) * fps
    planted = (tz[1:] < tz.min(0) + PLANTED_HEIGHT_M) & (tz[:-1] < tz.min(0) + PLANTED_HEIGHT_M) & (tv < PLANTED_SPEED_M_S)
    slide = np.linalg.norm(np.diff(est[:, idx, :2], axis=0), axis=-1)
    return {"mpjpe_mm": 1e3 * err.mean(), "pa_mpjpe_mm": 1e3 * pa.mean(), "root_cm": 1e2 * root.mean(),
            "skate_cm": 1e2 * float(slide[planted].mean()) if planted.any() else float("nan"),
            "jitter": float(acc_e / max(acc_t, 1e-4)), "acc_true_mm": 1e3 * acc_t, "acc_est_mm": 1e3 * acc_e}


def hand_metrics(est_hands: np.ndarray | None, hand_conf: np.ndarray | None, truth_hands: np.ndarray
                 ) -> dict[str, float]:
    """Wrist-relative hand point error (mm) on detected hand-frames, detection rate (%), closure error."""
    from exoactor.motion.hands import hand_closure  # noqa: PLC0415

    if est_hands is None:
        return {"hand_mm": float("nan"), "hand_det_pct": 0.0, "closure_err": float("nan")}
    seen = hand_conf > 0
    rel_e = est_hands[..., 1:, :] - est_hands[..., :1, :]
    rel_t = truth_hands[..., 1:, :] - truth_hands[..., :1, :]
    err = np.linalg.norm(rel_e - rel_t, axis=-1).mean(-1)
    closure = np.abs(hand_closure(est_hands) - hand_closure(truth_hands))
    return {"hand_mm": 1e3 * float(err[seen].mean()) if seen.any() else float("nan"),
            "hand_det_pct": 100.0 * float(seen.mean()),
            "closure_err": float(closure[seen].mean()) if seen.any() else float("nan")}


def render_clip(body, renderer, action: str, fps: float, background: np.ndarray, path: Path
                ) -> tuple[np.ndarray, np.ndarray]:
    from exoactor.planning.vocabulary import default_step  # noqa: PLC0415
    from exoactor.skeleton import HUMAN_KEYPOINTS  # noqa: PLC0415
    from exoactor.video.choreography import segment_poses  # noqa: PLC0415
    from exoactor.video.io import VideoWriter  # noqa: PLC0415

    poses = segment_poses([default_step(action)], 0, fps)
    truth = np.zeros((len(poses), len(HUMAN_KEYPOINTS), 3))
    hands = np.zeros((len(poses), 2, 21, 3))
    writer = VideoWriter(path, fps, renderer.camera.width, renderer.camera.height)
    try:
        for b0 in range(0, len(poses), 16):
            for k, posed in enumerate(body.pose_batch(poses[b0:b0 + 16])):
                writer.write(renderer.render(posed, background))
                truth[b0 + k] = posed.keypoints_world_m
                hands[b0 + k] = posed.hand_keypoints_world_m
    finally:
        writer.close()
    return truth, hands


def background_image(w: int, h: int) -> np.ndarray:
    """A plain room (:func:`exoactor.video.anny_body.plain_room_rgb`)."""
    from exoactor.video.anny_body import plain_room_rgb  # noqa: PLC0415

    return plain_room_rgb(w, h)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--actions", default=",".join(ACTIONS))
    ap.add_argument("--cameras", default=",".join(CAMERAS))
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--size", default="640x480", help="WxH of the rendered video (1280x720 like the remote models)")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--compare", action="store_true", help="also estimate without the clip fit")
    ap.add_argument("--keep", type=Path, help="keep the rendered videos and truths in this folder")
    ap.add_argument("--out", type=Path, help="write every figure as JSON here")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from exoactor.geometry import LookAtCalibration  # noqa: PLC0415
    from exoactor.motion.mediapipe_estimator import MediaPipeEstimator  # noqa: PLC0415
    from exoactor.progress import no_progress  # noqa: PLC0415
    from exoactor.video.anny_body import AnnyBody, OffscreenHumanRenderer  # noqa: PLC0415

    w, h = (int(v) for v in args.size.lower().split("x"))
    unknown = [a for a in args.actions.split(",") if a not in ACTIONS]
    if unknown:
        ap.error(f"unknown actions {unknown}; known: {', '.join(ACTIONS)}")
    variants = {"fit": MediaPipeEstimator(fit=True, hands=True)}
    if args.compare:
        variants["per-frame"] = MediaPipeEstimator(fit=False, hands=True)
    work = args.keep or Path(tempfile.mkdtemp(prefix="exoactor_motion_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    bg = background_image(w, h)
    rows = []
    for shape in args.shapes.split(","):
        body = AnnyBody(SHAPES[shape])
        for cam_name in args.cameras.split(","):
            eye, target = CAMERAS[cam_name]
            cam = LookAtCalibration(w, h, 50.0, eye, target).camera()
            renderer = OffscreenHumanRenderer(body, cam)
            try:
                for action in args.actions.split(","):
                    video = work / f"{shape}_{cam_name}_{action}.mp4"
                    truth, truth_hands = render_clip(body, renderer, action, args.fps, bg, video)
                    np.save(video.with_suffix(".truth.npy"), truth)
                    for variant, est in variants.items():
                        t0 = time.perf_counter()
                        try:
                            m = est.estimate(video, cam, no_progress, threading.Event())
                        except Exception as e:  # noqa: BLE001 - reported as a row
                            rows.append({"shape": shape, "camera": cam_name, "action": action, "variant": variant,
                                         "error": str(e)})
                            print(f"{shape:18s} {cam_name:14s} {action:10s} {variant:9s} FAILED: {e}", flush=True)
                            continue
                        dt = time.perf_counter() - t0
                        row = {"shape": shape, "camera": cam_name, "action": action, "variant": variant,
                               **metrics(m.keypoints_world_m, truth, args.fps),
                               **hand_metrics(m.hand_keypoints_world_m, m.hand_confidence, truth_hands),
                               "s_per_s": dt / (len(truth) / args.fps)}
                        rows.append(row)
                        print(f"{shape:18s} {cam_name:14s} {action:10s} {variant:9s} MPJPE {row['mpjpe_mm']:5.0f} "
                              f"PA {row['pa_mpjpe_mm']:4.0f} mm  root {row['root_cm']:5.1f} cm  "
                              f"skate {row['skate_cm']:4.2f} cm  jitter {row['jitter']:4.2f}  "
                              f"hand {row['hand_mm']:4.0f} mm ({row['hand_det_pct']:3.0f}%) "
                              f"closure {row['closure_err']:4.2f}  "
                              f"{row['s_per_s']:4.2f} s/s", flush=True)
            finally:
                renderer.close()
    print()
    keys = ("mpjpe_mm", "pa_mpjpe_mm", "root_cm", "skate_cm", "jitter", "hand_mm", "hand_det_pct", "closure_err",
            "s_per_s")
    for variant in variants:
        ok = [r for r in rows if r["variant"] == variant and "error" not in r]
        failed = sum(1 for r in rows if r["variant"] == variant and "error" in r)
        print(f"{variant}: mean over {len(ok)} clips ({failed} failed)")
        for action in dict.fromkeys(r["action"] for r in ok):
            sel = [r for r in ok if r["action"] == action]
            print(f"  {action:10s} " + "  ".join(f"{k} {np.nanmean([r[k] for r in sel]):6.2f}" for k in keys))
        if ok:
            print(f"  {'ALL':10s} " + "  ".join(f"{k} {np.nanmean([r[k] for r in ok]):6.2f}" for k in keys))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
