"""exoactor.msg <-> core types (Step, HumanMotion, G1JointTrajectory)."""
from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time as TimeMsg
from nav_msgs.msg import Odometry

from exoactor.control.balance import BaseOdometry
from exoactor.g1.joints import G1_JOINT_NAMES, NUM_BODY_JOINTS
from exoactor.motion.human_motion import HumanMotion, MotionEstimationError
from exoactor.msg import G1JointTrajectory as G1JointTrajectoryMsg
from exoactor.msg import HumanMotion as HumanMotionMsg
from exoactor.msg import StepPrompt
from exoactor.nodes.calibration_msgs import pose_from_msg, pose_msg
from exoactor.geometry import quat_wxyz_to_matrix
from exoactor.planning.vocabulary import Step
from exoactor.retarget.trajectory import G1JointTrajectory, RetargetingError

WORLD_FRAME = "world"


def step_to_msg(s: Step) -> StepPrompt:
    return StepPrompt(action=s.action, side=s.side, amount=float(s.amount), amount_unit=s.amount_unit,
                      direction=s.direction, duration_s=float(s.duration_s), prompt=s.prompt)


def step_from_msg(m: StepPrompt) -> Step:
    return Step(action=m.action, side=m.side, amount=float(m.amount), amount_unit=m.amount_unit,
                direction=m.direction, duration_s=float(m.duration_s), prompt=m.prompt)


def _clip_msg(msg_type, stamp: TimeMsg, frame_id: str, fps: float, num_frames: int, pos, quat_wxyz):
    """A clip message (HumanMotion, G1JointTrajectory) with its header, rate, length and root poses set."""
    msg = msg_type()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.fps = float(fps)
    msg.num_frames = int(num_frames)
    msg.root_pose_world = [pose_msg(p, q) for p, q in zip(pos, quat_wxyz)]
    return msg


def _root_poses(msg, t: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3) positions and (T, 4) quaternions (w, x, y, z) of a clip message's root poses."""
    poses = [pose_from_msg(p) for p in msg.root_pose_world]
    return np.array([p for p, _ in poses]).reshape(t, 3), np.array([q for _, q in poses]).reshape(t, 4)


def motion_to_msg(m: HumanMotion, stamp: TimeMsg, frame_id: str = WORLD_FRAME) -> HumanMotionMsg:
    msg = _clip_msg(HumanMotionMsg, stamp, frame_id, m.fps, m.num_frames, m.root_pos_world_m, m.root_quat_wxyz)
    msg.source = m.source
    msg.keypoint_names = list(m.keypoint_names)
    msg.keypoints_world_m = m.keypoints_world_m.astype(np.float32).ravel().tolist()
    msg.keypoint_confidence = np.asarray(m.confidence, np.float32).ravel().tolist()
    if m.has_hands:
        msg.hand_keypoints_world_m = m.hand_keypoints_world_m.astype(np.float32).ravel().tolist()
        msg.hand_confidence = m.hand_confidence.astype(np.float32).ravel().tolist()
    msg.height_m = float(m.height_m)
    msg.frame_flags = np.asarray(m.frame_flags, np.uint8).tobytes()
    return msg


def motion_from_msg(msg: HumanMotionMsg) -> HumanMotion:
    """Raises MotionEstimationError if the message is inconsistent."""
    t, j = int(msg.num_frames), len(msg.keypoint_names)

    kp = np.asarray(msg.keypoints_world_m, dtype=np.float64)
    if kp.size != t * j * 3 or len(msg.root_pose_world) != t:
        raise MotionEstimationError(f"HumanMotion message sizes do not match num_frames={t}, {j} keypoints")
    root_pos, root_quat = _root_poses(msg, t)
    flags = (np.frombuffer(bytes(msg.frame_flags), dtype=np.uint8) if len(msg.frame_flags) == t
             else np.zeros(t, np.uint8))
    hands = hand_conf = None
    if len(msg.hand_keypoints_world_m):
        hands = np.asarray(msg.hand_keypoints_world_m, np.float64)
        hand_conf = np.asarray(msg.hand_confidence, np.float64)
        if hands.size != t * 2 * 21 * 3 or hand_conf.size != t * 2:
            raise MotionEstimationError(f"HumanMotion message hand sizes do not match num_frames={t}: "
                                        f"{hands.size} hand values (expected {t * 2 * 21 * 3}), "
                                        f"{hand_conf.size} hand confidences (expected {t * 2})")
        hands, hand_conf = hands.reshape(t, 2, 21, 3), hand_conf.reshape(t, 2)
    return HumanMotion(fps=float(msg.fps), keypoints_world_m=kp.reshape(t, j, 3),
                       confidence=np.asarray(msg.keypoint_confidence, np.float64).reshape(t, j),
                       root_pos_world_m=root_pos, root_quat_wxyz=root_quat,
                       height_m=float(msg.height_m), keypoint_names=tuple(msg.keypoint_names),
                       frame_flags=flags.copy(), source=msg.source, hand_keypoints_world_m=hands,
                       hand_confidence=hand_conf)


def trajectory_to_msg(tr: G1JointTrajectory, stamp: TimeMsg, frame_id: str = WORLD_FRAME) -> G1JointTrajectoryMsg:
    msg = _clip_msg(G1JointTrajectoryMsg, stamp, frame_id, tr.fps, tr.num_frames, tr.root_pos_world_m,
                    tr.root_quat_wxyz)
    msg.joint_names = list(G1_JOINT_NAMES)
    msg.positions_rad = tr.positions_rad.astype(np.float32).ravel().tolist()
    msg.velocities_rad_s = tr.velocities_rad_s.astype(np.float32).ravel().tolist()
    if tr.hand_closure is not None:
        msg.hand_closure = tr.hand_closure.astype(np.float32).ravel().tolist()
    return msg


def trajectory_from_msg(msg: G1JointTrajectoryMsg) -> G1JointTrajectory:
    t = int(msg.num_frames)
    closure = None
    if len(msg.hand_closure):
        if len(msg.hand_closure) != 2 * t:
            raise RetargetingError(f"G1JointTrajectory hand_closure has {len(msg.hand_closure)} values, "
                                   f"expected 2 per frame ({2 * t}) or none")
        closure = np.asarray(msg.hand_closure, np.float64).reshape(t, 2)
    return G1JointTrajectory(float(msg.fps), np.asarray(msg.positions_rad, np.float64).reshape(t, NUM_BODY_JOINTS),
                             np.asarray(msg.velocities_rad_s, np.float64).reshape(t, NUM_BODY_JOINTS),
                             *_root_poses(msg, t), hand_closure=closure)


def odometry_to_msg(odom: BaseOdometry, stamp: TimeMsg, frame_id: str = WORLD_FRAME,
                    child_frame_id: str = "pelvis") -> Odometry:
    """nav_msgs/Odometry (REP 105): pose in ``frame_id``, twist in ``child_frame_id`` (the body)."""
    msg = Odometry()
    msg.header.stamp, msg.header.frame_id, msg.child_frame_id = stamp, frame_id, child_frame_id
    msg.pose.pose = pose_msg(odom.pos_world_m, odom.quat_wxyz)
    v_body = quat_wxyz_to_matrix(odom.quat_wxyz).T @ odom.lin_vel_world_m_s
    t = msg.twist.twist
    t.linear.x, t.linear.y, t.linear.z = (float(x) for x in v_body)
    t.angular.x, t.angular.y, t.angular.z = (float(x) for x in odom.ang_vel_body_rad_s)
    return msg


def odometry_from_msg(msg: Odometry) -> BaseOdometry:
    """BaseOdometry from nav_msgs/Odometry (twist in the child (body) frame, as REP 105 says)."""
    pos, quat = pose_from_msg(msg.pose.pose)
    t = msg.twist.twist
    v_body = np.array([t.linear.x, t.linear.y, t.linear.z])
    n = float(np.linalg.norm(quat))
    r = quat_wxyz_to_matrix(quat / n) if np.isfinite(n) and n > 0 else np.full((3, 3), np.nan)
    return BaseOdometry(np.asarray(pos, float), np.asarray(quat, float), r @ v_body,
                        np.array([t.angular.x, t.angular.y, t.angular.z]))
