"""Rotations, poses and pinhole cameras.

Quaternion order is stated in every name: ``quat_wxyz`` (MuJoCo, SONIC, Unitree IMU) or
``quat_xyzw`` (ROS messages, SciPy). Frames follow REP 103 (x forward, y left, z up, metres);
camera *optical* frames follow REP 103's optical convention (x right, y down, z forward).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def quat_wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return np.concatenate([q[..., 1:], q[..., :1]], axis=-1)


def quat_xyzw_to_wxyz(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return np.concatenate([q[..., 3:], q[..., :3]], axis=-1)


def quat_wxyz_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions (w, x, y, z) -> (..., 3, 3) rotation matrices."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def axis_angle_to_quat_wxyz(aa: np.ndarray) -> np.ndarray:
    """(..., 3) rotation vectors (axis times angle, rad) -> (..., 4) quaternions (w, x, y, z)."""
    aa = np.asarray(aa, dtype=np.float64)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    half = 0.5 * angle
    scale = np.where(angle > 1e-12, np.sin(half) / np.where(angle > 1e-12, angle, 1.0), 0.5)
    return np.concatenate([np.cos(half), aa * scale], axis=-1)


def matrix_to_quat_wxyz(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 4) quaternions (w, x, y, z), w >= 0."""
    m = np.asarray(m, dtype=np.float64)
    flat = m.reshape(-1, 3, 3)
    out = np.empty((flat.shape[0], 4))
    for i, r in enumerate(flat):
        tr = np.trace(r)
        if tr > 0:
            s = np.sqrt(tr + 1.0) * 2
            out[i] = [0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
        elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
            s = np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2]) * 2
            out[i] = [(r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s]
        elif r[1, 1] > r[2, 2]:
            s = np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2]) * 2
            out[i] = [(r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s]
        else:
            s = np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1]) * 2
            out[i] = [(r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s]
    out *= np.where(out[:, :1] < 0, -1.0, 1.0)
    return out.reshape(m.shape[:-2] + (4,))


def quat_mul_wxyz(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` of (..., 4) quaternions (w, x, y, z): rotation ``b`` first, then ``a``."""
    aw, ax, ay, az = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bw, bx, by, bz = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], -1)


def quat_rotate_wxyz(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(..., 3) vectors ``v`` rotated by (..., 4) unit quaternions ``q`` (w, x, y, z)."""
    q, v = np.asarray(q, dtype=np.float64), np.asarray(v, dtype=np.float64)
    t = 2.0 * np.cross(q[..., 1:], v)
    return v + q[..., :1] * t + np.cross(q[..., 1:], t)


def matrix_to_rpy(r: np.ndarray) -> np.ndarray:
    """(3, 3) rotation -> (roll, pitch, yaw) rad, fixed axes x, y, z: ``r = rot_z(yaw) @ rot_y(pitch) @ rot_x(roll)``
    (URDF ``rpy``, Unitree IMU ``rpy``)."""
    r = np.asarray(r, dtype=np.float64)
    return np.array([np.arctan2(r[2, 1], r[2, 2]), -np.arcsin(np.clip(r[2, 0], -1, 1)), np.arctan2(r[1, 0], r[0, 0])])


def yaw_to_quat_wxyz(yaw_rad: np.ndarray) -> np.ndarray:
    """Rotation about +z by ``yaw_rad`` as (..., 4) quaternions (w, x, y, z)."""
    yaw = np.asarray(yaw_rad, dtype=np.float64)
    return np.stack([np.cos(yaw / 2), np.zeros_like(yaw), np.zeros_like(yaw), np.sin(yaw / 2)], -1)


def rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


@dataclass(frozen=True)
class PinholeCamera:
    """A calibrated camera: intrinsics (pixels) and the optical frame's pose in the world.

    ``rot_world_from_optical`` (3, 3) maps optical-frame vectors (x right, y down, z forward)
    into the world frame; ``pos_world_m`` (3,) is the optical centre in the world, metres.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    pos_world_m: np.ndarray
    rot_world_from_optical: np.ndarray

    @classmethod
    def look_at(cls, width: int, height: int, fovy_deg: float, eye_world_m, target_world_m) -> "PinholeCamera":
        """A camera at ``eye`` looking at ``target`` with world z up in the image."""
        eye = np.asarray(eye_world_m, dtype=np.float64)
        fwd = np.asarray(target_world_m, dtype=np.float64) - eye
        fwd /= np.linalg.norm(fwd)
        right = np.cross(fwd, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(fwd, right)
        f = 0.5 * height / np.tan(np.radians(fovy_deg) / 2)
        return cls(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0, eye,
                   np.stack([right, down, fwd], axis=1))

    def at_size(self, width: int, height: int) -> "PinholeCamera":
        """The same camera (field of view, pose) for images of ``width`` x ``height``; ValueError if
        the aspect differs by more than 2%."""
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        if abs(sx - sy) > 0.02:
            raise ValueError(f"video aspect {width}x{height} does not match the camera calibration "
                             f"{self.width}x{self.height}")
        return PinholeCamera(width, height, self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5,
                             (self.cy + 0.5) * sy - 0.5, self.pos_world_m, self.rot_world_from_optical)

    @property
    def fovy_deg(self) -> float:
        return float(np.degrees(2 * np.arctan(0.5 * self.height / self.fy)))

    def project(self, points_world_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(..., 3) world points -> ((..., 2) pixel coordinates u, v; (...,) depth in metres)."""
        p = (np.asarray(points_world_m) - self.pos_world_m) @ self.rot_world_from_optical
        z = p[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = np.stack([self.fx * p[..., 0] / z + self.cx, self.fy * p[..., 1] / z + self.cy], -1)
        return uv, z

    def pixel_ray_world(self, uv: np.ndarray) -> np.ndarray:
        """(..., 2) pixels -> (..., 3) unit ray directions in the world frame."""
        uv = np.asarray(uv, dtype=np.float64)
        d = np.stack([(uv[..., 0] - self.cx) / self.fx, (uv[..., 1] - self.cy) / self.fy,
                      np.ones(uv.shape[:-1])], -1)
        d = d @ self.rot_world_from_optical.T
        return d / np.linalg.norm(d, axis=-1, keepdims=True)

    def intersect_horizontal_plane(self, uv: np.ndarray, z_world_m: np.ndarray | float) -> np.ndarray:
        """World points where the rays through pixels ``uv`` meet the plane z = ``z_world_m``.

        Returns (..., 3); NaN where a ray does not hit the plane in front of the camera.
        """
        d = self.pixel_ray_world(uv)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (np.asarray(z_world_m) - self.pos_world_m[2]) / d[..., 2]
        t = np.where(t > 0, t, np.nan)
        return self.pos_world_m + d * t[..., None]


@dataclass(frozen=True)
class LookAtCalibration:
    """An exocentric camera given as image size, vertical field of view (square pixels, centred
    principal point), position and the point it looks at, in the world (m)."""

    width: int
    height: int
    fovy_deg: float
    eye_world_m: tuple[float, float, float]
    target_world_m: tuple[float, float, float]

    def camera(self, width: int | None = None, height: int | None = None) -> PinholeCamera:
        """The calibrated camera (optionally at another image size, same field of view and pose)."""
        return PinholeCamera.look_at(width or self.width, height or self.height, self.fovy_deg,
                                     self.eye_world_m, self.target_world_m)


DEFAULT_CALIBRATION = LookAtCalibration(640, 480, 50.0, (2.6, -1.3, 1.3), (0.0, 0.0, 0.8))
"""The offline scene's exocentric camera, the one definition: the simulator renders through it and
the camera node's file/device sources assume it unless told otherwise (``config/params.yaml``
repeats the values so they can be edited; a unit test keeps them equal)."""
