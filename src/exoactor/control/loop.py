"""The control loop's logic behind ``/lowcmd``: state intake, watchdogs, e-stop, never silence.

ROS-free and clock-agnostic (the node passes monotonic seconds and raw message bytes):

- :meth:`ControlLoop.on_lowstate` (the /lowstate thread) checks every LowState (size, CRC, finite
  values); a bad one is counted by reason and dropped: it never refreshes the watchdog's freshness.
- :meth:`ControlLoop.tick` (the control thread, every period) never raises and never goes
  silent: while a motion runs, a stale state, a motor fault or an over-temperature motor switches to
  damping; ANY exception (a malformed state, an unsafe command, a failing encoder) also switches
  to damping and the tick still returns a damping command (a prebuilt one if even encoding fails).
- Every switch to damping sets :attr:`ControlLoop.stopped` with a reason: the running goal waits on
  that event and aborts at once, with the reason.
- E-stop (:meth:`estop`) latches damping and refuses goals until :meth:`estop_reset`, which is only
  accepted while no goal runs.
"""
from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from exoactor.control.balance import BaseOdometry, fallen_reason
from exoactor.control.tracker import JointCommand, JointTrackingController, Phase
from exoactor.g1.joints import G1_JOINT_NAMES
from exoactor.g1.lowstate import LowStateSample

Log = Callable[[str, str], None]
"""log(level, message), level in "info", "warn", "error"."""


def period_stats(sent_t, since: float, nominal_s: float) -> tuple[float, float, float, float]:
    """(rate Hz, period p50 ms, period p99 ms, period error p99 ms) of the commands sent at ``sent_t``
    (s) since ``since``; the error is |period - nominal_s| (a late command and the short period after
    it both count); (0, nan, nan, nan) for fewer than three."""
    t = np.array([x for x in list(sent_t) if x >= since])
    if len(t) < 3:
        return 0.0, float("nan"), float("nan"), float("nan")
    d = np.diff(t) * 1e3
    return (float((len(t) - 1) / (t[-1] - t[0])), float(np.percentile(d, 50)), float(np.percentile(d, 99)),
            float(np.percentile(np.abs(d - nominal_s * 1e3), 99)))


def stale_problem(have_state: bool, age_s: float, timeout_s: float) -> str:
    """Why the newest LowState is too old to drive the robot with ('' when it is fresh)."""
    if not have_state:
        return "no usable /lowstate received"
    if age_s > timeout_s:
        return f"no usable /lowstate for {age_s:.2f} s (limit {timeout_s} s)"
    return ""


def health_problem(sample: LowStateSample | None, temperature_stop_c: float) -> str:
    """Why the motors of this LowState must not be driven: a fault or over-temperature ('' if none)."""
    if sample is None:
        return ""
    faults = sample.faults()
    if faults:
        return "motor fault: " + ", ".join(f"motor {i} ({G1_JOINT_NAMES[i]}) error flags 0x{f:08x}"
                                            for i, f in faults[:4])
    hot = sample.temperature_c >= temperature_stop_c
    if np.count_nonzero(hot):
        over = np.flatnonzero(hot)
        return "motor over-temperature fault: " + ", ".join(
            f"motor {i} ({G1_JOINT_NAMES[i]}) {sample.temperature_c[i]:.0f} C" for i in over[:4]) + \
            f" (stop at {temperature_stop_c:.0f} C)"
    return ""


class ControlLoop:
    def __init__(self, controller: JointTrackingController, parse_state: Callable[[bytes], LowStateSample],
                 encode: Callable[[JointCommand, int], Any], state_timeout_s: float = 0.25,
                 temperature_warn_c: float = 80.0, temperature_stop_c: float = 95.0, log: Log | None = None,
                 observe_period_s: float = 0.005, odom_timeout_s: float = 1.0):
        if not temperature_warn_c <= temperature_stop_c:
            raise ValueError(f"temperature warning {temperature_warn_c} C above the stop {temperature_stop_c} C")
        self.controller = controller
        self.parse_state = parse_state
        self.encode = encode
        self.state_timeout_s = float(state_timeout_s)
        self.odom_timeout_s = float(odom_timeout_s)
        """Oldest odometry the leg policy's outer loops may use (they average over a gait period, so a
        gap of a few messages of a best-effort topic is harmless; the LowState watchdog is what
        protects the robot)."""
        self.temperature_warn_c = float(temperature_warn_c)
        self.temperature_stop_c = float(temperature_stop_c)
        self._log = log or (lambda _level, _msg: None)
        self.observe_period_s = observe_period_s
        self._lock = threading.RLock()
        self.stopped = threading.Event()
        """Set whenever execution was stopped (damping); the reason is :attr:`stop_reason`."""
        self.stop_reason = ""
        self.estopped = False
        self.goal_active = False
        self.bad_states: collections.Counter[str] = collections.Counter()
        """Dropped LowStates by reason ("bad CRC", "non-finite joint values", "malformed (...)")."""
        self.loop_errors = 0
        self.superseded_states = 0
        """LowStates not read because a newer one arrived in the same period (:meth:`on_lowstates`)."""
        self.ticks = 0
        self._sample: LowStateSample | None = None
        self._sample_t = -1e9
        self._odom: BaseOdometry | None = None
        self._odom_t = -1e9
        self._observed_t = -1e9
        self._hot: set[int] = set()
        self._mode_machine = 0
        self._fallback_mm = -1
        self._fallback: Any = None
        self._rebuild_fallback(0)

    def log(self, level: str, msg: str) -> None:
        """Report through the caller's logger; a failing logger never stops the loop."""
        try:
            self._log(level, msg)
        except Exception:  # noqa: BLE001 - logging must not be able to end the control loop
            pass

    # ---- /lowstate (its own thread) ----------------------------------------------------------
    def on_lowstates(self, batch: list[bytes], t_now: float) -> None:
        """The LowStates that arrived since the last period, oldest first: the newest usable one is
        kept; newer bad ones are counted and dropped; older ones are superseded unread (after a stall
        several are queued, and checking each would prolong the stall). Never raises."""
        for k in range(len(batch) - 1, -1, -1):
            if self.on_lowstate(batch[k], t_now):
                self.superseded_states += k
                return

    def on_lowstate(self, data: bytes, t_now: float) -> bool:
        """Check one LowState; keep it if usable (True), else count and drop it (False). Never raises."""
        try:
            sample = self.parse_state(data)
            why = sample.problem()
        except Exception as e:  # noqa: BLE001 - whatever arrives, the loop survives it
            sample, why = None, f"malformed ({type(e).__name__})"
        if why:
            with self._lock:
                self.bad_states[why] += 1
                n = sum(self.bad_states.values())
            if n in (1, 10, 100) or n % 1000 == 0:
                self.log("warn", f"dropped a LowState ({why}); {n} dropped so far ({self.bad_state_summary()})")
            return False
        with self._lock:
            self._sample, self._sample_t = sample, t_now
            if sample.mode_machine != self._mode_machine:
                self._mode_machine = sample.mode_machine
        if sample.mode_machine != self._fallback_mm:
            self._rebuild_fallback(sample.mode_machine)
        self._watch_temperature(sample)
        if t_now - self._observed_t >= self.observe_period_s:
            self._observed_t = t_now
            self.controller.observe(t_now, sample.q_rad)
        return True

    def _watch_temperature(self, s: LowStateSample) -> None:
        warm = s.temperature_c >= self.temperature_warn_c
        if not (self._hot or np.count_nonzero(warm)):
            return
        hot = np.flatnonzero(warm)
        for i in set(hot.tolist()) - self._hot:
            self.log("warn", f"motor {i} ({G1_JOINT_NAMES[i]}) at {s.temperature_c[i]:.0f} C "
                             f"(warning {self.temperature_warn_c:.0f} C, stop {self.temperature_stop_c:.0f} C)")
        cooled = self.temperature_warn_c - 5.0  # hysteresis: warn again only after cooling down
        self._hot = {i for i in self._hot if s.temperature_c[i] >= cooled} | set(hot.tolist())

    def on_odometry(self, odom: BaseOdometry, t_now: float) -> None:
        """The robot's base odometry (for the leg policy's outer loops); a bad one is ignored."""
        if odom.ok():
            with self._lock:
                self._odom, self._odom_t = odom, t_now

    def odometry(self, t_now: float) -> tuple[BaseOdometry | None, float]:
        """(newest odometry or None, its age in s)."""
        with self._lock:
            return self._odom, t_now - self._odom_t

    def after_tick(self, t_now: float) -> None:
        """Work after the tick's command went out: the leg policy's step (50 Hz) and the fall check,
        so inference never delays a command. Never raises: a failure stops execution (damping)."""
        lb = self.controller.lower_body
        if lb is None or not lb.due(t_now):
            return
        try:
            sample, age = self.state(t_now)
            if sample is None or age > self.state_timeout_s:
                return  # tick() stops execution on a stale state
            fell = fallen_reason(sample)
            if fell:
                self.stop(fell)
                return
            odom, odom_age = self.odometry(t_now)
            if lb.closed_loop and (odom is None or odom_age > self.odom_timeout_s):
                self.stop("no odometry for the leg policy " + (f"for {odom_age:.2f} s" if odom is not None
                                                               else "received"))
                return
            lb.update(t_now, sample, odom)
        except Exception as e:  # noqa: BLE001 - every failure ends in damping, never in silence
            self.loop_errors += 1
            self.stop(f"leg policy error: {type(e).__name__}: {e}")

    def state(self, t_now: float) -> tuple[LowStateSample | None, float]:
        """(newest usable LowState or None, its age in s)."""
        with self._lock:
            return self._sample, t_now - self._sample_t

    def bad_state_summary(self) -> str:
        with self._lock:
            return ", ".join(f"{why}: {n}" for why, n in sorted(self.bad_states.items())) or "none"

    def problem(self, sample: LowStateSample | None, age: float) -> str:
        """Why the robot must not be driven with this state ('' when it may)."""
        return stale_problem(sample is not None, age, self.state_timeout_s) or \
            health_problem(sample, self.temperature_stop_c)

    # ---- the control thread -------------------------------------------------------------------
    def tick(self, t_now: float) -> Any:
        """The LowCmd payload for this tick (None while idle: send nothing). Never raises."""
        self.ticks += 1
        mode_machine = self._mode_machine
        try:
            phase = self.controller.phase
            if self.estopped and phase != Phase.DAMPING:
                self.stop("e-stop engaged")
            elif phase not in (Phase.IDLE, Phase.DAMPING):
                sample, age = self.state(t_now)
                why = self.problem(sample, age)
                if why:
                    self.stop(why)
            cmd = self.controller.tick(t_now)
            if cmd is None:
                return None
            return self.encode(cmd, mode_machine)
        except Exception as e:  # noqa: BLE001 - every failure ends in damping, never in silence
            self.loop_errors += 1
            self.stop(f"control loop error: {type(e).__name__}: {e}")
            try:
                self.controller.note_damping_sent()  # one of the two damping commands goes out
                return self.encode(self.controller.damping_command(), mode_machine)
            except Exception:  # noqa: BLE001 - even encoding failed: the prebuilt damping command
                return self._fallback

    def fail(self, what: str) -> None:
        """Report a failure outside :meth:`tick` (e.g. publishing): damping and a stopped goal."""
        self.loop_errors += 1
        self.stop(what)

    def stop(self, reason: str, always_log: bool = False) -> None:
        """Switch to damping now; the running goal aborts with ``reason`` (the first reason is kept)."""
        with self._lock:
            first = not self.stopped.is_set()
            self.controller.damp()
            if first:
                self.stop_reason = reason
                self.stopped.set()
        if first or always_log:
            self.log("error", f"{reason}: switching to damping")

    def _rebuild_fallback(self, mode_machine: int) -> None:
        try:
            self._fallback = self.encode(self.controller.damping_command(), mode_machine)
            self._fallback_mm = mode_machine
        except Exception as e:  # noqa: BLE001 - keep the previous one
            self.log("error", f"cannot prebuild the damping command: {type(e).__name__}: {e}")

    # ---- goals and e-stop -------------------------------------------------------------------
    def begin_goal(self) -> str:
        """Start a goal: '' or why it may not run (e-stop engaged)."""
        with self._lock:
            if self.estopped:
                return "e-stop engaged: release it with /exoactor/estop_reset (std_srvs/Trigger) first"
            self.goal_active = True
            self.stopped.clear()
            self.stop_reason = ""
            return ""

    def start_motion(self, start: Callable[[], float]) -> float | None:
        """Run ``start`` (controller.start / go_to_hold) unless execution was stopped: None then.

        Atomic with :meth:`stop`, so a stop can never be overridden by a motion starting after it."""
        with self._lock:
            if self.stopped.is_set() or self.estopped:
                return None
            return start()

    def end_goal(self) -> None:
        with self._lock:
            self.goal_active = False

    def estop(self, source: str) -> None:
        """Latch damping (and abort the goal) until :meth:`estop_reset`."""
        with self._lock:
            self.estopped = True
            if not self.goal_active:
                self.stopped.clear()  # nothing to abort: keep the e-stop as the reason on record
            self.stop(f"e-stop engaged ({source})", always_log=True)

    def estop_reset(self) -> tuple[bool, str]:
        with self._lock:
            if not self.estopped:
                return True, "e-stop was not engaged"
            if self.goal_active:
                return False, "a goal is still running; the e-stop stays engaged"
            self.estopped = False
        self.log("info", "e-stop released: damping until the next goal ramps from the measured pose")
        return True, "e-stop released; the robot stays in damping until the next goal"
