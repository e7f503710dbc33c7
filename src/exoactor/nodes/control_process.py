"""The 500 Hz loop in a process of its own, with one Python thread: it does nothing but control.

In the tracking node's process the loop shares the GIL with the executor, the action server and
(by default) the IK: a normal-priority thread holding the GIL while the machine is busy stalls
the real-time loop waiting for it (LowCmd period p99 4-5 ms on 2 cores with the graph running).
Here one thread, at ``SCHED_FIFO`` where permitted, does everything in turn each period:

    publish the LowCmd prepared for this period's start -> take every new /lowstate (raw), odometry
    and e-stop message, and any e-stop service request -> :meth:`ControlLoop.tick` for the NEXT
    period's start time -> :meth:`ControlLoop.after_tick` (leg policy) -> the parent's requests
    -> a status snapshot to the parent (20 Hz) -> sleep until the next period (absolute time)

A command therefore leaves at the start of its period whatever the work costs (the period error is
the wake-up latency alone, as long as the work fits in the period). After a stall the loop skips the
periods it missed and stays on its time grid: it never sends a burst of commands to catch up. Each
command is computed from a state at most one period older than if it were computed on the spot (2 ms
at 500 Hz, against the 0.25 s state watchdog); an e-stop taken in one period is in the next period's
command.

No executor: messages are taken straight from their subscriptions' handles (what an executor does,
without its wait-set cost). The node is ``<tracking node>_lowstate`` (the name of the in-process
I/O node it replaces); it serves ``exoactor/estop`` (topic and service) and
``exoactor/estop_reset`` itself, so no stall of the parent delays an e-stop.

Parent <-> child (:class:`ControlProcess`, a ``spawn``-ed child; pipes carry pickles):

    parent -> child: (request id, name, args): begin_goal, end_goal, start, hold, fail, report, close
    child -> parent: ("ready", info) | ("startup_error", kind, message) | ("reply", id, value)
                     | ("status", snapshot) | ("stopped", reason) | ("log", level, message)

Everything the child sends goes through one pipe, in order: a snapshot sent after a reply reflects
that request. The child never blocks on the parent: a message that does not fit in the pipe now is
dropped (counted). The parent learns of a stop within one period; a child that dies fails the goal
(its exit status in the message) and the next goal starts a fresh one; a parent that dies leaves the
child damping the motors for a moment before it exits.
"""
from __future__ import annotations

import collections
import dataclasses
import gc
import math
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any, Callable

import numpy as np

from exoactor.control.loop import health_problem, period_stats, stale_problem
from exoactor.g1.safety import CommandLimits

START_TIMEOUT_S = 120.0
"""How long the child may take to import, load the leg policy and join the graph."""
REQUEST_TIMEOUT_S = 5.0
"""How long a request may wait for the child's reply (it answers within a period when healthy)."""
STATUS_PERIOD_S = 0.05
FIRST_STATE_WAIT_S = 10.0
"""How long after a control process started (at launch, or replacing one that ended) a goal waits
for its first LowState: discovery between it and the robot can take seconds on a loaded machine.
A goal later than that, with no LowState, is refused at once."""
EVENTS_EVERY = 5
"""Odometry, the e-stop topic and services are taken every this many periods (10 ms at 500 Hz; /lowstate:
every period): polling an idle handle costs tens of microseconds."""
SINGLE_THREADED_MATH = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""The child's math libraries compute in the calling thread: a matrix product handed to a BLAS worker
thread (normal priority, preempted on a busy machine) stalled the loop for up to 18 ms."""
ORPHAN_DAMPING_S = 1.0
"""A child whose parent died sends damping this long before it exits."""


@dataclasses.dataclass
class ControlProcessConfig:
    """Everything the child needs (picklable): the safety layer's limits, gains and topics."""

    limits: CommandLimits
    kp: np.ndarray
    kd: np.ndarray
    hold_pose_rad: np.ndarray
    ramp_in_min_s: float
    ramp_speed_rad_s: float
    rate_hz: float
    state_timeout_s: float
    odom_timeout_s: float
    temperature_warn_c: float
    temperature_stop_c: float
    rt_priority: int
    node_name: str
    namespace: str
    topics: dict[str, str]
    """Resolved names: lowstate, lowcmd, odom ('' = none), estop, estop_reset."""
    qos: dict[str, tuple[str, int]]
    """(reliability, depth) of lowstate and lowcmd."""
    leg_policy: bool = False
    leg_policy_path: str | None = None
    closed_loop: bool = True
    gravity_compensation: bool = False
    """Gravity feed-forward of the arms (exoactor.control.gravity), from the G1 model in
    ``model_dir`` (None: the mujoco-menagerie package's)."""
    model_dir: str | None = None


class ControlProcessError(RuntimeError):
    """The control process could not start, or stopped answering."""


class LegPolicyStartupError(ControlProcessError):
    """The child could not load the leg policy (a configuration error)."""


class EstopCallbacks:
    """The e-stop's ROS callbacks on a :class:`ControlLoop`: topic ``exoactor/estop`` (std_msgs/Bool),
    services ``exoactor/estop`` and ``exoactor/estop_reset`` (std_srvs/Trigger). Used wherever the
    loop runs (this process or the tracking node's)."""

    def __init__(self, core):
        self.core = core

    def on_topic(self, msg) -> None:
        if msg.data:
            self.core.estop("topic exoactor/estop")

    def on_service(self, _req, res):
        self.core.estop("service exoactor/estop")
        res.success, res.message = True, "e-stop engaged: damping; release with exoactor/estop_reset"
        return res

    def on_reset(self, _req, res):
        res.success, res.message = self.core.estop_reset()
        return res


# ---- the child ---------------------------------------------------------------------------------

class _Outbox:
    """Child -> parent, never blocking: a message that does not fit in the pipe now is dropped."""

    def __init__(self, conn):
        self.conn = conn
        self.dropped = 0
        self.broken = False

    def send(self, msg, wait: bool = False) -> bool:
        """Send ``msg`` now, or drop it if the pipe is full; ``wait``: block until it fits (replies,
        which the parent is waiting for and reads at once)."""
        if self.broken:
            return False
        try:
            if not wait and not select.select([], [self.conn.fileno()], [], 0)[1]:
                self.dropped += 1
                return False
            self.conn.send_bytes(pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL))
            return True
        except (OSError, ValueError):
            self.broken = True  # the parent is gone
            return False


def _take(sub, limit: int = 64) -> list:
    """Every message waiting on ``sub``, oldest first (at most ``limit``)."""
    out = []
    for _ in range(limit):
        with sub.handle:
            got = sub.handle.take_message(sub.msg_type, sub.raw)
        if got is None:
            break
        out.append(got[0])
    return out


def _drain(sub, handle_msg: Callable[[Any], None], limit: int = 64) -> None:
    for msg in _take(sub, limit):
        handle_msg(msg)


def _serve(srv, handler: Callable[[Any, Any], Any]) -> None:
    with srv.handle:
        request, header = srv.handle.service_take_request(srv.srv_type.Request)
    if header is not None:
        srv.send_response(handler(request, srv.srv_type.Response()), header)


class _Child:
    def __init__(self, cfg: ControlProcessConfig, outbox: _Outbox):
        import rclpy  # noqa: PLC0415 - the child builds its own middleware context
        from nav_msgs.msg import Odometry  # noqa: PLC0415
        from std_msgs.msg import Bool  # noqa: PLC0415
        from std_srvs.srv import Trigger  # noqa: PLC0415

        from exoactor.control.balance import PolicyLowerBody, fallen_reason  # noqa: PLC0415
        from exoactor.control.loop import ControlLoop  # noqa: PLC0415
        from exoactor.control.tracker import JointTrackingController  # noqa: PLC0415
        from exoactor.nodes.conversions import odometry_from_msg  # noqa: PLC0415
        from exoactor.nodes.presence import GraphPresence  # noqa: PLC0415
        from exoactor.nodes.unitree_io import LowCmdWriter, LowStateReader, import_unitree_hg, unitree_qos  # noqa

        self.cfg, self.out = cfg, outbox
        self._fallen_reason = fallen_reason
        lower_body = None
        if cfg.leg_policy:
            from exoactor.control.leg_policy import LegPolicy  # noqa: PLC0415

            lower_body = PolicyLowerBody(LegPolicy(cfg.leg_policy_path), closed_loop=cfg.closed_loop)
        gravity = None
        if cfg.gravity_compensation:
            from exoactor.control.gravity import GravityModel  # noqa: PLC0415
            from exoactor.g1.model import load_g1_model  # noqa: PLC0415

            gravity = GravityModel(load_g1_model(cfg.model_dir))
        self.controller = JointTrackingController(cfg.limits, cfg.kp, cfg.kd, cfg.hold_pose_rad, cfg.ramp_in_min_s,
                                                  cfg.ramp_speed_rad_s, lower_body=lower_body, gravity=gravity)
        self.writer = LowCmdWriter()
        self.core = ControlLoop(self.controller, LowStateReader().parse, self._encode, cfg.state_timeout_s,
                                cfg.temperature_warn_c, cfg.temperature_stop_c, log=self._log,
                                odom_timeout_s=cfg.odom_timeout_s)
        from rclpy.signals import SignalHandlerOptions  # noqa: PLC0415

        self.context = rclpy.Context()  # no signal handlers: SIGTERM ends this process, SIGINT is ignored
        rclpy.init(args=[], context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        LowCmd, LowState, _ = import_unitree_hg()
        self.node = rclpy.create_node(cfg.node_name, namespace=cfg.namespace, context=self.context,
                                      use_global_arguments=False)
        t = cfg.topics
        self.pub = self.node.create_publisher(LowCmd, t["lowcmd"], unitree_qos(*cfg.qos["lowcmd"]))
        noop = lambda _m: None  # noqa: E731 - messages are taken by the loop, never dispatched
        estop = EstopCallbacks(self.core)
        self.subs = [(self.node.create_subscription(LowState, t["lowstate"], noop, unitree_qos(*cfg.qos["lowstate"]),
                                                    raw=True),
                      lambda batch: self.core.on_lowstates(batch, time.monotonic()), True),
                     (self.node.create_subscription(Bool, t["estop"], noop, 10), estop.on_topic, False)]
        if t.get("odom"):
            from rclpy.qos import qos_profile_sensor_data  # noqa: PLC0415

            self.subs.append((self.node.create_subscription(Odometry, t["odom"], noop, qos_profile_sensor_data),
                              lambda m: self.core.on_odometry(odometry_from_msg(m), time.monotonic()), False))
        self.services = [(self.node.create_service(Trigger, t["estop"], estop.on_service), estop.on_service),
                         (self.node.create_service(Trigger, t["estop_reset"], estop.on_reset), estop.on_reset)]
        self.presence = GraphPresence(self.node)  # its timer never fires here: the loop calls check()
        self.sent_t: collections.deque[float] = collections.deque(maxlen=60000)
        self.work_s: collections.deque[float] = collections.deque(maxlen=60000)
        """How long each period's work took (s): intake, tick, publish, leg policy, requests, snapshot."""
        self._reported_stop = False

    def _encode(self, cmd, mode_machine: int):
        return self.writer.build(cmd.q_rad, cmd.dq_rad_s, cmd.kp, cmd.kd, mode_machine, cmd.tau_nm)

    def _log(self, level: str, msg: str) -> None:
        self.out.send(("log", level, msg))

    # ---- requests -------------------------------------------------------------------------------
    def handle(self, name: str, args: tuple):
        core, ctl = self.core, self.controller
        if name == "begin_goal":
            refused = core.begin_goal()
            if not refused:
                self._reported_stop = False
            return refused
        if name == "end_goal":
            return core.end_goal()
        if name == "start":
            traj, ramp_in, legs_from_policy = args
            sample, _ = core.state(time.monotonic())
            if sample is None:
                return None
            return core.start_motion(lambda: ctl.start(traj, sample.q_rad, time.monotonic(), ramp_in=ramp_in,
                                                       legs_from_policy=legs_from_policy))
        if name == "hold":
            return core.start_motion(lambda: ctl.go_to_hold(time.monotonic()))
        if name == "fail":
            return core.fail(args[0])
        if name == "report":
            return self.report(args[0])
        raise ValueError(f"unknown request {name!r}")

    def report(self, since: float) -> dict:
        log_t, log_cmd, log_meas = self.controller.tracking_log()
        rate_hz, p50_ms, p99_ms, err_p99_ms = period_stats(self.sent_t, since, 1.0 / self.cfg.rate_hz)
        n = sum(1 for x in list(self.sent_t) if x >= since)
        return {"log_t": log_t, "log_cmd": log_cmd, "log_meas": log_meas,
                "rmse_rad": self.controller.tracking_rmse_rad(), "clamped": int(self.controller.clamped_total),
                "rate_hz": rate_hz, "p50_ms": p50_ms, "p99_ms": p99_ms, "err_p99_ms": err_p99_ms,
                "sent_t": np.array([x for x in list(self.sent_t) if x >= since]), "events_dropped": self.out.dropped,
                "work_p99_ms": float(np.percentile(np.array(list(self.work_s)[-n:]) * 1e3, 99)) if n >= 3 else
                float("nan")}

    def snapshot(self, now: float) -> dict:
        """What the parent needs between requests (its answers to state, phase and progress)."""
        core, ctl = self.core, self.controller
        sample, age = core.state(now)
        odom, odom_age = core.odometry(now)
        return {"t": now, "sample_t": None if sample is None else now - age,
                "q": None if sample is None else sample.q_rad.copy(),
                "mode_machine": 0 if sample is None else int(sample.mode_machine),
                "health": health_problem(sample, self.cfg.temperature_stop_c),
                "fallen": self._fallen_reason(sample) if sample is not None else "",
                "odom_t": None if odom is None else now - odom_age,
                "phase": ctl.phase.value, "progress": float(ctl.tracking_progress(now)),
                "stopped": core.stopped.is_set(), "stop_reason": core.stop_reason,
                "estopped": core.estopped, "bad_states": dict(core.bad_states), "loop_errors": core.loop_errors}

    # ---- the loop ---------------------------------------------------------------------------------
    def run(self, conn) -> None:
        from exoactor.realtime import make_named_threads_realtime, make_thread_realtime, sleep_until  # noqa

        dds = make_named_threads_realtime("dds.", max(0, self.cfg.rt_priority - 2)) if self.cfg.rt_priority else \
            "normal priority"
        control = make_thread_realtime(self.cfg.rt_priority)
        lb = self.controller.lower_body
        policy = "" if lb is None else ("numpy" if lb.controller.policy.fast is not None else "TorchScript")
        self.out.send(("ready", {"pid": os.getpid(), "control": control, "dds": dds, "fast": self.writer.fast,
                                 "leg_policy": policy,
                                 "python_threads": threading.active_count()}))
        period = 1.0 / self.cfg.rate_hz
        next_t = next_status = next_presence = time.monotonic()
        orphaned_at = None
        tick = 0
        payload = None
        while True:
            # The period starts with its command, prepared in the previous period for this very
            # time: what the robot receives and when does not depend on how long the work takes.
            if payload is not None:
                try:
                    self.pub.publish(payload)
                    self.sent_t.append(time.monotonic())
                except Exception as e:  # noqa: BLE001
                    self.core.fail(f"publishing LowCmd failed: {type(e).__name__}: {e}")
            now = time.monotonic()
            tick += 1
            # /lowstate every period; odometry, the e-stop topic and services every EVENTS_EVERY periods
            for sub, on_msg, batched in (self.subs if tick % EVENTS_EVERY == 0 else self.subs[:1]):
                try:
                    if batched:
                        on_msg(_take(sub))  # /lowstate: only the newest usable state is read
                    else:
                        _drain(sub, on_msg)
                except Exception as e:  # noqa: BLE001 - a bad message never ends the loop (states are checked)
                    self._log("error", f"control process: taking {sub.topic_name}: {type(e).__name__}: {e}")
            for srv, handler in (self.services if tick % EVENTS_EVERY == 0 else ()):
                try:
                    _serve(srv, handler)
                except Exception as e:  # noqa: BLE001
                    self._log("error", f"control process: serving {srv.srv_name}: {type(e).__name__}: {e}")
            next_t += period
            if next_t <= now:  # a stall (this thread was not running): skip the periods it missed, on the
                next_t += math.ceil((now - next_t) / period) * period  # same grid, instead of a burst
            payload = self.core.tick(next_t)  # the command for the next period's start (never raises)
            self.core.after_tick(now)
            if orphaned_at is None:
                try:
                    handled = False
                    while conn.poll():
                        rid, name, args = conn.recv()
                        if name == "close":
                            return
                        try:
                            value = self.handle(name, args)
                        except Exception as e:  # noqa: BLE001 - the parent raises it
                            value = ControlProcessError(f"{name}: {type(e).__name__}: {e}")
                        self.out.send(("reply", rid, value, self.snapshot(time.monotonic())), wait=True)
                        handled = True
                    if handled:  # a start, hold or fail takes effect with the next period's command
                        payload = self.core.tick(next_t)
                except (EOFError, OSError):
                    orphaned_at = now  # the parent is gone: damp, then leave
                    self.core.stop("the tracking node's process ended")
                    payload = self.core.tick(next_t)
            elif now - orphaned_at > ORPHAN_DAMPING_S:
                return
            if self.core.stopped.is_set() and not self._reported_stop:
                self._reported_stop = self.out.send(("stopped", self.core.stop_reason))
            if now >= next_status:
                next_status = now + STATUS_PERIOD_S
                self.out.send(("status", self.snapshot(now)))
            if now >= next_presence:  # in the period's slack, once a second
                next_presence = now + 1.0
                self.presence.check()
            self.work_s.append(time.monotonic() - now)
            sleep_until(next_t)

    def close(self) -> None:
        import rclpy  # noqa: PLC0415

        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def _child_main(cfg: ControlProcessConfig, conn, events) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C: the parent stops this process
    from exoactor.realtime import reset_to_normal_priority  # noqa: PLC0415

    reset_to_normal_priority(0)  # start-up at normal priority (started from a real-time thread it would inherit it)
    out = _Outbox(events)
    try:
        child = _Child(cfg, out)
    except Exception as e:  # noqa: BLE001 - reported to the parent, which raises it at start-up
        policy = type(e).__name__ == "LegPolicyError"
        events.send_bytes(pickle.dumps(("startup_error", "leg_policy" if policy else "other",
                                        str(e) if policy else f"{type(e).__name__}: {e}")))
        return
    gc.freeze()  # what start-up built is never collected: the collector's passes stay short
    try:
        child.run(conn)
    finally:
        child.close()


# ---- the parent ----------------------------------------------------------------------------------

class ControlProcess:
    """The tracking node's view of the loop in its child process (the parts of :class:`ControlLoop`
    and the controller it uses). Thread-safe. ``log(level, message)`` receives the child's logs."""

    def __init__(self, cfg: ControlProcessConfig, log: Callable[[str, str], None],
                 start_timeout_s: float = START_TIMEOUT_S):
        self.cfg = cfg
        self._log = log
        self.start_timeout_s = start_timeout_s
        self.stopped = threading.Event()
        self.stop_reason = ""
        self._lock = threading.Lock()
        self._status: dict = {}
        self._replies: dict[int, Any] = {}
        self._reply_cv = threading.Condition(self._lock)
        self._next_id = 0
        self._proc = None
        self.info: dict = {}
        self.restarts = 0
        self._start()

    # ---- life cycle -------------------------------------------------------------------------------
    def _start(self) -> None:
        # A fresh interpreter (never fork a process with DDS and executor threads); not multiprocessing's
        # spawn, whose resource-tracker process would outlive this one.
        cmd_r, cmd_w = os.pipe()
        ev_r, ev_w = os.pipe()
        self._proc = _Proc(subprocess.Popen([sys.executable, "-m", "exoactor.nodes.control_process", str(cmd_r),
                                             str(ev_w)], pass_fds=(cmd_r, ev_w), stdin=subprocess.DEVNULL,
                                            env={**os.environ, **SINGLE_THREADED_MATH}))
        os.close(cmd_r)
        os.close(ev_w)
        self._conn = Connection(cmd_w, readable=False)
        self._events = Connection(ev_r, writable=False)
        self._conn.send(self.cfg)
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self._events.poll(min(left, 0.5)):
                if not self._proc.is_alive():
                    raise ControlProcessError(f"the control process ended at start-up (exit code "
                                              f"{self._proc.exitcode})")
                if left <= 0:
                    self._kill()
                    raise ControlProcessError(f"the control process did not start within {self.start_timeout_s:.0f} s")
                continue
            try:
                msg = pickle.loads(self._events.recv_bytes())
            except (EOFError, OSError):
                continue  # loops to the liveness check
            if msg[0] == "startup_error":
                self._proc.join(5.0)
                raise ControlProcessError(msg[2]) if msg[1] != "leg_policy" else LegPolicyStartupError(msg[2])
            if msg[0] == "ready":
                self.info = msg[1]
                break
        self._started_t = time.monotonic()
        with self._lock:
            self._status = {}
        self._reader = threading.Thread(target=self._read, name="control-events", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def _read(self) -> None:
        events, proc = self._events, self._proc
        while True:
            try:
                msg = pickle.loads(events.recv_bytes())
            except (EOFError, OSError):
                break
            kind = msg[0]
            if kind == "status":
                with self._lock:
                    self._status = msg[1]
            elif kind == "reply":  # with the child's state right after the request
                with self._reply_cv:
                    self._status = msg[3]
                    self._replies[msg[1]] = msg[2]
                    self._reply_cv.notify_all()
            elif kind == "stopped":
                self._set_stopped(msg[1])
            elif kind == "log":
                try:
                    self._log(msg[1], msg[2])
                except Exception:  # noqa: BLE001 - logging never ends the reader
                    pass
        if events is self._events and self._proc is proc:  # the child ended (not a restart or close)
            proc.join(1.0)
            code = proc.exitcode
            self._set_stopped(f"the control process ended (exit code {code})")
            with self._reply_cv:
                self._reply_cv.notify_all()

    def _set_stopped(self, reason: str) -> None:
        with self._lock:
            if not self.stopped.is_set():
                self.stop_reason = reason
                self.stopped.set()

    def _request(self, name: str, *args, timeout_s: float = REQUEST_TIMEOUT_S):
        with self._reply_cv:
            rid = self._next_id = self._next_id + 1
            try:
                self._conn.send((rid, name, args))
            except (OSError, ValueError) as e:
                raise ControlProcessError(f"the control process is gone ({e})") from None
            deadline = time.monotonic() + timeout_s
            while rid not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or not self.alive():
                    raise ControlProcessError(f"the control process did not answer '{name}' within {timeout_s:g} s"
                                              if self.alive() else
                                              f"the control process ended (exit code {self._proc.exitcode})")
                self._reply_cv.wait(min(left, 0.1))
            value = self._replies.pop(rid)
        if isinstance(value, ControlProcessError):
            raise value
        return value

    def _kill(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(2.0)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(2.0)

    def close(self) -> None:
        if self._proc is None:
            return
        try:
            self._conn.send((0, "close", ()))
        except (OSError, ValueError):
            pass
        self._proc.join(3.0)
        self._kill()
        self._proc = None

    # ---- what the tracking node uses ------------------------------------------------------------
    def begin_goal(self) -> str:
        """Start a goal ('' or why not); a child that ended is replaced by a fresh one first."""
        if not self.alive():
            self._log("warn", f"the control process ended (exit code {self._proc.exitcode if self._proc else '?'}): "
                              "starting a new one (damping until this goal ramps in)")
            self.restarts += 1
            self._start()
        deadline = self._started_t + FIRST_STATE_WAIT_S  # a fresh child needs discovery and a first state
        while self.status().get("sample_t") is None and time.monotonic() < deadline:
            time.sleep(0.05)
        refused = self._request("begin_goal")
        if not refused:
            with self._lock:
                self.stopped.clear()
                self.stop_reason = ""
        return refused

    def end_goal(self) -> None:
        if self.alive():
            try:
                self._request("end_goal")
            except ControlProcessError:
                pass

    def start(self, traj, ramp_in: bool, legs_from_policy: bool) -> float | None:
        """Ramp in and track ``traj`` (from the child's own newest measured pose): ramp s, or None if stopped."""
        return self._request("start", traj, ramp_in, legs_from_policy)

    def go_to_hold(self) -> float | None:
        return self._request("hold")

    def fail(self, what: str) -> None:
        try:
            self._request("fail", what)
        except ControlProcessError:
            self._set_stopped(what)

    def report(self, since: float) -> dict:
        return self._request("report", since)

    def status(self) -> dict:
        with self._lock:
            return dict(self._status)

    @property
    def phase(self) -> str:
        return self.status().get("phase", "idle")

    def tracking_progress(self) -> float:
        return float(self.status().get("progress", 0.0))

    @property
    def bad_states(self) -> collections.Counter:
        return collections.Counter(self.status().get("bad_states", {}))

    def bad_state_summary(self) -> str:
        return ", ".join(f"{why}: {n}" for why, n in sorted(self.bad_states.items())) or "none"

    def state(self, now: float) -> tuple[np.ndarray | None, float, str, int]:
        """(q or None, age of the newest usable LowState in s, why not to move ('' = fine), mode_machine)."""
        s = self.status()
        if not s:
            return None, float("inf"), "no usable /lowstate received (the control process has not reported yet)", 0
        have = s["sample_t"] is not None
        age = now - s["sample_t"] if have else float("inf")
        why = stale_problem(have, age, self.cfg.state_timeout_s) or s["health"]
        return s["q"], age, why, s["mode_machine"]

    def fallen(self) -> str:
        return self.status().get("fallen", "")

    def odometry_age(self, now: float) -> float | None:
        t = self.status().get("odom_t")
        return None if t is None else now - t




class _Proc:
    """The child's ``subprocess.Popen`` with the few ``multiprocessing.Process`` calls used here."""

    def __init__(self, popen: subprocess.Popen):
        self.popen = popen
        self.pid = popen.pid

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll()

    def join(self, timeout_s: float) -> None:
        try:
            self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            pass

    def terminate(self) -> None:
        self.popen.terminate()

    def kill(self) -> None:
        self.popen.kill()


def main(argv: list[str] | None = None) -> None:
    """The child's entry point: ``python -m exoactor.nodes.control_process <request fd> <event fd>``."""
    argv = sys.argv[1:] if argv is None else argv
    conn, events = Connection(int(argv[0]), writable=False), Connection(int(argv[1]), readable=False)
    try:
        cfg = conn.recv()
    except (EOFError, OSError):
        return
    _child_main(cfg, conn, events)


if __name__ == "__main__":
    main()
