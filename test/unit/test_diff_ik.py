"""The retargeter's IK step (exoactor.retarget.diff_ik): its collision rows are mink's, its steps stay
inside the joint and velocity limits, it converges on a reachable target and refuses bad targets."""
import mujoco
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exoactor.g1.model import joint_dof_addresses, joint_qpos_addresses, joint_ranges_rad
from exoactor.retarget.diff_ik import BodyTask, Clearance, DifferentialIK, DifferentialIKError
from exoactor.retarget.mink_retargeter import arm_torso_geom_pairs


def _data_at(model, q):
    d = mujoco.MjData(model)
    d.qpos[:] = q
    mujoco.mj_kinematics(model, d)
    mujoco.mj_comPos(model, d)
    return d


def _stand(model):
    d = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, d, mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "stand"))
    return d.qpos.copy()


def _arms_near_the_trunk(model, rng):
    """The stand pose with the arms swung at random toward and across the body."""
    q = _stand(model)
    adr = joint_qpos_addresses(model)
    rng_rad = joint_ranges_rad(model)
    for j in range(15, 29):  # arm motors
        lo, hi = rng_rad[j]
        q[adr[j]] = rng.uniform(max(lo, -1.2), min(hi, 1.2))
    return q


def test_clearance_rows_are_mink_collision_avoidance_rows(g1_model):
    import mink

    pairs = arm_torso_geom_pairs(g1_model)
    ours = Clearance(g1_model, pairs, minimum_distance_m=0.02, detection_distance_m=0.07)
    ref = mink.CollisionAvoidanceLimit(g1_model, pairs, minimum_distance_from_collisions=0.02,
                                       collision_detection_distance=0.07)
    config = mink.Configuration(g1_model)
    rng = np.random.default_rng(3)
    compared = 0
    for _ in range(60):
        q = _arms_near_the_trunk(g1_model, rng)
        config.update(q)
        mine = ours.rows(config.data, 1 / 90)
        theirs = ref.compute_qp_inequalities(config, 1 / 90)
        near = np.flatnonzero(np.isfinite(theirs.h))
        if mine is None:
            assert len(near) == 0
            continue
        assert sorted(ours.last_pairs) == list(near)
        G, h = mine
        for row, pair in enumerate(ours.last_pairs):
            np.testing.assert_allclose(G[row], theirs.G[pair], atol=1e-12)
            assert h[row] == pytest.approx(theirs.h[pair], abs=1e-12)
            compared += 1
    assert compared > 100  # the poses do bring the arms near the trunk


def _ik(model, clearance=None, vmax=6.0, margin=0.02):
    bodies = ("pelvis", "left_wrist_yaw_link", "torso_link")
    tasks = [BodyTask("pelvis", mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, bodies[0]), 1.0, 1.0),
             BodyTask("hand", mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, bodies[1]), 1.0, 0.0),
             BodyTask("torso", mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, bodies[2]), 0.0, 0.5)]
    return DifferentialIK(model, tasks, posture_cost=0.02, q_posture=_stand(model), joint_margin_rad=margin,
                          max_joint_velocity_rad_s=vmax, clearance=clearance)


def test_a_reachable_hand_target_is_reached_and_the_pelvis_held(g1_model):
    ik = _ik(g1_model)
    q = _stand(g1_model)
    d = _data_at(g1_model, q)
    pelvis = d.xpos[ik.tasks[0].body_id].copy()
    hand = d.xpos[ik.tasks[1].body_id] + [0.15, 0.05, 0.2]
    pos = np.array([pelvis, hand, np.zeros(3)])
    quat = np.array([[1.0, 0, 0, 0], [1.0, 0, 0, 0], [1.0, 0, 0, 0]])
    ik.set_targets(pos, quat)
    for _ in range(60):
        mujoco.mj_integratePos(g1_model, q, ik.step(d, 1 / 90), 1.0)
        d = _data_at(g1_model, q)
    assert np.linalg.norm(d.xpos[ik.tasks[1].body_id] - hand) < 0.01
    assert np.linalg.norm(d.xpos[ik.tasks[0].body_id] - pelvis) < 0.01


@settings(max_examples=40)
@given(seed=st.integers(0, 2**31 - 1), vmax=st.floats(0.5, 10.0), dt=st.floats(1 / 240, 1 / 10))
def test_every_step_stays_inside_the_joint_and_velocity_limits(g1_model, seed, vmax, dt):
    rng = np.random.default_rng(seed)
    ik = _ik(g1_model, vmax=vmax)
    adr = joint_qpos_addresses(g1_model)
    lo, hi = joint_ranges_rad(g1_model).T
    q = _stand(g1_model)
    q[adr] = rng.uniform(lo + 0.02, hi - 0.02)  # anywhere inside the margins
    far = rng.normal(size=(3, 3)) * 3.0  # targets far out of reach pull hard toward the limits
    quat = rng.normal(size=(3, 4))
    ik.set_targets(far, quat / np.linalg.norm(quat, axis=1, keepdims=True))
    for _ in range(5):
        dq = ik.step(_data_at(g1_model, q), dt)
        assert np.all(np.abs(dq[6:]) <= vmax * dt + 1e-9)
        mujoco.mj_integratePos(g1_model, q, dq, 1.0)
        assert np.all(q[adr] >= lo + 0.02 - 1e-9) and np.all(q[adr] <= hi - 0.02 + 1e-9)


def test_bad_targets_are_refused_with_what_was_expected(g1_model):
    ik = _ik(g1_model)
    with pytest.raises(DifferentialIKError, match=r"expected shapes \(3, 3\) and \(3, 4\), got \(2, 3\)"):
        ik.set_targets(np.zeros((2, 3)), np.zeros((3, 4)))
    pos = np.zeros((3, 3))
    pos[1, 0] = np.nan
    with pytest.raises(DifferentialIKError, match="NaN"):
        ik.set_targets(pos, np.tile([1.0, 0, 0, 0], (3, 1)))
    pos[1, 0], pos[2, 0] = 0.0, np.nan  # the torso task has no position cost: its position is never read
    ik.set_targets(pos, np.tile([1.0, 0, 0, 0], (3, 1)))
    assert np.all(np.isfinite(ik.step(_data_at(g1_model, _stand(g1_model)), 1 / 90)))


def test_a_joint_far_outside_its_range_returns_no_faster_than_the_velocity_limit(g1_model):
    ik = _ik(g1_model, vmax=2.0, margin=0.1)
    adr = joint_qpos_addresses(g1_model)
    lo, hi = joint_ranges_rad(g1_model).T
    q = _stand(g1_model)
    q[adr[3]], q[adr[9]] = hi[3] - 0.01, lo[9] + 0.01  # knees: 0.09 rad past the IK's bounds, each way
    d = _data_at(g1_model, q)
    ik.set_targets(d.xpos[[t.body_id for t in ik.tasks]], np.tile([1.0, 0, 0, 0], (3, 1)))
    dq = ik.step(d, 1 / 90)
    dof = joint_dof_addresses(g1_model)
    assert -2.0 / 90 - 1e-9 <= dq[dof[3]] < 0 and 0 < dq[dof[9]] <= 2.0 / 90 + 1e-9
