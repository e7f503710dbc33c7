"""The lower body while the robot stands on its own: legs from Unitree's leg policy.

:class:`PolicyLowerBody` sits between the joint trajectory and the safety layer. While engaged
it replaces the leg commands (motors 0-11) with the policy's targets and gains, holds the waist
(12-14) stiff as the policy was trained (rigid torso), and leaves the arms to the trajectory. The
policy steps at 50 Hz (:meth:`update`, from the control thread after each LowCmd went out, so
inference never delays a command); :meth:`overlay` is applied to every 500 Hz command.

The base motion comes from the step: :func:`step_base_commands` turns a retargeted root
trajectory into body-frame [vx, vy, yaw rate] commands (zero for steps that stay in place), and
the policy's path tracker and velocity loop make the robot end where the commands lead, using
the robot's odometry (:class:`BaseOdometry`; the simulator publishes its ground truth, a real robot
needs a state estimator). Without odometry the commands go to the policy open loop (it drifts).

:func:`whole_body_reason` says why a step cannot run on the policy (it moves the pelvis down or
bends the legs: squat, bend, sit); such steps need a gantry (legs from the trajectory).
ROS-free; quaternions (w, x, y, z); frames: world (REP 103, z up), body = pelvis.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from exoactor.control.leg_policy import (LEG_KD_NM_S_PER_RAD, LEG_KP_NM_PER_RAD, NUM_LEG_JOINTS, POLICY_DT_S,
                                         WAIST_HOLD_KD_NM_S_PER_RAD, WAIST_HOLD_KP_NM_PER_RAD, BasePathTracker,
                                         LegController, LegPolicy, VelocityOuterLoop, base_velocity_commands,
                                         body_velocity)
from exoactor.finite import all_finite
from exoactor.g1.lowstate import LowStateSample
from exoactor.retarget.trajectory import G1JointTrajectory

WAIST = slice(12, 15)
LEGS = slice(0, NUM_LEG_JOINTS)

PELVIS_DROP_LIMIT_M = 0.08
"""A step whose pelvis stays this much below its start height for PELVIS_DROP_HOLD_S needs the legs
(squat, sit, bend)."""
PELVIS_DROP_HOLD_S = 0.5
"""How long a drop must last to count: shorter dips are a walk's strides (the IK lowers the pelvis
for a few tenths of a second at each long stride), which the leg policy walks with its own gait."""
WAIST_PITCH = 14
WAIST_PITCH_LIMIT_RAD = np.deg2rad(20.0)
"""A step bending the waist further than this needs the gantry."""
FALL_TILT_RAD = np.deg2rad(45.0)
"""A pelvis tilted more than this from upright: the robot has fallen."""


@dataclass(frozen=True)
class BaseOdometry:
    """Base (pelvis) state in the world: position (3,) m, orientation (4,) wxyz, linear velocity
    (3,) m/s in the world, angular velocity (3,) rad/s in the body frame."""

    pos_world_m: np.ndarray
    quat_wxyz: np.ndarray
    lin_vel_world_m_s: np.ndarray
    ang_vel_body_rad_s: np.ndarray

    def planar_pose(self) -> np.ndarray:
        """[x m, y m, heading rad] in the world."""
        w, x, y, z = np.asarray(self.quat_wxyz, dtype=np.float64).tolist()  # 50 Hz: scalar math
        heading = math.atan2(2 * (x * y + z * w), w * w + x * x - y * y - z * z)  # atan2(r10, r00) times |q|^2
        return np.array([self.pos_world_m[0], self.pos_world_m[1], heading])

    def ok(self) -> bool:
        if not all_finite(self.pos_world_m, self.lin_vel_world_m_s, self.ang_vel_body_rad_s):
            return False
        return abs(math.sqrt(float(self.quat_wxyz @ self.quat_wxyz)) - 1.0) < 0.05


def step_base_commands(traj: G1JointTrajectory) -> np.ndarray:
    """Body-frame [vx, vy, yaw rate] (T, 3) for the trajectory's frames (zeros: stay in place)."""
    return base_velocity_commands(traj.root_pos_world_m, traj.root_quat_wxyz, traj.fps)


def whole_body_reason(traj: G1JointTrajectory) -> str:
    """Why the leg policy cannot run this step ('' when it can): the pelvis goes down, or the torso
    bends far (the policy balances a nearly upright, rigid torso)."""
    z = traj.root_pos_world_m[:, 2]
    w = max(1, min(len(z), int(round(PELVIS_DROP_HOLD_S * traj.fps))))
    # the lowest height the pelvis keeps for PELVIS_DROP_HOLD_S: a walk's dips at every stride pass
    held = np.lib.stride_tricks.sliding_window_view(z, w).max(axis=1)
    drop = float(z[0] - np.min(held))
    if drop > PELVIS_DROP_LIMIT_M:
        return (f"the step lowers the pelvis by {drop:.2f} m (more than {PELVIS_DROP_LIMIT_M:.2f} m: a squat, sit "
                "or bend), which the leg policy cannot do")
    pitch = float(np.max(np.abs(traj.positions_rad[:, WAIST_PITCH])))
    if pitch > WAIST_PITCH_LIMIT_RAD:
        return (f"the step bends the torso by {np.rad2deg(pitch):.0f} deg (more than "
                f"{np.rad2deg(WAIST_PITCH_LIMIT_RAD):.0f} deg), which the leg policy cannot balance")
    return ""


def fallen_reason(sample: LowStateSample) -> str:
    tilt = sample.tilt_rad()
    return f"the robot fell (pelvis tilted {np.rad2deg(tilt):.0f} deg)" if tilt > FALL_TILT_RAD else ""


class PolicyLowerBody:
    """Thread-safe: :meth:`update` and :meth:`overlay` from the control thread, the rest from goals."""

    def __init__(self, policy: LegPolicy, closed_loop: bool = True):
        self.controller = LegController(policy, VelocityOuterLoop() if closed_loop else None,
                                        BasePathTracker() if closed_loop else None)
        self.closed_loop = closed_loop
        self._lock = threading.Lock()
        self.engaged = False
        self._q_legs: np.ndarray | None = None
        self._last_update_t = -1e9
        self._plan: np.ndarray | None = None
        self._plan_fps = 30.0
        self._plan_t0 = 0.0
        self.command = np.zeros(3)
        """The last command given to the policy (after the outer loops)."""

    def engage(self, q_legs_measured_rad: np.ndarray) -> None:
        """Start balancing from the measured leg pose (policy memory, loops and gait clock reset)."""
        with self._lock:
            if self.engaged:
                return
            self.controller.reset()
            self._q_legs = np.asarray(q_legs_measured_rad, float)[LEGS].copy()
            self._last_update_t = -1e9
            self._plan = None
            self.engaged = True

    def disengage(self) -> None:
        with self._lock:
            self.engaged = False
            self._plan = None

    def set_plan(self, cmds: np.ndarray, fps: float, t_start: float) -> None:
        """Desired body-frame commands (T, 3) at ``fps`` from ``t_start`` (monotonic s); zero after."""
        with self._lock:
            self._plan, self._plan_fps, self._plan_t0 = np.asarray(cmds, float), float(fps), float(t_start)

    def clear_plan(self) -> None:
        with self._lock:
            self._plan = None

    def desired(self, t_now: float) -> np.ndarray:
        with self._lock:
            if self._plan is None or t_now < self._plan_t0:
                return np.zeros(3)
            i = int((t_now - self._plan_t0) * self._plan_fps)
            return self._plan[i].copy() if i < len(self._plan) else np.zeros(3)

    def due(self, t_now: float) -> bool:
        return self.engaged and t_now - self._last_update_t >= POLICY_DT_S - 1e-4

    def update(self, t_now: float, sample: LowStateSample, odom: BaseOdometry | None) -> None:
        """One policy step from the newest state (call when :meth:`due`). Raises on bad input."""
        desired = self.desired(t_now)
        measured = pose = None
        if self.closed_loop:
            if odom is None or not odom.ok():
                raise ValueError("no usable odometry for the leg policy's outer loop")
            measured = body_velocity(odom.lin_vel_world_m_s, odom.ang_vel_body_rad_s, odom.quat_wxyz)
            pose = odom.planar_pose()
        tick = self.controller.tick(t_now, sample.imu_gyro_rad_s, sample.imu_quat_wxyz, sample.q_rad[LEGS],
                                    sample.dq_rad_s[LEGS], desired, measured, pose)
        with self._lock:
            if self.engaged:
                self._q_legs = tick.q_target_rad
                self.command = tick.command
            self._last_update_t = t_now

    def overlay(self, q: np.ndarray, dq: np.ndarray, kp: np.ndarray, kd: np.ndarray):
        """The command with the legs from the policy and the waist held stiff (copies)."""
        with self._lock:
            if not self.engaged or self._q_legs is None:
                return q, dq, kp, kd
            q, dq, kp, kd = q.copy(), dq.copy(), kp.copy(), kd.copy()
            q[LEGS], dq[LEGS] = self._q_legs, 0.0
            kp[LEGS], kd[LEGS] = LEG_KP_NM_PER_RAD, LEG_KD_NM_S_PER_RAD
            kp[WAIST], kd[WAIST] = WAIST_HOLD_KP_NM_PER_RAD, WAIST_HOLD_KD_NM_S_PER_RAD
            return q, dq, kp, kd
