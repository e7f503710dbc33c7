"""SMPL / SMPL-H / SMPL-X parameters -> the project's body joints, through ``smplx`` and the user's model files.

The body models are licence-gated (smpl.is.tue.mpg.de, smpl-x.is.tue.mpg.de): the user points
``model_dir`` at the folder ``smplx.create`` expects (``smpl/SMPL_NEUTRAL.pkl``,
``smplx/SMPLX_NEUTRAL.npz``, ...). Parameters are per frame, axis-angle (radians) in the model's
own frame: ``global_orient`` (T, 3), ``body_pose`` (T, 63 for SMPL-H/SMPL-X's 21 body joints or
T, 69 for SMPL's 23), ``betas`` (T, B) or (B,), ``transl`` (T, 3) metres.

:data:`SMPL_TO_HUMAN` says which model joint (or mesh vertex, for the heels) each of
:data:`exoactor.skeleton.HUMAN_KEYPOINTS` is; the pelvis is the midpoint of the hip joints, as
in the synthetic renderer's truth. :meth:`SmplBody.fit` goes the other way: the parameters whose
joints best match a clip of HUMAN_KEYPOINTS (a HumanMotion, for tools that take SMPL input).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from exoactor.skeleton import HUMAN_KEYPOINTS

SMPL_BODY_JOINTS = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist")
"""The 22 joints every SMPL-family model starts its joint list with, in order."""

SMPL_TO_HUMAN: dict[str, str] = {
    "left_hip": "left_hip", "right_hip": "right_hip", "spine": "spine2", "neck": "neck", "head": "head",
    "left_shoulder": "left_shoulder", "right_shoulder": "right_shoulder", "left_elbow": "left_elbow",
    "right_elbow": "right_elbow", "left_wrist": "left_wrist", "right_wrist": "right_wrist",
    "left_hand": "left_hand", "right_hand": "right_hand", "left_knee": "left_knee", "right_knee": "right_knee",
    "left_ankle": "left_ankle", "right_ankle": "right_ankle", "left_heel": "LHeel", "right_heel": "RHeel",
    "left_toe": "left_foot", "right_toe": "right_foot",
}
"""HUMAN_KEYPOINTS name -> SMPL joint name (``left_hand``: SMPL's hand joint, the middle finger's
base on SMPL-H/SMPL-X) or smplx vertex-id name (heels). The pelvis: mid hip joints."""

_HAND_JOINT = {"smpl": (22, 23), "smplh": (37, 52), "smplx": (28, 43)}
"""(left, right) joint index of the hand point per model type (SMPL-H: 22 + 15 left hand joints)."""


class SmplModelError(RuntimeError):
    """The body model could not be loaded or the parameters do not fit it (user-facing)."""


@dataclass
class SmplParams:
    """One clip of SMPL-family parameters (see the module docstring for shapes and units)."""

    global_orient: np.ndarray
    body_pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray

    def __post_init__(self) -> None:
        self.global_orient = _as_2d("global_orient", self.global_orient, 3)
        t = len(self.global_orient)
        self.body_pose = _as_2d("body_pose", self.body_pose, None)
        self.transl = _as_2d("transl", self.transl, 3)
        betas = np.asarray(self.betas, dtype=np.float64)
        if betas.ndim == 1:
            betas = np.tile(betas, (t, 1))
        self.betas = _as_2d("betas", betas, None)
        for name in ("body_pose", "betas", "transl"):
            if len(getattr(self, name)) != t:
                raise SmplModelError(f"{name} has {len(getattr(self, name))} frames, global_orient {t}")
        if self.body_pose.shape[1] not in (63, 69):
            raise SmplModelError(f"body_pose must have 63 (SMPL-H/SMPL-X) or 69 (SMPL) values per frame, "
                                 f"got {self.body_pose.shape[1]}")
        for name in ("global_orient", "body_pose", "betas", "transl"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise SmplModelError(f"{name} contains NaN or Inf")

    @property
    def num_frames(self) -> int:
        return len(self.global_orient)

    @classmethod
    def from_dict(cls, d: dict) -> "SmplParams":
        """From a dict with global_orient, body_pose, betas, transl (numpy arrays)."""
        return cls(global_orient=d["global_orient"], body_pose=d["body_pose"], betas=d["betas"], transl=d["transl"])


def _as_2d(name: str, value, width: int | None) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 3 and a.shape[-1] == 3:  # (T, J, 3) axis-angle per joint
        a = a.reshape(len(a), -1)
    if a.ndim != 2 or (width is not None and a.shape[1] != width):
        raise SmplModelError(f"{name}: expected shape (T, {width if width is not None else 'N'}), got {a.shape}")
    return a


class SmplBody:
    """A loaded SMPL-family model (``model_type`` smpl, smplh or smplx) evaluated in batches."""

    def __init__(self, model_dir: Path | str, model_type: str = "smplx", gender: str = "neutral",
                 num_betas: int = 10):
        import torch  # noqa: PLC0415

        try:
            import smplx  # noqa: PLC0415
        except ImportError as e:
            raise SmplModelError("the smplx package is needed for SMPL-family outputs (pip install smplx)") from e
        if model_type not in _HAND_JOINT:
            raise SmplModelError(f"model_type must be one of {', '.join(_HAND_JOINT)}, got {model_type!r}")
        model_dir = Path(model_dir).expanduser()
        if not model_dir.is_dir():
            raise SmplModelError(f"body model folder {model_dir} does not exist (SMPL/SMPL-X files are "
                                 "licence-gated: download them and set the model_dir parameter)")
        self._torch = torch
        self.model_type = model_type
        kw = {"use_pca": False} if model_type in ("smplh", "smplx") else {}
        try:
            self.model = smplx.create(str(model_dir), model_type=model_type, gender=gender, num_betas=num_betas,
                                      batch_size=1, **kw)
        except (OSError, AssertionError, KeyError, ValueError, RuntimeError) as e:
            raise SmplModelError(f"cannot load the {model_type} model from {model_dir}: {e}") from e
        self.num_betas = num_betas
        ids = smplx.vertex_ids.vertex_ids["smplx" if model_type == "smplx" else "smplh"]
        self._heels = (int(ids["LHeel"]), int(ids["RHeel"]))
        self._joint_index = {name: i for i, name in enumerate(SMPL_BODY_JOINTS)}
        self._joint_index["left_hand"], self._joint_index["right_hand"] = _HAND_JOINT[model_type]

    def keypoints(self, params: SmplParams, batch: int = 256) -> np.ndarray:
        """(T, 22, 3) HUMAN_KEYPOINTS in the parameters' frame (metres)."""
        t = self._torch
        n = params.num_frames
        need = 69 if self.model_type == "smpl" else 63
        body_pose = params.body_pose
        if body_pose.shape[1] != need:
            if body_pose.shape[1] == 69 and need == 63:  # SMPL's two hand joints dropped
                body_pose = body_pose[:, :63]
            elif body_pose.shape[1] == 63 and need == 69:  # no hand rotation: zero
                body_pose = np.concatenate([body_pose, np.zeros((n, 6))], axis=1)
        betas = np.zeros((n, self.num_betas))
        k = min(self.num_betas, params.betas.shape[1])
        betas[:, :k] = params.betas[:, :k]
        out = np.empty((n, len(HUMAN_KEYPOINTS), 3))
        for b0 in range(0, n, batch):
            sl = slice(b0, min(n, b0 + batch))
            tensors = {key: t.as_tensor(v, dtype=t.float32) for key, v in (
                ("global_orient", params.global_orient[sl]), ("body_pose", body_pose[sl]), ("betas", betas[sl]),
                ("transl", params.transl[sl]))}
            with t.no_grad():
                out[sl] = self._keypoints_torch(**tensors).double().numpy()
        return out

    def _keypoints_torch(self, global_orient, body_pose, betas, transl):
        """(m, 22, 3) HUMAN_KEYPOINTS as a differentiable torch tensor from (m, ...) float32 tensors."""
        t = self._torch
        m = len(global_orient)
        kwargs = {"global_orient": global_orient, "body_pose": body_pose, "betas": betas, "transl": transl}
        zeros = {"left_hand_pose": 45, "right_hand_pose": 45} if self.model_type in ("smplh", "smplx") else {}
        if self.model_type == "smplx":
            zeros.update(jaw_pose=3, leye_pose=3, reye_pose=3,
                         expression=getattr(self.model, "num_expression_coeffs", 10))
        kwargs.update({k: t.zeros(m, w, dtype=t.float32) for k, w in zeros.items()})
        res = self.model(**kwargs, return_verts=True)
        joints, verts = res.joints, res.vertices
        index = self._joint_index
        cols = []
        for name in HUMAN_KEYPOINTS:
            if name == "pelvis":
                cols.append(0.5 * (joints[:, index["left_hip"]] + joints[:, index["right_hip"]]))
            elif name in ("left_heel", "right_heel"):
                cols.append(verts[:, self._heels[0 if name == "left_heel" else 1]])
            else:
                cols.append(joints[:, index[SMPL_TO_HUMAN[name]]])
        return t.stack(cols, dim=1)

    def fit(self, keypoints_m: np.ndarray, iterations: int = 150, pose_prior: float = 1e-4
            ) -> tuple[SmplParams, np.ndarray]:
        """Parameters whose HUMAN_KEYPOINTS best match ``keypoints_m`` ((T, 22, 3), z up, x forward:
        the world frame of a HumanMotion), and the per-frame RMS keypoint error (T,) in metres.

        One shape (betas) for the clip; per frame global_orient, body_pose, transl. Least squares
        (L-BFGS) from the standing rest pose turned to the clip's heading, with a small pull of the
        pose and shape towards zero (``pose_prior``) where the 22 points leave them free (twists)."""
        t = self._torch
        kp = np.asarray(keypoints_m, dtype=np.float64)
        if kp.ndim != 3 or kp.shape[1:] != (len(HUMAN_KEYPOINTS), 3) or len(kp) < 1:
            raise SmplModelError(f"keypoints must be (T, {len(HUMAN_KEYPOINTS)}, 3), got {kp.shape}")
        if not np.all(np.isfinite(kp)):
            raise SmplModelError("keypoints contain NaN or Inf")
        n = len(kp)
        need = 69 if self.model_type == "smpl" else 63
        ix = {name: i for i, name in enumerate(HUMAN_KEYPOINTS)}
        left = kp[:, ix["left_hip"]] - kp[:, ix["right_hip"]]
        yaw = np.arctan2(-left[:, 0], left[:, 1])  # facing = left x up
        from scipy.spatial.transform import Rotation  # noqa: PLC0415

        # SMPL's canonical axes (x left, y up, z forward) -> z up, then turned to the heading
        r0 = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        go0 = (Rotation.from_euler("z", yaw[:, None]) * Rotation.from_matrix(r0)).as_rotvec()
        zero = {"global_orient": t.as_tensor(go0[:1], dtype=t.float32), "body_pose": t.zeros(1, need),
                "betas": t.zeros(1, self.num_betas), "transl": t.zeros(1, 3)}
        with t.no_grad():
            rest_pelvis = self._keypoints_torch(**zero)[0, ix["pelvis"]].double().numpy()
        target = t.as_tensor(kp, dtype=t.float32)
        go = t.tensor(go0, dtype=t.float32, requires_grad=True)
        pose = t.zeros(n, need, requires_grad=True)
        betas = t.zeros(1, self.num_betas, requires_grad=True)
        transl = t.tensor(kp[:, ix["pelvis"]] - Rotation.from_rotvec(go0).apply(
            Rotation.from_rotvec(go0[0]).inv().apply(rest_pelvis)), dtype=t.float32, requires_grad=True)

        def loss_fn():
            pred = self._keypoints_torch(go, pose, betas.expand(n, -1), transl)
            data = ((pred - target) ** 2).sum(-1).mean()
            return data + pose_prior * ((pose ** 2).mean() + (betas ** 2).mean())

        for variables in ([go, transl], [go, pose, betas, transl]):  # placement first, then everything
            opt = t.optim.LBFGS(variables, lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe")

            def closure():
                opt.zero_grad()
                value = loss_fn()
                value.backward()
                return value

            opt.step(closure)
        with t.no_grad():
            pred = self._keypoints_torch(go, pose, betas.expand(n, -1), transl).double().numpy()
        rms = np.sqrt(((pred - kp) ** 2).sum(-1).mean(-1))
        params = SmplParams(go.detach().double().numpy(), pose.detach().double().numpy(),
                            betas.detach().double().numpy()[0], transl.detach().double().numpy())
        return params, rms


def main(argv: list[str] | None = None) -> int:
    """``python -m exoactor.motion.smpl_body MOTION.npz --model-dir DIR [--model-type smpl] [--out F]``:
    a HumanMotion (e.g. an episode's motion_XX.npz) as SMPL-family parameters (global_orient,
    body_pose, betas, transl per frame, axis-angle, in the motion's world frame; plus fps and the
    per-frame RMS keypoint error)."""
    import argparse  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from exoactor.motion.human_motion import HumanMotion, MotionEstimationError  # noqa: PLC0415

    ap = argparse.ArgumentParser(description=main.__doc__.split("\n")[1].strip())
    ap.add_argument("motion", type=Path)
    ap.add_argument("--model-dir", required=True, type=Path, help="folder with smpl/SMPL_NEUTRAL.pkl etc.")
    ap.add_argument("--model-type", default="smplx", choices=sorted(_HAND_JOINT))
    ap.add_argument("--gender", default="neutral")
    ap.add_argument("--out", type=Path, help="output .npz (default: MOTION_smpl.npz beside it)")
    args = ap.parse_args(argv)
    try:
        motion = HumanMotion.load(args.motion)
        if tuple(motion.keypoint_names) != HUMAN_KEYPOINTS:
            raise MotionEstimationError(f"{args.motion} has keypoints {motion.keypoint_names}, "
                                        f"expected {HUMAN_KEYPOINTS}")
        body = SmplBody(args.model_dir, args.model_type, args.gender)
        params, rms = body.fit(motion.keypoints_world_m)
    except (OSError, ValueError, KeyError, MotionEstimationError, SmplModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = args.out or args.motion.with_name(args.motion.stem + "_smpl.npz")
    np.savez_compressed(out, global_orient=params.global_orient, body_pose=params.body_pose, betas=params.betas[0],
                        transl=params.transl, fps=motion.fps, model_type=args.model_type, rms_error_m=rms)
    print(f"wrote {out}: {params.num_frames} frames, keypoint RMS error mean {rms.mean() * 100:.1f} cm, "
          f"max {rms.max() * 100:.1f} cm")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
