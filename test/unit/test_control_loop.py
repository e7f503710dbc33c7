"""The control loop's logic, in process and in ticks (no timing): exceptions, e-stop, watchdogs, bad input."""
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from exoactor.control.loop import ControlLoop
from exoactor.control.tracker import JointTrackingController, Phase
from exoactor.g1.joints import DEFAULT_KD, DEFAULT_KP, G1_JOINT_NAMES
from exoactor.g1.model import joint_ranges_rad, stand_pose_rad
from exoactor.g1.safety import CommandLimits
from exoactor.retarget.trajectory import G1JointTrajectory

PERIOD = 0.002
TICKS_50_MS = 25  # the guarantee: damping and a stopped goal within 50 ms = 25 ticks at 500 Hz


@pytest.fixture(scope="module")
def io():
    from exoactor.nodes.unitree_io import LowCmdReader, LowCmdWriter, LowStateReader, LowStateWriter

    return SimpleNamespace(cmd_w=LowCmdWriter(), cmd_r=LowCmdReader(), state_w=LowStateWriter(mode_machine=5),
                           state_r=LowStateReader())


@pytest.fixture(scope="module")
def limits(g1_model):
    return CommandLimits.from_ranges(joint_ranges_rad(g1_model), 6.0, 0.02, PERIOD)


@pytest.fixture(scope="module")
def stand(g1_model):
    return stand_pose_rad(g1_model)


class Rig:
    """A ControlLoop with a real encoder and LowState parser, ticked at 500 Hz of simulated time."""

    def __init__(self, io, limits, stand, **kw):
        self.io, self.stand, self.t = io, stand, 0.0
        self.c = JointTrackingController(limits, DEFAULT_KP, DEFAULT_KD, stand, ramp_in_min_s=0.1, ramp_speed_rad_s=2.0)
        self.logs: list[tuple[str, str]] = []
        self.encoder_broken = False
        self.loop = ControlLoop(self.c, io.state_r.parse, self._encode,
                                log=lambda lv, m: self.logs.append((lv, m)), **kw)

    def _encode(self, cmd, mm):
        if self.encoder_broken:
            raise RuntimeError("encoder broken")
        return self.io.cmd_w.build(cmd.q_rad, cmd.dq_rad_s, cmd.kp, cmd.kd, mm)

    def state_bytes(self, temperature=40.0, motorstate=None, q=None):
        q = self.stand if q is None else q
        z = np.zeros(29)
        return self.io.state_w.build(1, q, z, z, z, [1, 0, 0, 0], [0] * 3, [0] * 3, [0] * 3,
                                     np.broadcast_to(temperature, (29,)),
                                     np.zeros(29, np.uint32) if motorstate is None else motorstate)

    def step(self, state=True, **state_kw):
        """One tick (with a fresh valid LowState first, as the robot sends); returns the decoded frame."""
        self.t += PERIOD
        if state:
            self.loop.on_lowstate(self.state_bytes(**state_kw), self.t)
        out = self.loop.tick(self.t)
        if out is None:
            return None
        frame, crc_ok = self.io.cmd_r.read(out)
        assert crc_ok
        return frame

    def start_goal(self, frames=60):
        assert self.loop.begin_goal() == ""
        self.step()
        sample, _ = self.loop.state(self.t)
        q = np.tile(self.stand, (frames, 1))
        q[:, 18] += np.linspace(0, -0.4, frames)
        self.traj = G1JointTrajectory(30.0, q, np.gradient(q, 1 / 30, axis=0), np.zeros((frames, 3)),
                                      np.tile([1.0, 0, 0, 0], (frames, 1)))
        assert self.loop.start_motion(lambda: self.c.start(self.traj, sample.q_rad, self.t)) is not None
        for _ in range(200):  # through the ramp-in, into tracking
            assert self.step().kp[:29].any()
            if self.c.phase == Phase.TRACKING:
                break
        assert self.c.phase == Phase.TRACKING


def damped(frame, limits):
    return frame is not None and not frame.kp[:29].any() and np.all(frame.kd[:29] == limits.damping_kd)


def ticks_until_damped(rig, limits, n=TICKS_50_MS, **step_kw):
    for k in range(n + 1):
        if damped(rig.step(**step_kw), limits):
            return k
    return None


def test_an_exception_in_the_loop_damps_and_stops_the_goal_in_the_same_tick(io, limits, stand):
    rig = Rig(io, limits, stand)
    rig.start_goal()
    waiter = []
    t = threading.Thread(target=lambda: waiter.append(rig.loop.stopped.wait(10.0)))
    t.start()  # the goal's wait: it wakes as soon as the loop stops execution
    rig.traj.positions_rad[:] = np.nan  # an unsafe command inside the loop (UnsafeCommandError)
    assert ticks_until_damped(rig, limits) == 0
    assert rig.loop.stopped.is_set() and "control loop error: UnsafeCommandError" in rig.loop.stop_reason
    t.join(5.0)
    assert waiter == [True]
    assert [lv for lv, m in rig.logs if "switching to damping" in m] == ["error"]  # one clear line
    for _ in range(200):  # the loop keeps running: damping, never silence
        assert damped(rig.step(), limits)
    assert rig.c.phase == Phase.DAMPING and rig.loop.loop_errors == 1


def test_a_failing_encoder_still_sends_the_prebuilt_damping_command(io, limits, stand):
    rig = Rig(io, limits, stand)
    rig.start_goal()
    rig.encoder_broken = True
    assert ticks_until_damped(rig, limits) == 0
    assert "encoder broken" in rig.loop.stop_reason
    assert all(damped(rig.step(), limits) for _ in range(50))


@pytest.mark.parametrize("bad", ["bad_crc", "truncated", "garbage", "empty", "nan"])
def test_bad_lowstates_are_counted_dropped_and_never_refresh_freshness(io, limits, stand, bad):
    rig = Rig(io, limits, stand, state_timeout_s=0.25)
    rig.start_goal()
    good = rig.state_bytes()
    data = {"bad_crc": bytes(good[:-1]) + bytes([good[-1] ^ 0xFF]), "truncated": good[:700], "empty": b"",
            "garbage": np.random.default_rng(1).integers(0, 256, len(good)).astype(np.uint8).tobytes(),
            "nan": rig.state_bytes(q=np.where(np.arange(29) == 7, np.nan, stand))}[bad]
    fed, k = 0, 0
    while not damped(frame := rig.step(state=False), limits):
        rig.loop.on_lowstate(data, rig.t)  # a bad state every tick: must not keep the robot going
        fed += 1
        k += 1
        assert frame.kp[:29].any() and k < 200
    assert 0.25 <= (k + 1) * PERIOD <= 0.25 + 2 * PERIOD  # the watchdog fired on time despite 500 Hz of bad states
    assert "no usable /lowstate" in rig.loop.stop_reason
    assert sum(rig.loop.bad_states.values()) == fed
    reason = {"bad_crc": "bad CRC", "nan": "non-finite joint values"}.get(bad, "malformed")
    assert all(k.startswith(reason) for k in rig.loop.bad_states)
    assert any("dropped a LowState" in m for _, m in rig.logs)


def test_estop_latches_damping_aborts_the_goal_and_is_released_only_without_a_goal(io, limits, stand):
    rig = Rig(io, limits, stand)
    rig.start_goal()
    rig.loop.estop("topic exoactor/estop")
    assert ticks_until_damped(rig, limits) == 0
    assert rig.loop.stopped.is_set() and "e-stop" in rig.loop.stop_reason
    assert "e-stop engaged" in rig.loop.begin_goal()  # refused while latched
    assert rig.loop.start_motion(lambda: 1.0) is None
    ok, msg = rig.loop.estop_reset()
    assert not ok and "goal" in msg  # the aborting goal has not ended yet
    rig.loop.end_goal()
    assert all(damped(rig.step(), limits) for _ in range(50))
    ok, _ = rig.loop.estop_reset()
    assert ok and damped(rig.step(), limits)  # released, still damping until the next goal
    rig.start_goal()  # ramps from the measured pose
    assert not rig.loop.stopped.is_set()


def test_a_start_right_after_an_estop_and_its_reset_continues_from_the_last_stiff_command(io, limits, stand):
    """An e-stop and its reset inside one period: no damping command went out, the motors still hold
    the last stiff command, so the next start ramps from that command (the step bound holds), not
    from the measured pose (found by the safety property test)."""
    rig = Rig(io, limits, stand)
    rig.start_goal()
    for _ in range(150):  # tracking: the elbow command moves away from the measured (stand) pose
        last = rig.step()
    assert np.abs(last.q[18] - stand[18]) > limits.step_max_rad[18]
    rig.loop.estop("test")
    rig.loop.end_goal()
    assert rig.loop.estop_reset()[0]
    assert rig.loop.begin_goal() == ""
    sample, _ = rig.loop.state(rig.t)
    assert rig.loop.start_motion(lambda: rig.c.start(rig.traj, sample.q_rad, rig.t)) is not None
    nxt = rig.step()
    assert nxt.kp[:29].any() and np.all(np.abs(nxt.q[:29] - last.q[:29]) <= limits.step_max_rad + 1e-9)
    # once a damping command has gone out, a start ramps from the measured pose again
    rig.loop.estop("test")
    assert damped(rig.step(), limits)
    rig.loop.end_goal()
    assert rig.loop.estop_reset()[0] and rig.loop.begin_goal() == ""
    sample, _ = rig.loop.state(rig.t)
    rig.loop.start_motion(lambda: rig.c.start(rig.traj, sample.q_rad, rig.t))
    np.testing.assert_allclose(rig.step().q[:29], stand, atol=1e-3)


def test_estop_while_idle_starts_damping(io, limits, stand):
    rig = Rig(io, limits, stand)
    assert rig.step() is None  # nothing is sent before the first goal
    rig.loop.estop("service exoactor/estop")
    assert damped(rig.step(), limits) and "e-stop" in rig.loop.stop_reason


def test_temperature_warns_then_stops_naming_the_motor(io, limits, stand):
    rig = Rig(io, limits, stand, temperature_warn_c=80.0, temperature_stop_c=95.0)
    rig.start_goal()
    warm = np.full(29, 40.0)
    warm[3] = 85.0
    for _ in range(30):
        assert rig.step(temperature=warm).kp[:29].any()  # a warning only
    warnings = [m for lv, m in rig.logs if lv == "warn" and "left_knee_joint" in m]
    assert len(warnings) == 1 and "85 C" in warnings[0]
    hot = warm.copy()
    hot[3] = 97.0
    assert ticks_until_damped(rig, limits, temperature=hot) == 0
    assert "motor 3 (left_knee_joint) 97 C" in rig.loop.stop_reason and "fault" in rig.loop.stop_reason
    sample, age = rig.loop.state(rig.t)
    assert "over-temperature" in rig.loop.problem(sample, age)  # and a new goal is refused


def test_motor_fault_flags_stop_naming_the_motor(io, limits, stand):
    rig = Rig(io, limits, stand)
    rig.start_goal()
    flags = np.zeros(29, np.uint32)
    flags[20] = 0x8
    assert ticks_until_damped(rig, limits, motorstate=flags) == 0
    assert f"motor 20 ({G1_JOINT_NAMES[20]}) error flags 0x00000008" in rig.loop.stop_reason


def test_a_failing_logger_cannot_end_the_loop(io, limits, stand):
    rig = Rig(io, limits, stand)

    def bad_log(_level, _msg):
        raise ValueError("Logger severity cannot be changed between calls.")  # what rclpy once raised here

    rig.loop._log = bad_log
    rig.start_goal()
    rig.loop.on_lowstate(b"junk", rig.t)  # logs a warning
    rig.traj.positions_rad[:] = np.nan
    assert ticks_until_damped(rig, limits) == 0 and rig.loop.stopped.is_set()


def test_start_motion_cannot_override_a_stop(io, limits, stand):
    rig = Rig(io, limits, stand)
    rig.start_goal()
    rig.loop.stop("test stop")
    assert rig.loop.start_motion(lambda: rig.c.go_to_hold(rig.t)) is None
    assert rig.c.phase == Phase.DAMPING


# ---- the simulator's /lowcmd input --------------------------------------------------------------
def test_sim_drops_malformed_lowcmds_without_raising(io):
    import collections

    from exoactor.g1.lowcmd import LowCmdFrame
    from exoactor.g1.wire import LOWCMD_MAP
    from exoactor.nodes.sim_node import G1SimNode

    good = io.cmd_w.build(np.zeros(29), np.zeros(29), np.full(29, 40.0), np.ones(29), 5)

    def with_valid_crc(field, value):
        frame = LowCmdFrame(mode_machine=5)
        getattr(frame, field)[2] = value
        return LOWCMD_MAP.to_cdr(frame.to_struct().tobytes())  # zeroed padding, CRC of the bad content

    cases = {"bad CRC": bytes(good[:-1]) + bytes([good[-1] ^ 1]), "malformed": good[:500],
             "malformed ": b"\x01\x00" + bytes(good[2:]), "non-finite values": with_valid_crc("q", np.nan),
             "negative gains": with_valid_crc("kp", -5.0)}
    applied = []
    stub = SimpleNamespace(_reader=io.cmd_r, dropped_lowcmds=collections.Counter(), gantry=True,
                           _band_lowering=False, sim=SimpleNamespace(set_command=applied.append),
                           get_logger=lambda: SimpleNamespace(warn=lambda _m: None))
    for why, data in cases.items():
        G1SimNode._on_lowcmd(stub, data)  # never raises
        assert any(k.startswith(why.strip()) for k in stub.dropped_lowcmds), (why, stub.dropped_lowcmds)
    assert not applied and sum(stub.dropped_lowcmds.values()) == len(cases)
    G1SimNode._on_lowcmd(stub, good)
    assert len(applied) == 1


# ---- QoS, keypoint names, IK margin ---------------------------------------------------------------
def test_unitree_qos_defaults_match_unitree_ros2_examples():
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

    from exoactor.nodes.unitree_io import UNITREE_QOS_DEFAULTS, unitree_qos

    q = unitree_qos(**UNITREE_QOS_DEFAULTS)
    assert q.reliability == ReliabilityPolicy.RELIABLE and q.depth == 10 and q.durability == DurabilityPolicy.VOLATILE
    assert unitree_qos("best_effort", 1).reliability == ReliabilityPolicy.BEST_EFFORT
    for bad in (("sometimes", 10), ("reliable", 0)):
        with pytest.raises(ValueError):
            unitree_qos(*bad)


def test_keypoint_names_must_be_the_human_keypoints_in_order():
    from exoactor.motion.human_motion import HUMAN_KEYPOINTS
    from exoactor.retarget import RetargetingError
    from exoactor.retarget.mink_retargeter import keypoint_index

    assert keypoint_index(HUMAN_KEYPOINTS)["left_wrist"] == HUMAN_KEYPOINTS.index("left_wrist")
    swapped = list(HUMAN_KEYPOINTS)
    swapped[10], swapped[11] = swapped[11], swapped[10]
    for names, fragment in ((swapped, "misordered: position 10 is 'right_wrist'"),
                            (HUMAN_KEYPOINTS[:-1], "missing ['right_toe']"),
                            (HUMAN_KEYPOINTS[:-1] + ("nose",), "unexpected ['nose']"),
                            (HUMAN_KEYPOINTS[:-1] + ("pelvis",), "duplicated ['pelvis']")):
        with pytest.raises(RetargetingError, match="keypoint names") as e:
            keypoint_index(names)
        assert fragment in str(e.value)


def test_retargeter_refuses_misordered_keypoints_and_uses_the_safety_margin(standing_keypoints):
    from exoactor.motion.human_motion import HUMAN_KEYPOINTS, HumanMotion
    from exoactor.retarget import RetargetingError
    from exoactor.retarget.mink_retargeter import MinkRetargeter

    r = MinkRetargeter(joint_limit_margin_rad=0.1)
    rng = joint_ranges_rad(r.model)
    lower = r.ik.qpos_lower[r._qadr]  # the QP's bounds (motor order): ranges shrunk by the margin
    assert r.joint_limit_margin_rad == 0.1 and np.allclose(lower, rng[:, 0] + 0.1)
    n = 10
    kp = np.tile(standing_keypoints, (n, 1, 1))
    names = list(HUMAN_KEYPOINTS)
    names[6], names[7] = names[7], names[6]  # shoulders swapped: a mirrored arm if indexed by position
    m = HumanMotion(30.0, kp, np.ones((n, len(names))), kp[:, 0], np.tile([1.0, 0, 0, 0], (n, 1)), 1.72,
                    keypoint_names=tuple(names))
    with pytest.raises(RetargetingError, match="misordered"):
        r.retarget(m)
    m.keypoint_names = HUMAN_KEYPOINTS
    tr = r.retarget(m)
    assert np.all(tr.positions_rad >= rng[:, 0] + 0.1 - 1e-3) and np.all(tr.positions_rad <= rng[:, 1] - 0.1 + 1e-3)


class _LowerBodyStub:
    """A closed-loop lower body that is always due and counts its steps."""

    closed_loop = True

    def __init__(self):
        self.updates = 0

    def due(self, _t):
        return True

    def update(self, _t, _sample, _odom):
        self.updates += 1

    def disengage(self):
        pass

    def overlay(self, q, dq, kp, kd):
        return q, dq, kp, kd


def test_odometry_may_lag_up_to_its_own_timeout_then_execution_stops(io, limits, stand):
    from exoactor.control.balance import BaseOdometry

    rig = Rig(io, limits, stand, odom_timeout_s=1.0)
    rig.c.lower_body = _LowerBodyStub()
    rig.start_goal()
    odom = BaseOdometry(np.array([0.0, 0.0, 0.79]), np.array([1.0, 0, 0, 0]), np.zeros(3), np.zeros(3))
    rig.loop.on_odometry(odom, rig.t)
    for _ in range(int(0.9 / PERIOD)):  # 0.9 s without odometry (lost best-effort messages): still running
        rig.step()
        rig.loop.after_tick(rig.t)
    assert not rig.loop.stopped.is_set() and rig.c.lower_body.updates > 400
    for _ in range(int(0.2 / PERIOD)):
        rig.step()
        rig.loop.after_tick(rig.t)
    assert rig.loop.stopped.is_set() and "no odometry for the leg policy for 1.00 s" in rig.loop.stop_reason


def test_a_batch_of_lowstates_keeps_the_newest_usable_one_and_counts_the_newer_bad_ones(io, limits, stand):
    rig = Rig(io, limits, stand)
    q_old, q_new = stand.copy(), stand.copy()
    q_new[3] += 0.1
    old, new = rig.state_bytes(q=q_old), rig.state_bytes(q=q_new)
    bad = bytes(new[:-1]) + bytes([new[-1] ^ 0xFF])
    rig.loop.on_lowstates([old, old, new], 1.0)  # after a stall: three queued, only the newest is read
    sample, _ = rig.loop.state(1.0)
    assert sample.q_rad[3] == pytest.approx(q_new[3], abs=1e-6)
    assert rig.loop.superseded_states == 2 and not rig.loop.bad_states
    rig.loop.on_lowstates([old, bad], 2.0)  # the newest is corrupt: counted, and the one before it is used
    sample, age = rig.loop.state(2.0)
    assert sample.q_rad[3] == pytest.approx(q_old[3], abs=1e-6) and age == 0.0
    assert rig.loop.bad_states == {"bad CRC": 1} and rig.loop.superseded_states == 2
    rig.loop.on_lowstates([bad, bad], 3.0)  # nothing usable: both counted, freshness not refreshed
    assert rig.loop.bad_states == {"bad CRC": 3} and rig.loop.state(3.0)[1] == pytest.approx(1.0)
    rig.loop.on_lowstates([], 4.0)
    assert rig.loop.state(4.0)[1] == pytest.approx(2.0)


# ---- the simulator's start-up order -------------------------------------------------------------
@pytest.fixture
def sim_rclpy():
    import os

    import rclpy

    from fakes.domains import domain_id

    os.environ["ROS_DOMAIN_ID"] = str(domain_id(60))
    rclpy.init()
    try:
        yield
    finally:
        rclpy.try_shutdown()


def test_sim_opens_the_camera_context_before_its_physics_runs(sim_rclpy, monkeypatch):
    """Creating MuJoCo's GL context holds the GIL for 0.3-0.8 s (measured: a 384 ms /lowstate gap
    that damped the robot in a CI run); it must be done while no physics thread is running yet."""
    import threading

    from exoactor.nodes.sim_node import G1SimNode
    from exoactor.sim.g1_sim import G1Simulator

    seen = []
    original = G1Simulator.open_renderer

    def recording(self):
        seen.append({t.name for t in threading.enumerate()})
        original(self)

    monkeypatch.setattr(G1Simulator, "open_renderer", recording)
    node = G1SimNode()
    try:
        assert seen and "physics" not in seen[0] and "camera" in seen[0], seen
        assert node._thread.is_alive()
    finally:
        node.close()
        node.destroy_node()


def test_sim_without_opengl_says_so_in_one_error(sim_rclpy, monkeypatch):
    from exoactor.nodes.params import ConfigError
    from exoactor.nodes.sim_node import G1SimNode
    from exoactor.sim.g1_sim import G1Simulator

    def no_gl(self):
        raise RuntimeError("eglInitialize failed")

    monkeypatch.setattr(G1Simulator, "open_renderer", no_gl)
    with pytest.raises(ConfigError, match="eglInitialize failed.*MUJOCO_GL.*camera_rate_hz 0"):
        G1SimNode()
