"""Whatever trajectory or measurement comes in, no command leaves the joint limits."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from exoactor.control.tracker import JointTrackingController, Phase
from exoactor.g1.joints import DEFAULT_KD, DEFAULT_KP
from exoactor.g1.model import joint_ranges_rad, stand_pose_rad
from exoactor.g1.safety import CommandLimits, UnsafeCommandError
from exoactor.retarget.trajectory import G1JointTrajectory, RetargetingError

VMAX = 6.0


@pytest.fixture(scope="module")
def limits(g1_model):
    return CommandLimits.from_ranges(joint_ranges_rad(g1_model), VMAX, margin_rad=0.02)


@pytest.fixture(scope="module")
def stand(g1_model):
    return stand_pose_rad(g1_model)


def _controller(limits, stand):
    return JointTrackingController(limits, DEFAULT_KP, DEFAULT_KD, stand, ramp_in_min_s=0.2, ramp_speed_rad_s=2.0)


def _traj(q):
    q = np.asarray(q, float)
    return G1JointTrajectory(30.0, q, np.gradient(q, 1 / 30.0, axis=0), np.zeros((len(q), 3)),
                             np.tile([1.0, 0, 0, 0], (len(q), 1)))


finite = st.floats(-20, 20, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(traj=arrays(np.float64, st.tuples(st.integers(2, 12), st.just(29)), elements=finite),
       measured=arrays(np.float64, (29,), elements=finite), jitter=st.floats(0.0005, 0.004))
def test_commands_stay_inside_limits_for_any_trajectory(limits, stand, traj, measured, jitter):
    c = _controller(limits, stand)
    c.start(_traj(traj), measured, t_now=0.0)
    t, prev = 0.0, None
    for k in range(400):
        t += 0.002 + (jitter if k % 7 == 0 else 0.0)
        if k == 250:
            c.go_to_hold(t)
        cmd = c.tick(t)
        assert cmd is not None and limits.contains(cmd.q_rad)
        assert np.all(np.abs(cmd.dq_rad_s) <= limits.dq_max_rad_s + 1e-9)
        if prev is not None:  # per-tick change bounded by the speed limit
            assert np.all(np.abs(cmd.q_rad - prev[0]) <= limits.dq_max_rad_s * (t - prev[1]) + 1e-9)
        prev = (cmd.q_rad, t)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_refused(limits, stand, bad):
    q = np.zeros((3, 29))
    q[1, 4] = bad
    with pytest.raises(RetargetingError):
        _traj(q)
    c = _controller(limits, stand)
    m = np.zeros(29)
    m[0] = bad
    with pytest.raises(UnsafeCommandError):
        c.start(_traj(np.zeros((3, 29))), m, 0.0)
    with pytest.raises(UnsafeCommandError):
        limits.apply(m, np.zeros(29))


def test_ramp_in_reaches_the_trajectory_then_tracks_then_holds(limits, stand):
    c = _controller(limits, stand)
    assert c.tick(0.0) is None  # idle: nothing is commanded before the first goal
    target = stand.copy()
    target[18] -= 0.5
    ramp = c.start(_traj(np.stack([target, target])), stand, 0.0)
    assert c.phase == Phase.RAMP_IN and ramp >= 0.2
    t = 0.0
    while c.phase != Phase.HOLDING and t < 5:
        t += 0.002
        cmd = c.tick(t)
    np.testing.assert_allclose(cmd.q_rad, np.clip(target, limits.q_min_rad, limits.q_max_rad), atol=1e-6)
    held = c.tick(t + 1.0)
    assert held.phase == Phase.HOLDING and np.allclose(held.q_rad, cmd.q_rad) and not held.dq_rad_s.any()


def test_cancel_ramps_to_hold_pose_and_damping_drops_stiffness(limits, stand):
    c = _controller(limits, stand)
    away = np.clip(stand + 0.4, limits.q_min_rad, limits.q_max_rad)
    c.start(_traj(np.stack([away] * 60)), away, 0.0)
    c.tick(0.01)
    dur = c.go_to_hold(0.01)
    t = 0.01
    while t < 0.01 + dur + 0.05:
        t += 0.002
        cmd = c.tick(t)
    assert cmd.phase == Phase.HOLDING
    np.testing.assert_allclose(cmd.q_rad, np.clip(stand, limits.q_min_rad, limits.q_max_rad), atol=1e-6)
    c.damp()
    d = c.tick(t + 0.002)
    assert d.phase == Phase.DAMPING and not d.kp.any() and np.all(d.kd > 0)


def test_after_damping_a_new_goal_ramps_from_the_measured_pose(limits, stand):
    c = _controller(limits, stand)
    c.start(_traj(np.stack([stand, stand])), stand, 0.0)
    c.tick(0.002)
    c.damp()
    assert not c.tick(0.004).kp.any()  # the damping command goes out: the motors let go
    sagged = np.clip(stand - 0.3, limits.q_min_rad, limits.q_max_rad)  # the limp robot moved
    c.start(_traj(np.stack([stand, stand])), sagged, 1.0)
    first = c.tick(1.0)
    np.testing.assert_allclose(first.q_rad, sagged, atol=1e-9)  # no jump back to the old command


def test_next_step_ramps_briefly_from_the_held_command(limits, stand):
    c = JointTrackingController(limits, DEFAULT_KP, DEFAULT_KD, stand, ramp_in_min_s=2.0, ramp_speed_rad_s=0.5)
    assert c.start(_traj(np.stack([stand, stand])), stand, 0.0) == 2.0  # first goal: the full ramp
    t = 0.0
    while c.phase != Phase.HOLDING:
        t += 0.002
        c.tick(t)
    nxt = stand.copy()
    nxt[15] += 0.05
    assert c.start(_traj(np.stack([nxt, nxt])), stand + 0.2, t) == pytest.approx(0.25)  # continues from the command
    assert np.allclose(c.tick(t).q_rad, np.clip(stand, limits.q_min_rad, limits.q_max_rad))
