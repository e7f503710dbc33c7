"""One skeleton fitted to a whole clip: bone lengths constant over it, pose per frame, one batch solve.

Per-frame detections disagree with each other (bone lengths that change from frame to frame, a
root that follows whichever foot landmark happens to be lowest, jitter). Here a kinematic tree
over :data:`exoactor.skeleton.HUMAN_KEYPOINTS` is fitted to every frame at once:

- parameters: the root (pelvis) position per frame, a unit direction per bone per frame (a bone's
  rotation without its twist, which no keypoint can see) and one length per bone for the clip
  (left and right share it);
- data terms, weighted by the detector's confidence: the reprojection of every keypoint through
  the calibrated camera onto its detected pixel (pixels, Huber: outliers count linearly), and the
  detector's 3D bone directions as a prior (scale-free, so the detector's metric guess does not
  bias the lengths);
- physical terms: planted feet (a foot point low and slow in the initial estimate) do not slide
  and rest at their sole height, no foot point goes below the floor, and the acceleration of
  every keypoint is penalised (Huber: quadratic for jitter, linear for real fast moves): a batch
  solve over the clip, so smoothing adds no lag;
- joint limits: knees do not bend forwards.

The solve is L-BFGS in ``torch`` (float64, single thread), started from the per-frame estimate.
Units: metres, seconds, world frame z up (REP 103).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exoactor.geometry import PinholeCamera
from exoactor.motion.filters import gaussian_smooth
from exoactor.skeleton import HUMAN_KEYPOINTS, KP

PARENT: dict[str, str] = {
    "left_hip": "pelvis", "right_hip": "pelvis", "spine": "pelvis", "neck": "spine", "head": "neck",
    "left_shoulder": "neck", "right_shoulder": "neck",
    **{f"{s}_{c}": f"{s}_{p}" for s in ("left", "right") for c, p in (
        ("elbow", "shoulder"), ("wrist", "elbow"), ("hand", "wrist"), ("knee", "hip"), ("ankle", "knee"),
        ("heel", "ankle"), ("toe", "ankle"))},
}
"""Kinematic tree of the fit: child keypoint -> parent keypoint (the pelvis is the root)."""

BONES: tuple[tuple[str, str], ...] = tuple((PARENT[c], c) for c in HUMAN_KEYPOINTS if c in PARENT)
"""(parent, child) per bone, parents before children (HUMAN_KEYPOINTS lists parents first)."""

FOOT_POINTS = ("left_heel", "right_heel", "left_toe", "right_toe")
SOLE_HEIGHT_M = {"left_heel": 0.03, "right_heel": 0.03, "left_toe": 0.02, "right_toe": 0.02}
"""Height above the floor of foot landmarks when the foot is planted."""

HINGES = (("left_hip", "left_knee", "left_ankle"), ("right_hip", "right_knee", "right_ankle"))
"""(proximal, joint, distal): a knee bends backwards only (the shank turns away from the body's
facing relative to the thigh); a bend the other way beyond ~10 deg is penalised. Elbows are left
free: which way one flexes depends on the upper arm's twist, which keypoints do not show."""


def _length_key(child: str) -> str:
    return child.removeprefix("left_").removeprefix("right_")


@dataclass(frozen=True)
class FitWeights:
    """The scale of each term's residual: a residual of one sigma costs as much as a keypoint one
    ``reprojection_px`` off its detection. Each term is a mean over its frames and points."""

    reprojection_px: float = 3.0
    """Detected keypoint pixel noise; residuals beyond 2 sigma count linearly (outliers)."""
    direction: float = 0.2
    """Detected 3D bone direction noise (difference of unit vectors, ~11 deg)."""
    acceleration_m: float = 0.002
    """Keypoint acceleration per frame^2 (m) allowed at one sigma: 0.002 m at 30 fps is 1.8 m/s^2."""
    acceleration_huber: float = 1.0
    """Beyond this many sigmas a keypoint's acceleration costs linearly, not quadratically (Huber):
    detector jitter (small, everywhere) is removed as firmly as before while a real fast move (a
    wave's turn, tens of m/s^2) is not cut short. 0 = quadratic. On the 72 benchmark clips (640x480)
    against the quadratic cost at 0.004 m: jitter ratio 1.44 -> 1.05, PA-MPJPE 57.7 -> 57.4 mm."""
    contact_step_m: float = 0.002
    """Motion of a planted foot point between frames (m)."""
    contact_height_m: float = 0.01
    """Height of a planted foot point above its sole height (m)."""
    floor_m: float = 0.003
    """Depth of a foot point below its sole height (m)."""
    knee_bend: float = 0.05
    """Knee bent forwards beyond 10 deg (difference of unit vectors along the facing)."""


@dataclass
class ClipFit:
    """Result of :func:`fit_clip`."""

    keypoints_world_m: np.ndarray
    """(T, J, 3) fitted keypoints, HUMAN_KEYPOINTS order."""
    bone_lengths_m: dict[str, float]
    """Length per bone, by child keypoint name (left and right equal)."""
    planted: np.ndarray
    """(T, 4) bool: FOOT_POINTS planted in the frame (detected from the initial estimate)."""
    reprojection_px: np.ndarray
    """(T,) confidence-weighted mean reprojection error per frame, pixels."""
    iterations: int


def detect_planted(keypoints_world_m: np.ndarray, fps: float, height_margin_m: float = 0.05,
                   speed_m_s: float = 0.25, window_s: float = 0.1) -> np.ndarray:
    """(T, 4) bool per FOOT_POINTS: within ``height_margin_m`` of the point's lowest height in the
    clip (or its sole height), the height smoothed over ``window_s``, and moving slower than
    ``speed_m_s`` horizontally, the speed a difference over +-``window_s`` (one-sided at the ends):
    per-frame detections jitter too much for frame-to-frame differences."""
    idx = [KP[n] for n in FOOT_POINTS]
    raw = np.asarray(keypoints_world_m, dtype=np.float64)[:, idx]
    t_count = len(raw)
    z = gaussian_smooth(raw[..., 2], window_s * fps)
    sole = np.array([SOLE_HEIGHT_M[n] for n in FOOT_POINTS])
    floor = np.maximum(np.minimum(z.min(axis=0), sole + 0.05), sole)  # a raised clip still has a floor
    k = max(1, int(round(window_s * fps)))
    t = np.arange(t_count)
    hi, lo = np.minimum(t + k, t_count - 1), np.maximum(t - k, 0)
    span_s = np.maximum(hi - lo, 1)[:, None] / fps
    speed = np.linalg.norm(raw[hi, :, :2] - raw[lo, :, :2], axis=-1) / span_s
    return (z < floor[None] + height_margin_m) & (speed < speed_m_s)


class TemporalPreconditioner:
    """A change of variables that makes the clip fit's smoothness term well conditioned.

    The acceleration term couples each trajectory's frames through ``D2^T D2`` (D2: second
    differences); its condition number grows like T^4, and L-BFGS on the raw trajectories needed
    over 1000 iterations to converge on a 5 s clip (stopped at 300, the fit kept a third of its
    jitter). Trajectories are written ``y = L^-T z`` with ``L L^T = I + c D2^T D2`` (banded Cholesky,
    bandwidth 2): in ``z`` the smoothness term's Hessian is about the identity. ``O(T)`` time and
    memory for any clip length (a 300 s clip is 9000 frames). Time is the first axis everywhere.
    """

    def __init__(self, frames: int, strength: float):
        from scipy.linalg import cholesky_banded  # noqa: PLC0415

        if frames < 2 or not strength >= 0:
            raise ValueError(f"expected frames >= 2 and strength >= 0, got {frames} and {strength}")
        d2 = np.array([1.0, -2.0, 1.0])
        band = np.zeros((3, frames))  # lower banded form of I + c D2^T D2: band[d, i] = M[i + d, i]
        band[0] = 1.0
        for r in range(frames - 2):  # each second difference (rows r, r+1, r+2 of D2^T D2)
            for a in range(3):
                for b in range(a + 1):
                    band[a - b, r + b] += strength * d2[a] * d2[b]
        self.lower = cholesky_banded(band, lower=True)  # lower[d, i] = L[i + d, i]
        upper = np.zeros_like(self.lower)  # L^T in solve_banded's (0, 2) form: upper[2 - d, j] = L[j, j - d]
        for d in range(3):
            upper[2 - d, d:] = self.lower[d, :frames - d]
        self.upper = upper
        self.frames = frames
        self._solve = None  # the torch autograd Function, made on first use (torch is imported lazily)

    def to_z(self, y: np.ndarray) -> np.ndarray:
        """z = L^T y for y (T, ...)."""
        y2 = np.asarray(y, dtype=np.float64).reshape(self.frames, -1)
        z = self.lower[0][:, None] * y2
        for d in (1, 2):
            z[:-d] += self.lower[d, :self.frames - d][:, None] * y2[d:]
        return z.reshape(np.shape(y))

    def from_z(self, z):
        """y = L^-T z for a torch tensor z (T, N), differentiable (its gradient is L^-1 applied)."""
        if self._solve is None:
            self._solve = self._make_solve()
        return self._solve.apply(z)

    def _make_solve(self):
        import torch  # noqa: PLC0415
        from scipy.linalg import solve_banded  # noqa: PLC0415

        upper, lower = self.upper, self.lower

        def solve(form, band, x):  # NaN passes through (to fit_clip's own divergence check)
            return torch.from_numpy(solve_banded(form, band, x.detach().numpy(), check_finite=False)).to(x.dtype)

        class _Solve(torch.autograd.Function):
            @staticmethod
            def forward(ctx, zz):
                return solve((0, 2), upper, zz)

            @staticmethod
            def backward(ctx, grad):
                return solve((2, 0), lower, grad)

        return _Solve


def bone_chains() -> np.ndarray:
    """(J, B) 0/1: ``[j, b]`` is 1 when bone ``b`` of :data:`BONES` lies on the path from the pelvis to
    joint ``j`` (joint = pelvis + the sum of those bones' vectors)."""
    out = np.zeros((len(HUMAN_KEYPOINTS), len(BONES)))
    bone_of_child = {c: b for b, (_p, c) in enumerate(BONES)}
    for j, name in enumerate(HUMAN_KEYPOINTS):
        while name in bone_of_child:
            b = bone_of_child[name]
            out[j, b] = 1.0
            name = BONES[b][0]
    return out


def fit_clip(init_keypoints_world_m: np.ndarray, detected_rel_world_m: np.ndarray, pixels_uv: np.ndarray,
             confidence: np.ndarray, camera: PinholeCamera, fps: float, weights: FitWeights = FitWeights(),
             iterations: int = 200, precondition: float | tuple[float, float] = (100.0, 5.0)) -> ClipFit:
    """Fit the skeleton to a clip.

    init_keypoints_world_m: (T, J, 3) per-frame world estimate to start from (gaps already filled).
    detected_rel_world_m: (T, J, 3) detector 3D keypoints, any origin, world axes (directions used).
    pixels_uv: (T, J, 2) detected pixels; confidence: (T, J) in [0, 1] (0 for frames without a person).
    iterations: L-BFGS iterations at most. precondition: the :class:`TemporalPreconditioner` strength
    for the root and for the bone directions (one number: both; 0 = off). Measured on 8 clips (640x480,
    2 shapes, 3 cameras): unpreconditioned at 300 iterations PA-MPJPE 71.9 mm, jitter 1.90; (100, 5) at
    200 iterations 66.7 mm, 1.39, in two thirds of the time (a converged fit, 2000 iterations: 67.0, 1.09);
    those figures are with the earlier quadratic acceleration cost (0.004 m).
    """
    import torch  # noqa: PLC0415

    init = np.asarray(init_keypoints_world_m, dtype=np.float64)
    t_count, j_count = init.shape[:2]
    for name, arr, shape in (("detected_rel_world_m", detected_rel_world_m, (t_count, j_count, 3)),
                             ("pixels_uv", pixels_uv, (t_count, j_count, 2)),
                             ("confidence", confidence, (t_count, j_count))):
        if np.shape(arr) != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {np.shape(arr)}")
    if j_count != len(HUMAN_KEYPOINTS) or t_count < 2:
        raise ValueError(f"expected (T >= 2, {len(HUMAN_KEYPOINTS)}, 3) keypoints, got {init.shape}")
    if not np.all(np.isfinite(init)):
        raise ValueError("init_keypoints_world_m contains NaN or Inf")

    torch.set_num_threads(1)
    dt = torch.float64
    parent_idx = [KP[p] for p, _ in BONES]
    child_idx = [KP[c] for _, c in BONES]
    keys = sorted({_length_key(c) for _, c in BONES})
    key_of_bone = torch.tensor([keys.index(_length_key(c)) for _, c in BONES])

    vec0 = init[:, child_idx] - init[:, parent_idx]                           # (T, B, 3)
    len0 = np.linalg.norm(vec0, axis=-1)
    med = np.array([np.median(len0[:, [b for b, (_, c) in enumerate(BONES) if _length_key(c) == k]])
                    for k in keys])
    n_time = 3 + len(BONES) * 3  # per frame: the root, then each bone's direction
    c_root, c_dirs = (precondition, precondition) if np.isscalar(precondition) else precondition
    pre_root = TemporalPreconditioner(t_count, c_root) if c_root > 0 else None
    pre_dirs = TemporalPreconditioner(t_count, c_dirs) if c_dirs > 0 else None
    r0 = init[:, KP["pelvis"]]
    d0 = (vec0 / np.maximum(len0[..., None], 1e-6)).reshape(t_count, -1)
    x = torch.tensor(np.concatenate([(pre_root.to_z(r0) if pre_root else r0).ravel(),
                                     (pre_dirs.to_z(d0) if pre_dirs else d0).ravel(),
                                     np.log(np.maximum(med, 0.01))]), dtype=dt, requires_grad=True)

    def unpack(v):
        r = v[:t_count * 3].view(t_count, 3)
        d = v[t_count * 3:t_count * n_time].view(t_count, n_time - 3)
        r = pre_root.from_z(r) if pre_root else r
        d = pre_dirs.from_z(d) if pre_dirs else d
        return r, d.reshape(t_count, len(BONES), 3), v[t_count * n_time:]

    det = np.nan_to_num(np.asarray(detected_rel_world_m, dtype=np.float64))
    dvec = det[:, child_idx] - det[:, parent_idx]
    dnorm = np.linalg.norm(dvec, axis=-1, keepdims=True)
    det_dir = torch.tensor(dvec / np.maximum(dnorm, 1e-9), dtype=dt)
    conf = torch.tensor(np.clip(np.nan_to_num(confidence), 0.0, 1.0), dtype=dt)   # (T, J)
    bone_conf = torch.minimum(conf[:, parent_idx], conf[:, child_idx]) * torch.tensor(
        (dnorm[..., 0] > 1e-6).astype(float), dtype=dt)
    uv = torch.tensor(np.nan_to_num(np.asarray(pixels_uv, dtype=np.float64)), dtype=dt)
    cam_pos = torch.tensor(camera.pos_world_m, dtype=dt)
    cam_rot = torch.tensor(camera.rot_world_from_optical, dtype=dt)
    intr = torch.tensor([camera.fx, camera.fy], dtype=dt)
    ctr = torch.tensor([camera.cx, camera.cy], dtype=dt)

    planted_np = detect_planted(init, fps)
    foot_idx = [KP[n] for n in FOOT_POINTS]
    sole = torch.tensor([SOLE_HEIGHT_M[n] for n in FOOT_POINTS], dtype=dt)
    planted = torch.tensor(planted_np.astype(float), dtype=dt)
    both_planted = planted[1:] * planted[:-1]
    conf_sum = conf.sum().clamp(min=1e-9)

    chain = torch.tensor(bone_chains(), dtype=dt)  # (J, B): the bones from the pelvis to each joint

    def keypoints(r, d, ll):
        unit = d / d.norm(dim=-1, keepdim=True).clamp(min=1e-9)
        bone = unit * torch.exp(ll)[key_of_bone][None, :, None]
        return r[:, None, :] + torch.einsum("jb,tbc->tjc", chain, bone), unit

    w = weights
    huber_k = 2.0

    def energy():
        root, dirs, log_len = unpack(x)
        kp, unit = keypoints(root, dirs, log_len)
        cam = (kp - cam_pos) @ cam_rot
        z = cam[..., 2].clamp(min=0.05)
        proj = cam[..., :2] / z[..., None] * intr + ctr
        r_px = (proj - uv).norm(dim=-1)
        e = (conf * _huber(r_px / w.reprojection_px, huber_k, torch)).sum() / conf_sum
        e = e + (bone_conf * ((unit - det_dir) ** 2).sum(-1)).mean() / w.direction ** 2
        if t_count >= 3:
            acc = kp[2:] - 2 * kp[1:-1] + kp[:-2]
            if w.acceleration_huber > 0:  # the norm's gradient at 0 is undefined: keep it off 0
                a = (acc ** 2).sum(-1).add(1e-12).sqrt() / w.acceleration_m
                e = e + _huber(a, w.acceleration_huber, torch).mean()
            else:
                e = e + (acc ** 2).sum(-1).mean() / w.acceleration_m ** 2
        feet = kp[:, foot_idx]
        step = ((feet[1:] - feet[:-1]) ** 2).sum(-1)
        e = e + (both_planted * step).mean() / w.contact_step_m ** 2
        e = e + (planted * (feet[..., 2] - sole) ** 2).mean() / w.contact_height_m ** 2
        e = e + (torch.relu(sole - feet[..., 2]) ** 2).mean() / w.floor_m ** 2
        e = e + _knee_penalty(kp, torch) / w.knee_bend ** 2
        # unit directions stay near unit length (the normalisation above is scale-free; this conditions it)
        e = e + ((dirs.norm(dim=-1) - 1.0) ** 2).mean()
        return e, r_px

    opt = torch.optim.LBFGS([x], lr=1.0, max_iter=iterations, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        e, _ = energy()
        e.backward()
        return e

    opt.step(closure)
    n_iter = int(opt.state[opt._params[0]].get("n_iter", iterations))
    with torch.no_grad():
        root, dirs, log_len = unpack(x)
        kp, _ = keypoints(root, dirs, log_len)
        _, r2d = energy()
        wsum = conf.sum(-1).clamp(min=1e-9)
        reproj = ((conf * r2d).sum(-1) / wsum).numpy()
        lengths = torch.exp(log_len).numpy()
    out = kp.detach().numpy()
    if not np.all(np.isfinite(out)):
        raise FloatingPointError("the clip fit diverged (NaN keypoints)")
    return ClipFit(keypoints_world_m=out,
                   bone_lengths_m={c: float(lengths[keys.index(_length_key(c))]) for _, c in BONES},
                   planted=planted_np, reprojection_px=reproj, iterations=n_iter)


def _huber(r, k, torch):
    """r^2 up to k, then growing linearly (2 k r - k^2): residuals in sigmas, r >= 0."""
    return torch.where(r < k, r ** 2, 2 * k * r - k ** 2)


def _knee_penalty(kp, torch):
    """Knees bending forwards, relative to the pelvis facing (left hip axis x up)."""
    left = kp[:, KP["left_hip"]] - kp[:, KP["right_hip"]]
    up = torch.zeros_like(left)
    up[:, 2] = 1.0
    fwd = torch.cross(left, up, dim=-1)
    fwd = fwd / fwd.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    total = kp.new_zeros(())
    for a, b, c in HINGES:
        u = kp[:, KP[b]] - kp[:, KP[a]]
        v = kp[:, KP[c]] - kp[:, KP[b]]
        # bend direction: the distal bone's component along the facing, relative to the proximal's
        bend = ((v / v.norm(dim=-1, keepdim=True).clamp(min=1e-9)
                 - u / u.norm(dim=-1, keepdim=True).clamp(min=1e-9)) * fwd).sum(-1)
        total = total + (torch.relu(bend - 0.17) ** 2).mean()
    return total
