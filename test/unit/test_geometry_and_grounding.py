import numpy as np
import pytest

from exoactor.geometry import (
    DEFAULT_CALIBRATION,
    matrix_to_quat_wxyz,
    quat_wxyz_to_matrix,
    quat_wxyz_to_xyzw,
    quat_xyzw_to_wxyz,
    rot_z,
)
from exoactor.motion.filters import gaussian_smooth
from exoactor.motion.grounding import ground_motion
from exoactor.motion.human_motion import FLAG_NO_PERSON, HUMAN_KEYPOINTS, HumanMotion, MotionEstimationError
from exoactor.skeleton import KP

CAM = DEFAULT_CALIBRATION.camera()


def test_quaternion_round_trips_and_orders():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(20, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.sign(q[:, :1])
    np.testing.assert_allclose(matrix_to_quat_wxyz(quat_wxyz_to_matrix(q)), q, atol=1e-9)
    np.testing.assert_allclose(quat_xyzw_to_wxyz(quat_wxyz_to_xyzw(q)), q)
    np.testing.assert_allclose(quat_wxyz_to_matrix([np.cos(0.3), 0, 0, np.sin(0.3)]), rot_z(0.6), atol=1e-12)


def test_camera_projects_and_back_projects():
    p = np.array([[0.3, 0.2, 0.0], [0.0, 0.0, 1.5]])
    uv, depth = CAM.project(p)
    assert np.all(depth > 0) and np.all((uv >= 0) & (uv < [640, 480]))
    np.testing.assert_allclose(CAM.intersect_horizontal_plane(uv[0], 0.0), p[0], atol=1e-9)
    # a downward ray never rises to z=5
    assert np.isnan(CAM.intersect_horizontal_plane(np.array([320.0, 479.0]), 5.0)).all()


def _placed(skeleton, root_xy, yaw):
    return skeleton @ rot_z(yaw).T + [root_xy[0], root_xy[1], 0.0]


def test_grounding_recovers_root_trajectory_and_heading(standing_keypoints):
    t_count = 40
    truth = np.stack([_placed(standing_keypoints, (0.02 * t, 0.01 * t), 0.3) for t in range(t_count)])
    uv, _ = CAM.project(truth)
    rel_optical = (truth - truth[:, :1]) @ CAM.rot_world_from_optical  # what a camera-oriented estimator reports
    detected = np.ones(t_count, bool)
    detected[[5, 6, 20]] = False  # occluded frames are filled and flagged
    m = ground_motion(rel_optical, uv, np.ones((t_count, len(HUMAN_KEYPOINTS))), detected, CAM, 30.0, "test",
                      smooth_sigma_frames=0.0)
    assert np.abs(m.root_pos_world_m - truth[:, KP["pelvis"]]).max() < 0.01
    yaw = np.arctan2(quat_wxyz_to_matrix(m.root_quat_wxyz)[:, 1, 0], quat_wxyz_to_matrix(m.root_quat_wxyz)[:, 0, 0])
    np.testing.assert_allclose(yaw, 0.3, atol=1e-6)
    assert m.frame_flags[5] & FLAG_NO_PERSON and m.frame_flags[0] == 0
    assert abs(m.height_m - 1.72) < 0.05


def test_grounding_fails_clearly_without_a_person():
    n, j = 10, len(HUMAN_KEYPOINTS)
    with pytest.raises(MotionEstimationError, match="no person"):
        ground_motion(np.zeros((n, j, 3)), np.zeros((n, j, 2)), np.zeros((n, j)), np.zeros(n, bool), CAM, 30.0, "t")
    det = np.zeros(n, bool)
    det[:3] = True
    with pytest.raises(MotionEstimationError, match="30%"):
        ground_motion(np.zeros((n, j, 3)), np.zeros((n, j, 2)), np.zeros((n, j)), det, CAM, 30.0, "t")


def test_smoothing_has_no_lag():
    x = np.sin(np.linspace(0, 6, 200))[:, None]
    y = gaussian_smooth(x + np.random.default_rng(0).normal(0, 0.02, x.shape), 2.0)
    lag = np.argmax(np.correlate(y[:, 0] - y.mean(), x[:, 0] - x.mean(), "full")) - (len(x) - 1)
    assert lag == 0 and np.abs(y - x).mean() < 0.02


def test_motion_validation_and_save_load(tmp_path, standing_keypoints):
    kp = np.stack([standing_keypoints] * 3)
    m = HumanMotion(30.0, kp, np.ones(kp.shape[:2]), kp[:, 0], np.tile([1.0, 0, 0, 0], (3, 1)), 1.7)
    m2 = HumanMotion.load(m.save(tmp_path / "m.npz"))
    np.testing.assert_allclose(m2.keypoints_world_m, kp) and m2.keypoint_names == HUMAN_KEYPOINTS
    kp[1, 2, 0] = np.nan
    with pytest.raises(MotionEstimationError, match="NaN"):
        HumanMotion(30.0, kp, np.ones(kp.shape[:2]), kp[:, 0], np.tile([1.0, 0, 0, 0], (3, 1)), 1.7)


def test_someone_else_picked_up_by_the_detector_is_flagged_and_bridged(standing_keypoints):
    from exoactor.motion.human_motion import FLAG_OTHER_PERSON, FLAG_PARTIAL

    t_count = 60
    truth = np.stack([_placed(standing_keypoints, (0.01 * t, 0.0), 0.0) for t in range(t_count)])
    seen = truth.copy()
    seen[20:26] = _placed(standing_keypoints, (0.5, 2.0), 0.0)  # the detector jumps to a bystander 2 m away
    uv, _ = CAM.project(seen)
    rel_optical = (seen - seen[:, :1]) @ CAM.rot_world_from_optical
    conf = np.ones((t_count, len(HUMAN_KEYPOINTS)))
    conf[40:43, :15] = 0.1  # a partly hidden person
    m = ground_motion(rel_optical, uv, conf, np.ones(t_count, bool), CAM, 30.0, "test", smooth_sigma_frames=0.0,
                      fit=False)
    other = (m.frame_flags & FLAG_OTHER_PERSON) > 0
    assert other[20:26].all() and not other[:20].any() and not other[26:].any()
    assert np.abs(m.root_pos_world_m - truth[:, KP["pelvis"]]).max() < 0.02  # the subject's path, bridged
    assert ((m.frame_flags & FLAG_PARTIAL) > 0).sum() == 3 and m.frame_flags[41] & FLAG_PARTIAL


def test_a_walk_is_not_mistaken_for_another_person(standing_keypoints):
    from exoactor.motion.human_motion import FLAG_OTHER_PERSON

    t_count = 120
    truth = np.stack([_placed(standing_keypoints, (1.5 * t / 30.0, 0.0), 0.0) for t in range(t_count)])  # 1.5 m/s
    uv, _ = CAM.project(truth)
    rel_optical = (truth - truth[:, :1]) @ CAM.rot_world_from_optical
    m = ground_motion(rel_optical, uv, np.ones((t_count, len(HUMAN_KEYPOINTS))), np.ones(t_count, bool), CAM, 30.0,
                      "test", smooth_sigma_frames=0.0, fit=False)
    assert not (m.frame_flags & FLAG_OTHER_PERSON).any()
