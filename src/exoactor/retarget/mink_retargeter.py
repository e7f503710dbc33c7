"""Whole-body IK retargeting with mink on the Menagerie G1.

Correspondences: pelvis (position + heading), torso (orientation), feet (position + flat,
heading), knees and elbows (position, low weight), wrists (position). The pelvis goes where the
human's goes (1:1 horizontally: the robot walks the distance the human walked), knee and foot
targets keep their offset from it scaled by the leg-length ratio; arm targets hang from the robot's own shoulders, scaled
by the arm-length ratio. Each frame warm-starts from the previous one; joint position limits
(ConfigurationLimit, kept ``joint_limit_margin_rad`` inside the limits: the same margin as the
safety layer's) and velocity limits (VelocityLimit) are enforced by the QP; feet targets never go
below the floor, and a foot the human keeps planted keeps its target where the plant began, so
estimation drift does not make the robot's feet slide. Keypoints are looked up by the names the
motion carries, which must be exactly :data:`HUMAN_KEYPOINTS` in order (anything else is refused
with a RetargetingError). Each frame's IK residual (the largest distance between a pelvis, foot
or hand target and where the IK put that body) is reported in the trajectory; a motion the robot
cannot follow (residual above ``max_ik_residual_m`` in more than 5% of its frames) is refused.
The forearms and hands keep ``self_collision_margin_m`` away from the torso and pelvis
(CollisionAvoidanceLimit on the collision geoms; a human hand resting on the belly becomes one just
in front of the robot's). Hand targets keep HIP_KEEP_OUT_M from each hip joint: the robot's hip links
bulge out beside its pelvis, where a person's hanging hands rest, and a hand inside them is pushed
off its command (upper-body tracking error 0.041 -> 0.016 rad mean in benchmarks/whole_body.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from exoactor.g1.model import joint_qpos_addresses, load_g1_model
from exoactor.geometry import matrix_to_quat_wxyz, quat_wxyz_to_matrix, rot_z, yaw_to_quat_wxyz
from exoactor.motion.clip_fit import FOOT_POINTS, detect_planted
from exoactor.motion.hands import hand_closure_signal
from exoactor.motion.human_motion import HumanMotion
from exoactor.progress import Canceled, CancelToken, ProgressCallback
from exoactor.retarget.diff_ik import BodyTask, Clearance, DifferentialIK, DifferentialIKError
from exoactor.retarget.trajectory import G1JointTrajectory, RetargetingError
from exoactor.skeleton import HUMAN_KEYPOINTS


def keypoint_index(names) -> dict[str, int]:
    """Name -> index of a motion's keypoints; RetargetingError unless they are HUMAN_KEYPOINTS in order."""
    names = tuple(str(n) for n in names)
    if names == HUMAN_KEYPOINTS:
        return {n: i for i, n in enumerate(names)}
    missing = [n for n in HUMAN_KEYPOINTS if n not in names]
    unexpected = [n for n in names if n not in HUMAN_KEYPOINTS]
    dup = sorted({n for n in names if names.count(n) > 1})
    parts = [f"missing {missing}"] if missing else []
    parts += [f"unexpected {unexpected}"] if unexpected else []
    parts += [f"duplicated {dup}"] if dup else []
    if not parts:
        i = next(i for i, (a, b) in enumerate(zip(names, HUMAN_KEYPOINTS)) if a != b)
        parts = [f"misordered: position {i} is {names[i]!r}, expected {HUMAN_KEYPOINTS[i]!r}"]
    raise RetargetingError(f"motion keypoint names do not match HUMAN_KEYPOINTS ({len(names)} names): "
                           f"{'; '.join(parts)}")


ARM_BODIES = ("elbow_link", "wrist_roll_link", "wrist_pitch_link", "wrist_yaw_link")
"""Per side (``left_``/``right_``): the arm links kept away from the torso and pelvis."""
TRUNK_BODIES = ("torso_link", "pelvis")


def arm_torso_geom_pairs(model) -> list[tuple[list[int], list[int]]]:
    """Collision geom ids: (one arm's forearm and hand links, torso and pelvis) for each side."""
    import mujoco  # noqa: PLC0415

    def collision_geoms(bodies) -> list[int]:
        ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, b) for b in bodies]
        if min(ids) < 0:
            raise RetargetingError(f"the robot model lacks one of the bodies {list(bodies)}")
        return [g for g in range(model.ngeom) if model.geom_bodyid[g] in ids
                and (model.geom_contype[g] or model.geom_conaffinity[g])]

    trunk = collision_geoms(TRUNK_BODIES)
    return [(collision_geoms([f"{side}_{b}" for b in ARM_BODIES]), trunk) for side in ("left", "right")]


def _frame(z_axis: np.ndarray, y_hint: np.ndarray) -> np.ndarray:
    z = z_axis / np.linalg.norm(z_axis)
    y = y_hint - z * float(y_hint @ z)
    y /= max(np.linalg.norm(y), 1e-9)
    return np.stack([np.cross(y, z), y, z], axis=1)


@dataclass(frozen=True)
class _LowerBodyMap:
    """Human world point -> robot world point for pelvis, knees and feet.

    Horizontally the robot's pelvis goes where the human's goes (1:1: a walk of 1 m in the video is
    a walk of 1 m, and the robot reaches what the human reached in the scene); knees and feet keep
    their offset from the pelvis scaled by the leg-length ratio ``s_xy``. Vertically heights above
    the ankle scale by ``s_z``."""

    s_xy: float
    s_z: float
    human_ankle_z: float
    robot_ankle_z: float

    def map(self, p: np.ndarray, pelvis: np.ndarray) -> np.ndarray:
        """(..., 3) human points and the human pelvis at the same frames -> robot points."""
        out = np.empty(np.broadcast_shapes(p.shape, pelvis.shape))
        out[..., :2] = pelvis[..., :2] + self.s_xy * (p[..., :2] - pelvis[..., :2])
        out[..., 2] = self.robot_ankle_z + self.s_z * (p[..., 2] - self.human_ankle_z)
        return out


TASKS = (  # name, robot body, position cost, orientation cost
    ("pelvis", "pelvis", 1.0, 1.0), ("torso", "torso_link", 0.0, 0.6),
    ("left_foot", "left_ankle_roll_link", 2.0, 0.5), ("right_foot", "right_ankle_roll_link", 2.0, 0.5),
    ("left_knee", "left_knee_link", 0.2, 0.0), ("right_knee", "right_knee_link", 0.2, 0.0),
    ("left_elbow", "left_elbow_link", 0.3, 0.0), ("right_elbow", "right_elbow_link", 0.3, 0.0),
    ("left_hand", "left_wrist_yaw_link", 1.0, 0.0), ("right_hand", "right_wrist_yaw_link", 1.0, 0.0),
)
"""The IK's body tasks, in the order of :class:`DifferentialIK`'s target arrays."""
TASK = {name: i for i, (name, _, _, _) in enumerate(TASKS)}
ARM_TASKS = ("left_elbow", "left_hand", "right_elbow", "right_hand")
"""Targets hung from the robot's own shoulder each frame (human offset from the shoulder, scaled)."""
RESIDUAL_TASKS = ("pelvis", "left_foot", "right_foot", "left_hand", "right_hand")
HIP_KEEP_OUT_M = 0.135
"""A hand target (wrist_yaw_link origin) stays this far from each hip joint (hip_pitch_link origin): at
the stand pose the hand link's mesh is 4.7 cm from the hip link's at 0.162 m, so 0.135 m keeps about
2 cm of clearance beside the hip."""


class MinkRetargeter:
    """HumanMotion -> G1JointTrajectory. ``max_joint_velocity_rad_s`` bounds every joint.

    Whole-body IK on mink's Configuration (the model's kinematics) with the step solved by
    :class:`~exoactor.retarget.diff_ik.DifferentialIK` (the problem of ``mink.solve_ik`` with these
    tasks and limits, assembled in a few array operations: 3-4x fewer seconds per frame)."""

    name = "mink"

    def __init__(self, model_dir: str | None = None, max_joint_velocity_rad_s: float = 6.0,
                 iterations_per_frame: int = 3, joint_limit_margin_rad: float = 0.02,
                 max_ik_residual_m: float = 0.15, self_collision_margin_m: float = 0.02, **_ignored):
        import mink  # noqa: PLC0415
        import mujoco  # noqa: PLC0415

        self._mj = mujoco
        self.model = load_g1_model(model_dir, with_floor=False)
        self.iterations = int(iterations_per_frame)
        if self.iterations < 1:
            raise RetargetingError(f"iterations_per_frame must be >= 1, got {iterations_per_frame}")
        self.config = mink.Configuration(self.model)
        self.config.update_from_keyframe("stand")
        self.q_stand = self.config.q.copy()
        m = self.model
        self.max_joint_velocity_rad_s = float(max_joint_velocity_rad_s)
        self.joint_limit_margin_rad = float(joint_limit_margin_rad)
        self.max_ik_residual_m = float(max_ik_residual_m)
        self.self_collision_margin_m = float(self_collision_margin_m)
        self.self_collision_pairs = arm_torso_geom_pairs(m)
        """(arm geoms, torso and pelvis geoms) per side: collision geoms kept apart by the IK."""
        clearance = (Clearance(m, self.self_collision_pairs, self.self_collision_margin_m,
                               self.self_collision_margin_m + 0.05)
                     if self.self_collision_margin_m >= 0 else None)  # negative: off
        self.ik = DifferentialIK(
            m, [BodyTask(name, self._body_id(body), pos, rot, lm_damping=1.0) for name, body, pos, rot in TASKS],
            posture_cost=0.02, q_posture=self.q_stand, joint_margin_rad=self.joint_limit_margin_rad,
            max_joint_velocity_rad_s=self.max_joint_velocity_rad_s, damping=1e-3, clearance=clearance)
        self._qadr = joint_qpos_addresses(m)
        self._shoulders = np.array([self._body_id(f"{t.split('_')[0]}_shoulder_pitch_link") for t in ARM_TASKS])
        self._arm_idx = np.array([TASK[t] for t in ARM_TASKS])
        self._res_idx = np.array([TASK[t] for t in RESIDUAL_TASKS])
        self._hand_idx = [TASK["left_hand"], TASK["right_hand"]]
        hips = [self._body_id(f"{side}_hip_pitch_link") for side in ("left", "right")]
        d0 = self.config.data  # at the stand keyframe: each hip joint in the pelvis frame
        pelvis = self._body_id("pelvis")
        self._hip_offsets = (d0.xmat[pelvis].reshape(3, 3).T @ (d0.xpos[hips] - d0.xpos[pelvis]).T).T
        self._res_bodies = np.array([self.ik.tasks[i].body_id for i in self._res_idx])
        # Robot reference geometry at the stand keyframe.
        pos = self._body_pos
        self.stand_pelvis_z = float(pos("pelvis")[2])
        self.ankle_z = float(pos("left_ankle_roll_link")[2])
        self.leg_len = float(np.linalg.norm(pos("left_hip_pitch_link") - pos("left_knee_link"))
                             + np.linalg.norm(pos("left_knee_link") - pos("left_ankle_roll_link")))
        self.arm_len = float(np.linalg.norm(pos("left_shoulder_pitch_link") - pos("left_elbow_link"))
                             + np.linalg.norm(pos("left_elbow_link") - pos("left_wrist_yaw_link")))

    def _body_id(self, name: str) -> int:
        i = self._mj.mj_name2id(self.model, self._mj.mjtObj.mjOBJ_BODY, name)
        if i < 0:
            raise RetargetingError(f"the robot model has no body {name!r}")
        return int(i)

    def _body_pos(self, name: str) -> np.ndarray:
        return self.config.data.xpos[self._body_id(name)].copy()

    def retarget(self, motion: HumanMotion, progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None) -> G1JointTrajectory:
        motion.validate()
        ix = keypoint_index(motion.keypoint_names)
        k = motion.keypoints_world_m
        human_leg = np.median(np.linalg.norm(k[:, ix["left_hip"]] - k[:, ix["left_knee"]], axis=1)
                              + np.linalg.norm(k[:, ix["left_knee"]] - k[:, ix["left_ankle"]], axis=1))
        human_arm = np.median(np.linalg.norm(k[:, ix["left_shoulder"]] - k[:, ix["left_elbow"]], axis=1)
                              + np.linalg.norm(k[:, ix["left_elbow"]] - k[:, ix["left_wrist"]], axis=1))
        if not (0.2 < human_leg < 1.5 and 0.15 < human_arm < 1.2):
            raise RetargetingError(f"implausible human limb lengths (leg {human_leg:.2f} m, arm {human_arm:.2f} m)")
        human_ankle_z = float(np.median(np.minimum(k[:, ix["left_ankle"], 2], k[:, ix["right_ankle"], 2])))
        # Lower body: the pelvis 1:1 horizontally, the legs' offsets from it scaled by leg length;
        # vertical so that a standing human (pelvis one straight leg above the ankle) maps onto the
        # robot's standing pelvis height.
        lower = _LowerBodyMap(s_xy=self.leg_len / human_leg,
                              s_z=(self.stand_pelvis_z - self.ankle_z) / human_leg,
                              human_ankle_z=human_ankle_z, robot_ankle_z=self.ankle_z)
        target_pos, target_quat, arm_offsets = self._clip_targets(motion, ix, lower, self.arm_len / human_arm)
        # Start from the stand pose under the first frame's pelvis, so the first frame converges.
        q = self.q_stand.copy()
        q[0:2] = motion.root_pos_world_m[0, :2]
        q[3:7] = matrix_to_quat_wxyz(rot_z(np.arctan2(*quat_wxyz_to_matrix(motion.root_quat_wxyz[0])[[1, 0], 0])))
        self.config.update(q)
        dt = 1.0 / motion.fps
        n = motion.num_frames
        residual = np.zeros(n)
        worst = np.empty(n, dtype=object)
        out_q = np.zeros((n, 29))
        out_root = np.zeros((n, 3))
        out_quat = np.zeros((n, 4))
        data, ik = self.config.data, self.ik
        integrate = self._mj.mj_integratePos
        for t in range(n):
            if cancel is not None and cancel.is_set():
                raise Canceled("retargeting canceled")
            # the arm targets hang from where the robot's shoulders are now
            target_pos[t, self._arm_idx] = data.xpos[self._shoulders] + arm_offsets[t]
            self._keep_hands_off_the_hips(target_pos[t], target_quat[t, TASK["pelvis"]])
            try:
                ik.set_targets(target_pos[t], target_quat[t])
                step_dt = dt / self.iterations if t else dt
                for _ in range(self.iterations * (4 if t == 0 else 1)):
                    integrate(self.model, q, ik.step(data, step_dt), 1.0)
                    self.config.update(q)
            except DifferentialIKError as e:
                raise RetargetingError(f"IK failed at frame {t}: {e}") from None
            if not np.all(np.isfinite(q)):
                raise RetargetingError(f"IK diverged at frame {t}")
            errs = np.linalg.norm(data.xpos[self._res_bodies] - target_pos[t, self._res_idx], axis=1)
            w = int(np.argmax(errs))
            worst[t], residual[t] = RESIDUAL_TASKS[w], errs[w]
            out_q[t] = q[self._qadr]
            out_root[t] = q[0:3]
            out_quat[t] = q[3:7]
            if progress is not None and (t % 15 == 0 or t + 1 == n):
                progress(t + 1, n, f"retargeted {t + 1}/{n} frames")
        over = residual > self.max_ik_residual_m
        if over.mean() > 0.05:
            t = int(np.argmax(residual))
            raise RetargetingError(
                f"the robot cannot follow this motion: IK residual above {self.max_ik_residual_m:g} m in "
                f"{over.mean():.0%} of the frames, up to {residual[t]:.2f} m ({worst[t]}) at frame {t} "
                "(parameter max_ik_residual_m)")
        vel = np.gradient(out_q, dt, axis=0) if n > 1 else np.zeros_like(out_q)
        closure = (hand_closure_signal(motion.hand_keypoints_world_m, motion.hand_confidence) if motion.has_hands
                   else None)
        return G1JointTrajectory(motion.fps, out_q, vel, out_root, out_quat, ik_residual_m=residual,
                                 hand_closure=closure)

    def _keep_hands_off_the_hips(self, pos: np.ndarray, pelvis_quat_wxyz: np.ndarray) -> None:
        """Move hand targets (in ``pos``, in place) out of a sphere of HIP_KEEP_OUT_M around each hip
        joint: the G1's hip links bulge out beside the pelvis where a person's hanging hands rest.
        The hips are placed from the pelvis *target* (not the robot's current pose: a hand pushed
        from the current hips would pull the body along, and the hips with it)."""
        hips = pos[TASK["pelvis"]] + self._hip_offsets @ quat_wxyz_to_matrix(pelvis_quat_wxyz).T  # (2, 3)
        for k in self._hand_idx:
            for hip in hips:
                d = pos[k] - hip
                n = math.sqrt(float(d @ d))
                if n < HIP_KEEP_OUT_M:
                    pos[k] = hip + d * (HIP_KEEP_OUT_M / max(n, 1e-9)) if n > 1e-9 else hip + [0, 0, -HIP_KEEP_OUT_M]

    def _clip_targets(self, motion: HumanMotion, ix: dict[str, int], lower: "_LowerBodyMap",
                      s_arm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every frame's targets at once: positions (T, K, 3) and orientations (T, K, 4, wxyz) in
        TASKS order, and the arm targets' offsets from the robot's shoulders (T, 4, 3, ARM_TASKS order)."""
        k = motion.keypoints_world_m
        n = motion.num_frames
        pos = np.zeros((n, len(TASKS), 3))
        quat = np.tile([1.0, 0.0, 0.0, 0.0], (n, len(TASKS), 1))
        r_root = np.stack([quat_wxyz_to_matrix(qr) for qr in motion.root_quat_wxyz])
        yaw = np.arctan2(r_root[:, 1, 0], r_root[:, 0, 0])
        heading = yaw_to_quat_wxyz(yaw)
        human_pelvis = k[:, ix["pelvis"]]
        pos[:, TASK["pelvis"]] = lower.map(human_pelvis, human_pelvis)
        for name in ("pelvis", "left_foot", "right_foot"):
            quat[:, TASK[name]] = heading
        quat[:, TASK["torso"]] = [matrix_to_quat_wxyz(_frame(k[t, ix["neck"]] - k[t, ix["pelvis"]],
                                                             k[t, ix["left_shoulder"]] - k[t, ix["right_shoulder"]]))
                                  for t in range(n)]
        planted = detect_planted(k, motion.fps)  # (T, 4): heels, then toes
        for side in ("left", "right"):
            foot = lower.map(k[:, ix[f"{side}_ankle"]], human_pelvis)
            foot[:, 2] = np.maximum(foot[:, 2], self.ankle_z)  # never below the floor
            down = planted[:, [FOOT_POINTS.index(f"{side}_heel"), FOOT_POINTS.index(f"{side}_toe")]].any(1)
            held = None
            for t in range(n):  # a planted foot stays where the plant began: no sliding
                if down[t]:
                    if held is None:
                        held = np.array([foot[t, 0], foot[t, 1], self.ankle_z])
                    foot[t] = held
                else:
                    held = None
            pos[:, TASK[f"{side}_foot"]] = foot
            pos[:, TASK[f"{side}_knee"]] = lower.map(k[:, ix[f"{side}_knee"]], human_pelvis)
        arm = np.stack([s_arm * (k[:, ix[task.replace("hand", "wrist")]] - k[:, ix[f"{task.split('_')[0]}_shoulder"]])
                        for task in ARM_TASKS], axis=1)
        return pos, quat, arm
