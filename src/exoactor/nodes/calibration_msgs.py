"""Camera calibration and poses on the wire: :class:`exoactor.geometry.PinholeCamera` <->
sensor_msgs/CameraInfo + geometry_msgs/Pose (the optical frame's pose in the world), and
(position, quaternion w, x, y, z) <-> geometry_msgs/Pose."""
from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time as TimeMsg
from geometry_msgs.msg import Pose
from sensor_msgs.msg import CameraInfo

from exoactor.geometry import PinholeCamera, matrix_to_quat_wxyz, quat_wxyz_to_matrix


def camera_info_msg(cam: PinholeCamera, stamp: TimeMsg, frame_id: str) -> CameraInfo:
    msg = CameraInfo()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.width, msg.height = cam.width, cam.height
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [cam.fx, 0.0, cam.cx, 0.0, cam.fy, cam.cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [cam.fx, 0.0, cam.cx, 0.0, 0.0, cam.fy, cam.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def pose_msg(pos: np.ndarray, quat_wxyz: np.ndarray) -> Pose:
    p = Pose()
    p.position.x, p.position.y, p.position.z = (float(v) for v in pos)
    p.orientation.w, p.orientation.x, p.orientation.y, p.orientation.z = (float(v) for v in quat_wxyz)
    return p


def pose_from_msg(p: Pose) -> tuple[np.ndarray, np.ndarray]:
    """(position (3,), quaternion (w, x, y, z))."""
    return (np.array([p.position.x, p.position.y, p.position.z]),
            np.array([p.orientation.w, p.orientation.x, p.orientation.y, p.orientation.z]))


def camera_from_msgs(info: CameraInfo, pose_world: Pose) -> PinholeCamera:
    """PinholeCamera from CameraInfo (intrinsics) and the optical frame's pose in the world."""
    if info.width == 0 or info.height == 0 or info.k[0] <= 0 or info.k[4] <= 0:
        raise ValueError("camera_info has no valid intrinsics")
    pos, q = pose_from_msg(pose_world)
    if np.linalg.norm(q) < 1e-6:
        raise ValueError("camera pose has a zero quaternion")
    return PinholeCamera(info.width, info.height, info.k[0], info.k[4], info.k[2], info.k[5], pos,
                         quat_wxyz_to_matrix(q))


def camera_pose_msg(cam: PinholeCamera) -> Pose:
    return pose_msg(cam.pos_world_m, matrix_to_quat_wxyz(cam.rot_world_from_optical))
