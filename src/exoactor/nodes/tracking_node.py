"""tracking_controller: serves ``/exoactor/track_motion`` and owns ``/lowcmd``.

HumanMotion -> G1 joint trajectory (whole-body IK, mink) -> unitree_hg/LowCmd at 500 Hz, ramping
in from the measured pose, through the safety layer. It sends nothing until its first goal;
afterwards it keeps holding the last pose. Cancel ramps to the hold pose. A stale /lowstate, a
motor fault or over-temperature, an e-stop (topic ``exoactor/estop`` std_msgs/Bool, service
``exoactor/estop`` std_srvs/Trigger; released by ``exoactor/estop_reset``) and any exception in the
loop switch to damping and abort the goal at once (:mod:`exoactor.control.loop`).
"""
from __future__ import annotations

import collections
import functools
import sys
import threading
import time
import traceback

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from exoactor.action import TrackMotion
from exoactor.control.dex3 import Dex3Hands
from exoactor.control.balance import PolicyLowerBody, fallen_reason, whole_body_reason
from exoactor.control.leg_policy import LegPolicy, LegPolicyError
from exoactor.control.gravity import GravityModel
from exoactor.control.loop import ControlLoop, period_stats
from exoactor.control.sinks import ExecutionError
from exoactor.control.tracker import JointTrackingController, Phase
from exoactor.g1.joints import DEFAULT_KD, DEFAULT_KP, G1_JOINT_NAMES
from exoactor.g1.model import joint_ranges_rad, load_g1_model, stand_pose_rad, torque_limits_nm
from exoactor.g1.safety import DEFAULT_KD_MAX, DEFAULT_KP_MAX, CommandLimits, UnsafeCommandError
from exoactor.motion.human_motion import MotionEstimationError
from exoactor.msg import G1JointTrajectory as G1JointTrajectoryMsg
from exoactor.nodes.control_process import (ControlProcess, ControlProcessConfig, ControlProcessError,
                                            EstopCallbacks, LegPolicyStartupError)
from exoactor.nodes.conversions import motion_from_msg, odometry_from_msg, trajectory_to_msg
from exoactor.nodes.params import ConfigError, declare
from exoactor.nodes.qos import LATCHED_QOS
from exoactor.nodes.spin import join_all, spin_node
from exoactor.nodes.sinks_ros import BACKEND_DESCRIPTION, make_sink
from exoactor.nodes.stage import StageServer, declare_episode_root, goal_path
from exoactor.nodes.unitree_io import (Dex3Publisher, LowCmdWriter, LowStateReader, declare_unitree_qos,
                                      import_unitree_hg)
from exoactor.progress import Canceled
from exoactor.realtime import MAX_RT_PRIORITY, make_named_threads_realtime, make_thread_realtime, normal_priority
from exoactor.registry import load_backend
from exoactor.retarget import RETARGET_BACKENDS, RetargetingError
from exoactor.retarget.worker import RetargetWorker


GIL_SWITCH_INTERVAL_S = 0.0005
"""How often CPython hands the GIL to a waiting thread in this process (default 5 ms)."""


def _qos_pair(qos) -> tuple[str, int]:
    """(reliability, depth) of a /lowcmd or /lowstate QoSProfile (what the control process rebuilds it from)."""
    from rclpy.qos import ReliabilityPolicy  # noqa: PLC0415

    return ("best_effort" if qos.reliability == ReliabilityPolicy.BEST_EFFORT else "reliable"), int(qos.depth)


class TrackingError(RuntimeError):
    """Execution cannot continue (robot state lost or faulty)."""


def _residual_note(traj) -> str:
    r = traj.ik_residual_m
    return "" if r is None or not len(r) else f"IK residual p95 {100 * np.percentile(r, 95):.1f} cm; "


class TrackingNode(Node):
    def __init__(self):
        super().__init__("tracking_controller")
        p = functools.partial(declare, self)
        backend = p("retargeter", "mink", f"retargeting backend: {', '.join(RETARGET_BACKENDS)}")
        self.rate_hz = p("control_rate_hz", 500.0, "LowCmd rate (Hz); the G1's low-level loop runs at 500 Hz")
        self.state_timeout_s = p("lowstate_timeout_s", 0.25, "a /lowstate older than this stops execution (damping)")
        vmax = p("max_joint_velocity_rad_s", 6.0, "joint speed bound for retargeting and for every command (rad/s)")
        margin = p("joint_limit_margin_rad", 0.02, "commands stay this far inside the joint limits (rad)")
        max_residual = p("max_ik_residual_m", 0.15, "refuse a step whose IK misses a pelvis, foot or hand target "
                         "by more than this in over 5% of its frames (m)")
        ramp_min = p("ramp_in_min_s", 2.0, "shortest ramp from the measured pose to a trajectory / hold pose (s)")
        ramp_speed = p("ramp_speed_rad_s", 0.5, "ramps last at least max |dq| / this (rad/s)")
        kp = np.array(p("kp", DEFAULT_KP.tolist(), "position gains, Unitree motor order (29)"), dtype=float)
        kd = np.array(p("kd", DEFAULT_KD.tolist(), "velocity gains, Unitree motor order (29)"), dtype=float)
        kp_max = np.array(p("kp_max", DEFAULT_KP_MAX.tolist(), "upper bound of every kp (29; default twice "
                            "Unitree's example gains): higher kp is refused at start-up and clamped"), dtype=float)
        kd_max = np.array(p("kd_max", DEFAULT_KD_MAX.tolist(), "upper bound of every kd (29; default 8, Unitree's "
                            "damping kd): higher kd is refused at start-up and clamped"), dtype=float)
        temp_warn = p("motor_temperature_warn_c", 80.0, "a motor this hot (deg C, LowState temperature) is logged")
        temp_stop = p("motor_temperature_stop_c", 95.0,
                      "a motor this hot (deg C) stops execution: damping, aborted goal")
        self.rt_priority = p("rt_priority", 80, "SCHED_FIFO priority (1-98) of the control loop thread (in this "
                             "process the /lowstate thread gets one less; the DDS threads two less) where permitted "
                             "(CAP_SYS_NICE or an rtprio limit); 0 = off")
        self.backend = p("backend", "lowcmd", BACKEND_DESCRIPTION)
        self.lower_body_mode = p("lower_body", "policy", "who drives the legs: policy (Unitree's leg policy balances "
                                 "the robot and walks it along the step's root motion) or trajectory (legs from "
                                 "the retargeted trajectory: needs gantry true)")
        self.gantry = p("gantry", True, "the robot hangs on a gantry (the simulator's band): the legs follow the "
                        "trajectory; false: the leg policy balances and walks the robot (lower_body policy), and "
                        "steps it cannot do (squat, sit, bend) are refused")
        policy_path = p("leg_policy_path", "", "Unitree's G1 leg policy (TorchScript motion.pt); '' = "
                        "$EXOACTOR_LEG_POLICY or ../shared/assets/unitree_rl_gym/g1/motion.pt")
        self.odom_topic = p("odom_topic", "g1_sim/odom", "nav_msgs/Odometry of the pelvis in the world (the "
                            "simulator's ground truth, or your state estimator) for the leg policy's outer loops; "
                            "'' = none: the policy runs open loop and drifts (~0.25 m/s)")
        self.odom_timeout_s = p("odom_timeout_s", 1.0, "odometry older than this stops execution when the leg "
                                "policy's outer loops need it (s; they average over a 0.8 s gait period, so a few "
                                "lost messages of a best-effort topic are harmless)")
        model_dir = p("model_dir", "", "folder with Menagerie's unitree_g1 files; '' = mujoco-menagerie package")
        collision_margin = p("self_collision_margin_m", 0.02, "the IK keeps forearms and hands this far from the "
                             "torso and pelvis (m; negative: no self-collision avoidance)")
        gravity = p("gravity_compensation", True, "send the gravity torque of each commanded arm pose as "
                    "LowCmd's feed-forward tau (prepared from the G1 model when a step starts; bounded by the "
                    "motors' torque limits); false: position PD alone (the arms sag by ~kp error)")
        retarget_process = p("retarget_process", False, "true: retarget in a child process at nice 19, so this "
                             "process does nothing but control (the IK's Python holds the GIL the 500 Hz loop waits "
                             "for); its start-up (imports, model) can take minutes on a loaded 2-core machine, which "
                             "delays this node's; false: in this process")
        control_process = p("control_process", True, "true: the 500 Hz loop runs in a process of its own with one "
                            "thread (SCHED_FIFO where permitted), which also takes /lowstate and serves the e-stop: "
                            "nothing else in that process competes for its GIL (backend lowcmd; the others run "
                            "in this process); false: a thread of this process")
        dex3 = p("dex3_hands", False, "forward the human's hand open/close (from the motion's hands) to the G1's Dex3 "
                 "hands on dex3/{left,right}/cmd (unitree_hg/HandCmd, 50 Hz) while a step is tracked; they go limp "
                 "(kp 0) when execution stops")
        dex3_kp = p("dex3_kp", 1.5, "Dex3 position gain (0-5)")
        dex3_kd = p("dex3_kd", 0.1, "Dex3 velocity gain (0-1)")
        self._check_config(kp, kd, kp_max, kd_max, vmax, margin, temp_warn, temp_stop)
        try:
            self.dex3 = Dex3Publisher(self, Dex3Hands(dex3_kp, dex3_kd)) if dex3 else None
        except ValueError as e:
            raise ConfigError(f"{e} (parameters 'dex3_kp', 'dex3_kd')") from None
        if self.lower_body_mode not in ("policy", "trajectory"):
            raise ConfigError(f"parameter 'lower_body' must be policy or trajectory, got {self.lower_body_mode!r}")
        if self.lower_body_mode == "trajectory" and not self.gantry:
            raise ConfigError("lower_body 'trajectory' cannot balance the robot: it needs a gantry (set gantry: true, "
                              "simulator: launch with gantry:=true) or lower_body 'policy'")
        lower_body = None
        self._child = bool(control_process) and self.backend == "lowcmd"
        self._has_leg_policy = self.lower_body_mode == "policy" and not self.gantry and self.backend == "lowcmd"
        if self._has_leg_policy and not self._child:
            try:
                lower_body = PolicyLowerBody(LegPolicy(policy_path or None), closed_loop=bool(self.odom_topic))
            except LegPolicyError as e:
                raise ConfigError(f"{e} (parameter 'leg_policy_path')") from None
        if not 0 <= self.rt_priority <= MAX_RT_PRIORITY - 1:
            raise ConfigError(f"parameter 'rt_priority' must be 0 (off) or 1-{MAX_RT_PRIORITY - 1}, got {self.rt_priority}")
        # The loop thread waits for the GIL whenever another thread of this process runs Python:
        # hand it over every 0.5 ms instead of CPython's 5 ms.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        retarget_kwargs = {"model_dir": model_dir or None, "max_joint_velocity_rad_s": vmax,
                           "joint_limit_margin_rad": margin, "max_ik_residual_m": max_residual,
                           "self_collision_margin_m": collision_margin}
        if retarget_process:  # the IK's Python never holds this process's GIL (the 500 Hz loop waits on it)
            self.retargeter = RetargetWorker(RETARGET_BACKENDS, backend, **retarget_kwargs)
            model = load_g1_model(model_dir or None, with_floor=False)
        else:
            self.retargeter = load_backend(RETARGET_BACKENDS, backend, "retargeting", **retarget_kwargs)
            model = self.retargeter.model  # the in-process retargeter has loaded it already
        self.limits = CommandLimits.from_ranges(joint_ranges_rad(model), vmax, margin, 1.0 / self.rate_hz,
                                                kp_max, kd_max, tau_max_nm=torque_limits_nm(model))
        lowcmd_qos, lowstate_qos = declare_unitree_qos(self, "lowcmd"), declare_unitree_qos(self, "lowstate")
        self.pub_traj = self.create_publisher(G1JointTrajectoryMsg, "exoactor/g1_trajectory", LATCHED_QOS)
        self.episode_root = declare_episode_root(self)
        if self._child:
            cfg = ControlProcessConfig(
                limits=self.limits, kp=kp, kd=kd, hold_pose_rad=stand_pose_rad(model), ramp_in_min_s=ramp_min,
                ramp_speed_rad_s=ramp_speed, rate_hz=self.rate_hz, state_timeout_s=self.state_timeout_s,
                odom_timeout_s=self.odom_timeout_s, temperature_warn_c=temp_warn, temperature_stop_c=temp_stop,
                rt_priority=self.rt_priority, node_name=f"{self.get_name()}_lowstate", namespace=self.get_namespace(),
                gravity_compensation=gravity, model_dir=model_dir or None,
                topics={"lowstate": self.resolve_topic_name("lowstate"), "lowcmd": self.resolve_topic_name("lowcmd"),
                        "odom": self.resolve_topic_name(self.odom_topic) if self.odom_topic else "",
                        "estop": self.resolve_topic_name("exoactor/estop"),
                        "estop_reset": self.resolve_topic_name("exoactor/estop_reset")},
                qos={"lowcmd": _qos_pair(lowcmd_qos), "lowstate": _qos_pair(lowstate_qos)},
                leg_policy=self._has_leg_policy, leg_policy_path=policy_path or None,
                closed_loop=bool(self.odom_topic))
            try:
                self.core = ControlProcess(cfg, log=self._log)
            except LegPolicyStartupError as e:
                raise ConfigError(f"{e} (parameter 'leg_policy_path')") from None
            self.controller = self.sink = None
            StageServer(self, TrackMotion, "exoactor/track_motion", self._work,
                        user_errors=(TrackingError, RetargetingError, MotionEstimationError, UnsafeCommandError,
                                     ValueError, ExecutionError, ControlProcessError))
            info = self.core.info
            self.get_logger().info(f"tracking controller ready ({backend} retargeting, {self.rate_hz:.0f} Hz LowCmd "
                                   f"from its own process (pid {info.get('pid')}), "
                                   f"{'fast' if info.get('fast') else 'message-object'} encoding"
                                   f"{'; leg policy in ' + info['leg_policy'] if info.get('leg_policy') else ''}; control thread "
                                   f"{info.get('control', '?')}, DDS threads {info.get('dds', '?')})")
            return
        self.controller = JointTrackingController(self.limits, kp, kd, stand_pose_rad(model), ramp_min, ramp_speed,
                                                  lower_body=lower_body,
                                                  gravity=GravityModel(model) if gravity
                                                  else None)
        LowCmd, LowState, _ = import_unitree_hg()
        self.writer = LowCmdWriter()
        self.pub_cmd = self.create_publisher(LowCmd, "lowcmd", lowcmd_qos)
        self.core = ControlLoop(self.controller, LowStateReader().parse, self._encode, self.state_timeout_s,
                                temp_warn, temp_stop, log=self._log, odom_timeout_s=self.odom_timeout_s)
        # backend arm_sdk / sonic: goals go to an execution sink (the robot's own controller or a
        # SONIC deployment drives the motors) and this node sends nothing on /lowcmd.
        self.sink = make_sink(self, self.backend, self.limits, self._measured_q, lambda: self._state()[2],
                              self._mode_machine)
        # The 500 Hz /lowstate stream is taken raw by an internal node on its own single-threaded
        # executor (this node's multi-threaded executor costs too much per message); every message is
        # checked there (CRC, size, finite values), so the control thread never parses. The e-stop
        # lives on the same executor: no running goal can delay it.
        self._io_node = rclpy.create_node(f"{self.get_name()}_lowstate", namespace=self.get_namespace(),
                                          context=self.context, use_global_arguments=False)
        self._io_node.create_subscription(LowState, self.resolve_topic_name("lowstate"), self._on_lowstate,
                                          lowstate_qos, raw=True)
        if self.odom_topic:
            self._io_node.create_subscription(Odometry, self.resolve_topic_name(self.odom_topic), self._on_odom,
                                              qos_profile_sensor_data)
        estop = EstopCallbacks(self.core)
        self._io_node.create_subscription(Bool, self.resolve_topic_name("exoactor/estop"), estop.on_topic, 10)
        self._io_node.create_service(Trigger, self.resolve_topic_name("exoactor/estop"), estop.on_service)
        self._io_node.create_service(Trigger, self.resolve_topic_name("exoactor/estop_reset"), estop.on_reset)
        self._io_executor = SingleThreadedExecutor(context=self.context)
        self._io_executor.add_node(self._io_node)
        self._stop = threading.Event()
        self._priorities: dict[str, str] = {}  # thread -> its scheduling, set by the thread itself
        self._io_thread = threading.Thread(target=self._spin_io, name="lowstate", daemon=True)
        self._io_thread.start()
        self._sent_t: collections.deque[float] = collections.deque(maxlen=60000)  # LowCmd send times
        self._loop_thread = threading.Thread(target=self._loop, name="control", daemon=True)
        self._loop_thread.start()
        deadline = time.monotonic() + 2.0
        while len(self._priorities) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        StageServer(self, TrackMotion, "exoactor/track_motion", self._work,
                    user_errors=(TrackingError, RetargetingError, MotionEstimationError, UnsafeCommandError,
                                 ValueError, ExecutionError))
        self.get_logger().info(f"tracking controller ready ({backend} retargeting, {self.rate_hz:.0f} Hz LowCmd, "
                               f"{'fast' if self.writer.fast else 'message-object'} encoding; control thread "
                               f"{self._priorities.get('control', '?')}, DDS threads {self._priorities.get('dds', '?')})")

    @staticmethod
    def _check_config(kp, kd, kp_max, kd_max, vmax, margin, temp_warn, temp_stop) -> None:
        """One clear line (ConfigError) for a parameter the safety layer cannot work with."""
        for name, v in (("kp", kp), ("kd", kd), ("kp_max", kp_max), ("kd_max", kd_max)):
            if v.shape != (29,) or not np.all(np.isfinite(v)) or np.any(v < 0):
                raise ConfigError(f"parameter '{name}' must be 29 finite, non-negative gains (Unitree motor order)")
        beyond = [f"{name}[{i}] ({G1_JOINT_NAMES[i]}) = {v[i]:g} > {name}_max {vmax_[i]:g}"
                  for name, v, vmax_ in (("kp", kp, kp_max), ("kd", kd, kd_max)) for i in np.flatnonzero(v > vmax_)]
        if beyond:
            raise ConfigError(f"gains beyond their bounds: {'; '.join(beyond[:3])}"
                              f"{f' (+{len(beyond) - 3} more)' if len(beyond) > 3 else ''}; lower them or raise "
                              "kp_max/kd_max deliberately")
        if not (np.isfinite(vmax) and vmax > 0):
            raise ConfigError(f"parameter 'max_joint_velocity_rad_s' must be > 0, got {vmax}")
        if not (np.isfinite(margin) and 0 <= margin < 0.2):
            raise ConfigError(f"parameter 'joint_limit_margin_rad' must be in [0, 0.2), got {margin}")
        if not temp_warn <= temp_stop:
            raise ConfigError(f"parameter 'motor_temperature_warn_c' ({temp_warn}) must not exceed "
                              f"'motor_temperature_stop_c' ({temp_stop})")

    def _log(self, level: str, msg: str) -> None:
        # One call site per severity: rclpy refuses a call site whose severity changes between calls.
        log = self.get_logger()
        if level == "info":
            log.info(msg)
        elif level == "warn":
            log.warning(msg)
        else:
            log.error(msg)

    def _encode(self, cmd, mode_machine: int):
        return self.writer.build(cmd.q_rad, cmd.dq_rad_s, cmd.kp, cmd.kd, mode_machine, cmd.tau_nm)

    # ---- robot state and e-stop (the I/O thread) -------------------------------------------------
    def _set_priority(self, thread: str, priority: int) -> None:
        if thread == "control":  # and the DDS threads that carry /lowstate in and /lowcmd out
            self._priorities["dds"] = make_named_threads_realtime("dds.", max(0, priority - 2))
        self._priorities[thread] = make_thread_realtime(priority)

    def _spin_io(self) -> None:
        """The /lowstate and e-stop thread: a failing callback is reported and the thread goes on."""
        self._set_priority("lowstate", max(0, self.rt_priority - 1))
        while not self._stop.is_set() and self.context.ok():
            try:
                self._io_executor.spin()
                return
            except Exception as e:  # noqa: BLE001 - at shutdown the thread ends quietly, else it must survive
                if self._stop.is_set() or not self.context.ok():
                    return
                self.get_logger().error(f"/lowstate thread: {type(e).__name__}: {e}\n{traceback.format_exc()}")

    def _on_lowstate(self, data: bytes) -> None:
        self.core.on_lowstate(data, time.monotonic())

    def _on_odom(self, msg: Odometry) -> None:
        self.core.on_odometry(odometry_from_msg(msg), time.monotonic())

    def _state(self):
        """(q (29,) or None, age of the newest usable /lowstate in s, why not to move ('' = fine))."""
        now = time.monotonic()
        if self._child:
            return self.core.state(now)[:3]
        sample, age = self.core.state(now)
        return (None if sample is None else sample.q_rad), age, self.core.problem(sample, age)

    # ---- the loop, in this process or its own (the same calls either way) ----------------------------
    def _start_motion(self, traj, q, ramp_in: bool, legs_from_policy: bool) -> float | None:
        """Ramp in and track ``traj``: the ramp's duration, or None if execution was stopped."""
        if self._child:
            return self.core.start(traj, ramp_in, legs_from_policy)
        return self.core.start_motion(lambda: self.controller.start(traj, q, time.monotonic(), ramp_in=ramp_in,
                                                                    legs_from_policy=legs_from_policy))

    def _start_hold(self, now: float) -> float | None:
        if self._child:
            return self.core.go_to_hold()
        return self.core.start_motion(lambda: self.controller.go_to_hold(now))

    def _phase(self) -> Phase:
        return Phase(self.core.phase) if self._child else self.controller.phase

    def _progress(self, now: float) -> float:
        return self.core.tracking_progress() if self._child else self.controller.tracking_progress(now)

    def _loop_alive(self) -> bool:
        return self.core.alive() if self._child else self._loop_thread.is_alive()

    def _report(self, since: float) -> dict:
        """The goal's tracking log and figures, and the LowCmd period since ``since``."""
        if self._child:
            try:
                return self.core.report(since)
            except ControlProcessError as e:
                self.get_logger().warning(f"no tracking log from the control process: {e}")
                empty = np.zeros((0, 29))
                return {"log_t": np.zeros(0), "log_cmd": empty, "log_meas": empty, "rmse_rad": float("nan"),
                        "clamped": 0, "rate_hz": 0.0, "p50_ms": float("nan"), "p99_ms": float("nan"),
                        "err_p99_ms": float("nan")}
        log_t, log_cmd, log_meas = self.controller.tracking_log()
        rate_hz, p50_ms, p99_ms, err_p99_ms = period_stats(self._sent_t, since, 1.0 / self.rate_hz)
        return {"log_t": log_t, "log_cmd": log_cmd, "log_meas": log_meas,
                "rmse_rad": self.controller.tracking_rmse_rad(), "clamped": int(self.controller.clamped_total),
                "rate_hz": rate_hz, "p50_ms": p50_ms, "p99_ms": p99_ms, "err_p99_ms": err_p99_ms,
                "sent_t": np.array([x for x in list(self._sent_t) if x >= since])}

    # ---- 500 Hz loop ---------------------------------------------------------------------------
    def _loop(self) -> None:
        """Never ends before close(): every failure becomes damping (ControlLoop.tick never raises)."""
        self._set_priority("control", self.rt_priority)
        period = 1.0 / self.rate_hz
        next_t = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            payload = self.core.tick(now)
            if payload is not None and self.sink is None:  # other backends: the robot's controller owns /lowcmd
                try:
                    self.pub_cmd.publish(payload)
                    self._sent_t.append(now)
                except Exception as e:  # noqa: BLE001 - at shutdown (context gone) end the loop, else damp
                    if not self.context.ok():
                        return
                    self.core.fail(f"publishing LowCmd failed: {type(e).__name__}: {e}")
            self.core.after_tick(now)  # the leg policy's step, once the command is out
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.1:
                next_t = time.monotonic()  # fell far behind: resynchronise instead of bursting

    # ---- the action -------------------------------------------------------------------------------
    def _work(self, goal, feedback, cancel, result) -> None:
        refused = self.core.begin_goal()
        if refused:
            raise TrackingError(refused)
        try:
            self._track(goal, feedback, cancel, result)
        finally:
            self.core.end_goal()

    def _stopped(self, dropped0: int) -> TrackingError:
        return TrackingError(f"execution stopped, robot damped: {self.core.stop_reason or 'robot state lost'}"
                             f"{self._dropped_note(dropped0)}")

    def _dropped_note(self, dropped0: int) -> str:
        n = sum(self.core.bad_states.values()) - dropped0
        return f"; {n} LowStates dropped ({self.core.bad_state_summary()} since start-up)" if n else ""

    def _track(self, goal, feedback, cancel, result) -> None:
        episode_dir = goal_path(self.episode_root, goal.episode_dir, "episode_dir", optional=True)
        dropped0 = sum(self.core.bad_states.values())
        q, age, why = self._state()
        if why:
            hint = ": is the robot or the simulator running?" if "lowstate" in why else ""
            raise TrackingError(f"not moving: {why}{hint}{self._dropped_note(dropped0)}")
        motion = motion_from_msg(goal.motion)
        fb = TrackMotion.Feedback(phase="retargeting", progress=0.0)
        feedback(fb)

        def progress(done: int, total: int, _detail: str) -> None:
            feedback(TrackMotion.Feedback(phase="retargeting", progress=0.3 * done / max(total, 1)))

        stopped = self.core.stopped

        class _CancelOrStop:  # retargeting also ends when execution is stopped (e-stop, fault)
            def is_set(self) -> bool:
                return cancel.is_set() or stopped.is_set()

        try:
            with normal_priority():
                traj = self.retargeter.retarget(motion, progress, _CancelOrStop())
        except Canceled:
            if stopped.is_set():
                raise self._stopped(dropped0) from None
            raise
        result.backend = f"{self.retargeter.name}_pd"
        result.trajectory = trajectory_to_msg(traj, self.get_clock().now().to_msg())
        self.pub_traj.publish(result.trajectory)
        out = episode_dir / f"trajectory_{goal.segment_index:02d}.npz" if episode_dir is not None else None
        if out is not None:
            traj.save(out)
            result.trajectory_path = str(out)
        q, _, why = self._state()
        if why:
            raise TrackingError(f"not moving: {why}{self._dropped_note(dropped0)}")
        if self.sink is not None:
            self._execute_sink(goal, traj, episode_dir, feedback, _CancelOrStop(), stopped, dropped0, result)
            return
        legs_from_policy = self._legs_from_policy(traj)
        result.lower_body = "policy" if legs_from_policy else "trajectory"
        ramp = self._start_motion(traj, q, bool(goal.ramp_in), legs_from_policy)
        if ramp is None:
            raise self._stopped(dropped0)
        t0 = time.monotonic()
        hands = traj.hand_closure is not None and self.dex3 is not None
        try:
            while True:
                # Wakes at once when the loop stops execution (fault, e-stop, exception): aborted in ms.
                if stopped.wait(0.02 if hands else 0.1):
                    raise self._stopped(dropped0)
                if not self._loop_alive():
                    self.core.fail("the control loop ended")
                    raise self._stopped(dropped0)
                now = time.monotonic()
                phase = self._phase()
                if phase == Phase.DAMPING:
                    raise self._stopped(dropped0)
                if cancel.is_set():
                    hold_s = self._start_hold(now)
                    if hold_s is None:
                        raise self._stopped(dropped0)
                    while self._phase() == Phase.TO_HOLD and time.monotonic() - now < hold_s + 1.0:
                        feedback(TrackMotion.Feedback(phase="to_hold", progress=1.0,
                                                      time_s=float(time.monotonic() - t0)))
                        if stopped.wait(0.1):
                            raise self._stopped(dropped0)
                    raise Canceled(f"robot ramped to the hold pose in {time.monotonic() - now:.1f} s")
                if phase == Phase.HOLDING:
                    break
                if hands and phase == Phase.TRACKING:
                    self.dex3.send(traj.hand_closure_at(self._progress(now) * traj.duration_s))
                prog = 0.3 + 0.7 * (self._progress(now) if phase == Phase.TRACKING else 0.0)
                feedback(TrackMotion.Feedback(phase=phase.value, progress=float(prog), time_s=float(now - t0)))
        except TrackingError:
            if self.dex3 is not None:
                self.dex3.damp()
            raise
        finally:
            # Whatever ended the goal, the trajectory file gets the tracking log and loop figures.
            rep = self._report(t0)
            rate_hz, p50_ms, p99_ms = rep["rate_hz"], rep["p50_ms"], rep["p99_ms"]
            dropped = sum(self.core.bad_states.values()) - dropped0
            if out is not None:
                log_t, log_cmd, log_meas = rep["log_t"], rep["log_cmd"], rep["log_meas"]
                traj.save(out, log_t_s=log_t - t0 if len(log_t) else log_t, log_commanded_rad=log_cmd,
                          log_measured_rad=log_meas, lowcmd_rate_hz=rate_hz, lowcmd_period_p50_ms=p50_ms,
                          lowcmd_period_p99_ms=p99_ms, lowcmd_period_error_p99_ms=rep["err_p99_ms"],
                          log_lowcmd_sent_t_s=rep.get("sent_t", np.zeros(0)) - t0,
                          lowstate_dropped=dropped)
        work = f", work per period p99 {rep['work_p99_ms']:.2f} ms" if "work_p99_ms" in rep else ""
        self.get_logger().info(f"LowCmd loop during the goal: {rate_hz:.0f} Hz, period p50 {p50_ms:.2f} ms, "
                               f"p99 {p99_ms:.2f} ms (error p99 {rep['err_p99_ms']:.2f} ms){work}; {dropped} "
                               "LowStates dropped")
        result.tracking_rmse_rad = float(rep["rmse_rad"])
        result.clamped_commands = int(rep["clamped"])
        result.success = True
        result.message = (f"tracked {traj.duration_s:.1f} s after a {ramp:.1f} s ramp-in; "
                          f"joint RMSE {result.tracking_rmse_rad:.3f} rad, {result.clamped_commands} clamped "
                          f"command values; {_residual_note(traj)}"
                          f"LowCmd {rate_hz:.0f} Hz (period p99 {p99_ms:.1f} ms, error p99 {rep['err_p99_ms']:.2f} ms){self._dropped_note(dropped0)}")

    def _measured_q(self):
        q, _, why = self._state()
        return None if why else q

    def _mode_machine(self) -> int:
        sample, _ = self.core.state(time.monotonic())
        return 0 if sample is None else int(sample.mode_machine)

    def _execute_sink(self, goal, traj, episode_dir, feedback, cancel, stopped, dropped0, result) -> None:
        """The trajectory through the execution sink (backend arm_sdk / sonic) instead of the 500 Hz loop."""
        result.backend = f"{self.retargeter.name}_{self.sink.name}"
        t0 = time.monotonic()

        def progress(done: int, total: int, _detail: str) -> None:
            feedback(TrackMotion.Feedback(phase=self.sink.name, progress=0.3 + 0.7 * done / max(total, 1),
                                          time_s=float(time.monotonic() - t0)))

        try:
            result.message = self.sink.execute(traj, progress, cancel, episode_dir, segment_index=goal.segment_index)
        except Canceled:
            if stopped.is_set():
                raise self._stopped(dropped0) from None
            raise
        result.success = True

    def _legs_from_policy(self, traj) -> bool:
        """Whether the leg policy drives the legs in this step; TrackingError when nothing can."""
        if not self._has_leg_policy:
            return False  # on the gantry (or with lower_body trajectory) the legs follow the trajectory
        if self._child:
            fell = self.core.fallen()
        else:
            sample, _ = self.core.state(time.monotonic())
            fell = fallen_reason(sample) if sample is not None else ""
        if fell:
            raise TrackingError(f"not moving: {fell}; stand it up first (simulator: ros2 service call "
                                "/g1_sim/reset std_srvs/srv/Trigger)")
        if self.odom_topic:
            if self._child:
                age = self.core.odometry_age(time.monotonic())
            else:
                odom, age = self.core.odometry(time.monotonic())
                age = None if odom is None else age
            if age is None or age > self.odom_timeout_s:
                raise TrackingError(f"not moving: no odometry on {self.resolve_topic_name(self.odom_topic)} "
                                    f"{'received' if age is None else f'for {age:.2f} s'} (the leg policy's outer "
                                    "loops need it; odom_topic '' runs the policy open loop)")
        why = whole_body_reason(traj)
        if not why:
            return True
        raise TrackingError(f"step refused: {why}; without a gantry the robot must keep its balance (hang it on a "
                            "gantry and set gantry: true, simulator: launch with gantry:=true)")

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()
        if isinstance(self.retargeter, RetargetWorker):
            self.retargeter.close()
        if self._child:
            self.core.close()
            return
        self._stop.set()
        self._io_executor.shutdown(timeout_sec=1.0)
        # Both threads run rclpy code: one still running when the process exits aborts it (C++ terminate).
        join_all([self._loop_thread, self._io_thread])
        self._io_node.destroy_node()


def main(args=None) -> None:
    spin_node(TrackingNode, args)


if __name__ == "__main__":
    main()
