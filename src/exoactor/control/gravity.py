"""Gravity feed-forward for the arms: the torque each joint needs to hold its pose.

A position PD alone (``kp (q_des - q)``) holds an outstretched arm only with an error: the arm sags
until ``kp * error`` carries its weight (about 0.04 rad with Unitree's example arm gains). Adding
the gravity torque of the commanded pose as LowCmd's feed-forward ``tau`` removes that sag:
``tau = tau_ff + kp (q_des - q) + kd (dq_des - dq)`` on the motor.

:class:`GravityModel` computes it with MuJoCo (``qfrc_bias`` at zero velocity: the generalized
gravity force) on the G1 model the retargeter and the safety layer use, for the joints in
``joints`` (default: the arms, Unitree motor order 15-28). The legs get none: the leg policy was
trained without feed-forward, and with the feet on the floor their load depends on contacts. The
waist gets none by default either: the leg policy holds it stiff (kp 300) as it was trained, and on
the free-standing G1 its feed-forward moved the walk's end point (benchmarks/whole_body.py: walk
error 10.4% with it, 10.1% arms only, 9.6% without), while the arms' sag is what it removes.
The pelvis orientation is the commanded one (the trajectory's root, upright for ramps and holds):
the feed-forward is prepared before a motion starts, never computed in the 500 Hz loop.

Every torque still passes through the safety layer (``|tau| <= tau_max_nm``, ``tau = 0`` on a
clamped joint). ROS-free; mujoco is imported when a model is given.
"""
from __future__ import annotations

import numpy as np

from exoactor.g1.joints import ARM_INDICES, NUM_BODY_JOINTS

UPRIGHT_QUAT_WXYZ = np.array([1.0, 0.0, 0.0, 0.0])


class GravityModel:
    """Gravity torques (N*m) of G1 poses from a MuJoCo model of the robot (floating base)."""

    def __init__(self, model, joints: np.ndarray = ARM_INDICES):
        import mujoco  # noqa: PLC0415

        from exoactor.g1.model import joint_dof_addresses, joint_qpos_addresses  # noqa: PLC0415

        if model.nq < 7 or model.jnt_type[0] != mujoco.mjtJoint.mjJNT_FREE:
            raise ValueError("the gravity model needs the G1 with its floating base (a free joint first)")
        self._mujoco = mujoco
        self.model = model
        self.data = mujoco.MjData(model)
        self.joints = np.asarray(joints, dtype=np.int64)
        if self.joints.ndim != 1 or np.any(self.joints < 0) or np.any(self.joints >= NUM_BODY_JOINTS):
            raise ValueError(f"joints: expected indices 0-{NUM_BODY_JOINTS - 1} (Unitree motor order), got {joints}")
        self._qadr = joint_qpos_addresses(model)
        self._dadr = joint_dof_addresses(model)[self.joints]

    def torques(self, q_rad: np.ndarray, root_quat_wxyz: np.ndarray | None = None) -> np.ndarray:
        """(T, 29) or (29,) torques for poses ``q_rad`` (same shape, rad, Unitree motor order) with
        the pelvis at ``root_quat_wxyz`` ((T, 4) or (4,), w x y z; default upright); zero outside
        :attr:`joints`."""
        q = np.asarray(q_rad, dtype=np.float64)
        single = q.ndim == 1
        q = np.atleast_2d(q)
        if q.shape[1:] != (NUM_BODY_JOINTS,) or not np.all(np.isfinite(q)):
            raise ValueError(f"q_rad: expected finite poses of shape (T, {NUM_BODY_JOINTS}), got {np.shape(q_rad)}")
        quat = np.broadcast_to(UPRIGHT_QUAT_WXYZ if root_quat_wxyz is None else
                               np.asarray(root_quat_wxyz, dtype=np.float64), (len(q), 4))
        n = np.linalg.norm(quat, axis=1, keepdims=True)
        if not np.all(np.isfinite(n)) or np.any(n < 1e-9):
            raise ValueError("root_quat_wxyz: expected unit quaternions (w, x, y, z)")
        quat = quat / n
        mj, m, d = self._mujoco, self.model, self.data
        out = np.zeros((len(q), NUM_BODY_JOINTS))
        d.qvel[:] = 0.0
        for k in range(len(q)):
            d.qpos[:] = m.qpos0
            d.qpos[3:7] = quat[k]
            d.qpos[self._qadr] = q[k]
            mj.mj_kinematics(m, d)
            mj.mj_comPos(m, d)
            mj.mj_rne(m, d, 0, d.qfrc_bias)  # no acceleration, no velocity: gravity alone
            out[k, self.joints] = d.qfrc_bias[self._dadr]
        return out[0] if single else out
