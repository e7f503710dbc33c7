"""Execution sinks: where a retargeted trajectory goes on a real robot besides the 500 Hz /lowcmd loop.

The tracking controller retargets a human motion to a :class:`G1JointTrajectory` and hands it to
one sink (parameter ``backend``): :class:`SonicSink` streams it to a SONIC deployment (NVlabs
GR00T whole-body controller) over ZMQ, :class:`ArmSdkSink` drives the upper body through
``/arm_sdk`` on top of the G1's built-in walking controller and turns the root motion into its
locomotion requests. (``lowcmd``, the project's own 500 Hz loop, is not a sink.)

Safety: every joint target a sink sends has passed through the project's
:class:`exoactor.g1.safety.CommandLimits` at the sink's own period (inside the joint window
minus the margin, step per tick <= dq_max / rate, |dq| <= dq_max, gains bounded); a trajectory,
root motion or measured pose with NaN/Inf is refused (:class:`ExecutionError`) before anything
is sent. ROS-free: the ROS side (:mod:`exoactor.nodes.sinks_ros`) passes publishing callables.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

from exoactor.control.arm_sdk import ARM_SDK_JOINTS, BlendRamp, LocomotionRequests, TimedRequest, arm_sdk_command
from exoactor.control.leg_policy import base_velocity_commands, needs_locomotion
from exoactor.control.sonic import (DEFAULT_ENDPOINT, DEFAULT_TOPIC, SONIC_FPS, SUPPORTED_VERSIONS, SonicError,
                                    SonicStreamer, export_csv_motion, resample_trajectory)
from exoactor.g1.joints import DEFAULT_KD, DEFAULT_KP, NUM_BODY_JOINTS
from exoactor.g1.lowcmd import LowCmdFrame
from exoactor.g1.safety import CommandLimits, UnsafeCommandError
from exoactor.progress import NEVER_CANCELED, Canceled, CancelToken, ProgressCallback, no_progress
from exoactor.retarget.trajectory import G1JointTrajectory


class ExecutionError(RuntimeError):
    """A sink could not execute a trajectory (says what was expected and what happened)."""


# --------------------------------------------------------------------------------------------
# Shared checks and limiting
# --------------------------------------------------------------------------------------------

def sink_limits(limits: CommandLimits, rate_hz: float) -> CommandLimits:
    """``limits`` with the nominal period of a sink sending at ``rate_hz`` (the step bound per tick
    becomes dq_max / rate_hz; the window, speed and gain bounds are unchanged)."""
    if not (isinstance(rate_hz, (int, float)) and math.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f"sink rate: expected a positive rate in Hz, got {rate_hz!r}")
    return dataclasses.replace(limits, period_s=1.0 / float(rate_hz))


def check_trajectory(traj: G1JointTrajectory) -> None:
    """Raise :class:`ExecutionError` unless every array of ``traj`` has its shape and is finite.

    (G1JointTrajectory checks its joints when it is built; the arrays may have changed since, and
    the root is not checked there.)"""
    if not isinstance(traj, G1JointTrajectory):
        raise ExecutionError(f"trajectory: expected a G1JointTrajectory, got {type(traj).__name__}")
    if not (isinstance(traj.fps, (int, float, np.floating)) and math.isfinite(traj.fps) and traj.fps > 0):
        raise ExecutionError(f"trajectory fps: expected a positive frame rate, got {traj.fps!r}")
    t = len(traj.positions_rad)
    shapes = {"positions_rad": (t, NUM_BODY_JOINTS), "velocities_rad_s": (t, NUM_BODY_JOINTS),
              "root_pos_world_m": (t, 3), "root_quat_wxyz": (t, 4)}
    for name, shape in shapes.items():
        a = np.asarray(getattr(traj, name))
        if t < 1 or a.shape != shape:
            raise ExecutionError(f"trajectory {name}: expected shape {shape} (T >= 1), got {a.shape}; nothing sent")
        if not np.all(np.isfinite(a)):
            bad = np.argwhere(~np.isfinite(a))[:3].tolist()
            raise ExecutionError(f"trajectory {name}: expected finite values, got NaN/Inf at {bad}; nothing sent")
    if np.any(np.linalg.norm(np.asarray(traj.root_quat_wxyz, dtype=np.float64), axis=1) < 1e-6):
        raise ExecutionError("trajectory root_quat_wxyz: expected non-zero quaternions, got a zero one; nothing sent")


class LimitedMotion(NamedTuple):
    """A trajectory resampled at a sink's rate and passed through its limits (frame by frame)."""

    trajectory: G1JointTrajectory
    """At the sink's rate: positions/velocities as they will be sent, the root resampled."""
    clamped: int
    """Joint values the limits changed."""


def limit_trajectory(limits: CommandLimits, traj: G1JointTrajectory, rate_hz: float,
                     q_prev: np.ndarray | None = None) -> LimitedMotion:
    """``traj`` at ``rate_hz`` with every frame through ``limits`` at the period 1 / rate_hz.

    Frame k's positions are clamped to the window and to within one step of frame k-1 (frame 0
    of ``q_prev`` when given), its velocities bounded (0 where the position was clamped). The
    root is resampled as SONIC's export does (positions linearly, orientation by slerp). Raises
    :class:`ExecutionError` on a non-finite or malformed trajectory.
    """
    check_trajectory(traj)
    lim = sink_limits(limits, rate_hz)
    try:
        data = resample_trajectory(traj, rate_hz)
    except SonicError as e:
        raise ExecutionError(f"trajectory: {e}; nothing sent") from None
    n = len(data["times"])
    q_out = np.empty((n, NUM_BODY_JOINTS))
    dq_out = np.empty((n, NUM_BODY_JOINTS))
    prev = None if q_prev is None else np.asarray(q_prev, dtype=np.float64)
    clamped = 0
    for k in range(n):
        try:
            cmd = lim.apply(data["joint_pos"][k], data["joint_vel"][k], prev)
        except UnsafeCommandError as e:
            raise ExecutionError(f"trajectory frame {k}: {e}; nothing sent") from None
        q_out[k], dq_out[k], prev = cmd.q, cmd.dq, cmd.q
        clamped += cmd.changed
    out = G1JointTrajectory(float(rate_hz), q_out, dq_out, data["body_pos"], data["body_quat_wxyz"])
    return LimitedMotion(out, clamped)


_TICK_TOLERANCE_S = 1e-6
"""A tick this close to a phase boundary belongs to the later phase (clock rounding)."""


def _wait_until(deadline: float, clock: Callable[[], float], sleep: Callable[[float], None],
                cancel: CancelToken | None, what: str, step_s: float = 0.02) -> None:
    """Sleep until ``clock() >= deadline``, raising Canceled (checked every ``step_s``) if ``cancel`` is set."""
    while True:
        if cancel is not None and cancel.is_set():
            raise Canceled(f"{what} canceled")
        left = deadline - clock()
        if left <= 0:
            return
        sleep(min(step_s, left))


# --------------------------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------------------------

class ExecutionSink:
    """Executes a retargeted trajectory on the robot; every joint target through ``limits``.

    ``execute`` blocks until the motion is done and returns a one-line summary for the goal
    result; it raises :class:`exoactor.progress.Canceled` when ``cancel`` is set (after bringing
    the robot to a safe state) and :class:`ExecutionError` for failures. ``close`` releases what
    the sink holds (sockets); a sink serves one goal at a time.
    """

    name = "sink"

    def __init__(self, limits: CommandLimits, rate_hz: float):
        if not isinstance(limits, CommandLimits):
            raise ValueError(f"limits: expected CommandLimits, got {type(limits).__name__}")
        self.limits = sink_limits(limits, rate_hz)
        """The limits at this sink's period (step per tick dq_max / rate_hz)."""
        self.rate_hz = float(rate_hz)

    def execute(self, traj: G1JointTrajectory, progress: ProgressCallback = no_progress,
                cancel: CancelToken = NEVER_CANCELED, episode_dir: Path | None = None,
                segment_index: int | None = None) -> str:
        raise NotImplementedError

    def close(self) -> None:
        """Release the sink's resources (idempotent)."""

    def __enter__(self) -> "ExecutionSink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _next_folder(episode_dir: Path, prefix: str, segment_index: int | None) -> Path:
    if segment_index is not None:
        return episode_dir / f"{prefix}_{int(segment_index):02d}"
    k = 0
    while (episode_dir / f"{prefix}_{k:02d}").exists():
        k += 1
    return episode_dir / f"{prefix}_{k:02d}"


# --------------------------------------------------------------------------------------------
# SONIC
# --------------------------------------------------------------------------------------------

class SonicSink(ExecutionSink):
    """Streams the limited trajectory to a SONIC deployment at 50 Hz (ZMQ, :class:`SonicStreamer`).

    The streamer's socket is bound once, here, and serves every goal; SONIC connects to it. Per
    goal: the trajectory is resampled to 50 Hz and limited (:func:`limit_trajectory`), written
    as SONIC's CSV motion folder ``episode_dir/sonic_XX/`` (``export_csv`` and an episode folder;
    XX = the segment index, else the next free number), then streamed once a SONIC subscriber is
    connected (waiting up to ``wait_for_subscriber_s``). Protocol v1 only: v3 needs the human's
    SMPL joints per frame, which a G1JointTrajectory does not carry.
    """

    name = "sonic"

    def __init__(self, limits: CommandLimits, endpoint: str = DEFAULT_ENDPOINT, version: int = 1,
                 wait_for_subscriber_s: float = 5.0, export_csv: bool = True, topic: bytes = DEFAULT_TOPIC,
                 streamer: Any = None):
        super().__init__(limits, SONIC_FPS)
        if isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
            raise ValueError(f"SONIC protocol version: expected one of {SUPPORTED_VERSIONS}, got {version!r}")
        if version == 3:
            raise ValueError("SONIC protocol version 3 needs the human's SMPL joints and pose for every frame, "
                             "which the retargeted G1 trajectory does not carry: use protocol version 1")
        w = wait_for_subscriber_s
        if not (isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and w >= 0):
            raise ValueError(f"wait_for_subscriber_s: expected a finite time >= 0 s, got {w!r}")
        self.version = int(version)
        self.wait_for_subscriber_s = float(w)
        self.export_csv = bool(export_csv)
        self._streamer = streamer if streamer is not None else SonicStreamer(endpoint, topic)

    @property
    def endpoint(self) -> str:
        """The bound ZMQ endpoint (the actual port when ``*`` was asked for)."""
        return self._streamer.endpoint

    def execute(self, traj: G1JointTrajectory, progress: ProgressCallback = no_progress,
                cancel: CancelToken = NEVER_CANCELED, episode_dir: Path | None = None,
                segment_index: int | None = None) -> str:
        limited, clamped = limit_trajectory(self.limits, traj, self.rate_hz)
        folder = None
        if self.export_csv and episode_dir is not None:
            folder = _next_folder(Path(episode_dir), "sonic", segment_index)
            try:
                export_csv_motion(limited, folder)
            except (OSError, SonicError) as e:
                raise ExecutionError(f"SONIC CSV motion {folder}: {e}") from None
        n = limited.num_frames
        progress(0, n, f"waiting for a SONIC subscriber on {self.endpoint}")
        try:
            if not self._streamer.wait_for_subscriber(self.wait_for_subscriber_s, cancel):
                raise ExecutionError(f"no SONIC deployment subscribed to {self.endpoint} within "
                                     f"{self.wait_for_subscriber_s:g} s: is it running?"
                                     f"{f' (CSV motion written to {folder})' if folder else ''}")
            sent = self._streamer.stream(limited, progress, cancel, rate_hz=self.rate_hz, version=self.version)
        except SonicError as e:
            raise ExecutionError(f"SONIC stream: {e}") from None
        except (Canceled, ExecutionError):
            raise
        except Exception as e:  # noqa: BLE001 - zmq errors: one clear line for the goal result
            raise ExecutionError(f"SONIC stream to {self.endpoint} failed: {type(e).__name__}: {e}") from None
        return (f"streamed {sent} frames ({limited.duration_s:.1f} s at {self.rate_hz:g} Hz) to SONIC at "
                f"{self.endpoint} (protocol v{self.version}); {clamped} joint values clamped by the limits"
                f"{f'; CSV motion {folder}' if folder else ''}")

    def close(self) -> None:
        self._streamer.close()


# --------------------------------------------------------------------------------------------
# /arm_sdk + built-in locomotion
# --------------------------------------------------------------------------------------------

def _gains(values: Any, default: np.ndarray, bound: np.ndarray, what: str) -> np.ndarray:
    """29 gains (motor order) from None, a scalar, 17 (motors 12..28) or 29 values; upper body checked."""
    g = np.array(default, dtype=np.float64)
    if values is not None:
        a = np.asarray(values, dtype=np.float64)
        if a.ndim == 0 or a.shape == (len(ARM_SDK_JOINTS),):
            g[ARM_SDK_JOINTS] = a
        elif a.shape == (NUM_BODY_JOINTS,):
            g = a.copy()
        else:
            raise ValueError(f"{what}: expected a scalar, {len(ARM_SDK_JOINTS)} values (motors 12..28) or "
                             f"{NUM_BODY_JOINTS}, got shape {a.shape}")
    u = g[ARM_SDK_JOINTS]
    if not np.all(np.isfinite(u)) or np.any(u < 0):
        raise ValueError(f"{what}: expected finite gains >= 0 for motors 12..28, got {u.tolist()}")
    over = [f"motor {m}: {g[m]:g} > {bound[m]:g}" for m in ARM_SDK_JOINTS if g[m] > bound[m]]
    if over:
        raise ValueError(f"{what}: gains beyond the limits' bound ({'; '.join(over[:3])}); lower them")
    return g


class ArmSdkSink(ExecutionSink):
    """Upper body over ``/arm_sdk`` (motors 12..28, blend weight) and the root motion as locomotion requests.

    One goal, ticks at ``rate_hz`` on absolute time (tick k at t0 + k / rate_hz; a late tick
    samples where the clock is, never bursts):

    1. blend in over ``ramp_in_s``: weight 0 -> 1 (:class:`BlendRamp`) with the target moving
       from the measured upper-body pose (``measured_q()``, read once) to the trajectory's first
       frame by the same weight;
    2. track: the trajectory sampled at the elapsed time, weight exactly 1; the locomotion plan
       (SetVelocity requests from the root's body-frame velocity, :func:`base_velocity_commands`
       and :meth:`LocomotionRequests.velocity_plan`) sent through ``send_request`` at its times;
    3. blend out over ``ramp_out_s`` holding the last target, down to weight exactly 0, then
       ``final_zero_frames`` more frames of weight 0; a stop request if the base was walking.

    Every target passes through the limits at period 1 / rate_hz (step from the previous sent
    target, the first from the measured pose); the legs (0..11) of every frame are all zero.
    Cancel: a stop request at once (unless ``walk`` is off: then no request is ever sent), blend
    out from the current weight, then Canceled. A failure
    (publishing, ``state_problem()`` returning a reason) does the same best-effort and raises
    :class:`ExecutionError`. ``clock``/``sleep`` are injectable for tests.
    """

    name = "arm_sdk"

    def __init__(self, limits: CommandLimits, publish_arm_sdk: Callable[[LowCmdFrame], None],
                 send_request: Callable[[dict], None], measured_q: Callable[[], np.ndarray | None],
                 rate_hz: float = 50.0, ramp_in_s: float = 1.0, ramp_out_s: float = 2.0,
                 kp: Any = None, kd: Any = None, *, locomotion: LocomotionRequests | None = None,
                 state_problem: Callable[[], str] | None = None, mode_machine: Callable[[], int] | None = None,
                 walk: bool = True, final_zero_frames: int = 5, min_walk_s: float = 0.3,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        super().__init__(limits, rate_hz)
        BlendRamp(ramp_in_s, ramp_out_s)  # validates both durations
        if not (isinstance(final_zero_frames, int) and final_zero_frames >= 1):
            raise ValueError(f"final_zero_frames: expected an integer >= 1, got {final_zero_frames!r}")
        self.publish_arm_sdk = publish_arm_sdk
        self.send_request = send_request
        self.measured_q = measured_q
        self.ramp_in_s, self.ramp_out_s = float(ramp_in_s), float(ramp_out_s)
        self.kp = _gains(kp, DEFAULT_KP, self.limits.kp_max, "arm_sdk kp")
        self.kd = _gains(kd, DEFAULT_KD, self.limits.kd_max, "arm_sdk kd")
        self.locomotion = locomotion or LocomotionRequests()
        self.state_problem = state_problem
        self.mode_machine = mode_machine
        self.final_zero_frames = final_zero_frames
        self.walk = bool(walk)
        self.min_walk_s = float(min_walk_s)
        self.clock, self.sleep = clock, sleep

    # -- planning (nothing sent) --------------------------------------------------------------
    def locomotion_plan(self, traj: G1JointTrajectory) -> list[TimedRequest]:
        """SetVelocity requests for the root motion (times from the start of tracking); [] if it stands
        (or ``walk`` is off)."""
        if not self.walk:
            return []
        try:
            cmds = base_velocity_commands(traj.root_pos_world_m, traj.root_quat_wxyz, float(traj.fps))
            if not needs_locomotion(cmds, self.min_walk_s, float(traj.fps)):
                return []
            return self.locomotion.velocity_plan(cmds, float(traj.fps))
        except ValueError as e:
            raise ExecutionError(f"locomotion plan from the root trajectory: {e}; nothing sent") from None

    def _measured(self) -> np.ndarray:
        try:
            q = self.measured_q()
        except Exception as e:  # noqa: BLE001
            raise ExecutionError(f"measured pose: {type(e).__name__}: {e}; nothing sent") from None
        if q is None:
            raise ExecutionError("no measured robot pose (is /lowstate arriving?): cannot blend in; nothing sent")
        q = np.asarray(q, dtype=np.float64)
        if q.shape != (NUM_BODY_JOINTS,) or not np.all(np.isfinite(q)):
            raise ExecutionError(f"measured pose: expected {NUM_BODY_JOINTS} finite joint positions, got "
                                 f"shape {q.shape}{' with NaN/Inf' if q.shape == (NUM_BODY_JOINTS,) else ''}; "
                                 "nothing sent")
        return q

    # -- execution ----------------------------------------------------------------------------
    def execute(self, traj: G1JointTrajectory, progress: ProgressCallback = no_progress,
                cancel: CancelToken = NEVER_CANCELED, episode_dir: Path | None = None,
                segment_index: int | None = None) -> str:
        check_trajectory(traj)
        plan = self.locomotion_plan(traj)
        walks = any(json_velocity(r.request) != (0.0, 0.0, 0.0) for r in plan)
        if self.state_problem is not None:
            why = self.state_problem()
            if why:
                raise ExecutionError(f"not moving: {why}; nothing sent")
        q_meas = self._measured()
        mode_machine = 0 if self.mode_machine is None else int(self.mode_machine() or 0)
        q0_traj = np.asarray(traj.positions_rad[0], dtype=np.float64)
        duration = traj.duration_s
        lim, rate = self.limits, self.rate_hz
        upper = np.isin(np.arange(NUM_BODY_JOINTS), ARM_SDK_JOINTS)
        zeros = np.zeros(NUM_BODY_JOINTS)
        ramp = BlendRamp(self.ramp_in_s, self.ramp_out_s)
        ramp.start(0.0)
        t_track0 = self.ramp_in_s
        n_total = int(math.ceil((self.ramp_in_s + duration + self.ramp_out_s) * rate)) + self.final_zero_frames
        report_every = max(1, int(round(rate / 5)))

        prev = q_meas.copy()  # the step bound of the first target starts from the measured pose
        hold: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (q, kp, kd) held while blending out
        clamped = next_req = zero_sent = sent = failures = 0
        blending_out = stop_sent = False
        t_out = 0.0
        ending: BaseException | None = None  # Canceled or the failure that made us blend out

        def begin_blend_out(now: float, stop: bool) -> None:
            nonlocal blending_out, stop_sent, t_out
            blending_out, t_out = True, now
            ramp.release(max(now, 0.0))
            if stop and not stop_sent:
                stop_sent = True  # set first: a failing stop request is not retried forever
                self.send_request(self.locomotion.stop())

        t0 = self.clock()
        k = 0
        now = 0.0
        while True:
            try:
                _wait_until(t0 + k / rate, self.clock, self.sleep, None if blending_out else cancel, "arm_sdk motion")
            except Canceled as e:
                ending = e
            now = self.clock() - t0
            if now > (k + 2) / rate:  # fell behind: resynchronise the tick counter (no burst)
                k = int(math.floor(now * rate))
            try:
                if ending is not None and not blending_out:  # canceled: stop walking now, blend out
                    begin_blend_out(now, stop=self.walk)
                if not blending_out:
                    if self.state_problem is not None and k % 5 == 0:
                        why = self.state_problem()
                        if why:
                            raise ExecutionError(f"execution stopped: {why}")
                    tracking = now >= t_track0 - _TICK_TOLERANCE_S
                    if not tracking:
                        q_des, dq_des = q_meas + ramp.weight(now) * (q0_traj - q_meas), zeros
                    else:
                        q_des, dq_des = traj.sample(max(0.0, now - t_track0))
                        while next_req < len(plan) and plan[next_req].t_s <= now - t_track0 + 1e-9:
                            self.send_request(plan[next_req].request)
                            next_req += 1
                    cmd = lim.apply(np.where(upper, q_des, prev), np.where(upper, dq_des, 0.0), prev, self.kp, self.kd)
                    clamped += int(np.count_nonzero(cmd.clamped[ARM_SDK_JOINTS]))
                    q_send, dq_send, kp_send, kd_send = cmd.q, cmd.dq, cmd.kp, cmd.kd
                    hold = (cmd.q, cmd.kp, cmd.kd)
                    weight = ramp.weight(max(now, t_track0) if tracking else now)  # exactly 1 while tracking
                    if now >= t_track0 + duration - _TICK_TOLERANCE_S:  # the trajectory's last frame: blend out
                        begin_blend_out(now, stop=walks)
                else:
                    if hold is None:  # stopped before the first frame: hold the measured pose (weight 0)
                        cmd = lim.apply(prev, zeros, None, self.kp, self.kd)
                        hold = (cmd.q, cmd.kp, cmd.kd)
                    (q_send, kp_send, kd_send), dq_send = hold, zeros
                    weight = ramp.weight(now)  # exactly 0 once the blend-out is over
                self.publish_arm_sdk(arm_sdk_command(q_send, weight, kp_send, kd_send, dq_send, mode_machine))
                sent += 1
                prev = q_send
                if blending_out and weight == 0.0:
                    zero_sent += 1
                    if zero_sent >= self.final_zero_frames:
                        break
                if sent % report_every == 0:
                    progress(min(sent, n_total), n_total, f"arm_sdk {ramp.phase(now)} t={now:.1f} s")
            except Exception as e:  # noqa: BLE001 - publish / request / state failure: blend out, report
                failures += 1
                if not isinstance(ending, ExecutionError):
                    ending = e if isinstance(e, ExecutionError) else ExecutionError(
                        f"arm_sdk execution failed at t={now:.2f} s: {type(e).__name__}: {e}")
                if failures >= 3:
                    raise ExecutionError(f"{ending}; blending out failed too ({type(e).__name__}: {e}): "
                                         "the built-in controller may still hold the upper body") from None
                if not blending_out:
                    try:
                        begin_blend_out(now, stop=self.walk)
                    except Exception:  # noqa: BLE001 - the blend-out must still happen
                        pass
            k += 1
        progress(n_total, n_total, "arm_sdk done")
        if isinstance(ending, Canceled):
            raise Canceled(f"arm_sdk motion canceled at t={t_out:.1f} s: {'stop request sent, ' if stop_sent else ''}"
                           f"upper body blended out to weight 0 in {now - t_out:.1f} s")
        if ending is not None:
            raise ExecutionError(f"{ending}; {'stop request sent, ' if stop_sent else ''}upper body blended out "
                                 "to weight 0")
        n_walk = sum(1 for r in plan if json_velocity(r.request) != (0.0, 0.0, 0.0))
        return (f"arm_sdk: tracked {duration:.1f} s of upper body at {rate:g} Hz after a {self.ramp_in_s:g} s "
                f"blend-in, blended out in {self.ramp_out_s:g} s; {len(plan)} locomotion requests ({n_walk} moving"
                f"{', then a stop' if walks else ''}); {clamped} joint values clamped by the limits")

    def close(self) -> None:
        """Nothing held: the publishers belong to the node."""


def json_velocity(request: dict) -> tuple[float, float, float] | None:
    """[vx, vy, yaw_rate] of a SetVelocity request dict (None for other requests)."""
    try:
        v = json.loads(request["parameter"]).get("velocity")
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return None if v is None else tuple(float(x) for x in v)
