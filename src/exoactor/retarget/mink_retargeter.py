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
in front of the robot's).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exoactor.g1.joints import G1_JOINT_NAMES
from exoactor.g1.model import joint_qpos_addresses, load_g1_model
from exoactor.geometry import matrix_to_quat_wxyz, quat_wxyz_to_matrix, rot_z
from exoactor.motion.clip_fit import FOOT_POINTS, detect_planted
from exoactor.motion.hands import hand_closure_signal
from exoactor.motion.human_motion import HumanMotion
from exoactor.progress import Canceled, CancelToken, ProgressCallback
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

    def __call__(self, p: np.ndarray, pelvis: np.ndarray) -> np.ndarray:
        xy = pelvis[:2] + self.s_xy * (p[:2] - pelvis[:2])
        return np.array([xy[0], xy[1], self.robot_ankle_z + self.s_z * (p[2] - self.human_ankle_z)])


class MinkRetargeter:
    """HumanMotion -> G1JointTrajectory. ``max_joint_velocity_rad_s`` bounds every joint."""

    name = "mink"

    def __init__(self, model_dir: str | None = None, max_joint_velocity_rad_s: float = 6.0,
                 iterations_per_frame: int = 3, solver: str = "daqp", joint_limit_margin_rad: float = 0.02,
                 max_ik_residual_m: float = 0.15, self_collision_margin_m: float = 0.02, **_ignored):
        import mink  # noqa: PLC0415
        import mujoco  # noqa: PLC0415

        self._mink = mink
        self._mj = mujoco
        self.model = load_g1_model(model_dir, with_floor=False)
        self.iterations = int(iterations_per_frame)
        self.solver = solver
        self.config = mink.Configuration(self.model)
        self.config.update_from_keyframe("stand")
        self.q_stand = self.config.q.copy()
        m = self.model
        frames = {  # task: (robot body, position cost, orientation cost)
            "pelvis": ("pelvis", 1.0, 1.0), "torso": ("torso_link", 0.0, 0.6),
            "left_foot": ("left_ankle_roll_link", 2.0, 0.5), "right_foot": ("right_ankle_roll_link", 2.0, 0.5),
            "left_knee": ("left_knee_link", 0.2, 0.0), "right_knee": ("right_knee_link", 0.2, 0.0),
            "left_elbow": ("left_elbow_link", 0.3, 0.0), "right_elbow": ("right_elbow_link", 0.3, 0.0),
            "left_hand": ("left_wrist_yaw_link", 1.0, 0.0), "right_hand": ("right_wrist_yaw_link", 1.0, 0.0),
        }
        self.tasks = {name: mink.FrameTask(body, "body", position_cost=pos, orientation_cost=rot, lm_damping=1.0)
                      for name, (body, pos, rot) in frames.items()}
        self.posture = mink.PostureTask(m, cost=0.02)
        self.posture.set_target(self.q_stand)
        self.max_joint_velocity_rad_s = float(max_joint_velocity_rad_s)
        self.joint_limit_margin_rad = float(joint_limit_margin_rad)
        self.max_ik_residual_m = float(max_ik_residual_m)
        self._residual_bodies = {name: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, frames[name][0])
                                 for name in ("pelvis", "left_foot", "right_foot", "left_hand", "right_hand")}
        self._targets: dict[str, np.ndarray] = {}
        self.limits = [mink.ConfigurationLimit(m, min_distance_from_limits=self.joint_limit_margin_rad),
                       mink.VelocityLimit(m, {n: self.max_joint_velocity_rad_s for n in G1_JOINT_NAMES})]
        self.self_collision_margin_m = float(self_collision_margin_m)
        self.self_collision_pairs = arm_torso_geom_pairs(m)
        """(arm geoms, torso and pelvis geoms) per side: collision geoms kept apart by the IK."""
        if self.self_collision_margin_m >= 0:  # negative: off
            self.limits.append(mink.CollisionAvoidanceLimit(
                m, self.self_collision_pairs, minimum_distance_from_collisions=self.self_collision_margin_m,
                collision_detection_distance=self.self_collision_margin_m + 0.05))
        self._qadr = joint_qpos_addresses(m)
        # Robot reference geometry at the stand keyframe.
        pos = self._body_pos
        self.stand_pelvis_z = float(pos("pelvis")[2])
        self.ankle_z = float(pos("left_ankle_roll_link")[2])
        self.leg_len = float(np.linalg.norm(pos("left_hip_pitch_link") - pos("left_knee_link"))
                             + np.linalg.norm(pos("left_knee_link") - pos("left_ankle_roll_link")))
        self.arm_len = float(np.linalg.norm(pos("left_shoulder_pitch_link") - pos("left_elbow_link"))
                             + np.linalg.norm(pos("left_elbow_link") - pos("left_wrist_yaw_link")))

    def _body_pos(self, name: str) -> np.ndarray:
        m, d = self.model, self.config.data
        return d.xpos[self._mj.mj_name2id(m, self._mj.mjtObj.mjOBJ_BODY, name)].copy()

    def retarget(self, motion: HumanMotion, progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None) -> G1JointTrajectory:
        mink = self._mink
        motion.validate()
        ix = self._kp_index = keypoint_index(motion.keypoint_names)
        k = motion.keypoints_world_m
        human_leg = np.median(np.linalg.norm(k[:, ix["left_hip"]] - k[:, ix["left_knee"]], axis=1)
                              + np.linalg.norm(k[:, ix["left_knee"]] - k[:, ix["left_ankle"]], axis=1))
        human_arm = np.median(np.linalg.norm(k[:, ix["left_shoulder"]] - k[:, ix["left_elbow"]], axis=1)
                              + np.linalg.norm(k[:, ix["left_elbow"]] - k[:, ix["left_wrist"]], axis=1))
        if not (0.2 < human_leg < 1.5 and 0.15 < human_arm < 1.2):
            raise RetargetingError(f"implausible human limb lengths (leg {human_leg:.2f} m, arm {human_arm:.2f} m)")
        s_arm = self.arm_len / human_arm
        human_ankle_z = float(np.median(np.minimum(k[:, ix["left_ankle"], 2], k[:, ix["right_ankle"], 2])))
        # Lower body: the pelvis 1:1 horizontally, the legs' offsets from it scaled by leg length;
        # vertical so that a standing human (pelvis one straight leg above the ankle) maps onto the
        # robot's standing pelvis height.
        lower = _LowerBodyMap(s_xy=self.leg_len / human_leg,
                              s_z=(self.stand_pelvis_z - self.ankle_z) / human_leg,
                              human_ankle_z=human_ankle_z, robot_ankle_z=self.ankle_z)
        # Start from the stand pose under the first frame's pelvis, so the first frame converges.
        q = self.q_stand.copy()
        q[0:2] = motion.root_pos_world_m[0, :2]
        q[3:7] = matrix_to_quat_wxyz(rot_z(np.arctan2(*quat_wxyz_to_matrix(motion.root_quat_wxyz[0])[[1, 0], 0])))
        self.config.update(q)
        dt = 1.0 / motion.fps
        n = motion.num_frames
        planted = detect_planted(k, motion.fps)  # (T, 4): heels, then toes
        foot_planted = {side: planted[:, [FOOT_POINTS.index(f"{side}_heel"), FOOT_POINTS.index(f"{side}_toe")]].any(1)
                        for side in ("left", "right")}
        self._held_feet: dict[str, np.ndarray] = {}
        residual = np.zeros(n)
        worst = np.empty(n, dtype=object)
        out_q = np.zeros((n, 29))
        out_root = np.zeros((n, 3))
        out_quat = np.zeros((n, 4))
        tasks = list(self.tasks.values()) + [self.posture]
        for t in range(n):
            if cancel is not None and cancel.is_set():
                raise Canceled("retargeting canceled")
            self._set_targets(k[t], motion.root_quat_wxyz[t], lower, s_arm,
                              {side: bool(v[t]) for side, v in foot_planted.items()})
            iters = self.iterations * (4 if t == 0 else 1)
            for _ in range(iters):
                vel = mink.solve_ik(self.config, tasks, dt / self.iterations if t else dt, self.solver,
                                    damping=1e-3, limits=self.limits)
                self.config.integrate_inplace(vel, dt / self.iterations if t else dt)
            qt = self.config.q
            if not np.all(np.isfinite(qt)):
                raise RetargetingError(f"IK diverged at frame {t}")
            xpos = self.config.data.xpos
            errs = {name: float(np.linalg.norm(xpos[b] - self._targets[name])) for name, b in self._residual_bodies.items()}
            worst[t] = max(errs, key=errs.get)
            residual[t] = errs[worst[t]]
            out_q[t] = qt[self._qadr]
            out_root[t] = qt[0:3]
            out_quat[t] = qt[3:7]
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

    def _set_targets(self, kp: np.ndarray, root_quat_wxyz: np.ndarray, lower: "_LowerBodyMap", s_arm: float,
                     planted: dict[str, bool]) -> None:
        SE3, SO3 = self._mink.SE3, self._mink.SO3
        ix = self._kp_index
        r_root = quat_wxyz_to_matrix(root_quat_wxyz)
        heading = rot_z(np.arctan2(r_root[1, 0], r_root[0, 0]))
        human_pelvis = kp[ix["pelvis"]]
        pelvis = lower(human_pelvis, human_pelvis)
        self.tasks["pelvis"].set_target(SE3.from_rotation_and_translation(SO3.from_matrix(heading), pelvis))
        self._targets["pelvis"] = pelvis
        torso_rot = _frame(kp[ix["neck"]] - kp[ix["pelvis"]], kp[ix["left_shoulder"]] - kp[ix["right_shoulder"]])
        self.tasks["torso"].set_target(SE3.from_rotation_and_translation(SO3.from_matrix(torso_rot), np.zeros(3)))
        for side in ("left", "right"):
            foot = lower(kp[ix[f"{side}_ankle"]], human_pelvis)
            foot[2] = max(foot[2], self.ankle_z)
            if planted[side]:  # where the plant began: no sliding
                foot = self._held_feet.setdefault(side, np.array([foot[0], foot[1], self.ankle_z]))
            else:
                self._held_feet.pop(side, None)
            self.tasks[f"{side}_foot"].set_target(SE3.from_rotation_and_translation(SO3.from_matrix(heading), foot))
            self._targets[f"{side}_foot"] = foot
            knee = lower(kp[ix[f"{side}_knee"]], human_pelvis)
            self.tasks[f"{side}_knee"].set_target(SE3.from_rotation_and_translation(SO3.identity(), knee))
            shoulder = self._body_pos(f"{side}_shoulder_pitch_link")
            for task, name in ((f"{side}_elbow", f"{side}_elbow"), (f"{side}_hand", f"{side}_wrist")):
                target = shoulder + s_arm * (kp[ix[name]] - kp[ix[f"{side}_shoulder"]])
                self.tasks[task].set_target(SE3.from_rotation_and_translation(SO3.identity(), target))
                self._targets[task] = target
