"""/arm_sdk blend ramp and command, and the locomotion service requests (SetVelocity plans)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from exoactor.control.arm_sdk import (ARM_SDK_JOINTS, BLEND_WEIGHT_INDEX, BlendRamp, LocomotionRequests,
                                      arm_sdk_command)
from exoactor.g1.joints import DEFAULT_KD, DEFAULT_KP, G1_JOINT_NAMES

# ---------------------------------------------------------------------------- blend ramp


def test_arm_sdk_layout_matches_the_notes():
    assert list(ARM_SDK_JOINTS) == list(range(12, 29)) and BLEND_WEIGHT_INDEX == 29
    assert G1_JOINT_NAMES[12] == "waist_yaw_joint" and G1_JOINT_NAMES[28] == "right_wrist_yaw_joint"


def test_ramp_in_hold_ramp_out_then_exactly_zero():
    r = BlendRamp(ramp_in_s=1.0, ramp_out_s=2.0)
    assert r.weight(5.0) == 0.0 and r.phase(5.0) == "idle"
    r.start(10.0)
    assert r.weight(10.0) == 0.0
    assert r.weight(10.5) == pytest.approx(0.5) and r.phase(10.5) == "ramp_in"
    assert r.weight(11.0) == 1.0 and r.weight(20.0) == 1.0 and r.phase(20.0) == "hold"
    r.release(20.0)
    assert r.weight(20.0) == 1.0
    assert r.weight(21.0) == pytest.approx(0.5) and r.phase(21.0) == "ramp_out"
    assert r.release_end_t() == pytest.approx(22.0)
    assert r.weight(22.0) == 0.0 and r.weight(22.0 + 1e-9) == 0.0 and r.weight(1e9) == 0.0
    assert r.finished(22.0) and r.phase(23.0) == "done"
    ts = np.linspace(9.0, 23.0, 2801)
    w = np.array([r.weight(t) for t in ts])
    assert np.all((w >= 0) & (w <= 1))
    up, down = w[ts <= 20.0], w[ts >= 20.0]
    assert np.all(np.diff(up) >= 0) and np.all(np.diff(down) <= 0)
    assert np.max(np.abs(np.diff(w))) <= 0.005 * 1.0 + 1e-12  # no step: slope <= 1/ramp_in per 5 ms
    r.start(30.0)  # a fresh cycle after a finished one
    assert r.weight(30.5) == pytest.approx(0.5)


def test_release_during_ramp_in_ramps_down_from_there():
    r = BlendRamp(1.0, 2.0)
    r.start(0.0)
    r.release(0.25)  # weight 0.25, ramps down at 0.5 / s -> zero at 0.75
    r.release(0.5)   # ignored
    assert r.weight(0.25) == pytest.approx(0.25)
    assert r.weight(0.5) == pytest.approx(0.125)
    assert r.weight(0.75) == 0.0 and r.finished(0.75)
    with pytest.raises(ValueError):
        BlendRamp(0.0, 2.0)
    with pytest.raises(ValueError):
        BlendRamp(1.0, float("nan"))
    with pytest.raises(ValueError, match="never started"):
        BlendRamp().release(1.0)
    running = BlendRamp()
    running.start(0.0)
    with pytest.raises(ValueError, match="already running"):
        running.start(0.5)
    assert running.weight(float("nan")) == 0.0


@settings(max_examples=200, deadline=None)
@given(ramp_in=st.floats(0.01, 5.0), ramp_out=st.floats(0.01, 5.0), start=st.floats(-1e3, 1e3),
       hold=st.floats(0.0, 10.0), times=st.lists(st.floats(-2e3, 2e3), min_size=1, max_size=40))
@example(ramp_in=1.0, ramp_out=0.5, start=0.0, hold=5e-324, times=[0.0])  # weight too small to move the clock
@example(ramp_in=3.0, ramp_out=1.0, start=0.0, hold=1.0, times=[0.0])  # float rounding at the end time
def test_ramp_property_bounded_monotonic_and_ends_at_zero(ramp_in, ramp_out, start, hold, times):
    r = BlendRamp(ramp_in, ramp_out)
    r.start(start)
    rel = start + hold
    r.release(rel)
    ts = np.sort(np.array(times + [start, rel, rel + ramp_out]))
    w = np.array([r.weight(float(t)) for t in ts])
    assert np.all((w >= 0.0) & (w <= 1.0))
    assert np.all(np.diff(w[ts <= rel]) >= 0)
    assert np.all(np.diff(w[ts >= rel]) <= 0)
    end = r.release_end_t()
    assert end <= rel + ramp_out + 1e-9
    assert all(r.weight(float(t)) == 0.0 for t in ts if t >= end or t <= start)
    assert r.weight(end) == 0.0


# ---------------------------------------------------------------------------- /arm_sdk command
def test_arm_sdk_command_fills_only_upper_body_and_the_weight():
    q29 = np.arange(29) * 0.01
    cmd = arm_sdk_command(q29, 0.7, kp=None, kd=None, mode_machine=5)
    assert cmd.q.shape == (35,)
    np.testing.assert_allclose(cmd.q[12:29], q29[12:29])
    assert cmd.q[BLEND_WEIGHT_INDEX] == pytest.approx(0.7)
    for arr in (cmd.q, cmd.dq, cmd.kp, cmd.kd, cmd.tau, cmd.mode):
        assert np.all(arr[:12] == 0), "legs must stay zero"
        assert np.all(arr[30:] == 0)
    assert np.all(cmd.kp[29] == 0) and cmd.mode[29] == 0 and cmd.dq[29] == 0
    np.testing.assert_allclose(cmd.kp[12:29], DEFAULT_KP[12:29])
    np.testing.assert_allclose(cmd.kd[12:29], DEFAULT_KD[12:29])
    assert np.all(cmd.mode[12:29] == 1) and np.all(cmd.tau == 0) and cmd.mode_machine == 5
    # 17 upper-body values, scalar gains
    cmd17 = arm_sdk_command(q29[12:29], 0.0, kp=30.0, kd=np.full(17, 2.0))
    np.testing.assert_allclose(cmd17.q[:29], np.r_[np.zeros(12), q29[12:29]])
    assert np.all(cmd17.kp[12:29] == 30.0) and np.all(cmd17.kd[12:29] == 2.0) and cmd17.q[29] == 0.0
    rec = cmd.to_struct()  # encodes with the project's LowCmd layout and CRC
    assert rec["motor"]["q"][29] == pytest.approx(0.7)
    for bad in (dict(weight=1.2), dict(weight=-0.1), dict(weight=float("nan"))):
        with pytest.raises(ValueError, match="blend weight"):
            arm_sdk_command(q29, **bad)
    with pytest.raises(ValueError, match="shape"):
        arm_sdk_command(np.zeros(16), 0.5)
    with pytest.raises(ValueError, match="finite"):
        arm_sdk_command(np.full(17, np.inf), 0.5)
    with pytest.raises(ValueError, match="gains"):
        arm_sdk_command(np.zeros(17), 0.5, kp=-1.0)


# ---------------------------------------------------------------------------- locomotion
def params(req):
    return json.loads(req["parameter"])


def test_single_requests():
    loco = LocomotionRequests()
    r = loco.set_velocity(0.3, -0.1, 0.2, 1.5)
    assert r["api_id"] == 7105 and params(r) == {"velocity": [0.3, -0.1, 0.2], "duration": 1.5}
    clamped = params(loco.set_velocity(5.0, -5.0, 9.0, 1.0))["velocity"]
    assert clamped == [loco.vx_max, -loco.vy_max, loco.yaw_rate_max]
    assert params(loco.set_velocity(-5.0, 0, -9.0, 1.0))["velocity"] == [loco.vx_min, 0.0, -loco.yaw_rate_max]
    for bad in (0.0, -1.0, float("nan"), loco.max_duration_s + 1):
        with pytest.raises(ValueError, match="duration"):
            loco.set_velocity(0.1, 0, 0, bad)
    with pytest.raises(ValueError, match="finite"):
        loco.set_velocity(float("nan"), 0, 0, 1.0)
    assert loco.set_fsm_id(4) == {"api_id": 7101, "parameter": '{"data": 4}'}
    assert loco.get_fsm_id()["api_id"] == 7001 and params(loco.get_fsm_id()) == {}
    with pytest.raises(ValueError):
        loco.set_fsm_id(-1)
    with pytest.raises(ValueError):
        loco.set_fsm_id(True)
    assert params(loco.stop())["velocity"] == [0.0, 0.0, 0.0]


def test_velocity_plan_walk_turn_walk_stand():
    """2 s walk 0.4 m/s, 1.5 s turn in place 0.5 rad/s, 2 s walk, 1 s stand: noisy per-frame at 30 fps."""
    fps = 30.0
    rng = np.random.default_rng(1)
    phases = [((0.4, 0.0, 0.0), 2.0), ((0.0, 0.0, 0.5), 1.5), ((0.4, 0.0, 0.0), 2.0), ((0.0, 0.0, 0.0), 1.0)]
    cmds = np.concatenate([np.tile(v, (int(d * fps), 1)) for v, d in phases])
    cmds = cmds + rng.normal(scale=0.01, size=cmds.shape)
    cmds[40] = [0.4, 0.0, 0.6]  # a one-frame glitch must not become its own request
    plan = LocomotionRequests().velocity_plan(cmds, fps)
    assert len(plan) == 4, [(p.t_s, params(p.request)) for p in plan]
    starts = [p.t_s for p in plan]
    np.testing.assert_allclose(starts, [0.0, 2.0, 3.5, 5.5], atol=2 / fps)
    durations = [params(p.request)["duration"] for p in plan]
    assert sum(durations) == pytest.approx(len(cmds) / fps)
    np.testing.assert_allclose(np.diff(starts), durations[:-1], atol=1e-9)  # back to back, no gap
    v = np.array([params(p.request)["velocity"] for p in plan])
    np.testing.assert_allclose(v, [p[0] for p in phases], atol=0.03)
    assert v[-1].tolist() == [0.0, 0.0, 0.0]  # standing is an exact zero (deadband)
    assert v[1][0] == 0.0 and v[0][2] == 0.0 and all(p.request["api_id"] == 7105 for p in plan)


def test_velocity_plan_clamps_and_splits_long_segments():
    loco = LocomotionRequests()
    cmds = np.tile([2.0, 0.0, 0.0], (12 * 50, 1))  # 12 s too fast, at 50 fps
    plan = loco.velocity_plan(cmds, 50.0)
    assert [p.t_s for p in plan] == [0.0, 5.0, 10.0]
    assert [params(p.request)["duration"] for p in plan] == [5.0, 5.0, 2.0]
    assert all(params(p.request)["velocity"] == [loco.vx_max, 0.0, 0.0] for p in plan)
    single = loco.velocity_plan([[0.1, 0.0, 0.0]], 30.0)
    assert len(single) == 1 and params(single[0].request)["duration"] == pytest.approx(1 / 30)
    with pytest.raises(ValueError, match="shape"):
        loco.velocity_plan(np.zeros((10, 2)), 30.0)
    with pytest.raises(ValueError, match="fps"):
        loco.velocity_plan(np.zeros((10, 3)), 0.0)
