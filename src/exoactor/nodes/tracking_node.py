"""tracking_controller: serves ``/exoactor/track_motion`` and owns ``/lowcmd``.

HumanMotion -> G1 joint trajectory (whole-body IK, mink) -> unitree_hg/LowCmd at 500 Hz, ramping
in from the measured pose, through the safety layer. It sends nothing until its first goal;
afterwards it keeps holding the last pose. Cancel ramps to the hold pose; a stale /lowstate or a
motor fault switches to damping and aborts the goal.
"""
from __future__ import annotations

import collections
import threading
import time

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from exoactor.action import TrackMotion
from exoactor.control.tracker import JointTrackingController, Phase
from exoactor.g1.joints import DEFAULT_KD, DEFAULT_KP
from exoactor.g1.model import joint_ranges_rad, stand_pose_rad
from exoactor.g1.safety import CommandLimits, UnsafeCommandError
from exoactor.motion.human_motion import MotionEstimationError
from exoactor.msg import G1JointTrajectory as G1JointTrajectoryMsg
from exoactor.nodes.common import LATCHED_QOS, SENSOR_QOS, declare, spin_node
from exoactor.nodes.conversions import motion_from_msg, trajectory_to_msg
from exoactor.nodes.stage import StageServer, declare_episode_root, goal_path
from exoactor.nodes.unitree_io import LowCmdWriter, LowStateReader, import_unitree_hg
from exoactor.registry import load_backend
from exoactor.retarget import RETARGET_BACKENDS, RetargetingError
from exoactor.retarget.mink_retargeter import RetargetCanceled


class TrackingError(RuntimeError):
    """Execution cannot continue (robot state lost or faulty)."""


class TrackingCanceled(RuntimeError):
    pass


class TrackingNode(Node):
    def __init__(self):
        super().__init__("tracking_controller")
        p = lambda *a: declare(self, *a)  # noqa: E731
        backend = p("retargeter", "mink", f"retargeting backend: {', '.join(RETARGET_BACKENDS)}")
        self.rate_hz = p("control_rate_hz", 500.0, "LowCmd rate (Hz); the G1's low-level loop runs at 500 Hz")
        self.state_timeout_s = p("lowstate_timeout_s", 0.25, "a /lowstate older than this stops execution (damping)")
        vmax = p("max_joint_velocity_rad_s", 6.0, "joint speed bound for retargeting and for every command (rad/s)")
        margin = p("joint_limit_margin_rad", 0.02, "commands stay this far inside the joint limits (rad)")
        ramp_min = p("ramp_in_min_s", 2.0, "shortest ramp from the measured pose to a trajectory / hold pose (s)")
        ramp_speed = p("ramp_speed_rad_s", 0.5, "ramps last at least max |dq| / this (rad/s)")
        kp = np.array(p("kp", DEFAULT_KP.tolist(), "position gains, Unitree motor order (29)"), dtype=float)
        kd = np.array(p("kd", DEFAULT_KD.tolist(), "velocity gains, Unitree motor order (29)"), dtype=float)
        model_dir = p("model_dir", "", "folder with Menagerie's unitree_g1 files; '' = mujoco-menagerie package")
        if kp.shape != (29,) or kd.shape != (29,) or np.any(kp < 0) or np.any(kd < 0):
            raise SystemExit("tracking_controller: kp and kd must be 29 non-negative gains")
        self.retargeter = load_backend(RETARGET_BACKENDS, backend, "retargeting", model_dir=model_dir or None,
                                       max_joint_velocity_rad_s=vmax)
        model = self.retargeter.model
        self.limits = CommandLimits.from_ranges(joint_ranges_rad(model), vmax, margin)
        self.controller = JointTrackingController(self.limits, kp, kd, stand_pose_rad(model), ramp_min, ramp_speed)
        LowCmd, LowState, _ = import_unitree_hg()
        self.writer = LowCmdWriter()
        self.pub_cmd = self.create_publisher(LowCmd, "lowcmd", SENSOR_QOS)
        self.pub_traj = self.create_publisher(G1JointTrajectoryMsg, "exoactor/g1_trajectory", LATCHED_QOS)
        self._state_reader = LowStateReader()
        self._state_lock = threading.Lock()
        self._raw: bytes | None = None
        self._raw_t = -1e9
        self._parsed_t = -2e9
        self._q = None
        self._mode_machine = 0
        self._fault = False
        # The 500 Hz /lowstate stream is taken raw by an internal node on its own single-threaded
        # executor (this node's multi-threaded executor costs too much per message) and only
        # deserialised when the state is needed (at most every STATE_PARSE_PERIOD_S).
        self._io_node = rclpy.create_node(f"{self.get_name()}_lowstate", namespace=self.get_namespace(),
                                          context=self.context, use_global_arguments=False)
        self._io_node.create_subscription(LowState, self.resolve_topic_name("lowstate"), self._on_lowstate,
                                          SENSOR_QOS, raw=True)
        self._io_executor = SingleThreadedExecutor(context=self.context)
        self._io_executor.add_node(self._io_node)
        self._io_thread = threading.Thread(target=self._spin_io, name="lowstate", daemon=True)
        self._io_thread.start()
        self.fault_reason = ""
        self._sent_t: collections.deque[float] = collections.deque(maxlen=60000)  # LowCmd send times
        self._stop = threading.Event()
        self._loop_thread = threading.Thread(target=self._loop, name="control", daemon=True)
        self._loop_thread.start()
        self.episode_root = declare_episode_root(self)
        StageServer(self, TrackMotion, "exoactor/track_motion", self._work,
                    user_errors=(TrackingError, RetargetingError, MotionEstimationError, UnsafeCommandError, ValueError),
                    cancel_errors=(TrackingCanceled, RetargetCanceled))
        self.get_logger().info(f"tracking controller ready ({backend} retargeting, {self.rate_hz:.0f} Hz LowCmd, "
                               f"{'fast' if self.writer.fast else 'message-object'} encoding)")

    # ---- robot state -------------------------------------------------------------------------
    STATE_PARSE_PERIOD_S = 0.005

    def _spin_io(self) -> None:
        try:
            self._io_executor.spin()
        except Exception:  # noqa: BLE001 - shutdown races end the I/O thread quietly
            pass

    def _on_lowstate(self, data: bytes) -> None:
        with self._state_lock:
            self._raw, self._raw_t = data, time.monotonic()

    def _state(self):
        """(q (29,) or None, age of the newest /lowstate in s, mode_machine, motor fault)."""
        with self._state_lock:
            raw, raw_t = self._raw, self._raw_t
            if raw is not None and raw_t > self._parsed_t and time.monotonic() - self._parsed_t >= self.STATE_PARSE_PERIOD_S:
                q, _dq, self._mode_machine, self._fault, _crc_ok = self._state_reader.read(raw)
                self._q, self._parsed_t = q, raw_t
                self.controller.observe(raw_t, q)
            return self._q, time.monotonic() - raw_t, self._mode_machine, self._fault

    # ---- 500 Hz loop ---------------------------------------------------------------------------
    def _loop(self) -> None:
        period = 1.0 / self.rate_hz
        next_t = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            active = self.controller.phase not in (Phase.IDLE, Phase.DAMPING)
            q, age, mode_machine, fault = self._state()
            if active and (age > self.state_timeout_s or fault):
                self.fault_reason = (f"/lowstate is {age:.2f} s old (limit {self.state_timeout_s} s)" if not fault
                                     else "a motor reports a fault in /lowstate")
                self.get_logger().error(f"{self.fault_reason}: switching to damping")
                self.controller.damp()
            cmd = self.controller.tick(now)
            if cmd is not None:
                try:
                    self.pub_cmd.publish(self.writer.build(cmd.q_rad, cmd.dq_rad_s, cmd.kp, cmd.kd, mode_machine))
                    self._sent_t.append(now)
                except Exception:  # noqa: BLE001 - only at shutdown (context gone): end the loop
                    if not self.context.ok():
                        return
                    raise
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.1:
                next_t = time.monotonic()  # fell far behind: resynchronise instead of bursting

    # ---- the action -------------------------------------------------------------------------------
    def _work(self, goal, feedback, cancel, result) -> None:
        episode_dir = goal_path(self.episode_root, goal.episode_dir, "episode_dir", optional=True)
        q, age, _, fault = self._state()
        if q is None or age > self.state_timeout_s:
            raise TrackingError(f"no fresh /lowstate (last {'never' if q is None else f'{age:.2f} s ago'}): "
                                "is the robot or the simulator running?")
        if fault:
            raise TrackingError("a motor reports a fault in /lowstate; not moving")
        motion = motion_from_msg(goal.motion)
        fb = TrackMotion.Feedback(phase="retargeting", progress=0.0)
        feedback(fb)

        def progress(done: int, total: int, _detail: str) -> None:
            feedback(TrackMotion.Feedback(phase="retargeting", progress=0.3 * done / max(total, 1)))

        traj = self.retargeter.retarget(motion, progress, cancel)
        result.backend = f"{self.retargeter.name}_pd"
        result.trajectory = trajectory_to_msg(traj, self.get_clock().now().to_msg())
        self.pub_traj.publish(result.trajectory)
        out = episode_dir / f"trajectory_{goal.segment_index:02d}.npz" if episode_dir is not None else None
        if out is not None:
            traj.save(out)
            result.trajectory_path = str(out)
        q, _, _, _ = self._state()
        self.fault_reason = ""
        ramp = self.controller.start(traj, q, time.monotonic(), ramp_in=bool(goal.ramp_in))
        t0 = time.monotonic()
        try:
            while True:
                time.sleep(0.1)
                now = time.monotonic()
                phase = self.controller.phase
                if phase == Phase.DAMPING:
                    raise TrackingError(f"execution stopped, robot damped: {self.fault_reason or 'robot state lost'}")
                if cancel.is_set():
                    hold_s = self.controller.go_to_hold(now)
                    while self.controller.phase == Phase.TO_HOLD and time.monotonic() - now < hold_s + 1.0:
                        feedback(TrackMotion.Feedback(phase="to_hold", progress=1.0, time_s=float(time.monotonic() - t0)))
                        time.sleep(0.1)
                    raise TrackingCanceled(f"robot ramped to the hold pose in {time.monotonic() - now:.1f} s")
                if phase == Phase.HOLDING:
                    break
                prog = 0.3 + 0.7 * (self.controller.tracking_progress(now) if phase == Phase.TRACKING else 0.0)
                feedback(TrackMotion.Feedback(phase=phase.value, progress=float(prog), time_s=float(now - t0)))
        finally:
            # Whatever ended the goal, the trajectory file gets the tracking log and loop figures.
            rate_hz, p50_ms, p99_ms = self._loop_stats(t0)
            if out is not None:
                log_t, log_cmd, log_meas = self.controller.tracking_log()
                traj.save(out, log_t_s=log_t - t0 if len(log_t) else log_t, log_commanded_rad=log_cmd,
                          log_measured_rad=log_meas, lowcmd_rate_hz=rate_hz, lowcmd_period_p50_ms=p50_ms,
                          lowcmd_period_p99_ms=p99_ms)
        self.get_logger().info(f"LowCmd loop during the goal: {rate_hz:.0f} Hz, period p50 {p50_ms:.2f} ms, p99 {p99_ms:.2f} ms")
        result.tracking_rmse_rad = self.controller.tracking_rmse_rad()
        result.clamped_commands = int(self.controller.clamped_total)
        result.success = True
        result.message = (f"tracked {traj.duration_s:.1f} s after a {ramp:.1f} s ramp-in; "
                          f"joint RMSE {result.tracking_rmse_rad:.3f} rad, {result.clamped_commands} clamped command values; "
                          f"LowCmd {rate_hz:.0f} Hz (period p99 {p99_ms:.1f} ms)")

    def _loop_stats(self, since: float) -> tuple[float, float, float]:
        """(rate Hz, period p50 ms, period p99 ms) of the LowCmds sent since ``since``."""
        t = np.array([x for x in list(self._sent_t) if x >= since])
        if len(t) < 3:
            return 0.0, float("nan"), float("nan")
        d = np.diff(t) * 1e3
        return float((len(t) - 1) / (t[-1] - t[0])), float(np.percentile(d, 50)), float(np.percentile(d, 99))

    def close(self) -> None:
        self._stop.set()
        self._loop_thread.join(timeout=1.0)
        self._io_executor.shutdown(timeout_sec=1.0)
        self._io_node.destroy_node()


def main(args=None) -> None:
    spin_node(TrackingNode, args)


if __name__ == "__main__":
    main()
