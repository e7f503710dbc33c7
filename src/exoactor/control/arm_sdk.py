"""High-level G1 control: ``/arm_sdk`` upper-body override and the built-in locomotion service.

On a real G1 the built-in controller keeps balance and walks; two interfaces sit on top of it
(../shared/notes/unitree-g1.md):

- ``/arm_sdk`` (unitree_hg/LowCmd, ~50 Hz): entries 12..28 (waist + arms, Unitree motor order)
  override the built-in upper body, blended by the weight in ``motor_cmd[29].q`` in [0, 1]. Ramp
  the weight up before moving and down (about 2 s) before stopping, then publish weight 0:
  :class:`BlendRamp` and :func:`arm_sdk_command`.
- ``/api/sport/request`` (unitree_api/Request, JSON parameter strings): SetFsmId 7101, GetFsmId
  7001, SetVelocity 7105 ``{"velocity": [vx, vy, yaw_rate], "duration": s}`` (body frame, m/s,
  rad/s): :class:`LocomotionRequests`.

ROS-free: requests are plain dicts ``{"api_id": int, "parameter": str}`` (the node copies them
into ``header.identity.api_id`` and ``parameter`` and fills the request id); commands are
:class:`exoactor.g1.lowcmd.LowCmdFrame` (arrays over the 35 motor slots, CRC on encoding).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from exoactor.g1.joints import DEFAULT_KD, DEFAULT_KP, NUM_BODY_JOINTS, NUM_MOTOR_SLOTS, UPPER_BODY_INDICES
from exoactor.g1.lowcmd import LowCmdFrame

ARM_SDK_JOINTS = UPPER_BODY_INDICES
"""Motor indices /arm_sdk overrides: 12..28 (waist yaw/roll/pitch, left arm 7, right arm 7)."""
BLEND_WEIGHT_INDEX = 29
"""``motor_cmd[29].q`` of an /arm_sdk LowCmd is the blend weight (slot 29 is unused by the body)."""
NUM_ARM_SDK_JOINTS = len(ARM_SDK_JOINTS)


# --------------------------------------------------------------------------------------------
# Blend weight
# --------------------------------------------------------------------------------------------

class BlendRamp:
    """The /arm_sdk blend weight over time: 0 -> linear ramp to 1 over ``ramp_in_s`` -> hold 1 ->
    (after :meth:`release`) linear ramp down at 1/``ramp_out_s`` per second -> exactly 0.

    Time-based and stateless between calls: ``weight(t)`` is a function of the clock value ``t``
    (seconds, any monotonic clock, the same one for every call). Guarantees, for any t: the
    weight is in [0, 1]; it is non-decreasing up to the release time and non-increasing after;
    it is exactly 0 before :meth:`start` and from ``release_t + ramp_out_s * w_release`` on
    (w_release = the weight at release, 1 after a full ramp-in). Releasing during the ramp-in
    ramps down from where it was, at the same rate (so never faster than a full ramp-out).
    """

    def __init__(self, ramp_in_s: float = 1.0, ramp_out_s: float = 2.0):
        for name, v in (("ramp_in_s", ramp_in_s), ("ramp_out_s", ramp_out_s)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name}: expected a finite duration > 0 s, got {v!r}")
        self.ramp_in_s = float(ramp_in_s)
        self.ramp_out_s = float(ramp_out_s)
        self.start_t: float | None = None
        self.release_t: float | None = None

    def start(self, t_s: float) -> None:
        """Begin the ramp-in at ``t_s`` (again after a finished ramp-out: a fresh cycle)."""
        if not math.isfinite(t_s):
            raise ValueError(f"start time: expected a finite clock value, got {t_s!r}")
        if self.start_t is not None and not self.finished(t_s):
            raise ValueError("start: the ramp is already running (release it and let it finish first)")
        self.start_t, self.release_t = float(t_s), None

    def release(self, t_s: float) -> None:
        """Begin the ramp-out at ``t_s`` (a second release is ignored; the first one stands)."""
        if self.start_t is None:
            raise ValueError("release: expected a started ramp, got one never started")
        if not math.isfinite(t_s) or t_s < self.start_t:
            raise ValueError(f"release time: expected a clock value >= the start {self.start_t}, got {t_s!r}")
        if self.release_t is None:
            self.release_t = float(t_s)

    def _ramp_in(self, t_s: float) -> float:
        assert self.start_t is not None
        if t_s <= self.start_t:
            return 0.0
        return min(1.0, (t_s - self.start_t) / self.ramp_in_s)

    def weight(self, t_s: float) -> float:
        """The blend weight at clock time ``t_s``, in [0, 1]."""
        if self.start_t is None or not t_s > self.start_t:  # also NaN -> 0 (the safe side)
            return 0.0
        if self.release_t is None or t_s <= self.release_t:
            return self._ramp_in(t_s)
        w0 = self._ramp_in(self.release_t)
        if t_s >= self._end_t():  # exactly 0 from release_end_t on
            return 0.0
        left = w0 - (t_s - self.release_t) / self.ramp_out_s
        return min(w0, max(0.0, left))

    def _end_t(self) -> float:
        assert self.release_t is not None
        w0 = self._ramp_in(self.release_t)
        end = self.release_t + self.ramp_out_s * w0
        if w0 > 0.0 and end <= self.release_t:  # a weight too small to move the clock: the next tick
            end = math.nextafter(self.release_t, math.inf)
        return end

    def release_end_t(self) -> float | None:
        """Clock time from which the weight is exactly 0 again (None before :meth:`release`)."""
        return None if self.release_t is None else self._end_t()

    def finished(self, t_s: float) -> bool:
        """Released and ramped all the way down at ``t_s`` (publish weight 0 from now on)."""
        end = self.release_end_t()
        return end is not None and t_s >= end

    def phase(self, t_s: float) -> str:
        """"idle", "ramp_in", "hold", "ramp_out" or "done" at ``t_s``."""
        if self.start_t is None or t_s <= self.start_t:
            return "idle"
        if self.release_t is None or t_s <= self.release_t:
            return "ramp_in" if t_s < self.start_t + self.ramp_in_s else "hold"
        return "done" if self.finished(t_s) else "ramp_out"


# --------------------------------------------------------------------------------------------
# /arm_sdk LowCmd
# --------------------------------------------------------------------------------------------

def _upper(values: Any, what: str, default: np.ndarray | None = None) -> np.ndarray:
    """``values`` as the 17 upper-body entries: a scalar, 17 values (12..28) or 29 (motor order)."""
    if values is None:
        if default is None:
            raise ValueError(f"{what}: expected values, got None")
        return default[ARM_SDK_JOINTS].astype(np.float64)
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 0:
        a = np.full(NUM_ARM_SDK_JOINTS, float(a))
    elif a.shape == (NUM_BODY_JOINTS,):
        a = a[ARM_SDK_JOINTS]
    elif a.shape != (NUM_ARM_SDK_JOINTS,):
        raise ValueError(f"{what}: expected a scalar, {NUM_ARM_SDK_JOINTS} values (motors 12..28) or "
                         f"{NUM_BODY_JOINTS} (Unitree motor order), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what}: expected finite values, got NaN/Inf")
    return a


def arm_sdk_command(q_upper: Any, weight: float, kp: Any = None, kd: Any = None, dq_upper: Any = None,
                    mode_machine: int = 0) -> LowCmdFrame:
    """One /arm_sdk LowCmd: upper body (motors 12..28) at ``q_upper``, blend ``weight`` in slot 29.

    q_upper: 17 targets (motors 12..28) or 29 (Unitree motor order; the legs are ignored), rad;
    dq_upper: the same for velocity targets (default 0); kp, kd: scalar, 17 or 29 values (default
    the official example gains, DEFAULT_KP / DEFAULT_KD). Legs (0..11) and slots 30..34 stay all
    zero (mode 0: /arm_sdk never drives the legs); motors 12..28 get mode 1 (enabled) and tau 0;
    ``motor_cmd[29].q = weight`` (everything else of slot 29 zero). Copy ``mode_machine`` from
    LowState. Raises ValueError on a weight outside [0, 1], negative gains, or NaN/Inf.
    """
    w = float(weight)
    if not (math.isfinite(w) and 0.0 <= w <= 1.0):
        raise ValueError(f"blend weight: expected a value in [0, 1], got {weight!r}")
    q = _upper(q_upper, "q_upper")
    dq = _upper(dq_upper, "dq_upper", np.zeros(NUM_BODY_JOINTS))
    kp_u = _upper(kp, "kp", DEFAULT_KP)
    kd_u = _upper(kd, "kd", DEFAULT_KD)
    if np.any(kp_u < 0) or np.any(kd_u < 0):
        raise ValueError(f"gains: expected kp, kd >= 0, got min kp {kp_u.min()}, min kd {kd_u.min()}")
    frame = LowCmdFrame(mode_machine=int(mode_machine))
    frame.q[ARM_SDK_JOINTS] = q
    frame.dq[ARM_SDK_JOINTS] = dq
    frame.kp[ARM_SDK_JOINTS] = kp_u
    frame.kd[ARM_SDK_JOINTS] = kd_u
    frame.mode[ARM_SDK_JOINTS] = 1
    frame.q[BLEND_WEIGHT_INDEX] = w
    assert frame.q.shape == (NUM_MOTOR_SLOTS,)
    return frame


# --------------------------------------------------------------------------------------------
# Locomotion service requests
# --------------------------------------------------------------------------------------------

API_GET_FSM_ID = 7001
API_SET_FSM_ID = 7101
API_SET_VELOCITY = 7105

FSM_ZERO_TORQUE = 0
FSM_DAMP = 1
FSM_STAND_UP = 4


class TimedRequest(NamedTuple):
    """A request to send ``t_s`` seconds after the plan starts."""

    t_s: float
    request: dict[str, Any]


@dataclass(frozen=True)
class LocomotionRequests:
    """Builds /api/sport/request payloads for the G1's built-in locomotion.

    Speed bounds (chosen by this project, not Unitree limits: deliberately conservative for a
    robot walking indoors from open-loop, video-estimated commands, well inside what the G1's
    walking controller does): forward vx in [-0.3, 0.6] m/s (backwards slower: the robot cannot
    see behind), lateral vy in [-0.3, 0.3] m/s, yaw rate in [-0.8, 0.8] rad/s. Each request's
    duration is > 0 and at most ``max_duration_s`` (5 s): if the link dies the robot stops on its
    own soon. Out-of-range speeds are clamped, not refused; NaN/Inf or a duration <= 0 is refused.
    """

    vx_min: float = -0.3
    vx_max: float = 0.6
    vy_max: float = 0.3
    yaw_rate_max: float = 0.8
    max_duration_s: float = 5.0

    def __post_init__(self) -> None:
        if not (self.vx_min <= 0.0 <= self.vx_max and self.vy_max >= 0 and self.yaw_rate_max >= 0
                and self.max_duration_s > 0):
            raise ValueError(f"locomotion bounds: expected vx_min <= 0 <= vx_max, vy/yaw bounds >= 0 and "
                             f"max_duration_s > 0, got {self}")

    # -- single requests ---------------------------------------------------------------------
    def clamp(self, velocity: Any) -> np.ndarray:
        """(..., 3) [vx, vy, yaw_rate] clamped to the bounds (raises ValueError on NaN/Inf)."""
        v = np.asarray(velocity, dtype=np.float64)
        if v.ndim < 1 or v.shape[-1] != 3:
            raise ValueError(f"velocity: expected (..., 3) [vx, vy, yaw_rate], got shape {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError("velocity: expected finite values, got NaN/Inf")
        lo = np.array([self.vx_min, -self.vy_max, -self.yaw_rate_max])
        hi = np.array([self.vx_max, self.vy_max, self.yaw_rate_max])
        return np.clip(v, lo, hi)

    def set_velocity(self, vx: float, vy: float, yaw_rate: float, duration_s: float) -> dict[str, Any]:
        """SetVelocity (7105): body-frame [vx m/s, vy m/s, yaw_rate rad/s] for ``duration_s`` s."""
        d = float(duration_s)
        if not (math.isfinite(d) and d > 0):
            raise ValueError(f"SetVelocity duration: expected a finite value > 0 s, got {duration_s!r}")
        if d > self.max_duration_s + 1e-9:
            raise ValueError(f"SetVelocity duration: expected at most {self.max_duration_s} s, got {d}")
        v = self.clamp([vx, vy, yaw_rate])
        return {"api_id": API_SET_VELOCITY,
                "parameter": json.dumps({"velocity": [float(x) for x in v], "duration": d})}

    def stop(self) -> dict[str, Any]:
        """SetVelocity zero for 1 s: stand still now (what Unitree's LocoClient.StopMove sends)."""
        return self.set_velocity(0.0, 0.0, 0.0, 1.0)

    @staticmethod
    def set_fsm_id(fsm_id: int) -> dict[str, Any]:
        """SetFsmId (7101) ``{"data": fsm_id}`` (0 zero torque, 1 damp, 4 stand up...)."""
        if isinstance(fsm_id, bool) or not isinstance(fsm_id, (int, np.integer)) or fsm_id < 0:
            raise ValueError(f"FSM id: expected a non-negative integer, got {fsm_id!r}")
        return {"api_id": API_SET_FSM_ID, "parameter": json.dumps({"data": int(fsm_id)})}

    @staticmethod
    def get_fsm_id() -> dict[str, Any]:
        """GetFsmId (7001); the answer's data is ``{"data": fsm_id}``. Parameter "{}" as Unitree's Python SDK."""
        return {"api_id": API_GET_FSM_ID, "parameter": json.dumps({})}

    # -- plans -------------------------------------------------------------------------------
    def velocity_plan(self, cmds: Any, fps: float, tolerance: Any = (0.1, 0.1, 0.15), min_segment_s: float = 0.5,
                      deadband: Any = (0.03, 0.03, 0.05)) -> list[TimedRequest]:
        """Per-frame body-frame commands (T, 3) [vx, vy, yaw_rate] at ``fps`` -> a few SetVelocity requests.

        Frames are clamped to the bounds, then grouped greedily into segments whose every frame
        stays within ``tolerance`` (per component) of the segment's mean; segments shorter than
        ``min_segment_s`` are merged into the neighbour with the closest command, then neighbours
        whose means agree within ``tolerance`` are joined; each segment is sent as its mean
        command, components inside ``deadband`` set to exactly 0 (standing still is an explicit
        zero request). Segments longer than ``max_duration_s`` are split.
        Request k is sent at ``t_s`` = its first frame / fps and lasts until the next one starts
        (durations sum to T / fps: frame k covers [k/fps, (k+1)/fps)).
        """
        if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps: expected a positive frame rate, got {fps!r}")
        c = np.asarray(cmds, dtype=np.float64)
        if c.ndim != 2 or c.shape[1] != 3 or len(c) < 1:
            raise ValueError(f"velocity commands: expected (T >= 1, 3) [vx, vy, yaw_rate], got shape {c.shape}")
        c = self.clamp(c)
        tol = np.broadcast_to(np.asarray(tolerance, dtype=np.float64), (3,))
        dead = np.broadcast_to(np.asarray(deadband, dtype=np.float64), (3,))

        # 1. greedy segments [start, end): every frame within tolerance of the segment mean
        segments: list[list[int]] = []
        start, total, lo, hi = 0, c[0].copy(), c[0].copy(), c[0].copy()
        for k in range(1, len(c)):
            mean = (total + c[k]) / (k - start + 1)
            new_lo, new_hi = np.minimum(lo, c[k]), np.maximum(hi, c[k])
            if np.all(new_hi - mean <= tol) and np.all(mean - new_lo <= tol):
                total, lo, hi = total + c[k], new_lo, new_hi
            else:
                segments.append([start, k])
                start, total, lo, hi = k, c[k].copy(), c[k].copy(), c[k].copy()
        segments.append([start, len(c)])

        # 2. merge short segments into the neighbour with the closest mean command
        min_frames = max(1, int(math.ceil(min_segment_s * fps - 1e-9)))

        def mean_of(seg: list[int]) -> np.ndarray:
            return c[seg[0]:seg[1]].mean(axis=0)

        while len(segments) > 1:
            lengths = [e - s for s, e in segments]
            k = int(np.argmin(lengths))
            if lengths[k] >= min_frames:
                break
            m = mean_of(segments[k])
            candidates = [n for n in (k - 1, k + 1) if 0 <= n < len(segments)]
            n = min(candidates, key=lambda n: float(np.abs(mean_of(segments[n]) - m).max()))
            lo, hi = min(k, n), max(k, n)
            segments[lo:hi + 1] = [[segments[lo][0], segments[hi][1]]]

        # 3. join neighbours whose mean commands agree within tolerance (a glitch split a phase)
        merged = True
        while merged and len(segments) > 1:
            merged = False
            for k in range(len(segments) - 1):
                if np.all(np.abs(mean_of(segments[k]) - mean_of(segments[k + 1])) <= tol):
                    segments[k:k + 2] = [[segments[k][0], segments[k + 1][1]]]
                    merged = True
                    break

        # 4. one command per segment (deadband to exact zero); neighbours left equal are joined
        commands: list[tuple[int, int, np.ndarray]] = []
        for s, e in segments:
            v = mean_of([s, e])
            v = np.where(np.abs(v) <= dead, 0.0, v)
            if commands and np.array_equal(commands[-1][2], v):
                commands[-1] = (commands[-1][0], e, v)
            else:
                commands.append((s, e, v))

        # 5. requests, segments longer than max_duration_s split
        max_frames = max(1, int(math.floor(self.max_duration_s * fps + 1e-9)))
        plan: list[TimedRequest] = []
        for s, e, v in commands:
            for a in range(s, e, max_frames):
                b = min(e, a + max_frames)
                plan.append(TimedRequest(a / fps, self.set_velocity(v[0], v[1], v[2], (b - a) / fps)))
        return plan
