"""Property tests: whatever comes in (trajectories, stalls, states, bytes), no command leaves the limits.

The guarantees (exoactor.g1.safety): q inside the joint window minus the margin; |q - q_prev| <=
vmax * NOMINAL period whatever the time elapsed; |dq| <= vmax and dq = tau = 0 where q was
clamped; 0 <= kp <= kp_max, 0 <= kd <= kd_max; every LowCmd with a valid CRC.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from exoactor.control.loop import ControlLoop
from exoactor.control.tracker import JointTrackingController, Phase
from exoactor.g1.joints import DEFAULT_KD, DEFAULT_KP
from exoactor.g1.model import joint_ranges_rad, stand_pose_rad, torque_limits_nm
from exoactor.g1.safety import CommandLimits, UnsafeCommandError
from exoactor.retarget.trajectory import G1JointTrajectory

VMAX = 6.0
PERIOD = 0.002
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def limits(g1_model):
    return CommandLimits.from_ranges(joint_ranges_rad(g1_model), VMAX, margin_rad=0.02, period_s=PERIOD,
                                     tau_max_nm=torque_limits_nm(g1_model))


@pytest.fixture(scope="module")
def stand(g1_model):
    return stand_pose_rad(g1_model)


@pytest.fixture(scope="module")
def wire():
    from exoactor.nodes.unitree_io import LowCmdReader, LowCmdWriter, LowStateReader, LowStateWriter

    return LowCmdWriter(), LowCmdReader(), LowStateWriter(mode_machine=5), LowStateReader()


def _traj(q):
    q = np.asarray(q, float)
    return G1JointTrajectory(30.0, q, np.gradient(q, 1 / 30.0, axis=0) if len(q) > 1 else np.zeros_like(q),
                             np.zeros((len(q), 3)), np.tile([1.0, 0, 0, 0], (len(q), 1)))


def check(limits, q, dq, kp, kd, prev_q=None, tau=None, clamped=None):
    """Every guarantee, stated independently of the implementation."""
    assert np.all(np.isfinite(q)) and np.all(np.isfinite(dq)) and np.all(np.isfinite(kp)) and np.all(np.isfinite(kd))
    assert np.all(q >= limits.q_min_rad) and np.all(q <= limits.q_max_rad)
    assert np.all(np.abs(dq) <= limits.dq_max_rad_s)
    assert np.all((kp >= 0) & (kp <= limits.kp_max)) and np.all((kd >= 0) & (kd <= limits.kd_max))
    if prev_q is not None:
        assert np.all(np.abs(q - prev_q) <= VMAX * PERIOD + 1e-12)
    if tau is not None:
        assert np.all(np.abs(tau) <= limits.tau_max_nm)
    if clamped is not None:
        assert not np.any(dq[clamped]) and (tau is None or not np.any(tau[clamped]))


special = st.sampled_from([np.nan, np.inf, -np.inf, 1e30, -1e30, 1e300, 0.0, -0.0, 3.5, -3.5])
anything = st.one_of(st.floats(allow_nan=True, allow_infinity=True), special)


@SETTINGS
@given(q=arrays(np.float64, (29,), elements=anything), dq=arrays(np.float64, (29,), elements=anything),
       gains=arrays(np.float64, (2, 29), elements=anything), tau=arrays(np.float64, (29,), elements=anything),
       prev_frac=arrays(np.float64, (29,), elements=st.floats(0, 1)), first=st.booleans())
def test_safety_layer_output_is_always_inside_the_limits(limits, q, dq, gains, tau, prev_frac, first):
    prev = None if first else limits.apply(limits.q_min_rad + prev_frac * (limits.q_max_rad - limits.q_min_rad),
                                           np.zeros(29)).q
    out = limits.apply_batch(q, dq, prev, gains[0], gains[1], tau)
    assert not limits.violations(out, prev)
    ok = bool(np.all(np.isfinite(np.concatenate([q, dq, gains.ravel(), tau]))))
    assert bool(out.ok) == ok
    if ok:
        moved = np.abs(out.q - q) > 1e-6
        check(limits, out.q, out.dq, out.kp, out.kd, prev, out.tau, clamped=moved)
        assert np.all(out.clamped[moved])
        with_apply = limits.apply(q, dq, prev, gains[0], gains[1], tau)
        np.testing.assert_array_equal(with_apply.q, out.q)
    else:  # not made safe by clamping: refused, and the batch form gives the damping command for it
        check(limits, out.q, out.dq, out.kp, out.kd, prev)
        assert not out.kp.any() and np.all(out.kd == limits.damping_kd)
        with pytest.raises(UnsafeCommandError):
            limits.apply(q, dq, prev, gains[0], gains[1], tau)
    for a in (out.q, out.dq, out.kp, out.kd, out.tau):  # what goes on the wire is exactly this
        np.testing.assert_array_equal(a.astype(np.float32).astype(np.float64), a)


def test_step_bound_comes_from_the_nominal_period_not_the_elapsed_time(limits, stand):
    c = JointTrackingController(limits, DEFAULT_KP, DEFAULT_KD, stand, ramp_in_min_s=0.2, ramp_speed_rad_s=2.0)
    far = np.clip(stand + 1.0, limits.q_min_rad, limits.q_max_rad)
    c.start(_traj(np.stack([stand, far, far])), stand, 0.0, ramp_in=False)
    prev = c.tick(0.0).q_rad
    after_stall = c.tick(0.2)  # 200 ms stall: the target jumped ~1 rad
    assert np.abs(after_stall.q_rad - prev).max() <= VMAX * PERIOD + 1e-12
    assert not after_stall.dq_rad_s[np.abs(far - stand) > 0.1].any()  # step-clamped joints: no velocity target


@SETTINGS
@given(traj=arrays(np.float64, st.tuples(st.integers(1, 8), st.just(29)),
                   elements=st.one_of(st.floats(-1e6, 1e6), st.sampled_from([-50.0, 50.0, 0.0]))),
       measured=arrays(np.float64, (29,), elements=st.floats(-10, 10)),
       dts=st.lists(st.one_of(st.just(PERIOD), st.floats(0.0, 0.004), st.floats(0.05, 1.0)), min_size=5, max_size=120),
       events=st.lists(st.sampled_from(["none", "hold", "damp", "restart", "continue"]), min_size=5, max_size=120))
def test_tracker_commands_stay_inside_limits_through_stalls_jumps_and_restarts(limits, stand, traj, measured,
                                                                              dts, events):
    c = JointTrackingController(limits, DEFAULT_KP * 3, DEFAULT_KD * 20, stand, ramp_in_min_s=0.05,
                                ramp_speed_rad_s=50.0)  # gains beyond the bounds: clamped
    c.start(_traj(traj), measured, 0.0, ramp_in=bool(len(traj) % 2))
    t, prev = 0.0, None
    for dt, ev in zip(dts, events):
        t += dt
        if ev == "hold":
            c.go_to_hold(t)
        elif ev == "damp":
            c.damp()
        elif ev in ("restart", "continue"):
            c.start(_traj(traj[::-1]), measured, t, ramp_in=ev == "restart")
        cmd = c.tick(t)
        # The step bound holds between stiff commands (a start after damping begins at the measured pose).
        stiff = prev is not None and prev.kp.any() and cmd.kp.any()
        check(limits, cmd.q_rad, cmd.dq_rad_s, cmd.kp, cmd.kd, prev.q_rad if stiff else None)
        if cmd.phase == Phase.DAMPING:
            assert not cmd.kp.any() and np.all(cmd.kd == limits.damping_kd)
        prev = cmd


# ---- the whole loop: states, bytes, stalls, exceptions, e-stop --------------------------------------
STATE_KINDS = ["valid", "valid", "valid", "nan", "bad_crc", "truncated", "garbage", "empty", "hot", "fault"]
_DT = st.one_of(st.just(PERIOD), st.just(PERIOD), st.floats(0.0, 0.01), st.floats(0.05, 0.6))
ACTIONS = st.lists(st.one_of(
    st.tuples(st.just("robot_tick"), _DT),  # the usual tick: a fresh valid state, then the loop runs
    st.tuples(st.just("robot_tick"), _DT),
    st.tuples(st.just("robot_tick"), _DT),
    st.tuples(st.just("tick"), _DT),
    st.tuples(st.just("state"), st.sampled_from(STATE_KINDS)),
    st.tuples(st.just("start"), st.integers(0, 3)),
    st.tuples(st.sampled_from(["cancel", "estop", "reset", "poison", "encoder_fails", "encoder_works"]), st.just(0)),
), min_size=10, max_size=200)


def _state_bytes(kind, writer, rng, q):
    if kind == "truncated":
        return writer.build(1, q, q, q, q, [1, 0, 0, 0], [0] * 3, [0] * 3, [0] * 3)[:rng.integers(0, 2000)]
    if kind == "garbage":
        return rng.integers(0, 256, 2092).astype(np.uint8).tobytes()
    if kind == "empty":
        return b""
    temp = np.full(29, 97.0 if kind == "hot" else 40.0)
    flags = np.zeros(29, np.uint32)
    if kind == "fault":
        flags[3] = 0x20
    qq = np.where(np.arange(29) == 4, np.nan, q) if kind == "nan" else q
    data = bytearray(writer.build(1, qq, 0 * q, 0 * q, 0 * q, [1, 0, 0, 0], [0] * 3, [0] * 3, [0] * 3, temp, flags))
    if kind == "bad_crc":
        data[-1] ^= 0x5A
    return bytes(data)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS, seed=st.integers(0, 2**31 - 1),
       traj=arrays(np.float64, (4, 29), elements=st.floats(-100, 100)))
def test_control_loop_never_sends_a_command_outside_limits(limits, stand, wire, actions, seed, traj):
    cmd_writer, cmd_reader, state_writer, state_reader = wire
    rng = np.random.default_rng(seed)
    c = JointTrackingController(limits, DEFAULT_KP, DEFAULT_KD, stand, ramp_in_min_s=0.05, ramp_speed_rad_s=20.0)
    broken = [False]

    def encode(cmd, mm):
        if broken[0]:
            raise RuntimeError("encoder broken")
        return cmd_writer.build(cmd.q_rad, cmd.dq_rad_s, cmd.kp, cmd.kd, mm)

    loop = ControlLoop(c, state_reader.parse, encode, state_timeout_s=0.25)
    t, prev, current = 0.0, None, None
    for action, arg in actions:
        if action == "state":
            loop.on_lowstate(_state_bytes(arg, state_writer, rng, stand), t)
        elif action == "start":
            sample, _ = loop.state(t)
            if not loop.begin_goal() and sample is not None:
                current = _traj(np.concatenate([traj[:arg + 1], traj[:1] * 0 + stand]))
                loop.start_motion(lambda tr=current, q=sample.q_rad, now=t, r=arg != 1: c.start(tr, q, now, ramp_in=r))
        elif action == "cancel":
            loop.start_motion(lambda now=t: c.go_to_hold(now))
        elif action == "estop":
            loop.estop("test")
        elif action == "reset":
            loop.end_goal()
            loop.estop_reset()
        elif action == "poison":
            if current is not None:
                current.positions_rad[:] = np.nan  # an unsafe command inside the loop: must end in damping
        elif action in ("encoder_fails", "encoder_works"):
            broken[0] = action == "encoder_fails"
        else:
            t += arg
            if action == "robot_tick":
                loop.on_lowstate(_state_bytes("valid", state_writer, rng, stand), t)
            out = loop.tick(t)
            if out is None:
                assert c.phase == Phase.IDLE
                continue
            frame, crc_ok = cmd_reader.read(out)
            assert crc_ok
            q, dq, kp, kd = frame.q[:29], frame.dq[:29], frame.kp[:29], frame.kd[:29]
            limp = prev is None or not prev.kp[:29].any()
            # The step bound holds between stiff commands; after damping a start begins at the measured pose.
            check(limits, q, dq, kp, kd, None if limp or not kp.any() else prev.q[:29])
            if loop.stopped.is_set() or loop.estopped:
                assert not kp.any() and np.all(kd == limits.damping_kd)
            event("stiff command" if kp.any() else "damping command")
            if not limp and kp.any():
                event("step-bounded command")
            prev = frame
    event(f"stopped: {loop.stop_reason.split(':')[0].split(' for ')[0] or 'never'}")
    assert loop.ticks == sum(1 for a, _ in actions if a in ("tick", "robot_tick"))
