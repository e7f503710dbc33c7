"""One step of differential inverse kinematics on a MuJoCo model: a small dense QP solved by DAQP.

The tasks and limits the retargeter gave ``mink.solve_ik`` (frame tasks, a posture task, a
configuration limit, a velocity limit, collision avoidance), assembled with a few array operations
per step instead of Python per task (the retargeter runs three steps per video frame;
``mink.solve_ik`` spent most of its time assembling). One difference in the formulation:

- Body tasks are written in the world frame, position and orientation decoupled: the position error
  is ``target - body origin`` (m) with MuJoCo's translational Jacobian, the orientation error is the
  rotation vector that turns the body onto its target (rad, world axes) with the rotational
  Jacobian. mink's frame task uses the SE(3) logarithm of the body-to-target transform instead,
  which couples a position-only task's error with the link's rotation. Both vanish at the same
  targets; the steps agree to first order near them. Rows whose cost is 0 are left out.
- As in mink, each body task adds ``lm_damping * |weighted error|^2`` to the Hessian's diagonal
  (Levenberg-Marquardt: far from a target the robot cannot reach, the step shrinks instead of
  stretching the chain), and ``damping`` is added for every degree of freedom.
- The posture task pulls the joints (not the floating base) toward ``q_posture``.
- Joint limits (kept ``joint_margin_rad`` inside the model's ranges, approached at mink's gain of
  0.95) and the velocity limit both bound each joint's step, so together they are one box: DAQP's
  simple bounds, no constraint rows.
- :class:`Clearance` rows (``G dq <= h``) are the only general constraints: mink's
  CollisionAvoidanceLimit (same pairs, broadphase, normal Jacobian and bound), with less Python.

Units: positions in m, angles in rad, ``dt`` in s; quaternions are (w, x, y, z). The step ``dq`` is
in the model's tangent space (nv); apply it with ``mj_integratePos(model, q, dq, 1.0)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LIMIT_GAIN = 0.95
"""Share of the remaining distance to a joint limit one step may cover (mink's ConfigurationLimit default)."""

NO_BOUND = 1e30
"""DAQP's infinity."""


class DifferentialIKError(RuntimeError):
    """The QP has no solution (DAQP's exit flag says why), or a target is missing or not finite."""


@dataclass(frozen=True)
class BodyTask:
    """Drive body ``body_id``'s origin to its position target and its frame to its orientation target."""

    name: str
    body_id: int
    position_cost: float
    orientation_cost: float
    lm_damping: float = 1.0


class Clearance:
    """Collision rows ``G dq <= h`` keeping geom groups apart: mink's CollisionAvoidanceLimit
    (``gain``, ``minimum_distance_m``, ``detection_distance_m``), the pairs and broadphase built by mink."""

    def __init__(self, model, geom_pairs, minimum_distance_m: float, detection_distance_m: float,
                 gain: float = 0.85):
        import mink  # noqa: PLC0415
        import mujoco  # noqa: PLC0415

        self._mj = mujoco
        self.model = model
        self._limit = mink.CollisionAvoidanceLimit(model, geom_pairs, gain=gain,
                                                   minimum_distance_from_collisions=minimum_distance_m,
                                                   collision_detection_distance=detection_distance_m)
        self.pairs = np.array(self._limit.geom_id_pairs, dtype=int).reshape(-1, 2)
        self._pair_list = [(int(a), int(b)) for a, b in self.pairs]  # Python ints: cheaper into MuJoCo
        self.minimum_distance_m = float(minimum_distance_m)
        self.detection_distance_m = float(detection_distance_m)
        self.gain = float(gain)
        self._pair_bodies = model.geom_bodyid[self.pairs]  # (pairs, 2)
        self._body_list, slots = np.unique(self._pair_bodies, return_inverse=True)
        self._pair_slots = slots.reshape(self._pair_bodies.shape)
        self._J6 = np.zeros((len(self._body_list), 6, model.nv))
        self._ft = np.zeros((len(self.pairs), 6))  # each pair's witness points (from, to)
        self._dist = np.zeros(len(self.pairs))
        self._x_axis = np.array([1.0, 0.0, 0.0])  # mju_normalize3's fallback

    def rows(self, data, dt: float) -> tuple[np.ndarray, np.ndarray] | None:
        """(G, h) for the pairs closer than the detection distance, or None.

        The distances come from ``mj_geomDistance`` pair by pair; the rows, n . (J(p2) - J(p1)), for
        all pairs at once from the bodies' Jacobians: a witness point p on body b moves with
        n . J(p) = n . Jp_b + ((p - x_b) x n) . Jr_b."""
        mj, m = self._mj, self.model
        dmax, pairs, ft_all, d_all = self.detection_distance_m, self._pair_list, self._ft, self._dist
        near = []
        for i in self._limit._broadphase_survivors(data):  # mink's (private) sphere broadphase: exact culling
            g1, g2 = pairs[i]
            j = len(near)
            d = mj.mj_geomDistance(m, data, g1, g2, dmax, ft_all[j])
            if abs(d - dmax) >= 1e-12:
                d_all[j] = d
                near.append(i)
        self.last_pairs = near  # which pairs the rows are (indices into self.pairs)
        if not near:
            return None
        J6 = self._J6
        for k, b in enumerate(self._body_list):
            mj.mj_jacBody(m, data, J6[k, :3], J6[k, 3:], b)
        p = len(near)
        dist, ft = d_all[:p], ft_all[:p].reshape(p, 2, 3)  # (P,), (P, side, xyz)
        n = ft[:, 1] - ft[:, 0]
        length = np.sqrt(np.einsum("pi,pi->p", n, n))
        n = np.where(length[:, None] > 1e-12, n / np.maximum(length, 1e-12)[:, None], self._x_axis)
        arm = ft - data.xpos[self._pair_bodies[near]]  # (P, side, 3): witness point from its body's origin
        coef = np.empty((len(near), 2, 6))
        coef[:, :, :3] = n[:, None, :]
        ax, ay, az = arm[..., 0], arm[..., 1], arm[..., 2]  # arm x n (np.cross costs more than the rest)
        nx, ny, nz = n[:, None, 0], n[:, None, 1], n[:, None, 2]
        coef[:, :, 3], coef[:, :, 4], coef[:, :, 5] = ay * nz - az * ny, az * nx - ax * nz, ax * ny - ay * nx
        coef[:, 0] *= -1.0  # J(p2) - J(p1)
        row = np.matmul(coef.reshape(-1, 1, 12), J6[self._pair_slots[near]].reshape(-1, 12, m.nv))[:, 0]
        G = np.where(dist[:, None] >= 0, -row, row)
        h = np.where(dist > self.minimum_distance_m, self.gain * (dist - self.minimum_distance_m) / dt, 0.0)
        return G, h


class DifferentialIK:
    """``step(data, dt) -> dq`` for ``tasks`` (their targets set with :meth:`set_targets`).

    ``data`` must hold the current configuration with kinematics and ``mj_comPos`` done (what
    ``mink.Configuration.update`` leaves)."""

    def __init__(self, model, tasks: list[BodyTask], *, posture_cost: float, q_posture: np.ndarray,
                 joint_margin_rad: float, max_joint_velocity_rad_s: float, damping: float = 1e-3,
                 clearance: Clearance | None = None):
        import daqp  # noqa: PLC0415
        import mujoco  # noqa: PLC0415

        self._mj, self._daqp = mujoco, daqp
        self.model = model
        self.tasks = list(tasks)
        self.names = [t.name for t in self.tasks]
        self.nv = int(model.nv)
        free, one_dof = int(mujoco.mjtJoint.mjJNT_FREE), (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
        if model.njnt < 1 or int(model.jnt_type[0]) != free:
            raise ValueError("DifferentialIK expects a floating-base model (its first joint free)")
        joints = [j for j in range(1, model.njnt) if int(model.jnt_type[j]) in one_dof]
        if len(joints) != model.njnt - 1:
            raise ValueError("DifferentialIK supports a free joint plus hinge or slide joints only")
        self._qadr = np.array([model.jnt_qposadr[j] for j in joints])
        self._dadr = np.array([model.jnt_dofadr[j] for j in joints])
        limited = np.array([bool(model.jnt_limited[j]) for j in joints])
        rng = np.array([model.jnt_range[j] for j in joints], dtype=float)
        self._lower = np.where(limited, rng[:, 0] + joint_margin_rad, -np.inf)
        self._upper = np.where(limited, rng[:, 1] - joint_margin_rad, np.inf)
        if np.any(self._lower > self._upper):
            raise ValueError(f"joint_margin_rad {joint_margin_rad} leaves an empty range for some joint")
        self.qpos_lower = np.full(model.nq, -np.inf)
        """The bounds the steps keep each joint within (indexed by qpos address; the floating base: inf)."""
        self.qpos_upper = np.full(model.nq, np.inf)
        self.qpos_lower[self._qadr], self.qpos_upper[self._qadr] = self._lower, self._upper
        self.max_joint_velocity_rad_s = float(max_joint_velocity_rad_s)
        self.posture_cost = float(posture_cost)
        self.q_posture = np.asarray(q_posture, dtype=float).copy()
        self.damping = float(damping)
        self.clearance = clearance
        k = len(self.tasks)
        self._bodies = np.array([t.body_id for t in self.tasks])
        self._cost6 = np.array([[t.position_cost] * 3 + [t.orientation_cost] * 3 for t in self.tasks], dtype=float)
        self._lm = np.array([t.lm_damping for t in self.tasks], dtype=float)
        self._rows = np.flatnonzero(self._cost6.reshape(-1) > 0)
        self._row_cost = self._cost6.reshape(-1)[self._rows]
        self._rot = np.flatnonzero(self._cost6[:, 3] > 0)
        self._pos = np.flatnonzero(self._cost6[:, 0] > 0)
        self._J = np.zeros((k, 6, self.nv))
        self._rv, self._qc = np.zeros(3), np.zeros(4)
        self._E = np.zeros((k, 6))
        self.target_pos_world_m = np.zeros((k, 3))
        self.target_quat_wxyz = np.tile([1.0, 0.0, 0.0, 0.0], (k, 1))
        m_max = self.nv + (len(clearance.pairs) if clearance is not None else 0)  # simple bounds, then rows
        self._bu = np.full(m_max, NO_BOUND)
        self._bl = np.full(m_max, -NO_BOUND)
        self._sense = np.zeros(m_max, dtype=np.intc)
        self._diag = np.full(self.nv, self.damping)
        self._diag[self._dadr] += self.posture_cost ** 2
        self._no_rows = np.zeros((0, self.nv))

    def set_targets(self, pos_world_m: np.ndarray, quat_wxyz: np.ndarray) -> None:
        """(K, 3) position and (K, 4) orientation targets, in task order (entries a task does not use are ignored)."""
        p, q = np.asarray(pos_world_m, dtype=float), np.asarray(quat_wxyz, dtype=float)
        if p.shape != self.target_pos_world_m.shape or q.shape != self.target_quat_wxyz.shape:
            raise DifferentialIKError(f"targets: expected shapes {self.target_pos_world_m.shape} and "
                                      f"{self.target_quat_wxyz.shape}, got {p.shape} and {q.shape}")
        if not (np.isfinite(p[self._pos]).all() and np.isfinite(q[self._rot]).all()):
            raise DifferentialIKError("targets: NaN or infinite values")
        np.copyto(self.target_pos_world_m, p)
        np.copyto(self.target_quat_wxyz, q)

    def step(self, data, dt: float) -> np.ndarray:
        mj, m, J, E = self._mj, self.model, self._J, self._E
        for k, b in enumerate(self._bodies):
            mj.mj_jacBody(m, data, J[k, :3], J[k, 3:], b)
        p = self._pos  # (rows of tasks without a cost stay 0: their targets are never read)
        E[p, :3] = self.target_pos_world_m[p] - data.xpos[self._bodies[p]]
        rv, qc = self._rv, self._qc
        for k in self._rot:  # the rotation vector onto the target: body axes, then world axes
            qc[:] = data.xquat[self._bodies[k]]
            mj.mju_subQuat(rv, self.target_quat_wxyz[k], qc)
            mj.mju_rotVecQuat(E[k, 3:], rv, qc)
        Ew = E * self._cost6
        W = J.reshape(-1, self.nv)[self._rows] * self._row_cost[:, None]
        e = Ew.reshape(-1)[self._rows]
        H = W.T @ W
        f = -(e @ W)
        q = data.qpos
        dadr, qadr = self._dadr, self._qadr
        c2 = self.posture_cost ** 2  # posture rows: cost * I on the joint dofs
        f[dadr] -= c2 * (self.q_posture[qadr] - q[qadr])
        H.flat[::self.nv + 1] += self._diag + float(self._lm @ np.einsum("ij,ij->i", Ew, Ew))
        # one box per joint: the limits (approached at LIMIT_GAIN) and the velocity limit
        qj = q[qadr]
        vmax = self.max_joint_velocity_rad_s * dt
        ub = np.clip(LIMIT_GAIN * (self._upper - qj), -vmax, vmax)
        lb = np.clip(LIMIT_GAIN * (self._lower - qj), -vmax, ub)  # outside its range: only back, at most vmax
        self._bu[dadr], self._bl[dadr] = ub, lb
        rows = self.clearance.rows(data, dt) if self.clearance is not None else None
        A, end = self._no_rows, self.nv
        if rows is not None:
            A, h = rows
            end += len(h)
            self._bu[self.nv:end] = h  # the rows' lower bounds stay -NO_BOUND
        x, _, flag, _ = self._daqp.solve(H, f, A, self._bu[:end], self._bl[:end], self._sense[:end])
        if flag <= 0:
            raise DifferentialIKError(f"the IK step's QP has no solution (DAQP exit flag {flag})")
        x = np.asarray(x)
        x[dadr] = np.clip(x[dadr], lb, ub)  # exactly inside the box (DAQP's tolerance is ~1e-6)
        return x
