"""The lower body while standing free: which steps the leg policy may run, and the command overlay."""
import numpy as np
import pytest

from exoactor.control.balance import (LEGS, WAIST, BaseOdometry, PolicyLowerBody, fallen_reason,
                                      step_base_commands, whole_body_reason)
from exoactor.control.leg_policy import (LEG_KD_NM_S_PER_RAD, LEG_KP_NM_PER_RAD, WAIST_HOLD_KP_NM_PER_RAD,
                                         LegPolicy)
from exoactor.g1.lowstate import LowStateSample
from exoactor.retarget.trajectory import G1JointTrajectory


def _traj(dx=0.0, dz=0.0, waist_pitch=0.0, dyaw=0.0, seconds=3.0, fps=30.0):
    n = int(seconds * fps) + 1
    s = np.linspace(0, 1, n)
    s = 3 * s**2 - 2 * s**3
    q = np.zeros((n, 29))
    q[:, 14] = waist_pitch * s
    root = np.zeros((n, 3))
    root[:, 0], root[:, 2] = dx * s, 0.79 - dz * np.sin(np.pi * s)
    yaw = dyaw * s
    quat = np.stack([np.cos(yaw / 2), 0 * yaw, 0 * yaw, np.sin(yaw / 2)], 1)
    return G1JointTrajectory(fps, q, np.gradient(q, 1 / fps, axis=0), root, quat)


def test_steps_that_lower_the_pelvis_or_bend_the_torso_need_the_gantry():
    assert whole_body_reason(_traj()) == ""
    assert whole_body_reason(_traj(dx=1.0)) == ""  # walking is the policy's job
    assert "lowers the pelvis by 0.28 m" in whole_body_reason(_traj(dz=0.3))  # held 0.5 s near the bottom
    assert "bends the torso by 46 deg" in whole_body_reason(_traj(waist_pitch=0.8))


def test_a_walks_stride_dips_are_not_a_squat():
    walk = _traj(dx=1.0)
    t = np.arange(walk.num_frames) / walk.fps
    dip = 0.10 * np.clip(np.cos(2 * np.pi * t / 0.8), 0.0, None) ** 4  # 10 cm for ~0.2 s at every stride
    walk.root_pos_world_m[:, 2] = 0.79 - dip
    assert whole_body_reason(walk) == ""
    squat = _traj()
    squat.root_pos_world_m[:, 2] = 0.79 - 0.10 * ((t > 1.0) & (t < 1.6))  # 10 cm held 0.6 s
    assert "lowers the pelvis by 0.10 m" in whole_body_reason(squat)


def test_base_commands_follow_the_root_motion():
    walk = step_base_commands(_traj(dx=1.0))
    assert walk[:, 0].max() > 0.3 and abs(walk[:, 1]).max() < 0.05
    assert not step_base_commands(_traj()).any()  # standing still: no shuffling
    turn = step_base_commands(_traj(dyaw=np.pi / 2))
    assert turn[:, 2].max() > 0.3 and abs(turn[:, 0]).max() < 0.05


def _sample(quat=(1.0, 0, 0, 0)):
    return LowStateSample(np.zeros(29), np.zeros(29), 5, 0, np.zeros(29), np.zeros(29, np.uint32), True,
                          np.array(quat, float), np.zeros(3))


def test_a_fall_is_recognised_from_the_imu():
    assert fallen_reason(_sample()) == ""
    tilt = np.deg2rad(60)
    assert "fell (pelvis tilted 60 deg)" in fallen_reason(_sample((np.cos(tilt / 2), np.sin(tilt / 2), 0, 0)))
    assert _sample((0.0, 0.0, 0.0, 0.0)).problem() == "invalid IMU values"


@pytest.fixture(scope="module")
def policy():
    return LegPolicy()


def test_overlay_gives_the_legs_to_the_policy_and_holds_the_waist(policy):
    lb = PolicyLowerBody(policy)
    q, dq, kp, kd = np.full(29, 0.1), np.full(29, 0.2), np.full(29, 40.0), np.ones(29)
    assert lb.overlay(q, dq, kp, kd)[0] is q  # not engaged: untouched
    lb.engage(np.zeros(29))
    odom = BaseOdometry(np.array([0, 0, 0.79]), np.array([1.0, 0, 0, 0]), np.zeros(3), np.zeros(3))
    lb.update(0.0, _sample(), odom)
    q2, dq2, kp2, kd2 = lb.overlay(q, dq, kp, kd)
    assert np.all(kp2[LEGS] == LEG_KP_NM_PER_RAD) and np.all(kd2[LEGS] == LEG_KD_NM_S_PER_RAD)
    assert np.all(kp2[WAIST] == WAIST_HOLD_KP_NM_PER_RAD) and not dq2[LEGS].any()
    assert np.all(q2[15:] == 0.1) and np.all(kp2[15:] == 40.0)  # arms: the trajectory's
    assert not np.allclose(q2[LEGS], 0.1)
    with pytest.raises(ValueError, match="odometry"):
        lb.update(0.02, _sample(), None)
    lb.disengage()
    assert lb.overlay(q, dq, kp, kd)[0] is q


def test_the_plan_is_played_from_its_start_and_is_zero_after(policy):
    lb = PolicyLowerBody(policy)
    lb.set_plan(np.tile([0.5, 0.0, 0.0], (30, 1)), 30.0, t_start=10.0)
    assert not lb.desired(9.9).any() and lb.desired(10.5)[0] == 0.5 and not lb.desired(11.1).any()
