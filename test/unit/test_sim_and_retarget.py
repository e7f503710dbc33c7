import threading

import numpy as np
import pytest

from exoactor.g1.joints import DEFAULT_KD, DEFAULT_KP
from exoactor.g1.lowcmd import LowCmdFrame
from exoactor.g1.model import joint_ranges_rad, stand_pose_rad
from exoactor.motion.human_motion import HUMAN_KEYPOINTS, HumanMotion
from exoactor.progress import Canceled
from exoactor.retarget.mink_retargeter import MinkRetargeter
from exoactor.sim.g1_sim import ElasticBand, G1Simulator
from exoactor.skeleton import KP


def _pd_command(q_target):
    f = LowCmdFrame(mode_machine=5)
    f.q[:29], f.kp[:29], f.kd[:29], f.mode[:29] = q_target, DEFAULT_KP, DEFAULT_KD, 1
    return f


def test_sim_follows_pd_commands_on_the_band():
    sim = G1Simulator(band=ElasticBand(enabled=True))
    target = stand_pose_rad(sim.model)
    target[15] = -0.8  # left shoulder pitch forward
    target[18] = 1.0   # left elbow
    sim.set_command(_pd_command(target))
    sim.step(1500)  # 3 s
    st = sim.state()
    # kp = 40 without gravity feed-forward leaves ~0.1 rad of sag on the arm: the real PD law does too.
    assert np.abs(st.q_rad[[15, 18]] - target[[15, 18]]).max() < 0.15
    assert np.abs(st.dq_rad_s).max() < 0.5
    assert st.base_pos_world_m[2] > 0.6  # held up by the band
    np.testing.assert_allclose(np.linalg.norm(st.imu_quat_wxyz), 1.0, atol=1e-6)


def test_sim_motors_off_without_command_and_torques_clipped():
    sim = G1Simulator()
    assert not sim.motor_torques().any()  # nothing commanded: zero torque, as a fresh robot
    f = _pd_command(np.full(29, 3.0))
    f.kp[:29] = 1e4
    sim.set_command(f)
    tau = sim.motor_torques()
    assert np.all(np.abs(tau) <= sim.torque_limit_nm + 1e-9)
    assert np.isclose(np.abs(tau).max(), sim.torque_limit_nm.max())
    f.mode[:29] = 0
    sim.set_command(f)
    assert not sim.motor_torques().any()  # mode 0: motor ignores the command


def test_band_force_points_to_anchor():
    b = ElasticBand(anchor_world_m=np.array([0.0, 0.0, 3.0]), length_m=1.0)
    f = b.force(np.array([0.0, 0.0, 1.0]), np.zeros(3))
    np.testing.assert_allclose(f, [0, 0, 200.0])
    assert not ElasticBand(enabled=False).force(np.zeros(3), np.zeros(3)).any()


def _synthetic_motion(standing, n=45, right_arm_up=True):
    """A standing human whose right arm swings up sideways."""
    kp = np.tile(standing, (n, 1, 1))
    if right_arm_up:
        for t in range(n):
            a = np.pi * 0.8 * min(1.0, t / (n * 0.6))  # abduction angle
            sh = kp[t, KP["right_shoulder"]]
            for name, r in (("right_elbow", 0.28), ("right_wrist", 0.53), ("right_hand", 0.6)):
                kp[t, KP[name]] = sh + r * np.array([0.0, -np.sin(a), -np.cos(a)])
    return HumanMotion(30.0, kp, np.ones((n, len(HUMAN_KEYPOINTS))), kp[:, 0], np.tile([1.0, 0, 0, 0], (n, 1)), 1.72)


@pytest.fixture(scope="module")
def retargeter():
    return MinkRetargeter(max_joint_velocity_rad_s=6.0)


def test_retargeting_respects_limits_and_follows_the_arm(retargeter, standing_keypoints):
    tr = retargeter.retarget(_synthetic_motion(standing_keypoints))
    rng = joint_ranges_rad(retargeter.model)
    assert np.all(tr.positions_rad >= rng[:, 0] - 1e-6) and np.all(tr.positions_rad <= rng[:, 1] + 1e-6)
    assert np.abs(np.diff(tr.positions_rad, axis=0)).max() * 30.0 <= 6.0 + 1e-6  # velocity limit enforced
    # right shoulder roll up, left arm down
    assert tr.positions_rad[-1, 23] < -1.2 and abs(tr.positions_rad[-1, 16]) < 0.6
    assert abs(tr.root_pos_world_m[0, 2] - retargeter.stand_pelvis_z) < 0.05  # standing human -> standing robot
    assert np.abs(tr.positions_rad[:, 3]).max() < 0.5  # knees stay nearly straight


def test_retargeting_can_be_canceled(retargeter, standing_keypoints):
    ev = threading.Event()
    ev.set()
    with pytest.raises(Canceled):
        retargeter.retarget(_synthetic_motion(standing_keypoints), cancel=ev)


def test_ik_residual_is_reported_per_frame(retargeter, standing_keypoints):
    tr = retargeter.retarget(_synthetic_motion(standing_keypoints))
    assert tr.ik_residual_m.shape == (tr.num_frames,) and np.all(tr.ik_residual_m >= 0)
    assert np.percentile(tr.ik_residual_m, 95) < 0.05  # a reachable motion is followed


def test_a_motion_the_robot_cannot_follow_is_refused_with_the_reason(retargeter, standing_keypoints):
    from exoactor.retarget.trajectory import RetargetingError

    m = _synthetic_motion(standing_keypoints, right_arm_up=False)
    kp = m.keypoints_world_m
    kp[30:, KP["right_wrist"]] += [0.6, 0.0, 0.0]  # the wrist 60 cm further than the arm reaches (a third of the clip)
    kp[30:, KP["right_hand"]] += [0.6, 0.0, 0.0]
    with pytest.raises(RetargetingError, match=r"cannot follow this motion: IK residual above 0.15 m .*right_hand"):
        retargeter.retarget(m)


def test_a_planted_foot_does_not_slide_when_the_estimate_drifts(retargeter, standing_keypoints):
    import mujoco

    m = _synthetic_motion(standing_keypoints, n=60, right_arm_up=False)
    drift = np.linspace(0.0, 0.12, m.num_frames)[:, None] * np.array([1.0, 0.0, 0.0])  # 6 cm/s: still "planted"
    for name in ("left_ankle", "left_heel", "left_toe", "left_knee"):
        m.keypoints_world_m[:, KP[name]] += drift
    tr = retargeter.retarget(m)
    model = retargeter.model
    data = mujoco.MjData(model)
    from exoactor.g1.model import joint_qpos_addresses

    adr = joint_qpos_addresses(model)
    foot = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "left_ankle_roll_link")
    xs = []
    for t in range(tr.num_frames):
        data.qpos[0:3], data.qpos[3:7], data.qpos[adr] = tr.root_pos_world_m[t], tr.root_quat_wxyz[t], tr.positions_rad[t]
        mujoco.mj_kinematics(model, data)
        xs.append(data.xpos[foot, :2].copy())
    assert np.linalg.norm(xs[-1] - xs[5]) < 0.02, np.linalg.norm(xs[-1] - xs[5])


def _hand_through_the_belly(standing, n=45):
    """The right hand swings across to the middle of the belly and on through it."""
    kp = np.tile(standing, (n, 1, 1))
    target = standing[KP["pelvis"]] + np.array([-0.02, 0.05, 0.2])  # inside the trunk, left of centre
    for t in range(n):
        a = min(1.0, t / (n * 0.7))
        for name in ("right_wrist", "right_hand"):
            kp[t, KP[name]] = (1 - a) * standing[KP[name]] + a * target
        kp[t, KP["right_elbow"]] = (1 - a) * standing[KP["right_elbow"]] + a * (
            standing[KP["right_shoulder"]] + np.array([0.15, -0.05, -0.2]))
    return HumanMotion(30.0, kp, np.ones((n, len(HUMAN_KEYPOINTS))), kp[:, 0], np.tile([1.0, 0, 0, 0], (n, 1)), 1.72)


def _closest_arm_trunk_distance_m(retargeter, traj) -> float:
    import mujoco

    m = retargeter.model
    d = mujoco.MjData(m)
    from exoactor.g1.model import joint_qpos_addresses

    qadr = joint_qpos_addresses(m)
    pairs = [(a, b) for arm, trunk in retargeter.self_collision_pairs for a in arm for b in trunk]
    best = np.inf
    for t in range(traj.num_frames):
        d.qpos[:3], d.qpos[3:7] = traj.root_pos_world_m[t], traj.root_quat_wxyz[t]
        d.qpos[qadr] = traj.positions_rad[t]
        mujoco.mj_kinematics(m, d)
        for a, b in pairs:
            best = min(best, mujoco.mj_geomDistance(m, d, a, b, 0.5, None))
    return float(best)


def test_forearms_and_hands_keep_away_from_the_trunk(retargeter, standing_keypoints):
    motion = _hand_through_the_belly(standing_keypoints)
    # (the hand target is inside the trunk: the IK residual refusal is not what this test is about)
    free = MinkRetargeter(max_joint_velocity_rad_s=6.0, self_collision_margin_m=-1.0, max_ik_residual_m=1.0)
    assert _closest_arm_trunk_distance_m(free, free.retarget(motion)) < -0.01  # the hand goes into the trunk
    assert retargeter.self_collision_margin_m == 0.02  # the default
    kept = MinkRetargeter(max_joint_velocity_rad_s=6.0, max_ik_residual_m=1.0)
    assert _closest_arm_trunk_distance_m(kept, kept.retarget(motion)) > 0.0


def _hands_at_the_hips(standing, n=30):
    """Both hands hanging against the outside of the hips (a person's arms at rest)."""
    kp = np.tile(standing, (n, 1, 1))
    for side in ("left", "right"):
        hip = standing[KP[f"{side}_hip"]]
        out = np.sign(hip[1]) * np.array([0.0, 0.06, 0.0])  # 6 cm out from the hip joint, 5 cm below it
        for name, dz in ((f"{side}_wrist", -0.05), (f"{side}_hand", -0.12)):
            kp[:, KP[name]] = hip + out + [0.0, 0.0, dz]
        kp[:, KP[f"{side}_elbow"]] = (standing[KP[f"{side}_shoulder"]] + kp[:, KP[f"{side}_wrist"]]) / 2
    return HumanMotion(30.0, kp, np.ones((n, len(HUMAN_KEYPOINTS))), kp[:, 0], np.tile([1.0, 0, 0, 0], (n, 1)), 1.72)


def _closest_hand_hip_distance_m(retargeter, traj) -> float:
    import mujoco

    from exoactor.g1.model import joint_qpos_addresses

    m = retargeter.model
    d = mujoco.MjData(m)
    qadr = joint_qpos_addresses(m)

    def geoms(body):
        b = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, body)
        return [g for g in range(m.ngeom) if m.geom_bodyid[g] == b and (m.geom_contype[g] or m.geom_conaffinity[g])]

    pairs = [(a, b) for side in ("left", "right")
             for a in geoms(f"{side}_wrist_yaw_link") + geoms(f"{side}_wrist_pitch_link")
             for b in geoms(f"{side}_hip_pitch_link") + geoms(f"{side}_hip_roll_link")]
    best = np.inf
    for t in range(traj.num_frames):
        d.qpos[:3], d.qpos[3:7], d.qpos[qadr] = traj.root_pos_world_m[t], traj.root_quat_wxyz[t], traj.positions_rad[t]
        mujoco.mj_kinematics(m, d)
        best = min(best, min(mujoco.mj_geomDistance(m, d, a, b, 0.5, None) for a, b in pairs))
    return float(best)


def test_hands_resting_at_the_hips_stay_outside_the_robots_hip_links(retargeter, standing_keypoints, monkeypatch):
    """The G1's hip links bulge out beside its pelvis: a person's hand resting there would put the
    robot's hand inside them, and the simulated (or real) arm would be pushed out, off its command."""
    import exoactor.retarget.mink_retargeter as mr

    motion = _hands_at_the_hips(standing_keypoints)
    assert _closest_hand_hip_distance_m(retargeter, retargeter.retarget(motion)) > 0.005
    monkeypatch.setattr(mr, "HIP_KEEP_OUT_M", 0.0)  # without the keep-out the hands go into the hips
    assert _closest_hand_hip_distance_m(retargeter, retargeter.retarget(motion)) < 0.0
