"""The joint tracking controller behind ``/lowcmd``: ramp in, play, ramp to hold, damp.

ROS-free and clock-agnostic: the caller passes times in seconds. Every command passes through
:class:`exoactor.g1.safety.CommandLimits` (positions, speeds, per-tick change from the nominal
control period, gains), so nothing it returns lies outside the robot's limits; damping too.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import Enum

import numpy as np

from exoactor.control.balance import PolicyLowerBody, step_base_commands
from exoactor.control.gravity import GravityModel
from exoactor.g1.joints import NUM_BODY_JOINTS
from exoactor.g1.safety import CommandLimits
from exoactor.retarget.trajectory import G1JointTrajectory


class Phase(str, Enum):
    IDLE = "idle"          # nothing commanded yet
    RAMP_IN = "ramp_in"    # from the measured pose to the trajectory's first frame
    TRACKING = "tracking"  # playing the trajectory
    HOLDING = "holding"    # holding the last commanded pose
    TO_HOLD = "to_hold"    # ramping to the hold pose (cancel)
    DAMPING = "damping"    # kp = 0, kd = limits.damping_kd: letting go safely (lost state, fault, e-stop)


@dataclass
class JointCommand:
    """One tick: positions (29,) rad, velocities (29,) rad/s, gains (29,), number of clamped joints."""

    q_rad: np.ndarray
    dq_rad_s: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    phase: Phase
    clamped: int
    tau_nm: np.ndarray | None = None
    """Feed-forward torque (29,) N*m (gravity compensation), None = none."""


def _min_jerk(s: float) -> tuple[float, float]:
    """Position fraction and its derivative (per unit s) of a minimum-jerk profile."""
    s = min(max(s, 0.0), 1.0)
    return 10 * s**3 - 15 * s**4 + 6 * s**5, 30 * s**2 - 60 * s**3 + 30 * s**4


class JointTrackingController:
    """Thread-safe; ``tick`` is called by the control loop, the rest by action callbacks."""

    def __init__(self, limits: CommandLimits, kp: np.ndarray, kd: np.ndarray, hold_pose_rad: np.ndarray,
                 ramp_in_min_s: float = 2.0, ramp_speed_rad_s: float = 0.5,
                 lower_body: PolicyLowerBody | None = None, gravity: GravityModel | None = None):
        self.limits = limits
        self.kp = np.asarray(kp, dtype=np.float64)
        self.kd = np.asarray(kd, dtype=np.float64)
        self.hold_pose_rad = np.clip(hold_pose_rad, limits.q_min_rad, limits.q_max_rad)
        self.ramp_in_min_s = ramp_in_min_s
        self.ramp_speed_rad_s = ramp_speed_rad_s
        self.lower_body = lower_body
        """Legs from the leg policy while it is engaged (None: legs always from the trajectory)."""
        self.gravity = gravity
        """Gravity feed-forward of the commanded poses (None: position PD alone), prepared when a
        motion starts: per trajectory frame, and at both ends of every ramp."""
        self._traj_tau: np.ndarray | None = None
        self._ramp_tau = (None, None)
        self._last_tau: np.ndarray | None = None
        self._base_cmds: np.ndarray | None = None
        self._lock = threading.Lock()
        self.phase = Phase.IDLE
        self._traj: G1JointTrajectory | None = None
        self._t_phase = 0.0
        self._ramp_from = np.zeros(NUM_BODY_JOINTS)
        self._ramp_to = np.zeros(NUM_BODY_JOINTS)
        self._ramp_T = 1.0
        self._last_q: np.ndarray | None = None
        self._last_t: float | None = None
        self._limp_sent = True
        """Whether a damping command has gone out since the last stiff one (nothing sent yet: True)."""
        self.clamped_total = 0
        self._log_t: list[float] = []
        self._log_cmd: list[np.ndarray] = []
        self._log_meas: list[np.ndarray] = []

    # ---- commands from the action server -------------------------------------------------
    CONTINUE_RAMP_MIN_S = 0.25
    """Shortest ramp when the motors already hold a commanded pose (next step of a task)."""

    def _ramp_duration(self, a: np.ndarray, b: np.ndarray, min_s: float | None = None) -> float:
        floor = self.ramp_in_min_s if min_s is None else min_s
        return max(floor, float(np.max(np.abs(b - a))) / self.ramp_speed_rad_s)

    def start(self, traj: G1JointTrajectory, q_measured_rad: np.ndarray, t_now: float, ramp_in: bool = True,
              legs_from_policy: bool = False) -> float:
        """Begin a trajectory; returns the ramp-in duration (s). Raises UnsafeCommandError.

        ``legs_from_policy``: the legs balance and walk with the leg policy (engaged now if it is
        not yet), following the trajectory's base motion; else they follow the trajectory."""
        self.limits.check_finite(q_measured_rad, "measured joint positions")
        self.limits.check_finite(traj.positions_rad, "trajectory")
        lb = self.lower_body
        if legs_from_policy and lb is None:
            raise ValueError("legs_from_policy needs a lower body (leg policy)")
        with self._lock:
            # Continue from the last command while the motors still hold it: also when a stop was
            # asked for but no damping command went out before this start (an e-stop and its reset
            # within one period). Once the robot went limp it is wherever it sagged to, so ramp from
            # the measured pose.
            holding = self._last_q is not None and not self._limp_sent
            start = self._last_q if holding else np.asarray(q_measured_rad, float)
            if lb is not None:
                if legs_from_policy:
                    lb.engage(start)
                    self._base_cmds = step_base_commands(traj)
                else:
                    lb.disengage()
                    self._base_cmds = None
            target = np.clip(traj.positions_rad[0], self.limits.q_min_rad, self.limits.q_max_rad)
            self._traj = traj
            if self.gravity is not None:
                self._traj_tau = self.gravity.torques(traj.positions_rad, traj.root_quat_wxyz)
            if not holding:
                self._last_q = None  # the first command is the measured pose: no step from an old command
                self._last_tau = None
            self._log_t, self._log_cmd, self._log_meas = [], [], []
            self.clamped_total = 0
            if ramp_in or not holding:
                self._begin_ramp(Phase.RAMP_IN, start, target, t_now,
                                 min_s=self.CONTINUE_RAMP_MIN_S if holding else None)
            else:
                self._begin_tracking(t_now)
            return self._ramp_T if self.phase == Phase.RAMP_IN else 0.0

    def _begin_tracking(self, t_now: float) -> None:
        self.phase, self._t_phase = Phase.TRACKING, t_now
        if self.lower_body is not None and self._base_cmds is not None and self._traj is not None:
            self.lower_body.set_plan(self._base_cmds, self._traj.fps, t_now)

    def go_to_hold(self, t_now: float, q_measured_rad: np.ndarray | None = None) -> float:
        """Ramp from the current command to the hold pose; returns the ramp duration (s)."""
        with self._lock:
            start = self._last_q if self._last_q is not None else q_measured_rad
            if start is None:
                return 0.0
            self._traj = None
            self._traj_tau = None
            if self.lower_body is not None:
                self.lower_body.clear_plan()
            self._begin_ramp(Phase.TO_HOLD, np.asarray(start, float), self.hold_pose_rad, t_now)
            return self._ramp_T

    def damp(self) -> None:
        """Switch to damping (kp = 0): used when the robot state is lost or invalid."""
        with self._lock:
            self.phase = Phase.DAMPING
            self._traj = None
            self._traj_tau = self._last_tau = None
            if self.lower_body is not None:
                self.lower_body.disengage()

    def _begin_ramp(self, phase: Phase, a: np.ndarray, b: np.ndarray, t_now: float, min_s: float | None = None) -> None:
        self.phase = phase
        self._ramp_from, self._ramp_to = a.copy(), b.copy()
        self._ramp_T = self._ramp_duration(a, b, min_s)
        if self.gravity is not None:  # from the torque being sent (or the start pose's) to the target's
            to = self._traj_tau[0] if phase == Phase.RAMP_IN and self._traj_tau is not None else \
                self.gravity.torques(b)
            self._ramp_tau = (self._last_tau if self._last_tau is not None else self.gravity.torques(a), to)
        self._t_phase = t_now

    # ---- the control loop -----------------------------------------------------------------
    def tick(self, t_now: float) -> JointCommand | None:
        """The command for time t_now, or None while IDLE (send nothing)."""
        with self._lock:
            if self.phase == Phase.IDLE:
                return None
            if self.phase == Phase.DAMPING:
                self._limp_sent = True
                return self.damping_command()
            t = t_now - self._t_phase
            tau = self._last_tau
            if self.phase in (Phase.RAMP_IN, Phase.TO_HOLD):
                f, df = _min_jerk(t / self._ramp_T)
                q = self._ramp_from + f * (self._ramp_to - self._ramp_from)
                dq = (df / self._ramp_T) * (self._ramp_to - self._ramp_from)
                if self.gravity is not None:
                    tau = self._ramp_tau[0] + f * (self._ramp_tau[1] - self._ramp_tau[0])
                if t >= self._ramp_T:
                    if self.phase == Phase.RAMP_IN and self._traj is not None:
                        self._begin_tracking(t_now)
                    else:
                        self.phase = Phase.HOLDING
            elif self.phase == Phase.TRACKING and self._traj is not None:
                q, dq = self._traj.sample(t)
                if self._traj_tau is not None:
                    tau = self._traj.interpolate(self._traj_tau, t)
                if t >= self._traj.duration_s:
                    self.phase = Phase.HOLDING
                    dq = np.zeros(NUM_BODY_JOINTS)
            else:  # HOLDING
                q = self._last_q if self._last_q is not None else self.hold_pose_rad
                dq = np.zeros(NUM_BODY_JOINTS)
            # The step from the last command is bounded by the nominal period (limits.period_s), not
            # by the time elapsed: after a stall the command catches up at the speed limit.
            kp, kd = self.kp, self.kd
            if self.lower_body is not None:
                q, dq, kp, kd = self.lower_body.overlay(q, dq, kp, kd)
            safe = self.limits.apply(q, dq, self._last_q, kp, kd, tau)
            self.clamped_total += safe.changed
            self._last_q, self._last_t = safe.q, t_now
            self._limp_sent = False
            if tau is not None:
                self._last_tau = tau
            return JointCommand(safe.q, safe.dq, safe.kp, safe.kd, self.phase, safe.changed,
                                None if tau is None else safe.tau)

    def note_damping_sent(self) -> None:
        """The loop sent a damping command built outside :meth:`tick` (its error path)."""
        with self._lock:
            self._limp_sent = True

    def damping_command(self) -> JointCommand:
        """kp = 0, kd = damping: holds nothing, only slows the joints (also the loop's fallback)."""
        q = self._last_q if self._last_q is not None else self.hold_pose_rad
        d = self.limits.damping(q)
        return JointCommand(d.q, d.dq, d.kp, d.kd, Phase.DAMPING, 0)

    # ---- progress and logging -----------------------------------------------------------------
    def tracking_progress(self, t_now: float) -> float:
        """Fraction of the trajectory played (0 during ramp-in, 1 when holding)."""
        with self._lock:
            if self.phase == Phase.TRACKING and self._traj is not None:
                return min(1.0, (t_now - self._t_phase) / max(self._traj.duration_s, 1e-6))
            return 1.0 if self.phase == Phase.HOLDING else 0.0

    def observe(self, t_now: float, q_measured_rad: np.ndarray) -> None:
        """Record the measured pose against the current command while tracking."""
        with self._lock:
            if self.phase == Phase.TRACKING and self._last_q is not None:
                self._log_t.append(t_now)
                self._log_cmd.append(self._last_q.copy())
                self._log_meas.append(np.asarray(q_measured_rad, float).copy())

    def tracking_log(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(t (N,), commanded (N, 29), measured (N, 29)) recorded while tracking."""
        with self._lock:
            if not self._log_t:
                return np.zeros(0), np.zeros((0, NUM_BODY_JOINTS)), np.zeros((0, NUM_BODY_JOINTS))
            return np.array(self._log_t), np.array(self._log_cmd), np.array(self._log_meas)

    def tracking_rmse_rad(self) -> float:
        _, c, m = self.tracking_log()
        return float(np.sqrt(np.mean((c - m) ** 2))) if len(c) else float("nan")
