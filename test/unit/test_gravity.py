"""Gravity feed-forward: the torques hold the simulated G1's arms where the PD alone lets them sag,
and the tracker sends them (ramped, bounded, none while damping)."""
import numpy as np
import pytest

from exoactor.control.gravity import GravityModel
from exoactor.control.tracker import JointTrackingController, Phase
from exoactor.g1.joints import DEFAULT_KD, DEFAULT_KP, UPPER_BODY_INDICES
from exoactor.g1.model import joint_ranges_rad, stand_pose_rad, torque_limits_nm
from exoactor.g1.safety import CommandLimits
from exoactor.retarget.trajectory import G1JointTrajectory

ARMS_FORWARD = {15: -1.3, 22: -1.3, 18: 0.2, 25: 0.2}
"""Shoulder pitch forward (arms out in front) and elbows slightly bent: the weight on the shoulders."""


@pytest.fixture(scope="module")
def gravity(g1_model):
    from exoactor.g1.model import load_g1_model

    return GravityModel(load_g1_model(with_floor=False))


def _pose(g1_model):
    q = stand_pose_rad(g1_model).copy()
    for i, v in ARMS_FORWARD.items():
        q[i] = v
    return q


def _hold_error(q_des, tau):
    """Steady arm error (rad) of the simulated G1 on its band, all joints on Unitree's example PD."""
    from exoactor.g1.lowcmd import LowCmdFrame
    from exoactor.sim.g1_sim import ElasticBand, G1Simulator

    sim = G1Simulator(band=ElasticBand(), scene_objects=False)
    sim.reset()
    f = LowCmdFrame()
    f.mode[:29], f.q[:29], f.kp[:29], f.kd[:29], f.tau[:29] = 1, q_des, DEFAULT_KP, DEFAULT_KD, tau
    sim.set_command(f)
    sim.step(1500)  # 3 s
    return np.abs(sim.state().q_rad - q_des)[[15, 22]]


def test_the_feed_forward_holds_the_arms_where_the_pd_alone_lets_them_sag(g1_model, gravity):
    q = _pose(g1_model)
    tau = gravity.torques(q)
    assert np.all(tau[:15] == 0) and np.abs(tau[[15, 22]]).min() > 1.0  # legs and waist none; shoulders carry the arms
    sag = _hold_error(q, np.zeros(29))
    held = _hold_error(q, tau)
    assert sag.min() > 0.03, sag  # the PD alone: kp * error carries the arm
    assert held.max() < 0.25 * sag.min(), (held, sag)


def test_torques_follow_the_pose_and_the_pelvis_tilt_and_inputs_are_checked(g1_model, gravity):
    q = _pose(g1_model)
    down = stand_pose_rad(g1_model)
    both = gravity.torques(np.stack([q, down]))
    assert both.shape == (2, 29) and np.allclose(both[0], gravity.torques(q))
    assert abs(both[0, 15]) > 3 * abs(both[1, 15])  # an arm held out weighs more on the shoulder than one hanging
    pitched = gravity.torques(q, [np.cos(0.2), 0.0, np.sin(0.2), 0.0])  # pelvis pitched forward 0.4 rad
    assert not np.allclose(pitched[UPPER_BODY_INDICES], both[0, UPPER_BODY_INDICES])
    with pytest.raises(ValueError, match="shape"):
        gravity.torques(np.zeros(12))
    with pytest.raises(ValueError, match="finite"):
        gravity.torques(np.full(29, np.nan))
    with pytest.raises(ValueError, match="unit quaternions"):
        gravity.torques(q, [0.0, 0.0, 0.0, 0.0])


def test_the_tracker_ramps_the_feed_forward_in_bounds_it_and_sends_none_while_damping(g1_model, gravity):
    limits = CommandLimits.from_ranges(joint_ranges_rad(g1_model), 6.0, 0.02, 0.002,
                                       tau_max_nm=np.minimum(torque_limits_nm(g1_model), 2.0))
    stand = stand_pose_rad(g1_model)
    ctl = JointTrackingController(limits, DEFAULT_KP, DEFAULT_KD, stand, ramp_in_min_s=0.2, ramp_speed_rad_s=2.0,
                                  gravity=gravity)
    q = np.tile(_pose(g1_model), (30, 1))
    traj = G1JointTrajectory(30.0, q, np.zeros_like(q), np.tile([0, 0, 0.79], (30, 1)),
                             np.tile([1.0, 0, 0, 0], (30, 1)))
    ramp = ctl.start(traj, stand, 0.0)
    first = ctl.tick(0.0)
    assert np.allclose(first.tau_nm, np.clip(gravity.torques(stand), -2.0, 2.0), atol=1e-5)  # from the start pose's
    t, cmd = 0.0, first
    while t < ramp + 0.5:
        t += 0.002
        cmd = ctl.tick(t)
        assert np.all(np.abs(cmd.tau_nm) <= 2.0 + 1e-6) and np.all(cmd.tau_nm[:15] == 0)
    assert cmd.phase == Phase.TRACKING
    full = gravity.torques(q[0])
    assert np.allclose(cmd.tau_nm, np.clip(full, -2.0, 2.0), atol=1e-5)  # the bound holds the shoulders' 5+ N*m
    assert np.abs(full[[15, 22]]).min() > 2.0
    ctl.damp()
    damping = ctl.tick(t + 0.002)
    assert damping.phase == Phase.DAMPING and damping.tau_nm is None and not damping.kp.any()  # encoded as tau 0
    plain = JointTrackingController(limits, DEFAULT_KP, DEFAULT_KD, stand, ramp_in_min_s=0.2)
    plain.start(traj, stand, 0.0)
    assert plain.tick(0.0).tau_nm is None
